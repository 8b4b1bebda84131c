// Which program image this code is compiled into. A module (a shared library built with
// hotswap_add_module, which defines HOTSWAP_MODULE_BUILD) owns no runtime and no schema
// registry: it uses those of the program that loads it, which the code server hands it before
// the module's static initializers run. Whatever would outlive a call into a module's code (a
// thread, a timer, a callback) is made by the program's code, or keeps the module loaded.
#pragma once

#include <memory>

namespace hotswap {
class schema_registry;
namespace detail {
class runtime;

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

}  // namespace detail
}  // namespace hotswap
