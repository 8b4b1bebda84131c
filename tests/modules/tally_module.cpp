// A counter whose state is a schema "Tally" whose vsn 2 adds a field that going down would drop
// without a declaration: TALLY_VERSION 1 or 2. The release tests' undeclared lossy downgrade.
// With TALLY_STEPS, it exports steps a release runs ("apply"): each adds to the server
// registered as "tallies", or fails.
#include <stdexcept>

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

#ifdef TALLY_STEPS
namespace tally {
/// Adds `amount` to the server registered as "tallies" (the one the release started).
void add_to_tallies(int amount) {
  const auto tallies = hotswap::whereis<testing::Counter>("tallies");
  if (!tallies) throw std::runtime_error("no server is registered as tallies");
  hotswap::cast(*tallies, testing::Add{amount});
}
void warm() {
  add_to_tallies(1000);
}
hotswap::result<void> settle() {
  add_to_tallies(10);
  return {};
}
void cold() {
  throw std::runtime_error("the cache is cold");
}
hotswap::result<void> unsettled() {
  return hotswap::error{hotswap::errc::timeout, "the books do not balance"};
}
}  // namespace tally
HOTSWAP_MODULE_STEP("warm", &tally::warm);
HOTSWAP_MODULE_STEP("settle", &tally::settle);
HOTSWAP_MODULE_STEP("cold", &tally::cold);
HOTSWAP_MODULE_STEP("unsettled", &tally::unsettled);
#endif
