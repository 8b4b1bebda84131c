// examples/servers_quickstart/counter.hpp: a counter's interface, the two versions of its state
// and two implementations (main.cpp swaps them in a running server; ../modules_quickstart loads
// them from shared libraries).
#pragma once

#include <hotswap/hotswap.hpp>

// The state's versions, declared as a schema: what lets change_code migrate one to the other.
namespace v1 {
struct Count {
  int count = 0;
};
}  // namespace v1
namespace v2 {
struct Count {
  long count = 0;
  int generation = 2;
};
}  // namespace v2
using CountSchema = hotswap::schema<"Count", hotswap::version<1, v1::Count>, hotswap::version<2, v2::Count>>;
template <hotswap::listed_in<CountSchema> T>
struct hotswap::schema_of<T> : CountSchema {};

struct Get {};
struct Add {
  int n;
};
using Counter = hotswap::interface<"Counter", hotswap::call_msg<Get, long>, hotswap::cast_msg<Add>>;

struct CounterV1 {
  using interface = Counter;
  static constexpr int vsn = 1;
  using state = v1::Count;  // { int count = 0; }
  static state init() { return {}; }
  static long handle_call(const Get&, const state& s) { return s.count; }
  static void handle_cast(const Add& add, state& s) { s.count += add.n; }
};

struct CounterV2 {  // the same interface, new code
  using interface = Counter;
  static constexpr int vsn = 2;
  using state = v2::Count;  // { long count = 0; int generation = 2; }
  using state_history = hotswap::state_history<hotswap::version<1, v1::Count>>;
  static state init() { return {}; }
  static long handle_call(const Get&, const state& s) { return s.count * 10; }
  static void handle_cast(const Add& add, state& s) { s.count += add.n; }
};
