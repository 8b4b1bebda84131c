// Two versions of a state that are plain structs, never declared as versions of one schema.
// expect: states_are_not_versions_of_a_schema<
// expect: CounterV2, 1, v1::Count, v2::Count>
// expect: declare them: `using S = hotswap::schema<
#include <hotswap/hotswap.hpp>

namespace v1 { struct Count { int count = 0; }; }
namespace v2 { struct Count { long count = 0; int generation = 2; }; }
#ifdef HOTSWAP_FIXED
using CountSchema = hotswap::schema<"Count", hotswap::version<1, v1::Count>, hotswap::version<2, v2::Count>>;
template <hotswap::listed_in<CountSchema> T> struct hotswap::schema_of<T> : CountSchema {};
#endif

struct Get {};
using Counter = hotswap::interface<"Counter", hotswap::call_msg<Get, long>>;

struct CounterV2 {
  using interface = Counter;
  static constexpr int vsn = 2;
  using state = v2::Count;
  using state_history = hotswap::state_history<hotswap::version<1, v1::Count>>;
  static state init() { return {}; }
  static long handle_call(const Get&, const state& s) { return s.count; }
};

int main() { return hotswap::table_of<CounterV2>.vsn; }
