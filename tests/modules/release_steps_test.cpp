// Releases that change which servers run: a manifest's "start", "stop" and "restart", planned,
// run inside the one upgrade, put back when any step fails, and undone by a rollback.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <hotswap/control.hpp>
#include <hotswap/releases.hpp>

#include "../runtime/servers.hpp"
#include "shop.hpp"

using namespace std::chrono_literals;
using testing::Add;
using testing::Counter;
using testing::Get;
using testing::running_release;
using testing::what;
namespace sys = hotswap::sys;

namespace {
/// Release shop `vsn` of `modules` (as running_release::manifest stages them), with `steps`
/// (the JSON of "start", "stop" and "restart", each after a comma) added to its manifest.
std::string with_steps(running_release& shop, const std::string& vsn, const std::vector<std::string>& modules,
                       const std::string& steps) {
  const std::string path = shop.manifest(vsn, modules);
  std::string text = testing::read_bytes(path);
  text.insert(text.rfind('}'), steps);
  testing::write_bytes(path, text);
  return path;
}

/// Why read_release refuses a manifest of release a 1 with `more` (JSON members, each after a
/// comma) after its modules: what it says after the file's name (errc::bad_release checked).
std::string manifest_refusal(const testing::scratch& files, const std::string& more) {
  testing::write_bytes(files.dir + "/bad.json",
                       R"({"hotswap_release": 1, "name": "a", "vsn": "1", "modules": ["x.so"])" + more + "}");
  const auto read = hotswap::read_release(files.dir + "/bad.json");
  REQUIRE_FALSE(read);
  CHECK(read.error().code == hotswap::errc::bad_release);
  return read.error().what.substr(files.dir.size() + sizeof("/bad.json:"));
}

/// The shop with names: a registered as "alpha", b as "beta".
struct named_shop : running_release {
  named_shop() {
    REQUIRE(hotswap::register_name("alpha", a));
    REQUIRE(hotswap::register_name("beta", b));
  }
  ~named_shop() {  // what the releases started, whatever a test left
    for (const char* name : {"alpha", "beta", "tallies", "local"})
      if (auto left = hotswap::whereis<Counter>(name)) (void)hotswap::stop(*left);
  }
  /// Release 2: counter and minimal moved on, tally new; "tallies" started on tally, beta
  /// stopped, alpha restarted (on counter vsn 2, its state handed over).
  std::string release_2(const char* minimal = "minimal_v2", const char* counter = "counter_v2") {
    return with_steps(*this, "2", {counter, minimal, "tally_v1"},
                      R"(, "start": [{"name": "tallies", "module": "tally"}], "stop": ["beta"], )"
                      R"("restart": ["alpha"])");
  }
};

/// How `server` ended, once it has: its monitor's reason.
struct ending {
  std::mutex lock;
  std::string reason;
  hotswap::monitor_ref ref;
  explicit ending(const hotswap::any_server& server)
      : ref(hotswap::monitor(server, [this](const hotswap::down& ended) {
          const std::lock_guard hold(lock);
          reason = testing::describe(ended.reason);
        })) {}
  std::string said() {
    const std::lock_guard hold(lock);
    return reason;
  }
};
}  // namespace

TEST_CASE("a release starts, stops and restarts servers by name, in its plan and in its one pause") {
  named_shop shop;
  const auto target = shop.release_2();
  const std::string dir = target.substr(0, target.rfind('/'));
  const auto plan = shop.releases.plan(target).value();
  const std::string a = std::to_string(shop.a.id()), b = std::to_string(shop.b.id()), c = std::to_string(shop.c.id());
  CHECK(to_string(plan) ==
        fmt::format("release shop 1 -> shop 2\n"
                    "  counter 1 -> 2 ({0}/counter_v2-2.so)\n"
                    "  minimal 1 -> 2 ({0}/minimal_v2-2.so)\n"
                    "    server {3}: vsn 1 -> 2\n"
                    "  tally new -> 1 ({0}/tally_v1-2.so)\n"
                    "  start tallies: tally vsn 1\n"
                    "  stop beta: server {2} (beta)\n"
                    "  restart alpha: server {1} (alpha), counter vsn 1 -> 2, its state handed over\n",
                    dir, a, b, c));
  CHECK(shop.code.current("counter")->vsn() == 1);  // a plan changes nothing
  CHECK_FALSE(hotswap::whereis<Counter>("tallies"));

  ending beta(shop.b), alpha(shop.a);
  hotswap::cast(shop.a, Add{2});
  std::vector<std::string> lines;
  const auto report = shop.releases.upgrade(target, shop.sending(&lines));
  REQUIRE(what(report) == "done");
  const auto tallies = hotswap::whereis<Counter>("tallies");
  const auto restarted = hotswap::whereis<Counter>("alpha");
  REQUIRE(tallies);
  REQUIRE(restarted);
  CHECK(report.servers == std::vector<std::string>{
                              "started tallies: server " + std::to_string(tallies->id()) + " (tallies) on tally vsn 1",
                              "restarted alpha: server " + a + " (alpha) -> server " + std::to_string(restarted->id()) +
                                  " on counter vsn 2, its state handed over",
                              "stopped beta: server " + b + " (beta)"});
  CHECK(to_string(report).find("\nstopped beta: server " + b + " (beta)\n") != std::string::npos);
  // The stages: the start before the pause, the restart in it after the changes, the stop after.
  std::vector<std::string> stages;
  for (const auto& line : lines) stages.push_back(line.substr(0, line.find(':')));
  CHECK(stages == std::vector<std::string>{"load", "load", "load", "start", "suspend", "change_code", "restart",
                                           "commit", "resume", "stop", "purge", "purge"});

  CHECK(sys::get_status(*tallies).value().implementation == shop.code.current("tally")->implementation());
  CHECK(hotswap::call(*tallies, Get{}).value() == 0);
  // alpha: another server, on counter vsn 2, with the state the old one had (the Adds sent while
  // it was held were for the old one: they failed with it).
  CHECK(*restarted != hotswap::server_ref<Counter>(shop.a));
  CHECK_FALSE(shop.a.alive());
  CHECK(sys::get_status(*restarted).value().vsn == 2);
  CHECK(hotswap::call(*restarted, Get{}).value() == 5 + 2);
  CHECK(alpha.said() == "normal: restarted by release shop 2 as server " + std::to_string(restarted->id()));
  // beta: stopped for good (no grace period), its name free.
  CHECK_FALSE(shop.b.alive());
  CHECK(beta.said() == "shutdown: stopped by release shop 2");
  CHECK_FALSE(hotswap::whereis<Counter>("beta"));
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
  CHECK_FALSE(shop.code.old("counter"));  // nothing left on vsn 1: purged
  (void)hotswap::stop(*tallies);
  (void)hotswap::stop(*restarted);
}

