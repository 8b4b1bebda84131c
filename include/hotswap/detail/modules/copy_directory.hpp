// The private copies of modules: the directory that holds them (made, checked and opened once;
// every copy made and opened relative to it), writing a copy, and closing libraries once their
// last user has gone. Templates only so that a program that loads no module does not compile them.
#pragma once

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../../result.hpp"
#include "../common/spin_lock.hpp"
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
      done.push_back({std::move(copy), still == nullptr});
    }
    return done;
  }

 private:
  std::shared_ptr<const copy_directory> directory_;
  spin_lock lock_;
  std::vector<std::pair<void*, std::string>> pending_;
};

/// Numbers the private copies of the process's code servers.
inline std::uint64_t next_copy_number() noexcept {
  static std::atomic<std::uint64_t> copies{0};
  return copies.fetch_add(1, std::memory_order_relaxed);
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
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/hotswap-modules-XXXXXX";
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
