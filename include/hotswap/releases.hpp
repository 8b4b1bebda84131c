// Releases (OTP's release_handler): many servers upgraded as one transaction. Every server is
// suspended in parallel under one deadline, each switched in the order given keeping its old
// table and state, then all committed and resumed; if any step fails, every server is put back
// on its old table with its old state (the same object, not a round trip through a downgrade)
// and resumed. Messages sent to them meanwhile are handled after, in order, whatever the outcome.
//
//     std::vector<hotswap::upgrade_step> steps{{accounts, table_of<AccountsV3>, 2},
//                                              {inspector, inspector_v3_module, 2}};
//     hotswap::upgrade_report report = hotswap::upgrade(steps);
//     if (!report) fmt::print("{}\n", report.outcome);  // every server runs as before
//
// Not included by <hotswap/hotswap.hpp>: include it where releases are handled.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "detail/releases/transaction.hpp"
#include "modules.hpp"
#include "result.hpp"
#include "servers.hpp"

namespace hotswap {

// -- a step --

/// One server's part in an upgrade: the table it moves to, and the vsn it runs now (as
/// sys::change_code takes them).
class upgrade_step {
 public:
  upgrade_step(any_server server, const implementation_table& table, int old_vsn)
      : server_(std::move(server)), table_(&table), old_vsn_(old_vsn) {}
  /// To a loaded module's table: the server then keeps that version loaded.
  upgrade_step(any_server server, const module_ptr& code, int old_vsn)
      : server_(std::move(server)), code_(code), old_vsn_(old_vsn) {}

  const any_server& server() const noexcept { return server_; }
  /// The table, or (null) the module whose table it is.
  const implementation_table* table() const noexcept { return table_; }
  const module_ptr& module() const noexcept { return code_; }
  int old_vsn() const noexcept { return old_vsn_; }

 private:
  any_server server_;
  const implementation_table* table_ = nullptr;
  module_ptr code_;
  int old_vsn_;
};

// -- running one --

struct upgrade_options {
  /// One deadline for every suspend: a server still busy in a handler then fails the upgrade.
  std::chrono::nanoseconds suspend_timeout = default_timeout;
  /// For each server's change of code.
  std::chrono::nanoseconds change_timeout = default_timeout;
};

/// What an upgrade did.
struct upgrade_report {
  struct step {
    std::uint64_t server;           ///< its id
    int from_vsn;                   ///< the vsn it ran
    std::string to;                 ///< the implementation it was to run,
    int to_vsn;                     ///< and its vsn
    std::chrono::nanoseconds time;  ///< its change of code, the state's migration included (0: not tried)
  };
  /// Done, or why not: which step failed, at which stage, and why (every server is then as before).
  result<void> outcome;
  std::vector<step> steps;
  /// From the first suspend sent to the last resume answered: how long the servers held their
  /// messages.
  std::chrono::nanoseconds pause{};

  explicit operator bool() const noexcept { return outcome.has_value(); }
};

/// Upgrades the servers of `steps` as one transaction (see the top of this header).
inline upgrade_report upgrade(const std::vector<upgrade_step>& steps, const upgrade_options& options = {}) {
  upgrade_report report;
  auto failure = [&](std::size_t i, const char* stage, const error& why) {
    return error{why.code, "step " + std::to_string(i + 1) + " of " + std::to_string(steps.size()) + " (server " +
                               std::to_string(steps[i].server().id()) + ", " + stage +
                               "): " + (why.what.empty() ? std::string(to_string(why.code)) : why.what) +
                               "; every server runs its old code with its old state"};
  };
  std::vector<detail::transaction_step> run;
  run.reserve(steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const upgrade_step& step = steps[i];
    detail::transaction_step one{step.server().core(), step.table(), step.old_vsn(), {}};
    if (!one.table) {
      auto leased = detail::lease_to_server(step.module(), step.server().core());
      if (!leased) {
        report.outcome = failure(i, "lease", leased.error());
        return report;
      }
      one.table = leased->table;
      one.table_owner = std::move(leased->lease);
    }
    run.push_back(std::move(one));
  }
  const auto started = std::chrono::steady_clock::now();
  const auto failed = detail::run_transaction(run, options.suspend_timeout, options.change_timeout);
  report.pause = std::chrono::steady_clock::now() - started;
  if (failed) report.outcome = failure(failed->step, failed->stage, failed->failure);
  for (std::size_t i = 0; i < run.size(); ++i)
    report.steps.push_back({steps[i].server().id(), steps[i].old_vsn(), std::string(run[i].table->name),
                            run[i].table->vsn, run[i].switch_time});
  return report;
}

}  // namespace hotswap
