// A counter whose state is a schema "Tally" whose vsn 2 adds a field that going down would drop
// without a declaration: TALLY_VERSION 1 or 2. The release tests' undeclared lossy downgrade.
#include <hotswap/modules.hpp>

#include "../runtime/servers.hpp"

namespace tally {
namespace v1 {
struct Tally {
  long count = 0;
};
}  // namespace v1
namespace v2 {
struct Tally {
  long count = 0;
  int rounds = 0;  // dropped going down, and no step says so
};
}  // namespace v2
using Schema = hotswap::schema<"Tally", hotswap::version<1, v1::Tally>, hotswap::version<2, v2::Tally>>;
}  // namespace tally
template <hotswap::listed_in<tally::Schema> T>
struct hotswap::schema_of<T> : tally::Schema {};

namespace tally {
template <int Vsn>
struct Counter : testing::counter_handlers<std::conditional_t<Vsn == 1, v1::Tally, v2::Tally>> {
  using interface = testing::Counter;
  static constexpr int vsn = Vsn;
  using state = std::conditional_t<Vsn == 1, v1::Tally, v2::Tally>;
  using state_history =
      std::conditional_t<Vsn == 1, hotswap::state_history<>, hotswap::state_history<hotswap::version<1, v1::Tally>>>;
  static state init() { return {}; }
};
}  // namespace tally

HOTSWAP_MODULE("tally", tally::Counter<TALLY_VERSION>);