TEST_CASE("a step failing after the servers were started, stopped and restarted puts every server back") {
  // minimal's code_change throws (a change in place, after the start); or alpha's handover does
  // (counter vsn 2 refuses a count of 13).
  for (const bool restart_fails : {false, true}) {
    CAPTURE(restart_fails);
    named_shop shop;
    if (restart_fails) hotswap::cast(shop.a, Add{8});  // 13
    const int a_count = restart_fails ? 13 : 5;
    const auto target =
        restart_fails ? shop.release_2("minimal_v2", "counter_v2_refuses_13") : shop.release_2("minimal_v2_refuses");
    std::vector<std::string> lines;
    const auto report = shop.releases.upgrade(target, shop.sending(&lines));
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::code_change_failed);
    CHECK(report.outcome.error().what ==
          (restart_fails
               ? "restart: server " + std::to_string(shop.a.id()) + " (alpha): 13 is unlucky"
               : "step 1 of 1 (server " + std::to_string(shop.c.id()) + ", change_code): minimal v2 refuses") +
              "; every server runs its old code with its old state");
    CHECK(lines.back().starts_with("rollback: "));
    CHECK(report.servers.empty());
    // The started server is gone, its name free; beta and alpha are the very servers they were,
    // under their names, with their states and what was sent meanwhile.
    CHECK_FALSE(hotswap::whereis<Counter>("tallies"));
    CHECK(hotswap::whereis<Counter>("alpha") == hotswap::server_ref<Counter>(shop.a));
    CHECK(hotswap::whereis<Counter>("beta") == hotswap::server_ref<Counter>(shop.b));
    CHECK(hotswap::call(shop.a, Get{}).value() == a_count + shop.sent);
    CHECK(hotswap::call(shop.b, Get{}).value() == 9 + shop.sent);
    CHECK(sys::get_status(shop.a).value().implementation == "testing::CounterV1");
    CHECK(sys::get_status(shop.b).value().implementation == "testing::CounterV1");
    CHECK(hotswap::call(shop.c, Ping{}).value() == 1);
    CHECK(shop.code.current("counter")->vsn() == 1);
    CHECK_FALSE(shop.code.current("tally"));  // unloaded
    CHECK(shop.releases.which_releases().size() == 1);
  }
}

TEST_CASE("a rollback stops what the release started, starts again what it stopped and restarts back") {
  SECTION("no grace period: a server stopped is started again from its init") {
    named_shop shop;
    REQUIRE(what(shop.releases.upgrade(shop.release_2())) == "done");
    hotswap::cast(*hotswap::whereis<Counter>("alpha"), Add{1});
    const auto plan = shop.releases.plan(shop.manifest("1", {"counter_v1", "minimal"})).value();
    const std::string text = to_string(plan);
    CHECK(text.find("  stop tallies: server ") != std::string::npos);
    CHECK(text.find("  start beta: counter vsn 1\n") != std::string::npos);
    CHECK(text.find("), counter vsn 2 -> 1, its state handed over\n") != std::string::npos);
    const auto report = shop.releases.rollback();
    REQUIRE(what(report) == "done");
    CHECK_FALSE(hotswap::whereis<Counter>("tallies"));
    const auto alpha = hotswap::whereis<Counter>("alpha"), beta = hotswap::whereis<Counter>("beta");
    REQUIRE(alpha);
    REQUIRE(beta);
    CHECK(sys::get_status(*alpha).value().vsn == 1);
    CHECK(hotswap::call(*alpha, Get{}).value() == 5 + 1);  // migrated down
    CHECK(sys::get_status(*beta).value().vsn == 1);
    CHECK(hotswap::call(*beta, Get{}).value() == 0);  // from its init: its state went with its stop
    CHECK(shop.code.current("counter")->vsn() == 1);
    CHECK(shop.releases.rollback().outcome.error().code == hotswap::errc::no_release);
    (void)hotswap::stop(*alpha);
    (void)hotswap::stop(*beta);
  }
  SECTION("in a grace period: a server stopped is held until it ends, and resumed with its state") {
    named_shop shop;
    hotswap::upgrade_options options;
    options.grace_period = std::chrono::hours(1);
    const auto report = shop.releases.upgrade(shop.release_2(), options);
    REQUIRE(what(report) == "done");
    CHECK(report.servers.back() == "stopped beta: server " + std::to_string(shop.b.id()) +
                                       " (beta), held suspended until the grace period ends");
    CHECK(shop.b.alive());
    CHECK_FALSE(hotswap::whereis<Counter>("beta"));  // its name free
    // A crash of the server it started rolls the release back, by itself.
    hotswap::send(*hotswap::whereis<Counter>("tallies"), testing::Crash{});
    REQUIRE(testing::eventually([&] { return shop.logged("rollback: rolled back: release shop 1 runs again"); }));
    CHECK(shop.logged("start: resumed beta: server " + std::to_string(shop.b.id()) +
                      " (beta), its state kept since it was stopped"));
    CHECK(hotswap::whereis<Counter>("beta") == hotswap::server_ref<Counter>(shop.b));
    CHECK(hotswap::call(shop.b, Get{}).value() == 9);  // the very server, its state kept
    const auto alpha = hotswap::whereis<Counter>("alpha");
    REQUIRE(alpha);
    CHECK(sys::get_status(*alpha).value().vsn == 1);
    CHECK(hotswap::call(*alpha, Get{}).value() == 5);
    CHECK_FALSE(hotswap::whereis<Counter>("tallies"));
    CHECK(shop.code.current("counter")->vsn() == 1);
    (void)hotswap::stop(*alpha);
  }
  SECTION("made permanent: the server held is stopped for good") {
    named_shop shop;
    hotswap::upgrade_options options;
    options.grace_period = std::chrono::hours(1);
    REQUIRE(what(shop.releases.upgrade(shop.release_2(), options)) == "done");
    ending beta(shop.b);
    REQUIRE(shop.releases.make_permanent());
    CHECK_FALSE(shop.b.alive());
    CHECK(beta.said() == "shutdown: stopped by a release");
    CHECK(shop.logged("stop: stopped beta: server " + std::to_string(shop.b.id()) +
                      ", held since its release stopped it"));
    (void)hotswap::stop(*hotswap::whereis<Counter>("tallies"));
    (void)hotswap::stop(*hotswap::whereis<Counter>("alpha"));
  }
}

