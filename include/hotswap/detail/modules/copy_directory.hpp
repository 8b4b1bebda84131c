// The private copies of modules: the directory that holds them (made, checked and opened once;
// every copy made and opened relative to it), writing a copy, and closing libraries once their
// last user has gone. Templates only so that a program that loads no module does not compile them.
#pragma once

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../result.hpp"
#include "../common/spin_lock.hpp"
#include "../common/std_algorithm.hpp"
#include "../common/std_memory.hpp"
#include "module_file.hpp"

namespace hotswap::detail {

/// The directory of a code server's private copies, held open from its first use: copies are
/// made and opened relative to it, so that nothing can redirect them once it was checked (not a
/// rename of it, not a symbolic link put in its place). Shared with the closer of the libraries,
/// which may outlive the code server.
struct copy_directory {
  int fd = -1;
  copy_directory() = default;
  copy_directory(const copy_directory&) = delete;
  copy_directory& operator=(const copy_directory&) = delete;
  ~copy_directory() {
    if (fd >= 0) ::close(fd);
  }
  /// What the dynamic loader opens for the copy `name`: a path through the open directory (no
  /// path of the file system is resolved again), never the same for two copies of the process
  /// (glibc takes a library already loaded under the same name for the one asked for).
  std::string path_of(const std::string& name) const { return "/proc/self/fd/" + std::to_string(fd) + "/" + name; }
};

/// Shared libraries whose last user has gone, closed by the code server (in the program's code:
/// the last user may have been the module's own code, which cannot unmap itself).
template <class = void>
class library_closer {
 public:
  struct closed {
    std::string name;  // of the copy
    bool unmapped;
  };
  explicit library_closer(std::shared_ptr<const copy_directory> directory) : directory_(std::move(directory)) {}
  /// The copy `name` was opened: it is removed when its library is closed, or by unlink_all.
  void opened(const std::string& copy) {
    const spin_guard hold(lock_);
    open_.push_back(copy);
  }
  void add(void* handle, std::string copy) {
    const spin_guard hold(lock_);
    pending_.push_back({handle, std::move(copy)});
  }
  std::vector<closed> close_pending() {
    std::vector<std::pair<void*, std::string>> closing;
    {
      const spin_guard hold(lock_);
      closing.swap(pending_);
    }
    std::vector<closed> done;
    for (auto& [handle, copy] : closing) {
      ::dlclose(handle);
      // glibc keeps a library mapped that registered thread-local destructors or has unique symbols.
      void* still = ::dlopen(directory_->path_of(copy).c_str(), RTLD_LAZY | RTLD_NOLOAD);
      if (still) ::dlclose(still);
      ::unlinkat(directory_->fd, copy.c_str(), 0);
      {
        const spin_guard hold(lock_);
        if (const auto at = std::find(open_.begin(), open_.end(), copy); at != open_.end()) open_.erase(at);
      }
      done.push_back({std::move(copy), still == nullptr});
    }
    return done;
  }
  /// Removes the copies of the libraries still open (the code server is going): their mappings
  /// outlive their files, and no copy is left on disk.
  void unlink_all() {
    std::vector<std::string> open;
    {
      const spin_guard hold(lock_);
      open.swap(open_);
    }
    for (const auto& copy : open) ::unlinkat(directory_->fd, copy.c_str(), 0);
  }

