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

TEST_CASE("a restart that fails under rest_for_one is tried again from the child that ended, not the one that failed") {
  refusals = 0;
  auto sup = hotswap::start_supervisor(
                 {.strategy = hotswap::strategy::rest_for_one, .intensity = 5, .period = 600s},
                 {counter_child("rfo_first"), hotswap::child<Reluctant>("reluctant", {.name = "reluctant"}),
                  counter_child("rfo_last")})
                 .value();
  refusals = 1;  // the restart after the crash fails at the second child: the first is stopped again
  const auto first = named("rfo_first");
  hotswap::send(first, Crash{});
  REQUIRE(eventually([&] {
    const auto children = hotswap::call(sup, hotswap::which_children{}).value();
    return children.at(0).server && children.at(0).server != first && children.at(1).server && children.at(2).server;
  }));
  CHECK(refusals.load() == 0);
  REQUIRE(hotswap::stop(sup));
  exits().take();
}

// -- children of a running supervisor --

namespace {
/// A child that cannot start.
struct Refusing : CounterV1 {
  static state init() { throw std::runtime_error("cannot"); }
};

hotswap::server_ref<Counter> as_counter(const hotswap::any_server& server) {
  return hotswap::server_ref<Counter>::from(server).value();
}

std::vector<std::string> ids_of(const hotswap::server_ref<hotswap::supervisor_interface>& sup) {
  std::vector<std::string> ids;
  const auto children = hotswap::call(sup, hotswap::which_children{}).value();
  for (const auto& child : children) ids.push_back(child.id);
  return ids;
}
}  // namespace

