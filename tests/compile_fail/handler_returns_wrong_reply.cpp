// A call handler whose return type is not the reply type the interface declares.
// expect: handle_call_returns_the_wrong_type<
// expect: Counter, Get, int, std::
// expect: return Reply
#include <string>

#include <hotswap/hotswap.hpp>

struct Get {};
using CounterInterface = hotswap::interface<"Counter", hotswap::call_msg<Get, int>>;

struct Counter {
  using interface = CounterInterface;
  static constexpr int vsn = 1;
  using state = int;
  static state init() { return 0; }
#ifndef HOTSWAP_FIXED
  static std::string handle_call(const Get&, state& s) { return std::to_string(s); }
#else
  static int handle_call(const Get&, state& s) { return s; }
#endif
};

int main() { return hotswap::table_of<Counter>.vsn; }
