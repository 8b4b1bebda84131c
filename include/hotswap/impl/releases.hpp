// The bodies of <hotswap/releases.hpp> (its declarations, documented, are there): an upgrade's
// report and transaction, reading a release, a plan's text, the release handler's operations,
// and what a plan checks of each server. Included by releases.hpp only.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../detail/releases/print_bytes.hpp"
#include "../releases.hpp"

namespace hotswap {

namespace detail {
/// The release handler's way into the code server: a module file's note, read and sealed but
/// not yet checked against the loaded versions; the undoing of a load.
template <class>
struct code_server_access {
  template <class CodeServer>
  static result<module_note_fields> read_note(CodeServer& code, const std::string& path) {
    std::string bytes;
    std::string_view text;
    return code.read_note(path, bytes, text);
  }
  template <class CodeServer>
  static result<module_ptr> load_older(CodeServer& code, const std::string& path) {
    return code.load(path, 0, {}, true);
  }
  template <class CodeServer>
  static void undo_load(CodeServer& code, module_ptr version) {
    code.undo_load(std::move(version));
  }
  /// The keys the code server trusts, or why they are unusable (a key that did not parse).
  template <class CodeServer>
  static const std::vector<evp_key>& trusted(CodeServer& code, std::string& unusable) {
    unusable = code.bad_key_;
    return code.trusted_;
  }
};

/// Why `server` (running vsn `vsn` with a state of fingerprint `state`) cannot change code to
/// the module `note` says (empty: it can): its code_change starts from the vsns its
/// state_history lists, each with the state it names, or from a server holding its very state.
inline std::string refuses_state(const module_note_fields& note, const std::string& label, int vsn,
                                 std::uint64_t state) {
  std::string listed;
  for (const auto& earlier : note.history) {
    if (earlier.vsn == vsn)
      return earlier.state == state ? std::string()
                                    : fmt::format(
                                          "{} vsn {} declares the state of vsn {} as another type than "
                                          "{} holds",
                                          note.name, note.vsn, vsn, label);
    listed += (listed.empty() ? "" : ", ") + std::to_string(earlier.vsn);
  }
  if (note.state == state) return {};  // the same state: handed on as it is
  return fmt::format(
      "{} runs vsn {}, which {} vsn {} cannot change code from: its state_history lists {} (add "
      "hotswap::version<{}, ...> there)",
      label, vsn, note.name, note.vsn, listed.empty() ? std::string("no vsn") : "vsns " + listed, vsn);
}
/// A compile error's name as the note spells it, readable in a message:
/// `hotswap::errors::field_named<'a', 'b'> >` becomes `field_named<"ab">>` (as clang spells it).
inline std::string readable_error(std::string_view spelled) {
  std::string out;
  for (std::size_t i = 0; i < spelled.size();) {
    if (spelled.substr(i).starts_with("hotswap::errors::")) {
      i += std::string_view("hotswap::errors::").size();
    } else if (spelled[i] == '\'' && i + 2 < spelled.size() && spelled[i + 2] == '\'') {
      out += '"';
      for (;;) {  // 'a', 'b', 'c'
        out += spelled[i + 1];
        i += 3;
        if (!spelled.substr(i).starts_with(", '")) break;
        i += 2;
      }
      out += '"';
    } else if (spelled.substr(i).starts_with(" >") && !out.empty() && out.back() == '>') {
      ++i;  // g++'s "> >"
    } else {
      out += spelled[i++];
    }
  }
  return out;
}

/// Why `server` (running `now`, vsn `vsn`) cannot go down to the module `note` says (empty: it
/// can): `now`'s code makes the older state from its own (Erlang's code_change({down, Vsn})), or
/// the older code's state_history lists the server's vsn and state.
inline std::string refuses_down(const module_version& now, const module_note_fields& note, const std::string& label,
                                int vsn, std::uint64_t state) {
  for (const auto& earlier : now.history())
    if (earlier.vsn == note.vsn && earlier.state == note.state) {
      if (earlier.down) return {};
      if (refuses_state(note, label, vsn, state).empty()) return {};
      return fmt::format(
          "{} runs {} vsn {}, which cannot go down to vsn {}: its state does not migrate down by "
          "itself ({}); declare the schema's step rules (hotswap::step)",
          label, now.name(), vsn, note.vsn, readable_error(earlier.not_down));
    }
  if (refuses_state(note, label, vsn, state).empty()) return {};
  return fmt::format(
      "{} runs {} vsn {}, which cannot go down to vsn {}: neither does vsn {} list vsn {} with its "
      "state in its state_history, nor vsn {} list vsn {}",
      label, now.name(), vsn, note.vsn, vsn, note.vsn, note.vsn, vsn);
}
}  // namespace detail

namespace detail {
/// Starts a server on `code`'s table, registered as `name` (none if empty): from its init, which
/// must take no argument, or, given `made`, with that state.
inline result<any_server> start_on_module(const module_ptr& code, const std::string& name, made_state* made) {
  if (!code) return error{errc::no_module, "its module is not loaded"};
  auto leased = made ? result<leased_table>(
                           leased_table{&module_access<module_version>::table(*code), make_lease<module_version>(code)})
                     : lease_to_start<void>(code);
  if (!leased) return leased.error();
  auto started = start_server(*leased->table, nullptr, name, false, std::move(leased->lease),
                              &bind_lease<module_version>, nullptr, made);
  if (!started) return started.error();
  return any_server(*started);
}

/// The spec of a child a release puts under a supervisor: hotswap::module_child's kind, untyped
/// (a release knows modules by name only). Its start function (the program's code, not a
/// module's) starts a server on its module's current version, reaching the code server through
/// `link`, the release handler's: once the handler is gone, it fails.
template <class Link>
child_spec release_child(std::shared_ptr<Link> link, const supervised_child& child) {
  const restart type = child.restart == "transient"   ? restart::transient
                       : child.restart == "temporary" ? restart::temporary
                                                      : restart::permanent;
  return {child.id,
          [link = std::move(link), module = child.module, name = child.name]() -> result<any_server> {
            module_ptr code;
            {
              const std::lock_guard hold(link->lock);
              if (!link->code)
                return error{errc::no_module, "the release handler that put it under its supervisor is gone"};
              code = link->code->current(module);
            }
            if (!code) return error{errc::no_module, module + " is not loaded"};
            return start_on_module(code, name, nullptr);
          },
          type, std::chrono::milliseconds(child.shutdown_ms)};
}

/// A state made from a restarted server's, on it, for the server that replaces it; the same
/// object as the server's own when it is handed on as it is (then it is not destroyed here).
struct handover {
  struct destroy {
    const implementation_table* table;  // null: handed on, the old server's still
    module_ptr code;                    // the code that destroys it, loaded until then
    void operator()(void* state) const noexcept {
      if (table) table->destroy(state);
    }
  };
  std::unique_ptr<void, destroy> state;
  bool handed_on;
  std::shared_ptr<const void> owner;  // the code a state not plain data may point into
};

/// On the restarted server (suspended): the state `code`'s table makes from its own, as a change
/// of code would make it, leaving its own intact.
inline result<handover> hand_over(const any_server& server, const module_ptr& code, int vsn,
                                  std::chrono::nanoseconds timeout) {
  const implementation_table* table = &module_access<module_version>::table(*code);
  return control<handover>(server, timeout, [table, code, vsn](server_core& core) -> result<handover> {
    if (auto fits = check_change(core, *table, vsn); !fits) return fits.error();
    outcome changed;
    void* state = make_state(core, *table, vsn, {}, changed);
    if (changed.failed) return error{errc::code_change_failed, std::move(changed.what)};
    const bool handed_on = state == core.state;
    handover made{std::unique_ptr<void, handover::destroy>(state, {handed_on ? nullptr : table, code}), handed_on, {}};
    if (!core.table->state_is_plain_data && !table->state_is_plain_data)  // as swap_code keeps it
      made.owner = the_runtime().hold_both(core.state_owner, core.table_owner);
    return made;
  });
}

/// On a server a release restarted, at the commit (or on the server that replaced it, when the
/// upgrade fails): ends it, without its terminate when its state lives on in the other (its
/// own, handed on, is not destroyed).
inline void end_replaced(const any_server& server, bool kept, bool handed_on, exit_reason reason,
                         std::chrono::nanoseconds timeout) {
  (void)control<void>(server, timeout,
                      [kept, handed_on, reason = std::move(reason)](server_core& core) -> result<void> {
                        if (kept) {
                          void* state = std::exchange(core.state, nullptr);
                          if (!handed_on && state) core.table->destroy(state);
                        }
                        end_server(core, reason);
                        return {};
                      });
}
}  // namespace detail

namespace detail {
/// The points of an upgrade at which a release runs its modules' steps.
inline constexpr std::string_view apply_points[] = {"before_suspend", "after_commit"};

/// The steps of its modules the release `target` runs, into `plan`; each that cannot be is a
/// reason: a point the handler does not know, a module not in the release (`all_read`: each of
/// its notes was read, else a module missing is its file's reason), a step its module's note
/// does not list.
inline void plan_apply_steps(const release& target, const std::vector<module_note_fields>& notes, bool all_read,
                             release_plan& plan, std::vector<std::string>& reasons) {
  for (const auto& apply : target.apply) {
    const std::string named = fmt::format("apply {}:{} {}", apply.module, apply.step, apply.at);
    const bool known_point =
        std::find(std::begin(apply_points), std::end(apply_points), apply.at) != std::end(apply_points);
    if (!known_point)
      reasons.push_back(
          fmt::format("{}: no point of an upgrade is named {} (before_suspend or after_commit)", named, apply.at));
    const auto note =
        std::find_if(notes.begin(), notes.end(), [&](const auto& one) { return one.name == apply.module; });
    if (note == notes.end()) {
      if (all_read)
        reasons.push_back(
            fmt::format("{}: release {} {} has no module {}", named, target.name, target.vsn, apply.module));
      continue;
    }
    if (std::find(note->steps.begin(), note->steps.end(), apply.step) == note->steps.end()) {
      std::string listed;
      for (const auto& step : note->steps) listed += (listed.empty() ? "" : ", ") + step;
      reasons.push_back(fmt::format("{}: {} vsn {} exports no step {} ({})", named, apply.module, note->vsn, apply.step,
                                    listed.empty() ? "it exports none" : "it exports " + listed));
      continue;
    }
    if (known_point) plan.applies.push_back({apply.module, apply.step, apply.at, note->vsn});
  }
}
}  // namespace detail

inline std::string to_string(const upgrade_report& report) {
  auto micros = [](std::chrono::nanoseconds time) { return std::chrono::duration<double, std::micro>(time).count(); };
  std::string text =
      fmt::format("{:<4} {:<28} {:<9} {:<36} {:>10} {:>10}\n", "step", "server", "vsn", "to", "change", "state");
  for (std::size_t i = 0; i < report.steps.size(); ++i) {
    const auto& step = report.steps[i];
    const std::string change = step.time.count() ? fmt::format("{:.1f} us", micros(step.time)) : "-";
    const std::string state = step.state_bytes ? detail::print_bytes(step.state_bytes) : "-";
    text += fmt::format("{:<4} {:<28} {:<9} {:<36} {:>10} {:>10}\n", i + 1, step.server_label,
                        fmt::format("{} -> {}", step.from_vsn, step.to_vsn), step.to, change, state);
  }
  text += fmt::format("{} {:.1f} us; {}\n", report.dry_run ? "dry run: expected pause" : "pause", micros(report.pause),
                      report ? std::string(report.dry_run ? "nothing changed" : "done") : report.outcome.error().what);
  for (const auto& line : report.servers) text += line + "\n";
  for (const auto& line : report.applied) text += line + "\n";
  for (const auto& note : report.notes) text += note + "\n";
  return text;
}

namespace detail {
/// hotswap::upgrade, and the servers `held` (suspended with the others, never changed, left
/// suspended on commit: those a release stops or restarts), with `hooks` inside the pause. With
/// `leave_out_ended`, a server that ends before its suspend or change is left out, said in a
/// note (the release handler's: a server may end any time; by hand, a step names one that must run).
inline upgrade_report run_upgrade(const std::vector<upgrade_step>& steps, const std::vector<any_server>& held,
                                  const upgrade_options& options, const transaction_hooks& hooks,
                                  bool leave_out_ended = false) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  upgrade_report report;
  auto tell = [&](upgrade_stage stage, const std::string& line) {
    if (options.progress) options.progress(stage, line);
  };
  auto failure = [&](std::size_t i, const char* stage, const error& why) {
    const std::string where = i == detail::no_step ? std::string(stage)
                              : i >= steps.size()  // a server held: one the release stops or restarts
                                  ? "server " + std::to_string(held[i - steps.size()].id()) + " (held, " + stage + ")"
                                  : "step " + std::to_string(i + 1) + " of " + std::to_string(steps.size()) +
                                        " (server " + std::to_string(steps[i].server().id()) + ", " + stage + ")";
    return error{why.code, where + ": " + (why.what.empty() ? std::string(to_string(why.code)) : why.what) +
                               "; every server runs its old code with its old state"};
  };
  std::vector<detail::transaction_step> run;
  run.reserve(steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const upgrade_step& step = steps[i];
    detail::transaction_step one{step.server().core(), step.table(), step.old_vsn(), {}};
    one.may_end = leave_out_ended;
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
    report.steps.push_back({step.server().id(),
                            step.server().core()->label(),
                            step.old_vsn(),
                            std::string(run.back().table->name),
                            run.back().table->vsn,
                            {}});
  }
  for (const auto& server : held) {
    run.push_back({server.core(), nullptr, 0, {}});
    run.back().may_end = leave_out_ended;
  }
  const auto running = [&run] {
    return std::count_if(run.begin(), run.end(), [](const detail::transaction_step& one) { return !one.ended; });
  };
  const auto started = std::chrono::steady_clock::now();
  const auto outcome = detail::run_transaction(
      run, {options.suspend_timeout, options.change_timeout, options.pause_budget},
      [&](detail::transaction_event event, std::size_t i) {
        if (!options.progress) return;
        switch (event) {
          case detail::transaction_event::suspended:
            return tell(upgrade_stage::suspend, fmt::format("suspended {} servers", running()));
          case detail::transaction_event::changed:
            return tell(upgrade_stage::change_code,
                        fmt::format("{}: vsn {} -> {} ({}) in {} us", report.steps[i].server_label, steps[i].old_vsn(),
                                    run[i].table->vsn, run[i].table->name,
                                    duration_cast<microseconds>(run[i].switch_time).count()));
          case detail::transaction_event::committed:
            return tell(upgrade_stage::commit,
                        fmt::format("committed after {} us",
                                    duration_cast<microseconds>(std::chrono::steady_clock::now() - started).count()));
        }
      },
      hooks);
  run.resize(steps.size());  // (the servers held are the caller's)
  report.pause = outcome.pause;
  for (std::size_t i = 0; i < run.size(); ++i) report.steps[i].time = run[i].switch_time;
  const auto changed = static_cast<std::size_t>(running());
  if (const auto& failed = outcome.failed) {
    report.outcome = failure(failed->step, failed->stage, failed->failure);
    tell(upgrade_stage::rollback, report.outcome.error().what);
  } else {
    tell(upgrade_stage::resume,
         fmt::format("resumed {} servers: paused {} us", changed, duration_cast<microseconds>(report.pause).count()));
    if (options.state_sizes)  // after the pause, all at once
      detail::to_every_server<std::size_t>(
          run, std::chrono::steady_clock::now() + options.change_timeout,
          [](detail::server_core& core) -> result<std::size_t> { return core.table->state_bytes(core.state); },
          [&](std::size_t i, const result<std::size_t>& bytes) {
            if (bytes) report.steps[i].state_bytes = *bytes;
          });
  }
  if (changed < run.size()) {  // the steps of the servers left out go, said in a note each
    std::size_t kept = 0;
    for (std::size_t i = 0; i < run.size(); ++i) {
      if (!run[i].ended) {
        if (kept != i) report.steps[kept] = std::move(report.steps[i]);
        ++kept;
        continue;
      }
      report.notes.push_back(fmt::format("{} ended before its change to {} vsn {}: left out",
                                         report.steps[i].server_label, report.steps[i].to, report.steps[i].to_vsn));
    }
    report.steps.resize(kept);
  }
  return report;
}
}  // namespace detail

