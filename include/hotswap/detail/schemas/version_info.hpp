// One version of a schema as the run-time registry holds it, and its description made from the
// struct at compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../common/hash.hpp"
#include "../reflect/fields.hpp"
#include "describe.hpp"
#include "field_kinds.hpp"

namespace hotswap::detail {

/// One version of a schema as the registry holds it (hotswap::version_info): what type-erased
/// code can know of a value. Modules hand theirs to the program.
struct version_info {
  std::string schema;
  int vsn = 0;
  std::uint64_t fingerprint = 0;
  std::vector<std::string> field_names;
  std::vector<std::string> field_types;
  friend bool operator==(const version_info&, const version_info&) = default;
};

/// The description of version `T` of its schema.
template <versioned_type T>
version_info describe_version() {
  version_info info{std::string(schema_of<T>::name), version_number<T>, fnv1a(description<T>), {}, {}};
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (info.field_names.emplace_back(field_names<T>[I]), ...);
    (info.field_types.emplace_back(description<field_type<T, I>>), ...);
  }
  (std::make_index_sequence<field_count<T>>{});
  return info;
}

}  // namespace hotswap::detail
