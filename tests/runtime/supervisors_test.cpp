// Supervisors: strategies, restart types, intensity and its escalation, applications.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;

namespace {

hotswap::server_ref<Counter> named(const std::string& name) {
  return hotswap::whereis<Counter>(name).value();
}

/// Crashes the server registered as `name` and waits until its supervisor restarted it.
hotswap::server_ref<Counter> crash_and_wait(const std::string& name) {
  const auto before = named(name);
  hotswap::send(before, Crash{});
  hotswap::server_ref<Counter> after;
  REQUIRE(eventually([&] {
    const auto now = hotswap::whereis<Counter>(name);
    return now && now->id() != before.id() && (after = *now, true);
  }));
  return after;
}

hotswap::child_spec counter_child(const std::string& name, hotswap::restart restart = hotswap::restart::permanent) {
  return hotswap::child<CounterV1>(name, {.name = name}, restart);
}
}  // namespace

TEST_CASE("one_for_one restarts the child that crashed, from init, and no other") {
  auto sup = hotswap::start_supervisor({.strategy = hotswap::strategy::one_for_one, .intensity = 3},
                                       {counter_child("o4o_a"), counter_child("o4o_b")})
                 .value();
  const auto b = named("o4o_b");
  hotswap::cast(named("o4o_a"), Add{5});
  hotswap::cast(b, Add{7});
  const auto a = crash_and_wait("o4o_a");
  CHECK(hotswap::call(a, Get{}).value() == 0);  // a fresh state from init
  CHECK(named("o4o_b") == b);
  CHECK(hotswap::call(b, Get{}).value() == 7);
  const auto children = hotswap::call(sup, hotswap::which_children{}).value();
  REQUIRE(children.size() == 2);
  CHECK(children[0].id == "o4o_a");
  CHECK(children[0].server == a);
  REQUIRE(hotswap::stop(sup));
  CHECK(exits().take() == std::vector<std::string>{"counter 5 crashed: asked to crash",
                                                   "counter 7 shutdown: stopped by its supervisor",
                                                   "counter 0 shutdown: stopped by its supervisor"});
}

TEST_CASE("one_for_all restarts every child; rest_for_one those started after the one that crashed") {
  auto all = hotswap::start_supervisor({.strategy = hotswap::strategy::one_for_all, .intensity = 3},
                                       {counter_child("o4a_a"), counter_child("o4a_b")})
                 .value();
  const auto b = named("o4a_b");
  crash_and_wait("o4a_a");
  REQUIRE(eventually([&] { return hotswap::whereis<Counter>("o4a_b") && named("o4a_b") != b; }));
  REQUIRE(hotswap::stop(all));
  exits().take();

  auto rest = hotswap::start_supervisor({.strategy = hotswap::strategy::rest_for_one, .intensity = 3},
                                        {counter_child("r4o_a"), counter_child("r4o_b"), counter_child("r4o_c")})
                  .value();
  const auto a = named("r4o_a"), c = named("r4o_c");
  crash_and_wait("r4o_b");
  REQUIRE(eventually([&] { return hotswap::whereis<Counter>("r4o_c") && named("r4o_c") != c; }));
  CHECK(named("r4o_a") == a);
  REQUIRE(hotswap::stop(rest));
  exits().take();
}

TEST_CASE("transient children restart only after a crash, temporary ones never") {
  auto sup = hotswap::start_supervisor({.intensity = 5}, {counter_child("transient", hotswap::restart::transient),
                                                          counter_child("temporary", hotswap::restart::temporary)})
                 .value();
  crash_and_wait("transient");
  REQUIRE(hotswap::stop(named("transient")));  // a normal exit: not restarted
  hotswap::send(named("temporary"), Crash{});
  REQUIRE(eventually([&] { return hotswap::call(sup, hotswap::which_children{}).value().size() == 1; }));
  const auto children = hotswap::call(sup, hotswap::which_children{}).value();
  CHECK(children[0].id == "transient");
  CHECK_FALSE(children[0].server);
  CHECK_FALSE(hotswap::whereis<Counter>("transient"));
  REQUIRE(hotswap::stop(sup));
  exits().take();
}

