// Servers: calls, casts, infos, timers, names, crashes, blocking handlers, calls between servers.
#include "servers.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "fixture.hpp"

using namespace testing;
using namespace std::chrono_literals;

namespace {
// The compile-time side: interfaces, kinds and fingerprints.
static_assert(Counter::size == 5 && Counter::index_of<Add> == 1 && Counter::index_of<int> == Counter::size);
static_assert(std::is_same_v<hotswap::reply_of<Counter, Get>, long>);
static_assert(hotswap::table_of<CounterV1>.vsn == 1 && hotswap::table_of<CounterV2>.vsn == 2);
static_assert(hotswap::table_of<CounterV1>.interface_fingerprint == Counter::fingerprint);
static_assert(hotswap::table_of<CounterV1>.state_fingerprint == hotswap::fingerprint<v1::Count>);
static_assert(hotswap::table_of<CounterV1>.message_names[1] == "testing::Add");
// The same messages under another name, or in another order, or with another reply: another interface.
static_assert(Counter::fingerprint !=
              hotswap::interface<"Counter2", hotswap::call_msg<Get, long>, hotswap::cast_msg<Add>,
                                 hotswap::cast_msg<Sleep>, hotswap::info_msg<Crash>>::fingerprint);
static_assert(Counter::fingerprint !=
              hotswap::interface<"Counter", hotswap::call_msg<Get, int>, hotswap::cast_msg<Add>,
                                 hotswap::cast_msg<Sleep>, hotswap::info_msg<Crash>>::fingerprint);
static_assert(Counter::fingerprint !=
              hotswap::interface<"Counter", hotswap::call_msg<Get, long>, hotswap::cast_msg<Sleep>,
                                 hotswap::cast_msg<Add>, hotswap::info_msg<Crash>>::fingerprint);

hotswap::server_ref<Counter> start_counter(hotswap::start_options options = {}) {
  return hotswap::start<CounterV1>(std::move(options)).value();
}
}  // namespace

TEST_CASE("a call returns the reply; casts and infos are handled in the order sent") {
  auto counter = start_counter();
  for (int i = 0; i < 1000; ++i) CHECK(hotswap::cast(counter, Add{1}));
  CHECK(hotswap::call(counter, Get{}).value() == 1000);
  REQUIRE(hotswap::stop(counter));
  CHECK_FALSE(counter.alive());
  CHECK(exits().take() == std::vector<std::string>{"counter 1000 normal"});
}

TEST_CASE("init takes an argument; a throwing init starts nothing") {
  auto counter = hotswap::start<CounterFrom>(41, {}).value();
  CHECK(hotswap::call(counter, Get{}).value() == 41);
  REQUIRE(hotswap::stop(counter));
  exits().take();
  // Options given as `{}` are options: the overloads for modules and for init's argument do not
  // compete with them.
  auto plain = hotswap::start<CounterV1>({}).value();
  CHECK(hotswap::call(plain, Get{}).value() == 0);
  REQUIRE(hotswap::stop(plain));
  exits().take();

  struct Refuses : CounterV1 {
    static state init() { throw std::runtime_error("no"); }
  };
  const auto refused = hotswap::start<Refuses>({.name = "refuses"});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::init_failed);
  CHECK(refused.error().what == "no");
  CHECK_FALSE(hotswap::whereis<Counter>("refuses"));
}

namespace testing {
struct Seen {
  std::vector<int> order;
};
struct Numbered {
  int n;
};
using Recorder = hotswap::interface<"Recorder", hotswap::cast_msg<Numbered>, hotswap::call_msg<Get, std::size_t>>;
struct RecorderImpl {
  using interface = Recorder;
  static constexpr int vsn = 1;
  using state = Seen;
  static state init() { return {}; }
  static void handle_cast(const Numbered& m, state& s) { s.order.push_back(m.n); }
  static std::size_t handle_call(const Get&, const state& s) {
    for (std::size_t i = 0; i < s.order.size(); ++i)
      if (s.order[i] != static_cast<int>(i)) return i;
    return s.order.size();
  }
};
}  // namespace testing