TEST_CASE("start_child adds a child at the end; terminate_child, restart_child, delete_child and their refusals") {
  auto sup = hotswap::start_supervisor({.intensity = 3}, {counter_child("adm_a")}).value();
  const auto b = as_counter(hotswap::start_child(sup, counter_child("adm_b")).value());
  CHECK(named("adm_b") == b);
  CHECK(ids_of(sup) == std::vector<std::string>{"adm_a", "adm_b"});

  const auto taken = hotswap::start_child(sup, counter_child("adm_b"));
  REQUIRE_FALSE(taken);
  CHECK(taken.error().code == hotswap::errc::already_started);
  CHECK(taken.error().what == "child adm_b already runs, as server " + std::to_string(b.id()));
  CHECK(hotswap::restart_child(sup, "adm_b").error().code == hotswap::errc::child_running);
  CHECK(hotswap::delete_child(sup, "adm_b").error().what ==
        "child adm_b runs, as server " + std::to_string(b.id()) + ": terminate_child first");

  hotswap::cast(b, Add{4});
  CHECK(hotswap::call(b, Get{}).value() == 4);  // handled: a stop overtakes the messages waiting
  REQUIRE(hotswap::terminate_child(sup, "adm_b"));
  CHECK_FALSE(b.alive());
  CHECK(b.exit().kind == hotswap::exit_kind::shutdown);
  CHECK(exits().take() == std::vector<std::string>{"counter 4 shutdown: stopped by its supervisor"});
  CHECK(ids_of(sup) == std::vector<std::string>{"adm_a", "adm_b"});  // its spec is kept
  CHECK(hotswap::terminate_child(sup, "adm_b"));                     // a stopped child stays so
  const auto present = hotswap::start_child(sup, counter_child("adm_b"));
  REQUIRE_FALSE(present);
  CHECK(present.error().code == hotswap::errc::already_present);

  const auto again = hotswap::restart_child(sup, "adm_b").value();
  CHECK(again != b);
  CHECK(hotswap::call(hotswap::server_ref<Counter>::from(again).value(), Get{}).value() == 0);
  REQUIRE(hotswap::terminate_child(sup, "adm_b"));
  REQUIRE(hotswap::delete_child(sup, "adm_b"));
  CHECK(ids_of(sup) == std::vector<std::string>{"adm_a"});
  exits().take();

  for (const auto& missing : {hotswap::terminate_child(sup, "adm_b"), hotswap::delete_child(sup, "adm_b")}) {
    CHECK(missing.error().code == hotswap::errc::not_found);
    CHECK(missing.error().what == "no child has the id adm_b");
  }
  CHECK(hotswap::restart_child(sup, "adm_b").error().code == hotswap::errc::not_found);
  CHECK(hotswap::get_childspec(sup, "adm_b").error().code == hotswap::errc::not_found);

  const auto spec = hotswap::get_childspec(sup, "adm_a").value();
  CHECK(spec.id == "adm_a");
  CHECK(spec.restart == hotswap::restart::permanent);
  CHECK(spec.type == hotswap::child_type::worker);

  // A child that cannot start: its error, and its spec forgotten.
  const auto refused = hotswap::start_child(sup, hotswap::child<Refusing>("adm_refuses"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::init_failed);
  CHECK(refused.error().what == "child adm_refuses did not start: cannot");
  const auto throws =
      hotswap::start_child(sup, hotswap::child_spec{"adm_throws", []() -> hotswap::result<hotswap::any_server> {
                                                      throw std::runtime_error("a start that throws");
                                                    }});
  REQUIRE_FALSE(throws);  // as an init that throws: the supervisor lives on
  CHECK(throws.error().code == hotswap::errc::init_failed);
  CHECK(throws.error().what == "child adm_throws did not start: a start that throws");
  const auto no_start = hotswap::start_child(sup, hotswap::child_spec{"adm_nothing", {}});
  REQUIRE_FALSE(no_start);
  CHECK(no_start.error().code == hotswap::errc::bad_child_spec);
  CHECK(no_start.error().what == "child adm_nothing has no start function");
  CHECK(ids_of(sup) == std::vector<std::string>{"adm_a"});
  REQUIRE(hotswap::stop(sup));
  exits().take();
}

TEST_CASE("a temporary child terminated is forgotten, as OTP forgets its spec") {
  auto sup = hotswap::start_supervisor({}, {counter_child("tmp_kept", hotswap::restart::transient),
                                            counter_child("tmp_gone", hotswap::restart::temporary)})
                 .value();
  REQUIRE(hotswap::terminate_child(sup, "tmp_gone"));
  REQUIRE(hotswap::terminate_child(sup, "tmp_kept"));
  CHECK(ids_of(sup) == std::vector<std::string>{"tmp_kept"});
  CHECK(hotswap::restart_child(sup, "tmp_gone").error().code == hotswap::errc::not_found);
  REQUIRE(hotswap::stop(sup));
  exits().take();
}

TEST_CASE("count_children counts specs, running children, supervisors and workers") {
  auto sup = hotswap::start_supervisor({}, {counter_child("cnt_a"), counter_child("cnt_b"),
                                            hotswap::supervisor_child("cnt_inner", {}, {counter_child("cnt_deep")}),
                                            hotswap::dynamic_supervisor_child("cnt_pool")})
                 .value();
  auto counts = hotswap::count_children(sup).value();
  CHECK(counts.specs == 4);
  CHECK(counts.active == 4);
  CHECK(counts.supervisors == 2);
  CHECK(counts.workers == 2);
  CHECK(hotswap::get_childspec(sup, "cnt_pool").value().type == hotswap::child_type::supervisor);
  REQUIRE(hotswap::terminate_child(sup, "cnt_b"));
  REQUIRE(hotswap::terminate_child(sup, "cnt_inner"));
  counts = hotswap::count_children(sup).value();
  CHECK(counts.specs == 4);
  CHECK(counts.active == 2);
  CHECK(counts.supervisors == 2);  // running or not, as OTP counts them
  CHECK(counts.workers == 2);
  REQUIRE(hotswap::stop(sup));
  exits().take();
}

TEST_CASE("a child added by start_child is restarted by the strategy, at the end of the order") {
  auto rest = hotswap::start_supervisor({.strategy = hotswap::strategy::rest_for_one, .intensity = 5},
                                        {counter_child("add_r_a")})
                  .value();
  const auto b = hotswap::start_child(rest, counter_child("add_r_b")).value();
  const auto a = named("add_r_a");
  crash_and_wait("add_r_a");  // the one added after it restarts too
  REQUIRE(eventually([&] { return hotswap::whereis<Counter>("add_r_b") && named("add_r_b") != b; }));
  const auto b2 = named("add_r_b"), a2 = named("add_r_a");
  CHECK(a2 != a);
  crash_and_wait("add_r_b");  // the one added last: no other
  CHECK(named("add_r_a") == a2);
  REQUIRE(hotswap::stop(rest));
  exits().take();

  auto all = hotswap::start_supervisor({.strategy = hotswap::strategy::one_for_all, .intensity = 5},
                                       {counter_child("add_all_a")})
                 .value();
  (void)hotswap::start_child(all, counter_child("add_all_b")).value();
  const auto first = named("add_all_a");
  crash_and_wait("add_all_b");
  REQUIRE(eventually([&] { return hotswap::whereis<Counter>("add_all_a") && named("add_all_a") != first; }));
  const auto children = hotswap::call(all, hotswap::which_children{}).value();
  REQUIRE(children.size() == 2);
  CHECK(children[1].id == "add_all_b");
  CHECK(children[1].restarts == 1);
  REQUIRE(hotswap::stop(all));
  exits().take();
}

TEST_CASE("change_children replaces specs, adds children and removes others as one, and is undone by its answer") {
  auto sup = hotswap::start_supervisor({.intensity = 5}, {counter_child("chg_a"), counter_child("chg_b")}).value();
  const auto a = named("chg_a"), b = named("chg_b");
  auto before = hotswap::change_children(sup,
                                         {hotswap::child<CounterV1>("chg_a", {.name = "chg_a_next"}),
                                          counter_child("chg_c", hotswap::restart::transient)},
                                         {"chg_b"})
                    .value();
  REQUIRE(before.size() == 2);  // the specs replaced, then those removed
  CHECK(before[0].id == "chg_a");
  CHECK(before[1].id == "chg_b");
  CHECK(ids_of(sup) == std::vector<std::string>{"chg_a", "chg_c"});
  CHECK(named("chg_a") == a);  // a replaced spec takes effect at the child's next restart
  const auto c = named("chg_c");
  CHECK(hotswap::get_childspec(sup, "chg_c").value().restart == hotswap::restart::transient);
  CHECK_FALSE(b.alive());
  CHECK(b.exit().what == "stopped by its supervisor");
  hotswap::send(a, Crash{});
  REQUIRE(eventually([&] { return hotswap::whereis<Counter>("chg_a_next").has_value(); }));
  CHECK_FALSE(hotswap::whereis<Counter>("chg_a"));
  exits().take();

  // Its answer undoes it: the added child stopped, the replaced spec back, the removed child
  // started again (at the end).
  REQUIRE(hotswap::change_children(sup, std::move(before), {"chg_c"}));
  CHECK(ids_of(sup) == std::vector<std::string>{"chg_a", "chg_b"});
  CHECK_FALSE(c.alive());
  CHECK(named("chg_b").alive());
  const auto next = hotswap::whereis<Counter>("chg_a_next").value();
  hotswap::send(next, Crash{});
  REQUIRE(eventually([&] { return hotswap::whereis<Counter>("chg_a").has_value(); }));
  exits().take();

  // Checked whole first: nothing changes when one part is refused.
  auto refused = hotswap::change_children(sup, {hotswap::child_spec{"chg_d", {}}}, {});
  CHECK(refused.error().code == hotswap::errc::bad_child_spec);
  CHECK(refused.error().what == "child chg_d has no start function");
  refused = hotswap::change_children(sup, {}, {"chg_none"});
  CHECK(refused.error().code == hotswap::errc::not_found);
  CHECK(refused.error().what == "no child has the id chg_none");
  refused = hotswap::change_children(sup, {counter_child("chg_b")}, {"chg_b"});
  CHECK(refused.error().code == hotswap::errc::bad_child_spec);
  CHECK(refused.error().what == "child id chg_b is given twice");
  // A child that cannot start: those started by the call stopped, the specs put back.
  const auto b2 = named("chg_b");
  refused = hotswap::change_children(
      sup,
      {counter_child("chg_b", hotswap::restart::temporary), counter_child("chg_e"), hotswap::child<Refusing>("chg_r")},
      {"chg_a"});
  CHECK(refused.error().code == hotswap::errc::init_failed);
  CHECK(refused.error().what == "child chg_r did not start: cannot");
  CHECK(ids_of(sup) == std::vector<std::string>{"chg_a", "chg_b"});
  CHECK_FALSE(hotswap::whereis<Counter>("chg_e"));
  CHECK(hotswap::get_childspec(sup, "chg_b").value().restart == hotswap::restart::permanent);
  CHECK(named("chg_b") == b2);
  CHECK(named("chg_a").alive());
  REQUIRE(hotswap::stop(sup));
  exits().take();
}

// -- significant children and auto_shutdown --

TEST_CASE("significant children: refused when permanent, under auto_shutdown never, and ids given twice") {
  auto significant = [](const std::string& id, hotswap::restart restart) {
    auto spec = counter_child(id, restart);
    spec.significant = true;
    return spec;
  };
  const auto permanent = hotswap::start_supervisor({.auto_shutdown = hotswap::auto_shutdown::any_significant},
                                                   {significant("sig_never_a", hotswap::restart::permanent)});
  REQUIRE_FALSE(permanent);
  CHECK(permanent.error().code == hotswap::errc::bad_child_spec);
  CHECK(permanent.error().what ==
        "child sig_never_a is significant and permanent: only a transient or temporary child may be significant");
  const auto never = hotswap::start_supervisor({}, {significant("sig_never_b", hotswap::restart::transient)});
  REQUIRE_FALSE(never);
  CHECK(never.error().code == hotswap::errc::bad_child_spec);
  CHECK(never.error().what == "child sig_never_b is significant, under a supervisor whose auto_shutdown is never");
  const auto twice = hotswap::start_supervisor({}, {counter_child("sig_twice"), counter_child("sig_twice")});
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == hotswap::errc::bad_child_spec);
  CHECK(twice.error().what == "child id sig_twice is given twice");
  CHECK_FALSE(hotswap::whereis<Counter>("sig_never_a"));
  CHECK_FALSE(hotswap::whereis<Counter>("sig_twice"));

  auto sup = hotswap::start_supervisor({.auto_shutdown = hotswap::auto_shutdown::any_significant}, {}).value();
  const auto added = hotswap::start_child(sup, significant("sig_added", hotswap::restart::permanent));
  REQUIRE_FALSE(added);
  CHECK(added.error().code == hotswap::errc::bad_child_spec);
  REQUIRE(hotswap::stop(sup));
  auto plain = hotswap::start_supervisor({}, {}).value();
  CHECK(hotswap::start_child(plain, significant("sig_added", hotswap::restart::temporary)).error().code ==
        hotswap::errc::bad_child_spec);
  REQUIRE(hotswap::stop(plain));
  CHECK(exits().take().empty());
}

