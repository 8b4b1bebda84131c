// Reading UTF-8 one code point at a time, strictly: what inspect prints as a string, and what
// hotswapctl shows of what a program sent, depend on which bytes are characters; and text from
// outside made safe to show on a terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hotswap::detail {

/// The code point whose UTF-8 sequence starts at `text[at]` (at < text.size()), `at` moved past
/// it; -1, `at` unmoved, when no valid sequence starts there. Valid as Erlang's `<<c::utf8>>`
/// match takes it: the shortest form, no surrogate, at most U+10FFFF.
constexpr std::int32_t next_code_point(std::string_view text, std::size_t& at) noexcept {
  const auto byte = [&](std::size_t i) -> std::uint32_t { return static_cast<unsigned char>(text[i]); };
  const std::uint32_t first = byte(at);
  if (first < 0x80) return static_cast<std::int32_t>(text[at++]);
  std::size_t length = 0;
  std::uint32_t point = 0, least = 0;
  if ((first & 0xE0) == 0xC0)
    length = 2, point = first & 0x1F, least = 0x80;
  else if ((first & 0xF0) == 0xE0)
    length = 3, point = first & 0x0F, least = 0x800;
  else if ((first & 0xF8) == 0xF0)
    length = 4, point = first & 0x07, least = 0x10000;
  else
    return -1;
  if (text.size() - at < length) return -1;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) return -1;
    point = point << 6 | (byte(at + i) & 0x3F);
  }
  if (point < least || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) return -1;
  at += length;
  return static_cast<std::int32_t>(point);
}

/// `text` made safe to show on a terminal: what a program sent, a file name or an exception's
/// message could clear the screen or fake lines. Control characters (C0 but, with `newlines`, \n
/// and \t; and DEL) are shown as \xNN, C1 characters as \u00NN, bytes that are not UTF-8 as
/// \xNN; the rest as it is. At most `limit` bytes of `text` are shown, then `...`.
template <class = void>
std::string visible(std::string_view text, bool newlines = true, std::size_t limit = std::string_view::npos) {
  constexpr std::string_view hex = "0123456789abcdef";
  std::string shown;
  shown.reserve(text.size() < limit ? text.size() : limit);
  for (std::size_t at = 0; at < text.size();) {
    if (at >= limit) {
      shown += "...";
      break;
    }
    const std::size_t start = at;
    const std::int32_t c = next_code_point(text, at);
    const auto escaped = [&](std::string_view prefix, unsigned value) {
      shown += prefix;
      shown += hex[(value >> 4) & 0xF];
      shown += hex[value & 0xF];
    };
    if (c < 0)
      escaped("\\x", static_cast<unsigned char>(text[at++]));
    else if ((c < 0x20 && !(newlines && (c == '\n' || c == '\t'))) || c == 0x7f)
      escaped("\\x", static_cast<unsigned>(c));
    else if (c >= 0x80 && c <= 0x9f)
      escaped("\\u00", static_cast<unsigned>(c));
    else
      shown.append(text, start, at - start);
  }
  return shown;
}

}  // namespace hotswap::detail
