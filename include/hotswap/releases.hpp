// Releases (OTP's release_handler): a program's modules upgraded together, as one transaction.
//
// A release is a name, a vsn and its modules' files, in a manifest hotswap_add_release writes.
// The release handler derives the plan from what the program runs (the modules that differ, the
// servers on each, their vsns and states), validates it whole before anything moves, loads the
// new modules outside the pause, and upgrades every server in one transaction: all suspended in
// parallel under one deadline, each switched keeping its old table and state, then all committed
// and resumed, or (any step failing, or the pause over its budget) all put back on their old
// tables with their old states (the same objects, not a round trip through a downgrade) and
// what was loaded unloaded. Messages sent meanwhile are handled after, in order, whatever the
// outcome.
//
//     hotswap::code_server code;
//     hotswap::release_handler releases(code);
//     releases.boot("modules/anemone-2.release.json").value();   // loads its modules
//     auto manager = hotswap::start<Accounts>(code.current("anemone.account_manager")).value();
//     ...
//     hotswap::upgrade_report report = releases.upgrade("modules/anemone-3.release.json");
//     fmt::print("{}", to_string(report));                        // each step, its time, the pause
//
// hotswap::upgrade(steps) runs the same transaction over steps written by hand.
//
// Not included by <hotswap/hotswap.hpp>: include it where releases are handled.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "detail/modules/probation.hpp"
#include "detail/releases/grace_period.hpp"
#include "detail/releases/manifest.hpp"
#include "detail/releases/release_archive.hpp"
#include "detail/releases/release_record.hpp"
#include "detail/releases/transaction.hpp"
#include "detail/releases/unpacked.hpp"
#include "modules.hpp"
#include "result.hpp"
#include "servers.hpp"
#include "supervisors.hpp"
#include "sys.hpp"

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

/// The stages of an upgrade, as upgrade_options::progress hears of them.
enum class upgrade_stage { load, start, suspend, change_code, restart, commit, resume, stop, purge, rollback, apply };

constexpr std::string_view to_string(upgrade_stage stage) noexcept {
  switch (stage) {  // no default: -Wswitch names a stage missing here
    case upgrade_stage::load:
      return "load";
    case upgrade_stage::start:
      return "start";
    case upgrade_stage::restart:
      return "restart";
    case upgrade_stage::stop:
      return "stop";
    case upgrade_stage::suspend:
      return "suspend";
    case upgrade_stage::change_code:
      return "change_code";
    case upgrade_stage::commit:
      return "commit";
    case upgrade_stage::resume:
      return "resume";
    case upgrade_stage::purge:
      return "purge";
    case upgrade_stage::rollback:
      return "rollback";
    case upgrade_stage::apply:
      return "apply";
  }
  return "?";
}

struct upgrade_options {
  /// One deadline for every suspend: a server still busy in a handler then fails the upgrade.
  std::chrono::nanoseconds suspend_timeout = default_timeout;
  /// For each server's change of code.
  std::chrono::nanoseconds change_timeout = default_timeout;
  /// The longest pause the upgrade may commit, measured from the first suspend: it bounds the
  /// wait for every suspend and change of code (the earlier of it and their own timeouts), and is
  /// checked after the suspends and after each change; over it, the changes after are not tried
  /// and every server is put back as it was and resumed (errc::over_budget). A code_change that
  /// runs past it holds its own server until it returns (it cannot be interrupted), no other.
  std::chrono::nanoseconds pause_budget = std::chrono::nanoseconds::max();
  /// Told of each stage as it happens, with a line saying what happened. The commit is told
  /// inside the pause, before any server resumes: keep it short. Never called after the call
  /// that took it returns (a rollback after a crash in a grace period is told to
  /// release_handler_options::log).
  std::function<void(upgrade_stage, const std::string&)> progress{};
  /// A release handler's upgrade only: for this long after it, the release is on probation. A
  /// handler of a server it upgraded that throws puts that server back on its version before,
  /// its state migrated back (as the development watch does), and rolls the whole release back
  /// by itself; a server that crashes otherwise rolls it back too. The versions before stay
  /// loaded until the period ends (by its time, make_permanent or another upgrade), then are
  /// purged. 0: no grace period, and they are purged at once.
  std::chrono::nanoseconds grace_period{};
  /// Measures each upgraded server's state for the report, after the resume, on the server: a
  /// walk of its fields (a state of a million elements takes milliseconds of the server's time,
  /// none of the pause). false skips it.
  bool state_sizes = true;
};

