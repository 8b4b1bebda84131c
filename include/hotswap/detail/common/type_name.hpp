// The one reader of type names: the compiler's own spelling of a type, read from
// __PRETTY_FUNCTION__ at compile time. Spellings differ between compilers, so they name types in
// messages and tell types apart within a build; fingerprints use canonical descriptions instead.
#pragma once

#include <string_view>

namespace hotswap::detail {

/// `T` as this compiler spells it (`v2::Account`, `std::vector<int>`).
template <class T>
constexpr std::string_view type_spelling() {
  constexpr std::string_view text = __PRETTY_FUNCTION__;
  constexpr std::string_view gcc_start = "[with T = ", clang_start = "[T = ";
  if constexpr (text.find(gcc_start) != std::string_view::npos) {
    constexpr auto from = text.find(gcc_start) + gcc_start.size();
    return text.substr(from, text.find(';', from) - from);
  } else {
    constexpr auto from = text.find(clang_start) + clang_start.size();
    return text.substr(from, text.rfind(']') - from);
  }
}
static_assert(type_spelling<int>() == "int", "hotswap: cannot read type names from this compiler's signatures");

}  // namespace hotswap::detail
