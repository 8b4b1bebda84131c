// hotswap's side of the comparison (benchmarks/compare/compare.py runs it beside Elixir's and
// CAF's): one workload a run, its figures as `metric NAME VALUE UNIT` lines on standard output.
//
//     hotswap_compare WORKLOAD [--quick]
//
// WORKLOAD: floor (two threads bouncing a cache line), call, cast, upgrade_pause (the two Anemone
// servers, v2 -> v3, as one transaction), upgrade_100k and upgrade_1m (one server holding that
// many accounts), load_purge (a small module), idle_memory, churn (a child started and terminated
// on a dynamic supervisor). --quick: a few rounds, for the test that keeps the workloads from
// rotting.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <hotswap/releases.hpp>
#include <hotswap/supervisors.hpp>

#include "../ledger.hpp"
#include "../percentile.hpp"
#include "../small_module.hpp"
#include "anemone/servers.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
bool quick = false;

template <class Body>
double timed_us(Body&& body) {
  const auto start = clock_type::now();
  body();
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count();
}

void metric(std::string_view name, double value, std::string_view unit) {
  fmt::print("metric {} {:.6g} {}\n", name, value, unit);
}
void latencies(std::vector<double> samples) {
  metric("p50", bench::percentile(samples, 0.50), "us");
  metric("p99", bench::percentile(samples, 0.99), "us");
}

// -- the floor: a cache line bounced between two threads --

