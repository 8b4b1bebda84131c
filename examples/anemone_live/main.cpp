// The Anemone app upgraded live from v2 to v3 with code loaded from shared libraries, as the
// article's Elixir app is, through releases as OTP's release_handler installs them: the program
// boots release anemone 2 (the v2 modules) and starts its two servers on them; release anemone 3
// arrives; the release handler derives the plan from what runs, checks it whole (the v3 modules
// against the program: ABI, interface, the Account schema; each server's vsn against v3's state
// history) before anything moves, loads the v3 modules, then suspends both servers, changes the
// code of each and resumes both as one transaction, and purges v2. The servers tick on; no tick
// is lost (the ones due while suspended wait in the mailbox).
//
// With --downgrade, it then goes back down to release anemone 2: the v3 code makes each server's
// v2 state from its own (the accounts lose `active`, as Account's step from v3 to v2 declares).
//
// With --serve, it ticks on release anemone 2 until SIGINT or SIGTERM stops its servers (their
// terminate runs: hotswap::stop_on_signals), with its control socket open: an operator upgrades
// it from outside, as the article does from a remote shell (`hotswapctl anemone upgrade
// .../anemone-3.release.json`; tools/run demo does so).
//
//     anemone_live [ticks before and after the upgrade = 5] [tick period in ms = 1000]
//                  [directory of the modules and releases = where the build put them] [--downgrade]
//     anemone_live --serve [tick period in ms = 1000] [directory of the modules and releases] [--development]
//                  [--trusted-key PUBLIC_KEY.pem]... [--client]
//
// (--development: its code server takes a rebuild of a module's vsn, as `hotswapctl anemone watch
// DIR` reloads one: benchmarks/save_to_serving.py times that. --trusted-key: it takes only modules
// signed by one of these keys, as a service that runs only its own pipeline's builds does; the
// fleet's end-to-end test, tests/check_fleet.py, gives one host a release signed by another.
// --client: a client calls the AccountManager across the upgrades, release 4's new message too:
// tests/check_release_4.py.)
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <hotswap/control.hpp>
#include <hotswap/hotswap.hpp>
#include <hotswap/releases.hpp>
#include <hotswap/signals.hpp>

#include "../anemone/run.hpp"

using namespace anemone;
using run::or_exit;

namespace {

/// The program on release anemone 2: its v2 modules booted, its two servers started on them.
struct anemone_2 {
  hotswap::code_server code;  // in development mode, it takes another build of the same vsn
  hotswap::release_handler releases{code};
  hotswap::server_ref<AccountManagerInterface> manager;
  hotswap::server_ref<InspectorInterface> inspector;

  anemone_2(Period period, const std::string& modules, bool development = false,
            std::vector<std::string> trusted_keys = {})
      : code(hotswap::code_server_options{.trusted_keys = std::move(trusted_keys), .development = development}) {
    // The schema versions the v2 program was built with; v3 comes with the new modules.
    hotswap::registry().add(hotswap::describe<v1::Account>());
    hotswap::registry().add(hotswap::describe<v2::Account>());
    or_exit(releases.boot(modules + "/anemone-2.release.json"), "boot");
    manager = or_exit(hotswap::start<AccountManagerInterface>(code.current("anemone.account_manager"), period,
                                                              {.name = "account_manager"}),
                      "start");
    inspector = or_exit(
        hotswap::start<InspectorInterface>(code.current("anemone.inspector"), period, {.name = "inspector"}), "start");
  }
};

/// --client: a client of the AccountManager built against the first version of its interface, as
/// a service deployed before release anemone 4 would be, calling Scores every period across the
/// upgrades (a call that fails is printed); and one built against release 4's (version 2: it
/// takes Deactivate), which asks for its handle every period: once it has one (release 4 runs),
/// it deactivates alice; once the server is back on an earlier version, that handle's Deactivate
/// of bob is refused, and it says how.
class client {
 public:
  client(hotswap::server_ref<AccountManagerInterface> manager, Period period)
      : manager_(std::move(manager)), period_(period), thread_([this](std::stop_token stop) { run(stop); }) {}
  ~client() {
    thread_.request_stop();
    thread_.join();
    fmt::print("client: {} calls of Scores, {} failed\n", calls_, failed_);
  }

 private:
  void run(std::stop_token stop) {
    std::mutex lock;
    std::condition_variable_any period_over;
    std::optional<hotswap::server_ref<AccountManagerInterface2>> later;
    bool refused = false;
    for (std::unique_lock hold(lock); !stop.stop_requested();
         period_over.wait_for(hold, stop, period_, [] { return false; })) {
      ++calls_;
      if (const auto scores = hotswap::call(manager_, Scores{}); !scores) {
        ++failed_;
        fmt::print("client: Scores failed: {}: {}\n", hotswap::to_string(scores.error().code), scores.error().what);
      } else if (calls_ == 1) {
        fmt::print("client: calling Scores every tick: alice {}, bob {}\n", scores->at("alice"), scores->at("bob"));
      }
      if (refused) continue;
      if (!later) {
        if (auto typed = hotswap::server_ref<AccountManagerInterface2>::of(manager_)) {
          later = *typed;
          const auto done = hotswap::call(*later, Deactivate{"alice"});
          fmt::print("client: release 4's interface: deactivate alice: {}\n",
                     done ? fmt::format("{}", *done) : std::string(hotswap::to_string(done.error().code)));
        }
      } else if (!hotswap::server_ref<AccountManagerInterface2>::from(manager_)) {
        const auto done = hotswap::call(*later, Deactivate{"bob"});
        refused = !done;
        fmt::print("client: deactivate bob: {}\n",
                   done ? fmt::format("{}", *done)
                        : fmt::format("refused: {}: {}", hotswap::to_string(done.error().code), done.error().what));
      }
    }
  }

