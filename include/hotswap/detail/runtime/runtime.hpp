// The runtime of a program: its pool, timers, server ids and registered names, and how a server
// ends. One per program; a module's code reaches the program's (abi/image.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../abi/image.hpp"
#include "../common/spin_lock.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "dispatch.hpp"
#include "exits.hpp"
#include "own_thread.hpp"
#include "timer_service.hpp"
#include "worker_pool.hpp"

namespace hotswap::detail {

/// Frees a server whose last reference is gone: it has ended, and nothing can send any more.
/// What is left is dropped (calls fail), then the core is deleted.
template <class = void>
void free_server(server_core& server) noexcept {
  envelope message;
  while (take_message(server, message)) refuse(server, message, errc::server_died);
  run_controls(server);  // fails each: ended
  delete &server;
}

/// How long the runtime's destruction gives each server still running to stop (Erlang's
/// default call timeout, as hotswap::default_timeout).
inline constexpr std::chrono::milliseconds stop_timeout_at_exit{5000};

template <class Runtime>
result<void> stop_servers(Runtime& runtime, std::chrono::nanoseconds timeout_each);

/// Registered names, and the servers alive.
template <class>
class basic_runtime {
 public:
  basic_runtime() : pool(hardware_threads()) {}
  // At exit: the servers still running are stopped as hotswap::stop_all stops them (a module's
  // code is still loaded: its servers' leases hold it), then no more ticks, then no more
  // handlers (which could set timers).
  ~basic_runtime() {
    try {
      (void)stop_servers(*this, stop_timeout_at_exit);
    } catch (...) {  // out of memory: the servers left are dropped, as before there was a stop
    }
    timers.stop();
    pool.stop();
  }
  basic_runtime(const basic_runtime&) = delete;
  basic_runtime& operator=(const basic_runtime&) = delete;

  worker_pool pool;
  timer_service timers;
  report_log reports;  // crash and supervisor reports: to the program's sink

  // The program's code for what a module's copy of these headers must not do itself: look up
  // the program's thread-locals, make an executor (whose thread and vtable would be the module's).
  server_core*& (*const current_server)() noexcept = &current_server_of_thread<>;
  worker_pool*& (*const this_thread_pool)() noexcept = &worker_pool::this_thread_pool;
  executor* (*const start_own_thread)(server_core&) = [](server_core& server) -> executor* {
    server.own_thread = std::make_unique<own_thread>(server);
    return server.own_thread.get();
  };
  void (*const free_core)(server_core&) noexcept = &free_server<>;
  /// One hold on both (made by the program: a module's control block would outlive its code).
  std::shared_ptr<const void> (*const hold_both)(std::shared_ptr<const void>, std::shared_ptr<const void>) =
      [](std::shared_ptr<const void> first, std::shared_ptr<const void> second) -> std::shared_ptr<const void> {
    return std::make_shared<std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(std::move(first),
                                                                                                 std::move(second));
  };

  std::uint64_t next_id() noexcept { return ids_.fetch_add(1, std::memory_order_relaxed); }

  /// Bumped (and waiters woken) each time a stop of every server ends: what
  /// hotswap::stop_on_signals waits on.
  std::atomic<std::uint32_t> stops_ended{0};

  // -- the live servers, as Erlang's processes(): what observers list --

