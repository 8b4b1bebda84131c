// The program's end: stop_all (OTP's init:stop/0) and stop_on_signals (init:stop on SIGTERM).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <hotswap/signals.hpp>

#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;

namespace {

/// A counter child starting at `count`, so that its terminate's line says which it was.
hotswap::child_spec counter_from(const std::string& id, int count) {
  return {id, [count]() -> hotswap::result<hotswap::any_server> {
            auto started = hotswap::start<CounterFrom>(count);
            if (!started) return started.error();
            return hotswap::any_server(std::move(*started));
          }};
}

/// Stops what earlier tests left running, and forgets their terminate's lines.
void start_clean() {
  REQUIRE(hotswap::stop_all());
  exits().take();
}

const std::string stopping = "shutdown: the program is stopping";
const std::string by_supervisor = "shutdown: stopped by its supervisor";

/// Holds a handler (or terminate) until the test opens it (a futex: see testing::gate).
std::atomic<std::uint32_t> held_at{0};
void hold() {
  held_at = 1;
  while (held_at.load() != 2) hotswap::detail::futex_wait(held_at, 1);
}
void release_hold() {
  held_at = 2;
  hotswap::detail::futex_wake(held_at, 1 << 30);
}

struct Hold {};
struct StopAll {};
using Holding = hotswap::interface<"Holding", hotswap::call_msg<Hold, int>, hotswap::call_msg<Get, int>,
                                   hotswap::call_msg<StopAll, std::string>>;
/// Its Hold call is held until the test opens it; with `hold_terminate`, its terminate too.
template <bool HoldTerminate>
struct HoldingImpl {
  using interface = Holding;
  static constexpr int vsn = 1;
  struct state {};
  static state init() { return {}; }
  static int handle_call(const Hold&, state&) {
    hold();
    return 42;
  }
  static int handle_call(const Get&, state&) { return 1; }
  static std::string handle_call(const StopAll&, state&) {
    const auto stopped = hotswap::stop_all();
    return stopped ? "stopped" : std::string(to_string(stopped.error().code));
  }
  static void terminate(const hotswap::exit_reason& reason, state&) {
    if (HoldTerminate) hold();
    exits().add("holding " + describe(reason));
  }
};

}  // namespace

TEST_CASE("stop_all stops the top-level servers newest first; a supervisor's children by it, not restarted") {
  start_clean();
  auto first = hotswap::start<CounterFrom>(1).value();
  auto root =
      hotswap::start_supervisor({.intensity = 5}, {counter_from("ten", 10), counter_from("twenty", 20)}).value();
  auto last = hotswap::start<CounterFrom>(3).value();
  // A restarted child is newer than its supervisor and the servers after it: stopped in start
  // order from the newest, it would be stopped first, and its supervisor would restart it.
  const auto ten = hotswap::call(root, hotswap::which_children{}).value().at(0).server;
  hotswap::send(*hotswap::server_ref<Counter>::from(ten), Crash{});
  REQUIRE(eventually([&] {
    const auto now = hotswap::call(root, hotswap::which_children{}).value().at(0).server;
    return now && now.id() != ten.id();
  }));
  CHECK(exits().take() == std::vector<std::string>{"counter 10 crashed: asked to crash"});

  REQUIRE(hotswap::stop_all());
  CHECK(exits().take() == std::vector<std::string>{"counter 3 " + stopping, "counter 20 " + by_supervisor,
                                                   "counter 10 " + by_supervisor, "counter 1 " + stopping});
  CHECK(hotswap::all_servers().empty());
  CHECK(root.exit().kind == hotswap::exit_kind::shutdown);
}

TEST_CASE("stop_all goes on past a server whose terminate blocks, and names it") {
  start_clean();
  auto before = hotswap::start<CounterFrom>(5).value();
  auto stuck = hotswap::start<HoldingImpl<true>>().value();
  const auto stopped = hotswap::stop_all(200ms);  // what is tested: the bound on one stop
  REQUIRE_FALSE(stopped);
  CHECK(stopped.error().code == hotswap::errc::timeout);
  CHECK(stopped.error().what.find("server " + std::to_string(stuck.id())) != std::string::npos);
  CHECK(held_at.load() == 1);  // still in its terminate
  // It went on: the server before it is stopped (its own stop may have been late too on a loaded
  // machine: waited for, not timed).
  CHECK(eventually([&] { return !before.alive(); }));
  release_hold();
  CHECK(eventually([&] { return !stuck.alive(); }));
  held_at = 0;
  CHECK(exits().take() == std::vector<std::string>{"counter 5 " + stopping, "holding " + stopping});
}

TEST_CASE("stop_all from a handler is refused with calling_self; the server serves on") {
  start_clean();
  auto server = hotswap::start<HoldingImpl<false>>().value();
  CHECK(hotswap::call(server, StopAll{}).value() == "calling_self");
  CHECK(hotswap::call(server, Get{}).value() == 1);
  REQUIRE(hotswap::stop(server));
  exits().take();
}

TEST_CASE("SIGTERM during a call: the call being handled gets its reply, the one waiting fails, nothing hangs") {
  start_clean();
  hotswap::stop_on_signals signals({SIGTERM});
  CHECK_FALSE(signals.wait_for(0ns));
  auto server = hotswap::start<HoldingImpl<false>>().value();
  hotswap::result<int> handled = 0, waiting = 0;
  std::thread first([&] { handled = hotswap::call(server, Hold{}, 60s); });
  REQUIRE(eventually([] { return held_at.load() == 1; }));
  std::thread second([&] { waiting = hotswap::call(server, Get{}, 60s); });
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  // The stop has reached the server (its sys lane), behind the handler that holds it.
  REQUIRE(eventually([&] { return server.core()->controls.load() != nullptr; }));
  release_hold();
  first.join();
  second.join();
  held_at = 0;
  CHECK(signals.wait() == SIGTERM);
  CHECK(signals.signal() == SIGTERM);
  CHECK(signals.outcome());
  CHECK(handled.value() == 42);
  REQUIRE_FALSE(waiting);  // queued behind the stop (server_died), or sent after it (no_server)
  CHECK((waiting.error().code == hotswap::errc::server_died || waiting.error().code == hotswap::errc::no_server));
  CHECK(server.exit().kind == hotswap::exit_kind::shutdown);
  CHECK(exits().take() == std::vector<std::string>{"holding " + stopping});
}

TEST_CASE("stop_on_signals::wait returns 0 once stop_all has run by another path") {
  start_clean();
  hotswap::stop_on_signals signals;
  auto server = hotswap::start<CounterFrom>(7).value();
  std::thread elsewhere([] { (void)hotswap::stop_all(); });
  CHECK(signals.wait() == 0);
  elsewhere.join();
  CHECK_FALSE(server.alive());
  CHECK(exits().take() == std::vector<std::string>{"counter 7 " + stopping});
}
