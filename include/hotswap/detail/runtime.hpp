// The machinery under hotswap/servers.hpp: server cores, the worker pool, threads of their own,
// replies, timers and names.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "std_parts.hpp"
#include "image.hpp"
#include "mailbox.hpp"
#include "slow_handlers.hpp"
#include "spin_lock.hpp"
#include "sync.hpp"
#include "table.hpp"

namespace hotswap {

/// One message going into or out of a server, as sys::trace reports it.
struct trace_event {
  enum direction { in, out } way;
  std::string_view message;  ///< the message type (valid during the hook's call only)
  std::uint64_t server;      ///< the server's id
};

namespace detail {

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

struct server_core;

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

// ---- replies ----

/// Where a reply (or a failure) lands. The waiting side spins, then parks on `state`. If it
/// gives up (timeout), it abandons the slot to the server, which frees it after answering.
/// Longer timeouts (nanoseconds::max() for "forever") are cut to this, which steady_clock can add.
inline constexpr std::chrono::nanoseconds longest_wait = std::chrono::hours(24 * 365 * 100);

struct reply_slot_base {
  enum : std::uint32_t { waiting, parked, answered, failed, abandoned };
  alignas(64) std::atomic<std::uint32_t> state{waiting};
  hotswap::error failure{};
  void (*free)(reply_slot_base*) noexcept;
  std::shared_ptr<const void> code;  // a module's slot keeps the module loaded until it is freed

  explicit reply_slot_base(void (*free_slot)(reply_slot_base*) noexcept) : free(free_slot), code(pin_this_image()) {}

  void fail(errc code, std::string what = {}) noexcept {
    failure = {code, std::move(what)};
    finish(failed);
  }
  /// After the answer is written: wakes a parked waiter, or frees an abandoned slot. (The wake
  /// may come after the waiter has seen the answer and reused the slot: it re-checks and waits on.)
  void finish(std::uint32_t how) noexcept {
    const std::uint32_t before = state.exchange(how, std::memory_order_acq_rel);
    if (before == parked) {
      futex_wake(state, 1);
    } else if (before == abandoned) {
      const auto keep = code;  // `free` may be a module's code: its hold is released out here
      free(this);
    }
  }

  /// Waits until answered or `timeout`; false on timeout, after which the slot is no longer
  /// the caller's. `before_parking` runs once if the wait outlasts the spin.
  template <class BeforeParking>
  bool wait(std::chrono::nanoseconds timeout, BeforeParking before_parking) {
    auto answered_yet = [&] { return state.load(std::memory_order_acquire) >= answered; };
    if (spin_until(answered_yet)) return true;
    before_parking();
    const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, longest_wait);
    for (;;) {
      std::uint32_t expected = waiting;
      if (state.compare_exchange_strong(expected, parked, std::memory_order_acq_rel) || expected == parked) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left > std::chrono::nanoseconds::zero()) futex_wait(state, parked, left);
      }
      if (answered_yet()) return true;
      if (std::chrono::steady_clock::now() >= deadline) {
        expected = state.load(std::memory_order_acquire);
        while (expected < answered)
          if (state.compare_exchange_weak(expected, abandoned, std::memory_order_acq_rel)) return false;
        return true;
      }
    }
  }
  /// Ready for the next request of the same caller.
  void reset() noexcept { state.store(waiting, std::memory_order_relaxed); }
};

template <class Reply>
struct reply_slot : reply_slot_base {
  std::optional<Reply> value;
  reply_slot() : reply_slot_base([](reply_slot_base* slot) noexcept { delete static_cast<reply_slot*>(slot); }) {}
  template <class R>
  void answer(R&& reply) noexcept(std::is_nothrow_constructible_v<Reply, R&&>) {
    value.emplace(std::forward<R>(reply));
    finish(answered);
  }
};

