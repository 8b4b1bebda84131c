// hotswap's development loop, generated from include/ by tools/amalgamate.py; do not edit.
#pragma once
#include "releases.hpp"
// ---- hotswap/watch.hpp ----
// The development loop: edit a module's source, rebuild it, and the running program takes the
// new code with its state, as cr.h, Live++ and jet-live do, but with the state migrated by its
// schema and every module checked before it runs.
//
//     hotswap::code_server code({.development = true});   // takes a rebuild of the same vsn
//     ...
//     hotswap::module_watch watch(code);
//     watch.watch("build/modules").value();                // inotify on the build's module directory
//     // cmake --build build --target rules  ->  "reloaded life.rules vsn 1 (build 3f2a1b0c -> 9c1e2d3f): ..."
//
// A module file the build has finished writing (quiet for `settle`, its seal matching its bytes)
// whose module the program runs is loaded and every server on the module's current version is
// upgraded to it in one transaction (hotswap::upgrade): all or none, the old code serving on when
// the load or any change of code fails. For a grace period after, a handler of the new build
// that throws puts its server back on the build before, with its state, and the reload's other
// servers with it, and the build before is current again.
//
// Not included by <hotswap/hotswap.hpp>: include it where the program watches its modules.

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

// ---- hotswap/detail/development/crash_mailbox.hpp ----
// Where the servers on a reload's probation report a handler's failure to the watch's thread.

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

// ---- hotswap/detail/development/file_events.hpp ----
// Which module files a build has finished writing: inotify on their directories, and a quiet
// time per file. A linker writes a library in pieces and hotswap-seal then writes its seal in
// place, so a file is tried only once nothing has written it for `settle`; a file caught
// half-way anyway fails its seal (errc::torn, unsealed) and is tried again at its next write.
// A watched directory that goes (a clean rebuild removes it) is watched for from the nearest
// directory above it that is there, and watched again when it comes back; when inotify's queue
// overflows, events were lost: each directory is watched again. Either way every module file
// in the directory is then tried (one written meanwhile has no event), and it is said.

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>


namespace hotswap::detail {

class file_events {
 public:
  using clock = std::chrono::steady_clock;

  explicit file_events(std::chrono::nanoseconds settle) : settle_(settle) {}
  file_events(const file_events&) = delete;
  file_events& operator=(const file_events&) = delete;
  ~file_events() {
    if (inotify_ >= 0) ::close(inotify_);
    if (wake_ >= 0) ::close(wake_);
  }

  /// The eventfd that wakes wait() from another thread (wake()); made first.
  result<void> open() {
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    inotify_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (wake_ < 0 || inotify_ < 0)
      return error{errc::no_file, std::string("cannot watch files: ") + std::strerror(errno)};
    return {};
  }

  /// Any thread: watches the files ending in `suffix` that are written, moved or linked into `directory`.
  result<void> add(const std::string& directory, const std::string& suffix) {
    const int watch = ::inotify_add_watch(inotify_, directory.c_str(), directory_mask);
    if (watch < 0) return error{errc::no_file, directory + ": cannot watch it: " + std::strerror(errno)};
    const std::lock_guard hold(directories_lock_);
    directories_[watch] = {directory, suffix};
    return {};
  }

  /// The watch's thread: what happened to the watching itself since last asked (a directory
  /// gone or back, events lost), a line each.
  std::vector<std::string> take_notes() { return std::exchange(notes_, {}); }

