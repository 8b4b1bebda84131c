// A small counter, in two versions with the same state: built in by modules_benchmark, and as
// the module it loads (small_module.cpp).
#pragma once

#include <hotswap/hotswap.hpp>

namespace bench {
struct Get {};
struct Add {
  long n;
};
using Counter = hotswap::interface<"Bench.Counter", hotswap::call_msg<Get, long>, hotswap::cast_msg<Add>>;

template <int Vsn>
struct SmallCounter {
  using interface = Counter;
  static constexpr int vsn = Vsn;
  using state = long;
  using state_history = hotswap::state_history<hotswap::version<3 - Vsn, long>>;
  static state init() { return 0; }
  static long handle_call(const Get&, const state& total) { return total; }
  static void handle_cast(const Add& add, state& total) { total += add.n; }
};
}  // namespace bench
