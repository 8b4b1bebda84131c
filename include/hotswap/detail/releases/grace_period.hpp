// A release's grace period: after an upgrade, the release handler watches the servers it
// upgraded; one crashing before the period ends (or make_permanent) has the release rolled
// back, on the handler's own thread, never on the crashing server's; one that ends by its time
// is told so there too. Every upgrade, rollback and make_permanent starts a new generation: a
// crash of an older one is ignored.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace hotswap::detail {

class grace_watch {
 public:
  using clock = std::chrono::steady_clock;

  /// `roll_back(generation, why)` runs on the watch's thread after a crash in the grace period,
  /// `ended(generation)` when the period ends by its time.
  grace_watch(std::function<void(std::uint64_t, const std::string&)> roll_back,
              std::function<void(std::uint64_t)> ended)
      : roll_back_(std::move(roll_back)), ended_(std::move(ended)) {}
  grace_watch(const grace_watch&) = delete;
  grace_watch& operator=(const grace_watch&) = delete;
  ~grace_watch() { stop(); }

  /// Ends the watch for good: a rollback under way finishes first. (Not on the watch's thread.)
  void stop() {
    {
      const std::lock_guard hold(lock_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  /// A new generation; with a period above zero, watched until `period` from now. Its number.
  std::uint64_t start(std::chrono::nanoseconds period) {
    const std::lock_guard hold(lock_);
    ++generation_;
    armed_ = period > std::chrono::nanoseconds::zero();
    crashed_.clear();
    if (armed_) {
      deadline_ = clock::now() + std::min<std::chrono::nanoseconds>(period, std::chrono::hours(24 * 365 * 100));
      if (!thread_.joinable() && !stopping_) thread_ = std::thread([this] { watch(); });
    }
    changed_.notify_all();
    return generation_;
  }

  /// A server upgraded in `generation` crashed (any thread: a monitor's call).
  void crashed(std::uint64_t generation, std::string why) {
    {
      const std::lock_guard hold(lock_);
      if (generation != generation_ || !armed_ || !crashed_.empty()) return;
      crashed_ = std::move(why);
    }
    changed_.notify_all();
  }

  /// Whether `generation` is still the one running (what a rollback checks before it starts).
  bool current(std::uint64_t generation) {
    const std::lock_guard hold(lock_);
    return generation == generation_;
  }

 private:
  void watch() {
    std::unique_lock hold(lock_);
    for (;;) {
      const auto ready = [&] { return stopping_ || (armed_ && (!crashed_.empty() || clock::now() >= deadline_)); };
      if (armed_)
        changed_.wait_until(hold, deadline_, ready);
      else
        changed_.wait(hold, ready);
      if (stopping_) return;
      if (!armed_) continue;
      armed_ = false;  // the period ends, by a crash or by its time
      const std::uint64_t generation = generation_;
      const std::string why = std::exchange(crashed_, {});
      hold.unlock();
      try {
        if (why.empty())
          ended_(generation);
        else
          roll_back_(generation, why);
      } catch (...) {  // a log that threw (its write failed): the watch goes on
      }
      hold.lock();
    }
  }

  std::function<void(std::uint64_t, const std::string&)> roll_back_;
  std::function<void(std::uint64_t)> ended_;
  std::mutex lock_;
  std::condition_variable changed_;
  std::uint64_t generation_ = 0;
  bool armed_ = false, stopping_ = false;
  std::string crashed_;  // who crashed, and why (empty: nobody)
  clock::time_point deadline_{};
  std::thread thread_;
};

}  // namespace hotswap::detail
