// Where a program's control socket lives: a directory only its user can enter, made if missing,
// refused if it is anyone else's or open to others (a path another user prepared is never
// reused); the socket is <program>.<pid>.sock in it.
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

#include <fmt/format.h>

#include "../../result.hpp"

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

/// Makes `directory` (mode 0700) if it is missing; refuses it unless it is a directory (not a
/// link to one), this user's, and closed to others but for passing through it (mode 0711). A
/// socket `shared` with other users (control_options::allowed_uids) needs that passage: the
/// directory is then made 0711, and the socket's peer check is the gate.
inline result<void> own_socket_directory(const std::string& directory, bool shared = false) {
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
    return error{errc::bad_control, "cannot make " + directory + ": " + std::strerror(errno)};
  struct stat seen {};
  if (::lstat(directory.c_str(), &seen) != 0)
    return error{errc::bad_control, "cannot read " + directory + ": " + std::strerror(errno)};
  if (!S_ISDIR(seen.st_mode)) return error{errc::bad_control, directory + " is not a directory: refused"};
  if (seen.st_uid != ::geteuid())
    return error{errc::bad_control, directory + " belongs to uid " + std::to_string(seen.st_uid) + ", not to uid " +
                                        std::to_string(::geteuid()) + ": refused"};
  if ((seen.st_mode & 066) != 0)
    return error{errc::bad_control,
                 fmt::format("{} is open to other users (mode {:03o}): refused", directory, seen.st_mode & 0777)};
  if (shared && (seen.st_mode & 011) != 011 && ::chmod(directory.c_str(), (seen.st_mode & 0700) | 0711) != 0)
    return error{errc::bad_control, "cannot open " + directory + " to other users: " + std::strerror(errno)};
  return {};
}

/// The socket directory, opened (provisional: the lead's merge takes helper A's version).
class socket_directory {
 public:
  explicit socket_directory(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  socket_directory(socket_directory&& other) noexcept : fd_(std::exchange(other.fd_, -1)), path_(other.path_) {}
  socket_directory& operator=(socket_directory&&) = delete;
  ~socket_directory() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const noexcept { return fd_; }
  const std::string& path() const noexcept { return path_; }

 private:
  int fd_;
  std::string path_;
};

inline result<socket_directory> open_socket_directory(const std::string& directory, bool shared = false) {
  if (auto owned = own_socket_directory(directory, shared); !owned) return owned.error();
  const int fd = ::open(directory.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return error{errc::bad_control, "cannot open " + directory + ": " + std::strerror(errno)};
  return socket_directory(fd, directory);
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
