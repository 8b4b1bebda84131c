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
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../result.hpp"
#include "../modules/module_file.hpp"

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
