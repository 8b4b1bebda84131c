// The release handler with real modules: a release of three servers (two counters sharing a
// schema, a minimal server of another interface) upgraded as one transaction, its plan derived
// and refused with every reason, and a fault at every stage leaving the running release as it was.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

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
/// How many monitors are set on `server` (the grace period's, say).
std::size_t monitors_on(const hotswap::any_server& server) {
  const hotswap::detail::spin_guard hold(server.core()->exit_lock);
  return server.core()->monitors.size();
}
}  // namespace

TEST_CASE("a release upgrade derives its plan, moves every server in one transaction and purges what is left") {
  running_release shop;
  const auto target = shop.manifest("2", {"counter_v2", "minimal_v2"});
  const auto plan = shop.releases.plan(target).value();
  CHECK(to_string(plan) ==
        "release shop 1 -> shop 2\n"
        "  counter 1 -> 2 (" +
            target.substr(0, target.rfind('/')) +
            "/counter_v2-2.so)\n"
            "    server " +
            std::to_string(shop.a.id()) +
            ": vsn 1 -> 2\n"
            "    server " +
            std::to_string(shop.b.id()) +
            ": vsn 1 -> 2\n"
            "  minimal 1 -> 2 (" +
            target.substr(0, target.rfind('/')) +
            "/minimal_v2-2.so)\n"
            "    server " +
            std::to_string(shop.c.id()) + ": vsn 1 -> 2\n");
  CHECK(shop.code.current("counter")->vsn() == 1);  // a plan changes nothing

  std::vector<std::string> lines;
  const auto report = shop.releases.upgrade(target, shop.sending(&lines));
  REQUIRE(what(report) == "done");
  REQUIRE(report.steps.size() == 3);
  CHECK(report.steps[0].to == "testing::CounterV2");
  CHECK(report.steps[2].to == "MinimalV2");
  for (const auto& step : report.steps) CHECK(step.time > 0ns);
  CHECK(report.steps[0].state_bytes == sizeof(testing::v2::Count));  // measured after the pause
  CHECK(report.steps[2].state_bytes == sizeof(int));
  CHECK(report.notes.empty());
  // The stages in order, each once per module or server, the messages sent while suspended after.
  std::vector<std::string> stages;
  for (const auto& line : lines) stages.push_back(line.substr(0, line.find(':')));
  CHECK(stages == std::vector<std::string>{"load", "load", "suspend", "change_code", "change_code", "change_code",
                                           "commit", "resume", "purge", "purge"});
  CHECK(lines[0] == "load: loaded counter vsn 2");
  CHECK(lines.back() == "purge: purged minimal vsn 1");

  CHECK(hotswap::call(shop.b, Get{}).value() == 9 + 10);
  CHECK(hotswap::call(shop.a, Get{}).value() == 5 + 10);
  CHECK(sys::get_status(shop.a).value().implementation == "testing::CounterV2");
  CHECK(sys::get_state<testing::v2::Count>(shop.a).value().count == 5 + 10);
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);  // migrated by v2's code_change
  CHECK(shop.code.current("counter")->vsn() == 2);
  CHECK_FALSE(shop.code.old("counter"));  // purged
  CHECK_FALSE(shop.code.old("minimal"));

  auto known = shop.releases.which_releases();
  REQUIRE(known.size() == 2);
  CHECK((known[0].vsn == "1" && known[0].status == hotswap::release_status::permanent));
  CHECK((known[1].vsn == "2" && known[1].status == hotswap::release_status::current));
  REQUIRE(shop.releases.make_permanent());
  known = shop.releases.which_releases();
  CHECK((known[0].vsn == "2" && known[0].status == hotswap::release_status::permanent));
  CHECK((known[1].vsn == "1" && known[1].status == hotswap::release_status::old));
  CHECK(shop.releases.make_permanent().error().code == hotswap::errc::no_release);

  // The report prints as a table: a line per step, then the pause.
  const std::string table = to_string(report);
  CHECK(table.starts_with("step server"));
  CHECK(table.find("1 -> 2    testing::CounterV2") != std::string::npos);
  CHECK(table.find(fmt::format(" {} B\n", sizeof(int))) != std::string::npos);
  CHECK(table.find("; done\n") != std::string::npos);
}

TEST_CASE("a plan is refused with every reason at once, before anything is loaded") {
  running_release shop;
  // counter vsn 3 changes code from vsn 2 only (a and b run 1); a file that is not there; the
  // counter twice.
  const auto target = shop.manifest("3", {"counter_v3", "missing.so", "minimal_v2", "counter_v2"});
  const auto refused = shop.releases.plan(target);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::plan_refused);
  const std::string& why = refused.error().what;
  CAPTURE(why);
  CHECK(why.starts_with("release shop 3 cannot be installed over shop 1:\n  - "));
  for (const auto& server : {shop.a.id(), shop.b.id()})
    CHECK(why.find("server " + std::to_string(server) +
                   " runs vsn 1, which counter vsn 3 cannot change code from: its state_history lists vsns 2 (add "
                   "hotswap::version<1, ...> there)") != std::string::npos);
  CHECK(why.find("missing.so") != std::string::npos);
  CHECK(why.find("the release lists module counter twice") != std::string::npos);
  CHECK(std::count(why.begin(), why.end(), '\n') == 4);  // four reasons, and no other

  // upgrade refuses it the same, and nothing moved.
  const auto report = shop.releases.upgrade(target);
  CHECK(report.outcome.error().code == hotswap::errc::plan_refused);
  CHECK(report.steps.empty());
  shop.check_release_1_runs();
}

TEST_CASE("a release whose module does not fit the program, or the running one, is refused at plan time") {
  running_release shop;
  // Another schema under Count 2; another interface under the name counter; a module the target
  // lacks that servers use (minimal).
  auto refused = shop.releases.plan(shop.manifest("4", {"counter_other_schema"})).error();
  CHECK(refused.what.find("its schema Count version 2 differs from this program's") != std::string::npos);
  CHECK(refused.what.find("minimal vsn 1 is still used by server " + std::to_string(shop.c.id()) +
                          ", and release shop 4 does not have it") != std::string::npos);
  refused = shop.releases.plan(shop.manifest("5", {"counter_other_interface", "minimal"})).error();
  CHECK(refused.what.find("implements Counter differently from the loaded vsn 1") != std::string::npos);
  CHECK(std::count(refused.what.begin(), refused.what.end(), '\n') == 1);  // minimal vsn 1 runs already
  shop.check_release_1_runs();
}

TEST_CASE("a module failing to load leaves the running release untouched, whichever it is") {
  for (const auto& modules : {std::vector<std::string>{"counter_v2_throws_at_load", "minimal_v2"},
                              std::vector<std::string>{"counter_v2", "minimal_v2_throws_at_load"}}) {
    CAPTURE(modules);
    running_release shop;
    std::vector<std::string> lines;
    const auto report = shop.releases.upgrade(shop.manifest("2", modules), shop.sending(&lines));
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::initializer_failed);
    CHECK(report.outcome.error().what.starts_with("loading release shop 2: "));
    CHECK(report.outcome.error().what.ends_with("; release shop 1 runs on, unchanged"));
    CHECK(lines.back().starts_with("rollback: loading release shop 2"));
    shop.check_release_1_runs();
    // And the release without the fault goes through.
    REQUIRE(shop.releases.upgrade(shop.manifest("2b", {"counter_v2", "minimal_v2"})));
    CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
  }
}