inline upgrade_report upgrade(const std::vector<upgrade_step>& steps, const upgrade_options& options) {
  return detail::run_upgrade(steps, {}, options, {});
}

inline result<release> read_release(const std::string& path) {
  auto read = detail::read_manifest(path);
  if (!read) return read.error();
  return release{std::move(read->name),    std::move(read->vsn),   std::move(read->modules),
                 std::move(read->path),    std::move(read->start), std::move(read->stop),
                 std::move(read->restart), std::move(read->apply), std::move(read->supervisors)};
}

inline std::string to_string(const release_plan& plan) {
  std::string text = fmt::format("release {} {} -> {} {}\n", plan.from.name, plan.from.vsn, plan.to.name, plan.to.vsn);
  for (const auto& change : plan.changes) {
    text += fmt::format("  {} {} -> {} ({}{})\n", change.module,
                        change.from_vsn ? std::to_string(change.from_vsn) : std::string("new"), change.to_vsn,
                        change.file, change.back ? "; loaded still, since the upgrade" : "");
    for (const auto& server : change.servers)
      text += fmt::format("    {}: vsn {} -> {}\n", server.label, server.from_vsn, change.to_vsn);
  }
  for (const auto& start : plan.starts)
    text += start.held ? fmt::format("  start {}: {} resumed, its state kept since it was stopped\n", start.name,
                                     start.held.core()->label())
                       : fmt::format("  start {}: {} vsn {}\n", start.name, start.module, start.vsn);
  for (const auto& stop : plan.stops) text += fmt::format("  stop {}: {}\n", stop.name, stop.label);
  for (const auto& restart : plan.restarts)
    text += fmt::format("  restart {}: {}, {} vsn {} -> {}, {}\n", restart.name, restart.label, restart.module,
                        restart.from_vsn, restart.to_vsn,
                        restart.state_lost.empty() ? std::string("its state handed over")
                                                   : "state not kept (" + restart.state_lost + ")");
  for (const auto& apply : plan.applies)
    text += fmt::format("  apply {}:{} {} (vsn {})\n", apply.module, apply.step, apply.at, apply.vsn);
  for (const auto& step : plan.supervisors)
    for (const auto& line : step.lines) text += fmt::format("  supervisor {}: {}\n", step.supervisor, line);
  for (const auto& module : plan.retired) text += fmt::format("  {} retired\n", module);
  if (plan.changes.empty() && plan.retired.empty() && plan.starts.empty() && plan.stops.empty() &&
      plan.restarts.empty() && plan.applies.empty() && plan.supervisors.empty())
    text += "  nothing changes\n";
  return text;
}

template <class CodeServer>
result<boot_report> basic_release_handler<CodeServer>::boot(const std::string& manifest) {
  const std::lock_guard one_at_a_time(operation_);
  return boot_locked(manifest, nullptr, {});
}

template <class CodeServer>
result<boot_report> basic_release_handler<CodeServer>::boot() {
  const std::lock_guard one_at_a_time(operation_);
  if (directory_.empty()) return error{errc::no_release, "no directory was given: boot(manifest)"};
  if (auto opened = detail::open_record_directory<>(directory_, record_); !opened) return opened.error();
  auto record = detail::read_record<>(record_);
  if (!record) return record.error();
  const auto permanent = std::find_if(record->begin(), record->end(),
                                      [](const detail::recorded_release& one) { return one.status == "permanent"; });
  if (permanent == record->end())
    return error{errc::no_release, "no permanent release recorded in " + directory_ + ": boot(manifest) first"};
  return boot_locked(permanent->manifest, &*permanent, *record);
}

template <class CodeServer>
std::vector<release_info> basic_release_handler<CodeServer>::which_releases() const {
  const std::lock_guard one_at_a_time(operation_);
  std::vector<release_info> known;
  for (const auto& one : releases_) known.push_back({one.name, one.vsn, one.status});
  return known;
}

template <class CodeServer>
result<release_plan> basic_release_handler<CodeServer>::plan(const std::string& manifest,
                                                             std::chrono::nanoseconds timeout) {
  const std::lock_guard one_at_a_time(operation_);
  return plan_locked(manifest, timeout);
}

template <class CodeServer>
upgrade_report basic_release_handler<CodeServer>::upgrade(const std::string& manifest, const upgrade_options& options) {
  const std::lock_guard one_at_a_time(operation_);
  auto planned = plan_locked(manifest, options.suspend_timeout);  // a server busy past it would fail the suspend
  return planned ? run(*planned, options) : refused(planned.error());
}

