// Counters that do not fit the test program, each in its own way, for the code server to refuse;
// and one whose interface is a declared later version of the program's Counter, which it takes.
#include <utility>

#include <hotswap/modules.hpp>

#include "../runtime/servers.hpp"

namespace variant {

#if defined(OTHER_INTERFACE)
// "Counter" with other messages: Get replies an int.
using Counter = hotswap::interface<"Counter", hotswap::call_msg<testing::Get, int>, hotswap::cast_msg<testing::Add>>;
struct CounterV4 {
  using interface = Counter;
  static constexpr int vsn = 4;
  using state = testing::v2::Count;
  static state init() { return {}; }
  static int handle_call(const testing::Get&, const state& s) { return static_cast<int>(s.count); }
  static void handle_cast(const testing::Add& add, state& s) { s.count += add.n; }
};
HOTSWAP_MODULE("counter", CounterV4);

#elif defined(LATER_INTERFACE)
// Counter version 2 (testing::CounterLater): adds Reset.
struct CounterV4 : testing::counter_handlers<testing::v2::Count> {
  using interface = testing::CounterLater;
  static constexpr int vsn = 4;
  using state = testing::v2::Count;
  using state_history = hotswap::state_history<hotswap::version<2, testing::v2::Count>>;
  static state init() { return {}; }
  using counter_handlers::handle_call;
  static long handle_call(const testing::Reset&, state& s) { return std::exchange(s.count, 0); }
};
HOTSWAP_MODULE("counter", CounterV4);

#elif defined(OTHER_SCHEMA)
// Count version 2 as this module has it: count is a short.
namespace v2 {
struct Count {
  short count = 0;
  int generation = 2;
};
}  // namespace v2
using CountSchema = hotswap::schema<"Count", hotswap::version<2, v2::Count>>;
}  // namespace variant
template <hotswap::listed_in<variant::CountSchema> T>
struct hotswap::schema_of<T> : variant::CountSchema {};
namespace variant {
struct CounterV4 {
  using interface = testing::Counter;
  static constexpr int vsn = 4;
  using state = v2::Count;
  static state init() { return {}; }
  static long handle_call(const testing::Get&, const state& s) { return s.count; }
  static void handle_cast(const testing::Add& add, state& s) { s.count = static_cast<short>(s.count + add.n); }
  static void handle_cast(const testing::Sleep&, state&) {}
  static void handle_cast(const testing::Gate&, state&) {}
  static void handle_info(const testing::Crash&, state&) {}
};
HOTSWAP_MODULE("counter", CounterV4);
#endif

}  // namespace variant
