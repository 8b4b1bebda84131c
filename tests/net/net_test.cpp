// The network layer (hotswap/net.hpp) with real sockets: echo over TCP and a Unix socket, many
// connections at once, back-pressure ({active, once}), TCP_NODELAY, a send written on the
// server's thread, a close and a reset, a client that does not read cut off while another is served, data that comes
// while its server is suspended, and the listener's stop, hotswap::stop_all and its destructor with connections open.
// (Run under ASan and TSan as well.) Every wait is for an event.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <hotswap/hotswap.hpp>
#include <hotswap/net.hpp>
#include <hotswap/sys.hpp>

#include "../wait.hpp"

using testing::eventually;
namespace net = hotswap::net;

namespace {

// -- a client, with POSIX sockets --

struct client {
  int fd = -1;

  static client tcp(std::uint16_t port) {
    client made;
    made.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(made.fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(made.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    return made;
  }
  static client local(const std::string& path) {
    client made;
    made.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(made.fd >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    REQUIRE(::connect(made.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    return made;
  }
  client() = default;
  client(client&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  client& operator=(client&& other) noexcept {
    std::swap(fd, other.fd);
    return *this;
  }
  ~client() {
    if (fd >= 0) ::close(fd);
  }

  void send(const std::string& bytes) const {
    for (std::size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      sent += static_cast<std::size_t>(n);
    }
  }
  /// Exactly `size` bytes, or fewer if the other end closed first.
  std::string read(std::size_t size) const {
    std::string got;
    while (got.size() < size) {
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, std::min(sizeof chunk, size - got.size()), 0);
      if (n <= 0) break;
      got.append(chunk, static_cast<std::size_t>(n));
    }
    return got;
  }
  /// Everything until the other end closes (true), or false if it reset the connection.
  bool read_to_end(std::string& got) const {
    for (;;) {
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n == 0) return true;
      if (n < 0) return false;
      got.append(chunk, static_cast<std::size_t>(n));
    }
  }
  /// Resets the connection (SO_LINGER 0, then close): the other end sees ECONNRESET.
  void reset() {
    linger hard{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::close(std::exchange(fd, -1));
  }
};

bool refuses_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool refused = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0;
  ::close(fd);
  return refused;
}

// -- the servers --

/// What the servers saw, across them: each connection's bytes in the order handled, and how
/// each ended.
struct seen {
  std::mutex lock;
  std::map<std::uint64_t, std::string> received;
  std::map<std::uint64_t, net::close_reason> ends;
  std::map<std::uint64_t, int> datas;  // data infos handled

  void clear() {
    const std::lock_guard hold(lock);
    received.clear();
    ends.clear();
    datas.clear();
  }
  std::string bytes_of(std::uint64_t id) {
    const std::lock_guard hold(lock);
    return received[id];
  }
  int datas_of(std::uint64_t id) {
    const std::lock_guard hold(lock);
    return datas[id];
  }
  std::optional<net::close_reason> end_of(std::uint64_t id) {
    const std::lock_guard hold(lock);
    const auto found = ends.find(id);
    if (found == ends.end()) return std::nullopt;
    return found->second;
  }
  std::size_t ended() {
    const std::lock_guard hold(lock);
    return ends.size();
  }
};
seen& saw() {
  static seen one;
  return one;
}

struct More {};  // a held server: reply "done\n" and ask for more

/// Echoes, but: "hold..." is kept in hand (no reply, no read) until More; "flood" writes 64 KiB
/// pieces until the connection refuses them; "quit" says "bye\n" and stops.
using Service = hotswap::interface<"NetService", hotswap::info_msg<net::data>, hotswap::info_msg<net::closed>,
                                   hotswap::cast_msg<More>>;

struct ServiceState {
  net::connection conn;
  std::string buffer;  // the protocol's state lives here: migrated with the rest on an upgrade
};
/// Its next version: a count of the data handled beside (the connection held as it is).
struct ServiceStateV2 {
  net::connection conn;
  std::string buffer;
  int handled = 0;
};
using ServiceStates =
    hotswap::schema<"NetServiceState", hotswap::version<1, ServiceState>, hotswap::version<2, ServiceStateV2>>;

}  // namespace

template <hotswap::listed_in<ServiceStates> T>
struct hotswap::schema_of<T> : ServiceStates {};
template <>
struct hotswap::step<ServiceState, ServiceStateV2> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"handled">};
};

namespace {

struct ServiceV1 {
  using interface = Service;
  static constexpr int vsn = 1;
  using state = ServiceState;
  static state init(const net::connection& conn) { return {conn, {}}; }
  static void handle_info(const net::data& in, state& s) {
    {
      const std::lock_guard hold(saw().lock);
      saw().received[s.conn.id()] += in.bytes;
      ++saw().datas[s.conn.id()];
    }
    CHECK(in.from == s.conn);
    if (in.bytes.starts_with("hold")) return;  // in hand until More
    if (in.bytes.starts_with("flood")) {
      const std::string piece(64 * 1024, 'x');
      for (int sent = 0; sent < 100000 && s.conn.send(piece); ++sent) {
      }
      return;  // cut off: closed comes next
    }
    if (in.bytes.starts_with("quit")) {
      s.conn.send("bye\n");
      (void)hotswap::stop(hotswap::self<Service>());
      return;
    }
    s.conn.send(in.bytes);
    s.conn.read_more();
  }
  static void handle_info(const net::closed& end, state& s) {
    CHECK(end.from == s.conn);
    {
      const std::lock_guard hold(saw().lock);
      saw().ends[s.conn.id()] = end.reason;
    }
    (void)hotswap::stop(hotswap::self<Service>());
  }
  static void handle_cast(const More&, state& s) {
    s.conn.send("done\n");
    s.conn.read_more();
  }
};

/// The next version: echoes with a "v2:" before, counting.
struct ServiceV2 {
  using interface = Service;
  static constexpr int vsn = 2;
  using state = ServiceStateV2;
  using state_history = hotswap::state_history<hotswap::version<1, ServiceState>>;
  static state init(const net::connection& conn) { return {conn, {}, 0}; }
  static void handle_info(const net::data& in, state& s) {
    ++s.handled;
    s.conn.send("v2:" + in.bytes);
    s.conn.read_more();
  }
  static void handle_info(const net::closed&, state&) { (void)hotswap::stop(hotswap::self<Service>()); }
  static void handle_cast(const More&, state&) {}
};

/// The server of a listener's first connection (of the `index`th, in the supervisor's order).
hotswap::server_ref<Service> server_of(const net::listener& on, std::size_t index = 0) {
  std::vector<hotswap::child_info> children;
  REQUIRE(eventually([&] {
    children = hotswap::call(on.supervisor(), hotswap::which_children{}).value();
    return children.size() > index;
  }));
  return hotswap::server_ref<Service>::from(children[index].server).value();
}

net::connection connection_of(const hotswap::server_ref<Service>& server) {
  return hotswap::sys::get_state<ServiceState>(server).value().conn;
}

std::string temporary_socket(const char* name) {
  return fmt::format("/tmp/hotswap_net_test_{}_{}.sock", ::getpid(), name);
}

}  // namespace

TEST_CASE("net: an echo server over TCP, on the port the system picked; its end closes the connection") {
  saw().clear();
  auto echo = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  REQUIRE(echo->port() != 0);
  auto one = client::tcp(echo->port());
  one.send("hello\n");
  CHECK(one.read(6) == "hello\n");
  one.send("again\n");
  CHECK(one.read(6) == "again\n");
  const auto conn = connection_of(server_of(*echo));
  CHECK(conn.peer().starts_with("127.0.0.1:"));
  CHECK(echo->counters().accepted == 1);
  CHECK(echo->counters().open == 1);

  one.send("quit\n");  // the server says bye and stops: its connection closes once bye is written
  std::string rest;
  CHECK(one.read_to_end(rest));
  CHECK(rest == "bye\n");
  REQUIRE(eventually([&] { return echo->counters().open == 0; }));
  CHECK(!conn.open());
  CHECK(!conn.send("late"));
  CHECK(echo->stop());
}

TEST_CASE("net: an echo server over a Unix socket; a closed connection is told to its server") {
  saw().clear();
  const std::string path = temporary_socket("echo");
  auto echo = net::listener::open<ServiceV1>(net::endpoint::unix_socket(path)).value();
  CHECK(echo->port() == 0);
  auto one = client::local(path);
  one.send("over unix\n");
  CHECK(one.read(10) == "over unix\n");
  const auto id = connection_of(server_of(*echo)).id();
  ::shutdown(one.fd, SHUT_WR);  // the client is done: its server is told peer_closed, and stops
  REQUIRE(eventually([&] { return saw().end_of(id).has_value(); }));
  CHECK(*saw().end_of(id) == net::close_reason::peer_closed);
  std::string rest;
  CHECK(one.read_to_end(rest));
  CHECK(rest.empty());
  echo.reset();
  CHECK(::access(path.c_str(), F_OK) != 0);  // the listener removed its socket
}

TEST_CASE("net: a reset connection is told to its server as reset") {
  saw().clear();
  auto echo = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  auto one = client::tcp(echo->port());
  one.send("ping\n");
  CHECK(one.read(5) == "ping\n");
  const auto id = connection_of(server_of(*echo)).id();
  one.reset();
  REQUIRE(eventually([&] { return saw().end_of(id).has_value(); }));
  CHECK(*saw().end_of(id) == net::close_reason::reset);
  REQUIRE(eventually([&] { return echo->counters().open == 0; }));
}

TEST_CASE("net: many connections at once, each served its own bytes") {
  saw().clear();
  auto echo = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0), {.threads = 2}).value();
  constexpr int clients = 64;
  std::vector<client> all;
  for (int i = 0; i < clients; ++i) all.push_back(client::tcp(echo->port()));
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < clients; ++i) all[static_cast<std::size_t>(i)].send(fmt::format("{:04}:{}\n", i, round));
    for (int i = 0; i < clients; ++i)
      CHECK(all[static_cast<std::size_t>(i)].read(7) == fmt::format("{:04}:{}\n", i, round));
  }
  CHECK(echo->counters().accepted == clients);
  CHECK(echo->counters().open == clients);
  all.clear();
  REQUIRE(eventually([&] { return echo->counters().open == 0; }));
  CHECK(echo->stop());
}

