// Changing a server's code (sys::change_code): the new table makes its state from the old one,
// keeping the old state and table if it fails; the server's hold on the new table's code.
#pragma once

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

template <class Handle>
result<void> change_code_request(const Handle& server, const implementation_table& table, int old_vsn,
                                 std::chrono::nanoseconds timeout, std::shared_ptr<const void> table_owner,
                                 extra_ref extra, std::shared_ptr<const void> extra_owner) {
  if (!table_owner && building_module) {  // a module's own table: the server gets a lease of it
    const lease_maker& leases = module_leases();
    table_owner = leases.make(pin_this_image());
    leases.bind(table_owner.get(), *server.core());
  }
  return control<void>(
      server, timeout,
      [&table, old_vsn, extra, owner = std::move(table_owner),
       extra_owner = std::move(extra_owner)](server_core& core) mutable -> result<void> {
        const implementation_table& old = *core.table;
        if (!core.suspended) return error{errc::not_suspended, "suspend the server first"};
        if (table.interface_fingerprint != old.interface_fingerprint)
          return error{errc::wrong_interface, std::string(table.name) + " implements " +
                                                  std::string(table.interface_name) + ", the server " +
                                                  std::string(old.interface_name)};
        if (old_vsn != old.vsn)
          return error{errc::wrong_vsn, "the server runs vsn " + std::to_string(old.vsn) + " (" +
                                            std::string(old.name) + "), not vsn " + std::to_string(old_vsn)};
        outcome changed;
        void* state = table.code_change(core.state, old.state_fingerprint, old_vsn, extra, changed);
        if (changed.failed) return error{errc::code_change_failed, std::move(changed.what)};
        if (state != core.state) old.destroy(core.state);
        // A state that is not plain data may point into the code that made or copied it (and
        // so may one made from it): that code stays loaded while the state lives.
        if (old.state_is_plain_data || table.state_is_plain_data)
          core.state_owner.reset();
        else
          core.state_owner = the_runtime().hold_both(std::move(core.state_owner), core.table_owner);
        core.state = state;
        core.table = &table;
        core.table_owner = std::move(owner);  // the old code may be unloaded once nothing else holds it
        return {};
      });
}

}  // namespace hotswap::detail