template <class CodeServer>
upgrade_report basic_release_handler<CodeServer>::dry_run(const std::string& manifest, const upgrade_options& options) {
  const std::lock_guard one_at_a_time(operation_);
  auto planned = plan_locked(manifest, options.suspend_timeout);
  upgrade_report report = planned ? upgrade_report{} : refused(planned.error());
  report.dry_run = true;
  if (!planned) return report;
  for (const auto& change : planned->changes)  // its load would push out the version kept
    if (!change.loaded && !change.back &&
        std::find(probation_.modules.begin(), probation_.modules.end(), change.module) != probation_.modules.end()) {
      report.outcome =
          error{errc::plan_refused,
                fmt::format("{} keeps its version before loaded in the grace period of release {} {}: "
                            "make-permanent or rollback first, then try release {} {}",
                            change.module, running()->name, running()->vsn, planned->to.name, planned->to.vsn)};
      return report;
    }
  std::vector<module_ptr> loaded;
  if (!load_all(*planned, options, report, loaded)) return report;
  std::size_t count = 0;
  for (const auto& change : planned->changes) count += change.servers.size();
  for (std::size_t i = 0; i < planned->changes.size() && report; ++i)
    for (const auto& server : planned->changes[i].servers) {
      const implementation_table& table = detail::module_access<module_version>::table(*loaded[i]);
      report.steps.push_back(
          {server.server.id(), server.label, server.from_vsn, std::string(table.name), table.vsn, {}});
      auto tried = detail::control<detail::tried_code>(  // holding the code: a late request may run it
          server.server, options.change_timeout,
          [table = &table, code = loaded[i], vsn = server.from_vsn](detail::server_core& core) {
            return detail::try_code(core, *table, vsn);
          });
      if (!tried) {
        report.outcome =
            error{tried.error().code, fmt::format("step {} of {} ({}, dry run): {}; nothing changed",
                                                  report.steps.size(), count, server.label, tried.error().what)};
        break;
      }
      report.steps.back().time = tried->time;
      report.steps.back().state_bytes = tried->state_bytes;
      report.pause += tried->time;
      if (options.progress)
        options.progress(
            upgrade_stage::change_code,
            fmt::format("{}: vsn {} -> {} ({}) would take {} us, making {}", server.label, server.from_vsn, table.vsn,
                        table.name, tried->time.count() / 1000, detail::print_bytes(tried->state_bytes)));
    }
  // The servers it would start (each one's init checked: it takes no argument), stop, and restart
  // (each state handed over made from the running one, timed, and thrown away).
  const auto version_of = [&](const std::string& module) -> module_ptr {
    for (std::size_t i = 0; i < planned->changes.size(); ++i)
      if (planned->changes[i].module == module) return loaded[i];
    return code_.current(module);
  };
  for (const auto& start : planned->starts) {
    if (!report) break;
    if (start.held) {
      report.servers.push_back(fmt::format("would resume {}: {}", start.name, start.held.core()->label()));
      continue;
    }
    if (auto fits = detail::lease_to_start<void>(version_of(start.module)); !fits) {
      report.outcome = error{fits.error().code,
                             fmt::format("start {} (dry run): {}; nothing changed", start.name, fits.error().what)};
      break;
    }
    report.servers.push_back(fmt::format("would start {}: {} vsn {}", start.name, start.module, start.vsn));
  }
  for (const auto& stop : planned->stops)
    if (report) report.servers.push_back(fmt::format("would stop {}: {}", stop.name, stop.label));
  for (const auto& restart : planned->restarts) {
    if (!report) break;
    std::string how = "from its init (its state not kept)";
    if (restart.state_lost.empty()) {
      const module_ptr code = version_of(restart.module);
      auto tried = detail::control<detail::tried_code>(
          restart.server, options.change_timeout,
          [table = &detail::module_access<module_version>::table(*code), code,
           vsn = restart.from_vsn](detail::server_core& core) { return detail::try_code(core, *table, vsn); });
      if (!tried) {
        report.outcome = error{tried.error().code, fmt::format("restart {} ({}, dry run): {}; nothing changed",
                                                               restart.name, restart.label, tried.error().what)};
        break;
      }
      report.pause += tried->time;
      how = fmt::format("its state handed over, made in {} us ({})", tried->time.count() / 1000,
                        detail::print_bytes(tried->state_bytes));
    }
    report.servers.push_back(fmt::format("would restart {}: {} -> {} vsn {}, {}", restart.name, restart.label,
                                         restart.module, restart.to_vsn, how));
  }
  for (const auto& step : planned->supervisors)
    for (const auto& line : step.lines)
      if (report) report.servers.push_back(fmt::format("would change supervisor {}: {}", step.supervisor, line));
  if (options.progress)
    for (const auto& line : report.servers) options.progress(upgrade_stage::start, line);
  // The steps it would run: listed, not run (a step's effects cannot be thrown away).
  for (const auto& apply : planned->applies)
    if (report) {
      report.applied.push_back(fmt::format("would apply {}:{} {}", apply.module, apply.step, apply.at));
      if (options.progress) options.progress(upgrade_stage::apply, report.applied.back());
    }
  undo(loaded, &*planned);
  return report;
}

template <class CodeServer>
upgrade_report basic_release_handler<CodeServer>::rollback(const upgrade_options& options) {
  const std::lock_guard one_at_a_time(operation_);
  return rollback_locked(options);
}

template <class CodeServer>
result<void> basic_release_handler<CodeServer>::make_permanent() {
  const std::lock_guard one_at_a_time(operation_);
  const auto current = find(release_status::current);
  if (current == releases_.end()) return error{errc::no_release, "no release is waiting to be made permanent"};
  guard_probation(false);
  if (const std::string back = went_back(); !back.empty()) {
    guard_probation(true);
    return error{errc::no_release, fmt::format("release {} {} is rolling back: {} went back to its version before "
                                               "after a failure in the grace period",
                                               current->name, current->vsn, back)};
  }
  const auto before = releases_;
  if (const auto permanent = find(release_status::permanent); permanent != releases_.end())
    permanent->status = release_status::old;
  current->status = release_status::permanent;
  std::stable_partition(releases_.begin(), releases_.end(),
                        [](const known& one) { return one.status == release_status::permanent; });
  if (auto recorded = record(); !recorded) {
    releases_ = before;  // not permanent unless recorded so
    return recorded.error();
  }
  grace_->start({});
  end_probation({}, log_);
  names_before_.clear();
  children_before_.clear();
  return {};
}

template <class CodeServer>
result<remove_report> basic_release_handler<CodeServer>::remove_release(const std::string& name,
                                                                        const std::string& vsn) {
  const std::lock_guard one_at_a_time(operation_);
  const auto found = std::find_if(releases_.begin(), releases_.end(),
                                  [&](const known& one) { return one.name == name && one.vsn == vsn; });
  if (found == releases_.end()) {
    std::string listed;
    for (const auto& one : releases_) listed += (listed.empty() ? "" : ", ") + one.name + " " + one.vsn;
    return error{errc::no_release, fmt::format("release {} {} is not known (known: {})", detail::visible(name, false),
                                               detail::visible(vsn, false), listed.empty() ? "none" : listed)};
  }
  if (found->status == release_status::permanent)
    return error{errc::no_release, fmt::format("release {} {} is permanent: the program boots it, so it is kept "
                                               "(make another release permanent first)",
                                               name, vsn)};
  if (found->status == release_status::current)
    return error{errc::no_release,
                 fmt::format("release {} {} is current: it runs (make-permanent or rollback first)", name, vsn)};
  remove_report report{name, vsn, {}, {}};
  const std::string place = detail::unpacked_place(name, vsn);
  const std::string own = directory_.empty() ? std::string() : detail::absolute_path(directory_) + "/" + place + "/";
  const bool unpacked = !own.empty() && found->manifest.starts_with(own);
  // The files the other releases name, by their manifests (one that cannot be read may name any).
  std::vector<std::string> named;
  bool all_known = true;
  if (unpacked)
    for (const auto& one : releases_) {
      if (&one == &*found) continue;
      auto other = read_release(one.manifest);
      if (!other) {
        report.notes.push_back(
            fmt::format("release {} {}: {}: so no file is deleted", one.name, one.vsn, other.error().what));
        all_known = false;
        continue;
      }
      named.push_back(detail::absolute_path(other->manifest));
      for (const auto& file : other->modules) named.push_back(detail::absolute_path(file));
    }
  const auto before = releases_;
  releases_.erase(found);
  if (auto recorded = record(); !recorded) {
    releases_ = before;  // not forgotten unless recorded so, and nothing deleted
    return recorded.error();
  }
  if (!unpacked)
    report.notes.push_back(
        fmt::format("its files are not the release handler's (unpack did not put it in {}): none "
                    "deleted",
                    directory_.empty() ? std::string("a directory: none was given") : own));
  else if (all_known)
    report.removed = detail::remove_unpacked<>(record_, place, named, report.notes);
  return report;
}