TEST_CASE("net: a server that has not finished its data gets no more: its client is held back") {
  saw().clear();
  auto service = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  auto one = client::tcp(service->port());
  one.send("hold");
  const auto server = server_of(*service);
  const auto id = connection_of(server).id();
  REQUIRE(eventually([&] { return saw().datas_of(id) == 1; }));
  // The client writes until the system's buffers are full: nothing is read for the server.
  REQUIRE(::fcntl(one.fd, F_SETFL, O_NONBLOCK) == 0);
  const std::string piece(64 * 1024, 'y');
  std::size_t written = 0;
  bool blocked = false;
  while (!blocked && written < (std::size_t{1} << 30)) {
    const ssize_t n = ::send(one.fd, piece.data(), piece.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd room{one.fd, POLLOUT, 0};
      blocked = ::poll(&room, 1, 0) == 0;  // still no room after the call: the reader took nothing
    } else {
      REQUIRE(n > 0);
      written += static_cast<std::size_t>(n);
    }
  }
  CHECK(blocked);
  CHECK(saw().datas_of(id) == 1);
  CHECK(hotswap::sys::get_status(server).value().mailbox_length == 0);  // nothing read ahead for it
  // Done with it: the server asks for more, and everything comes, in order.
  hotswap::cast(server, More{});
  REQUIRE(::fcntl(one.fd, F_SETFL, 0) == 0);
  CHECK(one.read(5) == "done\n");
  CHECK(one.read(written) == std::string(written, 'y').substr(0, written));  // echoed once read
  CHECK(saw().bytes_of(id) == "hold" + std::string(written, 'y'));
  CHECK(saw().datas_of(id) > 1);
}

