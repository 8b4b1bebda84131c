// Where a program's control socket lives: a directory only its user can enter, made if missing,
// refused if it is anyone else's or open to others, or if a directory above it is (a path another
// user prepared is never reused); the socket is <program>.<pid>.sock in it. hotswapctl checks the
// same before it believes a socket.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../../result.hpp"
#include "../modules/module_file.hpp"

namespace hotswap::detail {

/// The directory for the sockets of this user's programs: $XDG_RUNTIME_DIR/hotswap when the
/// session has one, else /tmp/hotswap-<uid>. (hotswapctl list looks in the same place.)
inline std::string default_socket_directory() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  struct stat seen {};
  if (runtime && *runtime == '/' && ::stat(runtime, &seen) == 0 && S_ISDIR(seen.st_mode))
    return std::string(runtime) + "/hotswap";
  return "/tmp/hotswap-" + std::to_string(::geteuid());
}

/// A socket directory, opened once checked: what is made in it is made relative to `fd()`, so a
/// directory renamed or replaced after the check is not the one used.
class socket_directory {
 public:
  socket_directory(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  socket_directory(socket_directory&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}
  socket_directory& operator=(socket_directory&& other) noexcept {
    std::swap(fd_, other.fd_);
    std::swap(path_, other.path_);
    return *this;
  }
  socket_directory(const socket_directory&) = delete;
  socket_directory& operator=(const socket_directory&) = delete;
  ~socket_directory() {
    if (fd_ >= 0) ::close(fd_);
  }

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

namespace socket_place {

/// Whether `uid` may own a socket directory, or one above it: this user, root (when in
/// `others`, or above), or one of `others`.
inline bool trusted(uid_t uid, const std::vector<uid_t>& others, bool above) {
  if (uid == ::geteuid() || (above && uid == 0)) return true;
  for (uid_t one : others)
    if (uid == one) return true;
  return false;
}

/// Why the directory `shown`, above `directory`, makes it unsafe (empty: it is safe): the rules of
/// module paths (unsafe_because in modules/module_file.hpp), with `others` trusted too.
inline std::string unsafe_above(const struct stat& info, const std::string& shown, const std::string& directory,
                                const std::vector<uid_t>& others) {
  if (!trusted(info.st_uid, others, true))
    return fmt::format("{}, above {}, belongs to uid {}: refused", shown, directory, info.st_uid);
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) && !(S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX)))
    return fmt::format("{}, above {}, is writable by {} (mode {:03o}): refused", shown, directory,
                       (info.st_mode & S_IWOTH) ? "every user" : "its group", info.st_mode & 07777);
  return {};
}

/// Checks every directory above `directory`, up to /: as the path says (a link on the way must be a
/// trusted user's: one in a sticky directory could be anyone's) and as it resolves.
inline result<void> check_above(const std::string& directory, const std::vector<uid_t>& others) {
  std::string given = absolute(directory);
  while (given.size() > 1 && given.back() == '/') given.pop_back();
  const std::string parent = given.substr(0, given.rfind('/'));
  char* resolved = ::realpath(parent.empty() ? "/" : parent.c_str(), nullptr);
  if (!resolved) return error{errc::bad_control, fmt::format("cannot read {}: {}", parent, std::strerror(errno))};
  const std::string real(resolved);
  std::free(resolved);
  for (std::string dir : {parent, real}) {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    for (;;) {
      const std::string shown = dir.empty() ? "/" : dir;
      struct stat info {};
      if (::lstat(shown.c_str(), &info) != 0)
        return error{errc::bad_control, fmt::format("cannot read {}: {}", shown, std::strerror(errno))};
      if (S_ISLNK(info.st_mode)) {
        if (!trusted(info.st_uid, others, true))
          return error{errc::bad_control,
                       fmt::format("{}, above {}, is a link of uid {}: refused", shown, directory, info.st_uid)};
        if (::stat(shown.c_str(), &info) != 0)
          return error{errc::bad_control, fmt::format("cannot read {}: {}", shown, std::strerror(errno))};
      }
      if (std::string why = unsafe_above(info, shown, directory, others); !why.empty())
        return error{errc::bad_control, std::move(why)};
      if (dir.empty()) break;
      dir.erase(dir.rfind('/'));
    }
  }
  return {};
}

