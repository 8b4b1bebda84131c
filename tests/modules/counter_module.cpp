// The test counter (tests/runtime/servers.hpp) as a module, in the version COUNTER_VERSION
// names; one source, several libraries (tests/CMakeLists.txt), some of them broken on purpose.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <hotswap/modules.hpp>

#include "../runtime/servers.hpp"

#if COUNTER_VERSION == 1 && defined(COUNTER_GROWN)
namespace testing {
/// A rebuild of v1 whose state grew into the schema's next version, v2::Count: migrated by the
/// schema's steps (and back down by its declared step). An Add of 13 throws.
struct CounterV1Grown : counter_handlers<v2::Count> {
  using interface = Counter;
  static constexpr int vsn = 1;
  using state = v2::Count;
  using counter_handlers<v2::Count>::handle_cast;
  static state init() { return {}; }
  static void handle_cast(const Add& add, state& s) {
    if (add.n == 13) throw std::runtime_error("13 is unlucky");
    s.count += add.n;
  }
};
}  // namespace testing
HOTSWAP_MODULE("counter", testing::CounterV1Grown);
#elif COUNTER_VERSION == 1 && defined(COUNTER_SAYS_TERMINATE)
namespace testing {
/// v1 whose terminate prints a line on standard output: what a process that ends with this
/// server running must print (tests/modules/program_end_test.cpp).
struct CounterV1Says : CounterV1 {
  static void terminate(const hotswap::exit_reason& reason, state& s) {
    std::printf("module counter %d terminate: %s\n", s.count, describe(reason).c_str());
    std::fflush(stdout);
  }
};
}  // namespace testing
HOTSWAP_MODULE("counter", testing::CounterV1Says);
#elif COUNTER_VERSION == 1
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
#elif COUNTER_VERSION == 2 && defined(COUNTER_REBUILT)
namespace testing {
/// Another build of v2 (a development rebuild): the same state, Get answers ten times the count,
/// and an Add of 13 throws (the build on probation failing).
struct CounterV2Rebuilt : CounterV2 {
  using CounterV2::handle_cast;
  static long handle_call(const Get&, const state& s) { return s.count * 10; }
  static void handle_cast(const Add& add, state& s) {
    if (add.n == 13) throw std::runtime_error("13 is unlucky");
    s.count += add.n;
  }
};
}  // namespace testing
HOTSWAP_MODULE("counter", testing::CounterV2Rebuilt);
#elif COUNTER_VERSION == 2 && defined(COUNTER_STRING_STATE)
namespace testing {
/// A rebuild of v2 whose state is no version of the Count schema: refused.
struct CounterV2Strings {
  using interface = Counter;
  static constexpr int vsn = 2;
  using state = std::string;
  static state init() { return {}; }
  static long handle_call(const Get&, const state& s) { return static_cast<long>(s.size()); }
  static void handle_cast(const Add& add, state& s) { s.append(static_cast<std::size_t>(add.n), '+'); }
  static void handle_cast(const Sleep&, state&) {}
  static void handle_cast(const Gate&, state&) {}
  static void handle_info(const Crash&, state&) { throw std::runtime_error("asked to crash"); }
};
}  // namespace testing
HOTSWAP_MODULE("counter", testing::CounterV2Strings);
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
