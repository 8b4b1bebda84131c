// A server monitoring another without taking the down its monitor sends.
// expect: a server that monitors another declares hotswap::info_msg<hotswap::down> in its interface
#include <hotswap/hotswap.hpp>

struct Ping {};
#ifndef HOTSWAP_FIXED
using Watcher = hotswap::interface<"Watcher", hotswap::cast_msg<Ping>>;
#else
using Watcher = hotswap::interface<"Watcher", hotswap::cast_msg<Ping>, hotswap::info_msg<hotswap::down>>;
#endif

hotswap::monitor_ref watch(const hotswap::server_ref<Watcher>& watcher, const hotswap::any_server& other) {
  return hotswap::monitor(watcher, other);
}

int main() {}