template <class CodeServer>
result<release> basic_release_handler<CodeServer>::unpack(const std::string& archive) {
  const std::lock_guard one_at_a_time(operation_);
  auto bad = [&](const std::string& why) { return error{errc::bad_release, archive + ": " + why}; };
  if (directory_.empty())
    return error{errc::no_release,
                 "no directory was given (release_handler_options::directory): unpack puts a "
                 "release there"};
  if (record_.fd < 0)
    if (auto opened = detail::open_record_directory<>(directory_, record_); !opened) return opened.error();
  // A fresh directory of its own, in `unpacked` (made 0700, never through a link).
  if (::mkdirat(record_.fd, "unpacked", 0700) != 0 && errno != EEXIST)
    return error{errc::bad_release, directory_ + "/unpacked: " + std::strerror(errno)};
  detail::record_directory unpacked;
  unpacked.path = directory_ + "/unpacked";
  unpacked.fd = ::openat(record_.fd, "unpacked", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (unpacked.fd < 0) return error{errc::bad_release, unpacked.path + ": " + std::strerror(errno)};
  std::string fresh;
  int into = -1;
  for (int attempt = 0; into < 0 && attempt < 1000; ++attempt) {
    fresh = ".unpacking-" + std::to_string(::getpid()) + "-" + std::to_string(attempt);
    if (::mkdirat(unpacked.fd, fresh.c_str(), 0700) == 0)
      into = ::openat(unpacked.fd, fresh.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    else if (errno != EEXIST)
      break;
  }
  if (into < 0)
    return error{errc::bad_release, unpacked.path + ": no directory could be made: " + std::strerror(errno)};
  auto forget = [&](const std::string& place, error why) {  // nothing left behind
    std::vector<std::string> ignored;
    (void)detail::remove_unpacked<>(unpacked, place, {}, ignored);
    return why;
  };
  auto files = detail::extract_release_archive<>(archive, into);
  ::close(into);
  if (!files) return forget(fresh, files.error());
  const std::string at = detail::absolute_path(unpacked.path) + "/" + fresh;
  std::vector<const detail::unpacked_file*> manifests;
  for (const auto& file : *files)
    if (file.name.ends_with(".release.json")) manifests.push_back(&file);
  if (manifests.size() != 1)
    return forget(fresh, bad(manifests.empty() ? "holds no manifest (NAME-VSN.release.json)"
                                               : "holds more than one manifest (*.release.json)"));
  auto target = read_release(at + "/" + manifests[0]->name);
  if (!target) return forget(fresh, target.error());
  const std::string stem = target->name + "-" + target->vsn + ".release";
  if (manifests[0]->name != stem + ".json")
    return forget(fresh, bad(fmt::format("{} is release {} {}: it must be named {}.json", manifests[0]->name,
                                         target->name, target->vsn, stem)));
  auto in_archive = [&](const std::string& name) {
    return std::find_if(files->begin(), files->end(), [&](const auto& file) { return file.name == name; });
  };
  std::vector<std::pair<std::string, std::string>> signed_files;  // (file, sha256), in the manifest's order
  for (const auto& path : target->modules) {
    const std::string name = path.substr(path.rfind('/') + 1);
    const auto found = in_archive(name);
    if (path != at + "/" + name || found == files->end())
      return forget(fresh, bad(fmt::format("its manifest names {}, which is not a file of the archive (an archive's "
                                           "manifest names its modules by file name)",
                                           path.starts_with(at + "/") ? path.substr(at.size() + 1) : path)));
    signed_files.emplace_back(name, found->sha256);
  }
  for (const auto& file : *files)
    if (file.name != manifests[0]->name && file.name != stem + ".sig" &&
        std::none_of(signed_files.begin(), signed_files.end(), [&](const auto& one) { return one.first == file.name; }))
      return forget(fresh, bad(file.name + ": a file its manifest does not name"));
  // Signed by a key the code server trusts (when it trusts any), over every file's digest.
  std::string unusable;
  const auto& trusted = access::trusted(code_, unusable);
  if (!unusable.empty()) return forget(fresh, error{errc::untrusted, archive + ": " + unusable});
  if (!trusted.empty()) {
    if (in_archive(stem + ".sig") == files->end())
      return forget(fresh, error{errc::untrusted, archive + ": not signed (no " + stem +
                                                      ".sig), and this code server takes only releases signed by a "
                                                      "trusted key (hotswap-seal pack --key)"});
    const std::string signature_path = at + "/" + stem + ".sig";
    auto resolved = detail::resolve_safe_path(signature_path);
    auto text = resolved ? detail::read_module_file(*resolved, signature_path, detail::largest_release_signature)
                         : result<std::string>(resolved.error());
    if (!text) return forget(fresh, error{errc::untrusted, text.error().what});
    const std::string message = detail::release_signature_message(manifests[0]->sha256, signed_files);
    if (auto verified = detail::check_release_signature<>(*text, message, trusted, archive + ": " + stem + ".sig");
        !verified)
      return forget(fresh, verified.error());
  }
  // Each module as load reads it: its seal (signed by a trusted key, given any) and its note.
  builds ran;
  std::vector<std::string> names;
  for (const auto& file : target->modules) {
    auto note = access::read_note(code_, file);
    if (!note) return forget(fresh, error{note.error().code, archive + ": " + note.error().what});
    ran.emplace_back(note->name, note->build);
  }
  if (std::any_of(releases_.begin(), releases_.end(),
                  [&](const known& one) { return one.name == target->name && one.vsn == target->vsn; }))
    return forget(
        fresh, bad(fmt::format("release {} {} is known already (remove-release it first)", target->name, target->vsn)));
  // In place, never over another directory.
  const std::string place = target->name + "-" + target->vsn;
  if (::renameat2(unpacked.fd, fresh.c_str(), unpacked.fd, place.c_str(), RENAME_NOREPLACE) != 0)
    return forget(fresh, error{errc::bad_release, fmt::format("{}/{}: {}", unpacked.path, place,
                                                              errno == EEXIST ? "already there (not a release known: "
                                                                                "delete it, or remove-release)"
                                                                              : std::strerror(errno))});
  ::fsync(unpacked.fd);
  const std::string own = detail::absolute_path(unpacked.path) + "/" + place;
  release put{target->name, target->vsn,    {}, own + "/" + manifests[0]->name, target->start,
              target->stop, target->restart};
  for (const auto& [file, sha256] : signed_files) put.modules.push_back(own + "/" + file);
  releases_.push_back({put, release_status::unpacked, {}, sorted(std::move(ran))});
  if (auto recorded = record(); !recorded) {
    releases_.pop_back();
    return forget(place, recorded.error());
  }
  return put;
}

template <class CodeServer>
upgrade_report basic_release_handler<CodeServer>::refused(error why) {
  upgrade_report report;
  report.outcome = std::move(why);
  return report;
}

template <class CodeServer>
auto basic_release_handler<CodeServer>::running() -> const known* {
  auto found = find(release_status::current);
  if (found == releases_.end()) found = find(release_status::permanent);
  return found == releases_.end() ? nullptr : &*found;
}

template <class CodeServer>
result<boot_report> basic_release_handler<CodeServer>::boot_locked(
    const std::string& manifest, const detail::recorded_release* pinned,
    const std::vector<detail::recorded_release>& recorded) {
  if (!releases_.empty())
    return error{errc::bad_release, "release " + releases_.front().name + " " + releases_.front().vsn +
                                        " is already booted: upgrade to another"};
  if (!directory_.empty())
    if (auto opened = detail::open_record_directory<>(directory_, record_); !opened) return opened.error();
  auto target = read_release(manifest);
  if (!target) return target.error();
  const std::string booting = "booting release " + target->name + " " + target->vsn + ": ";
  if (pinned && (target->name != pinned->name || target->vsn != pinned->vsn))
    return error{errc::bad_release,
                 fmt::format("{}: now release {} {}, not release {} {}, which {}/releases.json "
                             "records permanent",
                             manifest, target->name, target->vsn, pinned->name, pinned->vsn, directory_)};
  if (pinned && !pinned->builds.empty()) {  // before any of their code runs (and again once loaded, below)
    builds now;
    for (const auto& file : target->modules) {
      auto note = access::read_note(code_, file);
      if (!note) return error{note.error().code, booting + note.error().what};
      now.emplace_back(note->name, note->build);
    }
    if (auto changed = changed_builds(as_recorded(*pinned), pinned->builds, now); !changed.empty())
      return error{errc::bad_release, booting + changed};
  }
  std::vector<module_ptr> loaded;
  for (const auto& file : target->modules) {
    auto version = code_.load(file);
    if (!version) {
      undo(loaded);
      return error{version.error().code, booting + version.error().what};
    }
    loaded.push_back(std::move(*version));
  }
  std::vector<std::string> names;
  builds ran;
  for (const auto& version : loaded) {
    names.push_back(version->name());
    ran.emplace_back(version->name(), version->build());
  }
  if (pinned && !pinned->builds.empty())  // a file rewritten between its check and its load
    if (auto changed = changed_builds(as_recorded(*pinned), pinned->builds, ran); !changed.empty()) {
      undo(loaded);
      return error{errc::bad_release, booting + changed};
    }
  target->manifest = detail::absolute_path(target->manifest);
  releases_.push_back({std::move(*target), release_status::permanent, std::move(names), sorted(std::move(ran))});
  for (const auto& one : recorded)
    if (&one != pinned)
      releases_.push_back({release{one.name, one.vsn, {}, one.manifest},
                           one.status == "unpacked" ? release_status::unpacked : release_status::old,
                           {},
                           one.builds});
  boot_report report{releases_.front().name, releases_.front().vsn, {}};
  if (!directory_.empty() && entries() != recorded)  // written only when changed: a full disk does not stop a boot
    if (auto written = record(); !written)
      report.notes.push_back("the release handler's record was not written: " + written.error().what +
                             " (the release runs; the record is as before)");
  return report;
}

template <class CodeServer>
auto basic_release_handler<CodeServer>::sorted(builds modules) -> builds {
  std::sort(modules.begin(), modules.end());
  return modules;
}

template <class CodeServer>
std::string basic_release_handler<CodeServer>::changed_builds(const release& release, const builds& ran,
                                                              const builds& now) {
  const builds was = sorted(ran), is = sorted(now);
  std::vector<std::string> changes;
  auto named = [](const std::string& module) { return [&module](const auto& one) { return one.first == module; }; };
  for (const auto& [module, build] : was) {
    const auto found = std::find_if(is.begin(), is.end(), named(module));
    if (found == is.end())
      changes.push_back(fmt::format("module {} is no longer in it", module));
    else if (found->second != build)
      changes.push_back(fmt::format("module {} is build {}, not build {}", module, found->second, build));
  }
  for (const auto& [module, build] : is)
    if (std::none_of(was.begin(), was.end(), named(module)))
      changes.push_back(fmt::format("module {} (build {}) was not in it", module, build));
  if (changes.empty()) return {};
  std::string said =
      fmt::format("the manifest of release {} {} ({}) no longer holds the builds it ran with: ", release.name,
                  release.vsn, release.manifest);
  for (std::size_t i = 0; i < changes.size(); ++i) said += (i ? "; " : "") + changes[i];
  return said;
}

template <class CodeServer>
std::vector<detail::recorded_release> basic_release_handler<CodeServer>::entries() const {
  std::vector<detail::recorded_release> made;
  for (const auto& one : releases_)
    made.push_back({one.name, one.vsn, one.manifest, std::string(to_string(one.status)), one.builds});
  return made;
}

template <class CodeServer>
result<void> basic_release_handler<CodeServer>::record() const {
  if (directory_.empty()) return {};
  return detail::write_record<>(record_, entries());
}

template <class CodeServer>
upgrade_report basic_release_handler<CodeServer>::rollback_locked(upgrade_options options) {
  const auto permanent = find(release_status::permanent);
  if (permanent == releases_.end() || find(release_status::current) == releases_.end())
    return refused(error{errc::no_release, "no release to roll back: the permanent one runs"});
  options.grace_period = {};
  auto planned = plan_locked(permanent->manifest, options.suspend_timeout, &*permanent);
  return planned ? run(*planned, options) : refused(planned.error());
}

template <class CodeServer>
void basic_release_handler<CodeServer>::roll_back_after_crash(std::uint64_t generation, const std::string& why) {
  const std::lock_guard one_at_a_time(operation_);
  if (!grace_->current(generation)) return;  // made permanent, or upgraded again, meanwhile
  auto tell = [&](const std::string& line) {
    if (log_) log_(upgrade_stage::rollback, line);
  };
  const known* from = running();
  const known& permanent = *find(release_status::permanent);
  const std::string back_to = permanent.name + " " + permanent.vsn;  // (the list may change below)
  tell(fmt::format("{} in the grace period of release {} {}: rolling back to {}", why, from->name, from->vsn, back_to));
  upgrade_options options = grace_options_;
  options.progress = log_;  // the rollback's stages too
  const auto report = rollback_locked(options);
  tell(report ? "rolled back: release " + back_to + " runs again"
              : "the rollback failed: " + report.outcome.error().what);
}

template <class CodeServer>
result<release_plan> basic_release_handler<CodeServer>::plan_locked(const std::string& manifest,
                                                                    std::chrono::nanoseconds timeout,
                                                                    const known* expected) {
  const known* from = running();
  if (!from) return error{errc::no_release, "no release runs: boot one first"};
  auto target = read_release(manifest);
  if (!target) return target.error();
  if (expected && (target->name != expected->name || target->vsn != expected->vsn))
    return error{errc::plan_refused, fmt::format("{}: now release {} {}, not release {} {}, which it held", manifest,
                                                 target->name, target->vsn, expected->name, expected->vsn)};
  const auto same = std::find_if(releases_.begin(), releases_.end(), [&](const known& one) {
    return one.name == target->name && one.vsn == target->vsn && !one.builds.empty();
  });
  builds holds;  // the target's modules' builds
  if (target->name == from->name && target->vsn == from->vsn)
    return error{errc::plan_refused, "release " + target->name + " " + target->vsn + " is the one running"};
  release_plan plan;
  plan.from = *from;
  plan.to = *target;
  std::vector<std::string> reasons;
  std::vector<std::string> modules;                                 // the target's, by name
  std::vector<detail::module_note_fields::schema_version> schemas;  // the new modules'
  std::vector<std::string> schema_files;
  std::vector<detail::module_note_fields> notes;                   // the target's modules'
  std::vector<std::pair<any_server, std::string>> server_reasons;  // (those the release stops or restarts aside)
  for (const auto& file : target->modules) {
    auto note = access::read_note(code_, file);
    if (!note) {
      reasons.push_back(note.error().what);
      continue;
    }
    if (std::find(modules.begin(), modules.end(), note->name) != modules.end()) {
      reasons.push_back(file + ": the release lists module " + note->name + " twice");
      continue;
    }
    modules.push_back(note->name);
    notes.push_back(*note);
    holds.emplace_back(note->name, note->build);
    const module_ptr now = code_.current(note->name);
    if (now && now->vsn() == note->vsn) {  // this version is loaded: the servers left on the old one move to it
      if (auto left = servers_left(*note, file, now, timeout, reasons)) plan.changes.push_back(std::move(*left));
      continue;
    }
    const bool down = now && note->vsn < now->vsn();
    const module_ptr kept = code_.old(note->name);
    // The version the last upgrade left, kept loaded in its grace period: taken back, not loaded.
    const bool back = now && kept && kept->build() == note->build && kept->vsn() == note->vsn;
    if (auto fits = back ? result<void>{} : detail::check_fits(*note, file, 0, {}, now, kept, registry(), down);
        !fits) {
      reasons.push_back(fits.error().what);
      continue;
    }
    for (const auto& schema : note->schemas) {
      for (std::size_t i = 0; i < schemas.size(); ++i)
        if (schemas[i].schema == schema.schema && schemas[i].vsn == schema.vsn &&
            schemas[i].fingerprint != schema.fingerprint)
          reasons.push_back(fmt::format("{} and {} hold different fields under schema {} version {}: {}",
                                        schema_files[i], file, schema.schema, schema.vsn,
                                        detail::field_differences(detail::described_fields(schemas[i].description),
                                                                  detail::described_fields(schema.description),
                                                                  "in the first", "in the second")));
      schemas.push_back(schema);
      schema_files.push_back(file);
    }
    release_plan::module_step change{note->name, now ? now->vsn() : 0, note->vsn, file, {}, false, back};
    for (auto& server : now ? now->servers() : std::vector<any_server>{}) {
      const std::string label = server.core()->label();
      auto status = sys::get_status(server, timeout);
      if (!status) {
        if (status.error().code != errc::no_server) reasons.push_back(label + ": " + status.error().what);
        continue;  // one that stopped meanwhile has nothing to upgrade
      }
      if (status->implementation != now->implementation()) continue;  // holds a state of this code, runs other
      if (auto refused = down ? detail::refuses_down(*now, *note, label, status->vsn, status->state_fingerprint)
                              : detail::refuses_state(*note, label, status->vsn, status->state_fingerprint);
          !refused.empty())
        server_reasons.emplace_back(server, std::move(refused));
      change.servers.push_back({std::move(server), label, status->vsn});
    }
    plan.changes.push_back(std::move(change));
  }
  // The servers it starts, stops and restarts; going back to the permanent release, those the
  // releases since started, stopped and restarted, put back.
  const auto permanent = find(release_status::permanent);
  const bool back = from->status == release_status::current && permanent != releases_.end() &&
                    permanent->name == target->name && permanent->vsn == target->vsn;
  plan_server_steps(*target, notes, back, timeout, plan, reasons);
  if (!back)  // (going back, none: a step cannot be undone, and the target's were its way there)
    detail::plan_apply_steps(*target, notes, notes.size() == target->modules.size(), plan, reasons);
  std::vector<any_server> removed;  // the supervisors' children it removes
  for (const auto& step : plan.supervisors) {
    if (step.remove.empty()) continue;
    if (auto children = call(step.server, which_children{}, timeout))
      for (const auto& child : *children)
        if (child.server && std::find(step.remove.begin(), step.remove.end(), child.id) != step.remove.end())
          removed.push_back(child.server);
  }
  const auto replaced = [&](const any_server& server) {  // stopped, restarted or removed: not changed in place
    return std::find(removed.begin(), removed.end(), server) != removed.end() ||
           std::any_of(plan.stops.begin(), plan.stops.end(), [&](const auto& stop) { return stop.server == server; }) ||
           std::any_of(plan.restarts.begin(), plan.restarts.end(),
                       [&](const auto& restart) { return restart.server == server; });
  };
  for (auto& change : plan.changes)
    std::erase_if(change.servers, [&](const release_plan::server_step& step) { return replaced(step.server); });
  for (auto& [server, reason] : server_reasons)
    if (!replaced(server)) reasons.push_back(std::move(reason));
  for (const auto& name : from->module_names)  // the running release's modules the target lacks
    if (std::find(modules.begin(), modules.end(), name) == modules.end()) {
      const module_ptr now = code_.current(name), left = code_.old(name);
      auto users = [&](const module_ptr& version) {  // but those the release stops
        auto servers = version ? version->servers() : std::vector<any_server>{};
        std::erase_if(servers, replaced);
        return servers;
      };
      if (const auto on_now = users(now); !on_now.empty())
        reasons.push_back(detail::describe_users(*now, on_now) + ", and release " + target->name + " " + target->vsn +
                          " does not have it");
      else if (const auto on_left = users(left); !on_left.empty())
        reasons.push_back(detail::describe_users(*left, on_left) + ", and release " + target->name + " " + target->vsn +
                          " does not have it");
      else if (now)
        plan.retired.push_back(name);
    }
  // A release known by its name and vsn is the one it was, not whatever its manifest now holds.
  if (same != releases_.end() && holds.size() == target->modules.size())  // (each note read: else a reason says why)
    if (auto changed = changed_builds(*same, same->builds, holds); !changed.empty()) reasons.push_back(changed);
  plan.modules = std::move(modules);
  if (!reasons.empty()) {
    std::string why =
        fmt::format("release {} {} cannot be installed over {} {}:", target->name, target->vsn, from->name, from->vsn);
    for (const auto& reason : reasons) why += "\n  - " + reason;
    return error{errc::plan_refused, std::move(why)};
  }
  return plan;
}

template <class CodeServer>
module_ptr basic_release_handler<CodeServer>::module_of(const any_server& server,
                                                        const std::string& implementation) const {
  for (const auto& loaded : code_.all_loaded())
    for (const module_ptr& version : {loaded.current, loaded.old})
      if (version && version->implementation() == implementation) {
        const auto users = version->servers();
        if (std::find(users.begin(), users.end(), server) != users.end()) return version;
      }
  return nullptr;
}

template <class CodeServer>
void basic_release_handler<CodeServer>::plan_server_steps(const release& target,
                                                          const std::vector<detail::module_note_fields>& notes,
                                                          bool back, std::chrono::nanoseconds timeout,
                                                          release_plan& plan, std::vector<std::string>& reasons) {
  const auto note_of = [&](const std::string& module) -> const detail::module_note_fields* {
    for (const auto& note : notes)
      if (note.name == module) return &note;
    return nullptr;
  };
  const auto registered = [](const std::string& name) { return any_server(detail::the_runtime().whereis(name)); };
  const std::string release_named = target.name + " " + target.vsn;
  auto start = [&](const std::string& name, const std::string& module) {
    const auto* note = note_of(module);
    if (!note)
      return reasons.push_back(fmt::format("start {}: release {} has no module {}", name, release_named, module));
    if (!note->init_argument.empty())
      return reasons.push_back(fmt::format(
          "start {}: the init of {} vsn {} takes an argument ({}): a release starts only servers whose init takes none",
          name, module, note->vsn, note->init_argument));
    if (const any_server taken = registered(name))
      return reasons.push_back(fmt::format("start {}: the name is taken, by {}", name, taken.core()->label()));
    plan.starts.push_back({name, module, note->vsn});
  };
  struct found {  // the server registered under a name, what it runs and on which module
    any_server server;
    std::string label;
    sys::status status;
    module_ptr module;
  };
  auto find_server = [&](const char* doing, const std::string& name) -> std::optional<found> {
    any_server server = registered(name);
    if (!server) {
      reasons.push_back(fmt::format("{} {}: no server is registered as {}", doing, name, name));
      return std::nullopt;
    }
    std::string label = server.core()->label();
    if (server.core()->supervised) {  // its supervisor would start it again
      reasons.push_back(
          fmt::format("{} {}: {} is a supervisor's child: its supervisor stops and starts it", doing, name, label));
      return std::nullopt;
    }
    auto status = sys::get_status(server, timeout);
    if (!status) {
      reasons.push_back(fmt::format("{} {}: {}: {}", doing, name, label, status.error().what));
      return std::nullopt;
    }
    module_ptr module = module_of(server, status->implementation);
    return found{std::move(server), std::move(label), std::move(*status), std::move(module)};
  };
  auto stop = [&](const std::string& name) {
    if (auto one = find_server("stop", name))
      plan.stops.push_back(
          {name, one->server, one->label, one->module ? one->module->name() : std::string(), one->status.vsn});
  };
  auto restart = [&](const std::string& name) {
    auto one = find_server("restart", name);
    if (!one) return;
    if (!one->module)
      return reasons.push_back(fmt::format("restart {}: {} runs no module ({}): only a module's server is restarted",
                                           name, one->label, one->status.implementation));
    const auto* note = note_of(one->module->name());
    if (!note)
      return reasons.push_back(fmt::format("restart {}: release {} has no module {}, which {} runs", name,
                                           release_named, one->module->name(), one->label));
    const int vsn = one->status.vsn;
    // The state is handed over where a change in place could make it; else the new server starts
    // from its init (OTP's restart_application loses it always).
    std::string lost = note->vsn < one->module->vsn()
                           ? detail::refuses_down(*one->module, *note, one->label, vsn, one->status.state_fingerprint)
                           : detail::refuses_state(*note, one->label, vsn, one->status.state_fingerprint);
    if (!lost.empty() && !note->init_argument.empty())
      return reasons.push_back(fmt::format(
          "restart {}: its state cannot be handed over ({}), and the init of {} vsn {} takes an argument ({})", name,
          lost, note->name, note->vsn, note->init_argument));
    plan.restarts.push_back({name, one->server, one->label, note->name, vsn, note->vsn, std::move(lost)});
  };
  // A supervisor's children: which there are, by id.
  auto supervisor_of = [&](const std::string& name,
                           std::vector<child_info>& children) -> std::optional<server_ref<supervisor_interface>> {
    const any_server found = registered(name);
    if (!found) {
      if (!back) reasons.push_back(fmt::format("supervisor {}: no server is registered as {}", name, name));
      return std::nullopt;  // (going back, one gone has nothing to put back)
    }
    auto supervisor = server_ref<supervisor_interface>::of(found);
    auto known = supervisor ? call(*supervisor, which_children{}, timeout) : supervisor.error();
    if (!known) {
      reasons.push_back(fmt::format("supervisor {}: {}", name, known.error().what));
      return std::nullopt;
    }
    children = std::move(*known);
    return *supervisor;
  };
  const auto child_of = [](const std::vector<child_info>& children, const std::string& id) -> const child_info* {
    for (const auto& child : children)
      if (child.id == id) return &child;
    return nullptr;
  };
  const auto running_as = [](const child_info* child) {
    return child && child->server ? ": " + child->server.core()->label() : std::string(" (not running)");
  };
  if (!back) {
    for (const auto& one : target.start) start(one.name, one.module);
    for (const auto& name : target.stop) stop(name);
    for (const auto& name : target.restart) restart(name);
    for (const auto& change : target.supervisors) {
      std::vector<child_info> children;
      const auto supervisor = supervisor_of(change.supervisor, children);
      if (!supervisor) continue;
      release_plan::supervisor_step step{change.supervisor, *supervisor, {}, change.remove, {}};
      for (const auto& child : change.children) {
        const std::string named = fmt::format("supervisor {}: child {}", change.supervisor, child.id);
        const auto* note = note_of(child.module);
        if (!note) {
          reasons.push_back(fmt::format("{}: release {} has no module {}", named, release_named, child.module));
          continue;
        }
        if (!note->init_argument.empty()) {
          reasons.push_back(
              fmt::format("{}: the init of {} vsn {} takes an argument ({}): a release starts only "
                          "servers whose init takes none",
                          named, child.module, note->vsn, note->init_argument));
          continue;
        }
        const child_info* now = child_of(children, child.id);
        if (const any_server taken = registered(child.name); !now && !child.name.empty() && taken) {
          reasons.push_back(fmt::format("{}: the name {} is taken, by {}", named, child.name, taken.core()->label()));
          continue;
        }
        step.put.push_back(detail::release_child(link_, child));
        step.lines.push_back(fmt::format("{} child {}: {} vsn {}{}{}", now ? "change" : "add", child.id, child.module,
                                         note->vsn, child.name.empty() ? "" : ", registered as " + child.name,
                                         now ? ", at its next restart" : ""));
      }
      for (const auto& id : change.remove) {
        const child_info* now = child_of(children, id);
        if (!now)
          reasons.push_back(fmt::format("supervisor {}: remove {}: no child has the id {}", change.supervisor, id, id));
        else
          step.lines.push_back(fmt::format("remove child {}{}", id, running_as(now)));
      }
      plan.supervisors.push_back(std::move(step));
    }
    return;
  }
  // Back to the permanent release: each child a release since changed as it was then.
  std::vector<std::vector<child_info>> known;  // each step's supervisor's children
  for (const auto& before : children_before_) {
    auto step = std::find_if(plan.supervisors.begin(), plan.supervisors.end(),
                             [&](const auto& one) { return one.supervisor == before.supervisor; });
    if (step == plan.supervisors.end()) {
      std::vector<child_info> children;
      const auto supervisor = supervisor_of(before.supervisor, children);
      if (!supervisor) continue;
      plan.supervisors.push_back({before.supervisor, *supervisor, {}, {}, {}});
      known.push_back(std::move(children));
      step = plan.supervisors.end() - 1;
    }
    const child_info* now = child_of(known[static_cast<std::size_t>(step - plan.supervisors.begin())], before.id);
    if (before.spec) {
      step->put.push_back(*before.spec);
      step->lines.insert(
          step->lines.begin() + static_cast<std::ptrdiff_t>(step->put.size() - 1),
          now ? "put back child " + before.id + "'s spec, at its next restart" : "add child " + before.id + " again");
    } else if (now) {
      step->remove.push_back(before.id);
      step->lines.push_back(fmt::format("remove child {}{}", before.id, running_as(now)));
    }
  }
  std::erase_if(plan.supervisors, [](const auto& step) { return step.put.empty() && step.remove.empty(); });
  // Back to the permanent release: each name as it was then (the manifest's own steps were its
  // way there).
  for (const auto& before : names_before_) {
    const any_server now = registered(before.name);
    if (!before.ran && now) {
      stop(before.name);
    } else if (before.ran && now) {
      restart(before.name);
    } else if (before.ran) {
      const auto held = std::find_if(probation_.held.begin(), probation_.held.end(),
                                     [&](const auto& one) { return one.first == before.name && one.second.alive(); });
      if (held != probation_.held.end())
        plan.starts.push_back({before.name, before.module, 0, held->second});
      else if (!before.module.empty())
        start(before.name, before.module);
      // (one that ran no module, stopped for good, cannot be started again)
    }
  }
}

template <class CodeServer>
std::optional<release_plan::module_step> basic_release_handler<CodeServer>::servers_left(
    const detail::module_note_fields& note, const std::string& file, const module_ptr& now,
    std::chrono::nanoseconds timeout, std::vector<std::string>& reasons) {
  if (note.build != now->build()) {
    reasons.push_back(fmt::format("{}: another build ({}) of {} vsn {} than the one loaded ({})", file, note.build,
                                  note.name, note.vsn, now->build()));
    return std::nullopt;
  }
  const module_ptr left = code_.old(note.name);
  if (!left) return std::nullopt;
  release_plan::module_step change{note.name, left->vsn(), note.vsn, file, {}, true, false};
  const bool down = left->vsn() > note.vsn;
  for (auto& server : left->servers()) {
    const std::string label = server.core()->label();
    auto status = sys::get_status(server, timeout);
    if (!status) {
      if (status.error().code != errc::no_server) reasons.push_back(label + ": " + status.error().what);
      continue;
    }
    if (status->implementation != left->implementation()) continue;  // holds a state of that code, runs other
    if (auto refused = down ? detail::refuses_down(*left, note, label, status->vsn, status->state_fingerprint)
                            : detail::refuses_state(note, label, status->vsn, status->state_fingerprint);
        !refused.empty())
      reasons.push_back(
          fmt::format("{} (on {} vsn {}, left behind by a load of vsn {})", refused, note.name, left->vsn(), note.vsn));
    change.servers.push_back({std::move(server), label, status->vsn});
  }
  if (change.servers.empty()) return std::nullopt;
  return change;
}

template <class CodeServer>
upgrade_report basic_release_handler<CodeServer>::run(const release_plan& plan, const upgrade_options& options) {
  auto tell = [&](upgrade_stage stage, const std::string& line) {
    if (options.progress) options.progress(stage, line);
  };
  upgrade_report report;
  // Another upgrade ends the last one's grace period first (its loads would push out the versions
  // it keeps), unless it goes back to them (a rollback).
  guard_probation(false);  // the last upgrade's guards would put a server back on its version before
  const bool back =
      std::any_of(plan.changes.begin(), plan.changes.end(), [](const auto& change) { return change.back; });
  // The servers stopped in the grace period that the plan resumes (going back): not stopped with
  // the period. If the plan fails, they are held again while it goes on, else stopped for good.
  std::vector<std::pair<std::string, any_server>> resuming;
  for (const auto& start : plan.starts)
    if (start.held)
      if (const auto held =
              std::find(probation_.held.begin(), probation_.held.end(), std::pair{start.name, start.held});
          held != probation_.held.end()) {
        resuming.push_back(*held);
        probation_.held.erase(held);
      }
  const std::string release_to = plan.to.name + " " + plan.to.vsn;
  auto let_go_of_resuming = [&] {
    for (auto& one : resuming)
      if (back)
        probation_.held.push_back(std::move(one));
      else
        (void)hotswap::stop(one.second, exit_reason{exit_kind::shutdown, "stopped by a release"},
                            options.suspend_timeout);
  };
  if (!back) {
    grace_->start({});  // a crash from now on is a crash, whether this upgrade succeeds or not
    end_probation({}, tell);
  }
  std::vector<module_ptr> loaded;  // outside the pause: nothing runs on them yet
  if (!load_all(plan, options, report, loaded)) {
    guard_probation(true);  // a rollback's: its grace period goes on
    let_go_of_resuming();
    return report;
  }
  // A grace period for a release that is not permanent (back to the permanent one, there is none
  // to go back to). Its servers are guarded before they change: no handler of the new code runs
  // off probation.
  upgrade_options grace = options;
  if (const auto permanent = find(release_status::permanent);
      permanent != releases_.end() && permanent->name == plan.to.name && permanent->vsn == plan.to.vsn)
    grace.grace_period = {};
  const bool probation = grace.grace_period > std::chrono::nanoseconds::zero();
  std::uint64_t generation = 0;
  if (probation) {
    generation = grace_->start(grace.grace_period);
    grace_options_ = grace;
    // The caller's progress may capture what dies when upgrade() returns: the rollback after a
    // crash tells the handler's log instead.
    grace_options_.progress = nullptr;
    probation_.servers = probation_guards(plan, generation);
    guard_probation(true);
  }
  // The versions the servers it starts and restarts, and its steps, run: a changed module's as
  // loaded, else (or once the loads are let go of, after the commit) the current one.
  const auto version_of = [&](const std::string& module) -> module_ptr {
    for (std::size_t i = 0; i < plan.changes.size() && i < loaded.size(); ++i)
      if (plan.changes[i].module == module) return loaded[i];
    return code_.current(module);
  };
  const exit_reason undone{exit_kind::shutdown, "release " + release_to + " was not installed"};
  std::vector<any_server> started;  // before the pause, on the new code: stopped again if anything fails
  struct changed_children {         // a supervisor's, before the pause: put back if anything fails
    const release_plan::supervisor_step* step;
    std::vector<child_spec> before;  // the specs replaced
    std::vector<std::string> added;
  };
  std::vector<changed_children> changed;
  auto failed = [&] {
    for (auto one = changed.rbegin(); one != changed.rend(); ++one)
      (void)change_children(one->step->server, std::move(one->before), one->added, options.suspend_timeout);
    for (auto one = started.rbegin(); one != started.rend(); ++one)
      (void)hotswap::stop(*one, undone, options.suspend_timeout);
    if (probation) {
      guard_probation(false);
      probation_.servers.clear();
      grace_->start({});
    }
    undo(loaded, &plan);
    if (!probation) guard_probation(true);  // a rollback's: its grace period goes on
    let_go_of_resuming();
    report.servers.clear();  // (none was started, stopped or restarted, in the end)
    return report;
  };
  for (const auto& start : plan.starts) {
    if (start.held) continue;  // resumed at the commit
    auto made = detail::start_on_module(version_of(start.module), start.name, nullptr);
    if (!made) {
      report.outcome = error{made.error().code, fmt::format("starting {} on {} vsn {}: {}; release {} {} runs on, "
                                                            "unchanged",
                                                            start.name, start.module, start.vsn, made.error().what,
                                                            plan.from.name, plan.from.vsn)};
      tell(upgrade_stage::rollback, report.outcome.error().what);
      return failed();
    }
    started.push_back(*made);
    report.servers.push_back(
        fmt::format("started {}: {} on {} vsn {}", start.name, made->core()->label(), start.module, start.vsn));
    tell(upgrade_stage::start, report.servers.back());
  }
  // The supervisors' children it adds, and the specs it replaces (those it removes go after the
  // commit, as the servers it stops).
  for (const auto& step : plan.supervisors) {
    if (step.put.empty()) continue;
    auto before = change_children(step.server, step.put, {}, options.suspend_timeout);
    if (!before) {
      report.outcome =
          error{before.error().code, fmt::format("supervisor {}: {}; release {} {} runs on, unchanged", step.supervisor,
                                                 before.error().what, plan.from.name, plan.from.vsn)};
      tell(upgrade_stage::rollback, report.outcome.error().what);
      return failed();
    }
    std::vector<std::string> added;
    for (const auto& spec : step.put)
      if (std::none_of(before->begin(), before->end(), [&](const child_spec& one) { return one.id == spec.id; }))
        added.push_back(spec.id);
    const auto children = call(step.server, which_children{}, options.suspend_timeout);
    for (const auto& spec : step.put) {
      const bool adds = std::find(added.begin(), added.end(), spec.id) != added.end();
      std::string as;
      if (children)
        for (const auto& child : *children)
          if (child.id == spec.id && child.server) as = " as " + child.server.core()->label();
      report.servers.push_back(
          adds ? fmt::format("supervisor {}: added child {}{}", step.supervisor, spec.id, as)
               : fmt::format("supervisor {}: replaced child {}'s spec, at its next restart", step.supervisor, spec.id));
      tell(upgrade_stage::start, report.servers.back());
    }
    changed.push_back({&step, std::move(*before), std::move(added)});
  }
  // The steps of its modules it runs at `point`, in order, on the release's versions: why the
  // first that fails failed, if one does.
  auto apply_at = [&](std::string_view point) -> std::optional<error> {
    for (const auto& apply : plan.applies) {
      if (apply.at != point) continue;
      const module_ptr code = version_of(apply.module);
      const auto began = std::chrono::steady_clock::now();
      auto ran = code ? code->run_step(apply.step)
                      : result<void>(error{errc::no_module, apply.module + " is no longer loaded"});
      const std::string named = fmt::format("{}:{} {}", apply.module, apply.step, apply.at);
      if (!ran) return error{ran.error().code, "apply " + named + ": " + ran.error().what};
      report.applied.push_back(fmt::format(
          "applied {} in {} us", named,
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - began).count()));
      tell(upgrade_stage::apply, report.applied.back());
    }
    return std::nullopt;
  };
  if (auto refused = apply_at("before_suspend")) {
    report.outcome = error{refused->code, fmt::format("{}; release {} {} runs on, unchanged", refused->what,
                                                      plan.from.name, plan.from.vsn)};
    tell(upgrade_stage::rollback, report.outcome.error().what);
    return failed();
  }
  // The servers it stops and restarts are held in the pause with the others; those that replace
  // the restarted ones are made there, after the changes, and take their names at the commit.
  struct replacement {
    const release_plan::restart_step* step;
    any_server server;
    bool handed_on;
  };
  std::vector<replacement> replacements;
  std::vector<std::string> restarted_lines, commit_notes;
  std::vector<any_server> held;
  for (const auto& stop : plan.stops) held.push_back(stop.server);
  for (const auto& restart : plan.restarts) held.push_back(restart.server);
  detail::transaction_hooks hooks;
  hooks.prepare = [&](std::chrono::steady_clock::time_point budget_end) -> std::optional<detail::transaction_failure> {
    for (const auto& restart : plan.restarts) {
      const module_ptr code = version_of(restart.module);
      const auto deadline =
          std::min(budget_end, detail::time_after(std::chrono::steady_clock::now(), options.change_timeout));
      detail::made_state made{nullptr, {}};
      std::unique_ptr<void, detail::handover::destroy> unused{nullptr, {}};
      bool handed_on = false;
      if (restart.state_lost.empty()) {
        auto handed =
            detail::hand_over(restart.server, code, restart.from_vsn,
                              std::max<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now(), {}));
        if (!handed)
          return detail::transaction_failure{detail::no_step, "restart",
                                             error{handed.error().code, restart.label + ": " + handed.error().what}};
        handed_on = handed->handed_on;
        made = {handed->state.get(), std::move(handed->owner)};
        unused = std::move(handed->state);  // freed here unless the new server takes it
      }
      auto replaced_by = detail::start_on_module(code, "", restart.state_lost.empty() ? &made : nullptr);
      if (!replaced_by)
        return detail::transaction_failure{
            detail::no_step, "restart",
            error{replaced_by.error().code, restart.label + ": " + replaced_by.error().what}};
      (void)unused.release();  // the new server's now
      replacements.push_back({&restart, *replaced_by, handed_on});
      restarted_lines.push_back(
          fmt::format("restarted {}: {} -> server {} on {} vsn {}, {}", restart.name, restart.label, replaced_by->id(),
                      restart.module, restart.to_vsn,
                      restart.state_lost.empty() ? "its state handed over" : std::string("from its init")));
      tell(upgrade_stage::restart, restarted_lines.back());
    }
    return std::nullopt;
  };
  hooks.undo = [&] {
    for (auto one = replacements.rbegin(); one != replacements.rend(); ++one)
      detail::end_replaced(one->server, one->step->state_lost.empty(), one->handed_on, undone, options.suspend_timeout);
  };
  hooks.commit = [&] {
    for (const auto& one : replacements) {
      // Ended normally (the servers linked to it go on), its name free for the new one.
      detail::end_replaced(one.step->server, one.step->state_lost.empty(), one.handed_on,
                           exit_reason{exit_kind::normal, fmt::format("restarted by release {} as server {}",
                                                                      release_to, one.server.id())},
                           options.suspend_timeout);
      if (!register_name(one.step->name, one.server))
        commit_notes.push_back(
            fmt::format("server {} could not take the name {}: taken meanwhile", one.server.id(), one.step->name));
    }
    for (const auto& [name, server] : resuming) {
      if (!register_name(name, server))
        commit_notes.push_back(
            fmt::format("{} could not take the name {} again: taken meanwhile", server.core()->label(), name));
      (void)detail::control<void>(server, options.suspend_timeout, [](detail::server_core& core) -> result<void> {
        core.suspended = false;
        return {};
      });
    }
  };
  {
    std::vector<upgrade_step> steps;
    for (std::size_t i = 0; i < plan.changes.size(); ++i)
      for (const auto& server : plan.changes[i].servers) steps.emplace_back(server.server, loaded[i], server.from_vsn);
    auto servers = std::move(report.servers);
    auto applied = std::move(report.applied);
    report = detail::run_upgrade(steps, held, options, hooks, /*leave_out_ended=*/true);
    report.servers = std::move(servers);
    report.applied = std::move(applied);
  }  // the steps' leases go: a version rolled back from is held by nothing now
  if (!report) return failed();
  report.servers.insert(report.servers.end(), restarted_lines.begin(), restarted_lines.end());
  report.notes.insert(report.notes.end(), commit_notes.begin(), commit_notes.end());
  for (const auto& [name, server] : resuming) {
    report.servers.push_back(
        fmt::format("resumed {}: {}, its state kept since it was stopped", name, server.core()->label()));
    tell(upgrade_stage::start, report.servers.back());
  }
  // The servers it stops: for good, or, in a grace period, held until it ends (their names free).
  for (const auto& stop : plan.stops) {
    if (probation) {
      detail::the_runtime().unregister_name(stop.name, stop.server.core());
      probation_.held.emplace_back(stop.name, stop.server);
      report.servers.push_back(
          fmt::format("stopped {}: {}, held suspended until the grace period ends", stop.name, stop.label));
    } else {
      (void)hotswap::stop(stop.server, exit_reason{exit_kind::shutdown, "stopped by release " + release_to},
                          options.suspend_timeout);
      report.servers.push_back(fmt::format("stopped {}: {}", stop.name, stop.label));
    }
    tell(upgrade_stage::stop, report.servers.back());
  }
  // The supervisors' children it removes.
  std::vector<std::pair<std::string, std::vector<child_spec>>> removed;  // (supervisor, specs)
  for (const auto& step : plan.supervisors) {
    if (step.remove.empty()) continue;
    auto gone = change_children(step.server, {}, step.remove, options.suspend_timeout);
    if (!gone) {
      report.notes.push_back(fmt::format("supervisor {}: {}", step.supervisor, gone.error().what));
      continue;
    }
    for (const auto& id : step.remove) {
      report.servers.push_back(fmt::format("supervisor {}: removed child {}", step.supervisor, id));
      tell(upgrade_stage::stop, report.servers.back());
    }
    removed.emplace_back(step.supervisor, std::move(*gone));
  }
  // What each name and child held at the permanent release, for the way back to it.
  if (const auto permanent = find(release_status::permanent);
      permanent != releases_.end() && permanent->name == plan.to.name && permanent->vsn == plan.to.vsn) {
    names_before_.clear();
    children_before_.clear();
  } else {
    auto child_before = [&](const std::string& supervisor, const std::string& id, std::optional<child_spec> spec) {
      if (std::none_of(children_before_.begin(), children_before_.end(),
                       [&](const auto& one) { return one.supervisor == supervisor && one.id == id; }))
        children_before_.push_back({supervisor, id, std::move(spec)});
    };
    for (const auto& one : changed)
      for (const auto& spec : one.step->put) {
        const auto was = std::find_if(one.before.begin(), one.before.end(),
                                      [&](const child_spec& before) { return before.id == spec.id; });
        child_before(one.step->supervisor, spec.id,
                     was == one.before.end() ? std::nullopt : std::optional<child_spec>(*was));
      }
    for (const auto& [supervisor, specs] : removed)
      for (const auto& spec : specs) child_before(supervisor, spec.id, spec);
    auto before = [&](const std::string& name, bool ran, const std::string& module) {
      if (std::none_of(names_before_.begin(), names_before_.end(), [&](const auto& one) { return one.name == name; }))
        names_before_.push_back({name, ran, module});
    };
    for (const auto& start : plan.starts) before(start.name, false, {});
    for (const auto& stop : plan.stops) before(stop.name, true, stop.module);
    for (const auto& restart : plan.restarts) before(restart.name, true, restart.module);
  }
  for (const auto& one : replacements) started.push_back(one.server);  // watched in the grace period too
  loaded.clear();
  const release_plan moved = move_late_servers(plan, options, report);
  for (const auto& change : plan.changes)  // the versions gone back to are current again
    if (const module_ptr left = change.back ? code_.current(change.module) : nullptr) {
      if (const auto users = left->servers(); !users.empty()) {  // ones the late move could not move
        report.notes.push_back(detail::describe_users(*left, users) + ": it stays current");
        continue;
      }
      access::undo_load(code_, left);
      tell(upgrade_stage::purge, fmt::format("unloaded {} vsn {}: {} vsn {} is current again", change.module,
                                             change.from_vsn, change.module, change.to_vsn));
    }
  for (auto& one : releases_)
    if (one.status == release_status::current) one.status = release_status::old;
  const auto known_before = std::find_if(releases_.begin(), releases_.end(), [&](const known& one) {
    return one.name == plan.to.name && one.vsn == plan.to.vsn;
  });
  builds ran;
  for (const auto& name : plan.modules)
    if (const module_ptr now = code_.current(name)) ran.emplace_back(name, now->build());
  if (known_before == releases_.end()) {
    releases_.push_back({release{plan.to.name, plan.to.vsn, plan.to.modules, detail::absolute_path(plan.to.manifest)},
                         release_status::current, plan.modules, sorted(std::move(ran))});
  } else {
    known_before->module_names = plan.modules;
    known_before->builds = sorted(std::move(ran));
    if (known_before->status != release_status::permanent)  // back to the permanent one: it runs again
      known_before->status = release_status::current;
  }
  if (auto recorded = record(); !recorded)
    report.notes.push_back("the release handler's record was not written: " + recorded.error().what);
  // In a grace period the versions before stay loaded until it ends.
  if (back) end_probation({}, tell);  // the one rolled back from
  std::vector<std::string> kept;
  for (const auto& change : plan.changes)
    if (change.from_vsn && !change.back && probation) kept.push_back(change.module);
  probation_.modules = kept;
  if (probation) watch_grace(moved, generation, started);
  for (const auto& module : plan.retired)
    if (auto retired = code_.retire(module); !retired) report.notes.push_back(retired.error().what);
  for (const auto& change : plan.changes) {
    if (!change.from_vsn || change.back || std::find(kept.begin(), kept.end(), change.module) != kept.end()) continue;
    auto purged = code_.purge(change.module);
    std::string line = !purged ? purged.error().what
                       : purged->note.empty()
                           ? fmt::format("purged {} vsn {}", change.module, change.from_vsn)
                           : fmt::format("purged {} vsn {}: {}", change.module, change.from_vsn, purged->note);
    if (!purged || !purged->note.empty()) report.notes.push_back(line);
    tell(upgrade_stage::purge, line);
  }
  for (const auto& module : plan.retired) (void)code_.purge(module);
  // The steps after the commit: one that fails rolls the whole release back, as a crash in its
  // grace period does (every server back on the permanent release's code with its state).
  if (auto refused = apply_at("after_commit")) {
    const known& permanent = *find(release_status::permanent);
    const std::string back_to = permanent.name + " " + permanent.vsn;
    tell(upgrade_stage::rollback, fmt::format("{}: rolling back to {}", refused->what, back_to));
    upgrade_options again = options;
    again.grace_period = {};
    const upgrade_report back = rollback_locked(again);
    report.outcome =
        error{refused->code, refused->what + (back ? "; rolled back: release " + back_to + " runs again"
                                                   : "; the rollback failed: " + back.outcome.error().what)};
    tell(upgrade_stage::rollback, report.outcome.error().what);
  }
  return report;
}