/// What an upgrade did.
struct upgrade_report {
  struct step {
    std::uint64_t server;           ///< its id
    std::string server_label;       ///< `server 4 (name)`
    int from_vsn;                   ///< the vsn it ran
    std::string to;                 ///< the implementation it was to run,
    int to_vsn;                     ///< and its vsn
    std::chrono::nanoseconds time;  ///< its change of code, the state's migration included (0: not tried)
    /// The bytes of the state it runs after (a dry run's: would run), estimated by a walk of its
    /// fields (0: not measured; see upgrade_options::state_sizes).
    std::size_t state_bytes = 0;
  };
  /// Done, or why not: which step failed, at which stage, and why (every server is then as before).
  result<void> outcome;
  std::vector<step> steps;
  /// From the first suspend sent to the last resume served: how long the servers held their
  /// messages (one still in a handler when the upgrade stopped waiting is resumed as it returns).
  std::chrono::nanoseconds pause{};
  /// What the upgrade left for later, if anything: an old version still used, so not purged.
  std::vector<std::string> notes;
  /// The servers the release started, stopped and restarted, a line each (`started leaderboard
  /// (server 9) on tally vsn 1`); a dry run's: what it would do.
  std::vector<std::string> servers;
  /// The steps of its modules the release ran (its "apply"), a line each (`applied
  /// tally:warm_cache before_suspend in 12 us`); a dry run's: what it would run (it runs none).
  std::vector<std::string> applied{};
  /// A dry run's report: each step's time is its migration's, made and thrown away, and the
  /// pause their sum (the pause to expect, the suspends and resumes aside).
  bool dry_run = false;

  explicit operator bool() const noexcept { return outcome.has_value(); }
};

/// The report as a table: a line per step (server, vsns, implementation, time, state), then the
/// pause and the outcome.
inline std::string to_string(const upgrade_report& report);

/// Upgrades the servers of `steps` as one transaction (see the top of this header).
inline upgrade_report upgrade(const std::vector<upgrade_step>& steps, const upgrade_options& options = {});

// -- releases --

/// A server a release starts: registered as `name`, on the release's version of `module`.
using server_start = detail::server_start;
/// A step of a module a release runs: the step `step` (HOTSWAP_MODULE_STEP) of the release's
/// version of `module`, at the point `at` of the upgrade: "before_suspend" (after the loads and
/// the servers it starts, before the pause: its failure leaves the program as it was) or
/// "after_commit" (after the resume: its failure rolls the release back to the permanent one).
using apply_step = detail::apply_step;

/// A child a release puts under a running supervisor: `id`, a server on `module` (its current
/// version at each start), registered as `name` (none if empty), restarted as `restart` says
/// ("permanent", "transient" or "temporary"), given `shutdown_ms` to stop (0: brutal_kill).
using supervised_child = detail::supervised_child;
/// What a release changes of the children of the supervisor registered as `supervisor` (OTP's
/// {update, Mod, supervisor}): the `children` it adds or whose specs it replaces (by id), and
/// those it `remove`s.
using supervisor_change = detail::supervisor_change;

/// A release: a name, a vsn and its modules' files, as its manifest says, the servers it starts,
/// stops and restarts (by registered name; OTP's add_application, remove_application and
/// restart_application), its modules' steps it runs (OTP's apply), the supervisors it changes.
struct release {
  std::string name, vsn;
  std::vector<std::string> modules;  ///< the module files
  std::string manifest;              ///< the file it was read from
  std::vector<server_start> start{};
  std::vector<std::string> stop{}, restart{};
  std::vector<apply_step> apply{};
  std::vector<supervisor_change> supervisors{};
};

/// Reads the release manifest in `path` (errc::bad_release, saying why, if it cannot).
inline result<release> read_release(const std::string& path);

/// As Erlang's release_handler:which_releases/0 says: the release the program runs and boots
/// is permanent; one installed since, not yet made permanent, is current; one left is old; one
/// put in place by unpack and not yet installed is unpacked.
enum class release_status { permanent, current, old, unpacked };

constexpr std::string_view to_string(release_status status) noexcept {
  switch (status) {
    case release_status::permanent:
      return "permanent";
    case release_status::current:
      return "current";
    case release_status::old:
      return "old";
    case release_status::unpacked:
      return "unpacked";
  }
  return "?";
}

