// An implementation without a handler for one of its interface's calls.
// expect: implementation_lacks_handle_call<
// expect: Counter, Get, int>
// expect: write `static Reply handle_call(const Message&, state&);`
#include <hotswap/hotswap.hpp>

struct Get {};
struct Add { int n; };
using CounterInterface = hotswap::interface<"Counter", hotswap::call_msg<Get, int>, hotswap::cast_msg<Add>>;

struct Counter {
  using interface = CounterInterface;
  static constexpr int vsn = 1;
  using state = int;
  static state init() { return 0; }
  static void handle_cast(const Add& add, state& s) { s += add.n; }
#ifdef HOTSWAP_FIXED
  static int handle_call(const Get&, state& s) { return s; }
#endif
};

int main() { return hotswap::table_of<Counter>.vsn; }
