// The release handler's record on disk: the releases it knows and their states, in
// `releases.json` in a directory of its own, so that a program started again boots its
// permanent release. Written to a temporary file, flushed, then renamed over the record: a
// crash mid-write leaves the previous record.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../result.hpp"

namespace hotswap::detail {

struct recorded_release {
  std::string name, vsn, manifest, status;  // status: permanent, current or old
};

/// Makes `directory` (mode 0700) if it is missing; refuses one that is not a directory, is
/// another user's, or is writable by others.
template <class = void>
result<void> own_directory(const std::string& directory) {
  auto refuse = [&](const std::string& why) { return error{errc::bad_release, directory + ": " + why}; };
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) return refuse(std::strerror(errno));
  struct stat info {};
  if (::lstat(directory.c_str(), &info) != 0) return refuse(std::strerror(errno));
  if (!S_ISDIR(info.st_mode)) return refuse("not a directory");
  if (info.st_uid != ::geteuid())
    return refuse("owned by another user: the release handler keeps its record in a directory of its own");
  if (info.st_mode & (S_IWGRP | S_IWOTH)) return refuse("writable by other users");
  return {};
}

/// `path` from the root (a record outlives the working directory it was made in).
inline std::string absolute_path(const std::string& path) {
  if (path.starts_with('/')) return path;
  char here[4096];
  return ::getcwd(here, sizeof here) ? std::string(here) + "/" + path : path;
}

/// The record in `directory` (none yet: empty).
template <class = void>
result<std::vector<recorded_release>> read_record(const std::string& directory) {
  const std::string path = directory + "/releases.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::vector<recorded_release>{};
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto json = nlohmann::json::parse(text, nullptr, false);
  auto bad = [&] { return error{errc::bad_release, path + ": not a release handler's record"}; };
  const auto format = json.find("hotswap_releases");
  const auto releases = json.find("releases");
  if (json.is_discarded() || format == json.end() || *format != 1 || releases == json.end() || !releases->is_array())
    return bad();
  std::vector<recorded_release> record;
  for (const auto& one : *releases) {
    recorded_release entry;
    for (auto [field, out] : {std::pair{"name", &entry.name}, std::pair{"vsn", &entry.vsn},
                              std::pair{"manifest", &entry.manifest}, std::pair{"status", &entry.status}}) {
      const auto found = one.find(field);
      if (found == one.end() || !found->is_string()) return bad();
      *out = found->template get<std::string>();
    }
    if (entry.status != "permanent" && entry.status != "current" && entry.status != "old") return bad();
    record.push_back(std::move(entry));
  }
  return record;
}

/// Replaces the record in `directory` with `record`, atomically.
template <class = void>
result<void> write_record(const std::string& directory, const std::vector<recorded_release>& record) {
  nlohmann::json releases = nlohmann::json::array();
  for (const auto& one : record)
    releases.push_back({{"name", one.name}, {"vsn", one.vsn}, {"manifest", one.manifest}, {"status", one.status}});
  const std::string text = nlohmann::json{{"hotswap_releases", 1}, {"releases", releases}}.dump(2) + "\n";
  const std::string path = directory + "/releases.json", temporary = path + ".new";
  auto failed = [&](const char* doing) {
    const std::string why = std::strerror(errno);
    ::unlink(temporary.c_str());
    return error{errc::bad_release, temporary + ": " + doing + ": " + why};
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
  if (::rename(temporary.c_str(), path.c_str()) != 0) return failed("rename");
  if (const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);  // the rename itself, on disk
    ::close(dir);
  }
  return {};
}

}  // namespace hotswap::detail
