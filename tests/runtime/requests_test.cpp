// Deferred replies (gen_server:reply) and requests sent without waiting (send_request, request id
// collections): a call answered later, from elsewhere, once; replies gathered as they come.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;

namespace testing {
struct Ask {};       // kept, answered by Answer
struct AskTwice {};  // answered at once, then again: the second is refused
struct Ignore {};    // the handle is dropped unanswered
struct Fail {};      // the handle is taken, then the handler throws
struct AskLater {};  // answered from a timer's info
struct Ring {};
struct Answer {
  long value;
};
struct Said {};
struct Handoff {  // the kept handle is answered by another server
  hotswap::reply_to<long> to;
  long value;
};
using Desk = hotswap::interface<"Desk", hotswap::call_msg<Ask, long>, hotswap::call_msg<AskTwice, long>,
                                hotswap::call_msg<Ignore, long>, hotswap::call_msg<Fail, long>,
                                hotswap::call_msg<AskLater, long>, hotswap::info_msg<Ring>, hotswap::cast_msg<Answer>,
                                hotswap::call_msg<Said, std::vector<std::string>>, hotswap::cast_msg<Handoff>>;

namespace desk_v1 {
struct Desk {
  std::vector<hotswap::reply_to<long>> waiting;
  std::vector<std::string> said;
};
}  // namespace desk_v1
namespace desk_v2 {
struct Desk {
  std::vector<hotswap::reply_to<long>> waiting;
  std::vector<std::string> said;
  int generation = 2;
};
}  // namespace desk_v2
using DeskSchema = hotswap::schema<"Desk", hotswap::version<1, desk_v1::Desk>, hotswap::version<2, desk_v2::Desk>>;
}  // namespace testing

template <hotswap::listed_in<testing::DeskSchema> T>
struct hotswap::schema_of<T> : testing::DeskSchema {};
template <>
struct hotswap::step<testing::desk_v1::Desk, testing::desk_v2::Desk> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"generation">};
};

namespace testing {
template <class State, int Vsn>
struct desk_handlers {
  using interface = Desk;
  static constexpr int vsn = Vsn;
  using state = State;
  static state init() { return {}; }
  static void handle_call(const Ask&, state& s, hotswap::reply_to<long> from) { s.waiting.push_back(std::move(from)); }
  static void handle_call(const AskTwice&, state& s, hotswap::reply_to<long> from) {
    REQUIRE(hotswap::reply(from, 1L));
    const auto again = from.reply(2L);
    s.said.push_back(again ? "answered twice" : std::string(hotswap::to_string(again.error().code)));
  }
  static void handle_call(const Ignore&, state&, hotswap::reply_to<long>) {}
  static void handle_call(const Fail&, state&, hotswap::reply_to<long>) { throw std::runtime_error("failed"); }
  static void handle_call(const AskLater&, state& s, hotswap::reply_to<long> from) {
    s.waiting.push_back(std::move(from));
    hotswap::send_after(hotswap::self<Desk>(), Ring{}, 5ms);
  }
  static void handle_info(const Ring&, state& s) { answer(s, 42); }
  static void handle_cast(const Answer& a, state& s) { answer(s, a.value + (Vsn == 2 ? 1000 : 0)); }
  static std::vector<std::string> handle_call(const Said&, const state& s) { return s.said; }
  static void handle_cast(const Handoff& h, state& s) {
    auto to = h.to;
    const auto answered = to.reply(h.value);
    s.said.push_back(answered ? "handed off" : std::string(hotswap::to_string(answered.error().code)));
  }
  static void answer(state& s, long value) {
    for (auto& waiting : std::exchange(s.waiting, {})) (void)waiting.reply(value);
  }
};
struct DeskV1 : desk_handlers<desk_v1::Desk, 1> {};
struct DeskV2 : desk_handlers<desk_v2::Desk, 2> {
  using state_history = hotswap::state_history<hotswap::version<1, desk_v1::Desk>>;
};

/// Answers a call by asking the desk, without waiting: the desk's reply comes back as a
/// response info, which answers the call it kept.
struct Relay {};
using Relaying =
    hotswap::interface<"Relaying", hotswap::call_msg<Relay, long>, hotswap::info_msg<hotswap::response<long>>>;
struct relay_state {
  hotswap::server_ref<Desk> desk;
  std::vector<std::pair<std::uint64_t, hotswap::reply_to<long>>> asked;
};
struct RelayV1 {
  using interface = Relaying;
  static constexpr int vsn = 1;
  using state = relay_state;
  static state init(const hotswap::server_ref<Desk>& desk) { return {desk, {}}; }
  static void handle_call(const Relay&, state& s, hotswap::reply_to<long> from) {
    s.asked.emplace_back(hotswap::send_request(s.desk, Ask{}, hotswap::self<Relaying>()), std::move(from));
  }
  static void handle_info(const hotswap::response<long>& r, state& s) {
    for (auto& [id, from] : s.asked)
      if (id == r.request) (void)from.reply(r.reply ? *r.reply + 1 : -1);
  }
};
}  // namespace testing

