// The runtime against its floors: a call round trip beside a bare atomic ping-pong between two
// threads (same run), cast throughput, dispatch through the table beside a direct call, the
// pause of a live upgrade of the two Anemone servers (by hand and as one transaction), 1,000
// servers upgraded in one transaction, one server of 1,000,000 accounts upgraded beside the bare
// migration of its state, the upgrade pause of a server with 0 to 1,000,000
// messages queued, and 100,000 idle servers; a deferred reply answered by another server beside
// a plain call, 100 servers asked at once beside one after the other, a dynamic supervisor's
// child started and terminated, and 100,000 dynamic children.
//
//   build/gcc/benchmarks/servers_benchmark '--benchmark_filter=-idle|upgrade_with_backlog' --benchmark_repetitions=5
//   build/gcc/benchmarks/servers_benchmark --benchmark_filter=idle_servers           (memory: one fresh run)
//   build/gcc/benchmarks/servers_benchmark --benchmark_filter=idle_dynamic_children  (the same)
//   build/gcc/benchmarks/servers_benchmark --benchmark_filter=upgrade_with_backlog/rounds:25/
//
// Latencies are timed one by one: p50_ns and p99_ns are percentiles of single round trips.
// call_against_floor interleaves the floor and the calls and gives their ratio: the figure the
// target is about (run apart, the host may have moved the cores in between).
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include <hotswap/releases.hpp>
#include <hotswap/supervisors.hpp>

#include "anemone/servers.hpp"
#include "ledger.hpp"
#include "percentile.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

using bench::percentile;

void report_latencies(benchmark::State& state, const std::vector<double>& nanoseconds) {
  state.counters["p50_ns"] = percentile(nanoseconds, 0.50);
  state.counters["p99_ns"] = percentile(nanoseconds, 0.99);
}

template <class Body>
double timed_ns(Body&& body) {
  const auto start = clock_type::now();
  body();
  return std::chrono::duration<double, std::nano>(clock_type::now() - start).count();
}

// ---- the floor: a cache line bounced between two threads ----

/// A partner thread that returns a ball bounced at it; it sleeps while paused, so that it takes
/// no core from what is measured meanwhile.
class bouncer {
 public:
  bouncer() : partner_([this] { play(); }) {}
  ~bouncer() {
    set(finished);
    partner_.join();
  }
  void pause() { set(paused); }
  void resume() { set(bouncing); }
  /// One round trip of the ball.
  void round_trip() {
    ball_.store(next_, std::memory_order_release);
    while (ball_.load(std::memory_order_acquire) != next_ + 1) hotswap::detail::cpu_relax();
    next_ += 2;
  }

 private:
  enum : std::uint32_t { bouncing, paused, finished };
  void set(std::uint32_t phase) {
    phase_.store(phase, std::memory_order_release);
    hotswap::detail::futex_wake(phase_, 1);
  }
  void play() {
    std::uint64_t seen = 0;
    for (;;) {
      const std::uint32_t phase = phase_.load(std::memory_order_acquire);
      if (phase == finished) return;
      if (phase == paused) {
        hotswap::detail::futex_wait(phase_, paused);
        continue;
      }
      const std::uint64_t now = ball_.load(std::memory_order_acquire);
      if (now != seen && now % 2 == 1) {
        seen = now + 1;
        ball_.store(seen, std::memory_order_release);
      } else {
        hotswap::detail::cpu_relax();
      }
    }
  }
  alignas(64) std::atomic<std::uint64_t> ball_{0};
  alignas(64) std::atomic<std::uint32_t> phase_{bouncing};
  std::uint64_t next_ = 1;
  std::thread partner_;
};

void ping_pong_floor(benchmark::State& state) {
  bouncer ball;
  std::vector<double> samples;
  samples.reserve(1 << 20);
  for (auto _ : state) samples.push_back(timed_ns([&] { ball.round_trip(); }));
  report_latencies(state, samples);
}
BENCHMARK(ping_pong_floor)->UseRealTime();

// ---- a counter server ----

