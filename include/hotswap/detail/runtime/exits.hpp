// How a server's end is told: monitors (Erlang's monitor/2: a `down` info to a server, or a
// callback, exactly once) and links (link/1: an abnormal end stops the linked server, or reaches it
// as an `exit_signal` info when it traps exits). One mechanism for every watcher: supervisors, a
// release's grace period and programs use it alike, and each takes its monitors off when done.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../result.hpp"
#include "../abi/envelope.hpp"
#include "../abi/image.hpp"
#include "../common/spin_lock.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "dispatch.hpp"
#include "server_core.hpp"

namespace hotswap::detail {

// -- monitors --

/// Orders a server's `watching` by ref.
struct by_ref_order {
  bool operator()(const watched_server& entry, std::uint64_t ref) const noexcept { return entry.ref < ref; }
  bool operator()(std::uint64_t ref, const watched_server& entry) const noexcept { return ref < entry.ref; }
};
inline constexpr by_ref_order by_ref{};

/// Whether `reason` stops a linked server that does not trap exits (OTP: any but normal).
inline bool abnormal(const exit_reason& reason) noexcept {
  return reason.kind != exit_kind::normal;
}

/// Puts `message` in `to`'s mailbox as its info number `index` (false if `to` has ended, or its
/// interface does not take it: `index` is its message count).
template <class Message>
bool deliver_info(server_core& to, std::uint32_t index, Message&& message) noexcept {
  using M = std::remove_cvref_t<Message>;
  if (index >= to.table_size) return false;
  envelope packed{};
  try {
    pack(packed, std::forward<Message>(message));
  } catch (...) {  // out of memory: the watcher is not told
    return false;
  }
  const bool sent = to.deliver([&](envelope& into) noexcept {
    std::memcpy(into.payload, packed.payload, sizeof packed.payload);
    into.kind = index;
    into.reply = nullptr;
  });
  if (!sent) discard<M>(packed);
  return sent;
}

/// Takes `ref` out of the monitors `watcher` set; false if it was not there.
template <class = void>
bool forget_watching(server_core& watcher, std::uint64_t ref) noexcept {
  server_core* watched = nullptr;
  {
    const spin_guard hold(watcher.exit_lock);
    const auto at = std::lower_bound(watcher.watching.begin(), watcher.watching.end(), ref, by_ref);
    if (at == watcher.watching.end() || at->ref != ref) return false;
    watched = at->server;
    watcher.watching.erase(at);
  }
  watched->release();
  return true;
}

/// A monitor set by `watcher` (which will receive a `down` info) on `watched`, or a callback if
/// `watcher` is null; its id (`ref`, never 0). If `watched` has ended, the down is delivered (the
/// callback called) at once, as OTP's monitor of a dead process is told `noproc` at once.
template <class = void>
std::uint64_t add_monitor(server_core& watched, server_core* watcher, exit_callback on_exit,
                          std::uint64_t ref = new_id()) {
  if (watcher) {  // first in the watcher's list, so that its down is taken when it arrives
    const spin_guard hold(watcher->exit_lock);
    if (!watcher->alive.load(std::memory_order_seq_cst)) return ref;  // it has ended: nobody to tell
    watched.acquire();
    // Sorted by ref (a dynamic supervisor watches each of its many children): ids grow, so this
    // is nearly always the end.
    watcher->watching.insert(std::upper_bound(watcher->watching.begin(), watcher->watching.end(), ref, by_ref),
                             {ref, &watched});
  }
  exit_reason ended;
  {
    const spin_guard hold(watched.exit_lock);
    if (watched.alive.load(std::memory_order_seq_cst)) {
      if (watcher) watcher->acquire();
      watched.monitors.push_back({ref, watcher, watcher ? nullptr : pin_this_image(), std::move(on_exit)});
      return ref;
    }
    ended = watched.reason;
  }
  if (watcher)
    deliver_info(*watcher, watcher->down_index, down_message{ref, watched.id, std::move(ended)});
  else
    on_exit(watched.id, ended);
  return ref;
}

/// Takes monitor `ref` off `watched` (and, for a server's monitor, a down already in its
/// mailbox, as OTP's demonitor(Ref, [flush])); false if it had fired already.
template <class = void>
bool remove_monitor(server_core& watched, std::uint64_t ref) noexcept {
  exit_monitor removed{};
  {
    const spin_guard hold(watched.exit_lock);
    const auto at = std::find_if(watched.monitors.begin(), watched.monitors.end(),
                                 [&](const exit_monitor& monitor) { return monitor.ref == ref; });
    if (at != watched.monitors.end()) {
      removed = std::move(*at);
      watched.monitors.erase(at);
    }
  }
  if (removed.watcher) {
    forget_watching(*removed.watcher, ref);
    removed.watcher->release();
  }
  const auto code = std::move(removed.code);  // the callback, a module's code, goes first
  removed.call = nullptr;
  return removed.ref != 0;
}

template <class>
bool down_awaited(server_core& watcher, envelope& message) noexcept {
  return forget_watching(watcher, unpack<down_message>(message).monitor);
}

// -- links --

/// A sys request that ends a server: an exit signal, a stop a server asks of itself (nobody
/// waits: the server frees it), or a stop of every server (waited for). (A template only to be
/// compiled where it is used: its run instantiates the whole of a server's end.)
template <class = void>
struct basic_ending_request final : control_request {
  exit_reason reason;
  explicit basic_ending_request(exit_reason why, bool waited = false)
      : control_request([](reply_slot_base* self) noexcept { delete static_cast<basic_ending_request*>(self); }),
        reason(std::move(why)) {
    if (!waited) state.store(abandoned, std::memory_order_relaxed);
    run = [](control_request& self, server_core& server) noexcept {
      end_server(server, std::move(static_cast<basic_ending_request&>(self).reason));
      self.finish(answered);
    };
  }
};
using ending_request = basic_ending_request<>;

/// Ends `server` with `reason` after the message it is handling (false if it has ended).
template <class = void>
bool end_later(server_core& server, exit_reason reason) noexcept {
  ending_request* request;
  try {
    request = new ending_request(std::move(reason));
  } catch (...) {
    return false;
  }
  if (server.deliver_control(*request)) return true;
  delete request;
  return false;
}

/// `to` hears that linked server `from` ended with `reason`: as an info if it traps exits,
/// else it ends too when the reason is abnormal, as Erlang's exit signals do.
template <class = void>
void signal_exit(server_core& to, std::uint64_t from, const exit_reason& reason) noexcept {
  if (to.trapping_exits.load(std::memory_order_acquire)) {
    try {
      deliver_info(to, to.exit_index, exit_message{from, reason});
    } catch (...) {  // out of memory copying the reason
    }
  } else if (abnormal(reason)) {
    try {
      end_later(to, reason);
    } catch (...) {
    }
  }
}

/// Links `a` and `b` (each told of the other's end); if one has ended, the other is told at
/// once. False if they are the same server.
template <class = void>
bool add_link(server_core& a, server_core& b) noexcept {
  if (&a == &b) return false;
  server_core& first = a.id < b.id ? a : b;  // one order of locking for every pair
  server_core& second = a.id < b.id ? b : a;
  server_core* ended = nullptr;
  exit_reason reason;
  {
    const spin_guard hold_first(first.exit_lock);
    const spin_guard hold_second(second.exit_lock);
    const bool first_alive = first.alive.load(std::memory_order_seq_cst);
    const bool second_alive = second.alive.load(std::memory_order_seq_cst);
    if (first_alive && second_alive) {
      if (std::find(first.links.begin(), first.links.end(), &second) == first.links.end()) {
        first.acquire();
        second.acquire();
        first.links.push_back(&second);
        second.links.push_back(&first);
      }
      return true;
    }
    if (first_alive != second_alive) {
      ended = first_alive ? &second : &first;
      reason = ended->reason;
    }
  }
  if (ended) signal_exit(ended == &a ? b : a, ended->id, reason);
  return true;
}

/// Unlinks `a` and `b`; false if they were not linked.
template <class = void>
bool remove_link(server_core& a, server_core& b) noexcept {
  server_core& first = a.id < b.id ? a : b;
  server_core& second = a.id < b.id ? b : a;
  {
    const spin_guard hold_first(first.exit_lock);
    const spin_guard hold_second(second.exit_lock);
    const auto at = std::find(first.links.begin(), first.links.end(), &second);
    if (at == first.links.end()) return false;
    first.links.erase(at);
    second.links.erase(std::find(second.links.begin(), second.links.end(), &first));
  }
  first.release();
  second.release();
  return true;
}

// -- a server's end --

/// Tells a server's end to its monitors and links, and takes the monitors it set on others off
/// them: nothing it set outlives it. Called by end_server once, after the server is marked ended.
template <class = void>
void tell_exit(server_core& server, const exit_reason& reason, std::vector<exit_monitor> monitors,
               std::vector<server_core*> links, std::vector<watched_server> watching) noexcept {
  for (auto& monitor : monitors) {
    if (monitor.watcher) {
      try {
        deliver_info(*monitor.watcher, monitor.watcher->down_index, down_message{monitor.ref, server.id, reason});
      } catch (...) {
      }
      monitor.watcher->release();
    } else {
      try {
        monitor.call(server.id, reason);
      } catch (...) {  // a callback lets nothing out into the server's end
      }
      const auto code = std::move(monitor.code);  // released after its callback
      monitor.call = nullptr;
    }
  }
  for (server_core* linked : links) {
    {
      const spin_guard hold(linked->exit_lock);
      const auto at = std::find(linked->links.begin(), linked->links.end(), &server);
      if (at != linked->links.end()) {
        linked->links.erase(at);
        server.release();  // the reference the linked server's list held
      }
    }
    signal_exit(*linked, server.id, reason);
    linked->release();
  }
  for (const watched_server& entry : watching) {  // (clang 14 captures no structured binding)
    const std::uint64_t ref = entry.ref;
    server_core* const watched = entry.server;
    exit_monitor removed{};
    {
      const spin_guard hold(watched->exit_lock);
      const auto at = std::find_if(watched->monitors.begin(), watched->monitors.end(),
                                   [&](const exit_monitor& monitor) { return monitor.ref == ref; });
      if (at != watched->monitors.end()) {
        removed = std::move(*at);
        watched->monitors.erase(at);
      }
    }
    if (removed.watcher) removed.watcher->release();
    watched->release();
  }
}

}  // namespace hotswap::detail
