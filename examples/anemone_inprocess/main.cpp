// The Anemone app upgraded live from v2 to v3 in one process, as the article's upgrade script
// does it: suspend both servers, change the code of each, resume both. The servers tick on; no
// tick is lost (the ones due while suspended wait in the mailbox).
//
//     anemone_inprocess [ticks before and after the upgrade = 5] [tick period in ms = 1000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include <hotswap/hotswap.hpp>

#include "../anemone/servers.hpp"

namespace {

using namespace anemone;

template <class T>
T or_exit(hotswap::result<T> result, const char* doing) {
  if (!result) {
    fmt::print(stderr, "anemone: {} failed: {} {}\n", doing, to_string(result.error().code), result.error().what);
    std::exit(1);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

void wait_for_ticks(const hotswap::server_ref<AccountManagerInterface>& manager, int ticks, Period period) {
  while (or_exit(hotswap::call(manager, Scores{}), "asking for the scores").at("alice") < ticks)
    std::this_thread::sleep_for(period / 4);
}

}  // namespace

int main(int argc, char** argv) {
  const int ticks = argc > 1 ? std::atoi(argv[1]) : 5;
  const Period period{argc > 2 ? std::atoi(argv[2]) : 1000};

  const auto manager = or_exit(hotswap::start<AccountManagerV2>(period, {.name = "account_manager"}), "start");
  const auto inspector = or_exit(hotswap::start<InspectorV2>(period, {.name = "inspector"}), "start");
  wait_for_ticks(manager, ticks, period);

  const auto began = std::chrono::steady_clock::now();
  or_exit(hotswap::sys::suspend(manager), "suspend");
  or_exit(hotswap::sys::suspend(inspector), "suspend");
  or_exit(hotswap::sys::change_code(manager, hotswap::table_of<AccountManagerV3>, 2), "change_code");
  or_exit(hotswap::sys::change_code(inspector, hotswap::table_of<InspectorV3>, 2), "change_code");
  or_exit(hotswap::sys::resume(inspector), "resume");
  or_exit(hotswap::sys::resume(manager), "resume");
  const auto pause = std::chrono::steady_clock::now() - began;
  fmt::print("-- upgraded account_manager and inspector to v3 (suspend, change_code, resume)\n");
  fmt::print(stderr, "-- the upgrade took {} us (the first in this process: its code and caches were cold)\n",
             std::chrono::duration<double, std::micro>(pause).count());

  wait_for_ticks(manager, 2 * ticks, period);
  or_exit(hotswap::sys::suspend(manager), "suspend");
  const auto accounts = or_exit(hotswap::sys::get_state<AccountManagerV3::state>(manager), "get_state");
  fmt::print("{}\n", hotswap::inspect(accounts));
  or_exit(hotswap::stop(inspector), "stop");
  or_exit(hotswap::stop(manager), "stop");
}