  /// Any thread: wait() returns now.
  void wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_, &one, sizeof one);
  }

  /// The watch's thread: waits for writes, a wake() or `until`; returns the files whose last write is `settle` old.
  std::vector<std::string> wait(clock::time_point until) {
    const auto now = clock::now();
    for (const auto& [path, due] : pending_) until = std::min(until, due);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    pollfd watched[2] = {{wake_, POLLIN, 0}, {inotify_, POLLIN, 0}};
    const int ready = ::poll(watched, 2, static_cast<int>(std::clamp<long long>(left, 0, 60'000)));
    if (ready > 0 && (watched[0].revents & POLLIN)) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto read = ::read(wake_, &count, sizeof count);
    }
    if (ready > 0 && (watched[1].revents & POLLIN)) read_events();
    std::vector<std::string> settled;
    for (auto it = pending_.begin(); it != pending_.end();)
      if (it->second <= clock::now()) {
        settled.push_back(it->first);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    return settled;
  }

 private:
  struct watched_directory {
    std::string path, suffix;
  };

  // IN_MASK_ADD: a directory may be watched both as one of ours and as above a lost one (one
  // inotify watch an inode): each mask adds to the other's.
  static constexpr std::uint32_t above_mask =
      IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_MASK_ADD;
  static constexpr std::uint32_t directory_mask = above_mask | IN_CLOSE_WRITE | IN_MODIFY;

  static bool has_suffix(const std::string& name, const std::string& suffix) {
    return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  void read_events() {
    alignas(inotify_event) char buffer[16 * 1024];
    bool changed = false, overflowed = false;
    for (;;) {
      const ssize_t got = ::read(inotify_, buffer, sizeof buffer);
      if (got <= 0) break;  // EAGAIN: all read
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        if (event->mask & IN_Q_OVERFLOW) {
          overflowed = true;
          continue;
        }
        const std::lock_guard hold(directories_lock_);
        if (above_.contains(event->wd)) {  // a lost directory may be back, or the way to it changed
          changed = true;
          if (event->mask & IN_IGNORED) above_.erase(event->wd);
        }
        const auto found = directories_.find(event->wd);
        if (found == directories_.end()) continue;
        if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          lose(found);
          changed = true;
          continue;
        }
        if (event->len == 0) continue;
        const std::string name = event->name;
        if (!has_suffix(name, found->second.suffix)) continue;
        pending_[found->second.path + "/" + name] = clock::now() + settle_;  // each write starts the quiet again
      }
    }
    if (overflowed) {
      notes_.push_back("missed file events (inotify's queue overflowed): watching again, every module file is tried");
      watch_all_again();
    }
    if (changed || overflowed) rewatch();
  }

  /// Under directories_lock_: a watched directory is gone (removed, or moved: its path names
  /// another now).
  void lose(std::map<int, watched_directory>::iterator gone) {
    notes_.push_back(gone->second.path + " is gone: watching for it to come back");
    if (!above_.contains(gone->first)) ::inotify_rm_watch(inotify_, gone->first);  // moved: still watched
    lost_.push_back(std::move(gone->second));
    directories_.erase(gone);
  }

  /// After lost events: each directory watched again by its path (the same inode keeps its
  /// watch; another one, made meanwhile, gets one; none, and it is lost), and every file tried.
  void watch_all_again() {
    const std::lock_guard hold(directories_lock_);
    std::vector<std::pair<int, watched_directory>> all(directories_.begin(), directories_.end());
    for (auto& [old_watch, directory] : all) {
      const int watch = ::inotify_add_watch(inotify_, directory.path.c_str(), directory_mask);
      if (watch == old_watch) {
        rescan(directory);
        continue;
      }
      lose(directories_.find(old_watch));
      // rewatch() takes it back, and says so; a watch another directory still holds (the path now
      // names its inode) stays.
      if (watch >= 0 && !directories_.contains(watch) && !above_.contains(watch)) ::inotify_rm_watch(inotify_, watch);
    }
  }

  /// Each lost directory watched again if it is back (and its files tried), else the nearest
  /// directory above it that is there watched for it; watches above no lost directory dropped.
  void rewatch() {
    const std::lock_guard hold(directories_lock_);
    std::set<int> wanted;
    for (auto it = lost_.begin(); it != lost_.end();) {
      int watch = -1;
      for (int attempt = 0; watch < 0 && attempt < 8 && !watch_from_above(*it, wanted); ++attempt)
        watch = ::inotify_add_watch(inotify_, it->path.c_str(), directory_mask);  // fails if it went again
      if (watch < 0) {
        ++it;
        continue;
      }
      notes_.push_back(it->path + " is back: watching it again, every module file is tried");
      rescan(*it);
      directories_[watch] = std::move(*it);
      it = lost_.erase(it);
    }
    for (auto it = above_.begin(); it != above_.end();) {
      if (wanted.contains(*it)) {
        ++it;
        continue;
      }
      if (!directories_.contains(*it)) ::inotify_rm_watch(inotify_, *it);
      it = above_.erase(it);
    }
  }

  /// Under directories_lock_: false if `lost` is there (to be watched again); else true, the
  /// nearest directory above it that is there watched (in `wanted`), if any. A directory made
  /// on the way to it before that watch was in place has no event: looked for after.
  bool watch_from_above(const watched_directory& lost, std::set<int>& wanted) {
    for (int attempt = 0; attempt < 64; ++attempt) {  // each attempt finds one more level made
      struct stat info {};
      if (::stat(lost.path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) return false;
      std::string below = lost.path;
      for (std::string above = parent_of(below);; below = above, above = parent_of(above)) {
        if (const int watch = ::inotify_add_watch(inotify_, above.c_str(), above_mask); watch >= 0) {
          above_.insert(watch);
          wanted.insert(watch);
          break;
        }
        if (above == "/" || above == ".") return true;  // nothing to watch from: it stays lost
      }
      if (::stat(below.c_str(), &info) != 0) return true;  // its making will be an event
    }
    return true;
  }

  static std::string parent_of(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
  }

  /// Under directories_lock_: every file of `directory` with its suffix, tried once quiet.
  void rescan(const watched_directory& directory) {
    DIR* listing = ::opendir(directory.path.c_str());
    if (!listing) return;
    std::size_t seen = 0;
    while (const dirent* entry = ::readdir(listing)) {
      const std::string name = entry->d_name;
      if (!has_suffix(name, directory.suffix) || ++seen > 10'000) continue;  // a module directory, not a dump
      pending_[directory.path + "/" + name] = clock::now() + settle_;
    }
    ::closedir(listing);
  }

  std::chrono::nanoseconds settle_;
  int wake_ = -1, inotify_ = -1;
  std::mutex directories_lock_;  // add() runs on any thread, wait() on the watch's
  std::map<int, watched_directory> directories_;
  std::vector<watched_directory> lost_;               // gone, waited for
  std::set<int> above_;                               // watches on directories above lost ones
  std::map<std::string, clock::time_point> pending_;  // a file written, and when it will have been quiet long enough
  std::vector<std::string> notes_;                    // the watch's thread's
};

}  // namespace hotswap::detail

namespace hotswap::detail {

/// A handler of the new build failed on server `id` (`label`), which went back to the build
/// before unless `failure` says why not.
struct reload_crash {
  std::uint64_t generation, id;
  std::string label, why, failure;
};
/// Where the servers on probation report their failures: they hold it weakly.
struct crash_mailbox {
  std::mutex lock;
  std::vector<reload_crash> crashes;
  file_events* wake = nullptr;  // null once the watch has gone
  void post(reload_crash crash) {
    const std::lock_guard hold(lock);
    crashes.push_back(std::move(crash));
    if (wake) wake->wake();
  }
};

}  // namespace hotswap::detail

namespace hotswap {

// -- a reload --

/// What one reload of a module file did.
struct reload_report {
  std::string file, module;
  int from_vsn = 0, to_vsn = 0;
  std::string from_build, to_build;  ///< module_version::build of each
  std::vector<std::string> servers;  ///< upgraded: `server 4 (name)`
  std::chrono::nanoseconds load{};   ///< reading, checking and opening the file
  std::chrono::nanoseconds pause{};  ///< the servers' pause (hotswap::upgrade's)
  /// Done, or why not: every server then runs its old code with its old state.
  result<void> outcome;

  explicit operator bool() const noexcept { return outcome.has_value(); }
};

/// One line: `reloaded life.rules vsn 1 (build 3f2a1b0c -> 9c1e2d3f): 1 server upgraded in 41 us
/// (server 3 (life)); load 1.2 ms`, or `refused rules.so: why; the old code serves on`.
inline std::string to_string(const reload_report& report);

// -- the watch --

struct watch_options {
  /// How long a module file must go unwritten before it is tried: a link writes it in pieces,
  /// then hotswap-seal writes its seal.
  std::chrono::nanoseconds settle = std::chrono::milliseconds(10);
  /// For this long after a reload (and until the next), a handler of the new build that throws
  /// puts its server back on the build before, its state kept (and the reload's other servers
  /// with it) instead of crashing it. 0: none.
  std::chrono::nanoseconds grace_period = std::chrono::minutes(1);
  /// For each server's suspend and change of code.
  std::chrono::nanoseconds timeout = default_timeout;
  /// Each line the watch says: a reload, a refusal, a rollback, a watched directory gone or back,
  /// file events lost. Default: standard output.
  std::function<void(const std::string&)> print{};
};

/// Watches a program's module files and reloads those its build rewrites (see the top of this
/// header). Its reloads run one at a time, on its own thread; reload() runs one now. (A template
/// only so that a program compiles it where it uses it: use hotswap::module_watch.)
template <class CodeServer = code_server>
class basic_module_watch {
 public:
  explicit basic_module_watch(CodeServer& code, watch_options options = {});
  basic_module_watch(const basic_module_watch&) = delete;
  basic_module_watch& operator=(const basic_module_watch&) = delete;
  /// Stops watching. A probation ends (the build on it stays); nothing is unloaded.
  ~basic_module_watch();

  /// Watches `directory` for module files (`*.so`) the build writes.
  result<void> watch(const std::string& directory);

  /// Reloads the module in `path` now, as the watch does a file its build has written: checks it
  /// (a module the program runs, a newer vsn or another build of it), loads it, and upgrades
  /// every server on the module's current version in one transaction; on any failure unloads it,
  /// every server as before.
  reload_report reload(const std::string& path);

 private:
  using clock = std::chrono::steady_clock;
  using access = detail::code_server_access<void>;

  /// A reload on probation: its servers guarded, the build before kept.
  struct probation {
    std::uint64_t generation;
    module_ptr before, now;
    std::vector<any_server> servers;
    clock::time_point ends;
  };

  void run();

  reload_report reload_locked(const std::string& path);

  /// The servers running `version`'s own table now (not those only holding a state it made),
  /// each with its vsn.
  std::vector<std::pair<any_server, int>> running(const module_ptr& version);

  /// Each server of a reload on probation: a handler that throws puts it back on `before`.
  void guard(const std::vector<any_server>& servers, const module_ptr& before, const module_ptr& after,
             std::uint64_t generation);

  /// The guards of `servers` go.
  void unguard(const std::vector<any_server>& servers);

  upgrade_options transaction() const;

  /// Ends the probation: the guards go, and (`purge`) the build before with them.
  void end_probation(bool purge);

  /// A handler of the build on probation failed: every server of the reload goes back to the
  /// build before, which is current again.
  void roll_back(const detail::reload_crash& crash);

  CodeServer& code_;
  watch_options options_;
  detail::file_events events_;
  result<void> opened_;
  std::mutex operation_;  // one reload, rollback or end of probation at a time
  std::optional<probation> probation_;
  std::uint64_t generation_ = 0;
  std::map<std::string, std::string> refused_;  // the watch's thread's: each file's last refusal, said once
  std::shared_ptr<detail::crash_mailbox> crashes_ = std::make_shared<detail::crash_mailbox>();
  bool stopping_ = false;  // under crashes_->lock
  std::thread thread_;
};

using module_watch = basic_module_watch<>;

}  // namespace hotswap

// ---- hotswap/impl/watch.hpp ----
// The bodies of <hotswap/watch.hpp> (its declarations, documented, are there): a reload's line,
// the watch's thread, its reloads, and the probation after one. Included by watch.hpp only.

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
