// References to every field of an aggregate, indexable without std::tuple (what a structured
// binding in bindings.hpp hands on).
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "../common/type_list.hpp"

namespace hotswap::detail {

template <std::size_t I, class T>
struct field_slot {
  T* pointer;
};

template <class Indices, class... T>
struct field_refs;

template <std::size_t... I, class... T>
struct field_refs<std::index_sequence<I...>, T...> : field_slot<I, T>... {
  using types = type_list<std::remove_const_t<T>...>;
};

template <class... T>
constexpr auto tie_members(T&... members) {
  return field_refs<std::index_sequence_for<T...>, T...>{{&members}...};
}

/// The I-th field of a `field_refs`, found by overload resolution rather than recursion.
template <std::size_t I, class T>
constexpr T& member(field_slot<I, T> slot) {
  return *slot.pointer;
}

}  // namespace hotswap::detail
