// A running server as the runtime holds it, and where its messages are handled (an executor).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../result.hpp"
#include "../abi/implementation_table.hpp"
#include "../abi/trace_event.hpp"
#include "../common/spin_lock.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "mailbox.hpp"
#include "reply_slot.hpp"

namespace hotswap::detail {

// ---- executors ----

/// Where a server's messages are handled: the shared pool, or a thread of its own.
class executor {
 public:
  virtual ~executor() = default;
  /// Takes a reference to `server` and runs it soon.
  virtual void schedule(server_core& server) = 0;
  /// Another server waits for this executor's thread.
  virtual bool others_waiting() const noexcept = 0;
};

// ---- servers ----

/// Receives the exit of a monitored server.
using exit_callback = std::function<void(std::uint64_t id, const exit_reason& reason)>;

// ---- what a watcher receives ----

/// The info a monitor delivers when the server it watches ends (OTP's {'DOWN', Ref, process,
/// Pid, Reason}): hotswap::down.
struct down_message {
  std::uint64_t monitor = 0;  ///< the monitor's id (monitor_ref::id)
  std::uint64_t server = 0;   ///< the server that ended
  exit_reason reason{};
};

/// The info a server that traps exits receives when a server linked to it ends (OTP's {'EXIT',
/// Pid, Reason}): hotswap::exit_signal.
struct exit_message {
  std::uint64_t server = 0;  ///< the linked server that ended
  exit_reason reason{};
};

struct server_core;

/// A monitor on a server (runtime/exits.hpp): the server told (a `down` info) or a callback,
/// and what keeps the callback's code loaded (a module's), released after it.
struct exit_monitor {
  std::uint64_t ref = 0;
  server_core* watcher = nullptr;  // holding a reference
  std::shared_ptr<const void> code;
  exit_callback call;
};
/// A monitor a server set on another, whose down it has not yet received.
struct watched_server {
  std::uint64_t ref;
  server_core* server;  // holding a reference
};

/// A running server: its mailbox, its sys lane, its implementation table and state, and its sys
/// settings. Shared by every handle to it. The first cache line is what senders touch (it ends
/// with the mailbox's tail); from the mailbox's head on, fields belong to the thread running the
/// server, but for the sys lane, which sys requests (rare) push to.
///
/// Sys requests have a lane of their own so that what they cost does not depend on the mailbox:
/// a suspended server leaves its normal messages in the mailbox, in order, untouched, and a busy
/// one serves a sys request after the message it is handling, not after its backlog.
struct server_core {
  /// Who has it: nobody (idle); a thread running it (running); a worker that has run it dry and
  /// watches for more, which anybody may take from it (watched). A sender sets `notified` on top.
  enum : std::uint32_t { idle = 0, running = 1, notified = 2, watched = 4 };

  alignas(64) std::atomic<std::uint32_t> run_state{idle};
  std::atomic<bool> alive{true};
  std::atomic<std::uint32_t> references{1};  // one for being alive, one per handle, queue or timer
  executor* runs_on = nullptr;
  const std::uint64_t id;
  /// The version of its interface its code implements: a sender's check of a message of a
  /// later version than the first (the receiver checks again: detail::takes_kind).
  std::atomic<std::uint32_t> interface_vsn;
  // Where its interface takes what the runtime sends it (runtime/exits.hpp): the same in every
  // version of its code. `table_size` where it takes none.
  const std::uint32_t table_size, down_index, exit_index;
  std::atomic<bool> trapping_exits{false};
  std::atomic<bool> abandoned{false};  // ended while a handler ran (runtime's abandon): no terminate
  mailbox inbox;

  bool ended = false;  // the receiver's own !alive: read for every message, so not on the senders' line
  std::atomic<control_request*> controls{nullptr};  // the sys lane: newest first
  const implementation_table* table;
  /// Frees it once its last reference is gone: the program's code (abi/image.hpp), whoever
  /// lets go last.
  void (*const free_core)(server_core& server) noexcept;
  void* state = nullptr;
  std::shared_ptr<const void> table_owner;  // keeps the code of `table` loaded
  std::shared_ptr<const void> state_owner;  // and of the code that made a state not plain data
  bool suspended = false;                   // normal messages wait in the mailbox
  std::uint64_t handled = 0;
  bool timing = false;
  std::chrono::nanoseconds time_in_handlers{};
  std::uint64_t slow_handlers = 0;  // that held a pool worker past slow_handler_after
  std::string slowest_message;      // of them, the longest: its message, and (at least) how long
  std::chrono::nanoseconds slowest_handler{};
  std::shared_ptr<const void> trace_code;  // released after `trace`
  std::function<void(const trace_event&)> trace;
  /// Asked once, on the server's thread, when a handler fails (set while a development reload is
  /// on probation: hotswap::module_watch): true if it put the server back on code that serves,
  /// with its state, and the server lives on; false, or none, and the server crashes.
  std::function<bool(server_core& server, const std::string& why)> on_failure;
  /// What a handler (or init) asked to run next, before any other message or sys request (OTP's
  /// {continue, C}): hotswap::continue_with. It reports a throw in `result`.
  std::function<void(void* state, outcome& result)> continuation;
  /// The last idle timeout a handler set (OTP's {noreply, State, Timeout}): its info is handled
  /// only if it is still the last one set and `handled` is still what it was then.
  std::uint64_t idle_timeouts = 0, idle_mark = 0;

