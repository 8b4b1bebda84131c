// An upgrade of many servers as one transaction: every server suspended in parallel under one
// deadline, switched in order keeping its old table and state, then all committed or all put
// back as they were. (OTP's release_handler suspends one by one and cannot undo a code_change.)
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../../result.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../servers/code_change.hpp"
#include "../servers/control.hpp"

namespace hotswap::detail {

/// One server's part, as the transaction runs it.
struct transaction_step {
  server_core* server;  // held by the caller's handles
  const implementation_table* table;
  int old_vsn;
  std::shared_ptr<const void> table_owner;
  std::shared_ptr<kept_code> kept = std::make_shared<kept_code>();  // written on the server
  bool attempted = false;  // a switch was sent (if it timed out, it may yet run)
  std::chrono::nanoseconds switch_time{};
};

/// Where a transaction failed.
struct transaction_failure {
  std::size_t step;   // the step's index, or no_step: the whole transaction (its pause budget)
  const char* stage;  // "suspend", "change_code" or "pause budget"
  hotswap::error failure;
};
inline constexpr std::size_t no_step = std::size_t(-1);

/// The transaction's times: one deadline for every suspend (and every resume), one for each
/// change of code, and the longest pause it may commit (measured from the first suspend sent).
struct transaction_limits {
  std::chrono::nanoseconds suspend_timeout, change_timeout, pause_budget;
};

/// What a transaction tells as it goes: all suspended; step i changed; all changed and
/// committed, still suspended.
enum class transaction_event { suspended, changed, committed };

struct core_ref {  // what sent_control and control take: a handle, without a count of its own
  server_core* server;
  explicit operator bool() const noexcept { return server != nullptr; }
  server_core* core() const noexcept { return server; }
};

/// Sends `run` (server_core& -> result<Result>) to every step's server at once, then waits for
/// each until `deadline`; `done(i, answer)` sees each answer in order.
template <class Result = void, class Run, class Done>
void to_every_server(std::vector<transaction_step>& steps, std::chrono::steady_clock::time_point deadline, Run run,
                     Done done) {
  std::vector<sent_control<Result, Run>> sent;
  sent.reserve(steps.size());
  for (auto& step : steps) sent.emplace_back(core_ref{step.server}, run);
  for (std::size_t i = 0; i < steps.size(); ++i) done(i, sent[i].wait_until(deadline));
}

/// Runs the transaction; on failure every server is back on its old table with its old state.
/// Every server suspended is resumed, whatever the outcome. `tell(event, step)` runs as it goes
/// (the committed event inside the pause).
template <class Tell>
std::optional<transaction_failure> run_transaction(std::vector<transaction_step>& steps,
                                                   const transaction_limits& limits, Tell&& tell) {
  using clock = std::chrono::steady_clock;
  const auto started = clock::now();
  std::optional<transaction_failure> failed;
  auto fail = [&](std::size_t i, const char* stage, hotswap::error why) {
    if (!failed) failed = transaction_failure{i, stage, std::move(why)};
  };

  // Suspend all, in parallel: a server busy past the deadline fails the whole transaction.
  auto suspend = [](server_core& core) -> result<void> {
    core.suspended = true;
    return {};
  };
  to_every_server(steps, started + limits.suspend_timeout, suspend, [&](std::size_t i, result<void> answer) {
    if (!answer) fail(i, "suspend", answer.error());
  });
  if (!failed) tell(transaction_event::suspended, no_step);

  // Switch each, in order, keeping what it ran.
  for (std::size_t i = 0; i < steps.size() && !failed; ++i) {
    transaction_step& step = steps[i];
    step.attempted = true;
    const auto started = clock::now();
    auto switched = control<void>(core_ref{step.server}, limits.change_timeout,
                                  [table = step.table, vsn = step.old_vsn, owner = step.table_owner,
                                   kept = step.kept](server_core& core) mutable -> result<void> {
                                    return switch_code(core, *table, vsn, {}, std::move(owner), *kept);
                                  });
    step.switch_time = clock::now() - started;
    if (!switched)
      fail(i, "change_code", switched.error());
    else
      tell(transaction_event::changed, i);
  }

  // Over its budget, the pause ends with every server as before: an upgrade never breaks the
  // latency it was given.
  if (const auto paused = clock::now() - started; !failed && paused > limits.pause_budget)
    fail(no_step, "pause budget",
         hotswap::error{errc::over_budget, "the pause reached " + std::to_string(paused.count() / 1000) +
                                               " us by the last change_code, over its budget of " +
                                               std::to_string(limits.pause_budget.count() / 1000) + " us"});
  if (!failed) tell(transaction_event::committed, no_step);

  // Undo, last first, on each server that switched or may have (a switch that timed out may run
  // later: the revert runs after it, in the server's sys lane). A server that stopped meanwhile
  // has nothing to put back; what it kept goes with the steps.
  if (failed)
    for (std::size_t i = steps.size(); i-- > 0;)
      if (steps[i].attempted)
        (void)control<void>(core_ref{steps[i].server}, limits.change_timeout,
                            [kept = steps[i].kept](server_core& core) -> result<void> {
                              if (kept->table) revert_code(core, *kept);
                              return {};
                            });

  // Resume all, in parallel (a suspend that timed out may yet take effect: it is resumed too):
  // the messages sent meanwhile are handled now, in order.
  to_every_server(
      steps, clock::now() + limits.suspend_timeout,
      [](server_core& core) -> result<void> {
        core.suspended = false;
        return {};
      },
      [](std::size_t, const result<void>&) {});

  // The old states go only now, after the pause, as the caller lets go of the steps (or as a
  // request that timed out lets go of its share).
  return failed;
}

}  // namespace hotswap::detail
