// Servers on probation after a change of code: a development reload (hotswap::module_watch) or a
// release in its grace period (hotswap::release_handler). One mechanism for both: a guard on each
// server (server_core::on_failure) that, when a handler of the new code throws, puts the server
// back on the version before with its state migrated back, on the server's own thread, before
// the next message; whoever set the guard hears of it, and rolls the rest back.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../result.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../runtime/server_core.hpp"
#include "../servers/code_change.hpp"
#include "../servers/control.hpp"
#include "leases.hpp"

namespace hotswap::detail {

/// A server's handler failed on probation: `failure` is empty if it went back to the version
/// before (`back_vsn`) with its state, else says why it could not (the server then crashes).
struct probation_failure {
  std::uint64_t server;
  std::string label, why, failure;
  int back_vsn;
};

using probation_guard = std::function<bool(server_core& server, const std::string& why)>;

/// The guard that puts a server running `after` back on `before` (module versions: its leases
/// are taken by the server) and tells `told`, on the server's thread; a failure of other code (the
/// server's before it changed: the guard is set before the change, so that none of the new code's
/// handlers runs unguarded) is a crash. `told` must not block.
template <class Module>
probation_guard back_on_failure(std::shared_ptr<const Module> before, std::shared_ptr<const Module> after,
                                std::function<void(const probation_failure&)> told) {
  return [before = std::move(before), after = std::move(after), told = std::move(told)](server_core& core,
                                                                                        const std::string& why) {
    if (core.table != &module_access<Module>::table(*after)) return false;
    auto leased = lease_to_server(before, &core);
    kept_code kept;
    const result<void> moved =
        leased ? swap_code(core, *leased->table, core.table->vsn, {}, std::move(leased->lease), kept)
               : result<void>(leased.error());
    if (moved) kept.commit();
    told({core.id, core.label(), why, moved ? std::string() : moved.error().what, core.table->vsn});
    return moved.has_value();
  };
}

/// Puts `guard` on each of `servers` (an empty guard takes theirs off), each on the server; one
/// that has ended, or does not answer within `timeout`, is left as it is.
template <class Server>
void set_probation(const std::vector<Server>& servers, const probation_guard& guard, std::chrono::nanoseconds timeout) {
  for (const auto& server : servers)
    (void)control<void>(server, timeout, [guard](server_core& core) -> result<void> {
      core.on_failure = guard;
      return {};
    });
}

}  // namespace hotswap::detail