/// Checks the opened directory `fd`: a directory, of this user or one of `others`, closed to
/// others but for passing through it (mode 0711).
inline result<void> check_opened(int fd, const std::string& directory, const std::vector<uid_t>& others) {
  struct stat seen {};
  if (::fstat(fd, &seen) != 0)
    return error{errc::bad_control, "cannot read " + directory + ": " + std::strerror(errno)};
  if (!S_ISDIR(seen.st_mode)) return error{errc::bad_control, directory + " is not a directory: refused"};
  if (!trusted(seen.st_uid, others, false)) {
    std::string owners = std::to_string(::geteuid());
    for (uid_t one : others)
      if (one != ::geteuid()) owners += " nor " + std::to_string(one);
    return error{errc::bad_control,
                 fmt::format("{} belongs to uid {}, not to uid {}: refused", directory, seen.st_uid, owners)};
  }
  if ((seen.st_mode & 066) != 0)
    return error{errc::bad_control,
                 fmt::format("{} is open to other users (mode {:03o}): refused", directory, seen.st_mode & 0777)};
  return {};
}

/// `directory` opened with `flags` (never through a link); errc::no_file if it is missing.
inline result<int> open_directory(const std::string& directory, int flags) {
  const int fd = ::open(directory.c_str(), flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return fd;
  if (errno == ENOENT) return error{errc::no_file, directory + ": " + std::strerror(errno)};
  if (errno == ENOTDIR || errno == ELOOP)
    return error{errc::bad_control, directory + " is not a directory (a link or a file): refused"};
  return error{errc::bad_control, "cannot open " + directory + ": " + std::strerror(errno)};
}

}  // namespace socket_place

/// Checks, making nothing, that `directory` may hold a socket to believe: a directory (not a
/// link), of this user or one of `others`, closed to others but for passing through it, and every
/// directory above it owned by root, this user or one of `others`, writable by no one else unless
/// sticky. errc::no_file if it is missing. (hotswapctl, before it lists or connects.)
inline result<void> check_socket_directory(const std::string& directory, const std::vector<uid_t>& others = {}) {
  if (auto above = socket_place::check_above(directory, others); !above) return above.error();
  // O_PATH: another user's shared directory (mode 0711) can be checked without reading it.
  auto fd = socket_place::open_directory(directory, O_PATH);
  if (!fd) return fd.error();
  auto checked = socket_place::check_opened(*fd, directory, others);
  ::close(*fd);
  return checked;
}

/// Makes `directory` (mode 0700) if it is missing, and opens it once checked as
/// check_socket_directory does, for this user alone. A socket `shared` with other users
/// (control_options::operator_uids, viewer_uids) needs passage through it: the directory is then made 0711,
/// and the socket's peer check is the gate.
inline result<socket_directory> open_socket_directory(const std::string& directory, bool shared = false) {
  if (auto above = socket_place::check_above(directory, {}); !above) return above.error();
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
    return error{errc::bad_control, "cannot make " + directory + ": " + std::strerror(errno)};
  auto fd = socket_place::open_directory(directory, O_RDONLY);
  if (!fd) return error{errc::bad_control, fd.error().what};
  socket_directory opened(*fd, directory);
  if (auto checked = socket_place::check_opened(opened.fd(), directory, {}); !checked) return checked.error();
  struct stat seen {};
  if (shared && (::fstat(opened.fd(), &seen) != 0 ||
                 ((seen.st_mode & 011) != 011 && ::fchmod(opened.fd(), (seen.st_mode & 0700) | 0711) != 0)))
    return error{errc::bad_control, "cannot open " + directory + " to other users: " + std::strerror(errno)};
  return opened;
}

/// `directory`/<program>.<pid>.sock, if a socket address can hold it.
inline result<std::string> socket_path(const std::string& directory, const std::string& program) {
  if (program.empty() || program.find('/') != std::string::npos || program.find('.') == 0)
    return error{errc::bad_control, "the program's name \"" + program + "\" cannot name a socket file"};
  std::string path = directory + "/" + program + "." + std::to_string(::getpid()) + ".sock";
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    return error{errc::bad_control, path + " is too long for a socket address (" +
                                        std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes at most)"};
  return path;
}

}  // namespace hotswap::detail
