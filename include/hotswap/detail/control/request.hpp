// A control request: one JSON object on one line, decoded and checked against the command's
// fields before anything runs (the libFuzzer target in tests/fuzz feeds this any bytes).
//
//     {"command": "upgrade", "release": "/srv/anemone/anemone-3.release.json"}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../result.hpp"

namespace hotswap::detail {

/// A request, its fields checked: those its command does not take are empty.
struct operator_request {
  std::string command;
  std::string release;  ///< plan, dry-run, upgrade, downgrade: a release manifest's path
  std::string file;     ///< load: a module file's path
  std::string module;   ///< purge: a module's name
  bool force = false;   ///< purge: stop the servers still using the old version
};

/// A command and the fields it takes (each a string but `force`, a boolean).
struct operator_command {
  std::string_view name;
  std::vector<std::string_view> fields;  ///< required, but `force`
  std::string_view summary;
};

inline const std::vector<operator_command>& operator_commands() {
  static const std::vector<operator_command> commands{
      {"status", {}, "the program, its release, its modules and every server"},
      {"releases", {}, "the releases the program knows: permanent, current, old"},
      {"plan", {"release"}, "the plan to a release, validated, without running it"},
      {"dry-run", {"release"}, "every migration of the plan tried on the running states, nothing changed"},
      {"upgrade", {"release"}, "the release installed: a line per step as it happens, then the report"},
      {"downgrade", {"release"}, "an older release installed, each server's state migrated down"},
      {"make-permanent", {}, "the current release made permanent, ending its grace period"},
      {"rollback", {}, "back to the permanent release, every server keeping its state"},
      {"load", {"file"}, "a module file loaded, checked before any of its code runs"},
      {"purge", {"module", "force"}, "a module's old version unloaded (force: its servers stopped first)"},
  };
  return commands;
}

/// A reply line: {"ok": true, "result": ...} or {"ok": false, "error": {"code", "message"},
/// "result": ...} (a failed upgrade's report), or a progress event. Bytes that are not UTF-8 (a
/// path, a message quoting a request) are replaced, never thrown on.
inline std::string reply_line(bool ok, nlohmann::json result, const error& failure = {}) {
  nlohmann::json line{{"ok", ok}};
  if (!ok) line["error"] = {{"code", to_string(failure.code)}, {"message", failure.what}};
  if (!result.is_null()) line["result"] = std::move(result);
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The request on `line` (without its newline), or why it is none (errc::bad_request).
inline result<operator_request> decode_request(std::string_view line) {
  using json = nlohmann::json;
  const json parsed = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return error{errc::bad_request, "not JSON: a request is one JSON object on one line"};
  if (!parsed.is_object()) return error{errc::bad_request, "not a JSON object: a request is {\"command\": ...}"};
  const auto command = parsed.find("command");
  if (command == parsed.end() || !command->is_string())
    return error{errc::bad_request, "no \"command\" string in the request"};
  const std::string& name = command->get_ref<const std::string&>();
  const operator_command* known = nullptr;
  for (const auto& one : operator_commands())
    if (one.name == name) known = &one;
  if (!known) {
    std::string names;
    for (const auto& one : operator_commands()) names += (names.empty() ? "" : ", ") + std::string(one.name);
    return error{errc::bad_request, "unknown command \"" + name.substr(0, 64) + "\" (commands: " + names + ")"};
  }
  operator_request request{name, {}, {}, {}, false};
  for (const auto& [key, value] : parsed.items()) {
    if (key == "command") continue;
    bool takes = false;
    for (auto field : known->fields) takes = takes || field == key;
    if (!takes) return error{errc::bad_request, name + " takes no \"" + key.substr(0, 64) + "\""};
    if (key == "force") {
      if (!value.is_boolean()) return error{errc::bad_request, "\"force\" must be true or false"};
      request.force = value.get<bool>();
      continue;
    }
    if (!value.is_string() || value.get_ref<const std::string&>().empty())
      return error{errc::bad_request, "\"" + key + "\" must be a non-empty string"};
    std::string& field = key == "release" ? request.release : key == "file" ? request.file : request.module;
    field = value.get<std::string>();
  }
  for (auto field : known->fields)
    if (field != "force" && !parsed.contains(field))
      return error{errc::bad_request, name + " needs \"" + std::string(field) + "\""};
  return request;
}

}  // namespace hotswap::detail