struct Get {};
struct Add {
  int n;
};
using Counter = hotswap::interface<"Counter", hotswap::call_msg<Get, long>, hotswap::cast_msg<Add>>;
struct CounterImpl {
  using interface = Counter;
  static constexpr int vsn = 1;
  struct state {
    long count = 0;
  };
  static state init() { return {}; }
  static long handle_call(const Get&, const state& s) { return s.count; }
  [[gnu::noinline]] static void handle_cast(const Add& add, state& s) { s.count += add.n; }
};

void call_round_trip(benchmark::State& state) {
  auto counter = hotswap::start<CounterImpl>().value();
  std::vector<double> samples;
  samples.reserve(1 << 20);
  for (auto _ : state)
    samples.push_back(timed_ns([&] { benchmark::DoNotOptimize(hotswap::call(counter, Get{}).value()); }));
  (void)hotswap::stop(counter);
  report_latencies(state, samples);
}
BENCHMARK(call_round_trip)->UseRealTime();

// The two above interleaved, 1,000 of each in turn, so that both see the same placement of the
// two virtual cores (the host moves them, for seconds at a time): the ratio the target is about.
void call_against_floor(benchmark::State& state) {
  auto counter = hotswap::start<CounterImpl>().value();
  bouncer ball;
  std::vector<double> floor, calls;
  floor.reserve(1 << 20);
  calls.reserve(1 << 20);
  std::uint64_t round = 0;
  for (auto _ : state) {
    const bool bouncing = round / 1000 % 2 == 0;
    if (round++ % 1000 == 0) bouncing ? ball.resume() : ball.pause();
    if (bouncing)
      floor.push_back(timed_ns([&] { ball.round_trip(); }));
    else
      calls.push_back(timed_ns([&] { benchmark::DoNotOptimize(hotswap::call(counter, Get{}).value()); }));
  }
  (void)hotswap::stop(counter);
  state.counters["floor_p50_ns"] = percentile(floor, 0.50);
  state.counters["call_p50_ns"] = percentile(calls, 0.50);
  state.counters["call_p99_ns"] = percentile(calls, 0.99);
  state.counters["p50_ratio"] = percentile(calls, 0.50) / percentile(floor, 0.50);
}
BENCHMARK(call_against_floor)->UseRealTime();

void cast_throughput(benchmark::State& state) {
  auto counter = hotswap::start<CounterImpl>().value();
  const int batch = static_cast<int>(state.range(0));
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) hotswap::cast(counter, Add{1});
    benchmark::DoNotOptimize(hotswap::call(counter, Get{}).value());  // all handled
  }
  state.SetItemsProcessed(state.iterations() * batch);
  (void)hotswap::stop(counter);
}
BENCHMARK(cast_throughput)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- a deferred reply, answered by another server, beside a plain call ----

struct Ask {};
struct Answer {  // a kept reply handle, handed to the server that answers it
  hotswap::reply_to<long> to;
};
using Answerer = hotswap::interface<"Answerer", hotswap::cast_msg<Answer>>;
struct AnswererImpl {
  using interface = Answerer;
  static constexpr int vsn = 1;
  struct state {
    long answered = 0;
  };
  static state init() { return {}; }
  static void handle_cast(const Answer& answer, state& s) {
    auto to = answer.to;  // the message is const: a copy answers the same call
    (void)to.reply(++s.answered);
  }
};
using Front = hotswap::interface<"Front", hotswap::call_msg<Get, long>, hotswap::call_msg<Ask, long>>;
struct FrontImpl {
  using interface = Front;
  static constexpr int vsn = 1;
  struct state {
    hotswap::server_ref<Answerer> answerer;
    long count = 0;
  };
  static state init(const hotswap::server_ref<Answerer>& answerer) { return {answerer}; }
  static long handle_call(const Get&, const state& s) { return s.count; }
  static void handle_call(const Ask&, state& s, hotswap::reply_to<long> from) {
    hotswap::cast(s.answerer, Answer{std::move(from)});
  }
};

