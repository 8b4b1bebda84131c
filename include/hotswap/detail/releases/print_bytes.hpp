// A state's size as reports print it (an upgrade's report, a dry run's progress, control's state).
#pragma once

#include <cstddef>
#include <iterator>
#include <string>

#include <fmt/format.h>

namespace hotswap::detail {

/// 512 B, 3.2 KiB, 41.0 MiB: a state's size, as reports print it.
inline std::string print_bytes(std::size_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  for (; value >= 1024 && unit + 1 < std::size(units); ++unit) value /= 1024;
  return fmt::format("{:.1f} {}", value, units[unit]);
}

}  // namespace hotswap::detail