TEST_CASE("a plan refuses the servers a release cannot start, stop or restart, each saying why") {
  named_shop shop;
  auto local = hotswap::start<testing::CounterV1>({.name = "local"}).value();  // the program's own code
  REQUIRE(hotswap::register_name("gamma", shop.c));
  const auto refused = shop.releases.plan(
      with_steps(shop, "3", {"counter_v2", "minimal_v2_takes_int"},
                 R"(, "start": [{"name": "alpha", "module": "counter"}, {"name": "t", "module": "tally"}, )"
                 R"({"name": "pings", "module": "minimal"}], "stop": ["nobody"], "restart": ["local", "gamma"])"));
  REQUIRE_FALSE(refused);
  const std::string& why = refused.error().what;
  CAPTURE(why);
  CHECK(why.find("\n  - start alpha: the name is taken, by server " + std::to_string(shop.a.id()) + " (alpha)") !=
        std::string::npos);
  CHECK(why.find("\n  - start t: release shop 3 has no module tally") != std::string::npos);
  CHECK(why.find("\n  - start pings: the init of minimal vsn 2 takes an argument (int): a release starts only "
                 "servers whose init takes none") != std::string::npos);
  CHECK(why.find("\n  - stop nobody: no server is registered as nobody") != std::string::npos);
  CHECK(why.find("\n  - restart local: server " + std::to_string(local.id()) +
                 " (local) runs no module (testing::CounterV1): only a module's server is restarted") !=
        std::string::npos);
  // gamma's state is handed over (minimal vsn 2 changes code from 1), but were it not, its init
  // would need an argument: it is restarted all the same here.
  CHECK(std::count(why.begin(), why.end(), '\n') == 5);
  shop.check_release_1_runs();
  (void)hotswap::stop(local);
}

TEST_CASE("a restart whose state cannot be handed over starts the new server from its init") {
  named_shop shop;
  // counter vsn 3 does not change code from vsn 1: in place, refused; restarted, from its init.
  const auto target = with_steps(shop, "3", {"counter_v3", "minimal"}, R"(, "restart": ["alpha", "beta"])");
  const auto plan = shop.releases.plan(target).value();
  const std::string a = "server " + std::to_string(shop.a.id()) + " (alpha)";
  CHECK(to_string(plan).find("  restart alpha: " + a + ", counter vsn 1 -> 3, state not kept (" + a +
                             " runs vsn 1, which counter vsn 3 cannot change code from: its state_history lists "
                             "vsns 2 (add hotswap::version<1, ...> there))\n") != std::string::npos);
  ending alpha_ended(shop.a);
  const auto report = shop.releases.upgrade(target);
  REQUIRE(what(report) == "done");
  const auto alpha = hotswap::whereis<Counter>("alpha");
  REQUIRE(alpha);
  CHECK(sys::get_status(*alpha).value().vsn == 3);
  CHECK(hotswap::call(*alpha, Get{}).value() == 0);
  CHECK(report.servers[0].ends_with("on counter vsn 3, from its init"));
  CHECK(alpha_ended.said().starts_with("normal: restarted by release shop 3 as server "));
  (void)hotswap::stop(*alpha);
  (void)hotswap::stop(*hotswap::whereis<Counter>("beta"));
}

TEST_CASE("a dry run lists the servers a release would start, stop and restart, and fails where it would") {
  named_shop shop;
  auto report = shop.releases.dry_run(shop.release_2());
  REQUIRE(what(report) == "done");
  REQUIRE(report.servers.size() == 3);
  CHECK(report.servers[0] == "would start tallies: tally vsn 1");
  CHECK(report.servers[1] == "would stop beta: server " + std::to_string(shop.b.id()) + " (beta)");
  CHECK(report.servers[2].starts_with("would restart alpha: server " + std::to_string(shop.a.id()) +
                                      " (alpha) -> counter vsn 2, its state handed over, made in "));
  shop.check_release_1_runs();
  CHECK_FALSE(hotswap::whereis<Counter>("tallies"));
  hotswap::cast(shop.a, Add{8});  // 13: counter vsn 2 refuses it
  report = shop.releases.dry_run(shop.release_2("minimal_v2", "counter_v2_refuses_13"));
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().what ==
        "restart alpha (server " + std::to_string(shop.a.id()) + " (alpha), dry run): 13 is unlucky; nothing changed");
  CHECK(hotswap::call(shop.a, Get{}).value() == 13);
  CHECK(sys::get_status(shop.a).value().vsn == 1);
}

TEST_CASE("a manifest's start, stop and restart are refused unless lists of names, saying why") {
  const testing::scratch files;
  auto refusal = [&](const std::string& steps) { return manifest_refusal(files, steps); };
  const std::string start_form = R"(must be {"name": registered name, "module": module name})";
  CHECK(refusal(R"(, "start": {"name": "x", "module": "y"})") ==
        R"("start" must be a list of {"name": registered name, "module": module name})");
  CHECK(refusal(R"(, "stop": "inspector")") == R"("stop" must be a list of registered names)");
  CHECK(refusal(R"(, "restart": null)") == R"("restart" must be a list of registered names)");
  CHECK(refusal(R"(, "start": ["x"])") == "\"start\"[0] " + start_form);
  CHECK(refusal(R"(, "start": [{"name": "x"}])") == "\"start\"[0] " + start_form);
  CHECK(refusal(R"(, "start": [{"name": "x", "module": "y", "args": [1]}])") == "\"start\"[0] " + start_form);
  CHECK(refusal(R"(, "start": [{"name": "x", "module": "y"}, {"name": 7, "module": "y"}])") ==
        R"("start"[1]: "name" must be a string of letters, digits, '.', '_' and '-')");
  CHECK(refusal(R"(, "start": [{"name": "x", "module": "../y"}])") ==
        R"("start"[0]: "module" must be a module's name (a string of letters, digits, '.', '_' and '-'))");
  CHECK(refusal(R"(, "stop": ["a b"])") ==
        R"("stop"[0] must be a registered name (a string of letters, digits, '.', '_' and '-'))");
  CHECK(refusal(R"(, "restart": ["ok", 1])") ==
        R"("restart"[1] must be a registered name (a string of letters, digits, '.', '_' and '-'))");
  CHECK(refusal(R"(, "stop": [")" + std::string(300, 'x') + "\"]") ==
        R"("stop"[0] must be a registered name (a string of letters, digits, '.', '_' and '-'))");
  std::string many;
  for (int i = 0; i < 257; ++i) many += (i ? ", \"s" : "\"s") + std::to_string(i) + "\"";
  CHECK(refusal(R"(, "stop": [)" + many + "]") == R"("stop" names 257 servers, more than 256)");
  CHECK(refusal(R"(, "stop": ["x"], "restart": ["x"])") ==
        R"(the server x is named twice in "start", "stop" and "restart")");
}