constexpr auto desk_description = hotswap::type_description<testing::desk_v1::Desk>;
static_assert(desk_description == "Desk@1{waiting:vector<hotswap::reply_to<i64>>,said:vector<string>}");

// -- deferred replies --

TEST_CASE("a call handler keeps the caller's handle and answers later, from another message's handler") {
  manual_executor here;
  auto desk = here.start<DeskV1>();
  auto first = hotswap::send_request(desk, Ask{});
  auto second = hotswap::send_request(desk, Ask{});
  hotswap::cast(desk, Answer{7});
  CHECK(first.wait(60s).value() == 7);
  CHECK(second.wait(60s).value() == 7);
  REQUIRE(hotswap::stop(desk));
}

TEST_CASE("a call answered twice: the second answer is refused, not a crash") {
  manual_executor here;
  auto desk = here.start<DeskV1>();
  CHECK(hotswap::send_request(desk, AskTwice{}).wait(60s).value() == 1);
  CHECK(hotswap::call(desk, Said{}).value() == std::vector<std::string>{"already_replied"});
  CHECK(desk.alive());
  REQUIRE(hotswap::stop(desk));
}

TEST_CASE("a handle dropped unanswered fails its call at once with no_reply: by the handler, or as its server stops") {
  manual_executor here;
  auto desk = here.start<DeskV1>();
  const auto ignored = hotswap::call(desk, Ignore{}, std::chrono::hours(1));  // at once, or the test hangs
  REQUIRE_FALSE(ignored);
  CHECK(ignored.error().code == hotswap::errc::no_reply);
  auto kept = hotswap::send_request(desk, Ask{});
  REQUIRE(hotswap::stop(desk));
  CHECK(kept.wait(std::chrono::hours(1)).error().code == hotswap::errc::no_reply);
}

TEST_CASE("a handler that takes the handle and throws crashes its server: the call fails as any call") {
  manual_executor here;
  auto desk = here.start<DeskV1>();
  const auto failed = hotswap::call(desk, Fail{}, std::chrono::hours(1));
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == hotswap::errc::server_died);
  CHECK(failed.error().what == "failed");
}

TEST_CASE("a handle is answered from a timer's info, and by another server it was handed to") {
  manual_executor here;
  manual_clock clock;
  auto desk = here.start<DeskV1>();
  auto later = hotswap::send_request(desk, AskLater{});
  clock.advance(5ms);
  CHECK(later.wait(60s).value() == 42);

  auto other = here.start<DeskV1>();
  auto asked = hotswap::send_request(desk, Ask{});
  auto state = hotswap::sys::get_state<desk_v1::Desk>(desk).value();
  REQUIRE(state.waiting.size() == 1);
  hotswap::cast(other, Handoff{state.waiting[0], 9});  // a copy: answers the same call
  CHECK(asked.wait(60s).value() == 9);
  hotswap::cast(desk, Answer{10});  // the desk's copy is answered already: refused, quietly
  CHECK(hotswap::call(other, Said{}).value() == std::vector<std::string>{"handed off"});
  REQUIRE(hotswap::stop(other));
  REQUIRE(hotswap::stop(desk));
}