/// A thread reuses one slot per reply type: no allocation per call. (Not in a module: a
/// thread-local with a destructor would keep the module's code mapped until the thread ends.)
template <class Reply>
class cached_slot {
 public:
  cached_slot() {
    if constexpr (building_module) {
      slot_ = new reply_slot<Reply>;
      return;
    }
    if (!spare()) spare().reset(new reply_slot<Reply>);
    slot_ = spare().release();
  }
  ~cached_slot() {
    if (!slot_) return;
    if constexpr (building_module) {
      delete slot_;
      return;
    }
    slot_->value.reset();
    slot_->failure = {};
    slot_->reset();
    spare().reset(slot_);
  }
  cached_slot(const cached_slot&) = delete;
  cached_slot& operator=(const cached_slot&) = delete;
  reply_slot<Reply>* get() const noexcept { return slot_; }
  /// The server side now owns the slot (the caller timed out).
  void abandon() noexcept { slot_ = nullptr; }

 private:
  static std::unique_ptr<reply_slot<Reply>>& spare() {
    thread_local std::unique_ptr<reply_slot<Reply>> slot;
    return slot;
  }
  reply_slot<Reply>* slot_;
};

struct server_core;

/// A sys request: runs on the server between two messages, ahead of the messages waiting, and
/// while it is suspended. It travels in the server's sys lane, not in its mailbox.
struct control_request : reply_slot_base {
  void (*run)(control_request& self, server_core& server) noexcept;
  control_request* next_in_lane = nullptr;
  using reply_slot_base::reply_slot_base;
};

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

/// A monitor, and what keeps its code loaded (a module's), released after it.
struct exit_monitor {
  std::shared_ptr<const void> code;
  exit_callback call;
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
  enum : std::uint32_t { idle = 0, running = 1, notified = 2 };

  alignas(64) std::atomic<std::uint32_t> run_state{idle};
  std::atomic<bool> alive{true};
  std::atomic<std::uint32_t> references{1};  // one for being alive, one per handle, queue or timer
  executor* runs_on = nullptr;
  const std::uint64_t id;
  const std::uint64_t interface_fingerprint;
  mailbox inbox;

  bool ended = false;  // the receiver's own !alive: read for every message, so not on the senders' line
  std::atomic<control_request*> controls{nullptr};  // the sys lane: newest first
  const implementation_table* table;
  void* state = nullptr;
  std::shared_ptr<const void> table_owner;  // keeps the code of `table` loaded
  std::shared_ptr<const void> state_owner;  // and of the code that made a state not plain data
  bool suspended = false;  // normal messages wait in the mailbox
  std::uint64_t handled = 0;
  bool timing = false;
  std::chrono::nanoseconds time_in_handlers{};
  std::uint64_t slow_handlers = 0;  // that held a pool worker past slow_handler_after
  std::string slowest_message;      // of them, the longest: its message, and (at least) how long
  std::chrono::nanoseconds slowest_handler{};
  std::shared_ptr<const void> trace_code;  // released after `trace`
  std::function<void(const trace_event&)> trace;

  std::unique_ptr<class own_thread> own_thread;

  spin_lock exit_lock;  // guards what follows: read by other threads
  std::string name;
  std::vector<exit_monitor> monitors;
  exit_reason reason;

  server_core(std::uint64_t server_id, const implementation_table& implementation)
      : id(server_id), interface_fingerprint(implementation.interface_fingerprint), table(&implementation) {}

  void acquire() noexcept { references.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

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
    return controls.load(std::memory_order_acquire) != nullptr || (!suspended && inbox.front() != nullptr);
  }

 private:
  void notify() {
    if (run_state.fetch_or(notified, std::memory_order_acq_rel) == idle) runs_on->schedule(*this);
  }
};

// ---- the runtime: pool, server list, names, timers ----

class runtime;
runtime& the_runtime();
/// A backlog has drained: its memory goes back to the system once the pool idles.
void give_back_memory_when_idle() noexcept;

/// The server whose handler this thread is running, if any.
inline server_core*& current_server_of_thread() noexcept {
  thread_local server_core* current = nullptr;
  return current;
}
/// The same, reached from a module's code or a program's.
server_core*& current_server() noexcept;