TEST_CASE("hotswap_add_release writes the servers a release starts, stops and restarts") {
  const auto release = hotswap::read_release(std::string(HOTSWAP_TEST_MODULE_DIR) + "/counters-3.release.json");
  REQUIRE(release);
  CHECK(release->start == std::vector<hotswap::server_start>{{"tallies", "tally"}, {"pings", "minimal"}});
  CHECK(release->stop == std::vector<std::string>{"inspector"});
  CHECK(release->restart == std::vector<std::string>{"account_manager"});
}

// -- apply steps (OTP's {apply, {M, F, A}}) --

namespace {
/// Release 2 of the shop: counter and minimal moved on, tally (with its steps) new and "tallies"
/// started on it, and `apply` (the JSON list's items).
std::string with_applies(running_release& shop, const std::string& apply) {
  return with_steps(shop, "2", {"counter_v2", "minimal_v2", "tally_v1_steps"},
                    R"(, "start": [{"name": "tallies", "module": "tally"}], "apply": [)" + apply + "]");
}
/// The stage of each progress line.
std::vector<std::string> stages_of(const std::vector<std::string>& lines) {
  std::vector<std::string> stages;
  for (const auto& line : lines) stages.push_back(line.substr(0, line.find(':')));
  return stages;
}
}  // namespace

TEST_CASE("a release runs its modules' steps at their points, in order, and its plan lists them") {
  named_shop shop;
  const auto target = with_applies(shop, R"({"module": "tally", "step": "settle", "at": "after_commit"}, )"
                                         R"({"module": "tally", "step": "warm", "at": "before_suspend"}, )"
                                         R"({"module": "tally", "step": "warm", "at": "after_commit"})");
  const auto plan = shop.releases.plan(target).value();
  const std::string text = to_string(plan);
  CHECK(
      text.ends_with("  start tallies: tally vsn 1\n"
                     "  apply tally:settle after_commit (vsn 1)\n"
                     "  apply tally:warm before_suspend (vsn 1)\n"
                     "  apply tally:warm after_commit (vsn 1)\n"));
  const nlohmann::json listed = plan;  // hotswapctl plan --json
  CHECK(listed["apply"] == nlohmann::json::parse(R"([{"module": "tally", "step": "settle", "at": "after_commit", )"
                                                 R"("vsn": 1}, {"module": "tally", "step": "warm", "at": )"
                                                 R"("before_suspend", "vsn": 1}, {"module": "tally", "step": "warm", )"
                                                 R"("at": "after_commit", "vsn": 1}])"));
  std::vector<std::string> lines;
  const auto report = shop.releases.upgrade(target, shop.sending(&lines));
  REQUIRE(what(report) == "done");
  // The step before the pause after the server started, those after it once every change is
  // done and purged, in the manifest's order.
  CHECK(stages_of(lines) == std::vector<std::string>{"load", "load", "load", "start", "apply", "suspend", "change_code",
                                                     "change_code", "change_code", "commit", "resume", "purge", "purge",
                                                     "apply", "apply"});
  REQUIRE(report.applied.size() == 3);
  CHECK(report.applied[0].starts_with("applied tally:warm before_suspend in "));
  CHECK(report.applied[1].starts_with("applied tally:settle after_commit in "));
  CHECK(report.applied[2].starts_with("applied tally:warm after_commit in "));
  CHECK(to_string(report).find("\n" + report.applied[1] + "\n") != std::string::npos);
  CHECK(nlohmann::json(report)["applied"] == nlohmann::json(report.applied));
  // Each ran, on the module's code: what they sent the started server is there.
  const auto tallies = hotswap::whereis<Counter>("tallies");
  REQUIRE(tallies);
  CHECK(hotswap::call(*tallies, Get{}).value() == 1000 + 10 + 1000);
  auto steps = shop.code.current("tally")->steps();
  std::sort(steps.begin(), steps.end());
  CHECK(steps == std::vector<std::string>{"cold", "settle", "unsettled", "warm"});
  CHECK(shop.releases.which_releases().size() == 2);
}

TEST_CASE("a step failing before the pause leaves the program as it was") {
  named_shop shop;
  std::vector<std::string> lines;
  const auto report =
      shop.releases.upgrade(with_applies(shop, R"({"module": "tally", "step": "warm", "at": "before_suspend"}, )"
                                               R"({"module": "tally", "step": "cold", "at": "before_suspend"}, )"
                                               R"({"module": "tally", "step": "settle", "at": "after_commit"})"),
                            shop.sending(&lines));
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().code == hotswap::errc::step_failed);
  CHECK(report.outcome.error().what ==
        "apply tally:cold before_suspend: the cache is cold (std::runtime_error thrown); release shop 1 runs on, "
        "unchanged");
  CHECK(stages_of(lines) == std::vector<std::string>{"load", "load", "load", "start", "apply", "rollback"});
  REQUIRE(report.applied.size() == 1);  // what ran, ran
  CHECK(report.applied[0].starts_with("applied tally:warm before_suspend in "));
  CHECK(report.servers.empty());
  CHECK_FALSE(hotswap::whereis<Counter>("tallies"));  // stopped again
  CHECK_FALSE(shop.code.current("tally"));            // unloaded
  CHECK(hotswap::whereis<Counter>("alpha") == hotswap::server_ref<Counter>(shop.a));
  CHECK(hotswap::whereis<Counter>("beta") == hotswap::server_ref<Counter>(shop.b));
  shop.check_release_1_runs();
}

