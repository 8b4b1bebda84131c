// Text built at compile time: a sink that counts, then one that writes into an array of that size
// (schema descriptions, module notes).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hotswap::detail {

struct length_sink {
  std::size_t size = 0;
  constexpr void put(std::string_view text) { size += text.size(); }
};

template <std::size_t N>
struct chars_sink {
  std::array<char, N> chars{};
  std::size_t size = 0;
  constexpr void put(std::string_view text) {
    for (char c : text) chars[size++] = c;
  }
};

template <class Sink>
constexpr void put_number(Sink& sink, std::size_t value) {
  char digits[20]{};
  std::size_t n = 0;
  do digits[n++] = static_cast<char>('0' + value % 10);
  while ((value /= 10) != 0);
  while (n > 0) sink.put(std::string_view(&digits[--n], 1));
}

inline constexpr std::string_view hex_digits = "0123456789abcdef";

template <class Sink>
constexpr void put_hex(Sink& sink, std::uint64_t value) {
  for (int shift = 60; shift >= 0; shift -= 4) sink.put(hex_digits.substr((value >> shift) & 0xF, 1));
}

}  // namespace hotswap::detail