TEST_CASE("auto_shutdown any_significant: a significant child that ends by itself ends the supervisor (shutdown)") {
  auto sig = counter_child("any_sig", hotswap::restart::transient);
  sig.significant = true;
  auto inner =
      hotswap::supervisor_child("any_inner", {.intensity = 5, .auto_shutdown = hotswap::auto_shutdown::any_significant},
                                {counter_child("any_plain"), sig}, hotswap::restart::transient);
  auto root = hotswap::start_supervisor({.intensity = 5}, {std::move(inner)}).value();
  const auto sup = hotswap::server_ref<hotswap::supervisor_interface>::from(
                       hotswap::call(root, hotswap::which_children{}).value().at(0).server)
                       .value();
  crash_and_wait("any_sig");  // a transient child that crashed is restarted: no shutdown
  CHECK(sup.alive());
  REQUIRE(hotswap::terminate_child(sup, "any_sig"));        // stopped by its supervisor: no shutdown
  CHECK(hotswap::count_children(sup).value().active == 1);  // answered after the child's exit
  CHECK(sup.alive());
  (void)hotswap::restart_child(sup, "any_sig").value();
  exits().take();

  REQUIRE(hotswap::stop(named("any_sig")));  // ends by itself, normally: not restarted
  REQUIRE(eventually([&] { return !sup.alive(); }));
  CHECK(sup.exit().kind == hotswap::exit_kind::shutdown);
  CHECK(sup.exit().what == "auto_shutdown: significant child any_sig ended");
  CHECK(exits().take() ==
        std::vector<std::string>{"counter 0 normal", "counter 0 shutdown: stopped by its supervisor"});
  // Its own supervisor sees a transient child end with reason shutdown: not restarted.
  CHECK(hotswap::count_children(root).value().active == 0);
  CHECK_FALSE(hotswap::whereis<Counter>("any_plain"));
  REQUIRE(hotswap::stop(root));
}

