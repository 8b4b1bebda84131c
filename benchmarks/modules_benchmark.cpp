// Loading a small module (copy, checks of its note, dlopen, descriptor, static initializers)
// and purging it (dlclose, unmapped), timed one by one: p50 and p99 of single loads and purges.
//
//   build/gcc/benchmarks/modules_benchmark --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "percentile.hpp"

#include <hotswap/modules.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

using bench::percentile;

double microseconds_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count();
}

/// One iteration: load (timed), then retire and purge (timed apart).
void load_and_purge(benchmark::State& state) {
  hotswap::code_server code;
  const std::string path = SMALL_MODULE;
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

}  // namespace

BENCHMARK_MAIN();