/// This process's end of `peer`'s connection (the server's socket: the one whose peer is the
/// client's address), or -1.
int server_socket_of(const client& peer) {
  sockaddr_storage mine{};
  socklen_t mine_size = sizeof mine;
  REQUIRE(::getsockname(peer.fd, reinterpret_cast<sockaddr*>(&mine), &mine_size) == 0);
  int found = -1;
  DIR* fds = ::opendir("/proc/self/fd");
  REQUIRE(fds != nullptr);
  while (const dirent* entry = ::readdir(fds)) {
    const int fd = std::atoi(entry->d_name);
    sockaddr_storage theirs{};
    socklen_t theirs_size = sizeof theirs;
    if (fd <= 2 || fd == peer.fd || ::getpeername(fd, reinterpret_cast<sockaddr*>(&theirs), &theirs_size) != 0)
      continue;
    if (theirs_size == mine_size && std::memcmp(&theirs, &mine, mine_size) == 0) found = fd;
  }
  ::closedir(fds);
  return found;
}

TEST_CASE("net: a TCP connection is set TCP_NODELAY, as Redis sets its own") {
  saw().clear();
  auto echo = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  auto one = client::tcp(echo->port());
  one.send("hello\n");
  CHECK(one.read(6) == "hello\n");  // accepted, and its server started
  const int fd = server_socket_of(one);
  REQUIRE(fd >= 0);
  int nodelay = 0;
  socklen_t size = sizeof nodelay;
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &size) == 0);
  CHECK(nodelay != 0);
}

