// Timers (send_after, send_interval): one thread, asleep until the next deadline.
#pragma once

#include <atomic>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "../abi/image.hpp"
#include "../common/spin_lock.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../common/sync.hpp"
#include "server_core.hpp"

namespace hotswap::detail {

/// Timers: one thread, asleep until the next deadline.
template <class = void>
class basic_timer_service {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;
  struct entry {
    std::shared_ptr<const void> code;  // keeps the code of `fire` loaded (a module's); released after it
    std::function<bool()> fire;        // false: the target is gone, stop repeating
    server_core* target = nullptr;     // or a message that travels in place, copied to target
    envelope message{};
    duration period{};
    std::atomic<bool> cancelled{false};
    // The server it sends to (held by `target`'s reference or by `fire`): its timers go when it
    // ends (forget).
    server_core* owner = nullptr;
    entry() = default;
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;
    ~entry();
    /// Once it will never fire again: lets go of what it holds (the server, its message, the
    /// code), though a handle to it may live on.
    void let_go() noexcept;
  };

  /// Runs `fire` after `delay`, then every `period` (if not zero) while it returns true; `code`
  /// keeps its code loaded. `owner`, if any, is the server `fire` sends to: the timer goes when
  /// it ends.
  std::shared_ptr<entry> add(duration delay, duration period, std::function<bool()> fire,
                             std::shared_ptr<const void> code, server_core* owner = nullptr) {
    return add_(*this, delay, period, std::move(fire), std::move(code), owner, nullptr);
  }
  /// Copies `message` (an envelope holding its message in place) into `target`'s mailbox after
  /// `delay`, then every `period`, while the target runs. No code of the caller's is kept: a
  /// module's ticks do not keep the module loaded.
  std::shared_ptr<entry> add(duration delay, duration period, server_core& target, const envelope& message) {
    return add_(*this, delay, period, {}, {}, &target, &message);
  }

  /// Drops the timers sending to `server`, which has ended (alive is false): what they hold (the
  /// server's core, and so its module's lease; a module's code) goes now, not at their next tick,
  /// which may be hours away.
  void forget(server_core& server) noexcept { forget_(*this, server); }

  ~basic_timer_service() { stop(); }

  void stop() noexcept {
    {
      const spin_guard hold(lock_);
      stopping_ = true;
    }
    wake();
    thread_.join();
  }

  // -- a manual clock, for deterministic tests --

  /// Time moves only by advance() from now on (true), or with the steady clock again (false;
  /// timers due by the manual time then fire at once).
  void use_manual_clock(bool manual) {
    {
      const spin_guard hold(lock_);
      if (manual && !manual_) manual_now_ = std::chrono::steady_clock::now();
      manual_ = manual;
    }
    wake();
  }

  /// Moves the manual clock on by `by`, and fires on this thread, in order, every timer due by
  /// then (a repeating one as often as it is due).
  void advance(duration by) {
    time_point until;
    {
      const spin_guard hold(lock_);
      manual_now_ += by;
      until = manual_now_;
    }
    for (;;) {
      std::optional<due> firing;
      auto ignored = std::chrono::nanoseconds(-1);
      {
        const spin_guard hold(lock_);
        firing = take_due(until, ignored);
      }
      if (!firing) return;
      fire(std::move(*firing));
    }
  }

 private:
  struct due {
    time_point at;
    std::shared_ptr<entry> what;
  };
  static bool later(const due& a, const due& b) { return a.at > b.at; }

