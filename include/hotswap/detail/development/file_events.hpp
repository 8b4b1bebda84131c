// Which module files a build has finished writing: inotify on their directories, and a quiet
// time per file. A linker writes a library in pieces and hotswap-seal then writes its seal in
// place, so a file is tried only once nothing has written it for `settle`; a file caught
// half-way anyway fails its seal (errc::torn, unsealed) and is tried again at its next write.
// A watched directory that goes (a clean rebuild removes it) is watched for from the nearest
// directory above it that is there, and watched again when it comes back; when inotify's queue
// overflows, events were lost: each directory is watched again. Either way every module file
// in the directory is then tried (one written meanwhile has no event), and it is said.
#pragma once

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../../result.hpp"

namespace hotswap::detail {

class file_events {
 public:
  using clock = std::chrono::steady_clock;

  explicit file_events(std::chrono::nanoseconds settle) : settle_(settle) {}
  file_events(const file_events&) = delete;
  file_events& operator=(const file_events&) = delete;
  ~file_events() {
    if (inotify_ >= 0) ::close(inotify_);
    if (wake_ >= 0) ::close(wake_);
  }

  /// The eventfd that wakes wait() from another thread (wake()); made first.
  result<void> open() {
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    inotify_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (wake_ < 0 || inotify_ < 0)
      return error{errc::no_file, std::string("cannot watch files: ") + std::strerror(errno)};
    return {};
  }

  /// Any thread: watches the files ending in `suffix` that are written, moved or linked into `directory`.
  result<void> add(const std::string& directory, const std::string& suffix) {
    const int watch = ::inotify_add_watch(inotify_, directory.c_str(), directory_mask);
    if (watch < 0) return error{errc::no_file, directory + ": cannot watch it: " + std::strerror(errno)};
    const std::lock_guard hold(directories_lock_);
    directories_[watch] = {directory, suffix};
    return {};
  }

  /// The watch's thread: what happened to the watching itself since last asked (a directory
  /// gone or back, events lost), a line each.
  std::vector<std::string> take_notes() { return std::exchange(notes_, {}); }