/// Receiver side: hands out the oldest message, or false when none waits.
inline bool take_message(server_core& server, envelope& out) noexcept {
  envelope* next = server.inbox.front();
  if (!next) return false;
  out = *next;
  server.inbox.pop();
  return true;
}

/// Answers a message that will never be handled: calls fail, the rest is dropped.
inline void refuse(server_core& server, envelope& message, errc why) noexcept {
  server.table->discards[message.kind](message);
  if (message.reply) static_cast<reply_slot_base*>(message.reply)->fail(why, "the server has stopped");
}

/// Receiver side: runs the sys requests in the lane, oldest first (those of an ended server
/// fail); false if there were none.
inline bool run_controls(server_core& server) noexcept {
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

void end_server(server_core& server, exit_reason reason) noexcept;

/// What this pool worker is doing (null: not a pool worker).
inline worker_activity*& current_activity() noexcept {
  thread_local worker_activity* activity = nullptr;
  return activity;
}

/// A handler the pool's monitor found slow has returned: counted, and kept if the slowest.
inline void note_slow_handler(server_core& server, const implementation_table& table, std::uint32_t kind,
                              std::int64_t since) noexcept {
  const std::chrono::steady_clock::time_point began{std::chrono::steady_clock::duration(since)};
  const auto took = std::chrono::steady_clock::now() - began;
  ++server.slow_handlers;
  if (took <= server.slowest_handler) return;
  server.slowest_handler = took;
  try {
    server.slowest_message = table.message_names[kind];
  } catch (...) {  // out of memory: the time is kept without the name
  }
}

inline void dispatch(server_core& server, envelope& message) noexcept {
  const implementation_table& table = *server.table;
  if (server.trace) server.trace({trace_event::in, table.message_names[message.kind], server.id});
  outcome result;
  const auto start = server.timing ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  worker_activity* const activity = current_activity();
  const std::uint64_t tick = activity ? activity->enter() : 0;
  table.handlers[message.kind](server.state, message, result);
  if (activity)
    if (const std::int64_t slow_since = activity->leave(tick)) note_slow_handler(server, table, message.kind, slow_since);
  if (server.timing) server.time_in_handlers += std::chrono::steady_clock::now() - start;
  ++server.handled;
  if (result.failed) {
    if (message.reply) static_cast<reply_slot_base*>(message.reply)->fail(errc::server_died, result.what);
    end_server(server, {exit_kind::crashed, std::move(result.what)});
    return;
  }
  if (server.trace) server.trace({trace_event::out, table.message_names[message.kind], server.id});
}

/// Handles up to `budget` messages, the sys lane first before each; true if that many were
/// handled (more may wait). While suspended, only the sys lane is served.
inline bool handle_messages(server_core& server, unsigned budget) noexcept {
  envelope message;
  for (unsigned handled = 0; handled < budget; ++handled) {
    if (server.controls.load(std::memory_order_relaxed)) run_controls(server);
    if (server.suspended) return false;
    if (!take_message(server, message)) {
      if (server.inbox.drained_after_backlog()) give_back_memory_when_idle();
      return false;
    }
    if (server.ended)
      refuse(server, message, errc::server_died);
    else
      dispatch(server, message);
  }
  return true;
}

/// Runs a server until it has nothing to do (or, when others wait for this thread, until it
/// has had a fair share). After its mailbox empties it watches it a little longer, unless others
/// wait: a caller that sends again soon is answered without a wake-up.
inline void run_server(server_core& server, executor& on) noexcept {
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
    if (!on.others_waiting() && !server.ended &&
        spin_until([&] { return server.has_input() || on.others_waiting(); }) && server.has_input())
      continue;
    std::uint32_t expected = server_core::running;
    if (server.run_state.compare_exchange_strong(expected, server_core::idle, std::memory_order_seq_cst)) break;
    server.run_state.exchange(server_core::running, std::memory_order_seq_cst);  // a message came meanwhile
  }
  current = outer;
}

