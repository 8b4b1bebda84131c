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

// -- the upgrade pause of the two Anemone servers --

void upgrade_pause() {
  using namespace anemone;
  std::fflush(stdout);
  const int saved = dup(1);  // Inspector v3's code_change prints its line: not among the metrics
  const int null = open("/dev/null", O_WRONLY);
  dup2(null, 1);
  std::vector<double> samples;
  for (int i = 0; i < (quick ? 5 : 500); ++i) {
    const Period no_ticks = std::chrono::hours(1);
    auto manager = hotswap::start<AccountManagerV2>(no_ticks).value();
    auto inspector = hotswap::start<InspectorV2>(no_ticks).value();
    samples.push_back(timed_us([&] {
      (void)hotswap::upgrade(
          {{manager, hotswap::table_of<AccountManagerV3>, 2}, {inspector, hotswap::table_of<InspectorV3>, 2}},
          {.state_sizes = false});
    }));
    (void)hotswap::stop(manager);
    (void)hotswap::stop(inspector);
  }
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  close(null);
  latencies(samples);
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
  if (workload == "upgrade_pause") return upgrade_pause(), 0;
  if (workload == "upgrade_100k") return upgrade_accounts(100'000), 0;
  if (workload == "upgrade_1m") return upgrade_accounts(1'000'000), 0;
  if (workload == "load_purge") return load_purge(), 0;
  if (workload == "idle_memory") return idle_memory(), 0;
  if (workload == "churn") return churn(), 0;
  fmt::print(stderr,
             "usage: hotswap_compare floor|call|cast|upgrade_pause|upgrade_100k|upgrade_1m|load_purge|idle_memory|"
             "churn [--quick]\n");
  return 64;
}
