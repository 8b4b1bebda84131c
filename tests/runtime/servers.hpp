// Servers the run-time tests share: a counter in two versions (their states two versions of a
// schema), and a log of what terminate saw.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <hotswap/hotswap.hpp>

#include "../wait.hpp"

namespace testing {

/// The sanitizers slow each message 5-15 times: the heaviest loops run fewer rounds under them.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
inline constexpr bool sanitized = __has_feature(thread_sanitizer) || __has_feature(address_sanitizer);
#else
inline constexpr bool sanitized = false;
#endif

struct Get {};
struct Add {
  int n;
};
struct Crash {};
struct Sleep {
  int ms;
};
/// Holds its handler until the test opens it: `state` is the address of a std::atomic<std::uint32_t> the
/// handler sets to 1 on entry, then waits (on a futex) for the test to set to 2. (An address as an integer, so
/// that it also reaches a module's copy of the handler.)
struct Gate {
  std::uintptr_t state;
};
using Counter = hotswap::interface<"Counter", hotswap::call_msg<Get, long>, hotswap::cast_msg<Add>,
                                   hotswap::cast_msg<Sleep>, hotswap::cast_msg<Gate>, hotswap::info_msg<Crash>>;
/// Its next version: adds Reset (the count before).
struct Reset {};
using CounterLater = hotswap::interface<"Counter", hotswap::follows<Counter>, hotswap::call_msg<Reset, long>>;

/// A gate for one handler: cast `message()`, wait for `entered()`, then `open()`.
class gate {
 public:
  Gate message() { return {reinterpret_cast<std::uintptr_t>(&state_)}; }
  bool entered() {
    return eventually([&] { return state_.load() == 1; });
  }
  void open() {
    state_.store(2);
    hotswap::detail::futex_wake(state_, 1);
  }

 private:
  std::atomic<std::uint32_t> state_{0};
};

namespace v1 {
struct Count {
  int count = 0;
};
}  // namespace v1
namespace v2 {
struct Count {
  long count = 0;
  int generation = 2;
};
}  // namespace v2
using CountSchema = hotswap::schema<"Count", hotswap::version<1, v1::Count>, hotswap::version<2, v2::Count>>;

/// What terminate saw, in order, across servers.
struct exit_log {
  std::mutex lock;
  std::vector<std::string> entries;
  void add(std::string entry) {
    const std::lock_guard hold(lock);
    entries.push_back(std::move(entry));
  }
  std::vector<std::string> take() {
    const std::lock_guard hold(lock);
    return std::exchange(entries, {});
  }
};
inline exit_log& exits() {
#ifdef HOTSWAP_MODULE_BUILD
  static exit_log log;  // a module's own, gone with it (a pointer to the heap would leak then)
#else
  // Never destroyed: the servers a test leaves running are stopped when the runtime is destroyed,
  // after main, and their terminate writes here.
  static exit_log& log = *new exit_log;
#endif
  return log;
}
inline std::string describe(const hotswap::exit_reason& reason) {
  constexpr const char* kinds[] = {"normal", "shutdown", "crashed"};
  return std::string(kinds[static_cast<int>(reason.kind)]) + (reason.what.empty() ? "" : ": " + reason.what);
}

template <class Count>
struct counter_handlers {
  static long handle_call(const Get&, const Count& s) { return static_cast<long>(s.count); }
  static void handle_cast(const Add& add, Count& s) { s.count += add.n; }
  static void handle_cast(const Sleep& sleep, Count&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep.ms));
  }
  static void handle_cast(const Gate& gate, Count&) {
    // A futex, not std::atomic::wait: libstdc++ counts waiters in a table of its own in each
    // image, so a module's wait would miss the program's notify.
    auto& state = *reinterpret_cast<std::atomic<std::uint32_t>*>(gate.state);
    state = 1;
    while (state.load() != 2) hotswap::detail::futex_wait(state, 1);
  }
  static void handle_info(const Crash&, Count&) { throw std::runtime_error("asked to crash"); }
  static void terminate(const hotswap::exit_reason& reason, Count& s) {
    exits().add("counter " + std::to_string(s.count) + " " + describe(reason));
  }
};

struct CounterV1 : counter_handlers<v1::Count> {
  using interface = Counter;
  static constexpr int vsn = 1;
  using state = v1::Count;
  using state_history = hotswap::state_history<hotswap::version<2, v2::Count>>;
  static state init() { return {}; }
};

struct CounterV2 : counter_handlers<v2::Count> {
  using interface = Counter;
  static constexpr int vsn = 2;
  using state = v2::Count;
  using state_history = hotswap::state_history<hotswap::version<1, v1::Count>>;
  static state init() { return {}; }
};

/// Starts at a given count.
struct CounterFrom : CounterV1 {
  static state init(int start) { return {start}; }
};

/// v3 refuses to upgrade from v2: its code_change throws.
struct CounterV3 : counter_handlers<v2::Count> {
  using interface = Counter;
  static constexpr int vsn = 3;
  using state = v2::Count;
  using state_history = hotswap::state_history<hotswap::version<2, v2::Count>>;
  static state init() { return {}; }
  static state code_change(hotswap::from_vsn<2>, v2::Count&&) { throw std::runtime_error("v3 refuses"); }
};

}  // namespace testing

template <hotswap::listed_in<testing::CountSchema> T>
struct hotswap::schema_of<T> : testing::CountSchema {};

// Going down narrows count back to int (checked) and drops generation.
template <>
struct hotswap::step<testing::v2::Count, testing::v1::Count> {
  static constexpr auto rules = hotswap::rules{
      hotswap::removed<"generation">,
      hotswap::convert<"count">([](long count) {
        if (count > std::numeric_limits<int>::max()) throw std::overflow_error("count does not fit an int");
        return static_cast<int>(count);
      }),
  };
};
