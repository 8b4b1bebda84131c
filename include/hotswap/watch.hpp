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

#include "detail/development/crash_mailbox.hpp"
#include "detail/development/file_events.hpp"
#include "detail/modules/probation.hpp"
#include "modules.hpp"
#include "releases.hpp"
#include "result.hpp"
#include "servers.hpp"
#include "sys.hpp"

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

#include "impl/watch.hpp"
