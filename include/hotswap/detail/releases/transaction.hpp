// An upgrade of many servers as one transaction: every server suspended in parallel under one
// deadline, switched in order keeping its old table and state, then all committed or all put
// back as they were. (OTP's release_handler suspends one by one and cannot undo a code_change.)
// A step may also only hold its server: suspended with the others, never changed, and left
// suspended on commit (a server the release stops, or restarts as another); and steps of the
// caller's own (starting the servers that replace them) run after the changes, inside the pause. A
// server that ends before the transaction reaches it fails it, unless its step may end: then it
// is left out (the release handler's servers: a connection closed during the pause).
#pragma once

#include <algorithm>
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
  server_core* server;                // held by the caller's handles
  const implementation_table* table;  // null: the server is only held (suspended, not changed)
  int old_vsn;
  std::shared_ptr<const void> table_owner;
  std::shared_ptr<kept_code> kept = std::make_shared<kept_code>();  // written on the server
  bool may_end = false;    // a server that ends before its suspend or change is left out, not a failure
  bool ended = false;      // ... and this one did (OTP's release_handler, too, skips a process gone)
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

/// What a transaction did: how it failed, if it did, and how long the servers were held (from
/// the first suspend sent to the last resume served; a server still in a handler or a
/// code_change when the transaction gave up on it is resumed as it returns, unwaited).
struct transaction_outcome {
  std::optional<transaction_failure> failed;
  std::chrono::nanoseconds pause{};
};

/// The transaction's times: one deadline for every suspend (and every resume), one for each
/// change of code, and the longest pause it may commit (measured from the first suspend sent),
/// which bounds every wait of the pause too.
struct transaction_limits {
  std::chrono::nanoseconds suspend_timeout, change_timeout, pause_budget;
};

/// What a transaction tells as it goes: all suspended; step i changed; all changed and
/// committed, still suspended.
enum class transaction_event { suspended, changed, committed };

/// The caller's own part of a transaction, inside its pause, every server suspended: `prepare`,
/// after the last change (a failure fails the transaction: what it did is undone by `undo`),
/// `undo`, after a failure, before any server resumes (what `prepare` did, if anything), and
/// `commit`, on success, before any server resumes.
struct transaction_hooks {
  std::function<std::optional<transaction_failure>(std::chrono::steady_clock::time_point budget_end)> prepare;
  std::function<void()> undo;
  std::function<void()> commit;
};

struct core_ref {  // what sent_control and control take: a handle, without a count of its own
  server_core* server;
  explicit operator bool() const noexcept { return server != nullptr; }
  server_core* core() const noexcept { return server; }
};