TEST_CASE("a code_change failing at any server puts every server back, and unloads the release") {
  for (int failing = 0; failing < 3; ++failing) {
    CAPTURE(failing);
    running_release shop;
    if (failing < 2) {
      const auto& unlucky = failing == 0 ? shop.a : shop.b;
      hotswap::cast(unlucky, Add{13 - static_cast<int>(hotswap::call(unlucky, Get{}).value())});
      REQUIRE(hotswap::call(unlucky, Get{}).value() == 13);
    }
    const int a_count = failing == 0 ? 13 : 5, b_count = failing == 1 ? 13 : 9;
    const auto target = shop.manifest("2", {failing < 2 ? "counter_v2_refuses_13" : "counter_v2",
                                            failing == 2 ? "minimal_v2_refuses" : "minimal_v2"});
    std::vector<std::string> lines;
    const auto report = shop.releases.upgrade(target, shop.sending(&lines));
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::code_change_failed);
    const hotswap::any_server failed[] = {shop.a, shop.b, shop.c};
    CHECK(report.outcome.error().what ==
          "step " + std::to_string(failing + 1) + " of 3 (server " + std::to_string(failed[failing].id()) +
              ", change_code): " + (failing < 2 ? "13 is unlucky" : "minimal v2 refuses") +
              "; every server runs its old code with its old state");
    CHECK(lines.back().starts_with("rollback: step "));
    CHECK(hotswap::call(shop.a, Get{}).value() == a_count + shop.sent);
    CHECK(hotswap::call(shop.b, Get{}).value() == b_count + shop.sent);
    CHECK(sys::get_state<testing::v1::Count>(shop.a).value().count == a_count + shop.sent);
    CHECK(sys::get_state<testing::v1::Count>(shop.b).value().count == b_count + shop.sent);
    // Release 1 runs as before (the counts aside, checked above).
    CHECK(shop.code.current("counter")->vsn() == 1);
    CHECK_FALSE(shop.code.old("counter"));
    CHECK(shop.code.current("minimal")->vsn() == 1);
    CHECK(sys::get_status(shop.b).value().implementation == "testing::CounterV1");
    CHECK(hotswap::call(shop.c, Ping{}).value() == 1);
    CHECK(shop.releases.which_releases().size() == 1);
  }
}

TEST_CASE("a server busy past the suspend deadline, or a pause over its budget, fails the upgrade") {
  SECTION("busy at the suspend") {
    running_release shop;
    testing::gate held;
    auto options = shop.sending();
    const auto send = options.progress;
    options.progress = [&](hotswap::upgrade_stage stage, const std::string& line) {
      send(stage, line);
      if (stage != hotswap::upgrade_stage::load || line != "loaded minimal vsn 2") return;
      hotswap::cast(shop.b, held.message());  // after the plan, before the suspend
      REQUIRE(held.entered());
    };
    options.suspend_timeout = 50ms;
    const auto report = shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options);
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::timeout);
    CHECK(report.outcome.error().what.starts_with("step 2 of 3 (server " + std::to_string(shop.b.id()) + ", suspend)"));
    held.open();
    shop.check_release_1_runs();
  }
  SECTION("busy at the plan") {
    running_release shop;
    testing::gate held;
    hotswap::cast(shop.b, held.message());
    REQUIRE(held.entered());
    const auto report =
        shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), {.suspend_timeout = 50ms});
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::plan_refused);
    CHECK(report.outcome.error().what.find("\n  - server " + std::to_string(shop.b.id()) + ": ") != std::string::npos);
    held.open();
    shop.check_release_1_runs();
  }
  SECTION("over budget") {
    running_release shop;
    auto options = shop.sending();
    options.pause_budget = 1ns;
    const auto report = shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options);
    REQUIRE_FALSE(report);
    CHECK(report.outcome.error().code == hotswap::errc::over_budget);
    // Past it by the time all are suspended (or a suspend not answered within it, on a busy
    // machine): no change is tried.
    CHECK_THAT(
        report.outcome.error().what,
        Catch::Matches("(pause budget: the pause reached \\d+ us by the last suspend, over its budget of 0 us"
                       "|step \\d+ of \\d+ \\(server \\d+, suspend\\): no answer within the pause budget of 0 us "
                       "\\(the server is resumed as it returns\\)); every server runs its old code with its old "
                       "state"));
    for (const auto& step : report.steps) CHECK(step.time == 0ns);
    shop.check_release_1_runs();
  }
}

TEST_CASE("the manifest hotswap_add_release writes names the release and its modules' files") {
  const auto release = hotswap::read_release(std::string(HOTSWAP_TEST_MODULE_DIR) + "/counters-2.release.json");
  REQUIRE(release);
  CHECK(release->name == "counters");
  CHECK(release->vsn == "2");
  CHECK(release->modules == std::vector<std::string>{testing::built("counter_v2"), testing::built("minimal_v2")});
}

TEST_CASE("a malformed release manifest is refused saying why") {
  const testing::scratch files;
  auto refusal = [&](const std::string& text) {
    testing::write_bytes(files.dir + "/bad.json", text);
    const auto read = hotswap::read_release(files.dir + "/bad.json");
    REQUIRE_FALSE(read);
    CHECK(read.error().code == hotswap::errc::bad_release);
    return read.error().what.substr(files.dir.size() + sizeof("/bad.json:"));
  };
  CHECK(refusal("{\"hotswap_release\": 1, \"name\": ") == "not JSON (hotswap_add_release writes release manifests)");
  CHECK(refusal("[1, 2]") == "not a release manifest of format 1 (no \"hotswap_release\": 1)");
  CHECK(refusal(R"({"hotswap_release": "1"})") == "not a release manifest of format 1 (no \"hotswap_release\": 1)");
  CHECK(refusal(R"({"hotswap_release": 1, "name": "a b", "vsn": "1", "modules": ["x.so"]})") ==
        "\"name\" must be a string of letters, digits, '.', '_' and '-'");
  CHECK(refusal(R"({"hotswap_release": 1, "name": "a", "vsn": 3, "modules": ["x.so"]})") ==
        "\"vsn\" must be a string of letters, digits, '.', '_' and '-'");
  CHECK(refusal(R"({"hotswap_release": 1, "name": "a", "vsn": "3", "modules": [7]})") ==
        "\"modules\" must be a list of module files");
  CHECK(refusal(R"({"hotswap_release": 1, "name": "a", "vsn": "3"})") == "\"modules\" must be a list of module files");
  CHECK(hotswap::read_release(files.dir + "/none.json").error().what ==
        files.dir + "/none.json: cannot be read: No such file or directory");
}

TEST_CASE("a dry run tries every migration on the running states and changes nothing") {
  running_release shop;
  const auto handled = [&] {
    return std::vector<std::uint64_t>{sys::statistics(shop.a).value().messages_handled,
                                      sys::statistics(shop.b).value().messages_handled,
                                      sys::statistics(shop.c).value().messages_handled};
  };
  const auto handled_before = handled();
  const auto target = shop.manifest("2", {"counter_v2", "minimal_v2"});
  std::vector<std::string> lines;
  auto report = shop.releases.dry_run(target, shop.sending(&lines));
  REQUIRE(what(report) == "done");
  CHECK(report.dry_run);
  REQUIRE(report.steps.size() == 3);
  auto sum = 0ns;
  for (const auto& step : report.steps) {
    CHECK(step.time > 0ns);
    sum += step.time;
  }
  CHECK(report.pause == sum);
  CHECK(report.steps[2].to == "MinimalV2");
  CHECK(report.steps[2].state_bytes == sizeof(int));  // the state it would make
  CHECK(lines.size() == 5);                           // two loads, three migrations tried
  CHECK(lines[2].find(": vsn 1 -> 2 (testing::CounterV2) would take ") != std::string::npos);
  CHECK(to_string(report).ends_with("; nothing changed\n"));
  CHECK(handled() == handled_before);  // the sys requests are no messages
  shop.check_release_1_runs();

  // A code_change that throws fails the dry run at its step, and still nothing changed.
  report = shop.releases.dry_run(shop.manifest("3", {"counter_v2", "minimal_v2_refuses"}));
  REQUIRE_FALSE(report);
  CHECK(report.outcome.error().what ==
        "step 3 of 3 (server " + std::to_string(shop.c.id()) + ", dry run): minimal v2 refuses; nothing changed");
  shop.check_release_1_runs();

  // The modules the dry runs loaded are gone: the upgrade loads them again.
  REQUIRE(shop.releases.upgrade(target));
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
}

TEST_CASE("a release goes down to an older one: the newer code makes the older states from its own") {
  running_release shop;
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"})));
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
  const auto& history = shop.code.current("counter")->history();  // what counter vsn 2's note says
  REQUIRE(history.size() == 1);
  CHECK((history[0].vsn == 1 && history[0].down));

  const auto back = shop.manifest("1b", {"counter_v1", "minimal"});
  const auto plan = shop.releases.plan(back).value();
  REQUIRE(plan.changes.size() == 2);
  CHECK((plan.changes[0].from_vsn == 2 && plan.changes[0].to_vsn == 1 && plan.changes[0].servers.size() == 2));
  const auto report = shop.releases.upgrade(back, shop.sending());
  REQUIRE(what(report) == "done");
  CHECK(hotswap::call(shop.a, Get{}).value() == 5 + 10);
  CHECK(sys::get_status(shop.a).value().implementation == "testing::CounterV1");
  CHECK(sys::get_state<testing::v1::Count>(shop.b).value().count == 9 + 10);  // generation dropped, as declared
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);                        // the same state: handed on
  CHECK(shop.code.current("counter")->vsn() == 1);
  CHECK_FALSE(shop.code.old("counter"));  // vsn 2 purged
  const auto known = shop.releases.which_releases();
  REQUIRE(known.size() == 3);
  CHECK((known[0].vsn == "1" && known[0].status == hotswap::release_status::permanent));
  CHECK((known[1].vsn == "2" && known[1].status == hotswap::release_status::old));
  CHECK((known[2].vsn == "1b" && known[2].status == hotswap::release_status::current));
}

