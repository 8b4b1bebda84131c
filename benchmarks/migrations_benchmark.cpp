// Migrating the Anemone accounts v2 -> v3: the generated migration beside the same migration
// written by hand, in a std::unordered_map and a std::vector.
//
//   build/gcc/benchmarks/migrations_benchmark --benchmark_filter=/1000000
//       --benchmark_repetitions=9 --benchmark_report_aggregates_only=true     (one command line)
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include <benchmark/benchmark.h>

#include "anemone/account.hpp"

namespace {

using anemone::v2::Account;
using NewAccount = anemone::v3::Account;
using AccountMap = std::unordered_map<std::string, Account>;

AccountMap make_map(std::size_t size) {
  AccountMap accounts;
  accounts.reserve(size);
  for (std::size_t i = 0; i < size; ++i)
    accounts.emplace("account-" + std::to_string(i),
                     Account{"Player " + std::to_string(i), static_cast<int>(i % 1000), static_cast<int>(i % 7)});
  return accounts;
}

std::vector<Account> make_vector(std::size_t size) {
  std::vector<Account> accounts;
  accounts.reserve(size);
  for (std::size_t i = 0; i < size; ++i)
    accounts.push_back({"Player " + std::to_string(i), static_cast<int>(i % 1000), static_cast<int>(i % 7)});
  return accounts;
}

// What a careful engineer writes by hand for this one step. Like hotswap::migrate, it consumes
// its input, so that both free the old values inside the timed region.
std::unordered_map<std::string, NewAccount> by_hand(AccountMap accounts) {
  std::unordered_map<std::string, NewAccount> out;
  out.reserve(accounts.size());
  for (auto& [key, account] : accounts)
    out.emplace(key, NewAccount{std::move(account.name), account.score, account.stage, true});
  return out;
}

std::vector<NewAccount> by_hand(std::vector<Account> accounts) {
  std::vector<NewAccount> out;
  out.reserve(accounts.size());
  for (auto& account : accounts) out.push_back(NewAccount{std::move(account.name), account.score, account.stage, true});
  return out;
}

template <class Source, class Make, class Migrate>
void run(benchmark::State& state, Make make, Migrate migrate) {
  const auto original = make(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    Source copy = original;
    state.ResumeTiming();
    auto migrated = migrate(std::move(copy));
    benchmark::DoNotOptimize(migrated);
    state.PauseTiming();
    { auto discard = std::move(migrated); }  // freeing is not part of the migration
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void map_generated(benchmark::State& state) {
  run<AccountMap>(state, make_map, [](AccountMap&& accounts) {
    return hotswap::migrate<std::unordered_map<std::string, NewAccount>>(std::move(accounts));
  });
}
void map_by_hand(benchmark::State& state) {
  run<AccountMap>(state, make_map, [](AccountMap&& accounts) { return by_hand(std::move(accounts)); });
}
void vector_generated(benchmark::State& state) {
  run<std::vector<Account>>(state, make_vector, [](std::vector<Account>&& accounts) {
    return hotswap::migrate<std::vector<NewAccount>>(std::move(accounts));
  });
}
void vector_by_hand(benchmark::State& state) {
  run<std::vector<Account>>(state, make_vector,
                            [](std::vector<Account>&& accounts) { return by_hand(std::move(accounts)); });
}

double p99(const std::vector<double>& samples) {
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  return sorted[static_cast<std::size_t>(0.99 * static_cast<double>(sorted.size() - 1))];
}

void configure(benchmark::internal::Benchmark* benchmark) {
  benchmark->Arg(1000)->Arg(1000000)->Unit(benchmark::kMillisecond)->ComputeStatistics("p99", p99);
}

}  // namespace

// Interleaved, so that the generated and the hand-written migration see the same machine.
BENCHMARK(map_generated)->Apply(configure);
BENCHMARK(map_by_hand)->Apply(configure);
BENCHMARK(vector_generated)->Apply(configure);
BENCHMARK(vector_by_hand)->Apply(configure);

BENCHMARK_MAIN();
