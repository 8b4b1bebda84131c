// Releases: many servers upgraded as one transaction, and put back as they were when any step
// fails.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <hotswap/releases.hpp>

#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;
namespace sys = hotswap::sys;

namespace testing {
/// Run by every code_change below, on the server changing, inside the upgrade: the test sends
/// messages from it, which must wait for the upgrade's end, then be handled in order.
std::function<void()> during_change;

struct CounterUp : CounterV2 {
  static state code_change(hotswap::from_vsn<1>, v1::Count&& old) {
    if (during_change) during_change();
    return {old.count, 2};
  }
};
struct CounterRefuses : CounterUp {
  static state code_change(hotswap::from_vsn<1>, v1::Count&&) {
    if (during_change) during_change();
    throw std::runtime_error("refused");
  }
};

/// Another interface: a log of numbers, checked for order.
struct Logged {
  int n;
};
struct InOrder {};
using Log = hotswap::interface<"Log", hotswap::cast_msg<Logged>, hotswap::call_msg<InOrder, long>>;
struct LogV1 {
  using interface = Log;
  static constexpr int vsn = 1;
  using state = std::vector<int>;
  static state init() { return {}; }
  static void handle_cast(const Logged& m, state& s) { s.push_back(m.n); }
  /// How many, or -1 if they are not 0, 1, 2, ... in order.
  static long handle_call(const InOrder&, const state& s) {
    for (std::size_t i = 0; i < s.size(); ++i)
      if (s[i] != static_cast<int>(i)) return -1;
    return static_cast<long>(s.size());
  }
};
struct LogV2 : LogV1 {
  static constexpr int vsn = 2;
  using state_history = hotswap::state_history<hotswap::version<1, std::vector<int>>>;
  static state code_change(hotswap::from_vsn<1>, state&& old) {
    if (during_change) during_change();
    return std::move(old);
  }
};
struct LogRefuses : LogV2 {
  static state code_change(hotswap::from_vsn<1>, state&&) {
    if (during_change) during_change();
    throw std::runtime_error("refused");
  }
};

/// Three servers, two sharing a schema, one of another interface, each with some history.
struct release_fixture {
  hotswap::server_ref<Counter> a = hotswap::start<CounterV1>().value();
  hotswap::server_ref<Counter> b = hotswap::start<CounterV1>().value();
  hotswap::server_ref<Log> c = hotswap::start<LogV1>().value();
  int logged = 0;  // sent to c so far

  release_fixture() {
    hotswap::cast(a, Add{5});
    hotswap::cast(b, Add{9});
    for (; logged < 100; ++logged) hotswap::cast(c, Logged{logged});
    REQUIRE(hotswap::call(c, InOrder{}).value() == 100);
  }
  ~release_fixture() {
    during_change = nullptr;
    (void)hotswap::stop(a);
    (void)hotswap::stop(b);
    (void)hotswap::stop(c);
    exits().take();
  }
  /// Each code_change sends 10 messages to each server.
  void send_during_changes() {
    during_change = [this] {
      for (int i = 0; i < 10; ++i) {
        hotswap::cast(a, Add{1});
        hotswap::cast(b, Add{1});
        hotswap::cast(c, Logged{logged++});
      }
    };
  }
};

template <class State>
State state_of(const auto& server) {
  return sys::get_state<State>(server).value();
}
}  // namespace testing

TEST_CASE("an upgrade changes every server, and the messages sent meanwhile are handled after it, in order") {
  release_fixture f;
  f.send_during_changes();
  const auto report = hotswap::upgrade({{f.a, hotswap::table_of<CounterUp>, 1},
                                        {f.b, hotswap::table_of<CounterUp>, 1},
                                        {f.c, hotswap::table_of<LogV2>, 1}});
  REQUIRE(report);
  REQUIRE(report.steps.size() == 3);
  CHECK(report.steps[0].server == f.a.id());
  CHECK(report.steps[0].from_vsn == 1);
  CHECK(report.steps[0].to == "testing::CounterUp");
  CHECK(report.steps[0].to_vsn == 2);
  CHECK(report.steps[2].to == "testing::LogV2");
  CHECK(report.pause > 0ns);
  // Three code_changes sent 30 messages to each: none was handled inside the upgrade.
  CHECK(sys::get_status(f.a).value().implementation == "testing::CounterUp");
  CHECK(hotswap::call(f.a, Get{}).value() == 5 + 30);
  CHECK(hotswap::call(f.b, Get{}).value() == 9 + 30);
  CHECK(hotswap::call(f.c, InOrder{}).value() == 130);
  CHECK(state_of<v2::Count>(f.a).generation == 2);
}

