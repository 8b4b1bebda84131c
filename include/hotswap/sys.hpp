// Erlang's sys module: control requests a server serves between two messages, ahead of the
// messages waiting (they travel in a lane of their own), and while it is suspended. A hot code
// change is
//
//     hotswap::sys::suspend(server);                                        // messages now wait
//     hotswap::sys::change_code(server, hotswap::table_of<CounterV2>, 1);  // state migrates
//     hotswap::sys::resume(server);                                         // the waiting ones run, in order
//
// Each request waits for its answer at most its timeout and reports failure as a result.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "detail/abi/trace_event.hpp"
#include "detail/common/std_memory.hpp"
#include "detail/common/std_parts.hpp"
#include "detail/servers/code_change.hpp"
#include "servers.hpp"

namespace hotswap {

/// One message going into or out of a server, as sys::trace reports it.
using trace_event = detail::trace_event;
/// A trace hook as sys::trace replaced it, with what keeps its code loaded: given back to
/// sys::trace, it is in place again.
using trace_hook = detail::trace_hook;

}  // namespace hotswap

namespace hotswap::sys {

// -- suspending --

/// After the message being handled, normal messages wait in the mailbox, in order, until resume;
/// sys requests are still served. (Messages already queued wait too: to have your own casts
/// handled first, make a call before.)
result<void> suspend(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(server, timeout, [](detail::server_core& core) -> result<void> {
    core.suspended = true;
    return {};
  });
}

/// Handles what waited, in order, then carries on.
result<void> resume(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(server, timeout, [](detail::server_core& core) -> result<void> {
    core.suspended = false;
    return {};
  });
}

// -- changing code and state --

/// Switches a suspended server to `table`, which makes its state from the old one (through its
/// code_change or the generated migration). `old_vsn` is the vsn the server runs, as in
/// Erlang. On any failure the server keeps its old state and table, and goes on serving.
result<void> change_code(const server_handle auto& server, const implementation_table& table, int old_vsn,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return detail::change_code_request(server, table, old_vsn, timeout, {}, {}, {});
}

/// change_code passing `extra` to code_change (a copy: the request may outlive the wait). A
/// duration is never an extra: `change_code(server, table, 1, 2s)` is the timeout.
template <class Extra>
requires(!detail::is_instance_of<std::chrono::duration, Extra>) result<void> change_code(
    const server_handle auto& server, const implementation_table& table, int old_vsn, const Extra& extra,
    std::chrono::nanoseconds timeout = default_timeout) {
  auto [reference, kept] = detail::keep_extra(extra);
  return detail::change_code_request(server, table, old_vsn, timeout, {}, reference, std::move(kept));
}

/// A copy of the server's state, if it is a `State`.
template <class State>
result<State> get_state(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<State>(server, timeout, [](detail::server_core& core) -> result<State> {
    if (core.table->state_fingerprint != detail::value_fingerprint<State>)
      return error{errc::wrong_state_type, "the state is a " + std::string(core.table->state_type)};
    return *static_cast<const State*>(core.state);
  });
}

/// Applies `change(State&)` to a copy of the state, which then replaces it: if change throws,
/// the state is as it was.
template <class State, class Change>
result<void> replace_state(const server_handle auto& server, Change change,
                           std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(
      server, timeout, [change = std::move(change)](detail::server_core& core) mutable -> result<void> {
        if (core.table->state_fingerprint != detail::value_fingerprint<State>)
          return error{errc::wrong_state_type, "the state is a " + std::string(core.table->state_type)};
        State& current = *static_cast<State*>(core.state);
        State changed = current;
        try {
          change(changed);
        } catch (const std::exception& thrown) {
          return error{errc::handler_failed, thrown.what()};
        }
        current = std::move(changed);
        return {};
      });
}

// -- observing --

/// What sys::get_status reports.
struct status {
  std::uint64_t id;
  std::string name;            ///< registered name (empty: none)
  std::string interface;       ///< the interface's name
  std::string implementation;  ///< the implementation type running
  int vsn;
  bool suspended;
  std::size_t mailbox_length;  ///< messages waiting, including those held while suspended
  std::uint64_t state_fingerprint;
  std::uint64_t slow_handlers;  ///< handlers that held a pool worker over 4 ms (see statistics)
};

result<status> get_status(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<status>(server, timeout, [](detail::server_core& core) -> result<status> {
    std::string name;
    {
      const detail::spin_guard hold(core.exit_lock);
      name = core.name;
    }
    return status{core.id,
                  std::move(name),
                  std::string(core.table->interface_name),
                  std::string(core.table->name),
                  core.table->vsn,
                  core.suspended,
                  core.inbox.size(),
                  core.table->state_fingerprint,
                  core.slow_handlers};
  });
}

/// What sys::statistics reports.
struct statistics_report {
  std::uint64_t messages_handled;             ///< since the server started
  std::chrono::nanoseconds time_in_handlers;  ///< while timing was on
  bool timing;
  /// Handlers that held a pool worker over 4 ms (the pool added a worker for each if other
  /// servers were waiting), and the longest of them: its message, and how long it ran at least.
  std::uint64_t slow_handlers;
  std::string slowest_message;
  std::chrono::nanoseconds slowest_handler;
};

/// Turns the timing of handlers on or off (off at start: it costs two clock reads a message).
result<void> statistics(const server_handle auto& server, bool timing,
                        std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(server, timeout, [timing](detail::server_core& core) -> result<void> {
    core.timing = timing;
    return {};
  });
}

result<statistics_report> statistics(const server_handle auto& server,
                                     std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<statistics_report>(
      server, timeout, [](detail::server_core& core) -> result<statistics_report> {
        return statistics_report{core.handled,       core.time_in_handlers, core.timing,
                                 core.slow_handlers, core.slowest_message,  core.slowest_handler};
      });
}

/// Puts `hook` (with what keeps its code loaded) in place of the server's trace hook, and hands
/// back the one it replaced: what sys::trace returns, to be put back later by this.
result<trace_hook> trace(const server_handle auto& server, trace_hook hook,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<trace_hook>(server, timeout,
                                     [hook = std::move(hook)](detail::server_core& core) mutable -> result<trace_hook> {
                                       trace_hook replaced{std::move(core.trace_code), std::move(core.trace)};
                                       core.trace = std::move(hook.call);
                                       core.trace_code = std::move(hook.code);
                                       return replaced;
                                     });
}

/// Runs `change` on the server, between its messages, with its trace hook, and puts in place the
/// hook it returns: one step, so that a watch puts back the hook it replaced only while its own is
/// still the one in place (a hook the program set meanwhile stays, and the one before never runs
/// again).
result<void> replace_trace(const server_handle auto& server, std::function<trace_hook(trace_hook current)> change,
                           std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(
      server, timeout, [change = std::move(change)](detail::server_core& core) -> result<void> {
        trace_hook next = change(trace_hook{std::move(core.trace_code), std::move(core.trace)});
        core.trace = std::move(next.call);
        core.trace_code = std::move(next.code);
        return {};
      });
}

/// Calls `hook` for each message the server takes in and each it has handled, on the server's
/// thread; an empty hook turns tracing off. The hook it replaced (empty if none): give it to
/// sys::trace to put it back.
result<trace_hook> trace(const server_handle auto& server, std::function<void(const trace_event&)> hook,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return trace(server, trace_hook{detail::pin_this_image(), std::move(hook)}, timeout);
}

}  // namespace hotswap::sys
