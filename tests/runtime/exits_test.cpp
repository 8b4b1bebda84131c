// Monitors, links and exit reasons: who hears of a server's end, exactly once, and what stops
// with it.
#include <atomic>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;

namespace testing {
struct Heard {};
struct Watch {
  hotswap::any_server server;
};
struct Forget {};  // demonitors the last monitor it set
struct LinkTo {
  hotswap::any_server server;
};
using Watcher = hotswap::interface<"Watcher", hotswap::call_msg<Heard, std::vector<std::string>>,
                                   hotswap::cast_msg<Watch>, hotswap::cast_msg<Forget>, hotswap::cast_msg<LinkTo>,
                                   hotswap::info_msg<hotswap::down>, hotswap::info_msg<hotswap::exit_signal>>;

struct watcher_state {
  std::vector<std::string> heard;
  hotswap::monitor_ref last;
};
struct WatcherV1 {
  using interface = Watcher;
  static constexpr int vsn = 1;
  using state = watcher_state;
  static state init() { return {}; }
  static std::vector<std::string> handle_call(const Heard&, const state& s) { return s.heard; }
  static void handle_cast(const Watch& watch, state& s) {
    s.last = hotswap::monitor(hotswap::self<Watcher>(), watch.server);
  }
  static void handle_cast(const Forget&, state& s) { hotswap::demonitor(s.last); }
  static void handle_cast(const LinkTo& to, state&) { hotswap::link(hotswap::self<Watcher>(), to.server); }
  static void handle_info(const hotswap::down& d, state& s) {
    s.heard.push_back("down " + std::to_string(d.monitor) + " " + std::to_string(d.server) + " " + describe(d.reason));
  }
  static void handle_info(const hotswap::exit_signal& e, state& s) {
    s.heard.push_back("exit " + std::to_string(e.server) + " " + describe(e.reason));
  }
  static void terminate(const hotswap::exit_reason& reason, state&) { exits().add("watcher " + describe(reason)); }
};

std::string down_line(const hotswap::monitor_ref& ref, const hotswap::any_server& server, const std::string& reason) {
  return "down " + std::to_string(ref.id()) + " " + std::to_string(server.id()) + " " + reason;
}
std::size_t monitors_on(const hotswap::any_server& server) {
  const hotswap::detail::spin_guard hold(server.core()->exit_lock);
  return server.core()->monitors.size();
}
std::size_t links_of(const hotswap::any_server& server) {
  const hotswap::detail::spin_guard hold(server.core()->exit_lock);
  return server.core()->links.size();
}
}  // namespace testing

// -- monitors --

TEST_CASE("a monitor tells its server of the end once, with the reason; also of a server already ended") {
  manual_executor here;
  auto watcher = here.start<WatcherV1>();
  auto counter = here.start<CounterV1>();
  auto ref = hotswap::monitor(watcher, counter);
  auto second = hotswap::monitor(watcher, counter);  // each monitor is told
  REQUIRE(ref);
  CHECK(ref.id() != second.id());
  hotswap::send(counter, Crash{});
  CHECK(hotswap::call(watcher, Heard{}).value() ==
        std::vector<std::string>{down_line(ref, counter, "crashed: asked to crash"),
                                 down_line(second, counter, "crashed: asked to crash")});
  CHECK(monitors_on(counter) == 0);
  // A server that has ended is told at once, as OTP tells noproc.
  auto late = hotswap::monitor(watcher, counter);
  CHECK(hotswap::call(watcher, Heard{}).value().back() == down_line(late, counter, "crashed: asked to crash"));
  CHECK_FALSE(hotswap::demonitor(late));  // its down was handled
  REQUIRE(hotswap::stop(watcher));
  exits().take();
}

