// What follows a handler: handle_continue (OTP's {continue, C}) and idle timeouts (OTP's
// {noreply, State, Timeout}).
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;

namespace testing {
struct Step {
  std::string name;
  bool then_continue = false;
  bool then_idle = false;
};
struct Log {};
struct Idle {};
struct Setup {
  std::uintptr_t gate;  // 0: none
};
struct Refresh {
  bool fail = false;
};
using Steps = hotswap::interface<"Steps", hotswap::cast_msg<Step>, hotswap::call_msg<Log, std::vector<std::string>>,
                                 hotswap::info_msg<Idle>>;

struct StepsV1 {
  using interface = Steps;
  static constexpr int vsn = 1;
  using state = std::vector<std::string>;
  static state init(const Setup& setup) {
    hotswap::continue_with<StepsV1>(setup);
    return {"init"};
  }
  static void handle_continue(const Setup& setup, state& s) {
    if (setup.gate) {  // held until the test opens the gate (as counter_handlers' Gate)
      auto& gate = *reinterpret_cast<std::atomic<std::uint32_t>*>(setup.gate);
      gate = 1;
      while (gate.load() != 2) hotswap::detail::futex_wait(gate, 1);
    }
    s.push_back("set up");
  }
  static void handle_continue(const Refresh& refresh, state& s) {
    if (refresh.fail) throw std::runtime_error("refresh failed");
    s.push_back("refreshed");
  }
  static void handle_cast(const Step& step, state& s) {
    s.push_back(step.name);
    if (step.then_continue) hotswap::continue_with<StepsV1>(Refresh{step.name == "fail"});
    if (step.then_idle) hotswap::idle_timeout(hotswap::self<Steps>(), 10ms, Idle{});
  }
  static std::vector<std::string> handle_call(const Log&, const state& s) { return s; }
  static void handle_info(const Idle&, state& s) { s.push_back("idle"); }
};
}  // namespace testing

TEST_CASE("handle_continue after init runs on the server's thread once start has returned, before any message") {
  gate held;
  auto steps = hotswap::start<StepsV1>(Setup{held.message().state}).value();  // returns while it is held
  REQUIRE(held.entered());
  auto log = hotswap::send_request(steps, Log{});  // waits behind the continuation
  held.open();
  CHECK(log.wait(60s).value() == std::vector<std::string>{"init", "set up"});
  REQUIRE(hotswap::stop(steps));
}

TEST_CASE("handle_continue after a handler runs before the messages waiting; a throw in it crashes the server") {
  manual_executor here;
  const Setup none{0};
  auto steps =
      hotswap::detail::start_as<Steps>(hotswap::table_of<StepsV1>, &none, {}, false, {}, nullptr, &here).value();
  here.set_mode(manual_executor::mode::held);
  hotswap::cast(steps, Step{"a", true});
  hotswap::cast(steps, Step{"b"});
  here.run();
  here.set_mode(manual_executor::mode::immediate);
  CHECK(hotswap::call(steps, Log{}).value() == std::vector<std::string>{"init", "set up", "a", "refreshed", "b"});
  std::vector<std::string> reports;
  auto before = hotswap::set_report_sink([&](const hotswap::report& said) { reports.push_back(said.text); });
  hotswap::cast(steps, Step{"fail", true});
  hotswap::set_report_sink(std::move(before));
  CHECK_FALSE(steps.alive());
  CHECK(steps.exit().what == "refresh failed");
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].find("handling its handle_continue: std::runtime_error: refresh failed") != std::string::npos);
  CHECK_THROWS_AS(hotswap::continue_with<StepsV1>(Refresh{}), std::logic_error);  // not in a server
}

TEST_CASE("an idle timeout sends its info when no message came in time; a message that comes first cancels it") {
  manual_executor here;
  manual_clock clock;
  const Setup none{0};
  auto steps =
      hotswap::detail::start_as<Steps>(hotswap::table_of<StepsV1>, &none, {}, false, {}, nullptr, &here).value();
  hotswap::cast(steps, Step{"wait", false, true});
  clock.advance(9ms);
  CHECK(hotswap::call(steps, Log{}).value().back() == "wait");  // a call is a message: it cancels the timeout ...
  hotswap::cast(steps, Step{"again", false, true});
  clock.advance(10ms);
  CHECK(hotswap::call(steps, Log{}).value() ==
        std::vector<std::string>{"init", "set up", "wait", "again", "idle"});  // ... this one came
  hotswap::cast(steps, Step{"twice", false, true});
  hotswap::cast(steps, Step{"last", false, true});  // the first one's is cancelled: one idle
  clock.advance(20ms);
  const auto log = hotswap::call(steps, Log{}).value();
  CHECK(std::vector<std::string>(log.end() - 3, log.end()) == std::vector<std::string>{"twice", "last", "idle"});
  CHECK_THROWS_AS(hotswap::idle_timeout(steps, 1ms, Idle{}), std::logic_error);  // not in its handler
  REQUIRE(hotswap::stop(steps));
}

// -- what views show of a state --

namespace testing::shown {
struct Login {
  std::string user;
  hotswap::secret<std::string> password;
  std::vector<hotswap::reply_to<long>> waiting;
};
struct Summary {
  std::string user;
  int waiting = 0;
};
}  // namespace testing::shown
using LoginSchema = hotswap::schema<"Login", hotswap::version<1, testing::shown::Login>>;
template <>
struct hotswap::schema_of<testing::shown::Login> : LoginSchema {};
template <>
inline constexpr bool hotswap::enable_inspect<LoginSchema> = true;
using SummarySchema = hotswap::schema<"Summary", hotswap::version<1, testing::shown::Summary>>;
template <>
struct hotswap::schema_of<testing::shown::Summary> : SummarySchema {};
template <>
inline constexpr bool hotswap::enable_inspect<SummarySchema> = true;

namespace testing::shown {
using Logins = hotswap::interface<"Logins", hotswap::info_msg<Crash>>;
struct Plain {
  using interface = Logins;
  static constexpr int vsn = 1;
  using state = Login;
  static state init() { return {"ann", {"hunter2"}, {}}; }
  static void handle_info(const Crash&, state&) { throw std::runtime_error("asked to crash"); }
};
struct Formatted : Plain {
  static Summary format_status(const state& s) { return {s.user, static_cast<int>(s.waiting.size())}; }
};

std::string shown_state(const hotswap::implementation_table& table) {
  auto state = Plain::init();
  std::string out(256, '\0');
  out.resize(table.inspect_state(&state, out.data(), out.size()));
  return out;
}
}  // namespace testing::shown

TEST_CASE("a secret field never leaves the process; format_status says what views show of a state") {
  using namespace testing::shown;
  static_assert(hotswap::type_description<Login> ==
                "Login@1{user:string,password:hotswap::secret<string>,waiting:vector<hotswap::reply_to<i64>>}");
  CHECK(shown_state(hotswap::table_of<Plain>) == R"(%Login{user: "ann", password: #secret, waiting: []})");
  CHECK(shown_state(hotswap::table_of<Formatted>) == R"(%Summary{user: "ann", waiting: 0})");

  std::vector<std::string> reports;
  auto before = hotswap::set_report_sink([&](const hotswap::report& said) { reports.push_back(said.text); });
  manual_executor here;
  auto server = here.start<Plain>();
  hotswap::send(server, Crash{});
  hotswap::set_report_sink(std::move(before));
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].find("hunter2") == std::string::npos);
  CHECK(reports[0].find("password: #secret") != std::string::npos);
}