TEST_CASE("auto_shutdown all_significant: the supervisor ends when the last significant child ends") {
  auto sig_a = counter_child("all_sig_a", hotswap::restart::temporary);
  auto sig_b = counter_child("all_sig_b", hotswap::restart::temporary);
  sig_a.significant = sig_b.significant = true;
  auto sup = hotswap::start_supervisor({.auto_shutdown = hotswap::auto_shutdown::all_significant},
                                       {counter_child("all_plain"), sig_a, sig_b})
                 .value();
  hotswap::send(named("all_sig_a"), Crash{});  // a temporary one, crashed: not restarted, ended
  REQUIRE(eventually([&] { return ids_of(sup).size() == 2; }));
  CHECK(sup.alive());
  REQUIRE(hotswap::stop(named("all_sig_b")));
  REQUIRE(eventually([&] { return !sup.alive(); }));
  CHECK(sup.exit().kind == hotswap::exit_kind::shutdown);
  CHECK(sup.exit().what == "auto_shutdown: significant child all_sig_b ended");
  CHECK_FALSE(hotswap::whereis<Counter>("all_plain"));
  exits().take();
}

// -- dynamic supervisors --

namespace {
hotswap::child_spec counting_from(int start, hotswap::restart restart = hotswap::restart::temporary) {
  return hotswap::child<CounterFrom>("", start, {}, restart);
}
}  // namespace