struct release_info {
  std::string name, vsn;
  release_status status;
};

/// What remove_release did: the files it deleted, and what it kept and why.
struct remove_report {
  std::string name, vsn;
  std::vector<std::string> removed;
  std::vector<std::string> notes;
};

/// What a boot did: the release it booted, and what it left undone.
struct boot_report {
  std::string name, vsn;
  /// What it could not do, the release running all the same: the record not written.
  std::vector<std::string> notes;
};

// -- plans --

/// What an upgrade to a release will do, derived from what the program runs: each module that
/// differs, in the release's order, with the servers on it.
struct release_plan {
  struct server_step {
    any_server server;
    std::string label;  ///< `server 4 (name)`
    int from_vsn;       ///< the vsn it runs
  };
  struct module_step {
    std::string module;
    int from_vsn;  ///< 0: not loaded yet
    int to_vsn;
    std::string file;
    std::vector<server_step> servers;  ///< upgraded in this order, after those of earlier steps
    /// Its version is loaded and current already (code_server::load before the upgrade): only
    /// the servers still on the old version move, to it.
    bool loaded = false;
    /// Back to the version kept loaded since the upgrade in its grace period (a rollback): it
    /// is not loaded again, and is current again once its servers are on it.
    bool back = false;
  };
  /// A server the release starts, before the pause, on its version of `module` (stopped again if
  /// the upgrade fails). Going back to the permanent release, `held` is the server that release
  /// stopped, kept suspended in its grace period: resumed with its state instead.
  struct start_step {
    std::string name;  ///< registered as
    std::string module;
    int vsn;
    any_server held{};
  };
  /// A server the release stops: held with the others in the pause, stopped after the commit
  /// (terminate runs, reason shutdown), or, in a grace period, kept suspended (its name free)
  /// until the period ends, so that a rollback resumes it with its state.
  struct stop_step {
    std::string name;
    any_server server;
    std::string label;   ///< `server 4 (name)`
    std::string module;  ///< the module it runs (empty: none), and its vsn
    int vsn;
  };
  /// A server the release restarts: held in the pause, another started on the release's version
  /// of its module, registered under its name at the commit; the old one ends after.
  struct restart_step {
    std::string name;
    any_server server;
    std::string label;
    std::string module;
    int from_vsn, to_vsn;
    /// Empty: the new server's state is made from the old one's (as an upgrade in place makes it,
    /// the old one ending without its terminate); else why not, and the new server starts from
    /// its init (the old one stopped as a stop stops it).
    std::string state_lost{};
  };

  /// A step of a module the release runs, at `at`, on the release's version of `module` (`vsn`).
  /// Going back to the permanent release, none runs (a step cannot be undone).
  struct apply_plan {
    std::string module, step, at;
    int vsn;
  };

  /// What the release changes of a running supervisor's children (as change_children): `put`
  /// before the pause, `remove` after the commit. A failure before the commit puts the specs
  /// back and stops those added. `lines` says what each of `put`, then of `remove`, is.
  struct supervisor_step {
    std::string supervisor;  ///< registered as
    server_ref<supervisor_interface> server;
    std::vector<child_spec> put;
    std::vector<std::string> remove;
    std::vector<std::string> lines;  ///< `add child leaderboard: leaderboard vsn 1, registered as leaderboard`
  };

  release from, to;
  std::vector<module_step> changes;
  std::vector<start_step> starts{};
  std::vector<stop_step> stops{};
  std::vector<restart_step> restarts{};
  std::vector<apply_plan> applies{};  ///< in the manifest's order
  std::vector<supervisor_step> supervisors{};
  std::vector<std::string> retired;  ///< modules `to` does not have and nothing uses: retired, then purged
  std::vector<std::string> modules;  ///< every module of `to`, by name
};

/// The plan, a line for the release, then a line per module and per server.
inline std::string to_string(const release_plan& plan);

// -- the release handler --

/// How a release handler is set up.
struct release_handler_options {
  /// Where it keeps the releases it knows and which is permanent (made, mode 0700, if missing;
  /// refused if another user's or writable by others), so that boot() boots the permanent one
  /// when the program starts again. Empty: nothing is kept.
  std::string directory{};
  /// Told, on the handler's own thread, what it does by itself: the lines of a rollback after a
  /// crash in a grace period, and the purge when the period ends (upgrade_options::progress is
  /// the caller's, and never called after the call that took it returns). Kept, and called, as
  /// long as the handler lives. Default: standard error, `hotswap: release handler: STAGE: LINE`.
  std::function<void(upgrade_stage, const std::string&)> log{};
};

