// Supervisors: strategies, restart types, intensity and its escalation, applications.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;

namespace {

hotswap::server_ref<Counter> named(const std::string& name) { return hotswap::whereis<Counter>(name).value(); }

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
  auto sup = hotswap::start_supervisor(
                 {.intensity = 5},
                 {counter_child("transient", hotswap::restart::transient),
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
  auto inner = hotswap::supervisor_child("inner", {.intensity = 1}, {counter_child("deep")});
  auto root = hotswap::start_supervisor({.intensity = 5}, {std::move(inner)}).value();
  const auto first_inner = hotswap::call(root, hotswap::which_children{}).value().at(0).server;
  crash_and_wait("deep");  // one restart: within the intensity
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
