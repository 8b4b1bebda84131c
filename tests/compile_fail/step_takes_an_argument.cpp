// A module's step that takes an argument: a release runs it with none.
// expect: step_is_not_a_function_of_no_argument<
// expect: HOTSWAP_MODULE_STEP takes a function of no argument returning void (it may throw) or hotswap::result<void>
#define HOTSWAP_MODULE_BUILD
#include <hotswap/hotswap.hpp>

struct Get {};
using Counter = hotswap::interface<"Counter", hotswap::call_msg<Get, int>>;
struct CounterV1 {
  using interface = Counter;
  static constexpr int vsn = 1;
  using state = int;
  static state init() { return 0; }
  static int handle_call(const Get&, const state& count) { return count; }
};

#ifndef HOTSWAP_FIXED
void warm_cache(int entries) { (void)entries; }
#else
hotswap::result<void> warm_cache() { return {}; }
#endif

HOTSWAP_MODULE("counters", CounterV1);
HOTSWAP_MODULE_STEP("warm_cache", &warm_cache);
