// sys: suspend, resume, change_code, get_state, replace_state, get_status, statistics, trace;
// a hot swap under load; and what a change of code allocates.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "allocations.hpp"
#include "servers.hpp"

using namespace testing;
using namespace std::chrono_literals;
namespace sys = hotswap::sys;

namespace testing {
struct Numbered {
  int n;
};
struct Check {};
using Sequence = hotswap::interface<"Sequence", hotswap::cast_msg<Numbered>, hotswap::call_msg<Check, int>>;
struct SequenceImpl {
  using interface = Sequence;
  static constexpr int vsn = 1;
  using state = std::vector<int>;
  static state init() { return {}; }
  static void handle_cast(const Numbered& m, state& s) { s.push_back(m.n); }
  static int handle_call(const Check&, const state& s) {
    for (std::size_t i = 0; i < s.size(); ++i)
      if (s[i] != static_cast<int>(i)) return -1;
    return static_cast<int>(s.size());
  }
};
}  // namespace testing

TEST_CASE("10,000 casts to a suspended server wait, and are all handled in order after resume") {
  auto server = hotswap::start<SequenceImpl>().value();
  REQUIRE(sys::suspend(server));
  for (int i = 0; i < 10'000; ++i) hotswap::cast(server, Numbered{i});
  const auto status = sys::get_status(server).value();  // sys requests are served while suspended
  CHECK(status.suspended);
  CHECK(status.mailbox_length == 10'000);
  CHECK(status.implementation == "testing::SequenceImpl");
  CHECK(status.vsn == 1);
  CHECK(sys::get_state<std::vector<int>>(server).value().empty());
  const auto waiting = hotswap::call(server, Check{}, 20ms);  // normal messages wait
  REQUIRE_FALSE(waiting);
  CHECK(waiting.error().code == hotswap::errc::timeout);
  REQUIRE(sys::resume(server));
  CHECK(hotswap::call(server, Check{}).value() == 10'000);
  CHECK_FALSE(sys::get_status(server).value().suspended);
  REQUIRE(hotswap::stop(server));
}

namespace testing {
/// A sequence whose handler of `Hold` says it has begun, then waits until `held` is cleared:
/// the server is busy.
std::atomic<bool> held{false};
std::atomic<bool> holding{false};
struct Hold {};
using HeldSequence = hotswap::interface<"HeldSequence", hotswap::cast_msg<Hold>, hotswap::cast_msg<Numbered>,
                                        hotswap::call_msg<Check, int>>;
struct HeldSequenceImpl : SequenceImpl {
  using interface = HeldSequence;
  static void handle_cast(const Hold&, state&) {
    holding = true;
    while (held.load()) std::this_thread::yield();
  }
  using SequenceImpl::handle_cast;
};
struct HeldSequenceV2 : HeldSequenceImpl {  // the same state, new code: a code-only change
  static constexpr int vsn = 2;
};
}  // namespace testing

TEST_CASE("sys requests overtake a busy server's backlog; its normal messages keep their order") {
  held = true;
  auto server = hotswap::start<HeldSequenceImpl>().value();
  hotswap::cast(server, Hold{});
  REQUIRE(eventually([] { return holding.load(); }));
  for (int i = 0; i < 10'000; ++i) hotswap::cast(server, Numbered{i});
  // The server is busy in Hold with 10,000 messages behind it: the suspend waits only for Hold.
  bool queued = false;  // (Catch2's macros are for the test's own thread)
  std::thread release([&] {
    queued = eventually([&] { return server.core()->controls.load() != nullptr; });  // suspend is in the lane
    held = false;
  });
  REQUIRE(sys::suspend(server));
  release.join();
  REQUIRE(queued);
  CHECK(sys::get_state<std::vector<int>>(server).value().empty());  // none of the backlog was handled
  CHECK(sys::get_status(server).value().mailbox_length == 10'000);
  REQUIRE(sys::change_code(server, hotswap::table_of<HeldSequenceV2>, 1));
  CHECK(sys::get_status(server).value().mailbox_length == 10'000);  // the change left the mailbox alone
  REQUIRE(sys::resume(server));
  CHECK(hotswap::call(server, Check{}).value() == 10'000);  // all of it, in order, by v2
  CHECK(sys::get_status(server).value().vsn == 2);
  REQUIRE(hotswap::stop(server));
}

TEST_CASE("a sys request that times out says it may yet take effect, and get_status shows whether it did") {
  auto counter = hotswap::start<CounterV1>().value();
  testing::gate held;
  hotswap::cast(counter, held.message());
  REQUIRE(held.entered());
  const auto late = sys::suspend(counter, 50ms);  // the handler has not returned
  REQUIRE_FALSE(late);
  CHECK(late.error().code == hotswap::errc::timeout);
  CHECK(late.error().what ==
        "no answer within 50 ms: the request may yet take effect (sys::get_status shows whether it did)");
  held.open();
  CHECK(sys::get_status(counter).value().suspended);  // it did, once the handler returned
  REQUIRE(sys::resume(counter));
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

namespace {
std::size_t resident_mib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) >> 20;
}
}  // namespace

TEST_CASE("the memory a drained backlog took is given back once the runtime idles") {
  if (sanitized) return;  // the sanitizers' allocators keep freed memory on purpose
  auto counter = hotswap::start<CounterV1>().value();
  const std::size_t before = resident_mib();
  REQUIRE(sys::suspend(counter));
  for (int i = 0; i < 2'000'000; ++i) hotswap::cast(counter, Add{1});  // 64 MiB of mailbox
  CHECK(resident_mib() > before + 48);
  REQUIRE(sys::resume(counter));
  CHECK(hotswap::call(counter, Get{}, 60s).value() == 2'000'000);
  CHECK(eventually([&] { return resident_mib() < before + 16; }));  // once the pool has idled a while
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

namespace testing {
std::atomic<int> counted{0};
struct CountingCounter : CounterV1 {
  static void handle_cast(const Add& add, state& s) {
    s.count += add.n;
    counted += add.n;
  }
  using CounterV1::handle_cast;
};
}  // namespace testing

TEST_CASE("resume alone gets what waited handled: no later message is needed to wake the server") {
  auto counter = hotswap::start<CountingCounter>().value();
  REQUIRE(sys::suspend(counter));
  for (int i = 0; i < 100; ++i) hotswap::cast(counter, Add{1});
  // The server goes idle, holding the casts: resume then finds it idle.
  REQUIRE(sys::get_status(counter).value().mailbox_length == 100);
  REQUIRE(eventually([&] { return counter.core()->run_state.load() == hotswap::detail::server_core::idle; }));
  REQUIRE(sys::resume(counter));
  CHECK(eventually([] { return counted.load() == 100; }));
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

TEST_CASE("change_code migrates the state up and down, and only while suspended") {
  auto counter = hotswap::start<CounterV1>({.name = "swapped"}).value();
  hotswap::cast(counter, Add{5});
  const auto running = sys::change_code(counter, hotswap::table_of<CounterV2>, 1);
  REQUIRE_FALSE(running);
  CHECK(running.error().code == hotswap::errc::not_suspended);

  REQUIRE(sys::suspend(counter));
  const auto wrong_vsn = sys::change_code(counter, hotswap::table_of<CounterV2>, 2);
  REQUIRE_FALSE(wrong_vsn);
  CHECK(wrong_vsn.error().code == hotswap::errc::wrong_vsn);
  CHECK(wrong_vsn.error().what == "the server runs vsn 1 (testing::CounterV1), not vsn 2");

  REQUIRE(sys::change_code(counter, hotswap::table_of<CounterV2>, 1, 2s));  // a duration is the timeout, not an extra
  CHECK(sys::get_state<v2::Count>(counter).value().count == 5);
  CHECK(sys::get_state<v2::Count>(counter).value().generation == 2);
  CHECK(sys::get_status(counter).value().implementation == "testing::CounterV2");
  REQUIRE(sys::resume(counter));
  hotswap::cast(counter, Add{1});
  CHECK(hotswap::call(counter, Get{}).value() == 6);
  CHECK(*hotswap::whereis<Counter>("swapped") == counter);

  REQUIRE(sys::suspend(counter));
  REQUIRE(sys::change_code(counter, hotswap::table_of<CounterV1>, 2));  // down, by the declared step
  CHECK(sys::get_state<v1::Count>(counter).value().count == 6);
  REQUIRE(sys::resume(counter));
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

namespace testing {
struct Unrelated {
  using interface = hotswap::interface<"Unrelated", hotswap::cast_msg<Add>>;
  static constexpr int vsn = 3;
  using state = int;
  static state init() { return 0; }
  static void handle_cast(const Add&, state&) {}
};
}  // namespace testing

namespace testing {
struct Forgetful : counter_handlers<v1::Count> {
  using interface = Counter;
  static constexpr int vsn = 4;
  using state = v1::Count;
  static state init() { return {}; }
};
}  // namespace testing

namespace testing {
/// vsn 1 that knows nothing of vsn 2: going down, vsn 2's code makes its state.
struct CounterV1Unaware : counter_handlers<v1::Count> {
  using interface = Counter;
  static constexpr int vsn = 1;
  using state = v1::Count;
  static state init() { return {}; }
};
}  // namespace testing

TEST_CASE("going down to code that does not know the newer vsn, the newer code makes the older state") {
  auto counter = hotswap::start<CounterV2>().value();
  hotswap::cast(counter, Add{7});
  REQUIRE(hotswap::call(counter, Get{}).value() == 7);
  REQUIRE(sys::suspend(counter));
  REQUIRE(sys::change_code(counter, hotswap::table_of<CounterV1Unaware>, 2));  // CounterV2's generated migration
  REQUIRE(sys::resume(counter));
  CHECK(sys::get_status(counter).value().implementation == "testing::CounterV1Unaware");
  CHECK(sys::get_state<v1::Count>(counter).value().count == 7);
  // With an extra, the older code's own code_change is asked, and it knows no vsn 2.
  REQUIRE(sys::suspend(counter));
  REQUIRE(sys::change_code(counter, hotswap::table_of<CounterV2>, 1));
  const auto refused = sys::change_code(counter, hotswap::table_of<CounterV1Unaware>, 2, hotswap::no_extra{});
  CHECK(refused.error().what == "testing::CounterV1Unaware does not know the state of vsn 2: list it in state_history");
  REQUIRE(sys::resume(counter));
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

TEST_CASE("a failing change_code leaves state and table exactly as they were, and the server serving") {
  auto counter = hotswap::start<CounterV2>().value();
  hotswap::cast(counter, Add{7});
  REQUIRE(hotswap::call(counter, Get{}).value() == 7);  // sys requests overtake casts still queued
  REQUIRE(sys::suspend(counter));
  const auto before = sys::get_status(counter).value();

  const auto refused = sys::change_code(counter, hotswap::table_of<CounterV3>, 2);  // code_change throws
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::code_change_failed);
  CHECK(refused.error().what == "v3 refuses");

  REQUIRE(sys::replace_state<v2::Count>(counter, [](v2::Count& s) { s.count = 1L << 40; }));
  const auto narrow = sys::change_code(counter, hotswap::table_of<CounterV1>, 2);  // the convert throws
  REQUIRE_FALSE(narrow);
  CHECK(narrow.error().what == "count does not fit an int");
  REQUIRE(sys::replace_state<v2::Count>(counter, [](v2::Count& s) { s.count = 7; }));

  const auto other_interface = sys::change_code(counter, hotswap::table_of<Unrelated>, 2);
  REQUIRE_FALSE(other_interface);
  CHECK(other_interface.error().code == hotswap::errc::wrong_interface);

  const auto bad_extra = sys::change_code(counter, hotswap::table_of<CounterV1>, 2, 42);
  REQUIRE_FALSE(bad_extra);
  CHECK(bad_extra.error().what == "the extra given is a int; testing::CounterV1 takes a hotswap::no_extra");

  const auto after = sys::get_status(counter).value();
  CHECK(after.implementation == before.implementation);
  CHECK(after.vsn == 2);
  CHECK(after.state_fingerprint == before.state_fingerprint);
  CHECK(sys::get_state<v2::Count>(counter).value().count == 7);
  REQUIRE(sys::resume(counter));
  hotswap::cast(counter, Add{1});
  CHECK(hotswap::call(counter, Get{}).value() == 8);

  // A vsn the new implementation's history does not list, with another state type: refused.
  REQUIRE(sys::suspend(counter));
  const auto unknown = sys::change_code(counter, hotswap::table_of<Forgetful>, 2);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().what == "testing::Forgetful does not know the state of vsn 2: list it in state_history");
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

TEST_CASE("get_state and replace_state check the state's type; a throwing change changes nothing") {
  auto counter = hotswap::start<CounterV1>().value();
  const auto wrong = sys::get_state<v2::Count>(counter);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().code == hotswap::errc::wrong_state_type);
  CHECK(wrong.error().what == "the state is a Count@1");
  REQUIRE(sys::replace_state<v1::Count>(counter, [](v1::Count& s) { s.count = 10; }));
  const auto thrown = sys::replace_state<v1::Count>(counter, [](v1::Count& s) {
    s.count = 99;
    throw std::runtime_error("changed my mind");
  });
  REQUIRE_FALSE(thrown);
  CHECK(thrown.error().code == hotswap::errc::handler_failed);
  CHECK(hotswap::call(counter, Get{}).value() == 10);
  REQUIRE(hotswap::stop(counter));
  CHECK_FALSE(sys::get_state<v1::Count>(counter));
  exits().take();
}

TEST_CASE("statistics count messages, and time handlers when asked") {
  auto counter = hotswap::start<CounterV1>().value();
  for (int i = 0; i < 100; ++i) hotswap::cast(counter, Add{1});
  (void)hotswap::call(counter, Get{});
  auto report = sys::statistics(counter).value();
  CHECK(report.messages_handled == 101);
  CHECK_FALSE(report.timing);
  CHECK(report.time_in_handlers == std::chrono::nanoseconds::zero());
  REQUIRE(sys::statistics(counter, true));
  hotswap::cast(counter, Sleep{2});
  (void)hotswap::call(counter, Get{});  // the sleep is handled (statistics would overtake it)
  report = sys::statistics(counter).value();
  CHECK(report.messages_handled == 103);
  CHECK(report.time_in_handlers >= 2ms);
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

TEST_CASE("handlers that hold every pool worker do not starve other servers (the pool adds workers) and are counted") {
  // More blocked handlers than the pool has workers (8 on a fresh 2-core machine's): without a
  // worker added for each, the later ones, and every other server, would wait for the gates.
  hotswap::detail::worker_pool& pool = hotswap::detail::shared_pool();
  const std::uint32_t before = pool.workers();
  const std::uint64_t slow_before = pool.slow_handlers();
  std::deque<gate> gates(before + 6);
  std::vector<hotswap::server_ref<Counter>> held;
  for (auto& closed : gates) {
    held.push_back(hotswap::start<CounterV1>().value());
    hotswap::cast(held.back(), closed.message());
  }
  for (auto& closed : gates) REQUIRE(closed.entered());
  CHECK(pool.workers() >= before + 6);

  auto other = hotswap::start<CounterV1>().value();
  const auto asked = std::chrono::steady_clock::now();
  hotswap::cast(other, Add{3});
  CHECK(hotswap::call(other, Get{}, 120s).value() == 3);  // every gate still closed
  const auto answered = std::chrono::steady_clock::now() - asked;
  const double micros = std::chrono::duration<double, std::micro>(answered).count();
  INFO("another server answered in " << micros << " us");

  // Each gate's handler is found slow, in time (the monitor marks a handler past 4 ms).
  REQUIRE(eventually([&] { return pool.slow_handlers() - slow_before >= gates.size(); }));
  for (auto& closed : gates) closed.open();
  for (auto& server : held) {
    const auto report = sys::statistics(server).value();
    CHECK(report.slow_handlers == 1);
    CHECK_THAT(report.slowest_message, Catch::Contains("Gate"));
    CHECK(report.slowest_handler >= hotswap::detail::slow_handler_after);
    CHECK(sys::get_status(server).value().slow_handlers == 1);
    REQUIRE(hotswap::stop(server));
  }
  CHECK(sys::statistics(other).value().slow_handlers == 0);
  REQUIRE(hotswap::stop(other));
  exits().take();
}

TEST_CASE("trace reports each message in and out") {
  auto counter = hotswap::start<CounterV1>().value();
  std::vector<std::string> seen;  // written on the server's thread, read after a call
  REQUIRE(sys::trace(counter, [&](const hotswap::trace_event& event) {
    seen.push_back(std::string(event.way == hotswap::trace_event::in ? "in " : "out ") + std::string(event.message));
  }));
  hotswap::cast(counter, Add{1});
  (void)hotswap::call(counter, Get{});
  REQUIRE(sys::trace(counter, nullptr));
  hotswap::cast(counter, Add{1});
  (void)hotswap::call(counter, Get{});
  CHECK(seen == std::vector<std::string>{"in testing::Add", "out testing::Add", "in testing::Get", "out testing::Get"});
  REQUIRE(hotswap::stop(counter));
  exits().take();
}

// ---- a hot swap under load ----

namespace load {
struct Item {
  int producer;
  int sequence;
};
struct Report {};
namespace v1 {
struct Tally {
  std::vector<long> next;  // per producer: the sequence number expected next
  long disorder = 0;       // messages that came out of order
};
}  // namespace v1
namespace v2 {
struct Tally {
  std::vector<long> next;
  long disorder = 0;
  long handled_by_v2 = 0;
};
}  // namespace v2
using TallySchema = hotswap::schema<"Tally", hotswap::version<1, v1::Tally>, hotswap::version<2, v2::Tally>>;
using Sink = hotswap::interface<"Sink", hotswap::cast_msg<Item>, hotswap::call_msg<Report, std::vector<long>>>;

template <class Tally>
void take(const Item& item, Tally& tally) {
  auto& next = tally.next[static_cast<std::size_t>(item.producer)];
  if (item.sequence != next) ++tally.disorder;
  next = item.sequence + 1;
}

struct SinkV1 {
  using interface = Sink;
  static constexpr int vsn = 1;
  using state = v1::Tally;
  using state_history = hotswap::state_history<hotswap::version<2, v2::Tally>>;
  static state init(int producers) { return {std::vector<long>(static_cast<std::size_t>(producers)), 0}; }
  static void handle_cast(const Item& item, state& s) { take(item, s); }
  static std::vector<long> handle_call(const Report&, const state& s) { return s.next; }
};
struct SinkV2 {
  using interface = Sink;
  static constexpr int vsn = 2;
  using state = v2::Tally;
  using state_history = hotswap::state_history<hotswap::version<1, v1::Tally>>;
  static state init(int producers) { return {std::vector<long>(static_cast<std::size_t>(producers)), 0, 0}; }
  static void handle_cast(const Item& item, state& s) {
    take(item, s);
    ++s.handled_by_v2;
  }
  static std::vector<long> handle_call(const Report&, const state& s) { return s.next; }
};
}  // namespace load

template <hotswap::listed_in<load::TallySchema> T>
struct hotswap::schema_of<T> : load::TallySchema {};
template <>
struct hotswap::step<load::v1::Tally, load::v2::Tally> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"handled_by_v2">};  // Tally holds a vector
};
template <>
struct hotswap::step<load::v2::Tally, load::v1::Tally> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"handled_by_v2">};
};

constexpr int per_producer = sanitized ? 100'000 : 1'000'000;

TEST_CASE("swap under load: 4 producers cast while the implementation swaps every millisecond") {
  constexpr int producers = 4;
  auto sink = hotswap::start<load::SinkV1>(producers).value();
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) hotswap::cast(sink, load::Item{p, i});
      ++finished;
    });
  int swaps = 0, vsn = 1;
  while (finished.load() < producers || swaps < 10) {
    REQUIRE(sys::suspend(sink));
    const auto& table = vsn == 1 ? hotswap::table_of<load::SinkV2> : hotswap::table_of<load::SinkV1>;
    REQUIRE(sys::change_code(sink, table, vsn));
    vsn = 3 - vsn;
    REQUIRE(sys::resume(sink));
    ++swaps;
    std::this_thread::yield();  // the producers get the cores between two swaps
  }
  for (auto& thread : threads) thread.join();
  CHECK(hotswap::call(sink, load::Report{}).value() == std::vector<long>(producers, per_producer));
  const auto disorder = vsn == 1 ? sys::get_state<load::v1::Tally>(sink).value().disorder
                                 : sys::get_state<load::v2::Tally>(sink).value().disorder;
  CHECK(disorder == 0);
  CHECK(sys::statistics(sink).value().messages_handled == std::uint64_t{producers} * per_producer + 1);
  INFO("swaps: " << swaps);
  CHECK(swaps >= 10);
  REQUIRE(hotswap::stop(sink));
}

// ---- sys requests on the calling thread ----

TEST_CASE("a sys request to a server a worker only watches runs on the calling thread") {
  using hotswap::detail::server_core;
  auto server = hotswap::start<SequenceImpl>().value();
  std::atomic<std::uint32_t>& run_state = server.core()->run_state;
  int taken = 0, tries = 0;
  // The worker that answered watches the server a few microseconds for more, then leaves it
  // idle: each try waits for one or the other, and goes on only in the first.
  while (taken == 0 && ++tries < 100'000) {
    REQUIRE(hotswap::call(server, Check{}).value() == 0);
    std::uint32_t now = run_state.load();
    for (; now != server_core::watched && now != server_core::idle; now = run_state.load()) std::this_thread::yield();
    if (now != server_core::watched) continue;
    std::thread::id ran_on;
    REQUIRE(
        sys::replace_state<std::vector<int>>(server, [&](std::vector<int>&) { ran_on = std::this_thread::get_id(); }));
    CHECK(ran_on == std::this_thread::get_id());
    ++taken;
  }
  INFO("tries: " << tries);
  CHECK(taken == 1);
  REQUIRE(hotswap::stop(server));
}

TEST_CASE("sys requests taking a server from its watching worker race its callers: order kept") {
  auto server = hotswap::start<SequenceImpl>().value();
  constexpr int count = 50'000, every = 4;
  std::atomic<int> calls{0};
  std::atomic<bool> sent{false}, disorder{false};
  std::thread client([&] {
    for (int i = 0; i < count; ++i) {
      hotswap::cast(server, Numbered{i});
      if (i % every != 0) continue;
      // A call now and then: after each answer its worker watches the server for more.
      const auto checked = hotswap::call(server, Check{});
      if (!checked || *checked != i + 1) disorder = true;
      ++calls;
    }
    sent = true;
  });
  // A round of sys requests after each call: the moment its worker watches the server.
  int rounds = 0;
  std::size_t seen = 0;
  for (int answered = 0; !sent.load();) {
    if (calls.load() == answered) {
      std::this_thread::yield();
      continue;
    }
    answered = calls.load();
    REQUIRE(sys::suspend(server));
    const auto state = sys::get_state<std::vector<int>>(server).value();
    CHECK(state.size() >= seen);
    seen = state.size();
    REQUIRE(sys::replace_state<std::vector<int>>(server, [](std::vector<int>&) {}));
    REQUIRE(sys::resume(server));
    ++rounds;
  }
  client.join();
  CHECK_FALSE(disorder.load());
  CHECK(hotswap::call(server, Check{}).value() == count);
  CHECK(sys::statistics(server).value().messages_handled == std::uint64_t{count} + count / every + 1);
  INFO("rounds: " << rounds);
  CHECK(rounds > 0);
  REQUIRE(hotswap::stop(server));
}

// ---- what a change of code allocates ----

namespace book {
struct Look {};
namespace v1 {
struct Entry {
  std::string text;
};
struct Book {
  std::map<std::string, Entry> entries;
};
}  // namespace v1
namespace v2 {
struct Entry {
  std::string text;
  int reads = 0;
};
struct Book {
  std::map<std::string, Entry> entries;
};
}  // namespace v2
using EntrySchema = hotswap::schema<"Entry", hotswap::version<1, v1::Entry>, hotswap::version<2, v2::Entry>>;
using BookSchema = hotswap::schema<"Book", hotswap::version<1, v1::Book>, hotswap::version<2, v2::Book>>;
using Books = hotswap::interface<"Books", hotswap::call_msg<Look, std::size_t>>;
struct BookV1 {
  using interface = Books;
  static constexpr int vsn = 1;
  using state = v1::Book;
  static state init(std::size_t size) {
    state made;
    for (std::size_t i = 0; i < size; ++i)
      made.entries.emplace("a key longer than fifteen " + std::to_string(i), v1::Entry{std::string(40, 'x')});
    return made;
  }
  static std::size_t handle_call(const Look&, const state& s) { return s.entries.size(); }
};
struct BookV2 {
  using interface = Books;
  static constexpr int vsn = 2;
  using state = v2::Book;
  using state_history = hotswap::state_history<hotswap::version<1, v1::Book>>;
  static state init(std::size_t) { return {}; }
  static std::size_t handle_call(const Look&, const state& s) { return s.entries.size(); }
};
}  // namespace book

template <hotswap::listed_in<book::EntrySchema> T>
struct hotswap::schema_of<T> : book::EntrySchema {};
template <hotswap::listed_in<book::BookSchema> T>
struct hotswap::schema_of<T> : book::BookSchema {};
template <>
struct hotswap::step<book::v1::Entry, book::v2::Entry> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"reads">};
};
template <>
struct hotswap::step<book::v2::Entry, book::v1::Entry> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"reads">};
};

TEST_CASE("change_code reads the old state, kept for a rollback: each of its parts copied once, not the whole first") {
  // 10,000 entries of a key and a text on the heap: the new map's node, key and text each, 3 a
  // value; a copy of the old state first, then moved from, would be 5 (the copy's 3, then a node
  // and a key: a map's keys are const, copied).
  constexpr std::size_t size = 10'000;
  auto server = hotswap::start<book::BookV1>(size).value();
  REQUIRE(sys::suspend(server));
  count_allocations(true);  // of every thread
  const auto changed = sys::change_code(server, hotswap::table_of<book::BookV2>, 1);
  count_allocations(false);
  REQUIRE(changed);
  REQUIRE(sys::resume(server));
  INFO("allocations: " << allocations_counted());
  CHECK(allocations_counted() >= 3 * size);
  CHECK(allocations_counted() < 3 * size + size / 2);
  const auto state = sys::get_state<book::v2::Book>(server).value();
  REQUIRE(state.entries.size() == size);
  CHECK(state.entries.at("a key longer than fifteen 9999").text == std::string(40, 'x'));
  CHECK(hotswap::call(server, book::Look{}).value() == size);
  REQUIRE(hotswap::stop(server));
}