TEST_CASE("a server keeps a handle in its state across an upgrade, and the new code answers it") {
  auto desk = hotswap::start<DeskV1>().value();
  auto asked = hotswap::send_request(desk, Ask{});
  REQUIRE(hotswap::sys::suspend(desk));
  REQUIRE(hotswap::sys::change_code(desk, hotswap::table_of<DeskV2>, 1));
  REQUIRE(hotswap::sys::resume(desk));
  hotswap::cast(desk, Answer{1});
  CHECK(asked.wait(60s).value() == 1001);  // answered by vsn 2
  REQUIRE(hotswap::stop(desk));
}

// -- requests sent without waiting --

TEST_CASE("send_request: the reply is taken once; a timeout leaves it pending; a stopped server fails at once") {
  manual_executor here;
  auto desk = here.start<DeskV1>();
  auto asked = hotswap::send_request(desk, Ask{});
  CHECK(asked.id() != 0);
  CHECK(asked.wait(1ms).error().code == hotswap::errc::timeout);
  hotswap::cast(desk, Answer{3});
  CHECK(asked.wait(60s).value() == 3);
  CHECK(asked.wait(60s).error().code == hotswap::errc::no_reply);  // taken already
  auto dropped = hotswap::send_request(desk, Ask{});
  dropped = {};  // its reply, when it comes, is freed (the sanitizers check it)
  hotswap::cast(desk, Answer{4});
  REQUIRE(hotswap::stop(desk));
  CHECK(hotswap::send_request(desk, Ask{}).wait(60s).error().code == hotswap::errc::no_server);
  CHECK(hotswap::send_request(hotswap::server_ref<Desk>{}, Ask{}).wait(60s).error().code == hotswap::errc::no_server);
}

TEST_CASE("a request set fans out to 100 servers and takes their replies as they come, or all in order") {
  std::vector<hotswap::server_ref<Counter>> counters;
  for (int i = 0; i < 100; ++i) {
    counters.push_back(hotswap::start<CounterFrom>(i).value());
  }
  const auto all = hotswap::call_all(counters, Get{}, 60s);
  REQUIRE(all.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(all[static_cast<std::size_t>(i)].value() == i);

  hotswap::request_set<long> set;
  std::vector<std::uint64_t> ids;
  for (const auto& counter : counters) ids.push_back(set.send(counter, Get{}));
  CHECK(set.pending() == 100);
  std::vector<bool> seen(100);
  while (auto one = set.wait_any(60s)) {
    const auto at = std::find(ids.begin(), ids.end(), one->first) - ids.begin();
    REQUIRE(at < 100);
    CHECK(one->second.value() == at);
    CHECK_FALSE(seen[static_cast<std::size_t>(at)]);
    seen[static_cast<std::size_t>(at)] = true;
  }
  CHECK(set.pending() == 0);
  CHECK(std::count(seen.begin(), seen.end(), true) == 100);
  for (auto& counter : counters) REQUIRE(hotswap::stop(counter));
  exits().take();
}

TEST_CASE("wait_all gives the replies that came in time, the rest timeout, still pending") {
  manual_executor here;
  auto desk = here.start<DeskV1>();
  auto counter = here.start<CounterV1>();
  hotswap::request_set<long> set;
  set.send(desk, Ask{});
  set.send(counter, Get{});
  const auto first = set.wait_all(1ms);
  REQUIRE(first.size() == 2);
  CHECK(first[0].error().code == hotswap::errc::timeout);
  CHECK(first[1].value() == 0);
  CHECK(set.pending() == 1);
  hotswap::cast(desk, Answer{5});
  const auto second = set.wait_all(60s);
  REQUIRE(second.size() == 1);
  CHECK(second[0].value() == 5);
  CHECK_FALSE(set.wait_any(1ms));  // none pending
  REQUIRE(hotswap::stop(desk));
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

TEST_CASE("a server's request is answered to it as a response info: no worker waits") {
  manual_executor here;
  auto desk = here.start<DeskV1>();
  auto relay = hotswap::start<RelayV1>(desk).value();  // on the pool, the desk on this thread
  auto asked = hotswap::send_request(relay, Relay{});
  REQUIRE(eventually([&] { return hotswap::sys::get_state<desk_v1::Desk>(desk).value().waiting.size() == 1; }));
  hotswap::cast(desk, Answer{20});
  CHECK(asked.wait(60s).value() == 21);
  REQUIRE(hotswap::stop(relay));
  REQUIRE(hotswap::stop(desk));
}
