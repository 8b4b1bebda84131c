// Loading a small module (copy, checks of its note, dlopen, descriptor, static initializers)
// and purging it (dlclose, unmapped), timed one by one: p50 and p99 of single loads and purges;
// and the pause of an upgrade (suspend, change_code, resume) to a module's table beside the same
// upgrade between built-in tables.
//
//   build/gcc/benchmarks/modules_benchmark --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <hotswap/modules.hpp>

#include "percentile.hpp"
#include "small_module.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

using bench::percentile;

double microseconds_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count();
}

/// One iteration: load (timed), then retire and purge (timed apart).
void load_and_purge(benchmark::State& state) {
  hotswap::code_server code;
  const std::string path = SMALL_MODULE_V1;
  std::vector<double> loads, purges;
  for (auto _ : state) {
    const auto began = clock_type::now();
    auto loaded = code.load(path);
    const double load_us = microseconds_since(began);
    if (!loaded) {
      state.SkipWithError(loaded.error().what.c_str());
      return;
    }
    loaded = hotswap::error{};
    (void)code.retire("bench.counter");
    const auto purging = clock_type::now();
    const auto purged = code.purge("bench.counter");
    const double purge_us = microseconds_since(purging);
    if (!purged || !purged->unmapped) {
      state.SkipWithError("the module was not unmapped");
      return;
    }
    loads.push_back(load_us);
    purges.push_back(purge_us);
    state.SetIterationTime(load_us / 1e6);
  }
  state.counters["load_p50_us"] = percentile(loads, 0.50);
  state.counters["load_p99_us"] = percentile(loads, 0.99);
  state.counters["purge_p50_us"] = percentile(purges, 0.50);
  state.counters["purge_p99_us"] = percentile(purges, 0.99);
}
BENCHMARK(load_and_purge)->UseManualTime()->Iterations(1000)->Unit(benchmark::kMicrosecond);

/// One server, swapped between vsn 1 and 2 and back: module tables (module:1) or built-in ones.
void upgrade_pause(benchmark::State& state) {
  const bool modules = state.range(0) == 1;
  hotswap::code_server code;
  const auto v1 = code.load<bench::Counter>(SMALL_MODULE_V1).value();
  const auto v2 = code.load<bench::Counter>(SMALL_MODULE_V2).value();
  auto server = (modules ? hotswap::start<bench::Counter>(v1) : hotswap::start<bench::SmallCounter<1>>()).value();
  std::vector<double> pauses;
  int vsn = 1;
  for (auto _ : state) {
    const auto began = clock_type::now();
    (void)hotswap::sys::suspend(server);
    if (modules)
      (void)hotswap::sys::change_code(server, vsn == 1 ? v2 : v1, vsn);
    else
      (void)hotswap::sys::change_code(
          server, vsn == 1 ? hotswap::table_of<bench::SmallCounter<2>> : hotswap::table_of<bench::SmallCounter<1>>,
          vsn);
    (void)hotswap::sys::resume(server);
    const double took = microseconds_since(began);
    vsn = 3 - vsn;
    pauses.push_back(took * 1000);
    state.SetIterationTime(took / 1e6);
  }
  if (hotswap::sys::get_status(server).value().vsn != vsn) state.SkipWithError("an upgrade failed");
  state.counters["p50_ns"] = percentile(pauses, 0.50);
  state.counters["p99_ns"] = percentile(pauses, 0.99);
  (void)hotswap::stop(server);
}
BENCHMARK(upgrade_pause)
    ->ArgName("module")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(10000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