TEST_CASE("a release going down is refused at plan time when a state would lose a field no step declares lost") {
  running_release shop;
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v1", "minimal", "tally_v1"})));
  auto tally = hotswap::start<Counter>(shop.code.current("tally")).value();
  REQUIRE(shop.releases.upgrade(shop.manifest("3", {"counter_v1", "minimal", "tally_v2"})));
  const auto refused = shop.releases.plan(shop.manifest("4", {"counter_v1", "minimal", "tally_v1"}));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().what ==
        "release shop 4 cannot be installed over shop 3:\n  - server " + std::to_string(tally.id()) +
            " runs tally vsn 2, which cannot go down to vsn 1: its state does not migrate down by itself "
            "(field_dropped_without_declaration<schema_named<\"Tally\">, 2, 1, field_named<\"rounds\">>); declare "
            "the schema's step rules (hotswap::step)");
  CHECK(hotswap::call(tally, Get{}).value() == 0);
  (void)hotswap::stop(tally);
}

TEST_CASE("going back to the permanent release leaves it permanent, and the one left old") {
  running_release shop;
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"})));
  REQUIRE(shop.releases.upgrade(shop.manifest("1", {"counter_v1", "minimal"})));  // its manifest again
  const auto known = shop.releases.which_releases();
  REQUIRE(known.size() == 2);
  CHECK((known[0].vsn == "1" && known[0].status == hotswap::release_status::permanent));
  CHECK((known[1].vsn == "2" && known[1].status == hotswap::release_status::old));
  CHECK(shop.releases.make_permanent().error().code == hotswap::errc::no_release);
  CHECK(hotswap::call(shop.a, Get{}).value() == 5);
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
}

TEST_CASE("a handler throwing in the grace period puts its server back with its state, and the release rolls back") {
  running_release shop;
  hotswap::upgrade_options options;
  options.grace_period = std::chrono::hours(1);
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options));
  CHECK(shop.code.old("counter"));  // the version before stays loaded in the grace period
  hotswap::cast(shop.b, Add{1});
  hotswap::send(shop.a, testing::Crash{});  // counter vsn 2's handle_info throws
  // Told on the release handler's thread, to its log.
  REQUIRE(testing::eventually([&] { return shop.logged("rollback: rolled back: release shop 1 runs again"); }));
  CHECK(shop.logged("rollback: server " + std::to_string(shop.a.id()) +
                    " failed in a handler of counter vsn 2 (asked to crash); back on vsn 1, its state kept in the "
                    "grace period of release shop 2: rolling back to shop 1"));
  CHECK(shop.logged("load: counter vsn 1 is loaded still, since the upgrade: taken back"));
  REQUIRE(shop.a.alive());  // it did not crash: its state is the one it had
  CHECK(hotswap::call(shop.a, Get{}).value() == 5);
  CHECK(sys::get_status(shop.a).value().implementation == "testing::CounterV1");
  CHECK(hotswap::call(shop.b, Get{}).value() == 10);  // its state kept, migrated down
  CHECK(sys::get_status(shop.b).value().implementation == "testing::CounterV1");
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
  CHECK(shop.code.current("counter")->vsn() == 1);
  CHECK_FALSE(shop.code.old("counter"));  // vsn 2 unloaded
  const auto known = shop.releases.which_releases();
  REQUIRE(known.size() == 2);
  CHECK((known[0].vsn == "1" && known[0].status == hotswap::release_status::permanent));
  CHECK((known[1].vsn == "2" && known[1].status == hotswap::release_status::old));

  // Made permanent, a release is not rolled back any more: a crash is a crash.
  REQUIRE(shop.releases.upgrade(shop.manifest("2b", {"counter_v2", "minimal_v2"}), options));
  CHECK(shop.code.old("counter"));
  REQUIRE(shop.releases.make_permanent());
  CHECK_FALSE(shop.code.old("counter"));  // the versions before go with the grace period
  CHECK(shop.logged_starting("purge: purged counter vsn 1"));
  hotswap::send(shop.b, testing::Crash{});
  REQUIRE(testing::eventually([&] { return !shop.b.alive(); }));
  CHECK(shop.releases.rollback().outcome.error().code == hotswap::errc::no_release);
  CHECK(shop.code.current("counter")->vsn() == 2);
  CHECK(shop.releases.which_releases()[0].vsn == "2b");
}

TEST_CASE("in a grace period a dry run is refused, and another upgrade ends the period first, even if it fails") {
  running_release shop;
  hotswap::upgrade_options options;
  options.grace_period = std::chrono::hours(1);
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options));
  CHECK(monitors_on(shop.a) == 1);                                             // the grace period's
  const std::string three = shop.manifest("3", {"counter_v3", "minimal_v2"});  // counter vsn 3 refuses vsn 2
  const auto tried = shop.releases.dry_run(three);
  REQUIRE_FALSE(tried);
  CHECK(tried.outcome.error().what ==
        "counter keeps its version before loaded in the grace period of release shop 2: make-permanent or rollback "
        "first, then try release shop 3");
  CHECK(shop.code.old("counter")->vsn() == 1);  // nothing changed
  const auto failed = shop.releases.upgrade(three, options);
  REQUIRE_FALSE(failed);
  CHECK(failed.outcome.error().code == hotswap::errc::code_change_failed);
  CHECK(shop.code.current("counter")->vsn() == 2);  // release 2 runs on ...
  CHECK_FALSE(shop.code.old("counter"));            // ... its grace period over
  CHECK(shop.releases.which_releases()[1].status == hotswap::release_status::current);
  CHECK(monitors_on(shop.a) == 0);          // the period's monitors went with it
  hotswap::send(shop.a, testing::Crash{});  // a crash is a crash now
  REQUIRE(testing::eventually([&] { return !shop.a.alive(); }));
  CHECK(shop.code.current("counter")->vsn() == 2);
}

TEST_CASE("a grace period that ends by its time purges the versions before; a throw after it is a crash") {
  running_release shop;
  hotswap::upgrade_options options;
  options.grace_period = std::chrono::milliseconds(1);  // over before anything below can happen
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options));
  REQUIRE(testing::eventually(
      [&] { return shop.logged("purge: the grace period of release shop 2 ended: the versions before go"); }));
  REQUIRE(testing::eventually([&] { return !shop.code.old("counter") && !shop.code.old("minimal"); }));
  CHECK(monitors_on(shop.a) == 0);
  hotswap::send(shop.a, testing::Crash{});
  REQUIRE(testing::eventually([&] { return !shop.a.alive(); }));
  CHECK(shop.releases.which_releases()[1].status == hotswap::release_status::current);
  CHECK(shop.code.current("counter")->vsn() == 2);
}

TEST_CASE("rollback goes back to the permanent release by hand, with every state") {
  running_release shop;
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"})));
  const auto report = shop.releases.rollback();
  REQUIRE(what(report) == "done");
  CHECK(report.steps.size() == 3);
  CHECK(hotswap::call(shop.a, Get{}).value() == 5);
  CHECK(sys::get_status(shop.a).value().vsn == 1);
  CHECK(shop.releases.which_releases().size() == 2);
  CHECK(shop.releases.rollback().outcome.error().code == hotswap::errc::no_release);
}