TEST_CASE("a dynamic supervisor starts children on demand, terminates them by server, and counts them") {
  auto pool = hotswap::start_dynamic_supervisor({}, {.name = "dyn_pool"}).value();
  const auto one = hotswap::start_child(pool, counting_from(1)).value();
  const auto two = hotswap::start_child(pool, counting_from(2)).value();
  CHECK(hotswap::call(as_counter(two), Get{}).value() == 2);
  auto children = hotswap::call(pool, hotswap::which_children{}).value();
  REQUIRE(children.size() == 2);
  CHECK(children[0].server == one);
  CHECK(children[1].server == two);
  CHECK(children[0].id.empty());
  auto counts = hotswap::count_children(pool).value();
  CHECK(counts.specs == 2);
  CHECK(counts.active == 2);
  CHECK(counts.workers == 2);
  CHECK(counts.supervisors == 0);

  REQUIRE(hotswap::terminate_child(pool, one));
  CHECK_FALSE(one.alive());
  CHECK(exits().take() == std::vector<std::string>{"counter 1 shutdown: stopped by its supervisor"});
  const auto again = hotswap::terminate_child(pool, one);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == hotswap::errc::not_found);
  CHECK(again.error().what == "server " + std::to_string(one.id()) + " is no child of this supervisor");
  CHECK(hotswap::terminate_child(pool, hotswap::any_server{}).error().code == hotswap::errc::not_found);
  CHECK(hotswap::count_children(pool).value().specs == 1);

  // Refused: a significant child, one without a start, flags OTP refuses; a start's own error.
  auto significant = counting_from(3);
  significant.significant = true;
  CHECK(hotswap::start_child(pool, significant).error().code == hotswap::errc::bad_child_spec);
  CHECK(hotswap::start_child(pool, hotswap::child_spec{}).error().code == hotswap::errc::bad_child_spec);
  const auto refused = hotswap::start_child(pool, hotswap::child<Refusing>(""));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::init_failed);
  CHECK(hotswap::start_dynamic_supervisor({.intensity = -1}).error().code == hotswap::errc::bad_flags);
  CHECK(hotswap::count_children(pool).value().specs == 1);

  REQUIRE(hotswap::stop(pool));
  CHECK_FALSE(two.alive());
  CHECK(exits().take() == std::vector<std::string>{"counter 2 shutdown: stopped by its supervisor"});
}

TEST_CASE("a dynamic supervisor refuses a child beyond max_children (errc::max_children)") {
  auto pool = hotswap::start_dynamic_supervisor({.max_children = 2}).value();
  const auto first = hotswap::start_child(pool, counting_from(1)).value();
  REQUIRE(hotswap::start_child(pool, counting_from(2)));
  const auto third = hotswap::start_child(pool, counting_from(3));
  REQUIRE_FALSE(third);
  CHECK(third.error().code == hotswap::errc::max_children);
  CHECK(third.error().what == "the dynamic supervisor has its 2 children (max_children)");
  REQUIRE(hotswap::terminate_child(pool, first));
  REQUIRE(hotswap::start_child(pool, counting_from(3)));
  CHECK(hotswap::count_children(pool).value().specs == 2);
  REQUIRE(hotswap::stop(pool));
  exits().take();
}

