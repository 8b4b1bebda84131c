// A string usable as a template argument: schema names and field names in declarations.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace hotswap::detail {

template <std::size_t N>
struct fixed_string {
  char chars[N]{};

  constexpr fixed_string(const char (&text)[N]) {  // NOLINT: implicit on purpose, `"name"` is the spelling
    for (std::size_t i = 0; i < N; ++i) chars[i] = text[i];
  }
  constexpr explicit fixed_string(std::string_view text) {
    for (std::size_t i = 0; i + 1 < N && i < text.size(); ++i) chars[i] = text[i];
  }
  constexpr std::string_view view() const { return {chars, N - 1}; }
  constexpr operator std::string_view() const { return view(); }
};

}  // namespace hotswap::detail

namespace hotswap::errors {
/// Names in compile errors, spelled out letter by letter: the one spelling of a string in a
/// template argument that g++ and clang both print readably.
template <char... Letters>
struct schema_named {};
template <char... Letters>
struct field_named {};
template <char... Letters>
struct interface_named {};
}  // namespace hotswap::errors

namespace hotswap::detail {
template <template <char...> class Spelling, fixed_string Text, std::size_t... I>
Spelling<Text.chars[I]...> spell(std::index_sequence<I...>);

/// `spelled<errors::field_named, "stage">` is `errors::field_named<'s', 't', 'a', 'g', 'e'>`.
template <template <char...> class Spelling, fixed_string Text>
using spelled = decltype(spell<Spelling, Text>(std::make_index_sequence<Text.view().size()>{}));
}  // namespace hotswap::detail
