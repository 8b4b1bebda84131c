// A control request: one JSON object on one line, decoded and checked against the command's
// fields before anything runs (the libFuzzer target in tests/fuzz feeds this any bytes).
//
//     {"command": "upgrade", "release": "/srv/anemone/anemone-3.release.json"}
//
// The commands and their fields are listed once, here: the control server checks requests
// against the list, and hotswapctl makes its subcommands and their help from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../result.hpp"

namespace hotswap::detail {

/// A request, its fields checked: those its command does not take are empty.
struct operator_request {
  std::string command;
  std::string release;          ///< plan, dry-run, upgrade, downgrade: a release manifest's path
  std::string file;             ///< load: a module file's path
  std::string module;           ///< purge: a module's name
  std::string directory;        ///< watch: a directory of module files
  std::string server;           ///< state, stats, log, trace: a server's registered name or id
  std::string name, vsn;        ///< remove-release: a release's name and vsn
  std::string archive;          ///< unpack: a release archive's path
  std::uint64_t count = 0;      ///< trace: how many messages
  bool force = false;           ///< purge: stop the servers still using the old version
  std::optional<bool> timing;   ///< stats: the timing of handlers switched on or off
  std::optional<bool> enable;   ///< log: the server's log switched on or off
  std::optional<double> grace;  ///< upgrade, downgrade: the grace period, in seconds
};

/// The longest grace period a request may ask for, in seconds: a year.
inline constexpr double longest_grace = 365.0 * 24 * 3600;

/// A field a command takes: a string, a count (1 to 1,000,000), a boolean, or seconds (0 to a
/// year, with a fraction).
struct operator_field {
  enum kind_type { text, count, flag, seconds } kind;
  std::string_view name;
  bool required;
  std::string_view help;
};

/// What a uid's role grants (control_options::viewer_uids, operator_uids): viewers see how the
/// program runs; operators change it, and see what its servers hold and are sent.
enum class access_level { view, operate };

struct operator_command {
  std::string_view name;
  std::vector<operator_field> fields;
  std::string_view summary;  ///< one line
  std::string_view help;     ///< what it does, for `hotswapctl COMMAND --help` and docs/operations.md
  access_level access = access_level::operate;  ///< the least role that may run it
};

inline const std::vector<operator_command>& operator_commands() {
  using field = operator_field;
  const field release{field::text, "release", true, "the release's manifest file (NAME-VSN.release.json)"};
  const field server{field::text, "server", true, "a server's registered name, or its id"};
  const field grace{field::seconds, "grace", false,
                    "the grace period: until make-permanent, or for this long, a server of the release whose handler "
                    "throws goes back to its version before with its state, and the release rolls back (0: none; "
                    "default: the program's, control_options::grace_period)"};
  static const std::vector<operator_command> commands{
      {"status",
       {},
       "the program, its release, its modules and every server",
       "Lists the running release, every loaded module with its current and old vsn and the servers on "
       "each, and every server: id, name, interface, implementation, vsn, suspended, mailbox, messages "
       "handled. A server too busy to answer at once is listed as busy.",
       access_level::view},
      {"tree",
       {},
       "the supervision trees",
       "Each supervisor with its children by id, down the tree; servers no supervisor owns are listed "
       "on their own.",
       access_level::view},
      {"state",
       {server},
       "a server's state",
       "The server's state, printed as Elixir's inspect prints it where its schema enables inspect, "
       "else its type; with its vsn and the bytes it holds."},
      {"stats",
       {server,
        {field::flag, "timing", false, "switch the timing of handlers on or off (it costs two clock reads a message)"}},
       "a server's statistics",
       "Messages handled, time in handlers (while timing is on), mailbox, and the slowest handler.",
       access_level::view},
      {"top",
       {},
       "every server's load, for hotswapctl top",
       "A snapshot of every server's mailbox, messages handled and time in handlers, with the program's "
       "clock: hotswapctl top ranks the servers by the difference between two of them.",
       access_level::view},
      {"log",
       {server, {field::flag, "enable", false, "switch the server's log on or off"}},
       "the last events of a server (Erlang's sys:log)",
       "The last messages the server took in and handled, from a bounded ring kept while its log is on."},
      {"trace",
       {server, {field::count, "count", true, "how many messages"}},
       "the next COUNT messages in and out of a server, as they happen",
       "Streams a line for each message the server takes in or handles, COUNT in all, at most the "
       "program's trace rate a second (those beyond are counted, not sent), then a summary. Tracing "
       "stops when the client goes."},
      {"releases",
       {},
       "the releases the program knows: permanent, current, old, unpacked",
       "Every release the release handler knows, with its vsn and status.",
       access_level::view},
      {"plan",
       {release},
       "the plan to a release, validated, without running it",
       "The plan's steps in order, the servers of each; refused with every reason at once if any check fails."},
      {"dry-run",
       {release},
       "every migration of the plan tried on the running states, nothing changed",
       "Runs every migration on a copy of each server's state, measures each, and discards them; reports "
       "the expected pause."},
      {"upgrade",
       {release, grace},
       "the release installed: a line per step as it happens, then the report",
       "Loads the release's modules, suspends every affected server at once, changes their code, resumes "
       "them and purges the old versions, as one transaction: if any step fails, every server goes back "
       "to its old code with its old state. The release then runs in its grace period (--grace) until "
       "make-permanent: a server whose handler throws goes back to its old code with its state, and the release "
       "rolls back by itself."},
      {"downgrade",
       {release, grace},
       "an older release installed, each server's state migrated down",
       "As upgrade, to a release whose modules are older: each server's state is migrated down. Refused "
       "if any module would go up."},
      {"make-permanent",
       {},
       "the current release made permanent, ending its grace period",
       "Makes the current release the one the program boots, and ends its grace period."},
      {"rollback",
       {},
       "back to the permanent release, every server keeping its state",
       "Installs the permanent release again: each server's state migrated down, none lost."},
      {"unpack",
       {{field::text, "archive", true, "the release's archive (NAME-VSN.release.tar, hotswap-seal pack makes one)"}},
       "a release shipped as one archive checked and put in place (OTP's unpack_release)",
       "Reads the archive (a flat tar of the manifest, the modules it names and their signature), checks every file "
       "and, when the program trusts keys, the signature over them all and each module's seal, then puts the release "
       "in the release handler's directory, recorded unpacked: upgrade its manifest (the path printed) to install "
       "it. A refused archive leaves nothing behind."},
      {"remove-release",
       {{field::text, "name", true, "the release's name"}, {field::text, "vsn", true, "the release's vsn"}},
       "an old release forgotten, and the files only it used deleted (OTP's remove_release)",
       "Forgets an old release (refused for the permanent and the current one, and a release not known) and "
       "records that; if unpack put it in place, deletes the files of its directory in the release handler's that no "
       "other known release names. Files anywhere else are never deleted."},
      {"load",
       {{field::text, "file", true, "the module file (a shared library built with hotswap_add_module)"}},
       "a module file loaded, checked before any of its code runs",
       "Loads a module through the code server: its seal, ABI, interface and schemas are checked before "
       "any of its code runs. The servers stay on their code until an upgrade moves them."},
      {"purge",
       {{field::text, "module", true, "the module's name"},
        {field::flag, "force", false, "stop the servers still on the old version first"}},
       "a module's old version unloaded",
       "Unloads the old version of a module; refused while servers run it, unless forced."},
      {"watch",
       {{field::text, "directory", true, "the directory the build writes the program's module files to"}},
       "module files reloaded as the build rewrites them, a line each (the development loop)",
       "Watches the directory until the client goes: each module file the build finishes writing whose "
       "module the program runs is loaded, and every server on the module upgraded to it in one "
       "transaction, or refused with the reason and the old code serving on. A program whose code server "
       "is in development mode takes another build of the same vsn; a handler of a reloaded build that "
       "throws within a minute puts its servers back on the build before, with their state."},
  };
  return commands;
}

inline const operator_command* find_operator_command(std::string_view name) {
  for (const auto& one : operator_commands())
    if (one.name == name) return &one;
  return nullptr;
}

/// A reply line: {"ok": true, "result": ...} or {"ok": false, "error": {"code", "message"},
/// "result": ...} (a failed upgrade's report). Bytes that are not UTF-8 (a path, a message
/// quoting a request) are replaced, never thrown on.
inline std::string reply_line(bool ok, nlohmann::json result, const error& failure = {}) {
  nlohmann::json line{{"ok", ok}};
  if (!ok) line["error"] = {{"code", to_string(failure.code)}, {"message", failure.what}};
  if (!result.is_null()) line["result"] = std::move(result);
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// An event line, sent before a request's reply: {"event": kind, ...fields}.
inline std::string event_line(std::string_view kind, nlohmann::json fields) {
  fields["event"] = kind;
  return fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
  const operator_command* known = find_operator_command(name);
  if (!known) {
    std::string names;
    for (const auto& one : operator_commands()) names += (names.empty() ? "" : ", ") + std::string(one.name);
    return error{errc::bad_request, "unknown command \"" + name.substr(0, 64) + "\" (commands: " + names + ")"};
  }
  operator_request request;
  request.command = name;
  for (const auto& [key, value] : parsed.items()) {
    if (key == "command") continue;
    const operator_field* field = nullptr;
    for (const auto& one : known->fields)
      if (one.name == key) field = &one;
    if (!field) return error{errc::bad_request, name + " takes no \"" + key.substr(0, 64) + "\""};
    switch (field->kind) {
      case operator_field::flag:
        if (!value.is_boolean()) return error{errc::bad_request, "\"" + key + "\" must be true or false"};
        (key == "force" ? request.force : (key == "timing" ? request.timing : request.enable).emplace()) =
            value.get<bool>();
        break;
      case operator_field::count:
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() < 1 || value.get<std::uint64_t>() > 1'000'000)
          return error{errc::bad_request, "\"" + key + "\" must be a whole number from 1 to 1000000"};
        request.count = value.get<std::uint64_t>();
        break;
      case operator_field::seconds:
        if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() <= longest_grace))
          return error{errc::bad_request, "\"" + key + "\" must be a number of seconds from 0 to 31536000"};
        request.grace = value.get<double>();
        break;
      case operator_field::text:
        if (!value.is_string() || value.get_ref<const std::string&>().empty())
          return error{errc::bad_request, "\"" + key + "\" must be a non-empty string"};
        (key == "release"     ? request.release
         : key == "file"      ? request.file
         : key == "module"    ? request.module
         : key == "directory" ? request.directory
         : key == "name"      ? request.name
         : key == "vsn"       ? request.vsn
         : key == "archive"   ? request.archive
                              : request.server) = value.get<std::string>();
        break;
    }
  }
  for (const auto& field : known->fields)
    if (field.required && !parsed.contains(field.name))
      return error{errc::bad_request, name + " needs \"" + std::string(field.name) + "\""};
  return request;
}

}  // namespace hotswap::detail
