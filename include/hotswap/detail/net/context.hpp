// What a listener's connections share, and may outlive the listener with: the io_context and
// the threads that run it, the guard on posting to it, the counters, and the count of requests
// in hand that an orderly stop waits for. A connection's handle lives in its server's state,
// which may outlive the listener: each connection holds this, so its socket is destroyed before
// the io_context; once closed, nothing more is posted (a handler posted to an io_context no
// thread runs would hold its connection, which holds this, for ever).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "../common/sync.hpp"

namespace hotswap::detail::net {

/// The io_context, whose services can be shut down (handlers destroyed, sockets left closable)
/// before it is destroyed: when the listener goes, while connections live on in servers' states.
class owned_io : public boost::asio::io_context {
 public:
  using boost::asio::io_context::io_context;
  using boost::asio::io_context::shutdown;
};

class context {
 public:
  using logger = std::function<void(const std::string& line)>;

  context(unsigned threads, logger log) : io_(static_cast<int>(threads)), log_(std::move(log)) {}
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context() { close(); }

  boost::asio::io_context& io() noexcept { return io_; }

  /// Runs the io_context on `count` threads of its own (at least one). No exception leaves them:
  /// one a handler lets out is logged, and the thread runs on.
  void start(unsigned count) {
    for (unsigned made = 0; made < std::max(count, 1u); ++made)
      threads_.emplace_back([this] {
        for (;;) {
          try {
            io_.run();
            return;
          } catch (const std::exception& thrown) {
            log(std::string("net: ") + thrown.what() + " (the listener serves on)");
          } catch (...) {
            log("net: an unknown exception (the listener serves on)");
          }
        }
      });
  }

  /// Posts `work` to `on` unless the context is closed; false then (the work is dropped, never run).
  template <class Executor, class Work>
  bool post(const Executor& on, Work&& work) {
    const std::shared_lock hold(lock_);
    if (closed_) return false;
    boost::asio::post(on, std::forward<Work>(work));
    return true;
  }

  /// Stops the threads, joins them, and destroys what was still to run: the connections that
  /// live on are closed, and what they are asked is not done. (Not from one of its threads.)
  void close() noexcept {
    {
      const std::unique_lock hold(lock_);
      if (closed_) return;
      closed_ = true;
    }
    work_.reset();
    io_.stop();
    for (auto& running : threads_) running.join();
    io_.shutdown();
  }
  bool closed() const {
    const std::shared_lock hold(lock_);
    return closed_;
  }
  bool on_its_thread() const noexcept {
    for (const auto& running : threads_)
      if (running.is_this_thread()) return true;
    return false;
  }

  /// Every line the listener logs; a logger that throws loses the line only.
  void log(const std::string& line) noexcept {
    try {
      if (log_) log_(line);
    } catch (...) {
    }
  }

  // -- requests in hand --

  /// A connection's server got data (+1), or is done with it: it asked for more, or ended (-1).
  void in_hand(int change) {
    {
      const std::lock_guard hold(hand_lock_);
      in_hand_ += change;
    }
    if (change < 0) hand_changed_.notify_all();
  }
  /// Waits until no server has data in hand, at most `timeout`; false if one still has.
  bool wait_for_hands(std::chrono::nanoseconds timeout) {
    std::unique_lock hold(hand_lock_);
    return hand_changed_.wait_for(hold, std::min(timeout, longest_wait), [this] { return in_hand_ <= 0; });
  }
  /// Wakes wait_for_hands and wait_for_closed (a connection closed).
  void notify() {
    { const std::lock_guard hold(hand_lock_); }
    hand_changed_.notify_all();
  }
  /// Waits until no connection is open, at most `timeout`.
  bool wait_for_closed(std::chrono::nanoseconds timeout) {
    std::unique_lock hold(hand_lock_);
    return hand_changed_.wait_for(hold, std::min(timeout, longest_wait),
                                  [this] { return open.load(std::memory_order_acquire) == 0; });
  }

  std::atomic<std::uint64_t> accepted{0}, open{0}, cut_off{0};
  std::atomic<bool> stopping{false};  ///< reads are no longer started: the listener is stopping

 private:
  static constexpr std::chrono::nanoseconds longest_wait = std::chrono::hours(24 * 365);

  owned_io io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  logger log_;
  std::vector<thread> threads_;
  mutable std::shared_mutex lock_;
  bool closed_ = false;
  std::mutex hand_lock_;
  std::condition_variable hand_changed_;
  long in_hand_ = 0;
};

}  // namespace hotswap::detail::net