  std::unique_ptr<executor> own_thread;  // a thread of its own (an own_thread), if it runs on one

  server_core* live_prev = nullptr;  // the runtime's list of live servers (runtime::track)
  server_core* live_next = nullptr;
  /// Started by a supervisor (set before it is tracked, fixed after): stop_all leaves it to its
  /// supervisor, which would restart it.
  bool supervised = false;
  bool starting_child = false;  // a supervisor's, while its handler starts a child (start_supervised)

  spin_lock exit_lock;  // guards what follows: read by other threads
  /// Its code's interface_lineage (set before that code's hold is let go: set_interface), what
  /// a handle of an interface is checked against (server_ref::from).
  const std::uint64_t* interface_lineage;
  std::string_view interface_name;
  std::string name;
  std::vector<exit_monitor> monitors;    // told when it ends
  std::vector<watched_server> watching;  // the monitors it set on others, taken off when it ends
  std::vector<server_core*> links;       // each holding a reference
  exit_reason reason;

  server_core(std::uint64_t server_id, const implementation_table& implementation,
              void (*free)(server_core& server) noexcept)
      : id(server_id),
        interface_vsn(implementation.interface_vsn),
        table_size(implementation.message_count),
        down_index(implementation.down_index),
        exit_index(implementation.exit_index),
        table(&implementation),
        free_core(free),
        interface_lineage(implementation.interface_lineage),
        interface_name(implementation.interface_name) {}

  /// Any thread: `server 4 (counter)`, or `server 4` if it has no name: how messages name it.
  std::string label() {
    const spin_guard hold(exit_lock);
    return "server " + std::to_string(id) + (name.empty() ? "" : " (" + name + ")");
  }

  /// On the server, as its code changes (before the hold on the code before is let go).
  void set_interface(const implementation_table& now) noexcept {
    const spin_guard hold(exit_lock);
    interface_lineage = now.interface_lineage;
    interface_name = now.interface_name;
    interface_vsn.store(now.interface_vsn, std::memory_order_relaxed);
  }
  /// Any thread: `Counter`, or `Counter version 2`: the interface its code implements now.
  std::string interface_now() {
    const spin_guard hold(exit_lock);
    const std::uint32_t vsn = interface_vsn.load(std::memory_order_relaxed);
    return std::string(interface_name) + (vsn > 1 ? " version " + std::to_string(vsn) : std::string());
  }
  /// Any thread: whether its code implements the interface of fingerprint `fingerprint`, version
  /// `vsn`, or a later version of it.
  bool implements(std::uint64_t fingerprint, std::uint32_t vsn) {
    const spin_guard hold(exit_lock);
    return vsn >= 1 && vsn <= interface_vsn.load(std::memory_order_relaxed) &&
           interface_lineage[vsn - 1] == fingerprint;
  }
  /// Any thread: whether its code takes a message dating from interface vsn `since` (of a
  /// handle's interface that it implements).
  bool takes(std::uint32_t since) const noexcept { return interface_vsn.load(std::memory_order_relaxed) >= since; }

  void acquire() noexcept { references.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) free_core(*this);
  }

  /// Any thread: queues a message and gets the server running. False if it has stopped.
  template <class Fill>
  bool deliver(Fill&& fill) {
    if (!alive.load(std::memory_order_acquire)) return false;
    inbox.push(std::forward<Fill>(fill));
    notify();
    return true;
  }

  /// Any thread: puts a sys request in the sys lane and gets the server running. False if it
  /// has stopped.
  bool deliver_control(control_request& request) noexcept {
    if (!alive.load(std::memory_order_acquire)) return false;
    control_request* newest = controls.load(std::memory_order_relaxed);
    do request.next_in_lane = newest;
    while (!controls.compare_exchange_weak(newest, &request, std::memory_order_release, std::memory_order_relaxed));
    notify();
    return true;
  }

  /// Receiver: whether there is something to do now.
  bool has_input() noexcept {
    return controls.load(std::memory_order_acquire) != nullptr || (!suspended && inbox.front() != nullptr) ||
           continuation;
  }

 private:
  void notify() {
    if (run_state.fetch_or(notified, std::memory_order_acq_rel) == idle) runs_on->schedule(*this);
  }
};

}  // namespace hotswap::detail
