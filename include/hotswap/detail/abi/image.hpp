// Which program image this code is compiled into. A module (a shared library built with
// hotswap_add_module, which defines HOTSWAP_MODULE_BUILD) owns no runtime and no schema
// registry: it uses those of the program that loads it, which the code server hands it before
// the module's static initializers run.
//
// The idiom this file names, "the program's copy of the code": whatever would outlive a call into
// a module's code (a thread, a timer, a callback, a control block, a freed server) is made or run
// by the program's copy of these headers, reached through function pointers the program fills in
// (the runtime's, the host link's), or it keeps the module loaded (pin_this_image, a lease).
// docs/architecture.md lists where.
#pragma once

#include "../common/std_memory.hpp"

namespace hotswap {
class schema_registry;
namespace detail {
template <class = void>
class basic_runtime;
using runtime = basic_runtime<>;
struct server_core;

#ifdef HOTSWAP_MODULE_BUILD
inline constexpr bool building_module = true;
#else
inline constexpr bool building_module = false;
#endif

/// In a module: the program's runtime and registry, and the module's own loaded version with the
/// program's function that makes a hold on it. (In a program: unused.) Plain data: a module
/// registers no destructor at exit, which glibc would keep a record of after every unload.
struct host_link {
  runtime* runtime_of_host = nullptr;
  schema_registry* registry_of_host = nullptr;
  const void* self = nullptr;
  std::shared_ptr<const void> (*hold_self)(const void* self) noexcept = nullptr;
};
inline host_link module_host{};

/// What keeps this image's code loaded, for whatever it makes that may outlive the call that
/// made it (a timer, a callback, an abandoned reply): nothing in a program, its loaded version
/// in a module. Whatever holds one releases it only after the module's part of it is gone, and
/// never from the module's own code: a module's code always runs under a hold of the program's.
inline std::shared_ptr<const void> pin_this_image() noexcept {
  if constexpr (building_module)
    return module_host.hold_self ? module_host.hold_self(module_host.self) : nullptr;
  else
    return {};
}

/// How the program makes a server's hold on a module (a lease, which lists the server among
/// those running the module's code); a module's servers of its own get one too.
struct lease_maker {
  std::shared_ptr<const void> (*make)(const std::shared_ptr<const void>& version) = nullptr;
  void (*bind)(const void* lease, server_core& server) noexcept = nullptr;
};
inline lease_maker& module_leases() noexcept {
  static lease_maker maker;
  return maker;
}

}  // namespace detail
}  // namespace hotswap
