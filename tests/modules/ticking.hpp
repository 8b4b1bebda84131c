// A server that sets two interval timers on itself in its init and keeps no handle to them: one
// of a message that travels in place (the timer holds the server), one of a message that does
// not (the timer holds a copy of it, and so the module's code). A tick is an hour away: a test
// never sees one.
#pragma once

#include <chrono>
#include <string>

#include <hotswap/servers.hpp>

namespace ticking {
struct Beat {};
struct Tick {
  std::string label;
};
struct Ticks {};
using Interface =
    hotswap::interface<"Ticking", hotswap::call_msg<Ticks, int>, hotswap::info_msg<Beat>, hotswap::info_msg<Tick>>;

struct Ticking {
  using interface = Interface;
  static constexpr int vsn = 1;
  using state = int;
  static state init() {
    const auto self = hotswap::self<Interface>();
    (void)hotswap::send_interval(self, Beat{}, std::chrono::hours(1));
    (void)hotswap::send_interval(self, Tick{"tick"}, std::chrono::hours(1));
    return 0;
  }
  static int handle_call(const Ticks&, const state& s) { return s; }
  static void handle_info(const Beat&, state& s) { ++s; }
  static void handle_info(const Tick&, state& s) { ++s; }
};
}  // namespace ticking