TEST_CASE("net: a send with nothing queued is written on the server's thread: the listener's own is not needed") {
  saw().clear();
  // The listener's one thread is held in the second connection's child spec (run there, as it
  // is accepted) while the first connection's server sends: its bytes must reach the client.
  std::atomic<bool> holding{false}, released{false};
  std::atomic<int> accepted{0};
  auto pool = hotswap::start_dynamic_supervisor({}).value();
  auto child = [&](const net::connection& conn) {
    if (++accepted == 2) {
      holding = true;
      (void)eventually([&] { return released.load(); }, std::chrono::seconds(600));  // past the poll's bound
    }
    return hotswap::child<ServiceV1>("", conn);
  };
  auto service = net::listener::open<Service>(net::endpoint::tcp("127.0.0.1", 0), child, pool).value();
  struct release_on_exit {  // whatever fails, the thread is let go before the listener goes
    std::atomic<bool>& released;
    ~release_on_exit() { released = true; }
  } let_go{released};
  auto one = client::tcp(service->port());
  one.send("hold");
  const auto server = server_of(*service);
  REQUIRE(eventually([&] { return saw().datas_of(connection_of(server).id()) == 1; }));
  auto two = client::tcp(service->port());  // accepted on the listener's thread, which it holds
  REQUIRE(eventually([&] { return holding.load(); }));
  hotswap::cast(server, More{});  // "done\n", sent by the first server on a worker of the pool
  pollfd readable{one.fd, POLLIN, 0};
  const bool came = ::poll(&readable, 1, 120 * 1000) == 1;  // a bound only: they come at once, or never
  released = true;
  CHECK(came);
  CHECK(one.read(5) == "done\n");
  two.send("two\n");
  CHECK(two.read(4) == "two\n");
  CHECK(service->stop());
  CHECK(hotswap::stop(pool));
}

TEST_CASE("net: a client that never reads is cut off past the bound; another connection is served on") {
  saw().clear();
  std::mutex log_lock;
  std::vector<std::string> logged;
  auto service =
      net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0), {.max_pending = 256 * 1024,
                                                                          .log =
                                                                              [&](const std::string& line) {
                                                                                const std::lock_guard hold(log_lock);
                                                                                logged.push_back(line);
                                                                              }})
          .value();
  auto reader = client::tcp(service->port());
  reader.send("first\n");
  CHECK(reader.read(6) == "first\n");
  auto sink = client::tcp(service->port());
  sink.send("flood");  // its server writes until the connection refuses: the client reads nothing
  std::uint64_t flooded = 0;
  REQUIRE(eventually([&] {
    const std::lock_guard hold(saw().lock);
    for (const auto& [id, bytes] : saw().received)
      if (bytes == "flood") flooded = id;
    return flooded != 0;
  }));
  REQUIRE(eventually([&] { return saw().end_of(flooded).has_value(); }));
  CHECK(*saw().end_of(flooded) == net::close_reason::cut_off);
  CHECK(service->counters().cut_off == 1);
  {
    const std::lock_guard hold(log_lock);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("cut off") != std::string::npos);
    CHECK(logged[0].find("over the bound of 262144") != std::string::npos);
  }
  reader.send("still served\n");
  CHECK(reader.read(13) == "still served\n");
  CHECK(service->counters().open == 1);
}

