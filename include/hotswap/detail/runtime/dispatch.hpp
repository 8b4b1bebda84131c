// The receiving side of a server: taking its messages and sys requests in order, running each
// handler, and running a server on an executor until it has nothing to do.
#pragma once

#include <cstdint>
#include <utility>

#include "../../result.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_parts.hpp"
#include "../common/sync.hpp"
#include "../common/utf8.hpp"
#include "reports.hpp"
#include "server_core.hpp"
#include "slow_handlers.hpp"

namespace hotswap::detail {

// ---- the runtime: pool, server list, names, timers ----

template <class = void>
runtime& the_runtime();
/// A backlog has drained: its memory goes back to the system once the pool idles.
template <class = void>
void give_back_memory_when_idle() noexcept;
/// A new id for a server or a monitor: unique in the program, never reused.
template <class = void>
std::uint64_t new_id() noexcept;
/// Hands a report to the program's sink (the runtime's report_log).
template <class = void>
void write_report(const report& said) noexcept;

/// The server whose handler this thread is running, if any.
template <class = void>
server_core*& current_server_of_thread() noexcept {
  thread_local server_core* current = nullptr;
  return current;
}
/// The same, reached from a module's code or a program's.
template <class = void>
server_core*& current_server() noexcept;

/// Receiver side: hands out the oldest message, or false when none waits.
template <class = void>
bool take_message(server_core& server, envelope& out) noexcept {
  envelope* next = server.inbox.front();
  if (!next) return false;
  out = *next;
  server.inbox.pop();
  return true;
}

/// Whether `table` takes a message of kind word `kind`: not one sent as of a later version of
/// the interface than it implements (a server downgraded since the handle was made).
inline bool takes_kind(const implementation_table& table, std::uint32_t kind) noexcept {
  const std::uint32_t slot = slot_of(kind);
  return slot < table.message_count && sent_vsn_of(kind) <= table.slot_since[slot];
}

/// Drops a message unhandled, whatever version of the interface it was sent as.
inline void drop_message(const implementation_table& table, envelope& message) noexcept {
  if (takes_kind(table, message.kind))
    table.discards[slot_of(message.kind)](message);
  else
    discard_unknown(message);
}

/// Answers a message that will never be handled: calls fail, the rest is dropped.
template <class = void>
void refuse(server_core& server, envelope& message, errc why) noexcept {
  drop_message(*server.table, message);
  if (message.reply) static_cast<reply_slot_base*>(message.reply)->fail(why, "the server has stopped");
}

/// Refuses a message sent as of a later version of the interface than the server runs: a call
/// fails with errc::wrong_interface, the rest is dropped.
template <class = void>
void refuse_later(server_core& server, envelope& message) noexcept {
  const implementation_table& table = *server.table;
  discard_unknown(message);
  if (message.reply)
    static_cast<reply_slot_base*>(message.reply)
        ->fail(errc::wrong_interface, "a message of version " + std::to_string(sent_vsn_of(message.kind)) + " of " +
                                          std::string(table.interface_name) + ", and the server runs version " +
                                          std::to_string(table.interface_vsn) + " (" + std::string(table.name) + ")");
}

/// Receiver side: runs the sys requests in the lane, oldest first (those of an ended server
/// fail); false if there were none.
template <class = void>
bool run_controls(server_core& server) noexcept {
  control_request* newest = server.controls.exchange(nullptr, std::memory_order_acquire);
  if (!newest) return false;
  control_request* oldest = nullptr;
  while (newest) {
    control_request* next = newest->next_in_lane;
    newest->next_in_lane = oldest;
    oldest = newest;
    newest = next;
  }
  while (oldest) {
    control_request* request = oldest;
    oldest = request->next_in_lane;  // before it runs: its waiter may free it as soon as it is answered
    if (server.ended)
      request->fail(errc::no_server, "the server has stopped");
    else
      request->run(*request, server);
  }
  return true;
}

template <class = void>
void end_server(server_core& server, exit_reason reason) noexcept;
/// Receiver: whether the `down` in `message` is of a monitor still set (it is no longer), or of
/// one taken off (demonitor): then it is dropped (runtime/exits.hpp).
template <class = void>
bool down_awaited(server_core& watcher, envelope& message) noexcept;

/// What this pool worker is doing (null: not a pool worker).
template <class = void>
worker_activity*& current_activity() noexcept {
  thread_local worker_activity* activity = nullptr;
  return activity;
}

/// A handler the pool's monitor found slow has returned: counted, and kept if the slowest.
template <class = void>
void note_slow_handler(server_core& server, const implementation_table& table, std::uint32_t slot,
                       std::int64_t since) noexcept {
  const std::chrono::steady_clock::time_point began{std::chrono::steady_clock::duration(since)};
  const auto took = std::chrono::steady_clock::now() - began;
  ++server.slow_handlers;
  if (took <= server.slowest_handler) return;
  server.slowest_handler = took;
  try {
    server.slowest_message = table.message_names[slot];
  } catch (...) {  // out of memory: the time is kept without the name
  }
}

/// The first line of a crash report: the server, its code, the message, what was thrown, and
/// the state it failed on as inspect shows it (at most `state_shown` bytes of it).
template <class = void>
std::string crash_report_text(server_core& server, const implementation_table& table, std::string_view handling,
                              const outcome& result) {
  constexpr std::size_t state_shown = 512;
  std::string text = "crash report: " + visible(server.label(), false) + ", " + visible(table.name, false) + " vsn " +
                     std::to_string(table.vsn) + ", handling " + visible(handling, false) + ": " +
                     (result.thrown.empty() ? "" : visible(result.thrown, false) + ": ") +
                     visible(result.what, false, state_shown);
  if (!table.inspect_state || !server.state) return text + "; its state is not shown (inspect is not enabled for it)";
  std::string state(state_shown, '\0');
  const std::size_t size = table.inspect_state(server.state, state.data(), state.size());
  state.resize(std::min(size, state.size()));
  return text + "; its state: " + visible(state, false) + (size > state_shown ? "..." : "");
}

/// A handler threw: the server's on_failure guard puts it back on the code before, its state
/// kept (a development reload or a release on probation), else the server ends, crashed. Either
/// way its trace hook hears of it, and a crash report goes to the program's sink.
template <class = void>
void handler_failed(server_core& server, std::string_view handling, reply_slot_base* reply, outcome& result) noexcept {
  const implementation_table& table = *server.table;
  if (server.trace) server.trace({trace_event::failed, handling, server.id, std::string_view(result.what)});
  std::string text;
  try {
    text = crash_report_text(server, table, handling, result);  // before the state goes
  } catch (...) {                                               // out of memory: no report
  }
  if (auto guard = std::exchange(server.on_failure, nullptr); guard && guard(server, result.what)) {
    if (!text.empty()) try {
        write_report({report::kind::crash, server.id,
                      text + "; back on " + visible(server.table->name, false) + " vsn " +
                          std::to_string(server.table->vsn) + ", its state kept"});
      } catch (...) {
      }
    if (reply) reply->fail(errc::handler_failed, result.what);
    return;  // back on the code before, its state kept: it serves on
  }
  if (!text.empty()) write_report({report::kind::crash, server.id, std::move(text) + "; the server crashed"});
  if (reply) reply->fail(errc::server_died, result.what);
  end_server(server, {exit_kind::crashed, std::move(result.what)});
}

template <class = void>
void dispatch(server_core& server, envelope& message) noexcept {
  const implementation_table& table = *server.table;
  if (!takes_kind(table, message.kind)) return refuse_later(server, message);
  const std::uint32_t slot = slot_of(message.kind);
  if (server.trace) server.trace({trace_event::in, table.message_names[slot], server.id});
  outcome result;
  const auto start = server.timing ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  worker_activity* const activity = current_activity();
  const std::uint64_t tick = activity ? activity->enter() : 0;
  ++server.handled;  // before: what the handler sets for "after me" (an idle timeout) counts it
  table.handlers[slot](server.state, message, result);
  if (activity)
    if (const std::int64_t slow_since = activity->leave(tick)) note_slow_handler(server, table, slot, slow_since);
  if (server.timing) server.time_in_handlers += std::chrono::steady_clock::now() - start;
  if (result.failed)
    return handler_failed(server, table.message_names[slot], static_cast<reply_slot_base*>(message.reply), result);
  if (server.trace) server.trace({trace_event::out, table.message_names[slot], server.id});
}

/// Runs the continuation a handler (or init) left (OTP's handle_continue), before anything else:
/// a throw is a handler's.
template <class = void>
void run_continuation(server_core& server) noexcept {
  const auto next = std::exchange(server.continuation, nullptr);
  outcome result;
  ++server.handled;
  next(server.state, result);
  if (result.failed) handler_failed(server, "its handle_continue", nullptr, result);
}

/// Handles up to `budget` messages, the sys lane first before each; true if that many were
/// handled (more may wait). While suspended, only the sys lane is served.
template <class = void>
bool handle_messages(server_core& server, unsigned budget) noexcept {
  envelope message;
  for (unsigned handled = 0; handled < budget; ++handled) {
    if (server.continuation && !server.ended) run_continuation(server);
    if (server.controls.load(std::memory_order_relaxed)) run_controls(server);
    if (server.suspended) return false;
    if (!take_message(server, message)) {
      if (server.inbox.drained_after_backlog()) give_back_memory_when_idle();
      return false;
    }
    if (server.ended)
      refuse(server, message, errc::server_died);
    else if (message.kind == server.down_index && !down_awaited(server, message))
      drop_message(*server.table, message);
    else
      dispatch(server, message);
  }
  return true;
}

/// Runs a server until it has nothing to do (or, when others wait for this thread, until it
/// has had a fair share). After its mailbox empties it watches it a little longer, unless others
/// wait: a caller that sends again soon is answered without a wake-up. While it only watches, the
/// server is not this thread's: a sys request's caller may take it (run_control_here), and then
/// this thread leaves it without touching it again.
template <class = void>
void run_server(server_core& server, executor& on) noexcept {
  constexpr unsigned fair_share = 256;
  // An exchange, not a store: a read-modify-write synchronizes with every sender's fetch_or
  // before it, so their messages are visible here.
  server.run_state.exchange(server_core::running, std::memory_order_seq_cst);
  server_core*& current = current_server();
  server_core* const outer = current;
  current = &server;
  for (;;) {
    if (handle_messages(server, fair_share)) {
      if (!on.others_waiting()) continue;
      on.schedule(server);  // still marked running: nobody else schedules it meanwhile
      break;
    }
    // Also a suspended one: the resume then hands it to a worker already spinning, not to one
    // that must be woken (the slowest call of a client calling through an upgrade: p99 38-183
    // against 108-849 us).
    const bool watch = !on.others_waiting() && !server.ended;
    std::uint32_t expected = server_core::running;
    if (!server.run_state.compare_exchange_strong(expected, watch ? server_core::watched : server_core::idle,
                                                  std::memory_order_seq_cst)) {
      server.run_state.exchange(server_core::running, std::memory_order_seq_cst);  // a message came meanwhile
      continue;
    }
    if (!watch) break;
    current = outer;
    // Only the state is read while watching: a sender's notify sets a bit of it, a taker all of it.
    spin_until([&] {
      return server.run_state.load(std::memory_order_relaxed) != server_core::watched || on.others_waiting();
    });
    expected = server_core::watched;
    if (server.run_state.compare_exchange_strong(expected, server_core::idle, std::memory_order_seq_cst)) break;
    if (expected != (server_core::watched | server_core::notified) ||
        !server.run_state.compare_exchange_strong(expected, server_core::running, std::memory_order_seq_cst))
      break;            // taken by a sys request's caller (who will hand it back to the pool if need be)
    current = &server;  // a message came: handled here, without a wake-up
  }
  current = outer;
}

/// The shared worker threads (default: one per hardware thread). At most one idle worker spins
/// at a time; the others park. A worker about to block (a handler calling another server)
/// makes sure another can take its place, so calls between servers never starve the pool; and
/// a monitor adds a worker when one is held in a handler past slow_handler_after while others
/// wait and no worker is idle (a handler that sleeps, blocks on I/O or loops), at most
/// max_compensating in all (they stay, parked when idle, and are used first the next time).

}  // namespace hotswap::detail