/// Installs releases on a running program, as OTP's release_handler: one per program, beside
/// its code server. Its operations run one at a time. (A template only so that a program
/// compiles it where it uses it: use hotswap::release_handler.)
template <class CodeServer = code_server>
class basic_release_handler {
 public:
  explicit basic_release_handler(CodeServer& code, release_handler_options options = {})
      : code_(code), directory_(std::move(options.directory)), log_(std::move(options.log)) {
    if (!log_)
      log_ = [](upgrade_stage stage, const std::string& line) {
        const std::string said =
            "hotswap: release handler: " + std::string(to_string(stage)) + ": " + detail::visible(line, false) + "\n";
        std::fwrite(said.data(), 1, said.size(), stderr);  // (fmt::print throws when stderr is closed)
      };
  }
  basic_release_handler(const basic_release_handler&) = delete;
  basic_release_handler& operator=(const basic_release_handler&) = delete;
  /// A rollback under way finishes first; no other starts, and no server goes back any more. The
  /// servers a release stopped in its grace period, held since, are stopped for good.
  ~basic_release_handler() {
    grace_->stop();
    guard_probation(false);
    unwatch_grace();
    for (const auto& held : probation_.held) (void)hotswap::stop(held.second, exit_reason{exit_kind::shutdown, {}});
    const std::lock_guard gone(link_->lock);
    link_->code = nullptr;
  }

  /// Loads the modules of the release in `manifest` (a program's first release), which becomes
  /// permanent (and is recorded so, given a directory). A module that fails to load unloads
  /// those loaded before it. A record that cannot be written is a note: the release runs.
  result<boot_report> boot(const std::string& manifest);

  /// Boots the release recorded permanent in the handler's directory, as Erlang boots a node:
  /// a program started again runs the release it last made permanent (one installed but not
  /// made permanent, in its grace period, is not booted: it is recorded old). Refused
  /// (errc::bad_release) if its manifest now names another release, or other builds of its
  /// modules than it ran with. The record is written only if this changes it (a release
  /// recorded current is now old); a write that fails is a note, not a refusal.
  result<boot_report> boot();

  /// Every release known, the permanent one first, as Erlang's which_releases.
  std::vector<release_info> which_releases() const;

  /// Derives the plan to the release in `manifest` and validates it whole: refused
  /// (errc::plan_refused) with every reason at once if a module file fails the code server's
  /// checks (ABI, seal, interface, schemas against the program, a newer vsn, an old version
  /// still used), if a running server's vsn and state are not in its new version's
  /// state_history, if two of the release's modules disagree on a schema, or if servers use a
  /// module the release does not have. Nothing is loaded or changed. `timeout`: for asking each
  /// server its vsn and state.
  result<release_plan> plan(const std::string& manifest, std::chrono::nanoseconds timeout = default_timeout);

  /// Plans the upgrade to the release in `manifest`, then runs it: loads its new modules
  /// (outside the pause), upgrades every server of the plan as one transaction, purges the
  /// versions left unused. The release becomes current (make_permanent makes it permanent).
  /// On any failure the program runs its release as before, and the report says why.
  upgrade_report upgrade(const std::string& manifest, const upgrade_options& options = {});

  /// Tries the upgrade to the release in `manifest` and changes nothing: plans it, loads its new
  /// modules, has each server of the plan make (between its messages, not suspended) the state
  /// its new version would make from its own, times it and throws it away, then unloads the
  /// modules (the schema versions they brought stay registered: they agreed with the program's).
  /// Fails where the upgrade would: the plan, a load, a code_change.
  upgrade_report dry_run(const std::string& manifest, const upgrade_options& options = {});

  /// Goes back from the current release to the permanent one (a downgrade where its modules are
  /// older), ending the grace period: every server keeps its state, migrated down.
  upgrade_report rollback(const upgrade_options& options = {});

  /// Makes the current release permanent: the release the program boots, and the end of its
  /// grace period. The permanent one before it becomes old.
  result<void> make_permanent();

