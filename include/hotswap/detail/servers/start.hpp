// Starting a server: its core, its hold on the code of its table, its thread (the pool's or its
// own), its name, then init, on the calling thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "../../result.hpp"
#include "../abi/image.hpp"
#include "../abi/implementation_table.hpp"
#include "../common/std_memory.hpp"
#include "../runtime/runtime.hpp"
#include "table_of.hpp"

namespace hotswap {
class any_server;  // hotswap/servers.hpp
template <class Interface>
class server_ref;
}  // namespace hotswap

namespace hotswap::detail {

/// A state made already, which a server starts with instead of its init's (a release restarting
/// a server hands it the state made from the one before), and the hold on the code it may point
/// into.
struct made_state {
  void* state;
  std::shared_ptr<const void> owner;
};

/// Starts a server on `table` (whose interface the caller checked): init runs on this thread,
/// where it is the current server (or, given `made`, the server takes that state and init does
/// not run); then it runs on the pool (or `runs_on`: tests give a manual executor). The core,
/// holding a reference for the caller, or why not (a state made is then the caller's still).
template <class = void>
result<server_core*> start_server(const implementation_table& table, const void* argument, const std::string& name,
                                  bool on_own_thread, std::shared_ptr<const void> table_owner,
                                  void (*bind_owner)(const void* table_owner, server_core& server) noexcept,
                                  executor* runs_on = nullptr, made_state* made = nullptr) {
  runtime& runtime = the_runtime();
  struct reference {  // the caller's, released if the start fails (or throws)
    server_core* core;
    ~reference() {
      if (core) core->release();
    }
  } handle{new server_core(runtime.next_id(), table, runtime.free_core)};
  server_core* const core = handle.core;
  core->acquire();  // the reference for being alive
  if (const server_core* starter = current_server()) core->supervised = starter->starting_child;
  if (!table_owner && building_module) {  // a module's server of its own: leased from it
    const lease_maker& leases = module_leases();
    table_owner = leases.make(pin_this_image());
    bind_owner = leases.bind;
  }
  core->table_owner = std::move(table_owner);
  if (bind_owner) bind_owner(core->table_owner.get(), *core);
  // Marked running (owned by this thread) until init returns: what is sent meanwhile, through
  // the name or from init itself, waits.
  core->run_state.store(server_core::running);
  core->runs_on = runs_on ? runs_on : &runtime.pool;  // another executor: a test's
  outcome initialized;
  if (on_own_thread) {
    // It runs only when scheduled.
    report_failure(initialized, [&] { core->runs_on = runtime.start_own_thread(*core); });
  }
  if (!initialized.failed && !name.empty() && !runtime.register_name(name, *core))
    initialized = {true, "the name " + name + " is already registered"};
  if (!initialized.failed && made) {
    core->state = std::exchange(made->state, nullptr);
    core->state_owner = std::move(made->owner);
  } else if (!initialized.failed) {
    server_core*& current = current_server();
    server_core* const outer = std::exchange(current, core);
    core->state = table.init(argument, initialized);
    current = outer;
  }
  if (!initialized.failed) runtime.track(*core);
  if (initialized.failed) {
    // As if it had ended: what was sent meanwhile fails, monitors hear of it, the name is free.
    end_server(*core, {exit_kind::crashed, initialized.what});
    if (core->own_thread) static_cast<detail::own_thread&>(*core->own_thread).wake();  // to see that it has ended
  }
  std::uint32_t quiet = server_core::running;
  if (core->continuation || !core->run_state.compare_exchange_strong(quiet, server_core::idle))
    core->runs_on->schedule(*core);  // what was sent meanwhile, or init's continuation, on its thread
  if (initialized.failed) return error{errc::init_failed, std::move(initialized.what)};
  return std::exchange(handle.core, nullptr);
}

/// hotswap::start: a server of `Interface` on `table`, and the hold on the table's code it keeps
/// (a module's lease, bound to the server by `bind_owner` before its init runs), on the pool or
/// on `runs_on`.
template <class Interface, class Handle = any_server>
result<server_ref<Interface>> start_as(const implementation_table& table, const void* argument, const std::string& name,
                                       bool on_own_thread, std::shared_ptr<const void> table_owner = {},
                                       void (*bind_owner)(const void* table_owner,
                                                          server_core& server) noexcept = nullptr,
                                       executor* runs_on = nullptr) {
  if (!implements(table, Interface::fingerprint, Interface::vsn))
    return error{errc::wrong_interface, std::string(table.name) + " implements " + describe_interface(table) +
                                            ", not " + std::string(Interface::name) +
                                            (Interface::vsn > 1 ? " version " + std::to_string(Interface::vsn) : "") +
                                            (table.interface_name == Interface::name ? " or a later version" : "")};
  auto started = start_server(table, argument, name, on_own_thread, std::move(table_owner), bind_owner, runs_on);
  if (!started) return started.error();
  return *server_ref<Interface>::from(Handle(*started));
}

}  // namespace hotswap::detail
