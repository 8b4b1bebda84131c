// hotswap's releases, generated from include/ by tools/amalgamate.py; do not edit.
#pragma once
#include "hotswap.hpp"
// ---- hotswap/releases.hpp ----
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

// ---- hotswap/detail/modules/probation.hpp ----
// Servers on probation after a change of code: a development reload (hotswap::module_watch) or a
// release in its grace period (hotswap::release_handler). One mechanism for both: a guard on each
// server (server_core::on_failure) that, when a handler of the new code throws, puts the server
// back on the version before with its state migrated back, on the server's own thread, before
// the next message; whoever set the guard hears of it, and rolls the rest back.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>


namespace hotswap::detail {

/// A server's handler failed on probation: `failure` is empty if it went back to the version
/// before (`back_vsn`) with its state, else says why it could not (the server then crashes).
struct probation_failure {
  std::uint64_t server;
  std::string label, why, failure;
  int back_vsn;
};

using probation_guard = std::function<bool(server_core& server, const std::string& why)>;

/// The guard that puts a server running `after` back on `before` (module versions: its leases
/// are taken by the server) and tells `told`, on the server's thread; a failure of other code (the
/// server's before it changed: the guard is set before the change, so that none of the new code's
/// handlers runs unguarded) is a crash. `told` must not block.
template <class Module>
probation_guard back_on_failure(std::shared_ptr<const Module> before, std::shared_ptr<const Module> after,
                                std::function<void(const probation_failure&)> told) {
  return [before = std::move(before), after = std::move(after), told = std::move(told)](server_core& core,
                                                                                        const std::string& why) {
    if (core.table != &module_access<Module>::table(*after)) return false;
    auto leased = lease_to_server(before, &core);
    kept_code kept;
    const result<void> moved =
        leased ? swap_code(core, *leased->table, core.table->vsn, {}, std::move(leased->lease), kept)
               : result<void>(leased.error());
    if (moved) kept.commit();
    told({core.id, core.label(), why, moved ? std::string() : moved.error().what, core.table->vsn});
    return moved.has_value();
  };
}

/// Puts `guard` on each of `servers` (an empty guard takes theirs off), each on the server; one
/// that has ended, or does not answer within `timeout`, is left as it is.
template <class Server>
void set_probation(const std::vector<Server>& servers, const probation_guard& guard, std::chrono::nanoseconds timeout) {
  for (const auto& server : servers)
    (void)control<void>(server, timeout, [guard](server_core& core) -> result<void> {
      core.on_failure = guard;
      return {};
    });
}

}  // namespace hotswap::detail
// ---- hotswap/detail/releases/grace_period.hpp ----
// A release's grace period: after an upgrade, the release handler watches the servers it
// upgraded; one crashing before the period ends (or make_permanent) has the release rolled
// back, on the handler's own thread, never on the crashing server's; one that ends by its time
// is told so there too. Every upgrade, rollback and make_permanent starts a new generation: a
// crash of an older one is ignored.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace hotswap::detail {

class grace_watch {
 public:
  using clock = std::chrono::steady_clock;

  /// `roll_back(generation, why)` runs on the watch's thread after a crash in the grace period,
  /// `ended(generation)` when the period ends by its time.
  grace_watch(std::function<void(std::uint64_t, const std::string&)> roll_back,
              std::function<void(std::uint64_t)> ended)
      : roll_back_(std::move(roll_back)), ended_(std::move(ended)) {}
  grace_watch(const grace_watch&) = delete;
  grace_watch& operator=(const grace_watch&) = delete;
  ~grace_watch() { stop(); }