template <class CodeServer>
release_plan basic_release_handler<CodeServer>::move_late_servers(const release_plan& plan,
                                                                  const upgrade_options& options,
                                                                  upgrade_report& report) {
  release_plan moved = plan;
  std::vector<upgrade_step> late;
  std::vector<std::pair<std::size_t, release_plan::server_step>> joining;  // (change, server)
  for (std::size_t i = 0; i < plan.changes.size(); ++i) {
    const auto& change = plan.changes[i];
    // Going back, the version left is current still, and the one gone back to old.
    const module_ptr left = change.back       ? code_.current(change.module)
                            : change.from_vsn ? code_.old(change.module)
                                              : nullptr;
    const module_ptr now = change.back ? code_.old(change.module) : code_.current(change.module);
    if (!left || !now) continue;
    for (auto& server : left->servers()) {
      const auto planned = [&](const release_plan::server_step& step) { return step.server == server; };
      if (std::any_of(change.servers.begin(), change.servers.end(), planned)) continue;
      const auto stopped = [&](const auto& step) { return step.server == server; };  // held, suspended: not moved
      if (std::any_of(plan.stops.begin(), plan.stops.end(), stopped) ||
          std::any_of(plan.restarts.begin(), plan.restarts.end(), stopped))
        continue;
      auto status = sys::get_status(server, options.suspend_timeout);
      if (!status || status->implementation != left->implementation()) continue;
      late.emplace_back(server, now, status->vsn);
      joining.push_back({i, {server, server.core()->label(), status->vsn}});
    }
  }
  if (late.empty()) return moved;
  upgrade_report second = hotswap::upgrade(late, options);
  report.steps.insert(report.steps.end(), second.steps.begin(), second.steps.end());
  if (!second) {
    report.notes.push_back("servers started on the versions left while the upgrade ran stay on them: " +
                           second.outcome.error().what);
    return moved;
  }
  for (auto& [i, server] : joining) moved.changes[i].servers.push_back(std::move(server));
  return moved;
}

