// A one-byte lock for data that is rarely touched and briefly held (std::mutex is 40 bytes, and
// <mutex> a heavy include for the schemas layer). Waits on the flag, not in a busy loop.
#pragma once

#include <atomic>

namespace hotswap::detail {

class spin_lock {
 public:
  void lock() noexcept {
    while (flag_.test_and_set(std::memory_order_acquire)) flag_.wait(true, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    flag_.clear(std::memory_order_release);
    flag_.notify_one();
  }

 private:
  std::atomic_flag flag_;
};

/// Holds a spin_lock for a scope.
class spin_guard {
 public:
  explicit spin_guard(spin_lock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~spin_guard() { lock_.unlock(); }
  spin_guard(const spin_guard&) = delete;
  spin_guard& operator=(const spin_guard&) = delete;

 private:
  spin_lock& lock_;
};

}  // namespace hotswap::detail