void floor() {
  alignas(64) std::atomic<std::uint64_t> ball{0};
  std::atomic<bool> done{false};
  std::thread partner([&] {
    std::uint64_t seen = 0;
    while (!done.load(std::memory_order_relaxed)) {
      const std::uint64_t now = ball.load(std::memory_order_acquire);
      if (now != seen && now % 2 == 1) ball.store(seen = now + 1, std::memory_order_release);
    }
  });
  std::vector<double> samples;
  std::uint64_t next = 1;
  for (int i = 0; i < (quick ? 100 : 20'000); ++i, next += 2)
    samples.push_back(timed_us([&] {
      ball.store(next, std::memory_order_release);
      while (ball.load(std::memory_order_acquire) != next + 1) hotswap::detail::cpu_relax();
    }));
  done = true;
  partner.join();
  latencies(samples);
}

// -- a counter server: call and cast --

struct CounterImpl {
  using interface = bench::Counter;
  static constexpr int vsn = 1;
  using state = long;
  static state init() { return 0; }
  static long handle_call(const bench::Get&, const state& total) { return total; }
  static void handle_cast(const bench::Add& add, state& total) { total += add.n; }
};

void call() {
  auto counter = hotswap::start<CounterImpl>().value();
  std::vector<double> samples;
  for (int i = 0; i < (quick ? 100 : 20'000); ++i)
    samples.push_back(timed_us([&] { (void)hotswap::call(counter, bench::Get{}).value(); }));
  (void)hotswap::stop(counter);
  latencies(samples);
}

void cast() {
  auto counter = hotswap::start<CounterImpl>().value();
  const long count = quick ? 1'000 : 2'000'000;
  const double took = timed_us([&] {
    for (long i = 0; i < count; ++i) hotswap::cast(counter, bench::Add{1});
    (void)hotswap::call(counter, bench::Get{}).value();  // all handled
  });
  (void)hotswap::stop(counter);
  metric("throughput", static_cast<double>(count) / took, "M msg/s");
}

// -- the upgrade pause of two servers: the Anemone AccountManager, and an Inspector --

// The Inspector as compare.exs has it: an Account held, shown on a call; v3 adds `active`.
struct Show {};
using Inspector = hotswap::interface<"Compare.Inspector", hotswap::call_msg<Show, int>>;
struct InspectorV2 {
  using interface = Inspector;
  static constexpr int vsn = 2;
  using state = anemone::v2::Account;
  static state init() { return {}; }
  static int handle_call(const Show&, const state& account) { return account.score; }
};
struct InspectorV3 {
  using interface = Inspector;
  static constexpr int vsn = 3;
  using state = anemone::v3::Account;
  using state_history = hotswap::state_history<hotswap::version<2, anemone::v2::Account>>;
  static state init() { return {}; }
  static int handle_call(const Show&, const state& account) { return account.score; }
};

// How the servers are met by the upgrade: started and never called; each having just answered a
// call (what a real upgrade meets); a client calling the AccountManager throughout.
enum class servers_are { idle, answered, called };

/// A client calling `manager` in a loop: its slowest call since the last look.
class calling_client {
 public:
  explicit calling_client(hotswap::server_ref<anemone::AccountManagerInterface> manager)
      : thread_([this, manager] {
          while (!done_.load(std::memory_order_relaxed)) {
            const auto took =
                static_cast<std::uint64_t>(timed_us([&] { (void)hotswap::call(manager, anemone::Scores{}); }) * 1000);
            std::uint64_t worst = worst_ns_.load(std::memory_order_relaxed);
            while (took > worst && !worst_ns_.compare_exchange_weak(worst, took, std::memory_order_relaxed)) {
            }
            calls_.fetch_add(1, std::memory_order_release);
            calls_.notify_all();
          }
        }) {}
  ~calling_client() {
    done_ = true;
    thread_.join();
  }
  /// Starts a window: a call in flight now counts in it.
  void open() {
    calls_.wait(0, std::memory_order_acquire);
    worst_ns_.store(0, std::memory_order_relaxed);
  }
  /// Ends it, once the call in flight has returned: the slowest call in it, in us.
  double close() {
    const std::uint64_t seen = calls_.load(std::memory_order_acquire);
    // Parked, not spun: this thread, the client's and the two workers' share two cores.
    for (std::uint64_t now = seen; now == seen; now = calls_.load(std::memory_order_acquire)) calls_.wait(now);
    return static_cast<double>(worst_ns_.load(std::memory_order_relaxed)) / 1000;
  }

 private:
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> worst_ns_{0}, calls_{0};
  std::thread thread_;
};

void upgrade_pause(servers_are met) {
  using namespace anemone;
  std::fflush(stdout);
  const int saved = dup(1);  // the AccountManager's terminate prints its line: not among the metrics
  const int null = open("/dev/null", O_WRONLY);
  dup2(null, 1);
  std::vector<double> samples, worst_calls;
  for (int i = 0; i < (quick ? 5 : 500); ++i) {
    const Period no_ticks = std::chrono::hours(1);
    auto manager = hotswap::start<AccountManagerV2>(no_ticks).value();
    auto inspector = hotswap::start<InspectorV2>().value();
    std::optional<calling_client> client;
    if (met == servers_are::called) client.emplace(manager), client->open();
    if (met == servers_are::answered) {
      (void)hotswap::call(manager, Scores{}).value();
      (void)hotswap::call(inspector, Show{}).value();
    }
    samples.push_back(timed_us([&] {
      (void)hotswap::upgrade(
          {{manager, hotswap::table_of<AccountManagerV3>, 2}, {inspector, hotswap::table_of<InspectorV3>, 2}},
          {.state_sizes = false});
    }));
    if (client) worst_calls.push_back(client->close());
    client.reset();
    (void)hotswap::stop(manager);
    (void)hotswap::stop(inspector);
  }
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  close(null);
  latencies(samples);
  if (met == servers_are::called) {
    metric("worst_call_p50", bench::percentile(worst_calls, 0.50), "us");
    metric("worst_call_p99", bench::percentile(worst_calls, 0.99), "us");
  }
}

// -- one server holding many accounts --

void upgrade_accounts(std::size_t count) {
  const auto accounts = bench::accounts(quick ? 1'000 : count);
  std::vector<double> samples;
  for (int i = 0; i < (quick ? 1 : 5); ++i) {
    auto ledger = hotswap::start<bench::LedgerV2>(accounts).value();
    samples.push_back(timed_us([&] {
      (void)hotswap::upgrade({{ledger, hotswap::table_of<bench::LedgerV3>, 2}}, {.state_sizes = false});
    }));
    (void)hotswap::stop(ledger);
  }
  for (auto& sample : samples) sample /= 1000;
  metric("pause", bench::percentile(samples, 0.50), "ms");
}

// -- loading and purging a small module --

void load_purge() {
  hotswap::code_server code;
  std::vector<double> loads, purges;
  for (int i = 0; i < (quick ? 3 : 300); ++i) {
    loads.push_back(timed_us([&] { (void)code.load(SMALL_MODULE).value(); }));
    (void)code.retire("bench.counter");
    purges.push_back(timed_us([&] { (void)code.purge("bench.counter").value(); }));
  }
  metric("load", bench::percentile(loads, 0.50), "us");
  metric("purge", bench::percentile(purges, 0.50), "us");
}

// -- memory per idle server --

void idle_memory() {
  const std::size_t count = quick ? 1'000 : 100'000;
  std::vector<hotswap::server_ref<bench::Counter>> servers;
  servers.reserve(count);
  const std::size_t before = bench::resident_bytes();
  for (std::size_t i = 0; i < count; ++i) servers.push_back(hotswap::start<CounterImpl>().value());
  const std::size_t after = bench::resident_bytes();
  metric("bytes", static_cast<double>(after - before) / static_cast<double>(count), "B");
  for (auto& server : servers) (void)hotswap::stop(server);
}

// -- dynamic child churn: a child started and terminated on a dynamic supervisor --

void churn() {
  auto supervisor = hotswap::start_dynamic_supervisor().value();
  std::vector<double> samples;
  for (int i = 0; i < (quick ? 100 : 20'000); ++i)
    samples.push_back(timed_us([&] {
      const auto child = hotswap::start_child(supervisor, hotswap::child<CounterImpl>("")).value();
      (void)hotswap::terminate_child(supervisor, child).value();
    }));
  (void)hotswap::stop(supervisor);
  latencies(samples);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  quick = args.size() > 1 && args[1] == "--quick";
  const std::string_view workload = args.empty() ? "" : args[0];
  if (workload == "floor") return floor(), 0;
  if (workload == "call") return call(), 0;
  if (workload == "cast") return cast(), 0;
  if (workload == "upgrade_pause") return upgrade_pause(servers_are::idle), 0;
  if (workload == "upgrade_pause_answered") return upgrade_pause(servers_are::answered), 0;
  if (workload == "upgrade_pause_calling") return upgrade_pause(servers_are::called), 0;
  if (workload == "upgrade_100k") return upgrade_accounts(100'000), 0;
  if (workload == "upgrade_1m") return upgrade_accounts(1'000'000), 0;
  if (workload == "load_purge") return load_purge(), 0;
  if (workload == "idle_memory") return idle_memory(), 0;
  if (workload == "churn") return churn(), 0;
  fmt::print(stderr,
             "usage: hotswap_compare "
             "floor|call|cast|upgrade_pause[_answered|_calling]|upgrade_100k|upgrade_1m|load_purge|idle_memory|"
             "churn [--quick]\n");
  return 64;
}