TEST_CASE("the permanent release survives a restart; a release in its grace period does not") {
  const testing::scratch kept;
  const std::string directory = kept.dir + "/releases";
  running_release shop;  // (its files: the releases' manifests and modules)
  {
    // The fixture's handler booted release 1; this one boots it again into a code server of its own.
    hotswap::code_server code;
    hotswap::release_handler recorded(code, {.directory = directory});
    REQUIRE(recorded.boot(shop.manifest("1", {"counter_v1", "minimal"})));
    auto a = hotswap::start<Counter>(code.current("counter")).value();
    REQUIRE(recorded.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"})));
    REQUIRE(recorded.make_permanent());
    hotswap::upgrade_options in_grace;
    in_grace.grace_period = std::chrono::hours(1);
    REQUIRE(recorded.upgrade(shop.manifest("3", {"counter_v1", "minimal"}), in_grace));  // never made permanent
    (void)hotswap::stop(a);
    // A crash mid-write leaves a torn temporary file: the record is still the last one written.
    testing::write_bytes(directory + "/releases.json.new", "{\"hotswap_rel");
    struct stat info {};
    REQUIRE(::stat(directory.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0700);
  }
  // The program starts again: it boots release 2, the permanent one, with its modules.
  hotswap::code_server code;
  hotswap::release_handler releases(code, {.directory = directory});
  REQUIRE(releases.boot());
  CHECK(code.current("counter")->vsn() == 2);
  CHECK(code.current("minimal")->vsn() == 2);
  const auto known = releases.which_releases();
  REQUIRE(known.size() == 3);
  CHECK((known[0].vsn == "2" && known[0].status == hotswap::release_status::permanent));
  CHECK((known[1].vsn == "1" && known[1].status == hotswap::release_status::old));
  CHECK((known[2].vsn == "3" && known[2].status == hotswap::release_status::old));
  CHECK(releases.boot().error().what == "release shop 2 is already booted: upgrade to another");

  // A record that is not one is refused, saying where.
  testing::write_bytes(directory + "/releases.json", "[]");
  hotswap::code_server other;
  hotswap::release_handler unreadable(other, {.directory = directory});
  CHECK(unreadable.boot().error().what == directory + "/releases.json: not a release handler's record");
  hotswap::release_handler nowhere(other);
  CHECK(nowhere.boot().error().code == hotswap::errc::no_release);
}

TEST_CASE("a server that ends before its change is left out of a release, said in a note; the others move") {
  // OTP's release_handler skips a process gone, too: a connection's server may close any time.
  running_release shop;
  std::vector<std::string> lines;
  auto options = shop.sending(&lines);
  const auto send = options.progress;
  auto gone_at = hotswap::upgrade_stage::suspend;  // suspended, it still stops: its change finds it gone
  SECTION("ended while suspended") {}
  SECTION("ended before its suspend") {
    gone_at = hotswap::upgrade_stage::load;
  }
  options.progress = [&](hotswap::upgrade_stage stage, const std::string& line) {
    send(stage, line);
    if (stage == gone_at && shop.b.alive()) REQUIRE(hotswap::stop(shop.b));
  };
  const auto report = shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options);
  REQUIRE(what(report) == "done");
  REQUIRE(report.steps.size() == 2);
  CHECK(report.steps[0].server == shop.a.id());
  CHECK(report.steps[1].server == shop.c.id());
  const std::string left_out =
      fmt::format("server {} ended before its change to testing::CounterV2 vsn 2: left out", shop.b.id());
  REQUIRE_FALSE(report.notes.empty());
  CHECK(report.notes.front() == left_out);  // (then the purge's: b's handle holds vsn 1 still)
  CHECK(to_string(report).find("\n" + left_out + "\n") != std::string::npos);
  if (gone_at == hotswap::upgrade_stage::load)
    CHECK(std::find(lines.begin(), lines.end(), "suspend: suspended 2 servers") != lines.end());
  CHECK(std::find(lines.begin(), lines.end(),
                  fmt::format("resume: resumed 2 servers: paused {} us",
                              std::chrono::duration_cast<std::chrono::microseconds>(report.pause).count())) !=
        lines.end());
  CHECK_FALSE(shop.b.alive());
  CHECK(hotswap::call(shop.a, Get{}).value() == 5 + shop.sent);
  CHECK(sys::get_status(shop.a).value().implementation == "testing::CounterV2");
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
  CHECK(shop.code.current("counter")->vsn() == 2);
  CHECK_FALSE(shop.code.old("counter"));  // nothing runs vsn 1: purged
  CHECK(shop.releases.which_releases().size() == 2);
}

TEST_CASE("a server started on the version left while the upgrade runs is moved too, not left to the purge") {
  running_release shop;
  hotswap::server_ref<Counter> late;
  hotswap::upgrade_options options;
  options.progress = [&](hotswap::upgrade_stage stage, const std::string& line) {
    // After the plan, the new version just loaded: as a supervisor restarting a child on the old one.
    if (stage == hotswap::upgrade_stage::load && line == "loaded counter vsn 2") {
      late = hotswap::start<Counter>(shop.code.old("counter")).value();
      hotswap::cast(late, Add{7});
    }
  };
  const auto report = shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options);
  REQUIRE(what(report) == "done");
  REQUIRE(late);
  REQUIRE(report.steps.size() == 4);  // the three planned, then the late one in a transaction of its own
  CHECK(report.steps[3].server == late.id());
  CHECK(report.notes.empty());
  CHECK(sys::get_status(late).value().implementation == "testing::CounterV2");
  CHECK(hotswap::call(late, Get{}).value() == 7);
  CHECK_FALSE(shop.code.old("counter"));  // nothing held it: purged
  (void)hotswap::stop(late);
}

TEST_CASE("a supervised server whose handler throws in the grace period goes back with its state, not restarted") {
  running_release shop;
  auto sup = hotswap::start_supervisor({hotswap::strategy::one_for_one, 5, std::chrono::seconds(60)},
                                       {{"counter",
                                         [&]() -> hotswap::result<hotswap::any_server> {
                                           auto started = hotswap::start<Counter>(shop.code.current("counter"),
                                                                                  {.name = "supervised"});
                                           if (!started) return started.error();
                                           return hotswap::any_server(std::move(*started));
                                         }}})
                 .value();
  auto child = [&] { return hotswap::call(sup, hotswap::which_children{}).value().at(0); };
  const hotswap::any_server first = child().server;
  const auto first_ref = hotswap::whereis<Counter>("supervised").value();
  hotswap::cast(first_ref, Add{4});
  hotswap::upgrade_options options;
  options.grace_period = std::chrono::hours(1);
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options));
  CHECK(sys::get_status(first).value().vsn == 2);
  hotswap::send(first_ref, testing::Crash{});
  REQUIRE(testing::eventually([&] { return shop.logged("rollback: rolled back: release shop 1 runs again"); }));
  CHECK(child().server == first);
  CHECK(child().restarts == 0);
  CHECK(sys::get_status(first).value().vsn == 1);
  CHECK(hotswap::call(first_ref, Get{}).value() == 4);
  CHECK(shop.code.current("counter")->vsn() == 1);
  CHECK_FALSE(shop.code.old("counter"));  // nothing left on vsn 2
  (void)hotswap::stop(sup);
}

TEST_CASE("an upgrade's progress is never called after it returns: a rollback in its grace period tells the log") {
  running_release shop;
  // What a caller's by-reference capture would see: the flag is set as upgrade() returns.
  std::atomic<bool> returned{false}, called_after{false};
  hotswap::upgrade_options options;
  options.grace_period = std::chrono::hours(1);
  options.progress = [&](hotswap::upgrade_stage, const std::string&) {
    if (returned) called_after = true;
  };
  REQUIRE(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}), options));
  returned = true;
  hotswap::send(shop.a, testing::Crash{});
  // The rollback runs under the handler's lock: which_releases sees it whole.
  REQUIRE(testing::eventually([&] {
    const auto known = shop.releases.which_releases();
    return known.size() == 2 && known[1].status == hotswap::release_status::old;
  }));
  CHECK_FALSE(called_after);
  CHECK(shop.logged("rollback: rolled back: release shop 1 runs again"));
  CHECK(shop.code.current("counter")->vsn() == 1);
}

TEST_CASE("a manifest that is no regular file, or too large, is refused at once; the handler serves on") {
  running_release shop;
  const std::string fifo = shop.files.dir + "/fifo.release.json", directory = shop.files.dir + "/modules",
                    large = shop.files.dir + "/large.release.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // nobody ever writes it: a read would wait for good
  REQUIRE(::mkdir(directory.c_str(), 0700) == 0);
  testing::write_bytes(large, R"({"hotswap_release": 1, "name": "shop", "vsn": "9", "modules": ["x.so"], "pad": ")" +
                                  std::string(std::size_t{1} << 20, 'x') + "\"}");
  const std::pair<std::string, std::string> refused[] = {{"/dev/zero", "not a regular file"},
                                                         {fifo, "not a regular file"},
                                                         {directory, "not a regular file"},
                                                         {large, "larger than 1 MiB: not a release manifest"}};
  for (const auto& [path, why] : refused) {
    CAPTURE(path);
    const auto planned = shop.releases.plan(path);
    REQUIRE_FALSE(planned);
    CHECK(planned.error().code == hotswap::errc::bad_release);
    CHECK(planned.error().what == path + ": " + why);
    CHECK(shop.releases.upgrade(path).outcome.error().code == hotswap::errc::bad_release);
    CHECK(shop.releases.dry_run(path).outcome.error().code == hotswap::errc::bad_release);
    CHECK(hotswap::read_release(path).error().what == path + ": " + why);
  }
  shop.check_release_1_runs();
  REQUIRE(what(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}))) == "done");
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
}