// A call answered by its server beside one whose server hands the reply handle to a second
// server, which answers it: one of each an iteration, the order turned each time, so that both
// see the same machine. The goal: the deferred p50 within 1.5x of the plain call's.
void deferred_against_call(benchmark::State& state) {
  auto answerer = hotswap::start<AnswererImpl>().value();
  auto front = hotswap::start<FrontImpl>(answerer).value();
  std::vector<double> calls, deferred;
  calls.reserve(1 << 20);
  deferred.reserve(1 << 20);
  const auto plain = [&] {
    calls.push_back(timed_ns([&] { benchmark::DoNotOptimize(hotswap::call(front, Get{}).value()); }));
  };
  const auto handed_off = [&] {
    deferred.push_back(timed_ns([&] { benchmark::DoNotOptimize(hotswap::call(front, Ask{}).value()); }));
  };
  std::uint64_t round = 0;
  for (auto _ : state) {
    if (round++ % 2 == 0) {
      plain();
      handed_off();
    } else {
      handed_off();
      plain();
    }
  }
  (void)hotswap::stop(front);
  (void)hotswap::stop(answerer);
  state.counters["call_p50_ns"] = percentile(calls, 0.50);
  state.counters["call_p99_ns"] = percentile(calls, 0.99);
  state.counters["deferred_p50_ns"] = percentile(deferred, 0.50);
  state.counters["deferred_p99_ns"] = percentile(deferred, 0.99);
  state.counters["p50_ratio"] = percentile(deferred, 0.50) / std::max(percentile(calls, 0.50), 1.0);
}
BENCHMARK(deferred_against_call)->UseRealTime();

// ---- 100 servers asked at once (call_all), beside 100 calls one after the other ----

// Each iteration asks the same 100 servers both ways, the order turned each time: the totals'
// percentiles, and their ratio.
void fan_out_against_calls(benchmark::State& state) {
  std::vector<hotswap::server_ref<Counter>> servers;
  for (std::int64_t i = 0; i < state.range(0); ++i) servers.push_back(hotswap::start<CounterImpl>().value());
  std::vector<double> fanned, sequential;
  const auto fan_out = [&] {
    fanned.push_back(timed_ns([&] {
      for (const auto& reply : hotswap::call_all(servers, Get{})) benchmark::DoNotOptimize(reply.value());
    }));
  };
  const auto one_by_one = [&] {
    sequential.push_back(timed_ns([&] {
      for (const auto& server : servers) benchmark::DoNotOptimize(hotswap::call(server, Get{}).value());
    }));
  };
  std::uint64_t round = 0;
  for (auto _ : state) {
    if (round++ % 2 == 0) {
      fan_out();
      one_by_one();
    } else {
      one_by_one();
      fan_out();
    }
  }
  for (auto& server : servers) (void)hotswap::stop(server);
  state.counters["call_all_p50_ns"] = percentile(fanned, 0.50);
  state.counters["call_all_p99_ns"] = percentile(fanned, 0.99);
  state.counters["sequential_p50_ns"] = percentile(sequential, 0.50);
  state.counters["sequential_p99_ns"] = percentile(sequential, 0.99);
  state.counters["p50_ratio"] = percentile(fanned, 0.50) / std::max(percentile(sequential, 0.50), 1.0);
}
BENCHMARK(fan_out_against_calls)->ArgName("servers")->Arg(100)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- dispatch: the table's handler beside the handler called directly ----

void dispatch_direct(benchmark::State& state) {
  CounterImpl::state s;
  for (auto _ : state) {
    Add add{1};
    benchmark::DoNotOptimize(add);
    CounterImpl::handle_cast(add, s);
  }
  benchmark::DoNotOptimize(s.count);
}
BENCHMARK(dispatch_direct);

void dispatch_through_table(benchmark::State& state) {
  const hotswap::implementation_table& table = hotswap::table_of<CounterImpl>;
  CounterImpl::state s;
  hotswap::detail::outcome result;
  const auto handler = table.handlers[Counter::index_of<Add>];
  for (auto _ : state) {
    hotswap::detail::envelope message;
    hotswap::detail::pack(message, Add{1});
    benchmark::DoNotOptimize(message);
    handler(&s, message, result);
  }
  benchmark::DoNotOptimize(s.count);
}
BENCHMARK(dispatch_through_table);

