// Printing values as Elixir's inspect does (hotswap/inspect.hpp): structs as %Name{field: value},
// strings quoted and escaped (or as bytes), maps in key order, floats with a fraction.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

#include "../../result.hpp"
#include "../common/std_memory.hpp"
#include "../common/utf8.hpp"
#include "../reflect/fields.hpp"
#include "field_kinds.hpp"

namespace hotswap {

/// Set to true for a schema to make fmt print its versions as Elixir's inspect does
/// (hotswap/inspect.hpp); a server's state is then printed so too (hotswapctl state).
template <class Schema>
inline constexpr bool enable_inspect = false;

}  // namespace hotswap

namespace hotswap::detail {

/// Whether Elixir's String.printable? holds: UTF-8 of printable characters only (\a to \r, \e,
/// space to DEL, and U+00A0 on but for surrogates, U+FFFE and U+FFFF). Inspect prints a string so
/// quoted, any other binary as its bytes.
template <class = void>
bool elixir_printable(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const std::int32_t c = next_code_point(text, at);
    if (!((c >= 7 && c <= 13) || c == 27 || (c >= 32 && c <= 127) || (c >= 0xA0 && c <= 0xD7FF) ||
          (c >= 0xE000 && c <= 0xFFFD) || c >= 0x10000))
      return false;
  }
  return true;
}

/// A string as Elixir's inspect prints it (Inspect for BitString, Code.Identifier.escape): quoted,
/// its control characters escaped, when printable; else its bytes, <<104, 105, 0>>. No control
/// byte is ever written as it is.
template <class Out>
Out inspect_string(Out out, std::string_view text) {
  if (!elixir_printable(text)) {
    out = write_text(out, "<<");
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (i > 0) out = write_text(out, ", ");
      out = write_text(out, fmt::format("{}", static_cast<unsigned char>(text[i])));
    }
    return write_text(out, ">>");
  }
  *out++ = '"';
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t start = at;
    switch (next_code_point(text, at)) {  // a code point: the text is printable
      case '"':
        out = write_text(out, "\\\"");
        break;
      case '\\':
        out = write_text(out, "\\\\");
        break;
      case '#':  // "#{" escaped: no interpolation when pasted back
        if (at < text.size() && text[at] == '{') {
          out = write_text(out, "\\#{");
          ++at;
        } else {
          *out++ = '#';
        }
        break;
      case '\a':
        out = write_text(out, "\\a");
        break;
      case '\b':
        out = write_text(out, "\\b");
        break;
      case 0x7f:
        out = write_text(out, "\\d");
        break;
      case 0x1b:
        out = write_text(out, "\\e");
        break;
      case '\f':
        out = write_text(out, "\\f");
        break;
      case '\n':
        out = write_text(out, "\\n");
        break;
      case '\r':
        out = write_text(out, "\\r");
        break;
      case '\t':
        out = write_text(out, "\\t");
        break;
      case '\v':
        out = write_text(out, "\\v");
        break;
      case 0xFEFF:  // a byte order mark, invisible
        out = write_text(out, "\\uFEFF");
        break;
      default:
        out = write_text(out, text.substr(start, at - start));
    }
  }
  *out++ = '"';
  return out;
}

/// Elixir writes floats with a fraction and a bare exponent: 1.0, 0.1, 1.0e20, 1.5e-7.
template <class Out>
Out inspect_float(Out out, double value) {
  const std::string text = fmt::format("{}", value);
  if (text.find_first_of("in") != std::string::npos) return write_text(out, text);  // inf, nan
  const std::size_t e = text.find('e') == std::string::npos ? text.size() : text.find('e');
  std::string_view mantissa(text.data(), e), exponent(text.data() + e, text.size() - e);
  const bool negative = exponent.size() > 1 && exponent[1] == '-';
  const std::size_t digits = exponent.find_first_not_of("e+-0");
  exponent = digits == std::string_view::npos ? std::string_view() : exponent.substr(digits);
  out = write_text(out, mantissa);
  if (mantissa.find('.') == std::string_view::npos) out = write_text(out, ".0");
  if (e < text.size()) out = write_text(out, negative ? "e-" : "e");
  return write_text(out, exponent);
}

template <class Out, class T>
Out inspect_to(Out out, const T& value);

template <class Out, class Range>
Out inspect_list(Out out, const Range& range) {
  *out++ = '[';
  bool first = true;
  for (const auto& element : range) {
    if (!first) out = write_text(out, ", ");
    first = false;
    out = inspect_to(out, element);
  }
  *out++ = ']';
  return out;
}