template <class CodeServer>
void basic_release_handler<CodeServer>::watch_grace(const release_plan& plan, std::uint64_t generation,
                                                    const std::vector<any_server>& started) {
  const std::weak_ptr<detail::grace_watch> watch = grace_;
  unwatch_grace();
  auto watched = [&](const any_server& server, std::string label) {
    probation_.monitors.push_back(hotswap::monitor(server, [watch, generation, label](const down& ended) {
      if (ended.reason.kind != exit_kind::crashed) return;
      if (const auto alive = watch.lock()) alive->crashed(generation, label + " crashed (" + ended.reason.what + ")");
    }));
  };
  for (const auto& change : plan.changes)
    for (const auto& server : change.servers) watched(server.server, server.label);
  for (const auto& server : started) watched(server, server.core()->label());
  probation_.servers = probation_guards(plan, generation);  // with those the late move moved
  guard_probation(true);
}

template <class CodeServer>
void basic_release_handler<CodeServer>::unwatch_grace() {
  for (auto& monitor : std::exchange(probation_.monitors, {})) hotswap::demonitor(monitor);
}

template <class CodeServer>
std::vector<std::pair<any_server, detail::probation_guard>> basic_release_handler<CodeServer>::probation_guards(
    const release_plan& plan, std::uint64_t generation) {
  const std::weak_ptr<detail::grace_watch> watch = grace_;
  std::vector<std::pair<any_server, detail::probation_guard>> guarded;
  for (const auto& change : plan.changes) {
    const module_ptr before = change.from_vsn ? code_.old(change.module) : nullptr;
    const module_ptr after = code_.current(change.module);
    if (!before || !after || change.servers.empty()) continue;
    const detail::probation_guard guard = detail::back_on_failure<module_version>(
        before, after,
        [watch, generation, module = change.module, vsn = change.to_vsn](const detail::probation_failure& failed) {
          if (const auto alive = watch.lock())
            alive->crashed(
                generation,
                fmt::format("{} failed in a handler of {} vsn {} ({}){}", failed.label, module, vsn, failed.why,
                            failed.failure.empty()
                                ? fmt::format("; back on vsn {}, its state kept", failed.back_vsn)
                                : "; it crashed: its state could not go back (" + failed.failure + ")"));
        });
    for (const auto& server : change.servers) guarded.emplace_back(server.server, guard);
  }
  return guarded;
}