  void wake() { futex_bump(changed_, 1); }
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
        if (!manual_) firing = take_due(std::chrono::steady_clock::now(), sleep);  // a manual clock fires in advance()
      }
      if (firing)
        fire(std::move(*firing));
      else
        futex_wait(changed_, seen, sleep);
    }
  }

  /// Under lock_: the next timer due by `now`, off the heap; or none, and how long until the
  /// next one is due.
  std::optional<due> take_due(time_point now, std::chrono::nanoseconds& sleep) {
    if (due_.empty()) return std::nullopt;
    if (due_.front().at > now) {
      sleep = due_.front().at - now;
      return std::nullopt;
    }
    std::pop_heap(due_.begin(), due_.end(), later);
    due firing = std::move(due_.back());
    due_.pop_back();
    return firing;
  }

  void fire(due firing) {
    entry& what = *firing.what;
    const bool repeats = what.period.count() > 0;
    // A one-shot is claimed before it fires, so that cancel() after this says it was too late.
    if (repeats ? what.cancelled.load(std::memory_order_acquire) : what.cancelled.exchange(true)) {
      what.let_go();
      return;
    }
    bool again = false;
    try {
      again = (what.target ? copy_to_target(what) : what.fire()) && repeats;
    } catch (...) {  // copying the message threw: the timer ends, the others go on
    }
    if (again) {
      firing.at += what.period;  // no drift: the next tick is due one period after this one
      const spin_guard hold(lock_);
      // Its server ended while it fired: forget() has been, or comes after it was put back.
      if (!what.owner || what.owner->alive.load(std::memory_order_seq_cst)) {
        due_.push_back(std::move(firing));
        std::push_heap(due_.begin(), due_.end(), later);
        return;
      }
    }
    what.cancelled.store(true, std::memory_order_release);  // done: cancel() says so
    what.let_go();
  }

  /// Under lock_: what time it is for the timers.
  time_point now() const { return manual_ ? manual_now_ : std::chrono::steady_clock::now(); }

  spin_lock lock_;
  std::atomic<std::uint32_t> changed_{0};
  std::vector<due> due_;
  bool stopping_ = false;
  bool manual_ = false;  // time moves only by advance()
  time_point manual_now_{};
  thread thread_;
  // The program's code, as for the pool's workers (and entries made by it, whatever adds them).
  std::shared_ptr<entry> (*const add_)(basic_timer_service&, duration, duration, std::function<bool()>,
                                       std::shared_ptr<const void>, server_core*, const envelope*) =
      [](basic_timer_service& timers, duration delay, duration period, std::function<bool()> fire,
         std::shared_ptr<const void> code, server_core* target, const envelope* message) {
        auto made = std::make_shared<entry>();
        made->code = std::move(code);
        made->fire = std::move(fire);
        made->owner = target;  // with no message: the server `fire` sends to
        if (target && message) {
          target->acquire();
          made->target = target;
          made->message = *message;
        }
        made->period = period;
        bool scheduled = false;
        {
          const spin_guard hold(timers.lock_);
          // Unless the program is ending, or the server has ended (forget() has been, or comes
          // after this and finds it).
          scheduled = !timers.stopping_ && (!target || target->alive.load(std::memory_order_seq_cst));
          if (scheduled) {
            if (!timers.thread_.joinable()) timers.thread_ = thread([&timers] { timers.work(); });
            timers.due_.push_back({timers.now() + delay, made});
            std::push_heap(timers.due_.begin(), timers.due_.end(), later);
          }
        }
        if (!scheduled) {  // it never fires
          made->cancelled.store(true, std::memory_order_release);
          made->let_go();
          return made;
        }
        timers.wake();
        return made;
      };
  void (*const forget_)(basic_timer_service&, server_core&) noexcept = [](basic_timer_service& timers,
                                                                          server_core& server) noexcept {
    for (;;) {  // one at a time, each let go outside the lock
      std::shared_ptr<entry> gone;
      {
        const spin_guard hold(timers.lock_);
        const auto at = std::find_if(timers.due_.begin(), timers.due_.end(),
                                     [&](const due& pending) { return pending.what->owner == &server; });
        if (at == timers.due_.end()) return;
        gone = std::move(at->what);
        *at = std::move(timers.due_.back());
        timers.due_.pop_back();
        std::make_heap(timers.due_.begin(), timers.due_.end(), later);
      }
      gone->cancelled.store(true, std::memory_order_release);
      gone->let_go();
    }
  };
};
using timer_service = basic_timer_service<>;

}  // namespace hotswap::detail
