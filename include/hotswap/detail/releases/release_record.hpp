// The release handler's record on disk: the releases it knows, their states, and each one's
// modules by build, in `releases.json` in a directory of its own, so that a program started
// again boots its permanent release (and only the very builds it recorded). The directory is
// checked up to the root and held open: the record is read and written relative to it, never
// through its path again. Written to a temporary file, flushed, then renamed over the record: a
// crash mid-write leaves the previous record.
#pragma once

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

#include "../../result.hpp"
#include "../modules/module_file.hpp"

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
