// Where a reply lands: a slot the caller waits on (spinning, then parked on a futex) and the
// server answers into; and the sys requests, which travel as slots of their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "../../result.hpp"
#include "../abi/image.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../common/sync.hpp"

namespace hotswap::detail {

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

}  // namespace hotswap::detail
