// Timers (send_after, send_interval): one thread, asleep until the next deadline.
#pragma once

#include <atomic>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../abi/image.hpp"
#include "../common/spin_lock.hpp"
#include "../common/sync.hpp"
#include "server_core.hpp"

namespace hotswap::detail {

/// Timers: one thread, asleep until the next deadline.
template <class = void>
class basic_timer_service {
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

  ~basic_timer_service() { stop(); }

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
  std::shared_ptr<entry> (*const add_)(basic_timer_service&, duration, duration, std::function<bool()>,
                                       std::shared_ptr<const void>, server_core*, const envelope*) =
      [](basic_timer_service& timers, duration delay, duration period, std::function<bool()> fire,
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
using timer_service = basic_timer_service<>;

}  // namespace hotswap::detail