  hotswap::server_ref<AccountManagerInterface> manager_;
  Period period_;
  int calls_ = 0, failed_ = 0;
  std::jthread thread_;
};

/// Ticks on release anemone 2 until SIGINT or SIGTERM, its control socket open. The signal stops
/// the servers, newest first, as OTP's init:stop does: each one's terminate runs (the
/// AccountManager's prints its last scores).
int serve(Period period, const std::string& modules, bool development, std::vector<std::string> trusted_keys,
          bool with_client) {
  hotswap::stop_on_signals signals({SIGTERM, SIGINT});
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each tick's line as it happens, also into a pipe

  anemone_2 program(period, modules, development, std::move(trusted_keys));
  const auto control =
      or_exit(hotswap::open_control(program.code, program.releases, {.program = "anemone"}), "open_control");
  fmt::print(stderr, "-- anemone (pid {}) serves release anemone 2; control socket {}\n", ::getpid(), control.path());
  std::optional<client> calling;
  if (with_client) calling.emplace(program.manager, period);

  const int stopped = signals.wait();
  calling.reset();  // (its calls after the servers stopped fail: no_server)
  fmt::print(stderr, "-- stopped ({})\n", stopped == SIGINT ? "SIGINT" : stopped == SIGTERM ? "SIGTERM" : "stop_all");
  or_exit(signals.outcome(), "stop_all");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool development = std::erase(args, "--development") > 0;
  std::vector<std::string> trusted_keys;  // each --trusted-key FILE's PEM
  for (auto key = std::find(args.begin(), args.end(), "--trusted-key"); key != args.end();
       key = std::find(args.begin(), args.end(), "--trusted-key")) {
    if (key + 1 == args.end()) {
      fmt::print(stderr, "anemone: --trusted-key needs a public key's file\n");
      return 64;
    }
    std::ifstream file(key[1]);
    if (!file) {
      fmt::print(stderr, "anemone: cannot read the trusted key {}\n", key[1]);
      return 1;
    }
    trusted_keys.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    args.erase(key, key + 2);
  }
  const bool with_client = std::erase(args, "--client") > 0;
  if (std::erase(args, "--serve") > 0)
    return serve(Period{args.size() > 0 ? std::atoi(args[0].c_str()) : 1000},
                 args.size() > 1 ? args[1] : ANEMONE_MODULES_DIR, development, std::move(trusted_keys), with_client);
  const bool downgrade = std::erase(args, "--downgrade") > 0;
  const int ticks = args.size() > 0 ? std::atoi(args[0].c_str()) : 5;
  const Period period{args.size() > 1 ? std::atoi(args[1].c_str()) : 1000};
  const std::string modules = args.size() > 2 ? args[2] : ANEMONE_MODULES_DIR;

  anemone_2 program(period, modules);
  auto& [code, releases, manager, inspector] = program;
  run::wait_for_ticks(manager, inspector, ticks, period);

  // Release anemone 3 arrives while v2 serves on. Its modules load outside the pause; the line
  // at the commit is printed while both servers are still suspended: every tick before it is
  // v2's, after it v3's.
  std::string_view committed = "-- upgraded account_manager and inspector to v3 (suspend, change_code, resume)";
  hotswap::upgrade_options options;
  options.progress = [&](hotswap::upgrade_stage stage, const std::string& line) {
    if (stage == hotswap::upgrade_stage::commit)
      fmt::print("{}\n", committed);
    else if (stage == hotswap::upgrade_stage::load || stage == hotswap::upgrade_stage::purge)
      fmt::print("-- {}\n", line);  // loaded anemone.inspector vsn 3; purged anemone.inspector vsn 2
  };
  const auto report = releases.upgrade(modules + "/anemone-3.release.json", options);
  if (!report) or_exit(report.outcome, "upgrade");
  auto upgraded = run::ticks_so_far(manager, inspector);
  fmt::print(stderr, "-- the upgrade (the first in this process: its code and caches were cold):\n{}",
             to_string(report));
  if (!downgrade) {
    or_exit(releases.make_permanent(), "make_permanent");
    run::finish(manager, inspector, ticks, period, upgraded);
    return 0;
  }

  // Back down to release anemone 2, which is still the permanent one.
  run::wait_for_ticks(manager, inspector, ticks, period, upgraded);
  committed = "-- downgraded account_manager and inspector to v2 (release anemone 2 again)";
  const auto downgraded = releases.upgrade(modules + "/anemone-2.release.json", options);
  if (!downgraded) or_exit(downgraded.outcome, "downgrade");
  upgraded = run::ticks_so_far(manager, inspector);
  fmt::print(stderr, "-- the downgrade:\n{}", to_string(downgraded));
  run::finish<AccountManagerV2::state>(manager, inspector, ticks, period, upgraded);
}