TEST_CASE("net: data read while its server is suspended is handled after the resume, in order") {
  saw().clear();
  auto echo = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  auto one = client::tcp(echo->port());
  one.send("x");
  CHECK(one.read(1) == "x");
  const auto server = server_of(*echo);
  const auto id = connection_of(server).id();
  REQUIRE(hotswap::sys::suspend(server));
  one.send("y");
  // The read completes meanwhile: its data waits in the mailbox.
  REQUIRE(eventually([&] { return hotswap::sys::get_status(server).value().mailbox_length == 1; }));
  CHECK(saw().bytes_of(id) == "x");
  REQUIRE(hotswap::sys::resume(server));
  CHECK(one.read(1) == "y");
  one.send("z");
  CHECK(one.read(1) == "z");
  CHECK(saw().bytes_of(id) == "xyz");
}

TEST_CASE("net: a connection's server changes its code, its connection kept in its state, its client connected") {
  saw().clear();
  auto echo = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  auto one = client::tcp(echo->port());
  one.send("before\n");
  CHECK(one.read(7) == "before\n");
  const auto server = server_of(*echo);
  const auto conn = connection_of(server);
  REQUIRE(hotswap::sys::suspend(server));
  one.send("during\n");  // read while suspended: handled by the new code, after the resume
  REQUIRE(eventually([&] { return hotswap::sys::get_status(server).value().mailbox_length == 1; }));
  REQUIRE(hotswap::sys::change_code(server, hotswap::table_of<ServiceV2>, 1));
  REQUIRE(hotswap::sys::resume(server));
  CHECK(one.read(10) == "v2:during\n");
  one.send("after\n");
  CHECK(one.read(9) == "v2:after\n");
  const auto migrated = hotswap::sys::get_state<ServiceStateV2>(server).value();
  CHECK(migrated.conn == conn);  // the same connection, handed on
  CHECK(migrated.handled == 2);
  CHECK(echo->counters().open == 1);
  CHECK(echo->stop());
}

TEST_CASE("net: stop closes the listening socket, lets the request in hand finish, then stops the servers") {
  saw().clear();
  auto service = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  const auto port = service->port();
  auto held = client::tcp(port);
  held.send("hold");
  const auto held_server = server_of(*service);
  REQUIRE(eventually([&] { return saw().datas_of(connection_of(held_server).id()) == 1; }));
  auto idle = client::tcp(port);
  idle.send("idle\n");
  CHECK(idle.read(5) == "idle\n");

  std::atomic<bool> stopped{false};
  hotswap::result<void> outcome{};
  std::thread stopping([&] {
    outcome = service->stop();
    stopped = true;
  });
  REQUIRE(eventually([&] { return refuses_connections(port); }));  // the listening socket is closed
  CHECK(!stopped);                                                 // waiting for the held request
  hotswap::cast(held_server, More{});  // the request finishes: its reply is written, no more is read
  CHECK(held.read(5) == "done\n");
  stopping.join();
  CHECK(outcome);
  std::string rest;
  CHECK(held.read_to_end(rest));
  CHECK(idle.read_to_end(rest));
  CHECK(rest.empty());
  CHECK(!held_server.alive());
  CHECK(!service->supervisor().alive());
  CHECK(service->counters().open == 0);
}

