// The code server's policy: whether a module's note fits the program (its ABI, the interface
// asked for, the schemas it knows) and the module's loaded versions (the same interface, a newer
// vsn, an old version no server uses), and how the servers in the way are named.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../result.hpp"
#include "../abi/abi_description.hpp"
#include "../common/std_algorithm.hpp"
#include "../runtime/server_core.hpp"
#include "../schemas/version_info.hpp"
#include "module_file.hpp"

namespace hotswap::detail {

/// What to do about servers that keep an old version in use.
inline constexpr std::string_view purge_advice =
    ": change their code or stop them first (or purge with purge_mode::force)";

/// `counter vsn 1 is still used by server 4 (counter), server 7`.
template <class Version, class Handle>
std::string describe_users(const Version& version, const std::vector<Handle>& using_it) {
  std::string text = version.name() + " vsn " + std::to_string(version.vsn()) + " is still used by ";
  for (std::size_t i = 0; i < using_it.size(); ++i) text += (i ? ", " : "") + using_it[i].core()->label();
  return text;
}

/// Whether an interface of fingerprint `interface` is one of the versions in `lineage`.
inline bool in_lineage(const std::vector<std::uint64_t>& lineage, std::uint64_t interface) {
  return std::find(lineage.begin(), lineage.end(), interface) != lineage.end();
}

/// The first difference between the messages of two interfaces, said of the later one.
inline std::string first_message_change(const std::vector<module_note_fields::message_slot>& before,
                                        const std::vector<module_note_fields::message_slot>& after) {
  for (const auto& message : before) {
    if (message.slot >= after.size()) return message.name + " is not taken any more";
    const auto& now = after[message.slot];
    if (now.fingerprint != message.fingerprint)
      return message.name == now.name ? message.name + " is taken with another reply, or as another kind"
                                      : "in the place of " + message.name + " it takes " + now.name;
  }
  if (after.size() > before.size()) return after[before.size()].name + " is added";
  return "its messages are the same, in another interface";
}

/// Checks a module's note against the program (`interface`: the one asked for, 0 for any;
/// `known`: the program's schema registry) and the module's loaded versions (`now`, `before`:
/// its current and old ones, or null); `older`: a release going down loads an older vsn;
/// `development`: another build of the current vsn is taken too.
template <class ModulePtr, class Registry>
result<void> check_fits(const module_note_fields& note, const std::string& path, std::uint64_t interface,
                        std::string_view interface_name, const ModulePtr& now, const ModulePtr& before,
                        const Registry& known, bool older = false, bool development = false) {
  if (note.abi != abi_fingerprint)
    return file_error(errc::abi_mismatch, path,
                      "built for another ABI: the module has \"" + note.abi_text + "\", this program \"" +
                          std::string(abi_description) + "\"");
  if (interface && !in_lineage(note.interface_lineage, interface))
    return file_error(errc::wrong_interface, path,
                      note.implementation + " implements " + note.interface_name +
                          (note.interface_name == interface_name
                               ? " with other messages than this program's, and not as a declared later version of it"
                               : ", not this program's " + std::string(interface_name)));
  if (const ModulePtr& loaded = now ? now : before;
      loaded && !in_lineage(note.interface_lineage, loaded->interface_fingerprint()) &&
      !in_lineage(loaded->interface_lineage(), note.interface))
    return file_error(errc::wrong_interface, path,
                      note.name + " vsn " + std::to_string(note.vsn) + " implements " + note.interface_name +
                          " differently from the loaded vsn " + std::to_string(loaded->vsn()) + " (" +
                          loaded->interface_name() + "), and not as a declared later (or earlier) version of it: " +
                          first_message_change(loaded->messages(), note.messages));
  if (now && development && !older && note.vsn == now->vsn()) {
    if (note.build == now->build())
      return file_error(
          errc::not_newer, path,
          note.name + " vsn " + std::to_string(note.vsn) + " build " + note.build + " is the build loaded already");
  } else if (now && (older ? note.vsn >= now->vsn() : note.vsn <= now->vsn())) {
    return file_error(errc::not_newer, path,
                      note.name + " vsn " + std::to_string(note.vsn) + " is not " + (older ? "older" : "newer") +
                          " than the current vsn " + std::to_string(now->vsn()) +
                          (!older && note.vsn == now->vsn() && note.build != now->build()
                               ? " (another build of it: a code server in development mode takes that)"
                               : ""));
  }
  if (now && before)
    if (const auto using_it = before->servers(); !using_it.empty())
      return file_error(
          errc::not_purged, path,
          "the old version must go first: " + describe_users(*before, using_it) + std::string(purge_advice));
  for (const auto& version : note.schemas)
    if (const auto found = known.find(version.schema, version.vsn); found && found->fingerprint != version.fingerprint)
      return file_error(
          errc::schema_conflict, path,
          "its schema " + version.schema + " version " + std::to_string(version.vsn) +
              " differs from this program's: " +
              field_differences(described_fields(version.description), described_fields(*found), "in it", "here") +
              " (it has " + version.description + ", this program " + described(*found) + ")");
  return {};
}

}  // namespace hotswap::detail
