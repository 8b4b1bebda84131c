// The bodies of <hotswap/watch.hpp> (its declarations, documented, are there): a reload's line,
// the watch's thread, its reloads, and the probation after one. Included by watch.hpp only.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../watch.hpp"

namespace hotswap {

inline std::string to_string(const reload_report& report) {
  if (!report) {
    std::string why = report.outcome.error().what;
    if (why.starts_with(report.file + ": ")) why.erase(0, report.file.size() + 2);  // a file's error names it
    if (!why.ends_with("with its old state")) why += "; the old code serves on";    // the transaction says so itself
    return fmt::format("refused {}: {}", report.file, why);
  }
  const auto micros = [](std::chrono::nanoseconds time) { return std::chrono::duration<double, std::micro>(time); };
  std::string servers;
  for (const auto& label : report.servers) servers += (servers.empty() ? "" : ", ") + label;
  return fmt::format("reloaded {} vsn {}{} (build {} -> {}): {} server{} upgraded in {:.0f} us{}; load {:.1f} ms",
                     report.module, report.from_vsn,
                     report.to_vsn == report.from_vsn ? std::string() : fmt::format(" -> {}", report.to_vsn),
                     report.from_build.substr(0, 8), report.to_build.substr(0, 8), report.servers.size(),
                     report.servers.size() == 1 ? "" : "s", micros(report.pause).count(),
                     servers.empty() ? "" : " (" + servers + ")", micros(report.load).count() / 1000);
}

namespace detail {
/// Whether a reload's outcome is worth a line when the watch made it: not a file still being
/// written (caught half-way, its seal not yet written), one of a module this program does not
/// run, or a write that left the build loaded already.
inline bool worth_saying(const reload_report& report) {
  if (report) return true;
  switch (report.outcome.error().code) {
    case errc::no_file:
    case errc::not_a_library:
    case errc::truncated:
    case errc::unsealed:
    case errc::torn:
    case errc::no_module:
      return false;
    default:
      return !(report.outcome.error().code == errc::not_newer && report.from_build == report.to_build);
  }
}
}  // namespace detail

template <class CodeServer>
basic_module_watch<CodeServer>::basic_module_watch(CodeServer& code, watch_options options)
    : code_(code), options_(std::move(options)), events_(options_.settle) {
  if (!options_.print)
    options_.print = [](const std::string& line) {
      fmt::print("{}\n", line);
      std::fflush(stdout);
    };
  opened_ = events_.open();
  crashes_->wake = &events_;
  if (opened_) thread_ = std::thread([this] { run(); });
}

template <class CodeServer>
basic_module_watch<CodeServer>::~basic_module_watch() {
  {
    const std::lock_guard hold(crashes_->lock);
    stopping_ = true;
    crashes_->wake = nullptr;
  }
  events_.wake();
  if (thread_.joinable()) thread_.join();
  const std::lock_guard one_at_a_time(operation_);
  end_probation(false);
}

template <class CodeServer>
result<void> basic_module_watch<CodeServer>::watch(const std::string& directory) {
  if (!opened_) return opened_.error();
  const std::lock_guard one_at_a_time(operation_);
  return events_.add(directory, ".so");
}

template <class CodeServer>
reload_report basic_module_watch<CodeServer>::reload(const std::string& path) {
  const std::lock_guard one_at_a_time(operation_);
  return reload_locked(path);
}

template <class CodeServer>
void basic_module_watch<CodeServer>::run() {
  for (;;) {
    clock::time_point until = clock::now() + std::chrono::hours(1);
    {
      const std::lock_guard one_at_a_time(operation_);
      if (probation_) until = probation_->ends;
    }
    const auto settled = events_.wait(until);
    std::vector<detail::reload_crash> crashes;
    {
      const std::lock_guard hold(crashes_->lock);
      if (stopping_) return;
      crashes.swap(crashes_->crashes);
    }
    const std::lock_guard one_at_a_time(operation_);
    for (const auto& note : events_.take_notes()) options_.print(note);  // a directory gone or back, events lost
    for (const auto& crash : crashes) roll_back(crash);
    for (const auto& path : settled) {
      const auto report = reload_locked(path);
      if (!detail::worth_saying(report)) continue;
      std::string line = to_string(report);
      if (report)
        refused_.erase(path);
      else if (auto& before = refused_[path]; before != line)  // (a write and its close may both be tried)
        before = line;
      else
        continue;  // the same file refused again, for the same reason: said already
      options_.print(line);
    }
    if (probation_ && clock::now() >= probation_->ends) end_probation(true);
  }
}

template <class CodeServer>
reload_report basic_module_watch<CodeServer>::reload_locked(const std::string& path) {
  reload_report report;
  report.file = path;
  auto info = code_.check(path);
  module_ptr now = info ? code_.current(info->name) : nullptr;
  if (info) {
    report.module = info->name;
    report.to_vsn = info->vsn;
    report.to_build = info->build;
  } else if (auto note = access::read_note(code_, path); note) {  // why not: which build it is, still
    report.module = note->name;
    report.to_vsn = note->vsn;
    report.to_build = note->build;
    now = code_.current(note->name);
  }
  if (now) {
    report.from_vsn = now->vsn();
    report.from_build = now->build();
  }
  if (!info) {
    report.outcome = info.error();
    return report;
  }
  if (!now) {
    report.outcome = error{errc::no_module, path + ": " + info->name + " is not loaded here: nothing to reload"};
    return report;
  }
  end_probation(true);  // the build on probation has served until this one: it stays, as the one before
  const auto started = clock::now();
  auto loaded = code_.load(path);
  report.load = clock::now() - started;
  if (!loaded) {
    report.outcome = loaded.error();
    return report;
  }
  std::vector<upgrade_step> steps;
  std::vector<any_server> servers;
  for (auto& server : running(now)) {
    report.servers.push_back(server.first.core()->label());
    servers.push_back(server.first);
    steps.emplace_back(std::move(server.first), *loaded, server.second);
  }
  // Guarded before they change: no handler of the new build runs off probation.
  const bool on_probation = options_.grace_period > std::chrono::nanoseconds::zero() && !steps.empty();
  const std::uint64_t generation = ++generation_;
  if (on_probation) guard(servers, now, *loaded, generation);
  const upgrade_report done = hotswap::upgrade(steps, transaction());
  report.pause = done.pause;
  if (!done) {
    if (on_probation) unguard(servers);
    steps.clear();  // their leases of the new build go
    access::undo_load(code_, std::move(*loaded));
    report.outcome = done.outcome.error();
    report.servers.clear();
    return report;
  }
  if (on_probation) {
    probation_.emplace(probation{generation, std::move(now), std::move(*loaded), std::move(servers), {}});
    probation_->ends =
        clock::now() + std::min<std::chrono::nanoseconds>(options_.grace_period, std::chrono::hours(24 * 365));
  } else {
    steps.clear();
    now.reset();
    (void)code_.purge(report.module);  // the build before, unless something still runs it
  }
  return report;
}

template <class CodeServer>
std::vector<std::pair<any_server, int>> basic_module_watch<CodeServer>::running(const module_ptr& version) {
  std::vector<std::pair<any_server, int>> found;
  const implementation_table* table = &detail::module_access<module_version>::table(*version);
  for (auto& server : version->servers()) {
    auto vsn = detail::control<int>(server, options_.timeout, [table](detail::server_core& core) -> result<int> {
      return core.table == table ? result<int>(core.table->vsn) : error{errc::wrong_vsn, {}};
    });
    if (vsn) found.emplace_back(std::move(server), *vsn);
  }
  return found;
}

template <class CodeServer>
void basic_module_watch<CodeServer>::guard(const std::vector<any_server>& servers, const module_ptr& before,
                                           const module_ptr& after, std::uint64_t generation) {
  detail::set_probation(servers,
                        detail::back_on_failure<module_version>(
                            before, after,
                            [mailbox = std::weak_ptr<detail::crash_mailbox>(crashes_),
                             generation](const detail::probation_failure& failed) {
                              if (const auto alive = mailbox.lock())
                                alive->post({generation, failed.server, failed.label, failed.why, failed.failure});
                            }),
                        options_.timeout);
}

template <class CodeServer>
void basic_module_watch<CodeServer>::unguard(const std::vector<any_server>& servers) {
  detail::set_probation(servers, {}, options_.timeout);
}

template <class CodeServer>
upgrade_options basic_module_watch<CodeServer>::transaction() const {
  upgrade_options options;
  options.suspend_timeout = options.change_timeout = options_.timeout;
  options.state_sizes = false;
  return options;
}

template <class CodeServer>
void basic_module_watch<CodeServer>::end_probation(bool purge) {
  if (!probation_) return;
  unguard(probation_->servers);
  const std::string module = probation_->before->name();
  probation_.reset();
  if (purge) (void)code_.purge(module);
}

template <class CodeServer>
void basic_module_watch<CodeServer>::roll_back(const detail::reload_crash& crash) {
  if (!probation_ || probation_->generation != crash.generation) return;  // ended, or another reload since
  probation held = std::move(*probation_);
  probation_.reset();
  unguard(held.servers);  // first: none may fire during the rollback
  std::vector<upgrade_step> steps;
  for (auto& server : running(held.now)) steps.emplace_back(std::move(server.first), held.before, server.second);
  const upgrade_report done = hotswap::upgrade(steps, transaction());
  const std::size_t others = steps.size();
  steps.clear();
  const std::string module = held.now->name(), back_to = "build " + held.before->build().substr(0, 8);
  std::string line = fmt::format("{} failed in a handler of {} build {} ({})", crash.label, module,
                                 held.now->build().substr(0, 8), crash.why);
  line += crash.failure.empty() ? "; back on " + back_to + ", its state kept"
                                : "; it crashed, as its state could not go back (" + crash.failure + ")";
  if (!done) {
    options_.print(line + "; the reload's other servers could not go back: " + done.outcome.error().what);
    return;
  }
  if (others) line += fmt::format("; {} other server{} back too", others, others == 1 ? "" : "s");
  access::undo_load(code_, std::move(held.now));
  options_.print("rolled back " + module + ": " + line + "; " + back_to + " is current again");
}

}  // namespace hotswap
