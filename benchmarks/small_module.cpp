// The small module modules_benchmark loads: a counter with one call and one cast.
#include <hotswap/modules.hpp>

namespace bench {
struct Get {};
struct Add {
  long n;
};
using Counter = hotswap::interface<"Bench.Counter", hotswap::call_msg<Get, long>, hotswap::cast_msg<Add>>;
struct CounterV1 {
  using interface = Counter;
  static constexpr int vsn = 1;
  using state = long;
  static state init() { return 0; }
  static long handle_call(const Get&, const state& total) { return total; }
  static void handle_cast(const Add& add, state& total) { total += add.n; }
};
}  // namespace bench

HOTSWAP_MODULE("bench.counter", bench::CounterV1);