TEST_CASE("restarts beyond the intensity end the supervisor, and its supervisor restarts it") {
  // The period is long enough that a slow machine cannot let the two crashes fall in two periods.
  auto inner = hotswap::supervisor_child("inner", {.intensity = 1, .period = 600s}, {counter_child("deep")});
  auto root = hotswap::start_supervisor({.intensity = 5}, {std::move(inner)}).value();
  const auto first_inner = hotswap::call(root, hotswap::which_children{}).value().at(0).server;
  crash_and_wait("deep");                 // one restart: within the intensity
  hotswap::send(named("deep"), Crash{});  // a second within the period: the inner supervisor gives up
  REQUIRE(eventually([&] { return !first_inner.alive(); }));
  CHECK(first_inner.exit().kind == hotswap::exit_kind::crashed);
  CHECK(first_inner.exit().what == "reached the maximum restart intensity (child deep ended once too often)");
  // The root restarted the inner supervisor, which started its child again.
  REQUIRE(eventually([&] {
    const auto children = hotswap::call(root, hotswap::which_children{}).value();
    return children.at(0).server && children.at(0).server != first_inner && hotswap::whereis<Counter>("deep");
  }));
  CHECK(hotswap::call(named("deep"), Get{}).value() == 0);
  REQUIRE(hotswap::stop(root));
  exits().take();
}

TEST_CASE("an application starts its children in order and stops them in reverse") {
  auto app = hotswap::application::start(
                 "app", {}, {counter_child("app_first"), counter_child("app_second"), counter_child("app_third")})
                 .value();
  CHECK(app.running());
  hotswap::cast(named("app_first"), Add{1});
  hotswap::cast(named("app_second"), Add{2});
  hotswap::cast(named("app_third"), Add{3});
  (void)hotswap::call(named("app_third"), Get{});
  (void)hotswap::call(named("app_second"), Get{});
  (void)hotswap::call(named("app_first"), Get{});
  REQUIRE(app.stop());
  CHECK_FALSE(app.running());
  CHECK(exits().take() == std::vector<std::string>{"counter 3 shutdown: stopped by its supervisor",
                                                   "counter 2 shutdown: stopped by its supervisor",
                                                   "counter 1 shutdown: stopped by its supervisor"});
  CHECK_FALSE(hotswap::whereis<Counter>("app_first"));
}

TEST_CASE("a supervisor whose child cannot start does not start") {
  struct Refuses : CounterV1 {
    static state init() { throw std::runtime_error("cannot"); }
  };
  const auto sup = hotswap::start_supervisor(
      {}, {counter_child("starts_first"), hotswap::child<Refuses>("refuses", {.name = "refuses"})});
  REQUIRE_FALSE(sup);
  CHECK(sup.error().what == "child refuses did not start: cannot");
  CHECK_FALSE(hotswap::whereis<Counter>("starts_first"));
  CHECK(exits().take() == std::vector<std::string>{"counter 0 shutdown: stopped by its supervisor"});
}

TEST_CASE("flags OTP refuses are refused: no intensity below 0, no period of 0 (a restart storm)") {
  const auto negative = hotswap::start_supervisor({.intensity = -1}, {counter_child("never_a")});
  REQUIRE_FALSE(negative);
  CHECK(negative.error().code == hotswap::errc::bad_flags);
  CHECK(negative.error().what == "the intensity must be 0 or more, not -1");
  const auto no_period = hotswap::start_supervisor({.intensity = 5, .period = 0ms}, {counter_child("never_b")});
  REQUIRE_FALSE(no_period);
  CHECK(no_period.error().what == "the period must be more than 0, not 0 ms");
  CHECK_FALSE(hotswap::whereis<Counter>("never_a"));
  CHECK_FALSE(hotswap::whereis<Counter>("never_b"));
  // Nested, the inner supervisor is a child that cannot start.
  const auto outer =
      hotswap::start_supervisor({}, {hotswap::supervisor_child("inner", {.period = -1ms}, {counter_child("never_c")})});
  REQUIRE_FALSE(outer);
  CHECK(outer.error().what == "child inner did not start: the period must be more than 0, not -1 ms");
}

namespace testing {
/// Its init throws while `refusals` is above 0 (and counts it down).
std::atomic<int> refusals{0};
struct Reluctant : CounterV1 {
  static state init() {
    if (refusals.load() > 0) {
      --refusals;
      throw std::runtime_error("not now");
    }
    return {};
  }
};
}  // namespace testing