TEST_CASE("a step failing after the commit rolls the whole release back, every server with its state") {
  for (const bool grace : {false, true}) {
    CAPTURE(grace);
    named_shop shop;
    std::vector<std::string> lines;
    auto options = shop.sending(&lines);
    if (grace) options.grace_period = std::chrono::hours(1);
    const auto report =
        shop.releases.upgrade(with_applies(shop, R"({"module": "tally", "step": "settle", "at": "after_commit"}, )"
                                                 R"({"module": "tally", "step": "unsettled", "at": "after_commit"})"),
                              options);
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::step_failed);
    CHECK(report.outcome.error().what ==
          "apply tally:unsettled after_commit: the books do not balance; rolled back: release shop 1 runs again");
    const auto stages = stages_of(lines);
    REQUIRE(std::find(stages.begin(), stages.end(), "rollback") != stages.end());
    CHECK(*std::find(stages.begin(), stages.end(), "rollback") == lines.back().substr(0, 8));
    CHECK(std::count(stages.begin(), stages.end(), "commit") == 2);  // the upgrade's, then the rollback's
    CHECK(std::count(stages.begin(), stages.end(), "apply") == 1);   // settle; none going back
    // The very servers, back on vsn 1 with their states migrated down (and what was sent
    // during both pauses); the server it started stopped.
    CHECK_FALSE(hotswap::whereis<Counter>("tallies"));
    CHECK(hotswap::whereis<Counter>("alpha") == hotswap::server_ref<Counter>(shop.a));
    CHECK(hotswap::call(shop.a, Get{}).value() == 5 + shop.sent);
    CHECK(hotswap::call(shop.b, Get{}).value() == 9 + shop.sent);
    CHECK(sys::get_status(shop.a).value().implementation == "testing::CounterV1");
    CHECK(sys::get_status(shop.c).value().vsn == 1);
    CHECK(shop.code.current("counter")->vsn() == 1);
    CHECK(shop.code.current("minimal")->vsn() == 1);
    const auto known = shop.releases.which_releases();
    REQUIRE(known.size() == 2);
    CHECK(known[0].vsn == "1");
    CHECK(known[0].status == hotswap::release_status::permanent);
    CHECK(known[1].status == hotswap::release_status::old);
  }
}

TEST_CASE("a plan refuses a step its module does not export, a module not in the release, a point unknown") {
  named_shop shop;
  const auto refused =
      shop.releases.plan(with_applies(shop, R"({"module": "tally", "step": "warm_cache", "at": "before_suspend"}, )"
                                            R"({"module": "counter", "step": "warm", "at": "after_commit"}, )"
                                            R"({"module": "inspector", "step": "warm", "at": "after_commit"}, )"
                                            R"({"module": "tally", "step": "warm", "at": "at_lunch"})"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::plan_refused);
  const std::string& why = refused.error().what;
  CAPTURE(why);
  auto said = [&](const std::string& reason) { return why.find("\n  - " + reason) != std::string::npos; };
  CHECK(said("apply tally:warm_cache before_suspend: tally vsn 1 exports no step warm_cache (it exports "));
  CHECK(said("apply counter:warm after_commit: counter vsn 2 exports no step warm (it exports none)"));
  CHECK(said("apply inspector:warm after_commit: release shop 2 has no module inspector"));
  CHECK(said("apply tally:warm at_lunch: no point of an upgrade is named at_lunch (before_suspend or after_commit)"));
  CHECK(std::count(why.begin(), why.end(), '\n') == 4);
  // Nothing ran: the upgrade is refused the same way.
  const auto report = shop.releases.upgrade(with_applies(
      shop,
      R"({"module": "tally", "step": "warm", "at": "before_suspend"}, {"module": "tally", "step": "nope", "at": "after_commit"})"));
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().code == hotswap::errc::plan_refused);
  CHECK(report.applied.empty());
  shop.check_release_1_runs();
}

TEST_CASE("a dry run lists the steps a release would apply, and runs none") {
  named_shop shop;
  std::vector<std::string> lines;
  hotswap::upgrade_options options;
  options.progress = [&](hotswap::upgrade_stage stage, const std::string& line) {
    lines.push_back(std::string(to_string(stage)) + ": " + line);
  };
  // cold would fail, and warm would find no "tallies": neither runs.
  const auto report =
      shop.releases.dry_run(with_applies(shop, R"({"module": "tally", "step": "warm", "at": "before_suspend"}, )"
                                               R"({"module": "tally", "step": "cold", "at": "after_commit"})"),
                            options);
  REQUIRE(what(report) == "done");
  CHECK(report.applied ==
        std::vector<std::string>{"would apply tally:warm before_suspend", "would apply tally:cold after_commit"});
  CHECK(std::find(lines.begin(), lines.end(), "apply: would apply tally:cold after_commit") != lines.end());
  CHECK(to_string(report).find("\nwould apply tally:warm before_suspend\n") != std::string::npos);
  shop.check_release_1_runs();
  CHECK_FALSE(shop.code.current("tally"));
}

TEST_CASE("a manifest's apply is refused unless a list of module, step and point, saying why") {
  const testing::scratch files;
  auto refusal = [&](const std::string& apply) { return manifest_refusal(files, R"(, "apply": )" + apply); };
  const std::string form = R"(must be {"module": module name, "step": step name, "at": "before_suspend" or )"
                           R"("after_commit"})";
  CHECK(refusal(R"({"module": "x", "step": "y", "at": "after_commit"})") ==
        "\"apply\" " + form.substr(0, 8) + "a list of " + form.substr(8));
  CHECK(refusal(R"(["x:y"])") == "\"apply\"[0] " + form);
  CHECK(refusal(R"([{"module": "x", "step": "y"}])") == "\"apply\"[0] " + form);
  CHECK(refusal(R"([{"module": "x", "step": "y", "at": "after_commit", "args": []}])") == "\"apply\"[0] " + form);
  CHECK(refusal(R"([{"module": "../x", "step": "y", "at": "after_commit"}])") ==
        R"("apply"[0]: "module" must be a module's name (a string of letters, digits, '.', '_' and '-'))");
  CHECK(refusal(R"([{"module": "x", "step": "y z", "at": "after_commit"}])") ==
        R"("apply"[0]: "step" must be a step's name (a string of letters, digits, '.', '_' and '-', at most 64))");
  CHECK(refusal(R"([{"module": "x", "step": ")" + std::string(65, 'y') + R"(", "at": "after_commit"}])") ==
        R"("apply"[0]: "step" must be a step's name (a string of letters, digits, '.', '_' and '-', at most 64))");
  CHECK(refusal(R"([{"module": "x", "step": "y", "at": 1}])") ==
        R"("apply"[0]: "at" must be a point of the upgrade ("before_suspend" or "after_commit"))");
  std::string many;
  for (int i = 0; i < 65; ++i)
    many += std::string(i ? ", " : "") + R"({"module": "x", "step": "y", "at": "after_commit"})";
  CHECK(refusal("[" + many + "]") == R"("apply" names 65 steps, more than 64)");
}

TEST_CASE("hotswap_add_release writes the steps a release applies") {
  const auto release = hotswap::read_release(std::string(HOTSWAP_TEST_MODULE_DIR) + "/counters-3.release.json");
  REQUIRE(release);
  CHECK(release->apply ==
        std::vector<hotswap::apply_step>{{"tally", "warm", "before_suspend"}, {"tally", "settle", "after_commit"}});
}