TEST_CASE("net: hotswap::stop_all with a listener open, then its destructor; a handle kept after it") {
  saw().clear();
  net::connection kept;
  {
    auto service = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
    const auto port = service->port();
    auto one = client::tcp(port);
    one.send("one\n");
    CHECK(one.read(4) == "one\n");
    kept = connection_of(server_of(*service));
    REQUIRE(hotswap::stop_all());  // the supervisor and its servers: the connection closes, and the listening socket
    std::string rest;
    CHECK(one.read_to_end(rest));
    REQUIRE(eventually([&] { return refuses_connections(port); }));
  }
  CHECK(!kept.open());
  CHECK(!kept.send("after the listener"));
  kept.read_more();
  kept.close();
}

TEST_CASE("net: a listener destroyed with connections open and data in hand frees everything") {
  saw().clear();
  std::vector<client> clients;
  {
    auto service = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0),
                                                  {.stop_timeout = std::chrono::milliseconds(0)})
                       .value();
    clients.push_back(client::tcp(service->port()));
    clients[0].send("hold");
    const auto held = server_of(*service);
    REQUIRE(eventually([&] { return saw().datas_of(connection_of(held).id()) == 1; }));
    for (int i = 0; i < 3; ++i) clients.push_back(client::tcp(service->port()));
    clients[1].send("echo\n");
    CHECK(clients[1].read(5) == "echo\n");
  }  // the stop does not wait: the held request is cut short, every connection closed
  for (auto& one : clients) {
    std::string rest;
    (void)one.read_to_end(rest);
  }
}

TEST_CASE("net: an address that cannot be listened on is refused, and nothing is left running") {
  auto first = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0)).value();
  const auto taken = net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", first->port()));
  REQUIRE(!taken);
  CHECK(taken.error().code == hotswap::errc::cannot_listen);
  CHECK(taken.error().what.find("bind") != std::string::npos);
  CHECK(net::listener::open<ServiceV1>(net::endpoint::tcp("not an address", 0)).error().code ==
        hotswap::errc::cannot_listen);
  const std::string file = temporary_socket("file");
  {
    std::FILE* made = std::fopen(file.c_str(), "w");
    REQUIRE(made);
    std::fclose(made);
  }
  CHECK(net::listener::open<ServiceV1>(net::endpoint::unix_socket(file)).error().code == hotswap::errc::cannot_listen);
  CHECK(::access(file.c_str(), F_OK) == 0);  // not a socket: left as it was
  ::unlink(file.c_str());
  // Only the first listener's supervisor runs: the refused ones stopped theirs.
  std::size_t supervisors = 0;
  for (const auto& server : hotswap::all_servers())
    supervisors += hotswap::server_ref<hotswap::dynamic_supervisor_interface>::from(server).has_value();
  CHECK(supervisors == 1);
}

TEST_CASE("net: a connection whose server cannot start is closed, said in a line; the others are served") {
  saw().clear();
  std::mutex log_lock;
  std::vector<std::string> logged;
  auto service =
      net::listener::open<ServiceV1>(net::endpoint::tcp("127.0.0.1", 0), {.max_connections = 1,
                                                                          .log =
                                                                              [&](const std::string& line) {
                                                                                const std::lock_guard hold(log_lock);
                                                                                logged.push_back(line);
                                                                              }})
          .value();
  auto first = client::tcp(service->port());
  first.send("one\n");
  CHECK(first.read(4) == "one\n");
  auto second = client::tcp(service->port());  // over max_children: closed at once
  std::string rest;
  (void)second.read_to_end(rest);
  CHECK(rest.empty());
  {
    const std::lock_guard hold(log_lock);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("its server did not start (max_children") != std::string::npos);
  }
  first.send("two\n");
  CHECK(first.read(4) == "two\n");
  CHECK(service->counters().accepted == 2);
  REQUIRE(eventually([&] { return service->counters().open == 1; }));
}

TEST_CASE("net: a state holding a connection is plain data: the code that made it is not kept loaded for it") {
  // A connection's functions are the listener's, in the program: a server started on a version
  // of a module and moved to another must not pin the first (a release going back to it would
  // keep the newer version current, and start new connections on it).
  STATIC_REQUIRE(hotswap::table_of<ServiceV1>.state_is_plain_data);
  STATIC_REQUIRE(hotswap::table_of<ServiceV2>.state_is_plain_data);
}
