// The Anemone app upgraded live from v2 to v3 in one process, as the article's upgrade script
// does it: suspend both servers, change the code of each, resume both. The servers tick on; no
// tick is lost (the ones due while suspended wait in the mailbox).
//
//     anemone_inprocess [ticks before and after the upgrade = 5] [tick period in ms = 1000]
#include <cstdlib>

#include <hotswap/hotswap.hpp>

#include "../anemone/run.hpp"

using namespace anemone;
using run::or_exit;

int main(int argc, char** argv) {
  const int ticks = argc > 1 ? std::atoi(argv[1]) : 5;
  const Period period{argc > 2 ? std::atoi(argv[2]) : 1000};

  const auto manager = or_exit(hotswap::start<AccountManagerV2>(period, {.name = "account_manager"}), "start");
  const auto inspector = or_exit(hotswap::start<InspectorV2>(period, {.name = "inspector"}), "start");
  run::wait_for_ticks(manager, inspector, ticks, period);

  const auto upgraded = run::upgrade(manager, inspector, [&] {
    or_exit(hotswap::sys::change_code(manager, hotswap::table_of<AccountManagerV3>, 2), "change_code");
    or_exit(hotswap::sys::change_code(inspector, hotswap::table_of<InspectorV3>, 2), "change_code");
  });

  run::finish(manager, inspector, ticks, period, upgraded);
}
