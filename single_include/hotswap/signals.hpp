// hotswap's stop on signals, generated from include/ by tools/amalgamate.py; do not edit.
#pragma once
#include "control.hpp"
// ---- hotswap/signals.hpp ----
// Stopping the program on a signal, as OTP's init:stop/0 runs on SIGTERM: SIGTERM or SIGINT
// (Ctrl-C) stops every server with hotswap::stop_all, their terminate run, while main waits.
// Boost.Asio's signal_set on a thread of its own; not in the umbrella header (Asio is costly to
// compile).
//
//     int main() {
//       hotswap::stop_on_signals signals({SIGTERM, SIGINT});  // before the threads that must not take them
//       auto root = hotswap::start_supervisor(...);
//       int signal = signals.wait();  // the servers have stopped
//     }

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>


namespace hotswap {

// -- signals --

/// While it lives, the first of `signals` that comes stops every server with
/// hotswap::stop_all(timeout_each), on the handler's own thread, and wakes wait(). The handling
/// of those signals is then given back to the system's default at once: a second Ctrl-C ends the
/// program without waiting for the stop. Its destructor restores the default handling too (as
/// Asio's signal_set does: not a handler the program had before). A thread that blocks the
/// signals (pthread_sigmask) does not take them; at least one must not.
class stop_on_signals {
 public:
  /// Takes `signals`; throws boost::system::system_error for one that cannot be handled
  /// (SIGKILL, SIGSTOP, a number that is no signal).
  explicit stop_on_signals(std::initializer_list<int> signals = {SIGTERM, SIGINT},
                           std::chrono::nanoseconds timeout_each = default_timeout);
  ~stop_on_signals();
  stop_on_signals(const stop_on_signals&) = delete;
  stop_on_signals& operator=(const stop_on_signals&) = delete;

  /// Blocks until the servers have been stopped: by a signal (returned once its stop has
  /// ended), or by a hotswap::stop_all called elsewhere since this was made (0 returned).
  int wait();
  /// The same, waiting at most `timeout`: nothing if no stop has ended by then.
  std::optional<int> wait_for(std::chrono::nanoseconds timeout);

  /// The signal that came, or 0 (none yet): its stop may still be running.
  int signal() const noexcept { return signal_.load(std::memory_order_acquire); }
  /// How the stop after the signal went (errc::timeout: the servers that did not stop in time),
  /// once wait() has returned the signal.
  const result<void>& outcome() const noexcept { return outcome_; }

 private:
  std::optional<int> ended() const noexcept;

  std::uint32_t stops_seen_;  // the runtime's count of stops when this was made
  std::chrono::nanoseconds timeout_each_;
  std::atomic<int> signal_{0};
  std::atomic<bool> stopped_{false};  // the signal's stop has ended
  result<void> outcome_;
  boost::asio::io_context io_{1};
  boost::asio::signal_set set_{io_};
  detail::thread thread_;
};

}  // namespace hotswap

// ---- hotswap/impl/signals.hpp ----
// The bodies of <hotswap/signals.hpp> (its declarations, documented, are there): the signal
// handler's thread and the waits for its stop. Included by signals.hpp only.

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>

#include <boost/system/error_code.hpp>


namespace hotswap {

inline stop_on_signals::stop_on_signals(std::initializer_list<int> signals, std::chrono::nanoseconds timeout_each)
    : stops_seen_(detail::the_runtime().stops_ended.load(std::memory_order_seq_cst)), timeout_each_(timeout_each) {
  for (int taken : signals) set_.add(taken);
  set_.async_wait([this](const boost::system::error_code& failed, int taken) {
    if (failed) return;  // cancelled: this is being destroyed
    signal_.store(taken, std::memory_order_release);
    boost::system::error_code ignored;
    set_.clear(ignored);  // the default handling back: a second signal ends the program at once
    try {
      outcome_ = stop_all(timeout_each_);
    } catch (const std::exception& thrown) {  // out of memory: told, and the waiter still woken
      outcome_ = error{errc::timeout, thrown.what()};
    }
    stopped_.store(true, std::memory_order_seq_cst);
    detail::futex_bump(detail::the_runtime().stops_ended, 1 << 30);  // stop_all's bump came before stopped_
  });
  thread_ = detail::thread([this] {
    try {
      io_.run();
    } catch (...) {  // nothing the handler lets out; Asio's own failures leave the stop undone
    }
  });
}

inline stop_on_signals::~stop_on_signals() {
  boost::system::error_code ignored;
  set_.cancel(ignored);
  set_.clear(ignored);
  thread_.join();  // after a stop that is running, if a signal came
}

inline std::optional<int> stop_on_signals::ended() const noexcept {
  if (stopped_.load(std::memory_order_seq_cst)) return signal_.load(std::memory_order_acquire);
  // Another stop_all ended since this was made, and no signal's stop is running.
  if (detail::the_runtime().stops_ended.load(std::memory_order_seq_cst) != stops_seen_ &&
      signal_.load(std::memory_order_acquire) == 0)
    return 0;
  return std::nullopt;
}

inline int stop_on_signals::wait() {
  for (;;) {
    const std::uint32_t seen = detail::the_runtime().stops_ended.load(std::memory_order_seq_cst);
    if (const auto done = ended()) return *done;
    detail::futex_wait(detail::the_runtime().stops_ended, seen);
  }
}

inline std::optional<int> stop_on_signals::wait_for(std::chrono::nanoseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, detail::longest_wait);
  for (;;) {
    const std::uint32_t seen = detail::the_runtime().stops_ended.load(std::memory_order_seq_cst);
    if (const auto done = ended()) return done;
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) return std::nullopt;
    detail::futex_wait(detail::the_runtime().stops_ended, seen, left);
  }
}

}  // namespace hotswap
