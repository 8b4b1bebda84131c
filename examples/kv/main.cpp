// hotswap-kv: a Redis-protocol (RESP2) key-value server whose code is upgraded live, its clients
// connected. It boots release kv 1 (the modules kv.shard and kv.connection, vsn 1), starts the
// shards (registered kv.shard.0 ..), listens on 127.0.0.1:PORT and runs a server of the module
// kv.connection for each client, each taking the version current when it connects. Its control
// socket is open: `hotswapctl -p PID upgrade .../kv-2.release.json` moves every shard and every
// connection to kv 2 (expiry) as one transaction, and back the same way.
//
//     hotswap-kv --port PORT [--shards 4] [--modules DIR] [--serve]
//
// (--serve: the program serves until SIGTERM or SIGINT in any case; it is taken for the command
// line anemone_live has.) On SIGTERM or SIGINT: the listener stops first (no new clients, the
// requests in hand answered), then the servers, then it exits 0.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include <hotswap/control.hpp>
#include <hotswap/hotswap.hpp>
#include <hotswap/net.hpp>
#include <hotswap/releases.hpp>

#include "service.hpp"

namespace {

template <class T>
T or_exit(hotswap::result<T> made, const char* what) {
  if (!made) {
    fmt::print(stderr, "kv: {}: {}: {}\n", what, hotswap::to_string(made.error().code), made.error().what);
    std::exit(1);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*made);
}

// The listener whose counters the stats server gives (INFO's connected_clients and
// total_connections_received): set before the server starts, reset before the listener goes.
std::atomic<const hotswap::net::listener*> the_listener{nullptr};

struct StatsServer {
  using interface = kv::StatsInterface;
  static constexpr int vsn = 1;
  using state = std::uint64_t;  // nothing kept
  static state init() { return 0; }
  static kv::Stats handle_call(const kv::StatsQuery&, state&) {
    const auto* listening = the_listener.load();
    if (listening == nullptr) return {};
    const auto counters = listening->counters();
    return {.accepted = counters.accepted, .open = counters.open};
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hotswap-kv: a Redis-protocol server upgraded live"};
  std::uint16_t port = 0;
  std::size_t shards = 4;
  std::string modules = KV_MODULES_DIR;
  app.add_option("--port", port, "the TCP port on 127.0.0.1")->required();
  app.add_option("--shards", shards, "shard servers")->check(CLI::Range(1, 1024));
  app.add_option("--modules", modules, "the directory of the modules and releases");
  bool serve = true;  // (it serves in any case: the flag is anemone_live's)
  app.add_flag("--serve", serve, "serve until SIGTERM or SIGINT (always)");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // the ready line as it happens, also into a pipe

  // Taken before any thread starts, so that every thread leaves them to this one.
  boost::asio::io_context signals_io{1};
  boost::asio::signal_set signals(signals_io, SIGTERM, SIGINT);

  hotswap::code_server code;
  hotswap::release_handler releases{code};
  // The schema versions the program is built with; kv 2's come with its modules.
  hotswap::registry().add(hotswap::describe<kv::v1::Value>());
  hotswap::registry().add(hotswap::describe<kv::v1::Store>());
  hotswap::registry().add(hotswap::describe<kv::ConnectionState>());
  or_exit(releases.boot(modules + "/kv-1.release.json"), "boot");

  for (std::size_t i = 0; i < shards; ++i)
    or_exit(hotswap::start<kv::ShardInterface>(code.current("kv.shard"), {.name = kv::shard_name(i)}), "start a shard");
  auto connections = or_exit(hotswap::start_dynamic_supervisor({}), "start the connections' supervisor");
  // Each connection's server takes the version of kv.connection current when it connects.
  auto child = [&code, shards](const hotswap::net::connection& conn) {
    return hotswap::module_child<kv::ConnectionInterface>("connection", code, "kv.connection",
                                                          kv::ConnectionStart{conn, shards});
  };
  auto listener = or_exit(hotswap::net::listener::open<kv::ConnectionInterface>(
                              hotswap::net::endpoint::tcp("127.0.0.1", port), child, connections),
                          "listen");
  the_listener = listener.get();
  or_exit(hotswap::start<StatsServer>({.name = kv::stats_name, .own_thread = true}), "start the stats server");
  const auto control = or_exit(hotswap::open_control(code, releases, {.program = "kv"}), "open_control");
  fmt::print("kv: serving on 127.0.0.1:{}, release kv 1\n", listener->port());
  fmt::print(stderr, "kv: pid {}, control socket {}\n", ::getpid(), control.path());

  int stopped_by = 0;
  signals.async_wait([&](const boost::system::error_code& failed, int signal) {
    if (!failed) stopped_by = signal;
  });
  signals_io.run();
  // The listener first: no more clients, each connection's requests in hand answered; then the
  // connections' supervisor and the shards, newest first.
  const auto listener_stopped = listener->stop();
  the_listener = nullptr;
  const auto all_stopped = hotswap::stop_all();
  fmt::print(stderr, "kv: stopped ({})\n", stopped_by == SIGINT ? "SIGINT" : "SIGTERM");
  if (!listener_stopped) fmt::print(stderr, "kv: the listener's stop: {}\n", listener_stopped.error().what);
  if (!all_stopped) fmt::print(stderr, "kv: stop_all: {}\n", all_stopped.error().what);
  return listener_stopped && all_stopped ? 0 : 1;
}
