// The releases unpack puts in place: each in a directory of its own inside the release handler's,
// `unpacked/NAME-VSN/`, and what remove_release deletes of it. Only that directory is ever
// emptied: a release's files anywhere else were not put there by hotswap, and are kept.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "release_record.hpp"

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
