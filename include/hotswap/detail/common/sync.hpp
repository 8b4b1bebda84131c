// Threads, and waiting without burning a core: spin briefly (a cache-line round trip between
// cores costs 0.07-0.5 us), then park on a futex (a wake round trip costs ~20 us). Linux only;
// pthreads and futexes directly, as <thread>, <mutex> and <condition_variable> would double the
// cost of including hotswap.
#pragma once

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>
#include <utility>

#include "./std_parts.hpp"

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
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, limit_or_none, nullptr, 0);
}

inline void futex_wake(std::atomic<std::uint32_t>& word, int waiters) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, waiters, nullptr, nullptr, 0);
}

/// Changes `word` and wakes up to `waiters` threads parked on it: a waiter that read the word
/// before the change and has not parked yet does not park (futex_wait sees another value).
inline void futex_bump(std::atomic<std::uint32_t>& word, int waiters) noexcept {
  word.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(word, waiters);
}

/// How long a waiter spins before it parks.
inline constexpr auto spin_time = std::chrono::microseconds(50);

/// Spins until `ready()` or `spin_time` has passed; true if ready. Reads the clock only every
/// 64 rounds, from the 64th on: steady_clock::now costs 20-40 ns, a fifth of a call that is
/// answered at once.
template <class Ready>
bool spin_until(Ready ready) {
  std::chrono::steady_clock::time_point give_up{};
  for (unsigned round = 1;; ++round) {
    if (ready()) return true;
    cpu_relax();
    if (round % 64 == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (round == 64)
        give_up = now + spin_time;
      else if (now >= give_up)
        return ready();
      sched_yield();  // when threads outnumber cores, the one we wait for may need this one's
    }
  }
}

/// A joinable thread running `body()`.
class thread {
 public:
  thread() = default;
  template <class Body>
  explicit thread(Body body) {
    auto* owned = new Body(std::move(body));
    const int failed = pthread_create(
        &handle_, nullptr,
        [](void* argument) -> void* {
          auto* run = static_cast<Body*>(argument);
          (*run)();
          delete run;
          return nullptr;
        },
        owned);
    if (failed) {
      delete owned;
      throw std::runtime_error("hotswap: cannot start a thread (pthread_create: error " + std::to_string(failed) + ")");
    }
    running_ = true;
  }
  thread(thread&& other) noexcept : handle_(other.handle_), running_(std::exchange(other.running_, false)) {}
  thread& operator=(thread&& other) noexcept {
    std::swap(handle_, other.handle_);
    std::swap(running_, other.running_);
    return *this;
  }
  ~thread() {
    if (running_) pthread_detach(handle_);
  }

  bool joinable() const noexcept { return running_; }
  bool is_this_thread() const noexcept { return running_ && pthread_equal(handle_, pthread_self()); }
  void join() noexcept {
    if (std::exchange(running_, false)) pthread_join(handle_, nullptr);
  }

 private:
  pthread_t handle_{};
  bool running_ = false;
};

inline unsigned hardware_threads() noexcept {
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<unsigned>(online) : 1u;
}

}  // namespace hotswap::detail
