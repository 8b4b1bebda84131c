// Values printed as Elixir's `inspect` prints them: `%Account{name: "Alice", score: 3, stage: 1}`.
//
// Opt in per schema, so that the formatter never competes with fmt's own for other aggregates:
//
//     template <> inline constexpr bool hotswap::enable_inspect<AccountSchema> = true;
//     fmt::print("{}\n", account);   // %Account{name: nil, score: 0, stage: 0}
#pragma once

#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/core.h>

#include "detail/schemas/inspect.hpp"
#include "schemas.hpp"

namespace hotswap {

// -- inspect --

// hotswap::enable_inspect<Schema>: declared in detail/schemas/inspect.hpp, beside what it enables.

/// A version of a schema that opted in to inspect formatting.
template <class T>
concept inspectable = versioned<T> && enable_inspect<typename schema_of<T>::schema_type>;

/// `value` as Elixir's inspect would print it.
template <class T>
std::string inspect(const T& value) {
  std::string text;
  detail::inspect_to(std::back_inserter(text), value);
  return text;
}

}  // namespace hotswap

template <hotswap::inspectable T>
struct fmt::formatter<T, char> {
  constexpr auto parse(format_parse_context& context) { return context.begin(); }
  template <class FormatContext>
  auto format(const T& value, FormatContext& context) const {
    return hotswap::detail::inspect_to(context.out(), value);
  }
};
