// CAF's side of the comparison (benchmarks/compare/compare.py), the idiomatic way for CAF 0.17:
// a typed actor, called from outside by a blocking scoped_actor, cast to with send. One workload
// a run, its figures as `metric NAME VALUE UNIT` lines. CAF has no hot code upgrade or module
// loading: only call, cast, idle_memory and churn (a monitored actor spawned and told to exit).
//
//     caf_compare call|cast|idle_memory|churn [--quick]
#include <unistd.h>

#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "../percentile.hpp"

namespace {

using get_atom = caf::atom_constant<caf::atom("get")>;
using add_atom = caf::atom_constant<caf::atom("add")>;
using counter_actor =
    caf::typed_actor<caf::replies_to<get_atom>::with<std::int64_t>, caf::reacts_to<add_atom, std::int64_t>>;

struct counter_state {
  std::int64_t total = 0;
};

counter_actor::behavior_type counter(counter_actor::stateful_pointer<counter_state> self) {
  return {
      [=](get_atom) { return self->state.total; },
      [=](add_atom, std::int64_t n) { self->state.total += n; },
  };
}

using clock_type = std::chrono::steady_clock;
bool quick = false;

double since_us(clock_type::time_point start) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count();
}
void metric(const char* name, double value, const char* unit) {
  std::printf("metric %s %.6g %s\n", name, value, unit);
}

std::int64_t get(caf::scoped_actor& self, const counter_actor& actor) {
  std::int64_t total = 0;
  self->request(actor, caf::infinite, get_atom::value)
      .receive([&](std::int64_t answer) { total = answer; }, [&](caf::error&) { total = -1; });
  return total;
}

void call(caf::actor_system& system) {
  auto actor = system.spawn(counter);
  caf::scoped_actor self{system};
  std::vector<double> samples;
  for (int i = 0; i < (quick ? 100 : 20'000); ++i) {
    const auto start = clock_type::now();
    get(self, actor);
    samples.push_back(since_us(start));
  }
  metric("p50", bench::percentile(samples, 0.50), "us");
  metric("p99", bench::percentile(samples, 0.99), "us");
  self->send_exit(actor, caf::exit_reason::user_shutdown);
}

void cast(caf::actor_system& system) {
  auto actor = system.spawn(counter);
  caf::scoped_actor self{system};
  const std::int64_t count = quick ? 1'000 : 2'000'000;
  const auto start = clock_type::now();
  for (std::int64_t i = 0; i < count; ++i) self->send(actor, add_atom::value, std::int64_t{1});
  get(self, actor);  // all handled
  metric("throughput", static_cast<double>(count) / since_us(start), "M msg/s");
  self->send_exit(actor, caf::exit_reason::user_shutdown);
}

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t total = 0, resident = 0;
  statm >> total >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

void idle_memory(caf::actor_system& system) {
  const std::size_t count = quick ? 1'000 : 100'000;
  std::vector<counter_actor> actors;
  actors.reserve(count);
  const std::size_t before = resident_bytes();
  for (std::size_t i = 0; i < count; ++i) actors.push_back(system.spawn(counter));
  const std::size_t after = resident_bytes();
  metric("bytes", static_cast<double>(after - before) / static_cast<double>(count), "B");
  caf::scoped_actor self{system};
  for (auto& actor : actors) self->send_exit(actor, caf::exit_reason::user_shutdown);
}

// A monitored actor spawned, told to exit, and its down message received: CAF has no
// supervisor, and this is what a dynamic supervisor's start_child and terminate_child do.
void churn(caf::actor_system& system) {
  caf::scoped_actor self{system};
  std::vector<double> samples;
  for (int i = 0; i < (quick ? 100 : 20'000); ++i) {
    const auto start = clock_type::now();
    auto actor = system.spawn(counter);
    self->monitor(actor);
    self->send_exit(actor, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {});
    samples.push_back(since_us(start));
  }
  metric("p50", bench::percentile(samples, 0.50), "us");
  metric("p99", bench::percentile(samples, 0.99), "us");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string workload = argc > 1 ? argv[1] : "";
  quick = argc > 2 && std::string(argv[2]) == "--quick";
  caf::actor_system_config config;
  caf::actor_system system{config};
  if (workload == "call") return call(system), 0;
  if (workload == "cast") return cast(system), 0;
  if (workload == "idle_memory") return idle_memory(system), 0;
  if (workload == "churn") return churn(system), 0;
  std::fprintf(stderr, "usage: caf_compare call|cast|idle_memory|churn [--quick]\n");
  return 64;
}