TEST_CASE("a dynamic child that ends is restarted by its restart type, and forgotten when it is not") {
  auto pool = hotswap::start_dynamic_supervisor({.intensity = 10, .period = 600s}).value();
  const auto permanent = hotswap::start_child(pool, counting_from(1, hotswap::restart::permanent)).value();
  const auto transient = hotswap::start_child(pool, counting_from(2, hotswap::restart::transient)).value();
  const auto temporary = hotswap::start_child(pool, counting_from(3, hotswap::restart::temporary)).value();
  auto server_at = [&](std::size_t at) { return hotswap::call(pool, hotswap::which_children{}).value().at(at).server; };

  hotswap::send(as_counter(permanent), Crash{});
  REQUIRE(eventually([&] { return server_at(0) && server_at(0) != permanent; }));
  const auto permanent2 = server_at(0);
  CHECK(hotswap::call(as_counter(permanent2), Get{}).value() == 1);  // from init, with its argument
  auto children = hotswap::call(pool, hotswap::which_children{}).value();
  CHECK(children[0].restarts == 1);
  REQUIRE(children[0].last_exit);
  CHECK(children[0].last_exit->what == "asked to crash");
  CHECK(hotswap::terminate_child(pool, permanent).error().code == hotswap::errc::not_found);  // known by its new server

  hotswap::send(as_counter(transient), Crash{});
  REQUIRE(eventually([&] { return server_at(1) && server_at(1) != transient; }));
  REQUIRE(hotswap::stop(server_at(1)));                     // a transient child that ends normally: forgotten
  CHECK(hotswap::count_children(pool).value().specs == 2);  // answered after the exit

  hotswap::send(as_counter(temporary), Crash{});  // a temporary one: forgotten
  REQUIRE(eventually([&] { return hotswap::count_children(pool).value().specs == 1; }));
  CHECK(server_at(0) == permanent2);
  REQUIRE(hotswap::stop(permanent2));  // a permanent one that ends normally: restarted
  REQUIRE(eventually([&] { return server_at(0) && server_at(0) != permanent2; }));
  REQUIRE(hotswap::stop(pool));
  exits().take();
}

TEST_CASE("a dynamic supervisor gives up beyond its intensity, stopping its children") {
  auto pool = hotswap::start_dynamic_supervisor({.intensity = 0, .period = 600s}).value();
  const auto steady = hotswap::start_child(pool, counting_from(7, hotswap::restart::permanent)).value();
  const auto crashing = hotswap::start_child(pool, counting_from(8, hotswap::restart::permanent)).value();
  hotswap::send(as_counter(crashing), Crash{});
  REQUIRE(eventually([&] { return !pool.alive(); }));
  CHECK(pool.exit().kind == hotswap::exit_kind::crashed);
  CHECK(pool.exit().what == "reached the maximum restart intensity (child server " + std::to_string(crashing.id()) +
                                " ended once too often)");
  CHECK_FALSE(steady.alive());
  exits().take();
}

TEST_CASE("10,000 dynamic children started and stopped; the supervisor stopped stops the rest, last first") {
  constexpr int many = 10'000;
  auto pool = hotswap::start_dynamic_supervisor().value();
  std::vector<hotswap::any_server> children;
  children.reserve(many);
  for (int i = 0; i < many; ++i) children.push_back(hotswap::start_child(pool, counting_from(i)).value());
  auto counts = hotswap::count_children(pool).value();
  CHECK(counts.specs == many);
  CHECK(counts.active == many);
  CHECK(counts.workers == many);
  for (int i = 0; i < many; i += 2) REQUIRE(hotswap::terminate_child(pool, children[static_cast<std::size_t>(i)]));
  counts = hotswap::count_children(pool).value();
  CHECK(counts.specs == many / 2);
  CHECK(counts.active == many / 2);
  CHECK(hotswap::call(pool, hotswap::which_children{}).value().at(0).server == children[1]);
  exits().take();

  REQUIRE(hotswap::stop(pool));
  const auto stopped = exits().take();
  REQUIRE(stopped.size() == many / 2);
  bool reversed = true;  // one CHECK, not 5,000
  for (std::size_t at = 0; at < stopped.size(); ++at)
    reversed = reversed && stopped[at] == "counter " + std::to_string(many - 1 - 2 * static_cast<int>(at)) +
                                              " shutdown: stopped by its supervisor";
  CHECK(reversed);
  CHECK(std::none_of(children.begin(), children.end(), [](const auto& child) { return child.alive(); }));
}