// ---- the pause of a live upgrade: AccountManager and Inspector, v2 -> v3 ----

void upgrade_pause(benchmark::State& state) {
  using namespace anemone;
  std::fflush(stdout);
  const int saved_stdout = dup(1);  // Inspector v3's code_change prints its line: not to the report
  const int null = open("/dev/null", O_WRONLY);
  dup2(null, 1);
  std::vector<double> samples, worst_calls;
  std::atomic<bool> done{false};
  std::atomic<double> client_worst{0};  // of the calls that overlap the upgrade
  for (auto _ : state) {
    const Period no_ticks = std::chrono::hours(1);
    auto manager = hotswap::start<AccountManagerV2>(no_ticks).value();
    auto inspector = hotswap::start<InspectorV2>(no_ticks).value();
    done = false;
    std::atomic<int> calls{0};
    std::thread client([&] {  // a client calling in a loop, as the servers' users would
      while (state.range(0) && !done.load(std::memory_order_relaxed)) {
        const double took = timed_ns([&] { (void)hotswap::call(manager, Scores{}); });
        if (took > client_worst.load()) client_worst = took;
        ++calls;
      }
    });
    while (state.range(0) && calls.load() < 100) std::this_thread::yield();
    client_worst = 0;  // the call in flight now overlaps the upgrade: it counts
    const double took = timed_ns([&] {
      if (state.range(1)) {  // as one transaction (the states not measured after: the sequence does not)
        (void)hotswap::upgrade(
            {{manager, hotswap::table_of<AccountManagerV3>, 2}, {inspector, hotswap::table_of<InspectorV3>, 2}},
            {.state_sizes = false});
        return;
      }
      (void)hotswap::sys::suspend(manager);
      (void)hotswap::sys::suspend(inspector);
      (void)hotswap::sys::change_code(manager, hotswap::table_of<AccountManagerV3>, 2);
      (void)hotswap::sys::change_code(inspector, hotswap::table_of<InspectorV3>, 2);
      (void)hotswap::sys::resume(inspector);
      (void)hotswap::sys::resume(manager);
    });
    done = true;
    client.join();
    samples.push_back(took);
    if (state.range(0)) worst_calls.push_back(client_worst.load());
    state.SetIterationTime(took / 1e9);
    (void)hotswap::stop(manager);
    (void)hotswap::stop(inspector);
  }
  std::fflush(stdout);
  dup2(saved_stdout, 1);
  close(saved_stdout);
  close(null);
  report_latencies(state, samples);
  if (state.range(0)) {  // Erlang's figure: the worst call of each upgrade, median over upgrades
    state.counters["client_worst_call_p50_ns"] = percentile(worst_calls, 0.50);
    state.counters["client_worst_call_p99_ns"] = percentile(worst_calls, 0.99);
  }
}
BENCHMARK(upgrade_pause)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"client", "transaction"})
    ->UseManualTime()
    ->Iterations(2000)
    ->Unit(benchmark::kMicrosecond);

// ---- many servers in one transaction: 1,000 AccountManagers, v2 -> v3 ----

