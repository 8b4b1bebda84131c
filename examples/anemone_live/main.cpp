// The Anemone app upgraded live from v2 to v3 with code loaded from shared libraries, as the
// article's Elixir app is: the program starts its two servers on the v2 modules; new code
// arrives as the v3 modules, which the code server checks against the program (ABI, interface,
// the Account schema) before any of their code runs; then, as the article's upgrade script does,
// both servers are suspended, the code of each is changed, both are resumed; v2 is purged. The
// servers tick on; no tick is lost (the ones due while suspended wait in the mailbox).
//
//     anemone_live [ticks before and after the upgrade = 5] [tick period in ms = 1000]
//                  [directory of the modules = where the build put them]
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include <hotswap/hotswap.hpp>

#include "../anemone/run.hpp"

using namespace anemone;
using run::or_exit;

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
  run::wait_for_ticks(manager, inspector, ticks, period);

  // New code arrives while v2 serves on: loaded and checked outside the suspend window.
  const auto manager_v3 = or_exit(code.load<AccountManagerInterface>(modules + "/account_manager_v3.so"), "load");
  const auto inspector_v3 = or_exit(code.load<InspectorInterface>(modules + "/inspector_v3.so"), "load");
  fmt::print("-- loaded {} and {} vsn 3; the program now knows Account v{}\n", manager_v3->name(), inspector_v3->name(),
             hotswap::registry().versions("Account").back().vsn);

  const auto upgraded = run::upgrade(manager, inspector, [&] {
    or_exit(hotswap::sys::change_code(manager, manager_v3, 2), "change_code");
    or_exit(hotswap::sys::change_code(inspector, inspector_v3, 2), "change_code");
  });

  // Nothing runs v2 any more: its libraries go.
  manager_v2.reset();
  inspector_v2.reset();
  const auto purged_manager = or_exit(code.purge("anemone.account_manager"), "purge");
  const auto purged_inspector = or_exit(code.purge("anemone.inspector"), "purge");
  if (purged_manager.unmapped && purged_inspector.unmapped)
    fmt::print("-- purged vsn 2 of both: unmapped\n");
  else
    fmt::print("-- purged vsn 2 of both, still mapped: {} {}\n", purged_manager.note, purged_inspector.note);

  run::finish(manager, inspector, ticks, period, upgraded);
}