TEST_CASE("a code_change failing at any step puts every server back on its old table with its old state") {
  for (std::size_t failing = 0; failing < 3; ++failing) {
    CAPTURE(failing);
    release_fixture f;
    const auto a_before = state_of<v1::Count>(f.a);
    const auto b_before = state_of<v1::Count>(f.b);
    const auto c_before = state_of<std::vector<int>>(f.c);
    f.send_during_changes();
    std::vector<hotswap::upgrade_step> steps{
        {f.a, failing == 0 ? hotswap::table_of<CounterRefuses> : hotswap::table_of<CounterUp>, 1},
        {f.b, failing == 1 ? hotswap::table_of<CounterRefuses> : hotswap::table_of<CounterUp>, 1},
        {f.c, failing == 2 ? hotswap::table_of<LogRefuses> : hotswap::table_of<LogV2>, 1}};
    const auto report = hotswap::upgrade(steps);
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::code_change_failed);
    CHECK(report.outcome.error().what ==
          "step " + std::to_string(failing + 1) + " of 3 (server " + std::to_string(steps[failing].server().id()) +
              ", change_code): refused; every server runs its old code with its old state");
    for (std::size_t i = 0; i < 3; ++i) CHECK((report.steps[i].time > 0ns) == (i <= failing));

    // Old tables, old states (compared whole), serving; then what was sent meanwhile, in order.
    CHECK(sys::get_status(f.a).value().implementation == "testing::CounterV1");
    CHECK(sys::get_status(f.b).value().vsn == 1);
    CHECK(sys::get_status(f.c).value().implementation == "testing::LogV1");
    const long sent = 10 * static_cast<long>(failing + 1);
    CHECK(hotswap::call(f.a, Get{}).value() == a_before.count + sent);
    CHECK(hotswap::call(f.b, Get{}).value() == b_before.count + sent);
    CHECK(hotswap::call(f.c, InOrder{}).value() == static_cast<long>(c_before.size()) + sent);

    // And the same upgrade without the fault goes through.
    during_change = nullptr;
    REQUIRE(hotswap::upgrade({{f.a, hotswap::table_of<CounterUp>, 1},
                              {f.b, hotswap::table_of<CounterUp>, 1},
                              {f.c, hotswap::table_of<LogV2>, 1}}));
    CHECK(hotswap::call(f.a, Get{}).value() == a_before.count + sent);
  }
}

TEST_CASE("an upgrade reverts to the very state objects the servers had: the same addresses") {
  release_fixture f;
  hotswap::detail::server_core* cores[] = {f.a.core(), f.b.core(), f.c.core()};
  void* before[3];
  for (int i = 0; i < 3; ++i) before[i] = cores[i]->state;  // read while the servers are idle: no race
  const auto report = hotswap::upgrade({{f.a, hotswap::table_of<CounterUp>, 1},
                                        {f.b, hotswap::table_of<CounterUp>, 1},
                                        {f.c, hotswap::table_of<LogRefuses>, 1}});
  REQUIRE_FALSE(report);
  for (int i = 0; i < 3; ++i) CHECK(cores[i]->state == before[i]);  // the upgrade's answers ordered these reads
}

TEST_CASE("a server busy past the suspend deadline fails the upgrade before any code changes") {
  release_fixture f;
  gate held;
  hotswap::cast(f.b, held.message());
  REQUIRE(held.entered());
  f.send_during_changes();
  const auto report = hotswap::upgrade({{f.a, hotswap::table_of<CounterUp>, 1},
                                        {f.b, hotswap::table_of<CounterUp>, 1},
                                        {f.c, hotswap::table_of<LogV2>, 1}},
                                       {.suspend_timeout = 50ms});
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().code == hotswap::errc::timeout);
  CHECK(report.outcome.error().what.starts_with("step 2 of 3 (server " + std::to_string(f.b.id()) + ", suspend)"));
  for (const auto& step : report.steps) CHECK(step.time == 0ns);
  held.open();
  CHECK(sys::get_status(f.a).value().implementation == "testing::CounterV1");
  CHECK(hotswap::call(f.b, Get{}).value() == 9);  // the late suspend was resumed too
  CHECK_FALSE(sys::get_status(f.b).value().suspended);
  CHECK(sys::get_status(f.c).value().implementation == "testing::LogV1");
  CHECK(hotswap::call(f.c, InOrder{}).value() == 100);
}