void upgrade_many(benchmark::State& state) {
  using namespace anemone;
  const Period no_ticks = std::chrono::hours(1);
  std::vector<hotswap::server_ref<AccountManagerV2::interface>> managers;
  std::vector<double> pauses;
  for (auto _ : state) {
    state.PauseTiming();
    managers.clear();
    for (std::int64_t i = 0; i < state.range(0); ++i)
      managers.push_back(hotswap::start<AccountManagerV2>(no_ticks).value());
    std::vector<hotswap::upgrade_step> steps;
    for (const auto& manager : managers) steps.emplace_back(manager, hotswap::table_of<AccountManagerV3>, 2);
    state.ResumeTiming();
    const auto report = hotswap::upgrade(steps);
    state.PauseTiming();
    if (!report) state.SkipWithError(report.outcome.error().what.c_str());
    pauses.push_back(std::chrono::duration<double, std::nano>(report.pause).count());
    for (auto& manager : managers) (void)hotswap::stop(manager);
    state.ResumeTiming();
  }
  report_latencies(state, pauses);
  state.counters["p50_ns_a_server"] = percentile(pauses, 0.50) / static_cast<double>(state.range(0));
}
BENCHMARK(upgrade_many)->Arg(1'000)->Iterations(50)->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- one server holding 1,000,000 accounts: the pause beside the bare migration ----

using bench::LedgerV2;
using bench::LedgerV3;

/// Each round times the bare migration of the accounts (moved in, and from a copy, which keeps
/// the original as a transaction keeps the old state), then the upgrade of a server holding
/// them: pause_over_migration is the ratio of the medians of the pause and of the migration that
/// keeps the original; pause_over_moving_migration, the same over the one that moves them.
void upgrade_big_state(benchmark::State& state) {
  using accounts_v2 = std::vector<anemone::v2::Account>;
  using accounts_v3 = std::vector<anemone::v3::Account>;
  const accounts_v2 accounts = bench::accounts(static_cast<std::size_t>(state.range(0)));
  std::vector<double> pauses, keeping, moving, measuring;
  std::size_t state_bytes = 0;
  accounts_v3 migrated;
  for (auto _ : state) {
    keeping.push_back(timed_ns([&] { migrated = hotswap::migrate<accounts_v3>(accounts_v2(accounts)); }));
    migrated = {};
    auto copy = accounts;
    moving.push_back(timed_ns([&] { migrated = hotswap::migrate<accounts_v3>(std::move(copy)); }));
    migrated = {};
    auto ledger = hotswap::start<LedgerV2>(accounts).value();
    hotswap::upgrade_report report;
    measuring.push_back(timed_ns([&] { report = hotswap::upgrade({{ledger, hotswap::table_of<LedgerV3>, 2}}); }));
    if (!report) state.SkipWithError(report.outcome.error().what.c_str());
    state_bytes = report.steps[0].state_bytes;
    measuring.back() -= std::chrono::duration<double, std::nano>(report.pause).count();  // what follows the pause
    (void)hotswap::stop(ledger);
    pauses.push_back(std::chrono::duration<double, std::nano>(report.pause).count());
    state.SetIterationTime(pauses.back() / 1e9);
  }
  report_latencies(state, pauses);
  state.counters["migration_p50_ns"] = percentile(keeping, 0.50);
  state.counters["moving_migration_p50_ns"] = percentile(moving, 0.50);
  state.counters["pause_over_migration"] = percentile(pauses, 0.50) / percentile(keeping, 0.50);
  state.counters["pause_over_moving_migration"] = percentile(pauses, 0.50) / percentile(moving, 0.50);
  // The report's state size, and the server's time that measuring it took, after the pause.
  state.counters["state_MiB"] = static_cast<double>(state_bytes) / (1 << 20);
  state.counters["after_pause_p50_ns"] = percentile(measuring, 0.50);
}
BENCHMARK(upgrade_big_state)->Arg(1'000'000)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);

// ---- the upgrade pause with a backlog: sys requests do not wait behind normal messages ----

struct Hold {};
std::atomic<bool> holding{false}, released{false};
using Backlogged =
    hotswap::interface<"Backlogged", hotswap::cast_msg<Hold>, hotswap::cast_msg<Add>, hotswap::call_msg<Get, long>>;
struct BackloggedV1 {
  using interface = Backlogged;
  static constexpr int vsn = 1;
  struct state {
    long count = 0;
  };
  static state init() { return {}; }
  // A handler at work when the upgrade comes, with the backlog behind it.
  static void handle_cast(const Hold&, state&) {
    holding = true;
    while (!released.load(std::memory_order_acquire)) hotswap::detail::cpu_relax();
  }
  static void handle_cast(const Add& add, state& s) { s.count += add.n; }
  static long handle_call(const Get&, const state& s) { return s.count; }
};
struct BackloggedV2 : BackloggedV1 {  // new code on the same state
  static constexpr int vsn = 2;
};