  /// Forgets the release `name` `vsn` (OTP's remove_release): refused (errc::no_release) if it is
  /// not known, permanent or current. Its record goes first; then, only if unpack put it in
  /// place, the files of its own directory (`DIRECTORY/unpacked/NAME-VSN/`, in the handler's)
  /// that no other known release's manifest names, and that directory once empty. Files anywhere
  /// else are never deleted, whoever wrote them (a release of hotswap_add_release keeps its
  /// build's files); a file it keeps, and why, is a note.
  result<remove_report> remove_release(const std::string& name, const std::string& vsn);

  /// Puts the release shipped in the archive `archive` in place (OTP's unpack_release): reads it
  /// as detail/releases/release_archive.hpp says (hostile until checked: bounded, flat, regular
  /// files only) into a fresh directory in the handler's, checks that it holds its manifest, the
  /// modules it names and nothing else, that its signature verifies by a key the code server
  /// trusts (required when the code server has trusted keys), and each module's seal, signature
  /// and note as load reads them; then moves it to `DIRECTORY/unpacked/NAME-VSN/` and records the
  /// release unpacked, with its modules' builds. Any refusal leaves nothing behind. Returns the
  /// release: upgrade(its manifest) installs it. Needs a directory (errc::no_release).
  result<release> unpack(const std::string& archive);

 private:
  struct known : release {
    release_status status;
    std::vector<std::string> module_names = {};                    // of a release that ran here (what a plan compares)
    std::vector<std::pair<std::string, std::string>> builds = {};  // (module, build), sorted; none: not known
  };
  using access = detail::code_server_access<void>;

  static upgrade_report refused(error why);

  typename std::vector<known>::iterator find(release_status status) {
    return std::find_if(releases_.begin(), releases_.end(), [&](const known& one) { return one.status == status; });
  }
  /// The release running now: the current one, else the permanent one.
  const known* running();

  /// Boots the release in `manifest`; `pinned`: as the record says it (its name, vsn and
  /// builds must be the manifest's), with the rest of `recorded`, old now.
  result<boot_report> boot_locked(const std::string& manifest, const detail::recorded_release* pinned,
                                  const std::vector<detail::recorded_release>& recorded);

  using builds = std::vector<std::pair<std::string, std::string>>;  // (module, build)
  static release as_recorded(const detail::recorded_release& one) { return {one.name, one.vsn, {}, one.manifest}; }
  static builds sorted(builds modules);
  /// What differs between the builds `release` ran with, `ran`, and `now` (empty: nothing).
  static std::string changed_builds(const release& release, const builds& ran, const builds& now);

  /// The releases known, as the record holds them.
  std::vector<detail::recorded_release> entries() const;

  /// Writes the releases known to the handler's directory, if it has one.
  result<void> record() const;

  upgrade_report rollback_locked(upgrade_options options);

  /// On the grace watch's thread: a server upgraded in `generation` crashed, or went back to
  /// its version before when a handler threw.
  void roll_back_after_crash(std::uint64_t generation, const std::string& why);
  /// On the grace watch's thread: the grace period of `generation` ended by its time.
  void grace_ended(std::uint64_t generation);
  /// Puts the guards of the last upgrade's probation on its servers (`on`), or takes them off.
  void guard_probation(bool on);
  /// The servers on a version the probation keeps: those that went back after a failure.
  std::string went_back();
  /// Ends the probation of the last upgrade: its guards go, and the versions it kept loaded are
  /// purged, but for those in `still` (the new upgrade's). Tells `tell` what it purged.
  void end_probation(const std::vector<std::string>& still,
                     const std::function<void(upgrade_stage, const std::string&)>& tell);

  /// The plan to the release in `manifest`; `expected`: the release known that it must still be
  /// (a rollback's). A release known by its name and vsn must still hold the builds it ran with.
  result<release_plan> plan_locked(const std::string& manifest, std::chrono::nanoseconds timeout,
                                   const known* expected = nullptr);

  /// The change that moves the servers still on the old version of a module to its current
  /// one, which the release names (`note`, read from `file`): loaded already by hand
  /// (code_server::load), it would otherwise be taken as running while they stay behind. None
  /// if no server is left on the old version; each one that cannot move is a reason.
  std::optional<release_plan::module_step> servers_left(const detail::module_note_fields& note, const std::string& file,
                                                        const module_ptr& now, std::chrono::nanoseconds timeout,
                                                        std::vector<std::string>& reasons);

