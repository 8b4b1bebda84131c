// What changes from one struct to another, field by field and by name (hotswap::field_diff).
// Types are told apart by the compiler's spelling of them: comparing the addresses of per-type
// variables is not a constant expression under -fsanitize=address.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <utility>

#include "../common/type_name.hpp"
#include "../reflect/fields.hpp"

namespace hotswap::detail {

template <class T>
inline constexpr auto field_type_ids = []<std::size_t... I>(std::index_sequence<I...>) {
  return std::array<std::string_view, sizeof...(I)>{type_spelling<field_type<T, I>>()...};
}
(std::make_index_sequence<field_count<T>>{});

enum class field_change { added, removed, kept, retyped };

template <class From, class To>
constexpr bool diff_has(std::string_view name, field_change change) {
  const std::size_t in_from = field_index<From>(name), in_to = field_index<To>(name);
  const bool was = in_from < field_count<From>, is = in_to < field_count<To>;
  switch (change) {
    case field_change::added:
      return !was && is;
    case field_change::removed:
      return was && !is;
    case field_change::kept:
      return was && is && field_type_ids<From>[in_from] == field_type_ids<To>[in_to];
    case field_change::retyped:
      return was && is && field_type_ids<From>[in_from] != field_type_ids<To>[in_to];
  }
  return false;
}

/// The names of one kind of change, in the order of the struct that has them.
template <class From, class To, field_change Change>
constexpr auto diff_names() {
  using Listing = std::conditional_t<Change == field_change::removed, From, To>;
  constexpr auto count = [] {
    std::size_t n = 0;
    for (std::string_view name : field_names<Listing>) n += diff_has<From, To>(name, Change);
    return n;
  }();
  std::array<std::string_view, count> names{};
  std::size_t n = 0;
  for (std::string_view name : field_names<Listing>)
    if (diff_has<From, To>(name, Change)) names[n++] = name;
  return names;
}

}  // namespace hotswap::detail