/// How the upgraded server stands when the upgrade comes.
enum class backlog_case {
  suspended,     ///< suspended, the messages arrived meanwhile, no worker on it: change_code is timed
  just_arrived,  ///< the same, asked as the last message arrives (a worker is taking them): change_code
  busy,          ///< in a handler, the backlog behind it: suspend, change_code, resume are timed
};
constexpr const char* backlog_case_names[] = {"suspended", "just_arrived", "busy"};

/// Writes `bytes` of fresh memory, to leave the caches (and the TLB) as cold as a mailbox of
/// that many bytes of messages would: new pages, zeroed by the kernel, then written.
void pollute_caches(std::size_t bytes) {
  std::vector<char> junk(bytes, 1);
  benchmark::DoNotOptimize(junk.data());
  benchmark::ClobberMemory();
}

/// One upgrade of a server with `queued` messages waiting.
double backlog_upgrade_ns(int queued, backlog_case how) {
  const bool busy = how == backlog_case::busy;
  auto server = hotswap::start<BackloggedV1>().value();
  holding = false;
  released = false;
  if (busy) {
    hotswap::cast(server, Hold{});
    while (!holding.load()) std::this_thread::yield();
  } else {
    (void)hotswap::sys::suspend(server);
  }
  // Every case leaves the caches alike, as cold as a million messages (32 MiB) do: only the
  // mailbox differs.
  constexpr std::size_t most = 1'000'000;
  const std::size_t message = sizeof(hotswap::detail::envelope);
  if (how == backlog_case::just_arrived) pollute_caches((most - static_cast<std::size_t>(queued)) * message);
  for (int i = 0; i < queued; ++i) hotswap::cast(server, Add{1});
  if (how == backlog_case::suspended)  // until the worker has left it
    while (server.core()->run_state.load() != hotswap::detail::server_core::idle) std::this_thread::yield();
  if (how != backlog_case::just_arrived) pollute_caches(std::size_t{64} << 20);  // as cold as that for all
  const double took = timed_ns([&] {
    if (busy) {
      released = true;
      (void)hotswap::sys::suspend(server);
    }
    (void)hotswap::sys::change_code(server, hotswap::table_of<BackloggedV2>, 1);
    if (busy) (void)hotswap::sys::resume(server);
  });
  released = true;
  if (!busy) (void)hotswap::sys::resume(server);
  const bool all = hotswap::call(server, Get{}, std::chrono::seconds(60)).value() == queued;
  (void)hotswap::stop(server);
  return all ? took : -1;
}

// Every size and case interleaved, `rounds` times, so that all see the same machine state; the
// target is each size's p50 within 2x of the empty mailbox's.
void upgrade_with_backlog(benchmark::State& state) {
  constexpr int sizes[] = {0, 10'000, 100'000, 1'000'000};
  std::vector<double> samples[3][4];
  for (auto _ : state)
    for (int round = 0; round < state.range(0); ++round)
      for (int how = 0; how < 3; ++how)
        for (int size = 0; size < 4; ++size) {
          const double took = backlog_upgrade_ns(sizes[size], static_cast<backlog_case>(how));
          if (took < 0) state.SkipWithError("a message was lost");
          samples[how][size].push_back(took);
        }
  for (int how = 0; how < 3; ++how) {
    const double empty = percentile(samples[how][0], 0.50);
    double worst_ratio = 0;
    for (int size = 0; size < 4; ++size) {
      const std::string name = std::string(backlog_case_names[how]) + "_" + std::to_string(sizes[size]);
      state.counters[name + "_p50_ns"] = percentile(samples[how][size], 0.50);
      state.counters[name + "_p99_ns"] = percentile(samples[how][size], 0.99);
      worst_ratio = std::max(worst_ratio, percentile(samples[how][size], 0.50) / empty);
    }
    state.counters[std::string(backlog_case_names[how]) + "_worst_p50_ratio"] = worst_ratio;
  }
}
BENCHMARK(upgrade_with_backlog)
    ->ArgName("rounds")
    ->Arg(1)
    ->Arg(25)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

// ---- 100,000 idle servers ----

