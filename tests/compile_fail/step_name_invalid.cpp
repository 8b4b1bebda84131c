// A module's step whose name a release manifest could not name.
// expect: step_name_is_invalid<
// expect: use letters, digits, '.', '_' and '-' only, not first '.', '_' or '-', at most 64
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
void warm_cache() {}

HOTSWAP_MODULE("counters", CounterV1);
#ifndef HOTSWAP_FIXED
HOTSWAP_MODULE_STEP("warm cache", &warm_cache);
#else
HOTSWAP_MODULE_STEP("warm_cache", &warm_cache);
#endif
