// A deterministic fixture for runtime tests, as CAF's test coordinator: servers that run on the
// test's own thread, and timers whose time moves only when the test says. A test on it sends,
// runs and checks in a fixed order, with no thread to wait for and nothing to sleep on.
//
//     testing::manual_executor here;
//     auto counter = here.start<CounterV1>();   // runs only on this thread
//     hotswap::cast(counter, Add{1});           // handled before cast returns (immediate mode)
//
//     testing::manual_clock clock;              // the runtime's timers, for this test
//     clock.advance(10ms);                      // fires what is due, on this thread
#pragma once

#include <chrono>
#include <deque>
#include <mutex>

#include <hotswap/servers.hpp>

namespace testing {

/// Runs the servers started on it on the thread that sends them something (immediate, the
/// default: a cast is handled, a call answered, before it returns), or holds them until run()
/// (held). A server on it that calls another server on it, which calls back, waits for ever: the
/// pool runs such cycles, this executor does not.
class manual_executor final : public hotswap::detail::executor {
 public:
  enum class mode { immediate, held };

  /// Starts a server of `Implementation` on this executor.
  template <class Implementation>
  hotswap::server_ref<typename Implementation::interface> start(std::string name = {}) {
    return hotswap::detail::start_as<typename Implementation::interface>(hotswap::table_of<Implementation>, nullptr,
                                                                         name, false, {}, nullptr, this)
        .value();
  }

  void set_mode(mode now) { mode_ = now; }

  /// Runs each held server until it has nothing to do; how many ran.
  std::size_t run() {
    std::size_t ran = 0;
    while (hotswap::detail::server_core* next = take()) {
      run_one(*next);
      ++ran;
    }
    return ran;
  }
  std::size_t held() const {
    const std::lock_guard hold(lock_);
    return queue_.size();
  }

  void schedule(hotswap::detail::server_core& server) override {
    server.acquire();
    if (mode_ == mode::immediate) {
      run_one(server);
      return;
    }
    const std::lock_guard hold(lock_);
    queue_.push_back(&server);
  }
  bool others_waiting() const noexcept override { return false; }

 private:
  void run_one(hotswap::detail::server_core& server) {
    hotswap::detail::run_server(server, *this);
    server.release();
  }
  hotswap::detail::server_core* take() {
    const std::lock_guard hold(lock_);
    if (queue_.empty()) return nullptr;
    auto* next = queue_.front();
    queue_.pop_front();
    return next;
  }

  mode mode_ = mode::immediate;
  mutable std::mutex lock_;
  std::deque<hotswap::detail::server_core*> queue_;
};

/// The runtime's timers on a clock that moves only by advance(), for the life of this object:
/// timers due by then fire on the test's thread, in order, inside advance().
class manual_clock {
 public:
  manual_clock() { hotswap::detail::the_runtime().timers.use_manual_clock(true); }
  ~manual_clock() { hotswap::detail::the_runtime().timers.use_manual_clock(false); }
  manual_clock(const manual_clock&) = delete;
  manual_clock& operator=(const manual_clock&) = delete;

  void advance(std::chrono::steady_clock::duration by) { hotswap::detail::the_runtime().timers.advance(by); }
};

}  // namespace testing