TEST_CASE("a module's note lists its steps, each a line of its own, read as hostile input") {
  const std::string bytes = testing::read_bytes(testing::built("tally_v1_steps"));
  const auto sections = hotswap::detail::find_module_sections(bytes, "tally").value();
  REQUIRE(sections.steps.size() == 4);
  auto steps = hotswap::detail::parse_module_note(sections.note, "tally", sections.steps).value().steps;
  std::sort(steps.begin(), steps.end());
  CHECK(steps == std::vector<std::string>{"cold", "settle", "unsettled", "warm"});
  auto refused = [&](const std::vector<std::string_view>& pieces) {
    const auto read = hotswap::detail::parse_module_note(sections.note, "tally", pieces);
    REQUIRE_FALSE(read);
    CHECK(read.error().code == hotswap::errc::no_descriptor);
    return read.error().what;
  };
  CHECK(refused({"step ../x\n"}) == "tally: an unreadable hotswap module note at \"step ../x\"");
  CHECK(refused({"step a\n", "step a\n"}) == "tally: an unreadable hotswap module note at \"step a\"");
  CHECK(refused({"step a\nstep b\n"}) == "tally: an unreadable hotswap module note at \"step a\"");
  CHECK(refused({"step a"}) == "tally: an unreadable hotswap module note at \"step a\"");
  CHECK(refused({"steps a\n"}) == "tally: an unreadable hotswap module note at \"steps a\"");
  const std::string long_name = "step " + std::string(65, 'x') + "\n";
  CHECK(refused({long_name}).starts_with("tally: an unreadable hotswap module note at \"step xxx"));
  std::vector<std::string> many;
  for (int i = 0; i < 65; ++i) many.push_back("step s" + std::to_string(i) + "\n");
  CHECK(refused(std::vector<std::string_view>(many.begin(), many.end())) ==
        "tally: a hotswap module note naming more than 64 steps");
  // A module without steps lists none.
  const std::string plain = testing::read_bytes(testing::built("tally_v1"));
  const auto its = hotswap::detail::find_module_sections(plain, "tally").value();
  CHECK(its.steps.empty());
  CHECK(hotswap::detail::parse_module_note(its.note, "tally", its.steps).value().steps.empty());
}

// -- supervisors' children (OTP's {update, Mod, supervisor}) --

namespace {
/// The shop with a supervisor registered as "shop.sup", its children the program's: "kept" and
/// "leaving" (each registered under its id).
struct supervised_shop : running_release {
  hotswap::server_ref<hotswap::supervisor_interface> sup =
      hotswap::start_supervisor({.intensity = 10},
                                {hotswap::child<testing::CounterV1>("kept", {.name = "kept"}),
                                 hotswap::child<testing::CounterV1>("leaving", {.name = "leaving"})},
                                {.name = "shop.sup"})
          .value();
  ~supervised_shop() { (void)hotswap::stop(sup); }  // before the code server its children may run on

  /// Release 2: tallying added (on tally, transient), kept's spec replaced (on tally, registered
  /// as kept2), leaving removed; counter and minimal moved on as `minimal` says.
  std::string release_2(const char* minimal = "minimal_v2") {
    return with_steps(*this, "2", {"counter_v2", minimal, "tally_v1"},
                      R"(, "supervisors": [{"supervisor": "shop.sup", "children": [)"
                      R"({"id": "tallying", "module": "tally", "name": "tallying", "restart": "transient"}, )"
                      R"({"id": "kept", "module": "tally", "name": "kept2", "shutdown_ms": 0}], )"
                      R"("remove": ["leaving"]}])");
  }
  std::vector<std::string> ids() {
    std::vector<std::string> out;
    const auto children = hotswap::call(sup, hotswap::which_children{});
    for (const auto& child : children.value()) out.push_back(child.id);
    return out;
  }
  std::string label(const char* name) {
    return "server " + std::to_string(hotswap::whereis<Counter>(name).value().id()) + " (" + name + ")";
  }
};
}  // namespace

TEST_CASE("a release adds, changes and removes a supervisor's children, in its plan and around its pause") {
  supervised_shop shop;
  const auto kept = hotswap::whereis<Counter>("kept").value(), leaving = hotswap::whereis<Counter>("leaving").value();
  const auto target = shop.release_2();
  const auto plan = shop.releases.plan(target).value();
  const std::string text = to_string(plan);
  CAPTURE(text);
  CHECK(
      text.ends_with("  supervisor shop.sup: add child tallying: tally vsn 1, registered as tallying\n"
                     "  supervisor shop.sup: change child kept: tally vsn 1, registered as kept2, at its next "
                     "restart\n"
                     "  supervisor shop.sup: remove child leaving: " +
                     shop.label("leaving") + "\n"));
  const nlohmann::json listed = plan;  // hotswapctl plan --json
  CHECK(listed["supervisors"] ==
        nlohmann::json{{{"supervisor", "shop.sup"},
                        {"server", shop.sup.id()},
                        {"put", {"tallying", "kept"}},
                        {"remove", {"leaving"}},
                        {"lines",
                         {"add child tallying: tally vsn 1, registered as tallying",
                          "change child kept: tally vsn 1, registered as kept2, at its next restart",
                          "remove child leaving: " + shop.label("leaving")}}}});
  CHECK(shop.ids() == std::vector<std::string>{"kept", "leaving"});  // a plan changes nothing

  auto dry = shop.releases.dry_run(target);
  REQUIRE(what(dry) == "done");
  CHECK(dry.servers == std::vector<std::string>{
                           "would change supervisor shop.sup: add child tallying: tally vsn 1, registered as tallying",
                           "would change supervisor shop.sup: change child kept: tally vsn 1, registered as kept2, at "
                           "its next restart",
                           "would change supervisor shop.sup: remove child leaving: " + shop.label("leaving")});
  CHECK(shop.ids() == std::vector<std::string>{"kept", "leaving"});

  std::vector<std::string> lines;
  const auto report = shop.releases.upgrade(target, shop.sending(&lines));
  REQUIRE(what(report) == "done");
  const auto tallying = hotswap::whereis<Counter>("tallying");
  REQUIRE(tallying);
  CHECK(report.servers ==
        std::vector<std::string>{"supervisor shop.sup: added child tallying as " + shop.label("tallying"),
                                 "supervisor shop.sup: replaced child kept's spec, at its next restart",
                                 "supervisor shop.sup: removed child leaving"});
  // The children added before the pause, those removed after it.
  CHECK(stages_of(lines) == std::vector<std::string>{"load", "load", "load", "start", "start", "suspend", "change_code",
                                                     "change_code", "change_code", "commit", "resume", "stop", "purge",
                                                     "purge"});
  CHECK(shop.ids() == std::vector<std::string>{"kept", "tallying"});
  CHECK(sys::get_status(*tallying).value().implementation == shop.code.current("tally")->implementation());
  CHECK_FALSE(leaving.alive());
  CHECK(leaving.exit().what == "stopped by its supervisor");
  CHECK(hotswap::whereis<Counter>("kept") == kept);  // runs on: its new spec takes effect at its next restart
  CHECK(hotswap::call(kept, Get{}).value() == 0);
  const auto spec = hotswap::get_childspec(shop.sup, "kept").value();
  CHECK(spec.shutdown == hotswap::brutal_kill);
  CHECK(hotswap::get_childspec(shop.sup, "tallying").value().restart == hotswap::restart::transient);

  // Restarted by the supervisor, each on the release's module (what kept's spec now says).
  hotswap::send(kept, testing::Crash{});
  REQUIRE(testing::eventually([&] { return hotswap::whereis<Counter>("kept2").has_value(); }));
  CHECK(sys::get_status(*hotswap::whereis<Counter>("kept2")).value().implementation ==
        shop.code.current("tally")->implementation());
  hotswap::send(*tallying, testing::Crash{});
  REQUIRE(testing::eventually([&] {
    const auto now = hotswap::whereis<Counter>("tallying");
    return now && *now != *tallying;
  }));
  testing::exits().take();
}