 private:
  std::shared_ptr<const copy_directory> directory_;
  spin_lock lock_;
  std::vector<std::pair<void*, std::string>> pending_;
  std::vector<std::string> open_;  // the copies of libraries open
};

/// Numbers the private copies of the process's code servers.
inline std::uint64_t next_copy_number() noexcept {
  static std::atomic<std::uint64_t> copies{0};
  return copies.fetch_add(1, std::memory_order_relaxed);
}

// -- the directories made under $TMPDIR, and those that dead processes left --

/// Where a code server given no directory makes one: $TMPDIR, else /tmp.
inline std::string temporary_base() {
  const char* base = std::getenv("TMPDIR");
  return base && *base ? base : "/tmp";
}

/// This process's pid namespace (the inode of /proc/self/ns/pid), which a copy directory's name
/// records beside the pid: a pid names a process only in its namespace (a container sharing
/// /tmp has its own).
inline std::uint64_t pid_namespace() noexcept {
  struct stat info {};
  return ::stat("/proc/self/ns/pid", &info) == 0 ? static_cast<std::uint64_t>(info.st_ino) : 0;
}

inline constexpr std::string_view copy_directory_prefix = "hotswap-modules-";

/// `<pid>-<namespace>-XXXXXX` (what mkdtemp fills in), after the prefix: the pid, if `rest` is
/// that and the namespace is this process's; else 0.
inline pid_t copy_directory_pid(std::string_view rest, std::uint64_t namespace_here) noexcept {
  auto number = [&](std::uint64_t& value) {
    std::size_t digits = 0;
    value = 0;
    while (digits < rest.size() && digits < 19 && rest[digits] >= '0' && rest[digits] <= '9')
      value = value * 10 + static_cast<std::uint64_t>(rest[digits++] - '0');
    if (digits == 0 || digits == rest.size() || rest[digits] != '-') return false;
    rest.remove_prefix(digits + 1);
    return true;
  };
  std::uint64_t pid = 0, space = 0;
  if (!number(pid) || !number(space) || space != namespace_here || rest.size() != 6 || pid == 0 ||
      pid > 0x3fffffff)  // the kernel's largest pid
    return 0;
  for (const char c : rest)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return 0;
  return static_cast<pid_t>(pid);
}

/// Whether `name` is what write_copy names a copy: `<module>-v<vsn>-<n>.so`.
inline bool looks_like_copy(std::string_view name) noexcept {
  auto digits_after = [&](std::string_view marker) {
    const auto at = name.rfind(marker);
    if (at == std::string_view::npos || at + marker.size() == name.size()) return false;
    for (const char c : name.substr(at + marker.size()))
      if (c < '0' || c > '9') return false;
    name = name.substr(0, at);
    return true;
  };
  if (!name.ends_with(".so")) return false;
  name.remove_suffix(3);
  return digits_after("-") && digits_after("-v") && !name.empty();
}

/// Removes the copy directory `name` in `parent` if it is provably one a code server of this
/// user made and no process uses: a directory (not a link to one), this user's, mode 0700, whose
/// lock nobody holds (a code server holds it while its directory is open, and so do the children
/// it forked: a pid alone proves nothing across hosts sharing the directory, or after a fork),
/// holding nothing but this user's regular files named as copies. Anything else, and it stays
/// whole.
template <class = void>
bool remove_copy_directory(int parent, const std::string& name) {
  struct stat seen {};
  if (::fstatat(parent, name.c_str(), &seen, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(seen.st_mode) ||
      seen.st_uid != ::geteuid() || (seen.st_mode & 07777) != 0700)
    return false;
  const int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat opened {};
  if (::fstat(fd, &opened) != 0 || opened.st_dev != seen.st_dev || opened.st_ino != seen.st_ino ||
      ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  const std::unique_ptr<DIR, int (*)(DIR*)> listing(::fdopendir(fd), ::closedir);
  if (!listing) {
    ::close(fd);
    return false;
  }
  std::vector<std::string> copies;
  bool ours = true;
  while (const dirent* one = ::readdir(listing.get())) {
    const std::string_view file = one->d_name;
    if (file == "." || file == "..") continue;
    struct stat info {};
    if (copies.size() >= 4096 || !looks_like_copy(file) ||
        ::fstatat(fd, one->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(info.st_mode) ||
        info.st_uid != ::geteuid()) {
      ours = false;
      break;
    }
    copies.emplace_back(file);
  }
  if (ours)
    for (const auto& copy : copies) ::unlinkat(fd, copy.c_str(), 0);
  return ours && ::unlinkat(parent, name.c_str(), AT_REMOVEDIR) == 0;
}

/// Removes, under `base`, the copy directories of this user's processes that died without
/// removing them (killed by a signal: no destructor ran): those named for a pid of this pid
/// namespace that no process has (kill(pid, 0) fails with ESRCH). A pid in use, by whatever
/// process, keeps its directory. How many were removed.
template <class = void>
std::size_t sweep_dead_copy_directories(const std::string& base) noexcept {
  try {
    const std::uint64_t namespace_here = pid_namespace();
    if (namespace_here == 0) return 0;  // no /proc: no namespace to tell pids apart by
    const int fd = ::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    const std::unique_ptr<DIR, int (*)(DIR*)> listing(::fdopendir(fd), ::closedir);
    if (!listing) {
      ::close(fd);
      return 0;
    }
    std::vector<std::string> dead;
    while (const dirent* one = ::readdir(listing.get())) {
      const std::string_view name = one->d_name;
      if (!name.starts_with(copy_directory_prefix)) continue;
      const pid_t pid = copy_directory_pid(name.substr(copy_directory_prefix.size()), namespace_here);
      if (pid != 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) dead.emplace_back(name);
    }
    std::size_t removed = 0;
    for (const auto& name : dead) removed += remove_copy_directory(fd, name) ? 1 : 0;
    return removed;
  } catch (...) {  // out of memory: they stay, as they would have
    return 0;
  }
}

/// A directory for copies, made if need be and opened, and whether it was made here.
struct opened_directory {
  std::string name;
  bool made;
  int fd;
};

/// Makes (`directory` empty: a new one under $TMPDIR or /tmp) and opens the directory for the
/// copies of the module in `path`. It, and every directory above it, must be safe (others could
/// otherwise swap it for their own between two loads).
template <class = void>
result<opened_directory> open_copy_directory(std::string directory, const std::string& path) {
  bool made = false;
  if (directory.empty()) {
    // Named for this process, so that a code server of a later one can remove it if this one is
    // killed (sweep_dead_copy_directories).
    std::string pattern = temporary_base() + "/" + std::string(copy_directory_prefix) + std::to_string(::getpid()) +
                          "-" + std::to_string(pid_namespace()) + "-XXXXXX";
    if (!::mkdtemp(pattern.data()))
      return file_error(errc::load_failed, path,
                        "cannot make a directory for its copy: " + std::string(std::strerror(errno)));
    directory = pattern;
    made = true;
  } else {
    made = ::mkdir(directory.c_str(), 0700) == 0;
  }
  auto refuse = [&](errc code, const std::string& why) {
    if (made) ::rmdir(directory.c_str());
    return file_error(code, path, why);
  };
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat info {};
  if (fd < 0 || ::fstat(fd, &info) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return refuse(errc::load_failed, "no directory " + directory + " for its copy: " + why);
  }
  error unsafe{errc::unsafe_path, unsafe_because(info, "the directory " + directory + " for copies")};
  // Above it, as given and as resolved: the directories others could rename it out of.
  std::string resolved = absolute(directory);
  if (char* real = ::realpath(directory.c_str(), nullptr)) {
    resolved = real;
    std::free(real);
  }
  for (const std::string& way : {absolute(directory), resolved})
    if (unsafe.what.empty()) unsafe = unsafe_directory_of(way);
  if (!unsafe.what.empty()) {
    ::close(fd);
    return refuse(unsafe.code,
                  unsafe.what + (unsafe.code == errc::unsafe_path ? " (it holds the directory for copies)" : ""));
  }
  // Held while the directory is open here (or in a child forked meanwhile): a sweep leaves it.
  if (made) (void)::flock(fd, LOCK_EX | LOCK_NB);
  return opened_directory{std::move(directory), made, fd};
}

/// A private copy of the bytes checked, for this load only, made in the copy directory `into`
/// (named `directory`; O_EXCL, O_NOFOLLOW: never an existing file, never through a link): its
/// name there.
template <class = void>
result<std::string> write_copy(const copy_directory& into, const std::string& directory, const std::string& bytes,
                               const module_note_fields& note, const std::string& path) {
  std::string copy;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {  // another process may share the directory
    copy = note.name + "-v" + std::to_string(note.vsn) + "-" + std::to_string(next_copy_number()) + ".so";
    fd = ::openat(into.fd, copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0500);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0)
    return file_error(errc::load_failed, path,
                      "cannot write its copy " + directory + "/" + copy + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) break;
    done += static_cast<std::size_t>(wrote);
  }
  ::close(fd);
  if (done != bytes.size()) {
    ::unlinkat(into.fd, copy.c_str(), 0);
    return file_error(errc::load_failed, path, "cannot write its copy " + directory + "/" + copy);
  }
  return copy;
}

}  // namespace hotswap::detail