TEST_CASE("a module loaded by hand, then its release upgraded to: the servers left on the old version move too") {
  running_release shop;
  const auto target = shop.manifest("2", {"counter_v2", "minimal_v2"});
  REQUIRE(shop.code.load(shop.files.dir + "/counter_v2-2.so"));  // as `hotswapctl load` would
  CHECK(sys::get_status(shop.a).value().vsn == 1);               // a load moves no server
  const auto plan = shop.releases.plan(target).value();
  REQUIRE(plan.changes.size() == 2);
  CHECK((plan.changes[0].module == "counter" && plan.changes[0].from_vsn == 1 && plan.changes[0].to_vsn == 2));
  CHECK(plan.changes[0].loaded);
  REQUIRE(plan.changes[0].servers.size() == 2);
  CHECK(plan.changes[0].servers[0].server == hotswap::any_server(shop.a));
  CHECK(plan.changes[0].servers[1].server == hotswap::any_server(shop.b));

  const auto report = shop.releases.upgrade(target, shop.sending());
  REQUIRE(what(report) == "done");
  CHECK(report.steps.size() == 3);
  for (const auto& server : {shop.a, shop.b})
    CHECK(sys::get_status(server).value().implementation == "testing::CounterV2");
  CHECK(hotswap::call(shop.a, Get{}).value() == 5 + 10);
  CHECK(hotswap::call(shop.b, Get{}).value() == 9 + 10);
  CHECK(shop.code.current("counter")->vsn() == 2);
  CHECK_FALSE(shop.code.old("counter"));  // vsn 1 purged: nothing is left on it

  // And back: the rollback is not refused, and moves them all down.
  REQUIRE(what(shop.releases.rollback()) == "done");
  for (const auto& server : {shop.a, shop.b}) CHECK(sys::get_status(server).value().vsn == 1);
  CHECK(hotswap::call(shop.c, Ping{}).value() == 101);
  CHECK(shop.code.current("counter")->vsn() == 1);
}

TEST_CASE(
    "no sequence of loads, upgrades, downgrades, rollbacks, purges and make_permanent leaves a release claimed "
    "that does not run") {
  running_release shop;
  // Each release's modules, and the vsn of each it names.
  struct one_release {
    std::string manifest;
    int counter, minimal;
  };
  const std::vector<one_release> releases{{shop.manifest("1", {"counter_v1", "minimal"}), 1, 1},
                                          {shop.manifest("2", {"counter_v2", "minimal_v2"}), 2, 2},
                                          {shop.manifest("3", {"counter_v3", "minimal_v2"}), 3, 2},
                                          {shop.manifest("1b", {"counter_v1", "minimal_v2"}), 1, 2},
                                          {shop.manifest("2b", {"counter_v2", "minimal"}), 2, 1}};
  const std::vector<std::string> files{
      shop.files.stage("counter_v1", "counter_v1-hand.so"), shop.files.stage("counter_v2", "counter_v2-hand.so"),
      shop.files.stage("counter_v3", "counter_v3-hand.so"), shop.files.stage("minimal", "minimal-hand.so"),
      shop.files.stage("minimal_v2", "minimal_v2-hand.so")};
  const char* const modules[] = {"counter", "minimal"};
  const auto seed = Catch::rngSeed() ? Catch::rngSeed() : std::random_device{}();
  INFO("seed " << seed << " (run with --rng-seed " << seed << " to repeat)");
  std::mt19937 random(seed);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };

  // What the release running now names, by its name and vsn.
  auto running = [&]() -> const one_release& {
    const auto known = shop.releases.which_releases();
    auto now = std::find_if(known.begin(), known.end(),
                            [](const auto& one) { return one.status == hotswap::release_status::current; });
    if (now == known.end()) now = known.begin();
    for (const auto& one : releases)
      if (one.manifest.ends_with("/shop-" + now->vsn + ".release.json")) return one;
    FAIL("release " << now->vsn << " is not one of the test's");
    return releases[0];
  };
  // A server that a forced purge stopped is started again on the version its release names, if
  // loaded (as the release's supervisor would).
  auto loaded_vsn = [&](const char* module, int vsn) -> hotswap::module_ptr {
    for (auto version : {shop.code.current(module), shop.code.old(module)})
      if (version && version->vsn() == vsn) return version;
    return nullptr;
  };
  std::string history;
  for (int step = 0; step < 150; ++step) {
    std::string did;
    switch (pick(7)) {
      case 0: {
        const auto& file = files[pick(files.size())];
        const auto loaded = shop.code.load(file);
        did = "load " + file.substr(file.rfind('/') + 1) + ": " + (loaded ? "done" : loaded.error().what);
        break;
      }
      case 1:
      case 2: {  // up or down: whichever the release is
        const auto& release = releases[pick(releases.size())];
        did = "upgrade " + release.manifest.substr(release.manifest.rfind('/') + 1) + ": " +
              what(shop.releases.upgrade(release.manifest, {.state_sizes = false}));
        break;
      }
      case 3:
        did = "rollback: " + what(shop.releases.rollback());
        break;
      case 4:
      case 5: {
        const char* module = modules[pick(2)];
        const auto mode = pick(2) ? hotswap::purge_mode::force : hotswap::purge_mode::soft;
        const auto purged = shop.code.purge(module, mode);
        did = std::string(mode == hotswap::purge_mode::force ? "force" : "soft") + " purge " + module + ": " +
              (purged ? "done" : purged.error().what);
        break;
      }
      default: {
        const auto made = shop.releases.make_permanent();
        did = std::string("make_permanent: ") + (made ? "done" : made.error().what);
      }
    }
    history += std::to_string(step) + ": " + did + "\n";
    const one_release& now = running();
    CAPTURE(history);
    if (!shop.a.alive())
      if (auto on = loaded_vsn("counter", now.counter)) shop.a = hotswap::start<Counter>(on).value();
    if (!shop.b.alive())
      if (auto on = loaded_vsn("counter", now.counter)) shop.b = hotswap::start<Counter>(on).value();
    if (!shop.c.alive())
      if (auto on = loaded_vsn("minimal", now.minimal)) shop.c = hotswap::start<Minimal>(on).value();
    // Every server runs the vsn of its module that the release running names.
    for (const auto& server : {shop.a, shop.b})
      if (server.alive()) REQUIRE(sys::get_status(server).value().vsn == now.counter);
    if (shop.c.alive()) REQUIRE(sys::get_status(shop.c).value().vsn == now.minimal);
  }
}