template <class CodeServer>
void basic_release_handler<CodeServer>::guard_probation(bool on) {
  for (const auto& [server, guard] : probation_.servers)
    detail::set_probation(std::vector<any_server>{server}, on ? guard : detail::probation_guard{},
                          grace_options_.suspend_timeout);
}

template <class CodeServer>
void basic_release_handler<CodeServer>::end_probation(
    const std::vector<std::string>& still, const std::function<void(upgrade_stage, const std::string&)>& tell) {
  guard_probation(false);
  probation_.servers.clear();
  unwatch_grace();
  for (const auto& [name, server] : std::exchange(probation_.held, {})) {  // stopped for good now
    (void)hotswap::stop(server, exit_reason{exit_kind::shutdown, "stopped by a release"},
                        grace_options_.suspend_timeout);
    if (tell)
      tell(upgrade_stage::stop,
           fmt::format("stopped {}: {}, held since its release stopped it", name, server.core()->label()));
  }
  for (const auto& module : std::exchange(probation_.modules, {})) {
    if (std::find(still.begin(), still.end(), module) != still.end()) continue;
    const module_ptr left = code_.old(module);
    if (!left) continue;  // gone back to, or replaced since
    auto purged = code_.purge(module);
    if (tell)
      tell(upgrade_stage::purge, !purged ? purged.error().what
                                 : purged->note.empty()
                                     ? fmt::format("purged {} vsn {}", module, left->vsn())
                                     : fmt::format("purged {} vsn {}: {}", module, left->vsn(), purged->note));
  }
}

