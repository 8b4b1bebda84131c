// What the two live Anemone upgrades (anemone_inprocess, anemone_live) do alike: stop on a failed
// request, wait for ticks, upgrade as the article's script does, show the final state.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <type_traits>

#include <fmt/format.h>

#include <hotswap/hotswap.hpp>

#include "servers.hpp"

namespace anemone::run {

/// The value, or the program ends saying what failed.
template <class T>
T or_exit(hotswap::result<T> result, const char* doing) {
  if (!result) {
    fmt::print(stderr, "anemone: {} failed: {} {}\n", doing, to_string(result.error().code), result.error().what);
    std::exit(1);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

/// How many times each server has ticked: alice's score grows by one a tick (her stage is 0),
/// and the Inspector handles nothing but ticks.
struct tick_counts {
  int manager = 0;
  std::uint64_t inspector = 0;
};

inline tick_counts ticks_so_far(const hotswap::server_ref<AccountManagerInterface>& manager,
                                const hotswap::server_ref<InspectorInterface>& inspector) {
  return {or_exit(hotswap::call(manager, Scores{}), "asking for the scores").at("alice"),
          or_exit(hotswap::sys::statistics(inspector), "statistics").messages_handled};
}

/// Waits until each server has ticked `ticks` times since `since` (events, not a count reached:
/// on a slow machine more may have happened before `since` than were asked for).
inline void wait_for_ticks(const hotswap::server_ref<AccountManagerInterface>& manager,
                           const hotswap::server_ref<InspectorInterface>& inspector, int ticks, Period period,
                           tick_counts since = {}) {
  for (;;) {
    const tick_counts now = ticks_so_far(manager, inspector);
    if (now.manager >= since.manager + ticks && now.inspector >= since.inspector + std::uint64_t(ticks)) return;
    std::this_thread::sleep_for(period / 4);
  }
}

/// Suspends both servers, runs `change_code_of_each`, resumes both: the article's upgrade script.
/// The line saying so is printed before the resume: every tick before it is v2's, after it v3's.
/// Returns the ticks counted just after it.
template <class ChangeCode>
tick_counts upgrade(const hotswap::server_ref<AccountManagerInterface>& manager,
                    const hotswap::server_ref<InspectorInterface>& inspector, ChangeCode change_code_of_each) {
  using clock = std::chrono::steady_clock;
  const auto began = clock::now();
  or_exit(hotswap::sys::suspend(manager), "suspend");
  or_exit(hotswap::sys::suspend(inspector), "suspend");
  change_code_of_each();
  const auto changed = clock::now();
  fmt::print("-- upgraded account_manager and inspector to v3 (suspend, change_code, resume)\n");
  const auto printed = clock::now();
  or_exit(hotswap::sys::resume(inspector), "resume");
  or_exit(hotswap::sys::resume(manager), "resume");
  const auto pause = (clock::now() - began) - (printed - changed);
  fmt::print(stderr, "-- the upgrade took {} us (the first in this process: its code and caches were cold)\n",
             std::chrono::duration<double, std::micro>(pause).count());
  return ticks_so_far(manager, inspector);
}

/// Waits for `ticks` more ticks of each server since `upgraded`, then prints the accounts as the
/// server holds them (a map of v3 Accounts, unless told otherwise) and stops both servers.
template <class Accounts = AccountManagerV3::state>
void finish(const hotswap::server_ref<AccountManagerInterface>& manager,
            const hotswap::server_ref<InspectorInterface>& inspector, int ticks, Period period, tick_counts upgraded) {
  wait_for_ticks(manager, inspector, ticks, period, upgraded);
  or_exit(hotswap::sys::suspend(manager), "suspend");
  const auto accounts = or_exit(hotswap::sys::get_state<Accounts>(manager), "get_state");
  fmt::print("{}\n", hotswap::inspect(accounts));
  or_exit(hotswap::stop(inspector), "stop");
  or_exit(hotswap::stop(manager), "stop");
}

}  // namespace anemone::run