TEST_CASE("a record that cannot be written does not stop a boot; one that would not change is not written") {
  const testing::scratch kept;
  const std::string directory = kept.dir + "/releases", record = directory + "/releases.json";
  running_release shop;  // (its files)
  {
    hotswap::code_server code;
    hotswap::release_handler recorded(code, {.directory = directory});
    REQUIRE(recorded.boot(shop.manifest("1", {"counter_v1", "minimal"})));
    REQUIRE(recorded.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"})));  // current: old at the next boot
  }
  // The temporary file's place taken by a directory: every write fails (as on a full disk; root
  // ignores permission bits).
  REQUIRE(::mkdir((record + ".new").c_str(), 0700) == 0);
  const std::string before = testing::read_bytes(record);
  {
    hotswap::code_server code;
    hotswap::release_handler releases(code, {.directory = directory});
    const auto booted = releases.boot();
    REQUIRE(booted);
    CHECK((booted->name == "shop" && booted->vsn == "1"));
    REQUIRE(booted->notes.size() == 1);
    CHECK(booted->notes[0] == "the release handler's record was not written: " + record +
                                  ".new: open: Is a directory (the release runs; the record is as before)");
    CHECK(code.current("counter")->vsn() == 1);  // it runs
    CHECK(testing::read_bytes(record) == before);
  }
  REQUIRE(::rmdir((record + ".new").c_str()) == 0);
  {
    hotswap::code_server code;
    hotswap::release_handler releases(code, {.directory = directory});
    const auto booted = releases.boot();  // release 2 recorded old now
    REQUIRE(booted);
    CHECK(booted->notes.empty());
    CHECK(testing::read_bytes(record) != before);
  }
  // Nothing changes at this boot: nothing is written, so the blocked write is not even tried.
  REQUIRE(::mkdir((record + ".new").c_str(), 0700) == 0);
  hotswap::code_server code;
  hotswap::release_handler releases(code, {.directory = directory});
  const auto booted = releases.boot();
  REQUIRE(booted);
  CHECK(booted->notes.empty());
  const auto known = releases.which_releases();
  REQUIRE(known.size() == 2);
  CHECK((known[1].vsn == "2" && known[1].status == hotswap::release_status::old));
}

TEST_CASE("a boot or a rollback whose manifest now holds another release, or other builds, is refused saying what") {
  const testing::scratch kept;
  const std::string directory = kept.dir + "/releases";
  running_release shop;  // (its files, and a handler of its own for the rollback below)
  const std::string manifest_1 = shop.manifest("1", {"counter_v1", "minimal"});
  const std::string original = testing::read_bytes(manifest_1);
  {
    hotswap::code_server code;
    hotswap::release_handler recorded(code, {.directory = directory});
    REQUIRE(recorded.boot(manifest_1));
  }
  auto boot = [&] {
    hotswap::code_server code;
    hotswap::release_handler releases(code, {.directory = directory});
    auto booted = releases.boot();
    if (booted) return std::string("booted");
    CHECK(booted.error().code == hotswap::errc::bad_release);
    CHECK_FALSE(code.current("counter"));  // nothing of it was loaded
    return booted.error().what;
  };
  // Another name or vsn in the manifest's place.
  testing::write_bytes(manifest_1,
                       R"({"hotswap_release": 1, "name": "shop", "vsn": "7", "modules": ["counter_v1-1.so", )"
                       R"("minimal-1.so"]})");
  CHECK(boot() == manifest_1 + ": now release shop 7, not release shop 1, which " + directory +
                      "/releases.json records permanent");
  // Another build of counter vsn 1 in its module's place.
  testing::write_bytes(manifest_1, original);
  const std::string built_1 = hotswap::code_server().check(shop.files.dir + "/counter_v1-1.so").value().build;
  shop.files.stage("counter_v1_grown", "counter_v1-1.so");
  const std::string grown = hotswap::code_server().check(shop.files.dir + "/counter_v1-1.so").value().build;
  REQUIRE(grown != built_1);
  CHECK(boot() == "booting release shop 1: the manifest of release shop 1 (" + manifest_1 +
                      ") no longer holds the builds it ran with: module counter is build " + grown + ", not build " +
                      built_1);

  // The same for a rollback: the permanent release is the builds it ran with.
  REQUIRE(what(shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}))) == "done");
  auto refused = shop.releases.rollback();
  CHECK(refused.outcome.error().code == hotswap::errc::plan_refused);
  CHECK(refused.outcome.error().what.ends_with("module counter is build " + grown + ", not build " + built_1));
  testing::write_bytes(manifest_1,
                       R"({"hotswap_release": 1, "name": "shop", "vsn": "7", "modules": ["counter_v1-1.so", )"
                       R"("minimal-1.so"]})");
  CHECK(shop.releases.rollback().outcome.error().what ==
        manifest_1 + ": now release shop 7, not release shop 1, which it held");
  CHECK(sys::get_status(shop.a).value().vsn == 2);  // release 2 runs on
  shop.files.stage("counter_v1", "counter_v1-1.so");
  testing::write_bytes(manifest_1, original);
  REQUIRE(what(shop.releases.rollback()) == "done");
  CHECK(sys::get_status(shop.a).value().vsn == 1);
}

TEST_CASE("the record's directory is refused when a directory above it could be renamed by others") {
  const testing::scratch kept;
  const std::string open = kept.dir + "/open";
  REQUIRE(::mkdir(open.c_str(), 0700) == 0);
  REQUIRE(::chmod(open.c_str(), 0777) == 0);  // writable by every user, and not sticky
  running_release shop;
  hotswap::code_server code;
  hotswap::release_handler releases(code, {.directory = open + "/releases"});
  const auto booted = releases.boot(shop.manifest("1", {"counter_v1", "minimal"}));
  REQUIRE_FALSE(booted);
  CHECK(booted.error().code == hotswap::errc::bad_release);
  CHECK(booted.error().what.starts_with(open + "/releases: the directory " + open + " is writable by every user"));
  CHECK_FALSE(code.current("counter"));
}

TEST_CASE("a release upgrades a dynamic supervisor's 1,000 children on a module in one transaction, states kept") {
  running_release shop;
  auto pool = hotswap::start_dynamic_supervisor({}).value();
  constexpr int many = 1000;
  std::vector<hotswap::server_ref<Counter>> children;
  for (int i = 0; i < many; ++i) {
    auto child = hotswap::start_child(pool, hotswap::module_child<Counter>("", shop.code, "counter")).value();
    children.push_back(*hotswap::server_ref<Counter>::from(child));
    hotswap::cast(children.back(), Add{i});
  }
  const auto report = shop.releases.upgrade(shop.manifest("2", {"counter_v2", "minimal_v2"}));
  REQUIRE(what(report) == "done");
  CHECK(report.steps.size() == many + 3);  // the shop's a, b and c, and every child: one pause
  bool kept = true;                        // one CHECK, not 1,000
  for (int i = 0; i < many; ++i)
    kept = kept && hotswap::call(children[static_cast<std::size_t>(i)], Get{}).value() == i &&
           sys::get_status(children[static_cast<std::size_t>(i)]).value().vsn == 2;
  CHECK(kept);
  // A child restarted after the upgrade runs the new code, from init.
  hotswap::send(children[0], testing::Crash{});
  hotswap::server_ref<Counter> restarted;
  REQUIRE(testing::eventually([&] {
    const auto now = hotswap::call(pool, hotswap::which_children{}).value().at(0).server;
    return now && now != children[0] && (restarted = *hotswap::server_ref<Counter>::from(now), true);
  }));
  CHECK(sys::get_status(restarted).value().vsn == 2);
  CHECK(hotswap::call(restarted, Get{}).value() == 0);
  REQUIRE(hotswap::stop(pool));
  CHECK(hotswap::count_children(pool).error().code == hotswap::errc::no_server);
}

TEST_CASE("monitors, links and requests reach a module's servers as the program's") {
  running_release shop;
  std::atomic<int> downs{0};
  std::string why;
  auto ref = hotswap::monitor(shop.a, [&](const hotswap::down& ended) {
    why = ended.reason.what;
    downs.fetch_add(1);
  });
  auto program_counter = hotswap::start<testing::CounterV1>().value();
  REQUIRE(hotswap::link(shop.a, program_counter));
  CHECK(hotswap::send_request(shop.b, Get{}).wait(60s).value() == 9);
  const auto both = hotswap::call_all(std::vector{shop.a, shop.b}, Get{}, 60s);
  CHECK(both.at(0).value() == 5);
  CHECK(both.at(1).value() == 9);
  hotswap::send(shop.a, testing::Crash{});  // the module's server crashes: the program's linked one ends too
  REQUIRE(testing::eventually([&] { return downs.load() == 1 && !program_counter.alive(); }));
  CHECK(why == "asked to crash");
  CHECK(program_counter.exit().what == "asked to crash");
  CHECK_FALSE(hotswap::demonitor(ref));
}

