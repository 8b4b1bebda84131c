// Waiting without burning a core: spin briefly (a cache-line round trip between cores costs
// 0.07-0.5 us), then park on a futex (a wake round trip costs ~20 us). Linux only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace hotswap::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Sleeps while `word` holds `expected`, at most `timeout` (forever when negative). Returns
/// early on a wake, a changed word, a signal, or spuriously: callers re-check their condition.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  timespec limit{};
  timespec* limit_or_none = nullptr;
  if (timeout.count() >= 0) {
    limit.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    limit.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    limit_or_none = &limit;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, limit_or_none, nullptr,
          0);
}

inline void futex_wake(std::atomic<std::uint32_t>& word, int waiters) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, waiters, nullptr, nullptr, 0);
}

/// How long a waiter spins before it parks.
inline constexpr auto spin_time = std::chrono::microseconds(50);

/// Spins until `ready()` or `spin_time` has passed; true if ready. Reads the clock only every
/// 64 rounds: steady_clock::now costs ~20 ns.
template <class Ready>
bool spin_until(Ready ready) {
  const auto give_up = std::chrono::steady_clock::now() + spin_time;
  for (unsigned round = 1;; ++round) {
    if (ready()) return true;
    cpu_relax();
    if (round % 64 == 0) {
      if (std::chrono::steady_clock::now() >= give_up) return ready();
      sched_yield();  // when threads outnumber cores, the one we wait for may need this one's
    }
  }
}

}  // namespace hotswap::detail
