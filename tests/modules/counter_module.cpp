// The test counter (tests/runtime/servers.hpp) as a module, in the version COUNTER_VERSION
// names; one source, several libraries (tests/CMakeLists.txt), some of them broken on purpose.
#include <stdexcept>

#include <hotswap/modules.hpp>

#include "../runtime/servers.hpp"

#if COUNTER_VERSION == 1
HOTSWAP_MODULE("counter", testing::CounterV1);
#elif COUNTER_VERSION == 2 && defined(COUNTER_REFUSES_13)
namespace testing {
/// v2, refusing to upgrade a server whose count is 13: a fault one server of several meets.
struct CounterV2Refuses13 : CounterV2 {
  static state code_change(hotswap::from_vsn<1>, v1::Count&& old) {
    if (old.count == 13) throw std::runtime_error("13 is unlucky");
    return {old.count, 2};
  }
};
}  // namespace testing
HOTSWAP_MODULE("counter", testing::CounterV2Refuses13);
#elif COUNTER_VERSION == 2
HOTSWAP_MODULE("counter", testing::CounterV2);
#elif COUNTER_VERSION == 3
HOTSWAP_MODULE("counter", testing::CounterV3);  // whose code_change refuses v2's state
#endif

#ifdef COUNTER_THROWS_AT_LOAD
namespace {
struct refuses_to_load {
  refuses_to_load() { throw std::runtime_error("the counter module refuses to load"); }
} instance;
}  // namespace
#endif