/// Maps print with their keys in order, as Elixir prints small maps.
template <class Out, class Map>
Out inspect_map(Out out, const Map& map) {
  const std::size_t size = map.size();
  auto entries = std::make_unique<const typename Map::value_type*[]>(size);
  std::size_t n = 0;
  for (const auto& entry : map) {  // insertion sort: a hash map is printed in key order too
    std::size_t at = n++;
    for (; at > 0 && entry.first < entries[at - 1]->first; --at) entries[at] = entries[at - 1];
    entries[at] = &entry;
  }
  out = write_text(out, "%{");
  for (std::size_t i = 0; i < size; ++i) {
    const auto* entry = entries[i];
    if (i > 0) out = write_text(out, ", ");
    out = inspect_to(out, entry->first);
    out = write_text(out, " => ");
    out = inspect_to(out, entry->second);
  }
  *out++ = '}';
  return out;
}

/// A type inspect prints as its label alone, whatever it holds: a hotswap::secret, a reply
/// handle.
template <class T>
concept shown_as_label = requires {
  { T::inspect_label } -> std::convertible_to<std::string_view>;
};

template <class Out, class T>
Out inspect_to(Out out, const T& value) {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (shown_as_label<T>) {
    return write_text(out, T::inspect_label);
  } else if constexpr (kind == field_kind::version) {
    out = write_text(write_text(out, "%"), schema_of<T>::name);
    *out++ = '{';
    auto members = fields(value);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((out = write_text(write_text(write_text(out, I == 0 ? "" : ", "), field_names<T>[I]), ": "),
        out = inspect_to(out, member<I>(members))),
       ...);
    }
    (std::make_index_sequence<field_count<T>>{});
    *out++ = '}';
    return out;
  } else if constexpr (kind == field_kind::boolean) {
    return write_text(out, value ? "true" : "false");
  } else if constexpr (kind == field_kind::floating) {
    return inspect_float(out, static_cast<double>(value));
  } else if constexpr (kind == field_kind::character || kind == field_kind::integer) {
    return write_text(out, fmt::format("{}", +value));  // a char is a number in Elixir
  } else if constexpr (kind == field_kind::enumeration) {
    return write_text(out, fmt::format("{}", static_cast<std::underlying_type_t<T>>(value)));
  } else if constexpr (kind == field_kind::string) {
    return inspect_string(out, value);
  } else if constexpr (kind == field_kind::optional) {
    return value ? inspect_to(out, *value) : write_text(out, "nil");
  } else if constexpr (kind == field_kind::ordered_map || kind == field_kind::hashed_map) {
    return inspect_map(out, value);
  } else if constexpr (kind == field_kind::sequence || kind == field_kind::fixed_array) {
    return inspect_list(out, value);
  } else {
    // Beyond the field types: what prints as a string, a range, or by fmt.
    static_assert(kind == field_kind::other, "hotswap: a field kind inspect does not print");
    if constexpr (std::is_convertible_v<const T&, std::string_view>)
      return inspect_string(out, value);
    else if constexpr (requires {
                         std::begin(value);
                         std::end(value);
                       })
      return inspect_list(out, value);
    else
      return write_text(out, fmt::format("{}", value));
  }
}

/// Whether inspect prints a `T` as its schemas ask: numbers, strings, containers of them, and
/// versions of schemas that enabled inspect (whose fields are all so too).
template <class T>
constexpr bool inspect_enabled() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (is_scalar(kind) || shown_as_label<T>)
    return true;
  else if constexpr (kind == field_kind::version)
    return enable_inspect<typename schema_of<T>::schema_type>&&[]<std::size_t... I>(std::index_sequence<I...>) {
      return (inspect_enabled<field_type<T, I>>() && ...);
    }
  (std::make_index_sequence<field_count<T>>{});
  else if constexpr (kind != field_kind::other) return all_held<T>(
      []<class H>(std::type_identity<H>) { return inspect_enabled<H>(); });
  else return false;
}

/// A state of type `T` printed into `out` (up to `size` bytes); the size of all of it
/// (implementation_table::inspect_state). Out of memory, it prints what it could.
template <class T>
std::size_t inspect_state(const void* state, char* out, std::size_t size) noexcept {
  struct bounded_out {  // writes the first `size` characters, counts them all
    char* out;
    std::size_t size;
    std::size_t* count;
    bounded_out& operator*() { return *this; }
    bounded_out& operator++() { return *this; }
    bounded_out operator++(int) { return *this; }
    bounded_out& operator=(char c) {
      if (*count < size) out[*count] = c;
      ++*count;
      return *this;
    }
  };
  std::size_t count = 0;
  try {
    inspect_to(bounded_out{out, size, &count}, *static_cast<const T*>(state));
  } catch (...) {  // out of memory for a number's text: what was printed stands
  }
  return count;
}

/// Null when `T`'s schemas did not enable inspect.
template <class T>
constexpr auto inspect_state_of() -> std::size_t (*)(const void*, char*, std::size_t) noexcept {
  if constexpr (inspect_enabled<T>())
    return &inspect_state<T>;
  else
    return nullptr;
}

}  // namespace hotswap::detail