  /// A server that started (its init returned), until it ends: appended, so the list runs
  /// oldest first.
  void track(server_core& server) noexcept {
    const spin_guard hold(live_lock_);
    server.live_prev = newest_;
    (newest_ ? newest_->live_next : oldest_) = &server;
    newest_ = &server;
  }
  void untrack(server_core& server) noexcept {
    const spin_guard hold(live_lock_);
    if (!server.live_prev && oldest_ != &server) return;  // never tracked (its init failed)
    (server.live_prev ? server.live_prev->live_next : oldest_) = server.live_next;
    (server.live_next ? server.live_next->live_prev : newest_) = server.live_prev;
    server.live_prev = server.live_next = nullptr;
  }
  /// Calls `keep(server)` for every live server, oldest first, with a reference the caller
  /// releases. It runs under the list's lock: it keeps the server and does nothing else. (A
  /// server in the list holds its reference for being alive: acquiring one here is safe.)
  template <class Keep>
  void each_live(Keep keep) {
    const spin_guard hold(live_lock_);
    for (server_core* server = oldest_; server; server = server->live_next) {
      server->acquire();
      keep(server);
    }
  }

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
  spin_lock live_lock_;
  server_core* oldest_ = nullptr;  // the live servers, a list through server_core::live_next
  server_core* newest_ = nullptr;
};

/// The program's runtime (a module's code reaches the program's).
template <class>
runtime& the_runtime() {
#ifdef HOTSWAP_MODULE_BUILD
  return *module_host.runtime_of_host;
#else
  static runtime instance;
  return instance;
#endif
}

template <class>
server_core*& current_server() noexcept {
  if constexpr (building_module)
    return the_runtime().current_server();
  else
    return current_server_of_thread();
}

template <class>
worker_pool& shared_pool() {
  return the_runtime().pool;
}

template <class>
void give_back_memory_when_idle() noexcept {
  the_runtime().pool.give_back_memory_when_idle();
}

template <class>
std::uint64_t new_id() noexcept {
  return the_runtime().next_id();
}

template <class>
void write_report(const report& said) noexcept {
  the_runtime().reports.write(said);
}

template <class V>
basic_timer_service<V>::entry::~entry() {
  if (target) target->release();
}

template <class V>
void basic_timer_service<V>::entry::let_go() noexcept {
  fire = nullptr;  // before the hold on its code
  code.reset();
  owner = nullptr;
  if (target) std::exchange(target, nullptr)->release();
}

/// What a server leaves to be told of its end.
struct ended_lists {
  std::vector<exit_monitor> monitors;
  std::vector<server_core*> links;
  std::vector<watched_server> watching;
};

/// Marks `server` ended for everyone else (not alive, its reason kept) and takes what is to be
/// told; then frees its name and drops its timers. Once, by whoever comes first: its own end, or
/// an abandon; false if it had been.
template <class = void>
bool mark_ended(server_core& server, const exit_reason& reason, ended_lists& told) noexcept {
  std::string name;
  {
    const spin_guard hold(server.exit_lock);
    if (!server.alive.load(std::memory_order_seq_cst)) return false;
    server.alive.store(false, std::memory_order_seq_cst);
    try {
      name = server.name;
      server.reason = reason;
    } catch (...) {  // out of memory: the reason's text is lost, not the end
      server.reason = {reason.kind, {}};
    }
    told = {std::move(server.monitors), std::move(server.links), std::move(server.watching)};
  }
  the_runtime().timers.forget(server);  // a timer of an hour would otherwise hold it (and its module) that long
  if (!name.empty()) the_runtime().unregister_name(name, &server);
  the_runtime().untrack(server);
  return true;
}

/// Ends a server on its own thread: terminate, free the state, fail what waits, tell monitors
/// and links. (Also for a server whose init failed: it has no state; and for one abandoned while
/// its handler ran, whose end was told then: its terminate does not run.)
template <class>
void end_server(server_core& server, exit_reason reason) noexcept {
  if (server.ended) return;
  const bool abandoned = server.abandoned.load(std::memory_order_acquire);
  if (server.state) {
    if (!abandoned) server.table->terminate(server.state, reason);
    server.table->destroy(server.state);
    server.state = nullptr;
  }
  server.ended = true;
  server.continuation = nullptr;
  ended_lists told;
  const bool first = mark_ended(server, reason, told);
  server.suspended = false;
  envelope message;
  while (take_message(server, message)) refuse(server, message, errc::server_died);
  run_controls(server);  // fails each: ended
  if (first)
    tell_exit(server, server.reason, std::move(told.monitors), std::move(told.links), std::move(told.watching));
  server.release();  // the reference it held for being alive; whoever runs it holds another
}

/// OTP's brutal_kill, as close as threads allow: `server`, whose handler does not return, is
/// ended for everyone else at once (not alive, its name free, its monitors and links told
/// `reason`); its state is destroyed, without its terminate, when the handler returns, on its own
/// thread (a stop queued for it, here, gets it there even if it is idle by then). False if it
/// had ended already. Any thread but the server's.
template <class = void>
bool abandon(server_core& server, exit_reason reason) noexcept {
  // Before the stop is sent (an idle server runs it at once, elsewhere): its end reads this.
  // (If it is ending by itself meanwhile, its end read the flag before it marked itself ended,
  // and the mark below fails: no harm.)
  server.abandoned.store(true, std::memory_order_release);
  end_later(server, reason);  // before the mark: once marked ended, nothing can be sent to it
  ended_lists told;
  if (!mark_ended(server, reason, told)) return false;
  tell_exit(server, reason, std::move(told.monitors), std::move(told.links), std::move(told.watching));
  return true;
}

// ---- the program's end ----

/// Ends `server` with `reason` on its own thread, always sent (never run on this thread, as an
/// idle server's sys request is), so that `timeout` bounds a terminate that blocks; false if it
/// had not ended by then (its stop may take effect later: the server frees the request).
template <class = void>
bool end_within(server_core& server, exit_reason reason, std::chrono::nanoseconds timeout) {
  auto* request = new ending_request(std::move(reason), true);
  if (!server.deliver_control(*request)) {  // it had ended
    delete request;
    return true;
  }
  if (!request->wait(timeout, [] {})) return false;
  delete request;
  return true;
}

/// Stops every live server as hotswap::stop_all documents: the servers not started by a
/// supervisor, newest first, each within `timeout_each`; then, if any server it has not tried
/// is still running (started meanwhile, or a child its supervisor left), those the same way,
/// until a look at the live servers finds none it has not tried.
template <class Runtime>
result<void> stop_servers(Runtime& program, std::chrono::nanoseconds timeout_each) {
  if (current_server())
    return error{errc::calling_self,
                 "stop_all from a server's handler would wait for that server: call it from another thread, or raise "
                 "a signal hotswap::stop_on_signals takes"};
  struct held {  // the references each_live took, released however this ends
    std::vector<server_core*> servers;
    ~held() {
      for (server_core* server : servers) server->release();
    }
  };
  std::vector<std::uint64_t> tried;  // sorted
  std::vector<std::string> late;
  for (;;) {
    held live;
    program.each_live([&](server_core* server) { live.servers.push_back(server); });
    const auto untried = [&](const server_core* server) {
      return !std::binary_search(tried.begin(), tried.end(), server->id);
    };
    const bool top_left = std::any_of(live.servers.begin(), live.servers.end(), [&](const server_core* server) {
      return untried(server) && !server->supervised;
    });
    const std::size_t tried_before = tried.size();
    for (auto at = live.servers.rbegin(); at != live.servers.rend(); ++at) {
      server_core& server = **at;
      if (!untried(&server) || (top_left && server.supervised)) continue;
      tried.push_back(server.id);
      if (!end_within(server, {exit_kind::shutdown, "the program is stopping"}, timeout_each))
        late.push_back(server.label());
    }
    if (tried.size() == tried_before) break;
    std::sort(tried.begin(), tried.end());
  }
  futex_bump(program.stops_ended, 1 << 30);
  if (late.empty()) return {};
  std::string named;
  for (std::size_t i = 0; i < late.size() && i < 8; ++i) named += (i ? ", " : "") + late[i];
  if (late.size() > 8) named += " and " + std::to_string(late.size() - 8) + " more";
  return error{errc::timeout, named + " did not stop within " + std::to_string(timeout_each.count() / 1'000'000) +
                                  " ms (a handler or terminate that has not returned): the stop may yet take effect"};
}

}  // namespace hotswap::detail
