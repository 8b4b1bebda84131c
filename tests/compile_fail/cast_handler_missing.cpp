// An implementation without a handler for one of its interface's casts.
// expect: implementation_lacks_handle_cast<
// expect: Counter, Add>
// expect: write `static void handle_cast(const Message&, state&);`
#include <hotswap/hotswap.hpp>

struct Add { int n; };
using CounterInterface = hotswap::interface<"Counter", hotswap::cast_msg<Add>>;

struct Counter {
  using interface = CounterInterface;
  static constexpr int vsn = 1;
  using state = int;
  static state init() { return 0; }
#ifdef HOTSWAP_FIXED
  static void handle_cast(const Add& add, state& s) { s += add.n; }
#endif
};

int main() { return hotswap::table_of<Counter>.vsn; }
