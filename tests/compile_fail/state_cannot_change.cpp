// An implementation that declares it upgrades from a vsn whose state does not migrate to its own.
// (A schema version whose step misses a rule fails in that step instead, naming the field.)
// expect: state_cannot_change_from_vsn<
// expect: CounterV2, 1, int, std::
// expect: write `static state code_change(hotswap::from_vsn<FromVsn>, OldState&& old, const extra&);`
#include <string>

#include <hotswap/hotswap.hpp>

struct Get {};
using CounterInterface = hotswap::interface<"Counter", hotswap::call_msg<Get, std::string>>;

struct CounterV2 {
  using interface = CounterInterface;
  static constexpr int vsn = 2;
  using state = std::string;                                     // v1 counted in an int
  using state_history = hotswap::state_history<hotswap::version<1, int>>;
  static state init() { return {}; }
  static std::string handle_call(const Get&, state& s) { return s; }
#ifdef HOTSWAP_FIXED
  static state code_change(hotswap::from_vsn<1>, int&& old) { return std::to_string(old); }
#endif
};

int main() { return hotswap::table_of<CounterV2>.vsn; }
