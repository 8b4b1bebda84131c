// Where the servers on a reload's probation report a handler's failure to the watch's thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "file_events.hpp"

namespace hotswap::detail {

/// A handler of the new build failed on server `id` (`label`), which went back to the build
/// before unless `failure` says why not.
struct reload_crash {
  std::uint64_t generation, id;
  std::string label, why, failure;
};
/// Where the servers on probation report their failures: they hold it weakly.
struct crash_mailbox {
  std::mutex lock;
  std::vector<reload_crash> crashes;
  file_events* wake = nullptr;  // null once the watch has gone
  void post(reload_crash crash) {
    const std::lock_guard hold(lock);
    crashes.push_back(std::move(crash));
    if (wake) wake->wake();
  }
};

}  // namespace hotswap::detail