TEST_CASE("remove_release forgets an old release and deletes the files only it used, in its unpacked directory only") {
  const testing::scratch kept;
  const std::string directory = kept.dir + "/releases", own = directory + "/unpacked/shop-1";
  for (const auto& made : {directory, directory + "/unpacked", own}) REQUIRE(::mkdir(made.c_str(), 0700) == 0);
  running_release shop;  // (its files)
  const auto put = [&](const std::string& module, const std::string& file) {
    testing::write_bytes(own + "/" + file, testing::read_bytes(testing::built(module)));
    return own + "/" + file;
  };
  // Release 1 as unpack puts it in place; release 2 shares its minimal module's file.
  const std::string counter_1 = put("counter_v1", "counter-1.so"), minimal_1 = put("minimal", "minimal-1.so");
  const std::string manifest_1 = own + "/shop-1.release.json", manifest_2 = shop.files.dir + "/shop-2.release.json";
  testing::write_bytes(
      manifest_1, R"({"hotswap_release": 1, "name": "shop", "vsn": "1", "modules": ["counter-1.so", "minimal-1.so"]})");
  testing::write_bytes(manifest_2, R"({"hotswap_release": 1, "name": "shop", "vsn": "2", "modules": [")" +
                                       shop.files.stage("counter_v2", "counter-2.so") + R"(", ")" + minimal_1 +
                                       R"("]})");
  const std::string manifest_3 = shop.manifest("3", {"counter_v2", "minimal_v2"});
  hotswap::code_server code;
  hotswap::release_handler releases(code, {.directory = directory});
  REQUIRE(releases.boot(manifest_1));
  REQUIRE(releases.upgrade(manifest_2));
  REQUIRE(releases.make_permanent());
  REQUIRE(releases.upgrade(manifest_3));  // current

  // Refused, each saying why, and nothing deleted.
  const auto refusal = [&](const std::string& vsn) {
    auto removed = releases.remove_release("shop", vsn);
    REQUIRE(!removed);
    CHECK(removed.error().code == hotswap::errc::no_release);
    return removed.error().what;
  };
  CHECK(refusal("2") ==
        "release shop 2 is permanent: the program boots it, so it is kept (make another release permanent first)");
  CHECK(refusal("3") == "release shop 3 is current: it runs (make-permanent or rollback first)");
  CHECK(refusal("9") == "release shop 9 is not known (known: shop 2, shop 1, shop 3)");
  CHECK(releases.which_releases().size() == 3);
  CHECK(testing::read_bytes(counter_1).size() > 0);

  // Release 1, old: forgotten, and the files only it named deleted; the file release 2 names kept.
  const auto removed = releases.remove_release("shop", "1");
  REQUIRE(removed);
  CHECK(removed->removed == std::vector<std::string>{counter_1, manifest_1});
  CHECK(removed->notes == std::vector<std::string>{minimal_1 + ": kept: another release names it"});
  CHECK(::access(counter_1.c_str(), F_OK) != 0);
  CHECK(::access(manifest_1.c_str(), F_OK) != 0);
  CHECK(::access(minimal_1.c_str(), F_OK) == 0);
  auto known = releases.which_releases();
  REQUIRE(known.size() == 2);
  CHECK((known[0].vsn == "2" && known[1].vsn == "3"));
  CHECK(refusal("1") == "release shop 1 is not known (known: shop 2, shop 3)");

  // Release 3, old after the rollback: forgotten, its files (hotswap_add_release's) all kept.
  REQUIRE(releases.rollback());
  const auto forgotten = releases.remove_release("shop", "3");
  REQUIRE(forgotten);
  CHECK(forgotten->removed.empty());
  CHECK(forgotten->notes == std::vector<std::string>{"its files are not the release handler's (unpack did not put it "
                                                     "in " +
                                                     directory + "/unpacked/shop-3/): none deleted"});
  CHECK(::access(manifest_3.c_str(), F_OK) == 0);

  // The record forgets them too: the program started again knows release 2 alone.
  hotswap::code_server again;
  hotswap::release_handler restarted(again, {.directory = directory});
  REQUIRE(restarted.boot());
  known = restarted.which_releases();
  REQUIRE(known.size() == 1);
  CHECK((known[0].vsn == "2" && known[0].status == hotswap::release_status::permanent));
}

namespace {
/// hotswap-seal pack of `manifest` into `archive`, signed with the test's key `signer` (none: not
/// signed).
void pack(const std::string& manifest, const std::string& archive, const std::string& signer = {}) {
  const std::string key = signer.empty() ? "" : fmt::format(" --key {}/{}.pem", HOTSWAP_TEST_KEYS_DIR, signer);
  REQUIRE(std::system(fmt::format("{} pack {} {}{}", HOTSWAP_SEAL, manifest, archive, key).c_str()) == 0);
}
std::string public_key(const std::string& name) {
  return testing::read_bytes(std::string(HOTSWAP_TEST_KEYS_DIR) + "/" + name + ".pub.pem");
}
/// An entry of a tar file written as given, hostile or not.
struct tar_entry {
  std::string name, bytes;
  unsigned type = AE_IFREG;
  std::string symlink{}, hardlink{};
};
void write_tar(const std::string& path, const std::vector<tar_entry>& entries) {
  archive* out = archive_write_new();
  REQUIRE(archive_write_set_format_pax_restricted(out) == ARCHIVE_OK);
  REQUIRE(archive_write_open_filename(out, path.c_str()) == ARCHIVE_OK);
  for (const auto& one : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, one.name.c_str());
    archive_entry_set_filetype(entry, one.type);
    archive_entry_set_perm(entry, 0644);
    if (!one.symlink.empty()) archive_entry_set_symlink(entry, one.symlink.c_str());
    if (!one.hardlink.empty()) archive_entry_set_hardlink(entry, one.hardlink.c_str());
    archive_entry_set_size(entry, one.type == AE_IFREG ? static_cast<la_int64_t>(one.bytes.size()) : 0);
    REQUIRE(archive_write_header(out, entry) == ARCHIVE_OK);
    if (!one.bytes.empty()) REQUIRE(archive_write_data(out, one.bytes.data(), one.bytes.size()) > 0);
    archive_entry_free(entry);
  }
  REQUIRE(archive_write_close(out) == ARCHIVE_OK);
  archive_write_free(out);
}
/// The names in `directory` (none if it is missing).
std::vector<std::string> listed(const std::string& directory) {
  std::vector<std::string> names;
  if (DIR* open = ::opendir(directory.c_str())) {
    while (const dirent* entry = ::readdir(open))
      if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) names.push_back(entry->d_name);
    ::closedir(open);
  }
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace

TEST_CASE("unpack puts a release archive in place, recorded unpacked; upgrade installs it; remove_release deletes it") {
  const testing::scratch kept;
  const std::string directory = kept.dir + "/releases", archive = kept.dir + "/shop-2.release.tar";
  running_release shop;  // (its files)
  pack(shop.manifest("2", {"counter_v2", "minimal_v2"}), archive);
  hotswap::code_server code;
  hotswap::release_handler releases(code, {.directory = directory});
  REQUIRE(releases.boot(shop.manifest("1", {"counter_v1", "minimal"})));
  auto a = hotswap::start<Counter>(code.current("counter")).value();
  hotswap::cast(a, Add{5});

  const auto put = releases.unpack(archive);
  REQUIRE(put);
  const std::string own = directory + "/unpacked/shop-2";
  CHECK((put->name == "shop" && put->vsn == "2"));
  CHECK(put->manifest == own + "/shop-2.release.json");
  CHECK(put->modules == std::vector<std::string>{own + "/counter_v2-2.so", own + "/minimal_v2-2.so"});
  CHECK(listed(own) == std::vector<std::string>{"counter_v2-2.so", "minimal_v2-2.so", "shop-2.release.json"});
  CHECK(listed(directory + "/unpacked") == std::vector<std::string>{"shop-2"});
  struct stat info {};
  REQUIRE(::stat(own.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0700);
  auto known = releases.which_releases();
  REQUIRE(known.size() == 2);
  CHECK((known[1].vsn == "2" && known[1].status == hotswap::release_status::unpacked));
  CHECK(code.current("counter")->vsn() == 1);  // nothing loaded
  CHECK(releases.unpack(archive).error().what ==
        archive + ": release shop 2 is known already (remove-release it first)");
  CHECK(listed(directory + "/unpacked") == std::vector<std::string>{"shop-2"});

  // A program started again knows it unpacked.
  {
    hotswap::code_server again;
    hotswap::release_handler restarted(again, {.directory = directory});
    REQUIRE(restarted.boot());
    known = restarted.which_releases();
    REQUIRE(known.size() == 2);
    CHECK((known[1].vsn == "2" && known[1].status == hotswap::release_status::unpacked));
  }

  // Installed by its manifest, as any release; once old, removed with its directory.
  REQUIRE(releases.upgrade(put->manifest));
  CHECK(hotswap::call(a, Get{}).value() == 5);
  CHECK(code.current("counter")->vsn() == 2);
  CHECK(releases.which_releases()[1].status == hotswap::release_status::current);
  REQUIRE(releases.rollback());
  const auto removed = releases.remove_release("shop", "2");
  REQUIRE(removed);
  CHECK(removed->removed ==
        std::vector<std::string>{own + "/counter_v2-2.so", own + "/minimal_v2-2.so", own + "/shop-2.release.json"});
  CHECK(removed->notes.empty());
  CHECK(listed(directory + "/unpacked").empty());
  (void)hotswap::stop(a);
}

TEST_CASE("unpack refuses an archive not signed by a key the code server trusts, or a module it would not load") {
  const testing::scratch kept;
  const std::string directory = kept.dir + "/releases";
  const std::string manifest = kept.dir + "/signed-2.release.json";
  kept.stage("minimal_signed_trusted", "minimal.so");
  testing::write_bytes(manifest, R"({"hotswap_release": 1, "name": "signed", "vsn": "2", "modules": ["minimal.so"]})");
  hotswap::code_server code({.trusted_keys = {public_key("trusted")}});
  hotswap::release_handler releases(code, {.directory = directory});
  const auto refused = [&](const std::string& archive) {
    auto put = releases.unpack(archive);
    REQUIRE(!put);
    CHECK(listed(directory + "/unpacked").empty());  // nothing left behind
    return put.error();
  };
  pack(manifest, kept.dir + "/unsigned.tar");
  auto why = refused(kept.dir + "/unsigned.tar");
  CHECK(why.code == hotswap::errc::untrusted);
  CHECK(why.what == kept.dir +
                        "/unsigned.tar: not signed (no signed-2.release.sig), and this code server takes only releases "
                        "signed by a trusted key (hotswap-seal pack --key)");
  pack(manifest, kept.dir + "/other.tar", "other");
  why = refused(kept.dir + "/other.tar");
  CHECK(why.code == hotswap::errc::untrusted);
  CHECK_THAT(why.what, Catch::StartsWith(kept.dir + "/other.tar: signed-2.release.sig: signed by key "));
  CHECK_THAT(why.what, Catch::EndsWith(", which this code server does not trust"));
  // Signed by the trusted key, but one of its modules not: refused as load refuses it.
  kept.stage("minimal", "minimal.so");
  pack(manifest, kept.dir + "/module_unsigned.tar", "trusted");
  why = refused(kept.dir + "/module_unsigned.tar");
  CHECK(why.code == hotswap::errc::untrusted);
  CHECK_THAT(why.what, Catch::Contains("minimal.so: not signed, and this code server takes only modules signed"));
  // A file changed after it was signed: the signature no longer verifies.
  kept.stage("minimal_signed_trusted", "minimal.so");
  pack(manifest, kept.dir + "/signed.tar", "trusted");
  const std::string signature = kept.dir + "/signature";
  REQUIRE(std::system(fmt::format("tar -xOf {}/signed.tar signed-2.release.sig > {}", kept.dir, signature).c_str()) ==
          0);
  write_tar(kept.dir + "/changed.tar",
            {{"signed-2.release.json",
              R"({"hotswap_release": 1, "name": "signed", "vsn": "2", "modules": ["minimal.so"], "stop": ["x"]})"},
             {"minimal.so", testing::read_bytes(kept.dir + "/minimal.so")},
             {"signed-2.release.sig", testing::read_bytes(signature)}});
  why = refused(kept.dir + "/changed.tar");
  CHECK(why.code == hotswap::errc::untrusted);
  CHECK_THAT(why.what, Catch::EndsWith(" does not verify: the manifest or a module is not what was signed"));
  // Signed by the trusted key: taken.
  const auto put = releases.unpack(kept.dir + "/signed.tar");
  REQUIRE(put);
  CHECK(listed(directory + "/unpacked/signed-2") ==
        std::vector<std::string>{"minimal.so", "signed-2.release.json", "signed-2.release.sig"});
}

TEST_CASE("unpack refuses a hostile archive, saying which file and why, and writes nothing") {
  const testing::scratch kept;
  const std::string directory = kept.dir + "/releases", tar = kept.dir + "/hostile.tar";
  hotswap::code_server code;
  hotswap::release_handler releases(code, {.directory = directory});
  const std::string manifest = R"({"hotswap_release": 1, "name": "shop", "vsn": "2", "modules": ["m.so"]})";
  const std::string module = testing::read_bytes(testing::built("minimal"));
  const auto refused = [&](const std::vector<tar_entry>& entries) {
    write_tar(tar, entries);
    auto put = releases.unpack(tar);
    REQUIRE(!put);
    CHECK(put.error().code == hotswap::errc::bad_release);
    CHECK(listed(directory + "/unpacked").empty());
    CHECK(listed(kept.dir) == std::vector<std::string>{"hostile.tar", "releases"});
    return put.error().what.substr(tar.size() + 2);
  };
  CHECK(refused({{"../evil", "x"}}) == "../evil: a path out of the archive: a release archive holds file names only");
  CHECK(refused({{"/tmp/evil", "x"}}) == "/tmp/evil: an absolute path: a release archive holds file names only");
  CHECK(refused({{"sub/m.so", "x"}}) == "sub/m.so: in a directory: a release archive is flat");
  CHECK(refused({{"m.so", "", AE_IFLNK, "/etc/passwd"}}) ==
        "m.so: a link, a directory or a device: a release archive holds regular files only");
  CHECK(refused({{"a", "x"}, {"m.so", "", AE_IFREG, "", "a"}}) ==
        "m.so: a link, a directory or a device: a release archive holds regular files only");
  CHECK(refused({{"sub", "", AE_IFDIR}}) ==
        "sub/: a link, a directory or a device: a release archive holds regular files only");
  CHECK(refused({{".hidden", "x"}}) ==
        ".hidden: not a file name of letters, digits, '.', '_' and '-' (not first '.', '_' or '-')");
  CHECK(refused({{"m.so", module}, {"m.so", module}}) == "m.so: twice in the archive");
  CHECK(refused({{"m.so", module}}) == "holds no manifest (NAME-VSN.release.json)");
  CHECK(refused({{"shop-2.release.json", manifest}, {"m.so", module}, {"extra", "x"}}) ==
        "extra: a file its manifest does not name");
  CHECK(refused({{"shop-3.release.json", manifest}, {"m.so", module}}) ==
        "shop-3.release.json is release shop 2: it must be named shop-2.release.json");
  CHECK(refused({{"shop-2.release.json", manifest}}) ==
        "its manifest names m.so, which is not a file of the archive (an archive's manifest names its modules by file "
        "name)");
  // A header claiming more than a file of a release may hold: refused before a byte is read.
  write_tar(tar, {{"m.so", "x"}});
  std::string bytes = testing::read_bytes(tar);
  REQUIRE(bytes.size() >= 512);
  const std::string huge = fmt::format("{:011o}", (std::uint64_t{1} << 33) - 1);  // 8 GiB
  std::memcpy(bytes.data() + 124, huge.c_str(), 12);
  std::memset(bytes.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (std::size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bytes[i]);
  const std::string checksum = fmt::format("{:06o}", sum);
  std::memcpy(bytes.data() + 148, checksum.c_str(), 7);
  testing::write_bytes(tar, bytes);
  auto put = releases.unpack(tar);
  REQUIRE(!put);
  CHECK(put.error().what == tar + ": m.so: 8589934591 bytes, more than the 256 MiB a file of a release may hold");
  CHECK(listed(directory + "/unpacked").empty());
  testing::write_bytes(tar, "not an archive at all, but long enough to be looked at as one......");
  put = releases.unpack(tar);
  REQUIRE(!put);
  CHECK_THAT(put.error().what, Catch::StartsWith(tar + ": not a release archive (a tar file, gzip'd or not): "));
  // No directory: nowhere to put it.
  hotswap::release_handler nowhere(code);
  CHECK(nowhere.unpack(tar).error().code == hotswap::errc::no_release);
}

TEST_CASE("the archive hotswap_add_release_archive makes unpacks; its signature is checked before its modules") {
  const std::string archive = std::string(HOTSWAP_TEST_MODULE_DIR) + "/counters-2.release.tar";
  const testing::scratch kept;
  {
    hotswap::code_server code;
    hotswap::release_handler releases(code, {.directory = kept.dir + "/open"});
    const auto put = releases.unpack(archive);
    REQUIRE(put);
    CHECK(listed(kept.dir + "/open/unpacked/counters-2") ==
          std::vector<std::string>{"counter_v2.so", "counters-2.release.json", "counters-2.release.sig",
                                   "minimal_v2.so"});
  }
  // Signed by the trusted key, its modules are not: the signature verifies, the first module is refused.
  hotswap::code_server code({.trusted_keys = {public_key("trusted")}});
  hotswap::release_handler releases(code, {.directory = kept.dir + "/trusting"});
  const auto put = releases.unpack(archive);
  REQUIRE(!put);
  CHECK(put.error().code == hotswap::errc::untrusted);
  CHECK_THAT(put.error().what, Catch::Contains("/counter_v2.so: not signed, and this code server takes only modules"));
  CHECK(listed(kept.dir + "/trusting/unpacked").empty());
}