  upgrade_report run(const release_plan& plan, const upgrade_options& options);

  /// Moves the servers started on a version the plan leaves after the plan was made (before its
  /// load made the new version current: a supervisor restarting a child, say), in a transaction
  /// of their own, so that no server is left on code about to be purged. Returns the plan with
  /// them in it.
  release_plan move_late_servers(const release_plan& plan, const upgrade_options& options, upgrade_report& report);

  /// The grace period `generation` watches the servers the plan moved and those it `started`: a
  /// crash of any rolls the release back, and each moved is guarded. The monitors of the period
  /// before are taken off.
  void watch_grace(const release_plan& plan, std::uint64_t generation, const std::vector<any_server>& started);
  /// Takes the grace period's monitors off its servers.
  void unwatch_grace();

  /// The servers the release in `target` starts, stops and restarts, into `plan` (going back to
  /// the permanent release, `back`: the undoing of what the releases since did instead); each
  /// that cannot be is a reason. `notes`: the target's modules' notes.
  void plan_server_steps(const release& target, const std::vector<detail::module_note_fields>& notes, bool back,
                         std::chrono::nanoseconds timeout, release_plan& plan, std::vector<std::string>& reasons);
  /// The loaded version `server` runs (its table's), or null.
  module_ptr module_of(const any_server& server, const std::string& implementation) const;
  /// The guards of the servers the plan moves from a version before: a handler of the new code
  /// that throws puts its server back there, and has the release rolled back.
  std::vector<std::pair<any_server, detail::probation_guard>> probation_guards(const release_plan& plan,
                                                                               std::uint64_t generation);

  /// Loads the plan's new modules into `loaded`, in order; if one fails, unloads those before it
  /// and says why in `report`.
  bool load_all(const release_plan& plan, const upgrade_options& options, upgrade_report& report,
                std::vector<module_ptr>& loaded);

  /// Unloads what a failed boot or upgrade loaded, last first (for `plan`'s changes, `loaded[i]`
  /// its i-th's: one loaded before it is kept).
  void undo(std::vector<module_ptr>& loaded, const release_plan* plan = nullptr);

  CodeServer& code_;
  std::string directory_;            // where the record is kept (empty: nowhere)
  detail::record_directory record_;  // it, open (from the first boot)
  std::function<void(upgrade_stage, const std::string&)> log_;
  mutable std::mutex operation_;
  std::vector<known> releases_;    // the permanent one first
  upgrade_options grace_options_;  // the upgrade's whose grace period runs: its rollback's
  /// What the last upgrade's probation holds: the modules whose versions before stay loaded,
  /// and the servers guarded.
  struct probation {
    std::vector<std::string> modules;
    std::vector<std::pair<any_server, detail::probation_guard>> servers;
    std::vector<monitor_ref> monitors;  // on the servers the grace period watches
    /// The servers it stopped, kept suspended (their names free) until it ends: a rollback
    /// resumes them with their states.
    std::vector<std::pair<std::string, any_server>> held;
  } probation_;
  /// Each name a release since the permanent one started, stopped or restarted a server under,
  /// and what ran under it then (`ran`: a server, on `module` if not empty): what going back to
  /// the permanent release puts back.
  struct name_before {
    std::string name;
    bool ran;
    std::string module;
  };
  std::vector<name_before> names_before_;
  /// Each child a release since the permanent one added to a supervisor, changed or removed,
  /// and its spec then (none: it was added): what going back to the permanent release puts back.
  struct child_before {
    std::string supervisor, id;
    std::optional<child_spec> spec;
  };
  std::vector<child_before> children_before_;
  /// How the start functions of the children a release put under supervisors reach the code
  /// server: through this handler, null once it is gone (such a child then fails to start).
  struct code_link {
    explicit code_link(CodeServer* to) : code(to) {}
    std::mutex lock;
    CodeServer* code;
  };
  std::shared_ptr<code_link> link_ = std::make_shared<code_link>(&code_);
  std::shared_ptr<detail::grace_watch> grace_ = std::make_shared<detail::grace_watch>(
      [this](std::uint64_t generation, const std::string& why) { roll_back_after_crash(generation, why); },
      [this](std::uint64_t generation) { grace_ended(generation); });
};

using release_handler = basic_release_handler<>;

}  // namespace hotswap

#include "impl/releases.hpp"
