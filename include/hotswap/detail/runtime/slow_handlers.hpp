// Noticing handlers that hold a pool worker too long. C++ cannot preempt a handler that sleeps,
// blocks or loops, as Erlang's schedulers do; instead the pool's monitor looks at its workers
// every millisecond or so, and one found in the same handler past `slow_handler_after` while
// other servers wait gets the pool another worker (bounded), as Go's runtime hands the processor
// of a thread blocked in a system call to another thread. The handler is marked, and its server
// counts it, with its message and time, once it returns (sys::statistics).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "../common/std_parts.hpp"

namespace hotswap::detail {

/// A handler running longer than this, while other servers wait, gets the pool another worker.
inline constexpr std::chrono::milliseconds slow_handler_after{4};

/// What one pool worker is doing, for the monitor. The worker writes `ticks` only, on a line of
/// its own (a handler costs two relaxed stores and a load more); the monitor writes the mark.
struct worker_activity {
  alignas(64) std::atomic<std::uint64_t> ticks{0};  ///< handlers entered and left: odd while in one
  std::atomic<std::uint64_t> slow_tick{0};          ///< the monitor's mark: the handler entered at this tick
  std::atomic<std::int64_t> slow_since{0};          ///< has run since then, at least (steady_clock)

  /// The tick of the handler entered now.
  std::uint64_t enter() noexcept {
    const std::uint64_t tick = ticks.load(std::memory_order_relaxed) + 1;
    ticks.store(tick, std::memory_order_relaxed);
    return tick;
  }
  /// Leaves the handler entered at `tick`: since when it ran, if the monitor marked it slow. (A
  /// handler that returns as the monitor marks it is not counted by its server.)
  std::int64_t leave(std::uint64_t tick) noexcept {
    ticks.store(tick + 1, std::memory_order_relaxed);
    return slow_tick.load(std::memory_order_acquire) == tick ? slow_since.load(std::memory_order_relaxed) : 0;
  }
};

/// The monitor's memory of what each worker was doing when it last looked.
class handler_watch {
 public:
  using clock = std::chrono::steady_clock;

  /// Looks at the first `count` workers; for each newly found in one handler past the threshold,
  /// marks it and calls `compensate()` (which adds a worker if others wait, and says whether it
  /// did; a worker not compensated is offered again at the next look). True if any worker was in
  /// a handler.
  template <class Compensate>
  bool look(worker_activity* workers, std::size_t count, clock::time_point now, Compensate compensate) {
    if (seen_.size() < count) seen_.resize(count);
    bool busy = false;
    for (std::size_t i = 0; i < count; ++i) {
      seen& last = seen_[i];
      const std::uint64_t ticks = workers[i].ticks.load(std::memory_order_relaxed);
      if (ticks % 2 == 0 || ticks != last.ticks) {
        last = {ticks, now, false, false};
        busy = busy || ticks % 2 != 0;
        continue;
      }
      busy = true;
      if (now - last.since < slow_handler_after) continue;
      if (!last.marked) {
        workers[i].slow_since.store(last.since.time_since_epoch().count(), std::memory_order_relaxed);
        workers[i].slow_tick.store(ticks, std::memory_order_release);  // after slow_since
        last.marked = true;
        marked_.fetch_add(1, std::memory_order_relaxed);
      }
      if (!last.compensated) last.compensated = compensate();
    }
    return busy;
  }
  /// How many handlers it has found slow.
  std::uint64_t marked() const noexcept { return marked_.load(std::memory_order_relaxed); }

 private:
  struct seen {
    std::uint64_t ticks = 0;
    clock::time_point since{};
    bool marked = false, compensated = false;
  };
  std::vector<seen> seen_;
  std::atomic<std::uint64_t> marked_{0};
};

}  // namespace hotswap::detail
