// The rules for a module's name and its steps' names, which both the note's writer (at compile time) and its reader
// check.
#pragma once

#include <cstddef>
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

/// A step's name (HOTSWAP_MODULE_STEP; a manifest's "apply" names it): letters, digits, '.', '_',
/// '-', not first '.', '_' or '-', at most 64.
constexpr bool valid_step_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '_' || name[0] == '-') return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}
/// The most steps a module exports (its note is read before any of its code runs: bounded).
inline constexpr std::size_t most_module_steps = 64;

}  // namespace hotswap::detail
