// What the program finds through a module's one exported symbol, once the module's note has passed
// its checks; and how the module attaches to the program (its static initializers run then).
#pragma once

#include <unistd.h>

#include <cstddef>
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

inline constexpr std::uint64_t descriptor_magic = 0x3276'6d73'7768'746fULL;  // "othwsmv2"

/// A function of the module that a release runs at a named point of its upgrade
/// (HOTSWAP_MODULE_STEP; OTP's {apply, {M, F, A}}): its name, as the note lists it, and its run,
/// which says in `result` what failed (nothing it throws leaves the module).
struct module_step {
  const char* name;
  void (*run)(outcome& result) noexcept;
};

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
  /// The module's steps, `count` of them from the one returned (none: null): the entries each
  /// HOTSWAP_MODULE_STEP puts in its hotswap_steps section, wherever in the module it is.
  const module_step* (*steps)(std::size_t& count) noexcept;
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

// Set by the linker around the module's hotswap_steps section, if it has one (else null).
extern "C" {
[[gnu::weak, gnu::visibility("hidden")]] extern const hotswap::detail::module_step __start_hotswap_steps[];
[[gnu::weak, gnu::visibility("hidden")]] extern const hotswap::detail::module_step __stop_hotswap_steps[];
}

namespace hotswap::detail {

/// The module's steps (a template, so that it is compiled into the module and finds its own).
template <class Implementation>
const module_step* module_steps(std::size_t& count) noexcept {
  count = static_cast<std::size_t>(__stop_hotswap_steps - __start_hotswap_steps);  // (both null: none)
  return count ? __start_hotswap_steps : nullptr;
}

}  // namespace hotswap::detail
