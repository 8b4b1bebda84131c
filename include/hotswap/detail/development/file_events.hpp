// Which module files a build has finished writing: inotify on their directories, and a quiet
// time per file. A linker writes a library in pieces and hotswap-seal then writes its seal in
// place, so a file is tried only once nothing has written it for `settle`; a file caught
// half-way anyway fails its seal (errc::torn, unsealed) and is tried again at its next write.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
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
    const int watch = ::inotify_add_watch(inotify_, directory.c_str(),
                                          IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR);
    if (watch < 0) return error{errc::no_file, directory + ": cannot watch it: " + std::strerror(errno)};
    const std::lock_guard hold(directories_lock_);
    directories_[watch] = {directory, suffix};
    return {};
  }

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

  void read_events() {
    alignas(inotify_event) char buffer[16 * 1024];
    for (;;) {
      const ssize_t got = ::read(inotify_, buffer, sizeof buffer);
      if (got <= 0) return;  // EAGAIN: all read
      for (ssize_t at = 0; at < got;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        const std::lock_guard hold(directories_lock_);
        const auto found = directories_.find(event->wd);
        if (found == directories_.end() || event->len == 0) continue;
        const std::string name = event->name;
        const std::string& suffix = found->second.suffix;
        if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
          continue;
        pending_[found->second.path + "/" + name] = clock::now() + settle_;  // each write starts the quiet again
      }
    }
  }

  std::chrono::nanoseconds settle_;
  int wake_ = -1, inotify_ = -1;
  std::mutex directories_lock_;  // add() runs on any thread, wait() on the watch's
  std::map<int, watched_directory> directories_;
  std::map<std::string, clock::time_point> pending_;  // a file written, and when it will have been quiet long enough
};

}  // namespace hotswap::detail