/// `from + limit`, the far future if that is past what a time point holds (a budget of
/// nanoseconds::max() is no budget).
inline std::chrono::steady_clock::time_point time_after(std::chrono::steady_clock::time_point from,
                                                        std::chrono::nanoseconds limit) {
  using clock = std::chrono::steady_clock;
  if (limit <= std::chrono::nanoseconds::zero()) return from;
  return limit >= clock::time_point::max() - from ? clock::time_point::max() : from + limit;
}

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
/// (the committed event inside the pause). No wait of the pause outlasts the pause budget: a
/// suspend or a change not answered by then, or a change ending past it, fails the transaction
/// at once (errc::over_budget), and the changes after it are not tried.
template <class Tell>
transaction_outcome run_transaction(std::vector<transaction_step>& steps, const transaction_limits& limits, Tell&& tell,
                                    const transaction_hooks& hooks = {}) {
  using clock = std::chrono::steady_clock;
  using std::chrono::microseconds;
  const auto started = clock::now();
  const auto budget_end = time_after(started, limits.pause_budget);
  transaction_outcome outcome;
  std::optional<transaction_failure>& failed = outcome.failed;
  auto fail = [&](std::size_t i, const char* stage, hotswap::error why) {
    if (!failed) failed = transaction_failure{i, stage, std::move(why)};
  };
  auto budget = [&] { return std::to_string(std::chrono::duration_cast<microseconds>(limits.pause_budget).count()); };
  auto over_budget = [&](const std::string& by) {
    const auto paused = std::chrono::duration_cast<microseconds>(clock::now() - started).count();
    fail(no_step, "pause budget",
         hotswap::error{errc::over_budget, "the pause reached " + std::to_string(paused) + " us by " + by +
                                               ", over its budget of " + budget() + " us"});
  };
  // A wait that ended at the budget's deadline rather than its own is the budget's failure.
  auto late = [&](const hotswap::error& why, clock::time_point own_deadline) {
    return why.code == errc::timeout && budget_end < own_deadline
               ? hotswap::error{errc::over_budget, "no answer within the pause budget of " + budget() +
                                                       " us (the server is resumed as it returns)"}
               : why;
  };
  // Servers the transaction gave up waiting for (in a handler or a code_change past its
  // deadline): their resume is sent, not waited for.
  std::vector<bool> stuck(steps.size(), false);

  // Suspend all, in parallel: a server busy past the deadline (the earlier of the suspend
  // timeout and the pause budget) fails the whole transaction.
  auto suspend = [](server_core& core) -> result<void> {
    core.suspended = true;
    return {};
  };
  const auto suspend_deadline = time_after(started, limits.suspend_timeout);
  to_every_server(steps, std::min(suspend_deadline, budget_end), suspend, [&](std::size_t i, result<void> answer) {
    if (answer) return;
    if (answer.error().code == errc::no_server && steps[i].may_end) {
      steps[i].ended = true;
      return;
    }
    stuck[i] = answer.error().code == errc::timeout;
    fail(i, "suspend", late(answer.error(), suspend_deadline));
  });
  if (!failed && clock::now() > budget_end) over_budget("the last suspend");
  if (!failed) tell(transaction_event::suspended, no_step);

  // Switch each, in order, keeping what it ran; the budget is checked after each.
  for (std::size_t i = 0; i < steps.size() && !failed; ++i) {
    transaction_step& step = steps[i];
    if (!step.table || step.ended) continue;  // held only, or left out
    step.attempted = true;
    const auto started = clock::now();
    const auto change_deadline = time_after(started, limits.change_timeout);
    auto switched = control<void>(
        core_ref{step.server}, std::max<std::chrono::nanoseconds>(std::min(change_deadline, budget_end) - started, {}),
        [table = step.table, vsn = step.old_vsn, owner = step.table_owner, kept = step.kept](server_core& core) mutable
        -> result<void> { return switch_code(core, *table, vsn, {}, std::move(owner), *kept); });
    step.switch_time = clock::now() - started;
    if (!switched && switched.error().code == errc::no_server && step.may_end) {  // it ended while suspended
      step.ended = true;
      step.attempted = false;
      step.switch_time = {};
    } else if (!switched) {
      stuck[i] = switched.error().code == errc::timeout;
      fail(i, "change_code", late(switched.error(), change_deadline));
    } else if (clock::now() > budget_end) {
      over_budget("the change_code of step " + std::to_string(i + 1) + " of " + std::to_string(steps.size()));
    } else {
      tell(transaction_event::changed, i);
    }
  }
  bool prepared = false;
  if (!failed && hooks.prepare) {
    prepared = true;
    if (auto refused = hooks.prepare(budget_end)) fail(refused->step, refused->stage, std::move(refused->failure));
    if (!failed && clock::now() > budget_end) over_budget("the servers it restarts");
  }
  if (!failed && hooks.commit) hooks.commit();
  if (!failed) tell(transaction_event::committed, no_step);

  // Undo, last first, on each server that switched or may have (a switch that timed out may run
  // later: the revert runs after it, in the server's sys lane). A server that stopped meanwhile
  // has nothing to put back; what it kept goes with the steps. Sent, not waited for: each
  // server's resume, sent after, answers once its revert ran.
  auto revert = [](std::shared_ptr<kept_code> kept) {
    return [kept = std::move(kept)](server_core& core) -> result<void> {
      if (kept->table) revert_code(core, *kept);
      return {};
    };
  };
  if (failed && prepared && hooks.undo) hooks.undo();
  if (failed)
    for (std::size_t i = steps.size(); i-- > 0;)
      if (steps[i].attempted) {
        const sent_control<void, decltype(revert(nullptr))> sent(core_ref{steps[i].server}, revert(steps[i].kept));
      }

  // Resume all, in parallel (a suspend that timed out may yet take effect: it is resumed too):
  // the messages sent meanwhile are handled now, in order. Each resume says when it ran: the
  // pause ends at the last. A server only held stays suspended on commit: the caller's.
  auto resume = [](server_core& core) -> result<clock::time_point> {
    core.suspended = false;
    return clock::now();
  };
  std::vector<sent_control<clock::time_point, decltype(resume)>> resumed;
  resumed.reserve(steps.size());
  const auto kept_suspended = [&](const transaction_step& step) { return !failed && !step.table; };
  for (auto& step : steps)
    resumed.emplace_back(core_ref{kept_suspended(step) || step.ended ? nullptr : step.server}, resume);
  auto last = started;
  const auto resume_deadline = time_after(clock::now(), limits.suspend_timeout);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (stuck[i] || kept_suspended(steps[i]) || steps[i].ended) continue;  // freed by the server once served
    if (auto ran = resumed[i].wait_until(resume_deadline)) last = std::max(last, *ran);
  }
  outcome.pause = last - started;

  // The old states go only now, after the pause, as the caller lets go of the steps (or as a
  // request that timed out lets go of its share).
  return outcome;
}

}  // namespace hotswap::detail
