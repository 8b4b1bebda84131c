// Changing a server's code (sys::change_code): the new table makes its state from the old one,
// keeping the old state and table if it fails; the server's hold on the new table's code.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "../../result.hpp"
#include "../abi/image.hpp"
#include "../abi/implementation_table.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../common/type_name.hpp"
#include "../runtime/runtime.hpp"
#include "control.hpp"
#include "interface.hpp"

namespace hotswap::detail {

/// A copy of code_change's `extra` (the request may outlive the wait), and a reference to it.
template <class Extra>
std::pair<extra_ref, std::shared_ptr<const void>> keep_extra(const Extra& extra) {
  auto kept = std::make_shared<const Extra>(extra);
  return {extra_ref{kept.get(), value_fingerprint<Extra>, type_spelling<Extra>()}, std::move(kept)};
}

/// What a server ran before a change not yet committed: its table and state, alive, and their
/// holds on their code. A change is switched, then committed or reverted, all while the server is
/// suspended, so that a release can put every server back as it was (the same state object) when
/// any of them fails.
/// Whoever lets go of it last ends the change for good.
struct kept_code {
  const implementation_table* table = nullptr;  // null: nothing kept
  void* state = nullptr;
  bool handed_on = false;  // the new table took the state as it is: one object, not two
  std::shared_ptr<const void> table_owner, state_owner;

  kept_code() = default;
  kept_code(const kept_code&) = delete;
  kept_code& operator=(const kept_code&) = delete;
  ~kept_code() { commit(); }
  /// The old state goes (by its own table's code, still held), then the holds on the old code.
  void commit() noexcept {
    if (table && !handed_on) table->destroy(state);
    table = nullptr;
    state_owner.reset();
    table_owner.reset();  // the old code may be unloaded once nothing else holds it
  }
};

/// Whether the server, running vsn `old_vsn`, can take `table`.
template <class = void>
result<void> check_change(const server_core& core, const implementation_table& table, int old_vsn) {
  const implementation_table& old = *core.table;
  if (!same_interface_line(table, old))
    return error{
        errc::wrong_interface,
        std::string(table.name) + " implements " + describe_interface(table) + ", the server " +
            describe_interface(old) +
            (table.interface_name == old.interface_name ? ": neither is a declared later version of the other" : "")};
  if (old_vsn != old.vsn)
    return error{errc::wrong_vsn, "the server runs vsn " + std::to_string(old.vsn) + " (" + std::string(old.name) +
                                      "), not vsn " + std::to_string(old_vsn)};
  return {};
}

/// The state the server would run `table` with, made from its own (left intact): by the server's
/// code going down to an older vsn's state when it can and no extra is given (Erlang's
/// code_change({down, Vsn})), else by `table`'s code_change. The server's own state when it is
/// handed on as it is.
inline void* make_state(server_core& core, const implementation_table& table, int old_vsn, const extra_ref& extra,
                        outcome& changed) noexcept {
  const implementation_table& old = *core.table;
  if (table.vsn < old.vsn && !extra.value)
    if (void* state = old.down(core.state, table.vsn, table.state_fingerprint, changed); state || changed.failed)
      return state;
  return table.code_change(core.state, old.state_fingerprint, old_vsn, extra, changed);
}

/// What a dry run of a change of code found: how long the state took to make, and its bytes.
struct tried_code {
  std::chrono::nanoseconds time;
  std::size_t state_bytes;
};

/// On the server, between its messages: the state `table` would make from the server's, made,
/// timed, measured and thrown away (a release's dry run). Nothing of the server changes.
template <class = void>
result<tried_code> try_code(server_core& core, const implementation_table& table, int old_vsn) {
  if (auto fits = check_change(core, table, old_vsn); !fits) return fits.error();
  outcome changed;
  const auto started = std::chrono::steady_clock::now();
  void* state = make_state(core, table, old_vsn, {}, changed);
  const auto took = std::chrono::steady_clock::now() - started;
  if (changed.failed) return error{errc::code_change_failed, std::move(changed.what)};
  const std::size_t bytes = table.state_bytes(state);
  if (state != core.state) table.destroy(state);  // (one handed on is the server's own)
  return tried_code{took, bytes};
}

/// On the server, between its messages: switches it to `table`, with a state made from the old
/// one (which is kept, with the old table, in `kept`). On failure nothing changed.
template <class = void>
result<void> swap_code(server_core& core, const implementation_table& table, int old_vsn, const extra_ref& extra,
                       std::shared_ptr<const void> owner, kept_code& kept) {
  const implementation_table& old = *core.table;
  if (auto fits = check_change(core, table, old_vsn); !fits) return fits.error();
  outcome changed;
  void* state = make_state(core, table, old_vsn, extra, changed);
  if (changed.failed) return error{errc::code_change_failed, std::move(changed.what)};
  kept.commit();  // (empty: nothing to end)
  kept.table = &old;
  kept.state = core.state;
  kept.handed_on = state == core.state;
  kept.table_owner = core.table_owner;
  kept.state_owner = core.state_owner;
  // A state that is not plain data may point into the code that made or copied it (and so may
  // one made from it): that code stays loaded while the state lives.
  if (old.state_is_plain_data || table.state_is_plain_data)
    core.state_owner.reset();
  else
    core.state_owner = the_runtime().hold_both(core.state_owner, core.table_owner);
  core.state = state;
  core.table = &table;
  core.set_interface(table);
  core.table_owner = std::move(owner);
  return {};
}

/// The same, on a suspended server only (sys::change_code, a release's transaction).
template <class = void>
result<void> switch_code(server_core& core, const implementation_table& table, int old_vsn, const extra_ref& extra,
                         std::shared_ptr<const void> owner, kept_code& kept) {
  if (!core.suspended) return error{errc::not_suspended, "suspend the server first"};
  return swap_code(core, table, old_vsn, extra, std::move(owner), kept);
}

/// On the suspended server: undoes a switch. The new state goes, the old table and state are
/// back, as they were.
inline void revert_code(server_core& core, kept_code& kept) noexcept {
  if (!kept.handed_on) core.table->destroy(core.state);
  core.table = kept.table;
  core.set_interface(*kept.table);
  core.state = kept.state;
  core.table_owner = std::move(kept.table_owner);
  core.state_owner = std::move(kept.state_owner);
  kept.table = nullptr;
}

/// A module's own table: the server gets a lease of it (abi/image.hpp).
template <class = void>
std::shared_ptr<const void> own_table_owner(server_core& server) {
  const lease_maker& leases = module_leases();
  std::shared_ptr<const void> owner = leases.make(pin_this_image());
  leases.bind(owner.get(), server);
  return owner;
}

/// sys::change_code: switch and commit in one request.
template <class Handle>
result<void> change_code_request(const Handle& server, const implementation_table& table, int old_vsn,
                                 std::chrono::nanoseconds timeout, std::shared_ptr<const void> table_owner,
                                 extra_ref extra, std::shared_ptr<const void> extra_owner) {
  if (!table_owner && building_module) table_owner = own_table_owner(*server.core());
  return control<void>(server, timeout,
                       [&table, old_vsn, extra, owner = std::move(table_owner),
                        extra_owner = std::move(extra_owner)](server_core& core) mutable -> result<void> {
                         kept_code kept;
                         auto switched = switch_code(core, table, old_vsn, extra, std::move(owner), kept);
                         if (switched) kept.commit();
                         return switched;
                       });
}

}  // namespace hotswap::detail
