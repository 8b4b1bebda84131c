// The rule for a module's name, which both the note's writer (at compile time) and its reader check.
#pragma once

#include <string_view>

namespace hotswap::detail {

/// A module's name: letters, digits, '.', '_', '-' (it names files).
constexpr bool valid_module_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

}  // namespace hotswap::detail