TEST_CASE("messages from one sender arrive in the order sent, none lost or doubled") {
  auto recorder = hotswap::start<RecorderImpl>().value();
  constexpr int count = 200'000;
  for (int i = 0; i < count; ++i) hotswap::cast(recorder, Numbered{i});
  CHECK(hotswap::call(recorder, Get{}).value() == count);  // the first out of place, or all
  REQUIRE(hotswap::stop(recorder));
}

namespace testing {
struct Note {
  std::string text;
};
using Notes = hotswap::interface<"Notes", hotswap::cast_msg<Note>, hotswap::call_msg<Get, std::string>>;
struct NotesImpl {
  using interface = Notes;
  static constexpr int vsn = 1;
  using state = std::string;
  static state init() { return {}; }
  static void handle_cast(Note&& note, state& s) { s += note.text; }
  static std::string handle_call(const Get&, const state& s) { return s; }
};
}  // namespace testing

TEST_CASE("a message too big to travel in place travels boxed, and is freed") {
  static_assert(!hotswap::detail::stored_in_place<Note>);
  auto notes = hotswap::start<NotesImpl>().value();
  hotswap::cast(notes, Note{"a long enough string not to fit in the small buffer, "});
  hotswap::cast(notes, Note{"twice"});
  CHECK(hotswap::call(notes, Get{}).value() == "a long enough string not to fit in the small buffer, twice");
  REQUIRE(hotswap::stop(notes));
  // Messages to a stopped server are refused and freed (the sanitizer build checks the freeing).
  CHECK_FALSE(hotswap::cast(notes, Note{"a long enough string not to fit in the small buffer, again"}));
}

TEST_CASE("a call times out; the server goes on serving") {
  auto counter = start_counter();
  hotswap::cast(counter, Sleep{300});
  const auto late = hotswap::call(counter, Get{}, 20ms);
  REQUIRE_FALSE(late);
  CHECK(late.error().code == hotswap::errc::timeout);
  CHECK(hotswap::call(counter, Get{}).value() == 0);
  REQUIRE(hotswap::stop(counter));
  exits().take();

  // fmt prints what a request gives back: errc, error and result.
  CHECK(fmt::format("{}", late.error().code) == "timeout");
  CHECK(fmt::format("{:>9}", hotswap::errc::no_server) == "no_server");
  CHECK(fmt::format("{}", late.error()) == "timeout: no reply within 20 ms");
  CHECK(fmt::format("{}", late) == "timeout: no reply within 20 ms");
  CHECK(fmt::format("{}", hotswap::error{hotswap::errc::no_server, {}}) == "no_server");
  CHECK(fmt::format("{}", hotswap::result<long>(42)) == "42");
  CHECK(fmt::format("{}", hotswap::result<void>()) == "ok");
  CHECK(fmt::format("{}", hotswap::call(counter, Get{})) == "no_server");  // it has stopped
}

