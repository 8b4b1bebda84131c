// A list of types, as a value (type_list<A, B>{}) that functions take and return.
#pragma once

#include <cstddef>

namespace hotswap::detail {

template <class... T>
struct type_list {
  static constexpr std::size_t size = sizeof...(T);
};

}  // namespace hotswap::detail
