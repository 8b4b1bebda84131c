// The Anemone app upgraded live from v2 to v3 with code loaded from shared libraries, as the
// article's Elixir app is: the program starts its two servers on the v2 modules; new code
// arrives as the v3 modules, which the code server checks against the program (ABI, interface,
// the Account schema) before any of their code runs; then, as the article's upgrade script does,
// both servers are suspended, the code of each is changed, both are resumed; v2 is purged. The
// servers tick on; no tick is lost (the ones due while suspended wait in the mailbox).
//
//     anemone_live [ticks before and after the upgrade = 5] [tick period in ms = 1000]
//                  [directory of the modules = where the build put them]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
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
  const std::string modules = argc > 3 ? argv[3] : ANEMONE_MODULES_DIR;

  // The schema versions the v2 program was built with; v3 comes with the new modules.
  hotswap::registry().add(hotswap::describe<v1::Account>());
  hotswap::registry().add(hotswap::describe<v2::Account>());

  hotswap::code_server code;
  auto manager_v2 = or_exit(code.load<AccountManagerInterface>(modules + "/account_manager_v2.so"), "load");
  auto inspector_v2 = or_exit(code.load<InspectorInterface>(modules + "/inspector_v2.so"), "load");
  const auto manager =
      or_exit(hotswap::start<AccountManagerInterface>(manager_v2, period, {.name = "account_manager"}), "start");
  const auto inspector =
      or_exit(hotswap::start<InspectorInterface>(inspector_v2, period, {.name = "inspector"}), "start");
  wait_for_ticks(manager, ticks, period);

  // New code arrives while v2 serves on: loaded and checked outside the suspend window.
  const auto manager_v3 = or_exit(code.load<AccountManagerInterface>(modules + "/account_manager_v3.so"), "load");
  const auto inspector_v3 = or_exit(code.load<InspectorInterface>(modules + "/inspector_v3.so"), "load");
  fmt::print("-- loaded {} and {} vsn 3; the program now knows Account v{}\n", manager_v3->name(),
             inspector_v3->name(), hotswap::registry().versions("Account").back().vsn);

  const auto began = std::chrono::steady_clock::now();
  or_exit(hotswap::sys::suspend(manager), "suspend");
  or_exit(hotswap::sys::suspend(inspector), "suspend");
  or_exit(hotswap::sys::change_code(manager, manager_v3, 2), "change_code");
  or_exit(hotswap::sys::change_code(inspector, inspector_v3, 2), "change_code");
  or_exit(hotswap::sys::resume(inspector), "resume");
  or_exit(hotswap::sys::resume(manager), "resume");
  const auto pause = std::chrono::steady_clock::now() - began;
  fmt::print("-- upgraded account_manager and inspector to v3 (suspend, change_code, resume)\n");
  fmt::print(stderr, "-- the upgrade took {} us (the first in this process: its code and caches were cold)\n",
             std::chrono::duration<double, std::micro>(pause).count());

  // Nothing runs v2 any more: its libraries go.
  manager_v2.reset();
  inspector_v2.reset();
  const auto purged_manager = or_exit(code.purge("anemone.account_manager"), "purge");
  const auto purged_inspector = or_exit(code.purge("anemone.inspector"), "purge");
  if (purged_manager.unmapped && purged_inspector.unmapped)
    fmt::print("-- purged vsn 2 of both: unmapped\n");
  else
    fmt::print("-- purged vsn 2 of both, still mapped: {} {}\n", purged_manager.note, purged_inspector.note);

  wait_for_ticks(manager, 2 * ticks, period);
  or_exit(hotswap::sys::suspend(manager), "suspend");
  const auto accounts = or_exit(hotswap::sys::get_state<AccountManagerV3::state>(manager), "get_state");
  fmt::print("{}\n", hotswap::inspect(accounts));
  or_exit(hotswap::stop(inspector), "stop");
  or_exit(hotswap::stop(manager), "stop");
}
