// Trapping exits in a server whose interface does not take the exit signals.
// expect: a server that traps exits declares hotswap::info_msg<hotswap::exit_signal> in its interface
#include <hotswap/hotswap.hpp>

struct Ping {};
#ifndef HOTSWAP_FIXED
using Worker = hotswap::interface<"Worker", hotswap::cast_msg<Ping>>;
#else
using Worker = hotswap::interface<"Worker", hotswap::cast_msg<Ping>, hotswap::info_msg<hotswap::exit_signal>>;
#endif

void trap(const hotswap::server_ref<Worker>& worker) { hotswap::trap_exits(worker); }

int main() {}