TEST_CASE("a step failing after a supervisor's children were changed puts them back") {
  supervised_shop shop;
  const auto kept = hotswap::whereis<Counter>("kept").value(), leaving = hotswap::whereis<Counter>("leaving").value();
  const auto report = shop.releases.upgrade(shop.release_2("minimal_v2_refuses"));
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().what == "step 3 of 3 (server " + std::to_string(shop.c.id()) +
                                           ", change_code): minimal v2 refuses; every server runs its old code "
                                           "with its old state");
  CHECK(shop.ids() == std::vector<std::string>{"kept", "leaving"});
  CHECK_FALSE(hotswap::whereis<Counter>("tallying"));
  CHECK(hotswap::whereis<Counter>("kept") == kept);
  CHECK(hotswap::whereis<Counter>("leaving") == leaving);
  CHECK(hotswap::get_childspec(shop.sup, "kept").value().shutdown == hotswap::default_timeout);  // its own again
  hotswap::send(kept, testing::Crash{});
  REQUIRE(testing::eventually([&] {
    const auto now = hotswap::whereis<Counter>("kept");
    return now && *now != kept;
  }));
  CHECK(sys::get_status(*hotswap::whereis<Counter>("kept")).value().implementation == "testing::CounterV1");
  CHECK_FALSE(shop.code.current("tally"));  // unloaded
  testing::exits().take();
}

TEST_CASE("a rollback puts a supervisor's children back as they were at the permanent release") {
  supervised_shop shop;
  hotswap::upgrade_options options;
  options.grace_period = std::chrono::hours(1);
  REQUIRE(what(shop.releases.upgrade(shop.release_2(), options)) == "done");
  const auto tallying = hotswap::whereis<Counter>("tallying").value();
  const auto kept = hotswap::whereis<Counter>("kept").value();
  const auto plan = shop.releases.plan(shop.manifest("1", {"counter_v1", "minimal"})).value();
  const std::string text = to_string(plan);
  CAPTURE(text);
  CHECK(text.find("  supervisor shop.sup: put back child kept's spec, at its next restart\n"
                  "  supervisor shop.sup: add child leaving again\n"
                  "  supervisor shop.sup: remove child tallying: " +
                  shop.label("tallying") + "\n") != std::string::npos);
  const auto back = shop.releases.rollback();
  REQUIRE(what(back) == "done");
  CHECK(shop.ids() == std::vector<std::string>{"kept", "leaving"});
  CHECK_FALSE(tallying.alive());
  CHECK(hotswap::whereis<Counter>("kept") == kept);
  CHECK(sys::get_status(*hotswap::whereis<Counter>("leaving")).value().implementation == "testing::CounterV1");
  CHECK(hotswap::get_childspec(shop.sup, "kept").value().shutdown == hotswap::default_timeout);
  CHECK_FALSE(shop.code.current("tally"));  // retired and purged: nothing runs on it
  testing::exits().take();
}

TEST_CASE("a plan refuses the supervisors' children a release cannot change, each saying why") {
  supervised_shop shop;
  REQUIRE(hotswap::register_name("alpha", shop.a));
  const auto refused = shop.releases.plan(
      with_steps(shop, "3", {"counter_v2", "minimal_v2_takes_int"},
                 R"(, "supervisors": [{"supervisor": "shop.sup", "children": [{"id": "t", "module": "tally"}, )"
                 R"({"id": "p", "module": "minimal"}, {"id": "named", "module": "counter", "name": "alpha"}], )"
                 R"("remove": ["nobody"]}, {"supervisor": "nowhere", "remove": ["x"]}, )"
                 R"({"supervisor": "alpha", "remove": ["x"]}])"));
  REQUIRE_FALSE(refused);
  const std::string& why = refused.error().what;
  CAPTURE(why);
  const std::string alpha = "server " + std::to_string(shop.a.id()) + " (alpha)";
  CHECK(why.ends_with(
      "\n  - supervisor shop.sup: child t: release shop 3 has no module tally"
      "\n  - supervisor shop.sup: child p: the init of minimal vsn 2 takes an argument (int): a release starts only "
      "servers whose init takes none"
      "\n  - supervisor shop.sup: child named: the name alpha is taken, by " +
      alpha +
      "\n  - supervisor shop.sup: remove nobody: no child has the id nobody"
      "\n  - supervisor nowhere: no server is registered as nowhere"
      "\n  - supervisor alpha: " +
      alpha + " runs Counter, not hotswap.supervisor or a later version of it"));
  shop.check_release_1_runs();
  CHECK(shop.ids() == std::vector<std::string>{"kept", "leaving"});
}