/// The shared worker threads (default: one per hardware thread). At most one idle worker spins
/// at a time; the others park. A worker about to block (a handler calling another server)
/// makes sure another can take its place, so calls between servers never starve the pool; and
/// a monitor adds a worker when one is held in a handler past slow_handler_after while others
/// wait and no worker is idle (a handler that sleeps, blocks on I/O or loops), at most
/// max_compensating in all (they stay, parked when idle, and are used first the next time).
class worker_pool final : public executor {
 public:
  explicit worker_pool(unsigned threads) {
    for (unsigned i = 0; i < std::clamp(threads, 1u, unsigned{max_threads / 2}); ++i) add_worker();
    watcher_ = thread([this] { watch_handlers(); });
  }
  // The code a new worker runs is the code that made the pool: the program's, never a module's.
  // (A module's call that blocks may start a worker.)
  ~worker_pool() override { stop(); }

  void schedule(server_core& server) override {
    server.acquire();
    {
      const spin_guard hold(lock_);
      queue_.push_back(&server);
      queued_.fetch_add(1, std::memory_order_seq_cst);
    }
    if (spinners_.load(std::memory_order_seq_cst) == 0 && sleepers_.load(std::memory_order_seq_cst) > 0) wake_one();
  }
  bool others_waiting() const noexcept override { return queued_.load(std::memory_order_relaxed) != 0; }
  /// How many workers it has now (it adds some: for handlers that call or block).
  std::uint32_t workers() const noexcept { return workers_.load(std::memory_order_relaxed); }
  /// How many handlers its monitor has found holding a worker past slow_handler_after.
  std::uint64_t slow_handlers() const noexcept { return watch_.marked(); }

  /// A backlog has drained: its memory goes back to the system once every worker has idled for
  /// `idle_before_giving_back` (not before: a burst that follows at once would fault it all in
  /// again).
  void give_back_memory_when_idle() noexcept { give_back_.store(true, std::memory_order_relaxed); }

