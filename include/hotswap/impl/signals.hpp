// The bodies of <hotswap/signals.hpp> (its declarations, documented, are there): the signal
// handler's thread and the waits for its stop. Included by signals.hpp only.
#pragma once

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>

#include <boost/system/error_code.hpp>

#include "../signals.hpp"

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