TEST_CASE("a manifest's supervisors are refused unless supervisors and children as they must be, saying why") {
  const testing::scratch files;
  auto refusal = [&](const std::string& changes) { return manifest_refusal(files, R"(, "supervisors": )" + changes); };
  const std::string form = R"({"supervisor": registered name, "children": [child specs], "remove": [child ids]})";
  const std::string child_form =
      R"({"id": child id, "module": module name, and "name", "restart", "shutdown_ms" if wanted})";
  CHECK(refusal(R"({"supervisor": "s"})") == "\"supervisors\" must be a list of " + form);
  CHECK(refusal(R"([{"remove": ["x"]}])") == "\"supervisors\"[0] must be " + form);
  CHECK(refusal(R"([{"supervisor": "s", "add": []}])") == "\"supervisors\"[0] must be " + form);
  CHECK(refusal(R"([{"supervisor": "s b", "remove": ["x"]}])") ==
        R"("supervisors"[0]: "supervisor" must be a registered name (a string of letters, digits, '.', '_' and '-'))");
  CHECK(refusal(R"([{"supervisor": "s"}])") == R"("supervisors"[0] changes nothing: give "children" or "remove")");
  CHECK(refusal(R"([{"supervisor": "s", "remove": "x"}])") == R"("supervisors"[0]: "remove" must be a list)");
  CHECK(refusal(R"([{"supervisor": "s", "remove": [1]}])") ==
        R"("supervisors"[0]."remove"[0] must be a child's id (a string of letters, digits, '.', '_' and '-'))");
  CHECK(refusal(R"([{"supervisor": "s", "children": [{"id": "x"}]}])") ==
        "\"supervisors\"[0].\"children\"[0] must be " + child_form);
  CHECK(refusal(R"([{"supervisor": "s", "children": [{"id": "x", "module": "m", "args": 1}]}])") ==
        "\"supervisors\"[0].\"children\"[0] must be " + child_form);
  CHECK(
      refusal(R"([{"supervisor": "s", "children": [{"id": "x", "module": "../m"}]}])") ==
      R"("supervisors"[0]."children"[0]: "module" must be a module's name (a string of letters, digits, '.', '_' and '-'))");
  CHECK(refusal(R"([{"supervisor": "s", "children": [{"id": "x", "module": "m", "restart": "always"}]}])") ==
        R"("supervisors"[0]."children"[0]: "restart" must be "permanent", "transient" or "temporary")");
  CHECK(
      refusal(R"([{"supervisor": "s", "children": [{"id": "x", "module": "m", "shutdown_ms": -1}]}])") ==
      R"("supervisors"[0]."children"[0]: "shutdown_ms" must be a whole number of milliseconds from 0 (brutal_kill) to 3600000)");
  CHECK(
      refusal(R"([{"supervisor": "s", "children": [{"id": "x", "module": "m", "shutdown_ms": 1.5}]}])") ==
      R"("supervisors"[0]."children"[0]: "shutdown_ms" must be a whole number of milliseconds from 0 (brutal_kill) to 3600000)");
  CHECK(refusal(R"([{"supervisor": "s", "children": [{"id": "x", "module": "m"}], "remove": ["x"]}])") ==
        R"("supervisors"[0]: the child x is named twice)");
  CHECK(refusal(R"([{"supervisor": "s", "remove": ["x"]}, {"supervisor": "s", "remove": ["y"]}])") ==
        R"("supervisors"[1]: the supervisor s is named twice)");
  std::string many;
  for (int i = 0; i < 257; ++i) many += (i ? ", \"c" : "\"c") + std::to_string(i) + "\"";
  CHECK(refusal(R"([{"supervisor": "s", "remove": [)" + many + "]}]") ==
        R"("supervisors"[0]: "remove" names 257 children, more than 256)");
  const auto read = [&] {
    testing::write_bytes(
        files.dir + "/good.json",
        R"({"hotswap_release": 1, "name": "a", "vsn": "1", "modules": ["x.so"], "supervisors": [{"supervisor": "s", )"
        R"("children": [{"id": "x", "module": "m"}, {"id": "y", "module": "n", "name": "why", "restart": "temporary", )"
        R"("shutdown_ms": 0}], "remove": ["z"]}]})");
    return hotswap::read_release(files.dir + "/good.json");
  }();
  REQUIRE(read);
  CHECK(read->supervisors == std::vector<hotswap::supervisor_change>{
                                 {"s", {{"x", "m", "", "permanent", 5000}, {"y", "n", "why", "temporary", 0}}, {"z"}}});
}

TEST_CASE("hotswap_add_release writes the supervisors' children a release changes") {
  const auto release = hotswap::read_release(std::string(HOTSWAP_TEST_MODULE_DIR) + "/counters-3.release.json");
  REQUIRE(release);
  CHECK(release->supervisors ==
        std::vector<hotswap::supervisor_change>{
            {"shop.sup",
             {{"tallying", "tally", "tallying", "transient", 5000}, {"kept", "tally", "", "permanent", 0}},
             {"leaving"}},
            {"jobs", {{"j", "minimal", "", "permanent", 5000}}, {}}});
}

TEST_CASE("a child a release put under a supervisor no longer starts once the release handler is gone, saying so") {
  const testing::scratch files;
  hotswap::code_server code;
  auto sup = hotswap::start_supervisor({}, {}, {.name = "orphans.sup"}).value();
  const auto release = [&](const std::string& vsn, const std::string& modules, const std::string& steps) {
    const std::string path = files.dir + "/orphans-" + vsn + ".release.json";
    testing::write_bytes(path, R"({"hotswap_release": 1, "name": "orphans", "vsn": ")" + vsn + R"(", "modules": [)" +
                                   modules + "]" + steps + "}");
    return path;
  };
  const std::string counter = '"' + files.stage("counter_v1", "counter_v1.so") + '"';
  {
    hotswap::release_handler releases(code);
    REQUIRE(releases.boot(release("1", counter, "")));
    const auto report = releases.upgrade(
        release("2", counter + ", \"" + files.stage("tally_v1", "tally_v1.so") + '"',
                R"(, "supervisors": [{"supervisor": "orphans.sup", "children": [{"id": "t", "module": "tally"}]}])"));
    REQUIRE(what(report) == "done");
    REQUIRE(hotswap::terminate_child(sup, "t"));
    REQUIRE(hotswap::restart_child(sup, "t"));  // while the handler lives
  }
  REQUIRE(hotswap::terminate_child(sup, "t"));
  const auto again = hotswap::restart_child(sup, "t");
  REQUIRE_FALSE(again);
  CHECK(again.error().code == hotswap::errc::no_module);
  CHECK(again.error().what == "child t did not start: the release handler that put it under its supervisor is gone");
  REQUIRE(hotswap::stop(sup));
  testing::exits().take();
}