using bench::resident_bytes;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void idle_servers(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    std::vector<hotswap::server_ref<Counter>> servers;
    servers.reserve(count);
    const std::size_t before = resident_bytes();
    const double spawn = timed_ns([&] {
      for (std::size_t i = 0; i < count; ++i) servers.push_back(hotswap::start<CounterImpl>().value());
    });
    const std::size_t after = resident_bytes();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the workers stop spinning
    const double cpu_before = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double idle_cpu = cpu_seconds() - cpu_before;
    state.counters["spawn_ns_per_server"] = spawn / static_cast<double>(count);
    // Meaningful on the first run only: later runs reuse the memory the first one freed.
    state.counters["bytes_per_server"] =
        (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(count) -
        static_cast<double>(sizeof(CounterImpl::state));
    state.counters["idle_cpu_percent"] = idle_cpu * 100;
    for (auto& server : servers) (void)hotswap::stop(server);
  }
}
BENCHMARK(idle_servers)->Arg(100'000)->Iterations(1)->Unit(benchmark::kSecond);

// ---- dynamic children: churn, and 100,000 of them ----

/// Bytes malloc has handed out and not had back: unlike the resident size, it is right in a
/// process that has freed memory before (as after another benchmark).
std::size_t allocated_bytes() {
  const auto info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// A child started and terminated on a dynamic supervisor, each pair timed (Elixir's
// DynamicSupervisor.start_child then terminate_child), with `children` others running beside:
// the same cost at 0 and 100,000.
void dynamic_churn(benchmark::State& state) {
  auto supervisor = hotswap::start_dynamic_supervisor().value();
  for (std::int64_t i = 0; i < state.range(0); ++i)
    (void)hotswap::start_child(supervisor, hotswap::child<CounterImpl>("")).value();
  std::vector<double> samples, starts, terminates;
  samples.reserve(1 << 20);
  starts.reserve(1 << 20);
  terminates.reserve(1 << 20);
  for (auto _ : state) {
    hotswap::any_server child;
    starts.push_back(
        timed_ns([&] { child = hotswap::start_child(supervisor, hotswap::child<CounterImpl>("")).value(); }));
    terminates.push_back(timed_ns([&] { (void)hotswap::terminate_child(supervisor, child).value(); }));
    samples.push_back(starts.back() + terminates.back());
  }
  (void)hotswap::stop(supervisor);
  report_latencies(state, samples);
  state.counters["start_child_p50_ns"] = percentile(starts, 0.50);
  state.counters["terminate_child_p50_ns"] = percentile(terminates, 0.50);
}
BENCHMARK(dynamic_churn)
    ->ArgName("children")
    ->Arg(0)
    ->Arg(100'000)
    ->Iterations(20'000)  // one run each: the 100,000 are started once
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// 100,000 children of a dynamic supervisor: the memory of each (as idle_servers measures a
// server: resident pages, beyond its state; and what malloc holds for it) and the time to start
// one, then to stop them all with the supervisor.
void idle_dynamic_children(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    auto supervisor = hotswap::start_dynamic_supervisor().value();
    const std::size_t before = resident_bytes(), allocated_before = allocated_bytes();
    const double spawn = timed_ns([&] {
      for (std::size_t i = 0; i < count; ++i)
        (void)hotswap::start_child(supervisor, hotswap::child<CounterImpl>("")).value();
    });
    const std::size_t after = resident_bytes(), allocated_after = allocated_bytes();
    if (hotswap::count_children(supervisor).value().active != count) state.SkipWithError("a child is missing");
    const double stop = timed_ns([&] { (void)hotswap::stop(supervisor).value(); });
    const auto n = static_cast<double>(count);
    state.counters["start_child_ns"] = spawn / n;
    // Meaningful on a fresh process only (run it alone), as idle_servers' figure.
    state.counters["bytes_per_child"] = (static_cast<double>(after) - static_cast<double>(before)) / n -
                                        static_cast<double>(sizeof(CounterImpl::state));
    state.counters["malloc_bytes_per_child"] =
        (static_cast<double>(allocated_after) - static_cast<double>(allocated_before)) / n -
        static_cast<double>(sizeof(CounterImpl::state));
    state.counters["stop_ns_per_child"] = stop / n;
  }
}
BENCHMARK(idle_dynamic_children)->Arg(100'000)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