TEST_CASE("a call may wait forever (nanoseconds::max)") {
  auto counter = start_counter();
  hotswap::cast(counter, Sleep{30});  // the call below parks: its deadline must not overflow
  CHECK(hotswap::call(counter, Get{}, std::chrono::nanoseconds::max()).value() == 0);
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

namespace testing {
std::atomic<long> null_states{0};
struct Poke {};
using Poked = hotswap::interface<"Poked", hotswap::cast_msg<Poke>>;
struct PokedImpl {
  using interface = Poked;
  static constexpr int vsn = 1;
  struct state {
    long pokes = 0;
  };
  static state init() { return {}; }
  static void handle_cast(const Poke&, state& s) {
    const volatile std::uintptr_t at = reinterpret_cast<std::uintptr_t>(&s);
    if (at == 0)
      ++null_states;
    else
      ++s.pokes;
  }
};
}  // namespace testing

TEST_CASE("a server found by its name is not run before its init has returned") {
  std::atomic<bool> done{false};
  std::thread hammer([&] {
    while (!done)
      if (const auto found = hotswap::whereis<Poked>("poked")) hotswap::cast(*found, Poke{});
  });
  for (int i = 0; i < (sanitized ? 2'000 : 20'000); ++i) {  // the window was a few instructions wide
    auto poked = hotswap::start<PokedImpl>({.name = "poked"}).value();
    REQUIRE(hotswap::stop(poked));
  }
  done = true;
  hammer.join();
  CHECK(null_states.load() == 0);
}

TEST_CASE("a call to a server that is gone, or dies while the call waits, fails at once") {
  auto counter = start_counter();
  REQUIRE(hotswap::stop(counter));
  const auto after_stop = hotswap::call(counter, Get{});
  REQUIRE_FALSE(after_stop);
  CHECK(after_stop.error().code == hotswap::errc::no_server);

  auto doomed = start_counter();
  hotswap::cast(doomed, Sleep{50});
  hotswap::send(doomed, Crash{});  // handled before the call below: the call waits behind it
  const auto began = std::chrono::steady_clock::now();
  const auto pending = hotswap::call(doomed, Get{}, 10s);
  const auto waited = std::chrono::steady_clock::now() - began;
  REQUIRE_FALSE(pending);
  CHECK(pending.error().code == hotswap::errc::server_died);
  CHECK(waited < 5s);  // at once, not at the 10 s timeout
  CHECK(doomed.exit().kind == hotswap::exit_kind::crashed);
  CHECK(doomed.exit().what == "asked to crash");
  CHECK(exits().take() == std::vector<std::string>{"counter 0 normal", "counter 0 crashed: asked to crash"});
}

TEST_CASE("names resolve to the server, whatever it runs, until it stops") {
  auto counter = start_counter({.name = "named_counter"});
  CHECK(*hotswap::whereis<Counter>("named_counter") == counter);
  auto other = start_counter();
  CHECK_FALSE(hotswap::register_name("named_counter", other));  // taken
  REQUIRE(hotswap::stop(other));
  using Other = hotswap::interface<"Other", hotswap::cast_msg<Add>>;
  CHECK_FALSE(hotswap::whereis<Other>("named_counter"));  // another interface
  CHECK(hotswap::unregister_name("named_counter"));
  CHECK_FALSE(hotswap::whereis<Counter>("named_counter"));
  CHECK(hotswap::register_name("named_counter", counter));
  REQUIRE(hotswap::stop(counter));
  CHECK_FALSE(hotswap::whereis<Counter>("named_counter"));
  const auto again = start_counter({.name = "named_counter"});
  CHECK(hotswap::whereis<Counter>("named_counter"));
  REQUIRE(hotswap::stop(again));
  exits().take();
}

TEST_CASE("all_servers lists the live servers, oldest first: not one whose init failed, nor one that ended") {
  auto ids = [] {
    std::vector<std::uint64_t> listed;
    for (const auto& server : hotswap::all_servers()) listed.push_back(server.id());
    return listed;
  };
  const auto before = ids();
  auto first = start_counter();
  auto second = start_counter();
  auto third = start_counter();
  struct Refuses : CounterV1 {
    static state init() { throw std::runtime_error("no"); }
  };
  REQUIRE_FALSE(hotswap::start<Refuses>({}));
  auto expected = before;
  for (const auto* server : {&first, &second, &third}) expected.push_back(server->id());
  CHECK(ids() == expected);
  REQUIRE(hotswap::stop(second));  // from the middle of the list
  REQUIRE(hotswap::stop(third));   // and its newest
  expected.resize(before.size() + 1);
  CHECK(ids() == expected);
  REQUIRE(hotswap::stop(first));
  CHECK(ids() == before);
  exits().take();
}

namespace {
struct Ping {};
using Ticker = hotswap::interface<"Ticker", hotswap::info_msg<Ping>, hotswap::call_msg<Get, int>>;
struct TickerImpl {
  using interface = Ticker;
  static constexpr int vsn = 1;
  struct state {
    int pings = 0;
  };
  static state init() { return {}; }
  static void handle_info(const Ping&, state& s) { ++s.pings; }
  static int handle_call(const Get&, const state& s) { return s.pings; }
};
}  // namespace

TEST_CASE("timers: send_after fires once, send_interval until cancelled, on time and without drift") {
  testing::manual_clock clock;  // ticks are delivered inside advance(), before the calls below
  auto ticker = hotswap::start<TickerImpl>().value();
  auto once = hotswap::send_after(ticker, Ping{}, 1ms);
  auto repeating = hotswap::send_interval(ticker, Ping{}, 2ms);
  clock.advance(999us);
  CHECK(hotswap::call(ticker, Get{}).value() == 0);
  clock.advance(1us);
  CHECK(hotswap::call(ticker, Get{}).value() == 1);  // the send_after
  clock.advance(1ms);
  CHECK(hotswap::call(ticker, Get{}).value() == 2);  // the first tick, at 2 ms
  clock.advance(9ms);
  CHECK(hotswap::call(ticker, Get{}).value() == 6);  // at 4, 6, 8 and 10 ms: whole periods from the start
  CHECK(repeating.cancel());
  CHECK_FALSE(repeating.cancel());
  CHECK_FALSE(once.cancel());  // it had fired
  clock.advance(20ms);
  CHECK(hotswap::call(ticker, Get{}).value() == 6);  // none after the cancel
  auto never = hotswap::send_after(ticker, Ping{}, 10s);
  CHECK(hotswap::cancel(never));
  clock.advance(20s);
  CHECK(hotswap::call(ticker, Get{}).value() == 6);
  REQUIRE(hotswap::stop(ticker));
}

namespace {
struct Relay {
  int hops;
};
using Chain = hotswap::interface<"Chain", hotswap::call_msg<Relay, int>>;
struct ChainImpl {
  using interface = Chain;
  static constexpr int vsn = 1;
  struct state {
    std::optional<hotswap::server_ref<Chain>> next;
  };
  static state init(const std::optional<hotswap::server_ref<Chain>>& next) { return {next}; }
  static int handle_call(const Relay& relay, const state& s) {
    if (!s.next) return relay.hops;
    return hotswap::call(*s.next, Relay{relay.hops + 1}).value();
  }
};
}  // namespace

TEST_CASE("handlers call other servers, deeper than the pool has threads, without deadlock") {
  std::vector<hotswap::server_ref<Chain>> chain;
  std::optional<hotswap::server_ref<Chain>> next;
  for (int i = 0; i < 16; ++i) {
    chain.push_back(hotswap::start<ChainImpl>(next).value());
    next = chain.back();
  }
  CHECK(hotswap::call(chain.back(), Relay{0}).value() == 15);
  for (auto& server : chain) REQUIRE(hotswap::stop(server));
}

namespace {
struct Loop {
  int timeout_ms;
};
using Cyclic = hotswap::interface<"Cyclic", hotswap::call_msg<Loop, std::string>>;
struct CyclicImpl {
  using interface = Cyclic;
  static constexpr int vsn = 1;
  struct state {
    std::string peer;
  };
  static state init(const std::string& peer) { return {peer}; }
  static std::string handle_call(const Loop& loop, const state& s) {
    const auto peer = hotswap::whereis<Cyclic>(s.peer);
    const auto answer = hotswap::call(*peer, loop, std::chrono::milliseconds(loop.timeout_ms));
    return answer ? *answer : std::string(to_string(answer.error().code));
  }
};
}  // namespace

namespace testing {
struct Myself {};
using Narcissus = hotswap::interface<"Narcissus", hotswap::call_msg<Myself, std::string>, hotswap::call_msg<Get, int>>;
struct NarcissusImpl {
  using interface = Narcissus;
  static constexpr int vsn = 1;
  struct state {};
  static state init() { return {}; }
  static std::string handle_call(const Myself&, state&) {
    const auto answer = hotswap::call(hotswap::self<Narcissus>(), Get{});
    return std::string(to_string(answer.error().code));
  }
  static int handle_call(const Get&, state&) { return 1; }
};
}  // namespace testing

TEST_CASE("a handler calling its own server fails at once with calling_self") {
  auto server = hotswap::start<NarcissusImpl>().value();
  CHECK(hotswap::call(server, Myself{}).value() == "calling_self");
  REQUIRE(hotswap::stop(server));
}

namespace testing {
struct Quit {};
using Quitter = hotswap::interface<"Quitter", hotswap::call_msg<Quit, std::string>>;
struct QuitterImpl {
  using interface = Quitter;
  static constexpr int vsn = 1;
  struct state {};
  static state init() { return {}; }
  static std::string handle_call(const Quit&, state&) {
    const auto me = hotswap::self<Quitter>();
    const auto status = hotswap::sys::get_status(me);  // it would wait for itself
    REQUIRE(hotswap::stop(me));                        // queued: happens after this handler
    return std::string(to_string(status.error().code));
  }
};
}  // namespace testing

TEST_CASE("a handler's sys request to its own server fails with calling_self; its stop is queued") {
  auto server = hotswap::start<QuitterImpl>().value();
  CHECK(hotswap::call(server, Quit{}).value() == "calling_self");
  CHECK(eventually([&] { return !server.alive(); }));
  CHECK(server.exit().kind == hotswap::exit_kind::normal);
}

TEST_CASE("a cycle of calls ends in a timeout, as in Erlang") {
  auto a = hotswap::start<CyclicImpl>(std::string("cycle_b"), {.name = "cycle_a"}).value();
  auto b = hotswap::start<CyclicImpl>(std::string("cycle_a"), {.name = "cycle_b"}).value();
  // a waits for b, which waits for a: b's call times out first and b answers with that.
  CHECK(hotswap::call(a, Loop{200}, 5s).value() == "timeout");
  REQUIRE(hotswap::stop(a));
  REQUIRE(hotswap::stop(b));
}

namespace {
std::atomic<bool> released{false};
struct Block {};
using Blocker = hotswap::interface<"Blocker", hotswap::cast_msg<Block>, hotswap::call_msg<Get, int>>;
struct BlockerImpl {
  using interface = Blocker;
  static constexpr int vsn = 1;
  struct state {};
  static state init() { return {}; }
  static void handle_cast(const Block&, state&) { released.wait(false); }
  static int handle_call(const Get&, state&) { return 1; }
};
}  // namespace

TEST_CASE("servers with threads of their own block nobody else") {
  // More blocked servers than the pool has threads: had they run on the pool, the counter
  // below could not answer before they are released.
  std::vector<hotswap::server_ref<Blocker>> blocked;
  for (unsigned i = 0; i < std::thread::hardware_concurrency() + 1; ++i) {
    blocked.push_back(hotswap::start<BlockerImpl>({.own_thread = true}).value());
    hotswap::cast(blocked.back(), Block{});
  }
  auto counter = start_counter();
  CHECK(hotswap::call(counter, Get{}).value() == 0);
  released = true;
  released.notify_all();
  for (auto& server : blocked) CHECK(hotswap::call(server, Get{}).value() == 1);
  for (auto& server : blocked) REQUIRE(hotswap::stop(server));
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

namespace {
struct Selfish {
  using interface = Ticker;
  static constexpr int vsn = 1;
  struct state {
    int pings = 0;
  };
  static state init() {
    hotswap::send(hotswap::self<Ticker>(), Ping{});  // waits in the mailbox until init returns
    return {};
  }
  static void handle_info(const Ping&, state& s) {
    if (++s.pings < 3) hotswap::send(hotswap::self<Ticker>(), Ping{});
  }
  static int handle_call(const Get&, const state& s) { return s.pings; }
};
}  // namespace

TEST_CASE("self() is the running server, from init and from handlers") {
  auto selfish = hotswap::start<Selfish>().value();
  REQUIRE(eventually([&] { return hotswap::call(selfish, Get{}).value() == 3; }));  // two sent to itself
  CHECK_THROWS_AS(hotswap::self<Ticker>(), std::logic_error);
  REQUIRE(hotswap::stop(selfish));
}

TEST_CASE("on a manual executor a server runs on the test's thread: at once, or when the test runs it") {
  namespace sys = hotswap::sys;
  testing::manual_executor here;
  auto counter = here.start<CounterV1>();
  hotswap::cast(counter, Add{2});  // handled before cast returns
  CHECK(sys::get_state<v1::Count>(counter).value().count == 2);
  CHECK(hotswap::call(counter, Get{}).value() == 2);

  here.set_mode(testing::manual_executor::mode::held);
  hotswap::cast(counter, Add{3});
  hotswap::cast(counter, Add{4});
  CHECK(here.held() == 1);  // the server, once, with both casts
  CHECK(here.run() == 1);
  CHECK(here.held() == 0);
  here.set_mode(testing::manual_executor::mode::immediate);
  CHECK(hotswap::call(counter, Get{}).value() == 9);

  // A code change, step by step: what is cast while suspended waits, in order, for the resume.
  REQUIRE(sys::suspend(counter));
  hotswap::cast(counter, Add{1});
  CHECK(sys::get_status(counter).value().mailbox_length == 1);
  REQUIRE(sys::change_code(counter, hotswap::table_of<CounterV2>, 1));
  CHECK(sys::get_state<v2::Count>(counter).value().count == 9);
  REQUIRE(sys::resume(counter));
  CHECK(hotswap::call(counter, Get{}).value() == 10);
  REQUIRE(hotswap::stop(counter));
  CHECK(exits().take() == std::vector<std::string>{"counter 10 normal"});
}

// A server whose state inspect prints, and whose handler throws what a terminal must not get raw.
namespace reported {
struct Note {
  std::string text;
  int seen = 0;
};
struct Throw {
  std::string what;
};
class custom_failure : public std::runtime_error {
  using std::runtime_error::runtime_error;
};
using Noting = hotswap::interface<"Noting", hotswap::cast_msg<Throw>, hotswap::call_msg<testing::Get, int>>;
struct NoteKeeper {
  using interface = Noting;
  static constexpr int vsn = 1;
  using state = Note;
  static state init() { return {"a\x1b[2Jb", 7}; }
  static void handle_cast(const Throw& message, Note&) { throw custom_failure(message.what); }
  static int handle_call(const testing::Get&, const Note& s) { return s.seen; }
};
}  // namespace reported
using NoteSchema = hotswap::schema<"Note", hotswap::version<1, reported::Note>>;
template <>
struct hotswap::schema_of<reported::Note> : NoteSchema {};
template <>
inline constexpr bool hotswap::enable_inspect<NoteSchema> = true;

TEST_CASE("a handler that throws sends one crash report to the program's sink, safe for a terminal") {
  struct heard {
    std::mutex lock;
    std::vector<hotswap::report> reports;
  };
  auto sink = std::make_shared<heard>();
  const hotswap::report_sink before = hotswap::set_report_sink([sink](const hotswap::report& said) {
    const std::lock_guard hold(sink->lock);
    sink->reports.push_back(said);
  });
  auto server = hotswap::start<reported::NoteKeeper>({.name = "noted"}).value();
  const std::uint64_t id = server.id();
  hotswap::cast(server, reported::Throw{"bad\nline\x1b]0;owned\x07"});
  REQUIRE(eventually([&] { return !server.alive(); }));
  REQUIRE(eventually([&] {
    const std::lock_guard hold(sink->lock);
    return !sink->reports.empty();
  }));
  hotswap::set_report_sink(before);
  const std::lock_guard hold(sink->lock);
  REQUIRE(sink->reports.size() == 1);
  const hotswap::report& said = sink->reports.front();
  CHECK(said.about == hotswap::report::kind::crash);
  CHECK(said.server == id);
  CHECK(said.text == "crash report: server " + std::to_string(id) +
                         " (noted), reported::NoteKeeper vsn 1, handling reported::Throw: "
                         "reported::custom_failure: bad\\x0aline\\x1b]0;owned\\x07; its state: "
                         "%Note{text: \"a\\e[2Jb\", seen: 7}; the server crashed");
  CHECK(said.text.find('\n') == std::string::npos);
}

TEST_CASE("a sink that throws loses its report only; set_report_sink hands back the sink it replaced") {
  const hotswap::report_sink before = hotswap::set_report_sink([](const hotswap::report&) { throw 1; });
  auto server = hotswap::start<reported::NoteKeeper>().value();
  hotswap::cast(server, reported::Throw{"boom"});
  REQUIRE(eventually([&] { return !server.alive(); }));
  auto again = hotswap::start<reported::NoteKeeper>().value();
  CHECK(hotswap::call(again, Get{}).value() == 7);                    // the program serves on
  const hotswap::report_sink thrower = hotswap::set_report_sink({});  // standard error again
  CHECK(static_cast<bool>(thrower));
  CHECK_FALSE(hotswap::set_report_sink(before));  // the empty one
}
