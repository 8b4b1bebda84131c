// What the program finds through a module's one exported symbol, once the module's note has passed
// its checks; and how the module attaches to the program (its static initializers run then).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "image.hpp"
#include "implementation_table.hpp"

// Set by the linker around the static initializers hotswap_add_module moved out of .init_array.
extern "C" {
[[gnu::weak, gnu::visibility("hidden")]] extern void (*const __start_hotswap_init_array[])(int, char**, char**);
[[gnu::weak, gnu::visibility("hidden")]] extern void (*const __stop_hotswap_init_array[])(int, char**, char**);
}

namespace hotswap::detail {

struct version_info;  // schemas/version_info.hpp

inline constexpr std::uint64_t descriptor_magic = 0x3176'6d73'7768'746fULL;  // "othwsmv1"

/// What the program finds through the module's one exported symbol, once the note has passed.
struct module_descriptor {
  std::uint64_t magic;
  const char* note;  // the same text as the section
  const implementation_table* table;
  void (*describe_schemas)(std::vector<version_info>& out);
  /// Links the module to the program (its runtime, its registry, the module's own version and
  /// how the program leases it to servers), then runs the module's static initializers (which
  /// hotswap_add_module's link script defers to here); false, with what one of them threw.
  bool (*attach)(const host_link& host, const lease_maker& leases, std::string& failure) noexcept;
};

template <class Implementation>
bool attach_module(const host_link& host, const lease_maker& leases, std::string& failure) noexcept {
  module_host = host;
  module_leases() = leases;
  try {
    for (auto* run = __start_hotswap_init_array; run != __stop_hotswap_init_array; ++run) (*run)(0, nullptr, environ);
    return true;
  } catch (const std::exception& thrown) {
    failure = thrown.what();
  } catch (...) {
    failure = "an exception not derived from std::exception";
  }
  return false;
}

}  // namespace hotswap::detail