  /// Ends the watch for good: a rollback under way finishes first. (Not on the watch's thread.)
  void stop() {
    {
      const std::lock_guard hold(lock_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  /// A new generation; with a period above zero, watched until `period` from now. Its number.
  std::uint64_t start(std::chrono::nanoseconds period) {
    const std::lock_guard hold(lock_);
    ++generation_;
    armed_ = period > std::chrono::nanoseconds::zero();
    crashed_.clear();
    if (armed_) {
      deadline_ = clock::now() + std::min<std::chrono::nanoseconds>(period, std::chrono::hours(24 * 365 * 100));
      if (!thread_.joinable() && !stopping_) thread_ = std::thread([this] { watch(); });
    }
    changed_.notify_all();
    return generation_;
  }

  /// A server upgraded in `generation` crashed (any thread: a monitor's call).
  void crashed(std::uint64_t generation, std::string why) {
    {
      const std::lock_guard hold(lock_);
      if (generation != generation_ || !armed_ || !crashed_.empty()) return;
      crashed_ = std::move(why);
    }
    changed_.notify_all();
  }

  /// Whether `generation` is still the one running (what a rollback checks before it starts).
  bool current(std::uint64_t generation) {
    const std::lock_guard hold(lock_);
    return generation == generation_;
  }

 private:
  void watch() {
    std::unique_lock hold(lock_);
    for (;;) {
      const auto ready = [&] { return stopping_ || (armed_ && (!crashed_.empty() || clock::now() >= deadline_)); };
      if (armed_)
        changed_.wait_until(hold, deadline_, ready);
      else
        changed_.wait(hold, ready);
      if (stopping_) return;
      if (!armed_) continue;
      armed_ = false;  // the period ends, by a crash or by its time
      const std::uint64_t generation = generation_;
      const std::string why = std::exchange(crashed_, {});
      hold.unlock();
      try {
        if (why.empty())
          ended_(generation);
        else
          roll_back_(generation, why);
      } catch (...) {  // a log that threw (its write failed): the watch goes on
      }
      hold.lock();
    }
  }

  std::function<void(std::uint64_t, const std::string&)> roll_back_;
  std::function<void(std::uint64_t)> ended_;
  std::mutex lock_;
  std::condition_variable changed_;
  std::uint64_t generation_ = 0;
  bool armed_ = false, stopping_ = false;
  std::string crashed_;  // who crashed, and why (empty: nobody)
  clock::time_point deadline_{};
  std::thread thread_;
};

}  // namespace hotswap::detail
// ---- hotswap/detail/releases/manifest.hpp ----
// Reading a release manifest, the JSON object hotswap_add_release writes beside the modules:
//
//     {"hotswap_release": 1, "name": "anemone", "vsn": "3",
//      "modules": ["account_manager_v3.so", "inspector_v3.so"]}
//
// Module files are relative to the manifest's directory unless absolute. Parsed by nlohmann/json.
// It may also name the servers the release starts, stops and restarts, by registered name:
//
//      "start": [{"name": "leaderboard", "module": "anemone.leaderboard"}],
//      "stop": ["inspector"], "restart": ["account_manager"]
//
// and the steps of its modules it runs at named points of the upgrade (HOTSWAP_MODULE_STEP):
//
//      "apply": [{"module": "anemone.account_manager", "step": "warm_cache", "at": "before_suspend"}]
//
// and the children of running supervisors it adds, changes or removes (OTP's {update, Mod,
// supervisor}), a supervisor by its registered name and a child by its id:
//
//      "supervisors": [{"supervisor": "anemone.sup", "remove": ["inspector"],
//                       "children": [{"id": "leaderboard", "module": "anemone.leaderboard",
//                                     "name": "leaderboard", "restart": "transient",
//                                     "shutdown_ms": 2000}]}]

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>


namespace hotswap::detail {

/// A server a release starts: registered as `name`, on its module `module`.
struct server_start {
  std::string name, module;
  bool operator==(const server_start&) const = default;
};

/// A step of a module a release runs (OTP's {apply, {M, F, A}}): `step` of the release's version
/// of `module`, at the point `at` of the upgrade (the plan checks it is one it knows).
struct apply_step {
  std::string module, step, at;
  bool operator==(const apply_step&) const = default;
};

/// A child a release puts under a running supervisor: a server on `module`, registered as `name`
/// (none if empty), restarted as `restart` says ("permanent", "transient" or "temporary"),
/// given `shutdown_ms` to stop (0: brutal_kill).
struct supervised_child {
  std::string id, module, name;
  std::string restart = "permanent";
  std::int64_t shutdown_ms = 5000;
  bool operator==(const supervised_child&) const = default;
};

/// What a release changes of the children of the supervisor registered as `supervisor`: those
/// it adds, or whose specs it replaces (by id), and those it removes.
struct supervisor_change {
  std::string supervisor;
  std::vector<supervised_child> children;
  std::vector<std::string> remove;
  bool operator==(const supervisor_change&) const = default;
};

/// A release as its manifest says.
struct release_manifest {
  std::string name, vsn;
  std::vector<std::string> modules;  // module files, as paths
  std::string path;                  // the manifest's
  std::vector<server_start> start;   // the servers it starts,
  std::vector<std::string> stop;     // stops,
  std::vector<std::string> restart;  // and restarts, by registered name
  std::vector<apply_step> apply;     // the steps it runs, in order
  std::vector<supervisor_change> supervisors;
};

/// A name or vsn: letters, digits, '.', '_' and '-', not first '.', '_' or '-' (what
/// hotswap_add_release accepts).
inline bool valid_release_word(const std::string& word) {
  if (word.empty() || word.size() > 255 || word[0] == '.' || word[0] == '_' || word[0] == '-') return false;
  for (const char c : word)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

/// The largest manifest read: hotswap_add_release writes hundreds of bytes.
inline constexpr std::size_t largest_manifest = std::size_t{1} << 20;
/// The most servers a manifest's start, stop or restart may name (each is a step of one pause).
inline constexpr std::size_t most_server_steps = 256;

/// Reads the manifest's "start", "stop" and "restart" into `release`: why not, if they are not
/// lists of what they must be (empty: they are, or are absent).
inline std::string read_server_steps(const nlohmann::json& json, release_manifest& release) {
  const std::string word = "a string of letters, digits, '.', '_' and '-'";
  auto list = [&](const char* key) -> std::string {
    const auto found = json.find(key);
    if (found == json.end()) return {};
    if (!found->is_array())
      return "\"" + std::string(key) + "\" must be a list of " +
             (key == std::string_view("start") ? "{\"name\": registered name, \"module\": module name}"
                                               : "registered names");
    if (found->size() > most_server_steps)
      return "\"" + std::string(key) + "\" names " + std::to_string(found->size()) + " servers, more than " +
             std::to_string(most_server_steps);
    return {};
  };
  for (const char* key : {"start", "stop", "restart"})
    if (auto wrong = list(key); !wrong.empty()) return wrong;
  if (const auto start = json.find("start"); start != json.end())
    for (std::size_t i = 0; i < start->size(); ++i) {
      const auto& one = (*start)[i];
      const std::string at = "\"start\"[" + std::to_string(i) + "]";
      if (!one.is_object() || one.size() != 2 || !one.contains("name") || !one.contains("module"))
        return at + " must be {\"name\": registered name, \"module\": module name}";
      const auto& name = one["name"];
      const auto& module = one["module"];
      if (!name.is_string() || !valid_release_word(name.get<std::string>())) return at + ": \"name\" must be " + word;
      if (!module.is_string() || !valid_module_name(module.get_ref<const std::string&>()))
        return at + ": \"module\" must be a module's name (" + word + ")";
      release.start.push_back({name.get<std::string>(), module.get<std::string>()});
    }
  for (auto [key, into] : {std::pair{"stop", &release.stop}, std::pair{"restart", &release.restart}})
    if (const auto names = json.find(key); names != json.end())
      for (std::size_t i = 0; i < names->size(); ++i) {
        const auto& name = (*names)[i];
        if (!name.is_string() || !valid_release_word(name.get<std::string>()))
          return "\"" + std::string(key) + "\"[" + std::to_string(i) + "] must be a registered name (" + word + ")";
        into->push_back(name.get<std::string>());
      }
  // A server is started, stopped or restarted once.
  std::vector<std::string> named;
  for (const auto& one : release.start) named.push_back(one.name);
  named.insert(named.end(), release.stop.begin(), release.stop.end());
  named.insert(named.end(), release.restart.begin(), release.restart.end());
  for (std::size_t i = 0; i < named.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (named[i] == named[j])
        return "the server " + named[i] + " is named twice in \"start\", \"stop\" and \"restart\"";
  return {};
}

/// The most steps a manifest's "apply" may name.
inline constexpr std::size_t most_apply_steps = 64;

/// Reads the manifest's "apply" into `release`: why not, if it is not a list of
/// {"module": module name, "step": step name, "at": point} (empty: it is, or is absent).
inline std::string read_apply_steps(const nlohmann::json& json, release_manifest& release) {
  const auto apply = json.find("apply");
  if (apply == json.end()) return {};
  const std::string form = R"({"module": module name, "step": step name, "at": "before_suspend" or "after_commit"})";
  if (!apply->is_array()) return "\"apply\" must be a list of " + form;
  if (apply->size() > most_apply_steps)
    return "\"apply\" names " + std::to_string(apply->size()) + " steps, more than " + std::to_string(most_apply_steps);
  const std::string word = "a string of letters, digits, '.', '_' and '-'";
  for (std::size_t i = 0; i < apply->size(); ++i) {
    const auto& one = (*apply)[i];
    const std::string at = "\"apply\"[" + std::to_string(i) + "]";
    if (!one.is_object() || one.size() != 3 || !one.contains("module") || !one.contains("step") || !one.contains("at"))
      return at + " must be " + form;
    const auto &module = one["module"], &step = one["step"], &point = one["at"];
    if (!module.is_string() || !valid_module_name(module.get_ref<const std::string&>()))
      return at + ": \"module\" must be a module's name (" + word + ")";
    if (!step.is_string() || !valid_step_name(step.get_ref<const std::string&>()))
      return at + ": \"step\" must be a step's name (" + word + ", at most 64)";
    if (!point.is_string() || !valid_release_word(point.get<std::string>()))  // which points: the plan's check
      return at + ": \"at\" must be a point of the upgrade (\"before_suspend\" or \"after_commit\")";
    release.apply.push_back({module.get<std::string>(), step.get<std::string>(), point.get<std::string>()});
  }
  return {};
}

/// The most supervisors a manifest's "supervisors" may change, and children it may name for one.
inline constexpr std::size_t most_supervisor_changes = 64;
inline constexpr std::size_t most_supervised_children = 256;
/// The longest shutdown time a manifest may give a child: an hour.
inline constexpr std::int64_t longest_shutdown_ms = 3'600'000;

/// Reads one child of a manifest's "supervisors" (`at` names it): why not, if it is not one.
inline std::string read_supervised_child(const nlohmann::json& one, const std::string& at, supervised_child& child) {
  const std::string word = "a string of letters, digits, '.', '_' and '-'";
  const std::string form = R"({"id": child id, "module": module name, and "name", "restart", "shutdown_ms" if wanted})";
  if (!one.is_object() || !one.contains("id") || !one.contains("module")) return at + " must be " + form;
  for (const auto& [key, value] : one.items()) {
    if (key == "id" || key == "name") {
      if (!value.is_string() || !valid_release_word(value.get<std::string>()))
        return at + ": \"" + key + "\" must be " + word;
      (key == "id" ? child.id : child.name) = value.get<std::string>();
    } else if (key == "module") {
      if (!value.is_string() || !valid_module_name(value.get_ref<const std::string&>()))
        return at + ": \"module\" must be a module's name (" + word + ")";
      child.module = value.get<std::string>();
    } else if (key == "restart") {
      if (!value.is_string() || (value != "permanent" && value != "transient" && value != "temporary"))
        return at + R"(: "restart" must be "permanent", "transient" or "temporary")";
      child.restart = value.get<std::string>();
    } else if (key == "shutdown_ms") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
          value.get<std::int64_t>() > longest_shutdown_ms)
        return at + ": \"shutdown_ms\" must be a whole number of milliseconds from 0 (brutal_kill) to " +
               std::to_string(longest_shutdown_ms);
      child.shutdown_ms = value.get<std::int64_t>();
    } else {
      return at + " must be " + form;
    }
  }
  return {};
}

/// Reads the manifest's "supervisors" into `release`: why not, if it is not a list of
/// {"supervisor": registered name, "children": [...], "remove": [child ids]} (empty: it is, or
/// is absent).
inline std::string read_supervisor_changes(const nlohmann::json& json, release_manifest& release) {
  const auto changes = json.find("supervisors");
  if (changes == json.end()) return {};
  const std::string form = R"({"supervisor": registered name, "children": [child specs], "remove": [child ids]})";
  if (!changes->is_array()) return "\"supervisors\" must be a list of " + form;
  if (changes->size() > most_supervisor_changes)
    return "\"supervisors\" names " + std::to_string(changes->size()) + " supervisors, more than " +
           std::to_string(most_supervisor_changes);
  for (std::size_t i = 0; i < changes->size(); ++i) {
    const auto& one = (*changes)[i];
    const std::string at = "\"supervisors\"[" + std::to_string(i) + "]";
    if (!one.is_object() || !one.contains("supervisor")) return at + " must be " + form;
    supervisor_change change;
    for (const auto& [key, value] : one.items()) {
      if (key == "supervisor") {
        if (!value.is_string() || !valid_release_word(value.get<std::string>()))
          return at + ": \"supervisor\" must be a registered name (a string of letters, digits, '.', '_' and '-')";
        change.supervisor = value.get<std::string>();
      } else if (key == "children" || key == "remove") {
        if (!value.is_array()) return at + ": \"" + key + "\" must be a list";
        if (value.size() > most_supervised_children)
          return at + ": \"" + key + "\" names " + std::to_string(value.size()) + " children, more than " +
                 std::to_string(most_supervised_children);
        for (std::size_t j = 0; j < value.size(); ++j) {
          const std::string item = at + ".\"" + key + "\"[" + std::to_string(j) + "]";
          if (key == "remove") {
            if (!value[j].is_string() || !valid_release_word(value[j].get<std::string>()))
              return item + " must be a child's id (a string of letters, digits, '.', '_' and '-')";
            change.remove.push_back(value[j].get<std::string>());
          } else {
            supervised_child child;
            if (auto wrong = read_supervised_child(value[j], item, child); !wrong.empty()) return wrong;
            change.children.push_back(std::move(child));
          }
        }
      } else {
        return at + " must be " + form;
      }
    }
    if (change.children.empty() && change.remove.empty())
      return at + " changes nothing: give \"children\" or \"remove\"";
    std::vector<std::string> ids = change.remove;
    for (const auto& child : change.children) ids.push_back(child.id);
    for (std::size_t j = 0; j < ids.size(); ++j)
      for (std::size_t k = 0; k < j; ++k)
        if (ids[j] == ids[k]) return at + ": the child " + ids[j] + " is named twice";
    for (const auto& before : release.supervisors)
      if (before.supervisor == change.supervisor)
        return at + ": the supervisor " + change.supervisor + " is named twice";
    release.supervisors.push_back(std::move(change));
  }
  return {};
}

/// Reads the manifest in `path` as a module's file is read (resolve_safe_path,
/// read_module_file): every directory on the path safe, opened without blocking (a FIFO is
/// refused, not waited on), a regular file, its size checked before a byte is read. Every
/// refusal is errc::bad_release, at once.
template <class = void>
result<release_manifest> read_manifest(const std::string& path) {
  auto bad = [&](const std::string& why) { return error{errc::bad_release, path + ": " + why}; };
  auto refused = [&](const error& why) {  // read_module_file's errors, said of a manifest
    if (why.code == errc::too_large) return bad("larger than 1 MiB: not a release manifest");
    if (why.code == errc::no_file) return bad("cannot be read: " + why.what.substr(path.size() + 2));
    return error{errc::bad_release, why.what};
  };
  const auto resolved = resolve_safe_path(path);
  if (!resolved) return refused(resolved.error());
  const auto text = read_module_file(*resolved, path, largest_manifest);
  if (!text) return refused(text.error());
  const auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded()) return bad("not JSON (hotswap_add_release writes release manifests)");
  if (const auto format = json.find("hotswap_release"); format == json.end() || *format != 1)
    return bad("not a release manifest of format 1 (no \"hotswap_release\": 1)");
  release_manifest release;
  release.path = path;
  const auto name = json.find("name"), vsn = json.find("vsn"), modules = json.find("modules");
  if (name == json.end() || !name->is_string() || !valid_release_word(release.name = name->get<std::string>()))
    return bad("\"name\" must be a string of letters, digits, '.', '_' and '-'");
  if (vsn == json.end() || !vsn->is_string() || !valid_release_word(release.vsn = vsn->get<std::string>()))
    return bad("\"vsn\" must be a string of letters, digits, '.', '_' and '-'");
  if (modules == json.end() || !modules->is_array() || modules->empty())
    return bad("\"modules\" must be a list of module files");
  const std::string directory = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  for (const auto& file : *modules) {
    if (!file.is_string() || file.get_ref<const std::string&>().empty())
      return bad("\"modules\" must be a list of module files");
    const auto& name_of_file = file.get_ref<const std::string&>();
    release.modules.push_back(name_of_file[0] == '/' ? name_of_file : directory + "/" + name_of_file);
  }
  if (auto wrong = read_server_steps(json, release); !wrong.empty()) return bad(wrong);
  if (auto wrong = read_apply_steps(json, release); !wrong.empty()) return bad(wrong);
  if (auto wrong = read_supervisor_changes(json, release); !wrong.empty()) return bad(wrong);
  return release;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/releases/release_archive.hpp ----
// A release shipped as one archive (OTP's release_handler:unpack_release/1): a tar file (gzip'd
// or not), flat, holding the manifest `NAME-VSN.release.json`, the module files it names by file
// name, and `NAME-VSN.release.sig`, the signature hotswap-seal pack makes with a module signing key:
//
//     {"hotswap_release_signature": 1, "signer": "<raw Ed25519 public key, hex>", "signature": "<hex>"}
//
// over release_signature_message: the SHA-256 of the manifest and of each module file, in the
// manifest's order. The archive is read by libarchive and treated as hostile: bounded in size and
// entries, regular files only (no link, no directory), names plain (no '/', so no absolute path
// and no `..`), each written with O_EXCL | O_NOFOLLOW into a fresh directory, its size checked
// against its header before and as it is read.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>


namespace hotswap::detail {

/// The largest archive unpack opens, the largest file in it, and the most files.
inline constexpr std::uint64_t largest_release_archive = std::uint64_t{1} << 30;
inline constexpr std::uint64_t largest_archive_entry = std::uint64_t{256} << 20;
inline constexpr std::size_t most_archive_entries = 1024;
/// The largest signature file read.
inline constexpr std::size_t largest_release_signature = 4096;

/// The SHA-256 of `bytes`, as hex, a piece at a time.
struct sha256_hex {
  md_context hashing{libcrypto::EVP_MD_CTX_new()};
  sha256_hex() {
    if (!hashing || !libcrypto::EVP_DigestInit_ex(hashing.get(), libcrypto::EVP_sha256(), nullptr))
      throw std::bad_alloc();  // libcrypto fails only to allocate
  }
  void add(const void* bytes, std::size_t size) {
    if (size && !libcrypto::EVP_DigestUpdate(hashing.get(), bytes, size)) throw std::bad_alloc();
  }
  std::string done() {
    seal_digest digest{};
    unsigned int size = 0;
    if (!libcrypto::EVP_DigestFinal_ex(hashing.get(), digest.data(), &size)) throw std::bad_alloc();
    return hex(digest.data(), digest.size());
  }
};

/// What a release's signature signs: the digests of its manifest and of its module files (by file
/// name, in the manifest's order), under a label of its own (no seal's signature verifies as one).
inline std::string release_signature_message(const std::string& manifest_sha256,
                                             const std::vector<std::pair<std::string, std::string>>& modules) {
  std::string message = "hotswap release signature 1\nmanifest " + manifest_sha256 + "\n";
  for (const auto& [file, sha256] : modules) message += "module " + file + " " + sha256 + "\n";
  return message;
}

/// `text` read as hex into `into` (all of it, exactly): false if it is not.
inline bool from_hex(std::string_view text, unsigned char* into, std::size_t size) {
  auto digit = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  if (text.size() != 2 * size) return false;
  for (std::size_t i = 0; i < size; ++i) {
    const int high = digit(text[2 * i]), low = digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    into[i] = static_cast<unsigned char>(high * 16 + low);
  }
  return true;
}

/// The signature `text` (of the file `path`) verifies `message` by one of `trusted`: its signer's
/// key in hex, or why not (errc::untrusted).
template <class = void>
result<std::string> check_release_signature(const std::string& text, const std::string& message,
                                            const std::vector<evp_key>& trusted, const std::string& path) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  raw_key signer{};
  unsigned char signature[64];
  if (json.is_discarded() || !json.is_object() || json.value("hotswap_release_signature", 0) != 1 ||
      !json.contains("signer") || !json["signer"].is_string() || !json.contains("signature") ||
      !json["signature"].is_string() ||
      !from_hex(json["signer"].get_ref<const std::string&>(), signer.data(), signer.size()) ||
      !from_hex(json["signature"].get_ref<const std::string&>(), signature, sizeof signature))
    return error{errc::untrusted, path + ": not a release signature (hotswap-seal pack --key writes one)"};
  const std::string named = hex(signer.data(), signer.size());
  const auto key = std::find_if(trusted.begin(), trusted.end(),
                                [&](const evp_key& candidate) { return raw_public_key(candidate.get()) == signer; });
  if (key == trusted.end())
    return error{errc::untrusted, path + ": signed by key " + named + ", which this code server does not trust"};
  const md_context verifying(libcrypto::EVP_MD_CTX_new());
  libcrypto::ERR_set_mark();
  const bool verified =
      verifying && libcrypto::EVP_DigestVerifyInit(verifying.get(), nullptr, nullptr, nullptr, key->get()) == 1 &&
      libcrypto::EVP_DigestVerify(verifying.get(), signature, sizeof signature,
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  libcrypto::ERR_pop_to_mark();
  if (!verified)
    return error{errc::untrusted, path + ": its signature by key " + named +
                                      " does not verify: the manifest or a module is not what was signed"};
  return named;
}

/// A file unpacked: its name and the SHA-256 of its bytes.
struct unpacked_file {
  std::string name, sha256;
};

/// Writes the files of the release archive `path` into the directory `into` (open; empty, made by
/// the caller), refusing (errc::bad_release, naming the entry) the first that is not a plain
/// regular file of a bounded size. What it wrote before a refusal is the caller's to delete.
template <class = void>
result<std::vector<unpacked_file>> extract_release_archive(const std::string& path, int into) {
  auto bad = [&](const std::string& why) { return error{errc::bad_release, path + ": " + why}; };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return bad(std::string("cannot be read: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) ||
      static_cast<std::uint64_t>(info.st_size) > largest_release_archive) {
    ::close(fd);
    return bad(S_ISREG(info.st_mode) ? "larger than 1 GiB: not a release archive" : "not a regular file");
  }
  struct reader {
    archive* read;
    int fd;
    ~reader() {
      if (read) ::archive_read_free(read);
      ::close(fd);
    }
  } reading{::archive_read_new(), fd};
  if (!reading.read) throw std::bad_alloc();
  ::archive_read_support_format_tar(reading.read);
  ::archive_read_support_filter_gzip(reading.read);
  auto said = [&] {
    const char* why = ::archive_error_string(reading.read);
    return std::string(why ? why : "unreadable");
  };
  if (::archive_read_open_fd(reading.read, fd, 64 * 1024) != ARCHIVE_OK)
    return bad("not a release archive (a tar file, gzip'd or not): " + said());
  std::vector<unpacked_file> files;
  std::uint64_t total = 0;
  std::vector<char> block(64 * 1024);
  for (archive_entry* entry = nullptr;;) {
    const int next = ::archive_read_next_header(reading.read, &entry);
    if (next == ARCHIVE_EOF) break;
    if (next != ARCHIVE_OK) return bad("not a release archive (a tar file, gzip'd or not): " + said());
    if (files.size() == most_archive_entries)
      return bad("more than " + std::to_string(most_archive_entries) + " files: not a release archive");
    const char* named = ::archive_entry_pathname(entry);
    const std::string name = named ? visible(named, false, 200) : std::string();
    if (::archive_entry_hardlink(entry) || ::archive_entry_symlink(entry) ||
        ::archive_entry_filetype(entry) != AE_IFREG)
      return bad(name + ": a link, a directory or a device: a release archive holds regular files only");
    if (name.starts_with('/')) return bad(name + ": an absolute path: a release archive holds file names only");
    if (name == ".." || name.starts_with("../") || name.find("/../") != std::string::npos || name.ends_with("/.."))
      return bad(name + ": a path out of the archive: a release archive holds file names only");
    if (name.find('/') != std::string::npos) return bad(name + ": in a directory: a release archive is flat");
    if (!valid_release_word(name))
      return bad(name + ": not a file name of letters, digits, '.', '_' and '-' (not first '.', '_' or '-')");
    if (!::archive_entry_size_is_set(entry)) return bad(name + ": its size is not in its header");
    const auto size = static_cast<std::uint64_t>(::archive_entry_size(entry));
    if (::archive_entry_size(entry) < 0 || size > largest_archive_entry)
      return bad(name + ": " + std::to_string(::archive_entry_size(entry)) +
                 " bytes, more than the 256 MiB a file of a release may hold");
    if ((total += size) > largest_release_archive) return bad("more than 1 GiB of files: not a release archive");
    const int out = ::openat(into, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
      return bad(name +
                 (errno == EEXIST ? std::string(": twice in the archive") : ": " + std::string(std::strerror(errno))));
    sha256_hex digest;
    std::uint64_t written = 0;
    std::string why;
    for (;;) {
      const la_ssize_t got = ::archive_read_data(reading.read, block.data(), block.size());
      if (got == 0) break;
      if (got < 0) {
        why = said();
        break;
      }
      if ((written += static_cast<std::uint64_t>(got)) > size) {
        why = "more bytes than its header says";
        break;
      }
      digest.add(block.data(), static_cast<std::size_t>(got));
      for (la_ssize_t done = 0; done < got && why.empty();) {
        const ssize_t wrote = ::write(out, block.data() + done, static_cast<std::size_t>(got - done));
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) why = std::string("cannot be written: ") + std::strerror(errno);
        done += wrote > 0 ? wrote : 0;
      }
      if (!why.empty()) break;
    }
    if (why.empty() && written != size) why = "fewer bytes than its header says";
    if (why.empty() && ::fsync(out) != 0) why = std::string("cannot be written: ") + std::strerror(errno);
    ::close(out);
    if (!why.empty()) return bad(name + ": " + why);
    files.push_back({name, digest.done()});
  }
  return files;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/releases/release_record.hpp ----
// The release handler's record on disk: the releases it knows, their states, and each one's
// modules by build, in `releases.json` in a directory of its own, so that a program started
// again boots its permanent release (and only the very builds it recorded). The directory is
// checked up to the root and held open: the record is read and written relative to it, never
// through its path again. Written to a temporary file, flushed, then renamed over the record: a
// crash mid-write leaves the previous record.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>


namespace hotswap::detail {

struct recorded_release {
  std::string name, vsn, manifest, status;  // status: permanent, current, old or unpacked
  /// Its modules, (name, build), as they ran; none in a record written before builds were kept.
  std::vector<std::pair<std::string, std::string>> builds;
  bool operator==(const recorded_release&) const = default;
};

/// The record's directory, open: what the record is read and written relative to.
struct record_directory {
  std::string path;
  int fd = -1;
  record_directory() = default;
  record_directory(const record_directory&) = delete;
  record_directory& operator=(const record_directory&) = delete;
  ~record_directory() {
    if (fd >= 0) ::close(fd);
  }
};

/// `path` from the root (a record outlives the working directory it was made in).
inline std::string absolute_path(const std::string& path) {
  return absolute(path);
}

/// The largest record read: a few hundred bytes a release.
inline constexpr std::size_t largest_record = std::size_t{1} << 20;

/// Makes `directory` (mode 0700) if it is missing and opens it (never through a symbolic link);
/// refuses one that is not a directory, is another user's or writable by others, or has a
/// directory above it others could rename it out of (as module paths are checked).
template <class = void>
result<void> open_record_directory(const std::string& directory, record_directory& into) {
  auto refuse = [&](const std::string& why) { return error{errc::bad_release, directory + ": " + why}; };
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) return refuse(std::strerror(errno));
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return refuse(errno == ENOTDIR || errno == ELOOP ? "not a directory" : std::strerror(errno));
  struct stat info {};
  std::string why;
  if (::fstat(fd, &info) != 0)
    why = std::strerror(errno);
  else if (info.st_uid != ::geteuid())
    why = "owned by another user: the release handler keeps its record in a directory of its own";
  else if (info.st_mode & (S_IWGRP | S_IWOTH))
    why = "writable by other users";
  // Above it, as given and as resolved.
  std::string resolved = absolute(directory);
  if (char* real = ::realpath(directory.c_str(), nullptr)) {
    resolved = real;
    std::free(real);
  }
  for (const std::string& way : {absolute(directory), resolved})
    if (why.empty())
      if (error unsafe = unsafe_directory_of(way); !unsafe.what.empty()) why = unsafe.what;
  if (!why.empty()) {
    ::close(fd);
    return refuse(why);
  }
  if (into.fd >= 0) ::close(into.fd);
  into.fd = fd;
  into.path = directory;
  return {};
}

/// The record in `directory` (none yet: empty).
template <class = void>
result<std::vector<recorded_release>> read_record(const record_directory& directory) {
  const std::string path = directory.path + "/releases.json";
  auto bad = [&](const std::string& why) { return error{errc::bad_release, path + ": " + why}; };
  const int fd = ::openat(directory.fd, "releases.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::vector<recorded_release>{};
  if (fd < 0) return bad(std::strerror(errno));
  struct stat info {};
  std::string text, why;
  if (::fstat(fd, &info) != 0)
    why = std::strerror(errno);
  else if (!S_ISREG(info.st_mode))
    why = "not a regular file";
  else if (static_cast<std::uint64_t>(info.st_size) > largest_record)
    why = "larger than 1 MiB: not a release handler's record";
  else {
    text.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t got = ::read(fd, text.data() + done, text.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<std::size_t>(got);
    }
    text.resize(done);
  }
  ::close(fd);
  if (!why.empty()) return bad(why);
  const auto json = nlohmann::json::parse(text, nullptr, false);
  auto not_one = [&] { return bad("not a release handler's record"); };
  if (json.is_discarded() || !json.is_object()) return not_one();
  const auto format = json.find("hotswap_releases");
  const auto releases = json.find("releases");
  if (format == json.end() || *format != 1 || releases == json.end() || !releases->is_array()) return not_one();
  std::vector<recorded_release> record;
  for (const auto& one : *releases) {
    if (!one.is_object()) return not_one();
    recorded_release entry;
    for (auto [field, out] : {std::pair{"name", &entry.name}, std::pair{"vsn", &entry.vsn},
                              std::pair{"manifest", &entry.manifest}, std::pair{"status", &entry.status}}) {
      const auto found = one.find(field);
      if (found == one.end() || !found->is_string()) return not_one();
      *out = found->template get<std::string>();
    }
    if (entry.status != "permanent" && entry.status != "current" && entry.status != "old" && entry.status != "unpacked")
      return not_one();
    if (const auto modules = one.find("modules"); modules != one.end()) {  // (absent in older records)
      if (!modules->is_object()) return not_one();
      for (const auto& [module, build] : modules->items()) {
        if (!build.is_string()) return not_one();
        entry.builds.emplace_back(module, build.template get<std::string>());
      }
    }
    record.push_back(std::move(entry));
  }
  return record;
}

/// Replaces the record in `directory` with `record`, atomically.
template <class = void>
result<void> write_record(const record_directory& directory, const std::vector<recorded_release>& record) {
  nlohmann::json releases = nlohmann::json::array();
  for (const auto& one : record) {
    nlohmann::json modules = nlohmann::json::object();
    for (const auto& [module, build] : one.builds) modules[module] = build;
    releases.push_back({{"name", one.name},
                        {"vsn", one.vsn},
                        {"manifest", one.manifest},
                        {"status", one.status},
                        {"modules", std::move(modules)}});
  }
  const std::string text = nlohmann::json{{"hotswap_releases", 1}, {"releases", releases}}.dump(2) + "\n";
  constexpr const char* temporary = "releases.json.new";
  auto failed = [&](const char* doing) {
    const std::string why = std::strerror(errno);
    ::unlinkat(directory.fd, temporary, 0);
    return error{errc::bad_release, directory.path + "/" + temporary + ": " + doing + ": " + why};
  };
  const int fd = ::openat(directory.fd, temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return failed("open");
  for (std::size_t written = 0; written < text.size();) {
    const ssize_t wrote = ::write(fd, text.data() + written, text.size() - written);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      ::close(fd);
      return failed("write");
    }
    written += static_cast<std::size_t>(wrote);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return failed("fsync");
  }
  ::close(fd);
  if (::renameat(directory.fd, temporary, directory.fd, "releases.json") != 0) return failed("rename");
  ::fsync(directory.fd);  // the rename itself, on disk
  return {};
}

}  // namespace hotswap::detail
// ---- hotswap/detail/releases/transaction.hpp ----
// An upgrade of many servers as one transaction: every server suspended in parallel under one
// deadline, switched in order keeping its old table and state, then all committed or all put
// back as they were. (OTP's release_handler suspends one by one and cannot undo a code_change.)
// A step may also only hold its server: suspended with the others, never changed, and left
// suspended on commit (a server the release stops, or restarts as another); and steps of the
// caller's own (starting the servers that replace them) run after the changes, inside the pause. A
// server that ends before the transaction reaches it fails it, unless its step may end: then it
// is left out (the release handler's servers: a connection closed during the pause).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>


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
// ---- hotswap/detail/releases/unpacked.hpp ----
// The releases unpack puts in place: each in a directory of its own inside the release handler's,
// `unpacked/NAME-VSN/`, and what remove_release deletes of it. Only that directory is ever
// emptied: a release's files anywhere else were not put there by hotswap, and are kept.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>


namespace hotswap::detail {

/// Where, in the release handler's directory, unpack puts release `name` `vsn` (both
/// valid_release_word: no '/', never "." or "..").
inline std::string unpacked_place(const std::string& name, const std::string& vsn) {
  return "unpacked/" + name + "-" + vsn;
}

/// Deletes the regular files of `place` (in `directory`, not through a link) that `keep` does not
/// name (absolute paths), then `place` if it is left empty. Returns the files deleted; what it
/// keeps, and why, goes to `notes`.
template <class = void>
std::vector<std::string> remove_unpacked(const record_directory& directory, const std::string& place,
                                         const std::vector<std::string>& keep, std::vector<std::string>& notes) {
  std::vector<std::string> removed;
  const std::string path = absolute_path(directory.path) + "/" + place;
  const int fd = ::openat(directory.fd, place.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    notes.push_back(path + ": " + std::strerror(errno) + ": no file deleted");
    return removed;
  }
  DIR* listing = ::fdopendir(fd);
  if (!listing) {
    notes.push_back(path + ": " + std::strerror(errno) + ": no file deleted");
    ::close(fd);
    return removed;
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(listing))
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0)
      names.emplace_back(entry->d_name);
  std::sort(names.begin(), names.end());
  std::size_t kept = 0;
  for (const auto& name : names) {
    const std::string file = path + "/" + name;
    struct stat info {};
    if (::fstatat(fd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(info.st_mode)) {
      notes.push_back(file + ": kept: not a regular file (unpack writes none)");
      ++kept;
    } else if (std::find(keep.begin(), keep.end(), file) != keep.end()) {
      notes.push_back(file + ": kept: another release names it");
      ++kept;
    } else if (::unlinkat(fd, name.c_str(), 0) != 0) {
      notes.push_back(file + ": kept: " + std::strerror(errno));
      ++kept;
    } else {
      removed.push_back(file);
    }
  }
  ::closedir(listing);  // (closes fd)
  if (kept == 0 && ::unlinkat(directory.fd, place.c_str(), AT_REMOVEDIR) != 0)
    notes.push_back(path + ": kept: " + std::strerror(errno));
  return removed;
}

}  // namespace hotswap::detail

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

// ---- hotswap/impl/releases.hpp ----
// The bodies of <hotswap/releases.hpp> (its declarations, documented, are there): an upgrade's
// report and transaction, reading a release, a plan's text, the release handler's operations,
// and what a plan checks of each server. Included by releases.hpp only.

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

// ---- hotswap/detail/releases/print_bytes.hpp ----
// A state's size as reports print it (an upgrade's report, a dry run's progress, control's state).

#include <cstddef>
#include <iterator>
#include <string>

#include <fmt/format.h>

namespace hotswap::detail {

/// 512 B, 3.2 KiB, 41.0 MiB: a state's size, as reports print it.
inline std::string print_bytes(std::size_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  for (; value >= 1024 && unit + 1 < std::size(units); ++unit) value /= 1024;
  return fmt::format("{:.1f} {}", value, units[unit]);
}

}  // namespace hotswap::detail

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
