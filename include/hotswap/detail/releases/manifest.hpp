// Reading a release manifest, the JSON object hotswap_add_release writes beside the modules:
//
//     {"hotswap_release": 1, "name": "anemone", "vsn": "3",
//      "modules": ["account_manager_v3.so", "inspector_v3.so"]}
//
// Module files are relative to the manifest's directory unless absolute. Parsed by nlohmann/json.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../result.hpp"
#include "../modules/module_file.hpp"

namespace hotswap::detail {

/// A release as its manifest says.
struct release_manifest {
  std::string name, vsn;
  std::vector<std::string> modules;  // module files, as paths
  std::string path;                  // the manifest's
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
  return release;
}

}  // namespace hotswap::detail