TEST_CASE("a dynamic supervisor under a supervisor") {
  auto root =
      hotswap::start_supervisor({}, {hotswap::dynamic_supervisor_child("dyn_under", {.max_children = 5})}).value();
  const auto pool = hotswap::server_ref<hotswap::dynamic_supervisor_interface>::from(
                        hotswap::call(root, hotswap::which_children{}).value().at(0).server)
                        .value();
  const auto child = hotswap::start_child(pool, counting_from(5)).value();
  CHECK(hotswap::count_children(root).value().supervisors == 1);
  REQUIRE(hotswap::stop(root));  // stops the dynamic supervisor, which stops its child
  CHECK_FALSE(pool.alive());
  CHECK_FALSE(child.alive());
  CHECK(exits().take() == std::vector<std::string>{"counter 5 shutdown: stopped by its supervisor"});
}

// -- shutdown policies --

namespace testing {
std::atomic<int> tracked_states_destroyed{0};
/// A counter whose state says when it is destroyed.
struct Tracked {
  int count = 0;
  Tracked() = default;
  Tracked(const Tracked&) = default;
  ~Tracked() { tracked_states_destroyed.fetch_add(1); }
};
struct TrackedCounter : counter_handlers<Tracked> {
  using interface = Counter;
  static constexpr int vsn = 1;
  using state = Tracked;
  static state init() { return {}; }
};
}  // namespace testing

TEST_CASE(
    "a child that ignores its shutdown is abandoned: told ended at once, its state goes later without terminate") {
  tracked_states_destroyed = 0;
  hotswap::child_spec stuck = hotswap::child<TrackedCounter>("stuck", {.name = "stuck"});
  stuck.shutdown = std::chrono::milliseconds(50);
  auto sup = hotswap::start_supervisor({}, {stuck}).value();
  const auto child = named("stuck");
  auto watched = hotswap::call(sup, hotswap::which_children{}).value().at(0).server;
  std::atomic<int> downs{0};
  std::string reason;
  auto ref = hotswap::monitor(watched, [&](const hotswap::down& d) {
    reason = d.reason.what;
    downs.fetch_add(1);
  });
  gate held;
  hotswap::cast(child, held.message());
  REQUIRE(held.entered());  // its handler holds its thread: a stop cannot run
  std::vector<std::string> reports;
  auto before = hotswap::set_report_sink([&](const hotswap::report& said) { reports.push_back(said.text); });
  REQUIRE(hotswap::terminate_child(sup, "stuck"));  // returns once its shutdown time is over
  hotswap::set_report_sink(std::move(before));
  CHECK_FALSE(child.alive());
  CHECK(downs.load() == 1);
  CHECK(reason == "killed: it did not stop within its shutdown time of 50 ms");
  CHECK_FALSE(hotswap::whereis<Counter>("stuck"));  // its name is free
  CHECK(hotswap::call(child, Get{}).error().code == hotswap::errc::no_server);
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].find("killed: it did not stop within its shutdown time of 50 ms; abandoned") != std::string::npos);
  held.open();
  REQUIRE(eventually([&] { return tracked_states_destroyed.load() == 1; }));  // its state went ...
  CHECK(exits().take().empty());                                              // ... without its terminate
  CHECK(downs.load() == 1);
  REQUIRE(hotswap::stop(sup));
}

TEST_CASE("brutal_kill abandons a child at once; a supervisor child waits for ever by default") {
  tracked_states_destroyed = 0;
  hotswap::child_spec brutal = hotswap::child<TrackedCounter>("brutal", {.name = "brutal"});
  brutal.shutdown = hotswap::brutal_kill;
  auto sup = hotswap::start_supervisor({}, {brutal, hotswap::supervisor_child("inner", {}, {})}).value();
  const auto child = named("brutal");
  REQUIRE(hotswap::terminate_child(sup, "brutal"));
  CHECK_FALSE(child.alive());
  CHECK(child.exit().what == "killed (brutal_kill)");
  REQUIRE(eventually([&] { return tracked_states_destroyed.load() == 1; }));
  CHECK(exits().take().empty());  // no terminate
  CHECK(hotswap::get_childspec(sup, "inner").value().shutdown == hotswap::infinity);
  REQUIRE(hotswap::stop(sup));
}