TEST_CASE("a restart whose init throws counts against the intensity and is tried again, as in OTP") {
  for (const auto strategy : {hotswap::strategy::one_for_one, hotswap::strategy::one_for_all}) {
    refusals = 0;
    auto sup = hotswap::start_supervisor(
                   {.strategy = strategy, .intensity = 3, .period = 600s},
                   {counter_child("steady"), hotswap::child<Reluctant>("reluctant", {.name = "reluctant"})})
                   .value();
    refusals = 2;  // the crash, then two failed restarts: three restarts, within the intensity
    const auto first = named("reluctant");
    hotswap::send(first, Crash{});
    // The name also resolves, briefly, to each restart whose init is about to throw: only the
    // one that started answers.
    REQUIRE(eventually([&] {
      const auto now = hotswap::whereis<Counter>("reluctant");
      return now && now->id() != first.id() && hotswap::call(*now, Get{}).has_value();
    }));
    CHECK(refusals.load() == 0);
    CHECK(sup.alive());
    CHECK(hotswap::call(sup, hotswap::which_children{}).value().size() == 2);
    REQUIRE(hotswap::stop(sup));
    exits().take();

    // One failure more than the intensity allows: the supervisor gives up.
    auto strict = hotswap::start_supervisor({.strategy = strategy, .intensity = 2, .period = 600s},
                                            {hotswap::child<Reluctant>("reluctant", {.name = "reluctant"})})
                      .value();
    refusals = 2;
    hotswap::send(named("reluctant"), Crash{});
    REQUIRE(eventually([&] { return !strict.alive(); }));
    CHECK(strict.exit().what == "reached the maximum restart intensity (child reluctant ended once too often)");
    CHECK(refusals.load() == 0);
    exits().take();
  }
}

TEST_CASE("a supervisor reports a child's end, its restart and giving up; which_children counts restarts") {
  struct heard {
    std::mutex lock;
    std::vector<hotswap::report> reports;
    std::vector<std::string> lines(hotswap::report::kind about) {
      const std::lock_guard hold(lock);
      std::vector<std::string> found;
      for (const auto& one : reports)
        if (one.about == about) found.push_back(one.text);
      return found;
    }
  };
  auto sink = std::make_shared<heard>();
  const hotswap::report_sink before = hotswap::set_report_sink([sink](const hotswap::report& said) {
    const std::lock_guard hold(sink->lock);
    sink->reports.push_back(said);
  });
  auto sup = hotswap::start_supervisor({.strategy = hotswap::strategy::one_for_one, .intensity = 1, .period = 1h},
                                       {counter_child("reported")}, {.name = "reporting"})
                 .value();
  const std::string who = "supervisor report: server " + std::to_string(sup.id()) + " (reporting): ";
  const auto first = named("reported");
  CHECK(sink->lines(hotswap::report::kind::progress) ==
        std::vector<std::string>{who + "started child reported as server " + std::to_string(first.id())});
  const auto second = crash_and_wait("reported");
  const auto children = hotswap::call(sup, hotswap::which_children{}).value();
  REQUIRE(children.size() == 1);
  CHECK(children[0].restarts == 1);
  REQUIRE(children[0].last_exit);
  CHECK(children[0].last_exit->kind == hotswap::exit_kind::crashed);
  CHECK(children[0].last_exit->what == "asked to crash");
  CHECK(sink->lines(hotswap::report::kind::supervisor) ==
        std::vector<std::string>{who + "child reported (server " + std::to_string(first.id()) +
                                 ") ended: crashed (asked to crash); restarting it"});
  CHECK(sink->lines(hotswap::report::kind::progress).back() ==
        who + "started child reported as server " + std::to_string(second.id()));

  hotswap::send(second, Crash{});  // a second restart within the period: over the intensity
  REQUIRE(eventually([&] { return !sup.alive(); }));
  const auto said = sink->lines(hotswap::report::kind::supervisor);
  REQUIRE(said.size() == 3);
  CHECK(said[2] == who +
                       "gave up: more than 1 restarts in 3600000 ms (child reported ended once too often); it stops "
                       "its children and ends");
  const auto crashes = sink->lines(hotswap::report::kind::crash);
  REQUIRE(crashes.size() == 3);  // the child twice, then the supervisor
  CHECK(crashes[2].starts_with("crash report: server " + std::to_string(sup.id()) + " (reporting), "));
  hotswap::set_report_sink(before);
  (void)exits().take();
}