  /// Any thread: wait() returns now.
  void wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_, &one, sizeof one);
  }

  /// The watch's thread: waits for writes, a wake() or `until`; returns the files whose last write is `settle` old.
  std::vector<std::string> wait(clock::time_point until) {
    const auto now = clock::now();
    for (const auto& [path, due] : pending_) until = std::min(until, due);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    pollfd watched[2] = {{wake_, POLLIN, 0}, {inotify_, POLLIN, 0}};
    const int ready = ::poll(watched, 2, static_cast<int>(std::clamp<long long>(left, 0, 60'000)));
    if (ready > 0 && (watched[0].revents & POLLIN)) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto read = ::read(wake_, &count, sizeof count);
    }
    if (ready > 0 && (watched[1].revents & POLLIN)) read_events();
    std::vector<std::string> settled;
    for (auto it = pending_.begin(); it != pending_.end();)
      if (it->second <= clock::now()) {
        settled.push_back(it->first);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    return settled;
  }

 private:
  struct watched_directory {
    std::string path, suffix;
  };

  // IN_MASK_ADD: a directory may be watched both as one of ours and as above a lost one (one
  // inotify watch an inode): each mask adds to the other's.
  static constexpr std::uint32_t above_mask =
      IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_MASK_ADD;
  static constexpr std::uint32_t directory_mask = above_mask | IN_CLOSE_WRITE | IN_MODIFY;

  static bool has_suffix(const std::string& name, const std::string& suffix) {
    return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  void read_events() {
    alignas(inotify_event) char buffer[16 * 1024];
    bool changed = false, overflowed = false;
    for (;;) {
      const ssize_t got = ::read(inotify_, buffer, sizeof buffer);
      if (got <= 0) break;  // EAGAIN: all read
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        if (event->mask & IN_Q_OVERFLOW) {
          overflowed = true;
          continue;
        }
        const std::lock_guard hold(directories_lock_);
        if (above_.contains(event->wd)) {  // a lost directory may be back, or the way to it changed
          changed = true;
          if (event->mask & IN_IGNORED) above_.erase(event->wd);
        }
        const auto found = directories_.find(event->wd);
        if (found == directories_.end()) continue;
        if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          lose(found);
          changed = true;
          continue;
        }
        if (event->len == 0) continue;
        const std::string name = event->name;
        if (!has_suffix(name, found->second.suffix)) continue;
        pending_[found->second.path + "/" + name] = clock::now() + settle_;  // each write starts the quiet again
      }
    }
    if (overflowed) {
      notes_.push_back("missed file events (inotify's queue overflowed): watching again, every module file is tried");
      watch_all_again();
    }
    if (changed || overflowed) rewatch();
  }

  /// Under directories_lock_: a watched directory is gone (removed, or moved: its path names
  /// another now).
  void lose(std::map<int, watched_directory>::iterator gone) {
    notes_.push_back(gone->second.path + " is gone: watching for it to come back");
    if (!above_.contains(gone->first)) ::inotify_rm_watch(inotify_, gone->first);  // moved: still watched
    lost_.push_back(std::move(gone->second));
    directories_.erase(gone);
  }

  /// After lost events: each directory watched again by its path (the same inode keeps its
  /// watch; another one, made meanwhile, gets one; none, and it is lost), and every file tried.
  void watch_all_again() {
    const std::lock_guard hold(directories_lock_);
    std::vector<std::pair<int, watched_directory>> all(directories_.begin(), directories_.end());
    for (auto& [old_watch, directory] : all) {
      const int watch = ::inotify_add_watch(inotify_, directory.path.c_str(), directory_mask);
      if (watch == old_watch) {
        rescan(directory);
        continue;
      }
      lose(directories_.find(old_watch));
      // rewatch() takes it back, and says so; a watch another directory still holds (the path now
      // names its inode) stays.
      if (watch >= 0 && !directories_.contains(watch) && !above_.contains(watch)) ::inotify_rm_watch(inotify_, watch);
    }
  }

  /// Each lost directory watched again if it is back (and its files tried), else the nearest
  /// directory above it that is there watched for it; watches above no lost directory dropped.
  void rewatch() {
    const std::lock_guard hold(directories_lock_);
    std::set<int> wanted;
    for (auto it = lost_.begin(); it != lost_.end();) {
      int watch = -1;
      for (int attempt = 0; watch < 0 && attempt < 8 && !watch_from_above(*it, wanted); ++attempt)
        watch = ::inotify_add_watch(inotify_, it->path.c_str(), directory_mask);  // fails if it went again
      if (watch < 0) {
        ++it;
        continue;
      }
      notes_.push_back(it->path + " is back: watching it again, every module file is tried");
      rescan(*it);
      directories_[watch] = std::move(*it);
      it = lost_.erase(it);
    }
    for (auto it = above_.begin(); it != above_.end();) {
      if (wanted.contains(*it)) {
        ++it;
        continue;
      }
      if (!directories_.contains(*it)) ::inotify_rm_watch(inotify_, *it);
      it = above_.erase(it);
    }
  }

  /// Under directories_lock_: false if `lost` is there (to be watched again); else true, the
  /// nearest directory above it that is there watched (in `wanted`), if any. A directory made
  /// on the way to it before that watch was in place has no event: looked for after.
  bool watch_from_above(const watched_directory& lost, std::set<int>& wanted) {
    for (int attempt = 0; attempt < 64; ++attempt) {  // each attempt finds one more level made
      struct stat info {};
      if (::stat(lost.path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) return false;
      std::string below = lost.path;
      for (std::string above = parent_of(below);; below = above, above = parent_of(above)) {
        if (const int watch = ::inotify_add_watch(inotify_, above.c_str(), above_mask); watch >= 0) {
          above_.insert(watch);
          wanted.insert(watch);
          break;
        }
        if (above == "/" || above == ".") return true;  // nothing to watch from: it stays lost
      }
      if (::stat(below.c_str(), &info) != 0) return true;  // its making will be an event
    }
    return true;
  }

  static std::string parent_of(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
  }

  /// Under directories_lock_: every file of `directory` with its suffix, tried once quiet.
  void rescan(const watched_directory& directory) {
    DIR* listing = ::opendir(directory.path.c_str());
    if (!listing) return;
    std::size_t seen = 0;
    while (const dirent* entry = ::readdir(listing)) {
      const std::string name = entry->d_name;
      if (!has_suffix(name, directory.suffix) || ++seen > 10'000) continue;  // a module directory, not a dump
      pending_[directory.path + "/" + name] = clock::now() + settle_;
    }
    ::closedir(listing);
  }

  std::chrono::nanoseconds settle_;
  int wake_ = -1, inotify_ = -1;
  std::mutex directories_lock_;  // add() runs on any thread, wait() on the watch's
  std::map<int, watched_directory> directories_;
  std::vector<watched_directory> lost_;               // gone, waited for
  std::set<int> above_;                               // watches on directories above lost ones
  std::map<std::string, clock::time_point> pending_;  // a file written, and when it will have been quiet long enough
  std::vector<std::string> notes_;                    // the watch's thread's
};

}  // namespace hotswap::detail
