// A module's name with a character that cannot be in a file name.
// expect: module_name_is_invalid<
// expect: use letters, digits, '.', '_' and '-' only
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
HOTSWAP_MODULE("counters/v1", CounterV1);
#else
HOTSWAP_MODULE("counters.v1", CounterV1);
#endif
