// HOTSWAP_MODULE in a file that is not built as a module (hotswap_add_module defines
// HOTSWAP_MODULE_BUILD, hides symbols and defers static initializers).
// expect: HOTSWAP_MODULE makes a module: build this file into a library made by hotswap_add_module() in CMake
#ifdef HOTSWAP_FIXED
#define HOTSWAP_MODULE_BUILD
#endif
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

HOTSWAP_MODULE("counter", CounterV1);