template <class CodeServer>
void basic_release_handler<CodeServer>::grace_ended(std::uint64_t generation) {
  const std::lock_guard one_at_a_time(operation_);
  if (!grace_->current(generation)) return;  // made permanent, or upgraded again, meanwhile
  const known* current = running();
  guard_probation(false);
  if (const std::string back = went_back(); !back.empty() && current) {  // between the period's end and now
    log_(upgrade_stage::rollback, fmt::format("{} went back after a failure as the grace period of release {} {} "
                                              "ended: rolling back",
                                              back, current->name, current->vsn));
    upgrade_options options = grace_options_;
    options.progress = log_;
    const auto report = rollback_locked(options);
    log_(upgrade_stage::rollback, report ? "rolled back" : "the rollback failed: " + report.outcome.error().what);
    return;
  }
  if (current)
    log_(upgrade_stage::purge,
         fmt::format("the grace period of release {} {} ended: the versions before go", current->name, current->vsn));
  end_probation({}, log_);
}

template <class CodeServer>
std::string basic_release_handler<CodeServer>::went_back() {
  std::string labels;
  const auto held = [&](const any_server& server) {  // stopped, not gone back
    return std::any_of(probation_.held.begin(), probation_.held.end(),
                       [&](const auto& one) { return one.second == server; });
  };
  for (const auto& module : probation_.modules)
    if (const module_ptr kept = code_.old(module))
      for (const auto& server : kept->servers())
        if (!held(server)) labels += (labels.empty() ? "" : ", ") + server.core()->label();
  return labels;
}

template <class CodeServer>
bool basic_release_handler<CodeServer>::load_all(const release_plan& plan, const upgrade_options& options,
                                                 upgrade_report& report, std::vector<module_ptr>& loaded) {
  for (const auto& change : plan.changes) {
    if (change.loaded || change.back) {  // by hand, before, or kept since: only its servers move
      const module_ptr now = change.back ? code_.old(change.module) : code_.current(change.module);
      if (!now || now->vsn() != change.to_vsn) {
        undo(loaded, &plan);
        report.outcome = error{errc::plan_refused,
                               "loading release " + plan.to.name + " " + plan.to.vsn + ": " + change.module + " vsn " +
                                   std::to_string(change.to_vsn) +
                                   (change.back ? " is no longer loaded" : " is no longer current") + ": plan again"};
        return false;
      }
      if (change.back && options.progress)
        options.progress(upgrade_stage::load, fmt::format("{} vsn {} is loaded still, since the upgrade: taken back",
                                                          change.module, change.to_vsn));
      loaded.push_back(now);
      continue;
    }
    auto version = change.from_vsn > change.to_vsn ? access::load_older(code_, change.file) : code_.load(change.file);
    if (version && (*version)->vsn() != change.to_vsn) {
      loaded.push_back(std::move(*version));
      version = error{errc::plan_refused, change.file + ": rewritten since the plan was made: plan again"};
    }
    if (!version) {
      undo(loaded, &plan);
      report.outcome = error{version.error().code, "loading release " + plan.to.name + " " + plan.to.vsn + ": " +
                                                       version.error().what + "; release " + plan.from.name + " " +
                                                       plan.from.vsn + " runs on, unchanged"};
      if (options.progress) options.progress(upgrade_stage::rollback, report.outcome.error().what);
      return false;
    }
    if (options.progress)
      options.progress(upgrade_stage::load, fmt::format("loaded {} vsn {}", change.module, change.to_vsn));
    loaded.push_back(std::move(*version));
  }
  return true;
}

template <class CodeServer>
void basic_release_handler<CodeServer>::undo(std::vector<module_ptr>& loaded, const release_plan* plan) {
  while (!loaded.empty()) {
    module_ptr version = std::move(loaded.back());
    loaded.pop_back();
    if (!plan || !(plan->changes[loaded.size()].loaded || plan->changes[loaded.size()].back))
      access::undo_load(code_, std::move(version));
  }
}

}  // namespace hotswap