  /// The calling worker is about to block: wake or start another. (If no thread can be
  /// started, the pool carries on with those it has.)
  void blocking() noexcept {
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      wake_one();
      return;
    }
    const spin_guard hold(lock_);
    if (stopping_.load() || threads_.size() >= max_threads) return;
    try {
      add_worker();
    } catch (...) {
    }
  }

  /// Joins the workers (once every queued server has run).
  void stop() noexcept {
    std::vector<thread> joining;
    {
      const spin_guard hold(lock_);
      stopping_.store(true, std::memory_order_seq_cst);
      joining.swap(threads_);
    }
    futex_bump(watch_word_, 1);
    watcher_.join();
    futex_bump(wake_word_, 1 << 30);
    for (auto& worker : joining) worker.join();
  }

  static worker_pool*& this_thread_pool() noexcept {
    thread_local worker_pool* pool = nullptr;
    return pool;
  }

 private:
  static constexpr std::size_t max_threads = 512;
  static constexpr std::uint32_t max_compensating = 64;  // workers the monitor may add
  static constexpr std::chrono::milliseconds idle_before_giving_back{20};
  // The monitor looks this often while a handler runs, and backs off to the second when none does.
  static constexpr std::chrono::microseconds watch_busy{500};
  static constexpr std::chrono::milliseconds watch_idle{50};

  void add_worker() {  // under lock_ (or in the constructor)
    start_worker_(*this, threads_.size());
    workers_.fetch_add(1, std::memory_order_release);
  }
  void (*const start_worker_)(worker_pool&, std::size_t) = [](worker_pool& pool, std::size_t index) {
    pool.threads_.emplace_back([&pool, index] { pool.work(pool.activities_[index]); });
  };

  void watch_handlers() {
    handler_watch& watch = watch_;
    std::chrono::nanoseconds interval = watch_idle;
    std::uint32_t added = 0, added_now = 0;
    // A worker for a stuck one only if servers wait and no worker is idle (parked workers it
    // added before are used first), one per waiting server at most.
    const auto compensate = [&] {
      if (queued_.load(std::memory_order_seq_cst) <= added_now || sleepers_.load(std::memory_order_seq_cst) != 0 ||
          spinners_.load(std::memory_order_seq_cst) != 0 || added >= max_compensating)
        return false;
      const spin_guard hold(lock_);
      if (stopping_.load() || threads_.size() >= max_threads) return false;
      try {
        add_worker();
      } catch (...) {  // no thread to be had: the pool carries on with those it has
        return false;
      }
      ++added, ++added_now;
      return true;
    };
    for (;;) {
      const std::uint32_t seen = watch_word_.load(std::memory_order_acquire);  // before stopping_: stop() bumps it after
      if (stopping_.load(std::memory_order_acquire)) return;
      futex_wait(watch_word_, seen, interval);
      added_now = 0;
      const bool busy = watch.look(activities_.get(), workers_.load(std::memory_order_acquire),
                                   std::chrono::steady_clock::now(), compensate);
      interval = busy ? std::chrono::nanoseconds(watch_busy) : std::min<std::chrono::nanoseconds>(interval * 2, watch_idle);
    }
  }

  server_core* take() {
    if (queued_.load(std::memory_order_acquire) == 0) return nullptr;
    const spin_guard hold(lock_);
    if (queue_head_ == queue_.size()) return nullptr;
    server_core* next = queue_[queue_head_++];
    if (queue_head_ == queue_.size()) {
      queue_.clear();
      queue_head_ = 0;
    } else if (queue_head_ > 1024 && queue_head_ * 2 > queue_.size()) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
      queue_head_ = 0;
    }
    // More waiting and nobody spinning to take them: wake a sleeper rather than leave them
    // behind this worker's batch.
    if (queued_.fetch_sub(1, std::memory_order_seq_cst) > 1 && spinners_.load(std::memory_order_seq_cst) == 0 &&
        sleepers_.load(std::memory_order_seq_cst) > 0)
      wake_one();
    return next;
  }
  void wake_one() noexcept {
    futex_bump(wake_word_, 1);
  }

  void work(worker_activity& activity) {
    this_thread_pool() = this;
    current_activity() = &activity;
    for (;;) {
      if (server_core* server = take()) {
        run_server(*server, *this);
        server->release();
        continue;
      }
      if (stopped()) return;
      std::uint32_t none = 0;
      if (spinners_.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) {
        const bool found = spin_until([&] { return others_waiting() || stopped(); });
        spinners_.store(0, std::memory_order_seq_cst);
        if (found) continue;
      }
      const bool last_awake = sleepers_.fetch_add(1, std::memory_order_seq_cst) + 1 == workers_.load();
      const std::uint32_t seen = wake_word_.load(std::memory_order_seq_cst);
      if (queued_.load(std::memory_order_seq_cst) == 0 && !stopped()) {
        if (last_awake && give_back_.load(std::memory_order_relaxed)) {
          // Memory a drained backlog freed goes back once the whole pool has idled a while.
          futex_wait(wake_word_, seen, idle_before_giving_back);
          if (wake_word_.load(std::memory_order_seq_cst) == seen && queued_.load(std::memory_order_seq_cst) == 0 &&
              give_back_.exchange(false, std::memory_order_relaxed))
            give_back_free_memory();
        } else {
          futex_wait(wake_word_, seen);
        }
      }
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  bool stopped() const noexcept { return stopping_.load(std::memory_order_acquire) && !others_waiting(); }

  spin_lock lock_;
  std::vector<server_core*> queue_;  // from queue_head_ on
  std::size_t queue_head_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<thread> threads_;
  alignas(64) std::atomic<std::size_t> queued_{0};
  alignas(64) std::atomic<std::uint32_t> spinners_{0};
  std::atomic<std::uint32_t> sleepers_{0};
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<std::uint32_t> workers_{0};
  std::atomic<bool> give_back_{false};
  std::unique_ptr<worker_activity[]> activities_ = std::make_unique<worker_activity[]>(max_threads);
  std::atomic<std::uint32_t> watch_word_{0};
  handler_watch watch_;  // the monitor's own, but for its count
  thread watcher_;
};

worker_pool& shared_pool();

/// A thread for one server whose handlers block. It runs the server when scheduled (as a pool
/// worker would), holds a reference to it until it has ended, and then hands whatever still
/// arrives to the pool, which refuses it.
class own_thread final : public executor {
 public:
  explicit own_thread(server_core& server)
      : server_(server), thread_((server.acquire(), [this] { work(); })) {}
  ~own_thread() override {
    stopping_.store(true, std::memory_order_seq_cst);
    wake();
    if (!thread_.is_this_thread()) thread_.join();  // else it ends by itself, detached
  }
  void schedule(server_core&) override {
    scheduled_.store(true, std::memory_order_seq_cst);
    if (exited_.load(std::memory_order_seq_cst))
      hand_to_pool();
    else
      wake();
  }
  bool others_waiting() const noexcept override { return false; }
  void wake() noexcept {
    futex_bump(wake_word_, 1);
  }

 private:
  void hand_to_pool() {
    if (scheduled_.exchange(false, std::memory_order_seq_cst)) shared_pool().schedule(server_);
  }
  void work() {
    for (;;) {
      const std::uint32_t seen = wake_word_.load(std::memory_order_seq_cst);
      if (scheduled_.exchange(false, std::memory_order_seq_cst)) run_server(server_, *this);
      if (!server_.alive.load(std::memory_order_seq_cst) || stopping_.load(std::memory_order_seq_cst)) break;
      if (!scheduled_.load(std::memory_order_seq_cst)) futex_wait(wake_word_, seen);
    }
    exited_.store(true, std::memory_order_seq_cst);
    hand_to_pool();      // scheduled after the last look: one of us hands it over
    server_.release();   // may destroy this executor: touch nothing after it
  }
  server_core& server_;
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<bool> scheduled_{false};
  std::atomic<bool> exited_{false};
  std::atomic<bool> stopping_{false};
  thread thread_;
};

/// Timers: one thread, asleep until the next deadline.
class timer_service {
 public:
  using duration = std::chrono::steady_clock::duration;
  struct entry {
    std::shared_ptr<const void> code;  // keeps the code of `fire` loaded (a module's); released after it
    std::function<bool()> fire;        // false: the target is gone, stop repeating
    server_core* target = nullptr;  // or a message that travels in place, copied to target
    envelope message{};
    duration period{};
    std::atomic<bool> cancelled{false};
    entry() = default;
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;
    ~entry();
  };

  /// Runs `fire` after `delay`, then every `period` (if not zero) while it returns true; `code`
  /// keeps its code loaded.
  std::shared_ptr<entry> add(duration delay, duration period, std::function<bool()> fire,
                             std::shared_ptr<const void> code) {
    return add_(*this, delay, period, std::move(fire), std::move(code), nullptr, nullptr);
  }
  /// Copies `message` (an envelope holding its message in place) into `target`'s mailbox after
  /// `delay`, then every `period`, while the target runs. No code of the caller's is kept: a
  /// module's ticks do not keep the module loaded.
  std::shared_ptr<entry> add(duration delay, duration period, server_core& target, const envelope& message) {
    return add_(*this, delay, period, {}, {}, &target, &message);
  }

  ~timer_service() { stop(); }

  void stop() noexcept {
    {
      const spin_guard hold(lock_);
      stopping_ = true;
    }
    wake();
    thread_.join();
  }

 private:
  struct due {
    std::chrono::steady_clock::time_point at;
    std::shared_ptr<entry> what;
  };
  static bool later(const due& a, const due& b) { return a.at > b.at; }

  void wake() {
    futex_bump(changed_, 1);
  }
  static bool copy_to_target(const entry& what) {
    return what.target->deliver([&](envelope& into) noexcept {
      std::memcpy(into.payload, what.message.payload, sizeof into.payload);
      into.kind = what.message.kind;
      into.reply = nullptr;
    });
  }

  void work() {
    for (;;) {
      const std::uint32_t seen = changed_.load(std::memory_order_seq_cst);
      std::optional<due> firing;
      auto sleep = std::chrono::nanoseconds(-1);  // until woken
      {
        const spin_guard hold(lock_);
        if (stopping_) return;
        const auto now = std::chrono::steady_clock::now();
        if (!due_.empty() && due_.front().at <= now) {
          std::pop_heap(due_.begin(), due_.end(), later);
          firing = std::move(due_.back());
          due_.pop_back();
        } else if (!due_.empty()) {
          sleep = due_.front().at - now;
        }
      }
      if (!firing) {
        futex_wait(changed_, seen, sleep);
        continue;
      }
      entry& what = *firing->what;
      const bool repeats = what.period.count() > 0;
      // A one-shot is claimed before it fires, so that cancel() after this says it was too late.
      if (repeats ? what.cancelled.load(std::memory_order_acquire) : what.cancelled.exchange(true)) continue;
      bool again = false;
      try {
        again = (what.target ? copy_to_target(what) : what.fire()) && repeats;
      } catch (...) {  // copying the message threw: the timer ends, the others go on
      }
      if (!again) {
        what.cancelled.store(true, std::memory_order_release);  // done: cancel() says so
        continue;
      }
      firing->at += firing->what->period;  // no drift: the next tick is due one period after this one
      const spin_guard hold(lock_);
      due_.push_back(std::move(*firing));
      std::push_heap(due_.begin(), due_.end(), later);
    }
  }

  spin_lock lock_;
  std::atomic<std::uint32_t> changed_{0};
  std::vector<due> due_;
  bool stopping_ = false;
  thread thread_;
  // The program's code, as for the pool's workers (and entries made by it, whatever adds them).
  std::shared_ptr<entry> (*const add_)(timer_service&, duration, duration, std::function<bool()>,
                                       std::shared_ptr<const void>, server_core*, const envelope*) =
      [](timer_service& timers, duration delay, duration period, std::function<bool()> fire,
         std::shared_ptr<const void> code, server_core* target, const envelope* message) {
        auto made = std::make_shared<entry>();
        made->code = std::move(code);
        made->fire = std::move(fire);
        if (target) {
          target->acquire();
          made->target = target;
          made->message = *message;
        }
        made->period = period;
        {
          const spin_guard hold(timers.lock_);
          if (timers.stopping_) return made;  // the program is ending: it never fires
          if (!timers.thread_.joinable()) timers.thread_ = thread([&timers] { timers.work(); });
          timers.due_.push_back({std::chrono::steady_clock::now() + delay, made});
          std::push_heap(timers.due_.begin(), timers.due_.end(), later);
        }
        timers.wake();
        return made;
      };
};

/// Registered names, and the servers alive.
class runtime {
 public:
  runtime() : pool(hardware_threads()) {}
  // At exit: no more ticks, then no more handlers (which could set timers).
  ~runtime() {
    timers.stop();
    pool.stop();
  }
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  worker_pool pool;
  timer_service timers;

  // The program's code for what a module's copy of these headers must not do itself: look up
  // the program's thread-locals, make an executor (whose thread and vtable would be the module's).
  server_core*& (*const current_server)() noexcept = &current_server_of_thread;
  worker_pool*& (*const this_thread_pool)() noexcept = &worker_pool::this_thread_pool;
  executor* (*const start_own_thread)(server_core&) = [](server_core& server) -> executor* {
    server.own_thread = std::make_unique<own_thread>(server);
    return server.own_thread.get();
  };
  /// One hold on both (made by the program: a module's control block would outlive its code).
  std::shared_ptr<const void> (*const hold_both)(std::shared_ptr<const void>, std::shared_ptr<const void>) =
      [](std::shared_ptr<const void> first, std::shared_ptr<const void> second) -> std::shared_ptr<const void> {
    return std::make_shared<std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(std::move(first),
                                                                                                 std::move(second));
  };

  std::uint64_t next_id() noexcept { return ids_.fetch_add(1, std::memory_order_relaxed); }

  bool register_name(const std::string& name, server_core& server) {
    const spin_guard hold(names_lock_);
    const spin_guard hold_server(server.exit_lock);
    const auto at = find(name);
    if (!server.alive.load() || !server.name.empty() || (at != names_.end() && at->first == name)) return false;
    server.acquire();
    names_.emplace(at, name, &server);
    server.name = name;
    return true;
  }
  /// A reference to the server registered as `name`, or null.
  server_core* whereis(const std::string& name) {
    const spin_guard hold(names_lock_);
    const auto found = find(name);
    if (found == names_.end() || found->first != name) return nullptr;
    found->second->acquire();
    return found->second;
  }
  /// Frees `name` (only if `server` holds it, when given).
  bool unregister_name(const std::string& name, const server_core* server = nullptr) {
    server_core* removed;
    {
      const spin_guard hold(names_lock_);
      const auto found = find(name);
      if (found == names_.end() || found->first != name || (server && found->second != server)) return false;
      removed = found->second;
      names_.erase(found);
      const spin_guard hold_server(removed->exit_lock);
      removed->name.clear();
    }
    removed->release();
    return true;
  }

 private:
  std::atomic<std::uint64_t> ids_{1};
  using name_entry = std::pair<std::string, server_core*>;
  std::vector<name_entry>::iterator find(const std::string& name) {
    return std::lower_bound(names_.begin(), names_.end(), name,
                            [](const name_entry& entry, const std::string& key) { return entry.first < key; });
  }

  spin_lock names_lock_;
  std::vector<name_entry> names_;  // sorted by name
};

/// The program's runtime (a module's code reaches the program's).
inline runtime& the_runtime() {
#ifdef HOTSWAP_MODULE_BUILD
  return *module_host.runtime_of_host;
#else
  static runtime instance;
  return instance;
#endif
}

inline server_core*& current_server() noexcept {
  if constexpr (building_module)
    return the_runtime().current_server();
  else
    return current_server_of_thread();
}

inline worker_pool& shared_pool() { return the_runtime().pool; }

inline void give_back_memory_when_idle() noexcept { the_runtime().pool.give_back_memory_when_idle(); }

inline void server_core::release() noexcept {
  if (references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Ended, and nothing can send any more: drop what is left, then free.
  envelope message;
  while (take_message(*this, message)) refuse(*this, message, errc::server_died);
  run_controls(*this);  // fails each: ended
  delete this;
}

inline timer_service::entry::~entry() {
  if (target) target->release();
}

/// Ends a server on its own thread: terminate, free the state, fail what waits, tell monitors.
/// (Also for a server whose init failed: it has no state.)
inline void end_server(server_core& server, exit_reason reason) noexcept {
  if (server.state) {
    server.table->terminate(server.state, reason);
    server.table->destroy(server.state);
    server.state = nullptr;
  }
  server.ended = true;
  std::string name;
  std::vector<exit_monitor> monitors;
  {
    const spin_guard hold(server.exit_lock);
    server.alive.store(false, std::memory_order_seq_cst);
    name = server.name;
    monitors = std::move(server.monitors);
    server.reason = reason;
  }
  if (!name.empty()) the_runtime().unregister_name(name, &server);
  server.suspended = false;
  envelope message;
  while (take_message(server, message)) refuse(server, message, errc::server_died);
  run_controls(server);  // fails each: ended
  for (auto& monitor : monitors) monitor.call(server.id, reason);
  server.release();  // the reference it held for being alive; whoever runs it holds another
}

/// Calls `on_exit` when `server` ends (at once if it has).
inline void monitor(server_core& server, exit_callback on_exit) {
  exit_reason ended;
  {
    const spin_guard hold(server.exit_lock);
    if (server.alive.load(std::memory_order_seq_cst)) {
      server.monitors.push_back({pin_this_image(), std::move(on_exit)});
      return;
    }
    ended = server.reason;
  }
  on_exit(server.id, ended);
}

}  // namespace detail
}  // namespace hotswap