TEST_CASE("demonitor takes a monitor off, and drops its down if it is already in the mailbox") {
  manual_executor here;
  auto watcher = here.start<WatcherV1>();
  auto counter = here.start<CounterV1>();
  auto ref = hotswap::monitor(watcher, counter);
  CHECK(monitors_on(counter) == 1);
  CHECK(hotswap::demonitor(ref));
  CHECK(monitors_on(counter) == 0);
  CHECK_FALSE(ref);
  REQUIRE(hotswap::stop(counter));
  CHECK(hotswap::call(watcher, Heard{}).value().empty());

  // The down already sent, not yet handled: flushed.
  manual_executor there;  // runs `other` at once while `here` holds the watcher
  auto other = there.start<CounterV1>();
  auto flushed = hotswap::monitor(watcher, other);
  here.set_mode(manual_executor::mode::held);
  REQUIRE(hotswap::stop(other));  // the down waits in the held watcher's mailbox
  CHECK(watcher.core()->inbox.front() != nullptr);
  CHECK(hotswap::demonitor(flushed));
  here.run();
  here.set_mode(manual_executor::mode::immediate);
  CHECK(hotswap::call(watcher, Heard{}).value().empty());
  REQUIRE(hotswap::stop(watcher));
  exits().take();
}

TEST_CASE("a server's monitors on others are taken off when it ends: nothing it set outlives it") {
  manual_executor here;
  auto watcher = here.start<WatcherV1>();
  auto counter = here.start<CounterV1>();
  hotswap::cast(watcher, Watch{counter});
  hotswap::cast(watcher, Watch{counter});
  CHECK(monitors_on(counter) == 2);
  REQUIRE(hotswap::stop(watcher));
  CHECK(monitors_on(counter) == 0);
  (void)hotswap::monitor(watcher, counter);  // set by a watcher that has ended: nothing is kept
  CHECK(monitors_on(counter) == 0);
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

TEST_CASE("a handler sets and takes off its own monitors") {
  manual_executor here;
  auto watcher = here.start<WatcherV1>();
  auto counter = here.start<CounterV1>();
  hotswap::cast(watcher, Watch{counter});
  hotswap::cast(watcher, Forget{});
  CHECK(monitors_on(counter) == 0);
  hotswap::cast(watcher, Watch{counter});
  REQUIRE(hotswap::stop(counter, hotswap::exit_reason{hotswap::exit_kind::shutdown, "closing"}));
  const auto heard = hotswap::call(watcher, Heard{}).value();
  REQUIRE(heard.size() == 1);
  CHECK(heard[0].ends_with(std::to_string(counter.id()) + " shutdown: closing"));
  REQUIRE(hotswap::stop(watcher));
  exits().take();
}

TEST_CASE("a callback monitor is called once, on the ending thread, or at once for a server that has ended") {
  auto counter = hotswap::start<CounterV1>().value();
  std::atomic<int> called{0};
  std::string said;
  auto ref = hotswap::monitor(counter, [&](const hotswap::down& d) {
    said = describe(d.reason) + " " + std::to_string(d.monitor);
    called.fetch_add(1);
  });
  auto dropped = hotswap::monitor(counter, [&](const hotswap::down&) { called.fetch_add(100); });
  CHECK(hotswap::demonitor(dropped));
  hotswap::send(counter, Crash{});
  REQUIRE(eventually([&] { return called.load() == 1; }));
  CHECK(said == "crashed: asked to crash " + std::to_string(ref.id()));
  int late = 0;
  auto after = hotswap::monitor(counter, [&](const hotswap::down& d) { late = d.monitor == 0 ? -1 : 1; });
  CHECK(late == 1);  // called before monitor() returned, with its id
  CHECK_FALSE(hotswap::demonitor(after));
  CHECK(called.load() == 1);
  exits().take();
}

// -- links --

TEST_CASE("a crash stops the servers linked to it with its reason; a normal end stops none") {
  auto watcher = hotswap::start<WatcherV1>().value();  // on the pool: the link spans workers
  auto counter = hotswap::start<CounterV1>().value();
  auto calm = hotswap::start<CounterV1>().value();
  CHECK(hotswap::link(watcher, calm));
  hotswap::cast(watcher, LinkTo{counter});
  (void)hotswap::call(watcher, Heard{});
  CHECK(links_of(watcher) == 2);
  REQUIRE(hotswap::stop(calm));  // normal: the watcher lives on
  CHECK(links_of(watcher) == 1);
  CHECK(hotswap::call(watcher, Heard{}).value().empty());
  hotswap::send(counter, Crash{});
  REQUIRE(eventually([&] { return !watcher.alive(); }));
  CHECK(watcher.exit().kind == hotswap::exit_kind::crashed);
  CHECK(watcher.exit().what == "asked to crash");
  CHECK(links_of(counter) == 0);
  const auto logged = exits().take();
  CHECK(std::find(logged.begin(), logged.end(), "watcher crashed: asked to crash") != logged.end());
}

TEST_CASE("a server that traps exits hears of a linked server's end as an exit_signal, and lives on") {
  manual_executor here;
  auto watcher = here.start<WatcherV1>();
  auto counter = here.start<CounterV1>();
  auto unlinked = here.start<CounterV1>();
  hotswap::trap_exits(watcher);
  CHECK(hotswap::link(counter, watcher));
  CHECK(hotswap::link(watcher, unlinked));
  CHECK(hotswap::unlink(unlinked, watcher));
  CHECK_FALSE(hotswap::unlink(unlinked, watcher));
  CHECK_FALSE(hotswap::link(watcher, watcher));
  hotswap::send(unlinked, Crash{});
  hotswap::send(counter, Crash{});
  CHECK(watcher.alive());
  CHECK(hotswap::call(watcher, Heard{}).value() ==
        std::vector<std::string>{"exit " + std::to_string(counter.id()) + " crashed: asked to crash"});
  // A link to a server that has ended is an exit signal at once.
  CHECK(hotswap::link(watcher, unlinked));
  CHECK(hotswap::call(watcher, Heard{}).value().back() ==
        "exit " + std::to_string(unlinked.id()) + " crashed: asked to crash");
  hotswap::trap_exits(watcher, false);
  auto last = here.start<CounterV1>();
  CHECK(hotswap::link(watcher, last));
  REQUIRE(hotswap::stop(last, hotswap::exit_reason{hotswap::exit_kind::shutdown, "closing"}));
  CHECK_FALSE(watcher.alive());
  CHECK(watcher.exit().kind == hotswap::exit_kind::shutdown);
  exits().take();
}

// -- stop with a reason --

namespace testing {
struct StopWith {
  std::string why;
};
using Stopping = hotswap::interface<"Stopping", hotswap::call_msg<StopWith, std::string>>;
struct StoppingV1 {
  using interface = Stopping;
  static constexpr int vsn = 1;
  using state = int;
  static state init() { return 0; }
  static std::string handle_call(const StopWith& stop, state&) {
    (void)hotswap::stop(hotswap::self<Stopping>(), hotswap::exit_reason{hotswap::exit_kind::crashed, stop.why});
    return "stopping: " + stop.why;
  }
  static void terminate(const hotswap::exit_reason& reason, state&) { exits().add("stopping " + describe(reason)); }
};
}  // namespace testing

TEST_CASE("a call handler stops its server with a reason and still replies, as OTP's {stop, Reason, Reply, State}") {
  auto server = hotswap::start<StoppingV1>().value();
  auto watcher = hotswap::start<WatcherV1>().value();
  auto ref = hotswap::monitor(watcher, server);
  CHECK(hotswap::call(server, StopWith{"done"}).value() == "stopping: done");
  REQUIRE(eventually([&] { return !server.alive(); }));
  CHECK(exits().take() == std::vector<std::string>{"stopping crashed: done"});
  REQUIRE(eventually([&] { return hotswap::call(watcher, Heard{}).value().size() == 1; }));
  CHECK(hotswap::call(watcher, Heard{}).value()[0] == down_line(ref, server, "crashed: done"));
  CHECK(hotswap::call(server, StopWith{"again"}).error().code == hotswap::errc::no_server);
  REQUIRE(hotswap::stop(watcher));
  exits().take();
}