TEST_CASE("a server stopped before its step fails the upgrade; the others run as before") {
  release_fixture f;
  auto gone = f.c;
  REQUIRE(hotswap::stop(gone));
  const auto report = hotswap::upgrade({{f.a, hotswap::table_of<CounterUp>, 1},
                                        {f.b, hotswap::table_of<CounterUp>, 1},
                                        {f.c, hotswap::table_of<LogV2>, 1}});
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().code == hotswap::errc::no_server);
  CHECK(sys::get_status(f.a).value().implementation == "testing::CounterV1");
  CHECK(hotswap::call(f.a, Get{}).value() == 5);
  CHECK(hotswap::call(f.b, Get{}).value() == 9);
}

TEST_CASE("a server busy in a handler holds the others no longer than the pause budget, whatever the suspend timeout") {
  release_fixture f;
  gate held;
  hotswap::cast(f.b, held.message());
  REQUIRE(held.entered());
  const auto report = hotswap::upgrade({{f.a, hotswap::table_of<CounterUp>, 1},
                                        {f.b, hotswap::table_of<CounterUp>, 1},
                                        {f.c, hotswap::table_of<LogV2>, 1}},
                                       {.suspend_timeout = 1h, .change_timeout = 1h, .pause_budget = 2ms});
  // Returned while b is still in its handler: the suspend waited for the budget, not the hour.
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().code == hotswap::errc::over_budget);
  CHECK(report.outcome.error().what.starts_with("step 2 of 3 (server " + std::to_string(f.b.id()) +
                                                ", suspend): no answer within the pause budget of 2000 us"));
  for (const auto& step : report.steps) CHECK(step.time == 0ns);
  // The others were resumed at once, as they were.
  CHECK(hotswap::call(f.a, Get{}).value() == 5);
  CHECK_FALSE(sys::get_status(f.a).value().suspended);
  CHECK(sys::get_status(f.c).value().implementation == "testing::LogV1");
  CHECK(hotswap::call(f.c, InOrder{}).value() == 100);
  held.open();
  CHECK(hotswap::call(f.b, Get{}).value() == 9);  // its late suspend was resumed too
  CHECK_FALSE(sys::get_status(f.b).value().suspended);
  CHECK(sys::get_status(f.b).value().implementation == "testing::CounterV1");
}

TEST_CASE("the pause budget is checked after each change: the changes after the one past it are not tried") {
  release_fixture f;
  std::atomic<int> changes{0};
  constexpr auto budget = 20ms;
  during_change = [&] {
    if (++changes == 1)  // a migration longer than the whole budget
      std::this_thread::sleep_until(std::chrono::steady_clock::now() + budget + 1ms);
  };
  // Idle servers take their sys requests on this thread, each change too, so the budget is
  // passed by the change (not by a wait that the budget's deadline cuts short, as a worker still
  // watching a server would make it on a loaded machine).
  (void)hotswap::call(f.a, Get{});
  (void)hotswap::call(f.b, Get{});
  REQUIRE(eventually([&] {
    return f.a.core()->run_state.load() == hotswap::detail::server_core::idle &&
           f.b.core()->run_state.load() == hotswap::detail::server_core::idle &&
           f.c.core()->run_state.load() == hotswap::detail::server_core::idle;
  }));
  const auto report = hotswap::upgrade({{f.a, hotswap::table_of<CounterUp>, 1},
                                        {f.b, hotswap::table_of<CounterUp>, 1},
                                        {f.c, hotswap::table_of<LogV2>, 1}},
                                       {.suspend_timeout = 1h, .change_timeout = 1h, .pause_budget = budget});
  REQUIRE_FALSE(report);
  CHECK(changes == 1);
  CHECK(report.outcome.error().code == hotswap::errc::over_budget);
  CHECK(report.outcome.error().what.starts_with("pause budget: the pause reached "));
  CHECK(report.outcome.error().what.ends_with(
      " us by the change_code of step 1 of 3, over its budget of 20000 us; every server runs its old code with its old "
      "state"));
  CHECK(report.steps[0].time > budget);
  CHECK(report.steps[1].time == 0ns);
  CHECK(report.pause >= report.steps[0].time);  // the servers were held through it
  CHECK(sys::get_status(f.a).value().implementation == "testing::CounterV1");
  CHECK(hotswap::call(f.a, Get{}).value() == 5);
  CHECK(hotswap::call(f.b, Get{}).value() == 9);
  CHECK(hotswap::call(f.c, InOrder{}).value() == 100);
}
