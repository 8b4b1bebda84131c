// How many bytes a state holds, for an upgrade's report: the value itself and what its fields'
// containers hold on the heap, walked by field kind as inspect walks them.
//
// An estimate, stated as such: a container's heap is its capacity (a vector's, a string's when it
// is not held inline) or its nodes (a map's: the value and the tree's three pointers and colour; a
// hash map's: the value, a link and a cached hash, and its buckets), allocator overhead aside. A
// type of kind `other` counts as its size alone. Costs one visit per element: a walk of the state,
// so never inside a pause.
#pragma once

#include <cstddef>
#include <utility>

#include "../reflect/fields.hpp"
#include "field_kinds.hpp"

namespace hotswap::detail {

/// The bytes `value` holds beyond its own size.
template <class T>
std::size_t heap_bytes(const T& value) {
  constexpr field_kind kind = field_kind_of<T>;
  constexpr std::size_t pointer = sizeof(void*);
  auto of_elements = [](const auto& range) {
    std::size_t bytes = 0;
    for (const auto& element : range) bytes += heap_bytes(element);
    return bytes;
  };
  if constexpr (kind == field_kind::version) {
    auto members = fields(value);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return (std::size_t{0} + ... + heap_bytes(member<I>(members)));
    }
    (std::make_index_sequence<field_count<T>>{});
  } else if constexpr (kind == field_kind::string) {
    const char* const inline_begin = reinterpret_cast<const char*>(&value);
    const bool held_inline = value.data() >= inline_begin && value.data() < inline_begin + sizeof(T);
    return held_inline ? 0 : value.capacity() + 1;
  } else if constexpr (kind == field_kind::optional) {
    return value ? heap_bytes(*value) : 0;
  } else if constexpr (kind == field_kind::sequence) {
    return value.capacity() * sizeof(typename T::value_type) + of_elements(value);
  } else if constexpr (kind == field_kind::fixed_array) {
    return of_elements(value);
  } else if constexpr (kind == field_kind::ordered_map || kind == field_kind::hashed_map) {
    const std::size_t node = sizeof(typename T::value_type) + (kind == field_kind::ordered_map ? 4 : 2) * pointer;
    std::size_t bytes = value.size() * node;
    if constexpr (kind == field_kind::hashed_map) bytes += value.bucket_count() * pointer;
    for (const auto& [key, mapped] : value) bytes += heap_bytes(key) + heap_bytes(mapped);
    return bytes;
  } else {
    return 0;  // numbers, enums, and types hotswap does not look into
  }
}

/// The bytes a state of type `T` holds, itself included: what implementation_table::state_bytes
/// reports.
template <class T>
std::size_t state_bytes(const void* state) noexcept {
  return sizeof(T) + heap_bytes(*static_cast<const T*>(state));
}

}  // namespace hotswap::detail
