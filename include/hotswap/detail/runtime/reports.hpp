// What hotswap says by itself, as OTP's logger hears it: a crash report when a handler throws, a
// supervisor report when a child ends, cannot start, or its supervisor gives up, a progress
// report when a child starts, a network report when a connection is cut off (hotswap::report). One line each, to the
// program's sink: by default standard error, which, as OTP's default logger level, leaves progress reports out. The
// sink is the runtime's, so a module's servers report to the program's.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "../common/spin_lock.hpp"
#include "../common/std_parts.hpp"

namespace hotswap::detail {

/// One report: what it is about, and its line (no newline; safe to show on a terminal).
struct report {
  enum class kind : std::uint8_t { crash, supervisor, progress, network } about;
  std::uint64_t server;  ///< the server that crashed, or the supervisor's child (0: none)
  std::string text;
};

/// Writes the report's line and a newline to standard error in one write, as reports of two
/// threads do not interleave (lines longer than a pipe's atomic size may, as any writer's);
/// progress reports are left out.
template <class = void>
void write_to_stderr(const report& said) noexcept {
  if (said.about == report::kind::progress) return;
  try {
    std::string line = "hotswap: " + said.text + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  } catch (...) {  // out of memory: the report is lost, the program is not
  }
}

/// The program's sink of reports (the runtime holds one). (A template only to be compiled where
/// used.)
template <class = void>
class basic_report_log {
 public:
  using sink = std::function<void(const report&)>;

  /// Hands `said` to the sink, on the calling thread. A sink that throws loses that report only.
  void write(const report& said) noexcept {
    try {
      sink to;
      {
        const spin_guard hold(lock_);
        to = sink_;
      }
      if (to)
        to(said);
      else
        write_to_stderr(said);
    } catch (...) {
    }
  }

  /// Puts `next` in place (empty: standard error again) and returns the sink it replaced.
  sink replace(sink next) {
    const spin_guard hold(lock_);
    return std::exchange(sink_, std::move(next));
  }

 private:
  spin_lock lock_;
  sink sink_;
};
using report_log = basic_report_log<>;

}  // namespace hotswap::detail
