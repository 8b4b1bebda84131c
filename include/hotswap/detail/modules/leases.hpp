// Leases: a server's hold on the module whose code it runs (its table's, or its state's). A lease
// lists the server among the module's servers, and keeps the module loaded while the server holds
// it. Templates on the module type, which hotswap/modules.hpp defines (module_version).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "../../result.hpp"
#include "../abi/image.hpp"
#include "../abi/implementation_table.hpp"
#include "../common/spin_lock.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "../runtime/server_core.hpp"
#include "../servers/table_of.hpp"

namespace hotswap::detail {

template <class Module>
struct lease {
  std::shared_ptr<const Module> code;
  server_core* server = nullptr;  // bound before the server's init runs

  explicit lease(std::shared_ptr<const Module> of) : code(std::move(of)) {
    const spin_guard hold(code->lock_);
    code->leases_.push_back(this);
  }
  ~lease() {
    const spin_guard hold(code->lock_);
    std::erase(code->leases_, this);
  }
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  void bind(server_core& running) noexcept {
    const spin_guard hold(code->lock_);
    server = &running;
  }
};

template <class Module>
std::shared_ptr<const void> make_lease(const std::shared_ptr<const void>& version) {
  return version ? std::make_shared<lease<Module>>(std::static_pointer_cast<const Module>(version)) : nullptr;
}
template <class Module>
void bind_lease(const void* held, server_core& server) noexcept {
  if (held) static_cast<lease<Module>*>(const_cast<void*>(held))->bind(server);
}
/// How the program leases a module to servers (a module's own servers get theirs through it).
template <class Module>
inline constexpr lease_maker leases_of{&make_lease<Module>, &bind_lease<Module>};

/// A module's table, reached only to lease it.
template <class Module>
struct module_access {
  static const implementation_table& table(const Module& version) noexcept { return *version.table_; }
};

/// A module's table with a lease on the module, not yet bound to a server.
struct leased_table {
  const implementation_table* table;
  std::shared_ptr<const void> lease;
};

/// The table of `code` for a server whose init takes `Argument` (void: none), leased.
template <class Argument, class Module>
result<leased_table> lease_to_start(const std::shared_ptr<const Module>& code) {
  if (!code) return error{errc::no_module, "no module given"};
  const implementation_table& table = module_access<Module>::table(*code);
  if (table.init_argument_fingerprint != argument_fingerprint<Argument>)
    return error{errc::wrong_argument, code->implementation() + " (module " + code->name() + ") takes " +
                                           std::string(table.init_argument_type) + " in init, not " +
                                           std::string(argument_spelling<Argument>)};
  return leased_table{&table, make_lease<Module>(code)};
}

/// The table of `code` for a running server, leased and bound to it.
template <class Module>
result<leased_table> lease_to_server(const std::shared_ptr<const Module>& code, server_core* server) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (!code) return error{errc::no_module, "no module given"};
  leased_table leased{&module_access<Module>::table(*code), make_lease<Module>(code)};
  bind_lease<Module>(leased.lease.get(), *server);
  return leased;
}

/// A reference to `server` unless it is already being freed.
inline bool try_acquire(server_core& server) noexcept {
  std::uint32_t count = server.references.load(std::memory_order_relaxed);
  while (count != 0)
    if (server.references.compare_exchange_weak(count, count + 1, std::memory_order_acq_rel)) return true;
  return false;
}

}  // namespace hotswap::detail
