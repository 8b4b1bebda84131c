// The minimal module's vsn 2 (its vsn 1 is minimal_module.cpp): its code_change adds 100 to the
// state, or throws (MINIMAL_CHANGE_THROWS); with MINIMAL_THROWS_AT_LOAD, a static initializer
// throws; with MINIMAL_INIT_TAKES_INT, its init takes an int. The second interface of the
// release tests.
#include <stdexcept>

#include <hotswap/modules.hpp>

#include "minimal.hpp"

struct MinimalV2 {
  using interface = Minimal;
  static constexpr int vsn = 2;
  using state = int;
  using state_history = hotswap::state_history<hotswap::version<1, int>>;
#ifdef MINIMAL_INIT_TAKES_INT  // (a server a release cannot start: it has no argument to give)
  static state init(int first) {
    return first;
  }
#else
  static state init() {
    return 2;
  }
#endif
  static int handle_call(const Ping&, const state& s) {
    return s;
  }
  static state code_change(hotswap::from_vsn<1>, int&& old) {
#ifdef MINIMAL_CHANGE_THROWS
    (void)old;
    throw std::runtime_error("minimal v2 refuses");
#else
    return old + 100;
#endif
  }
};

HOTSWAP_MODULE("minimal", MinimalV2);

#ifdef MINIMAL_THROWS_AT_LOAD
namespace {
struct refuses_to_load {
  refuses_to_load() { throw std::runtime_error("minimal v2 refuses to load"); }
} instance;
}  // namespace
#endif
