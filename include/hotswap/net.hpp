// The network, as OTP's gen_tcp delivers it: a socket's data arrives as messages to the server
// that owns the connection (its controlling process). A listener (TCP, or a Unix stream socket)
// starts a server per connection as a dynamic child of a supervisor; the connection's bytes come
// to it as hotswap::net::data infos, one read at a time ({active, once}): the next read starts
// when the server asks for it (connection::read_more), so a slow server back-pressures its
// client. Its end arrives as a hotswap::net::closed info. Writes are queued without blocking,
// bounded per connection: a client that does not read its replies is cut off past the bound.
// Boost.Asio on threads of the listener's own; not in the umbrella header (Asio is costly to
// compile). docs/net.md tells the whole of it.
//
//     using Echo = hotswap::interface<"Echo", hotswap::info_msg<hotswap::net::data>,
//                                     hotswap::info_msg<hotswap::net::closed>>;
//     struct EchoV1 {
//       using interface = Echo;
//       static constexpr int vsn = 1;
//       using state = EchoState;  // holds the hotswap::net::connection
//       static state init(const hotswap::net::connection& conn) { return {conn}; }
//       static void handle_info(const hotswap::net::data& in, state& s) {
//         s.conn.send(in.bytes);
//         s.conn.read_more();
//       }
//       static void handle_info(const hotswap::net::closed&, state&) { hotswap::stop(hotswap::self<Echo>()); }
//     };
//     auto echo = hotswap::net::listener::open<EchoV1>(hotswap::net::endpoint::tcp("127.0.0.1", 0)).value();
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/net/acceptor.hpp"
#include "detail/net/connection_core.hpp"
#include "detail/net/context.hpp"
#include "detail/net/stream_connection.hpp"
#include "result.hpp"
#include "servers.hpp"
#include "supervisors.hpp"

namespace hotswap::net {

// -- connections --

/// Why a connection ended: peer_closed (OTP's tcp_closed), reset, failed (another socket error),
/// cut_off (its client did not read), closed (its server closed it, or ended), stopped (the
/// listener stopped).
using close_reason = detail::net::close_reason;
using detail::net::to_string;

/// A handle to one connection (OTP's Socket): what its server keeps in its state and writes to.
/// Copies share the connection; any thread may use it. It is data of the runtime, not of the
/// code: kept in a server's state, it survives a change of code as it is (its canonical name is
/// `hotswap::net::connection`, and every version of the state holds it unchanged), and its
/// functions are the listener's code, in the program, never a module's. (In the state rather
/// than in a table keyed by the server's id: such a table would have to be reached from each
/// module's copy of the code, and looked up on every send; the state already travels with the
/// server through every change of code.)
class connection {
 public:
  connection() = default;
  explicit connection(std::shared_ptr<detail::net::connection_core> core) noexcept : core_(std::move(core)) {}

  /// Queues `bytes` to be written, without blocking (OTP's gen_tcp:send/2, which may block).
  /// False once the connection is closed; false too when `bytes` would leave more unwritten
  /// than the listener's max_pending: the client, which does not read, is then cut off (a log
  /// line says so, and the server receives closed with cut_off).
  bool send(std::string bytes) const { return core_ && core_->send(std::move(bytes)); }
  bool send(std::string_view bytes) const { return send(std::string(bytes)); }
  bool send(const char* bytes) const { return send(std::string(bytes)); }
  /// Asks for the next data (OTP's inet:setopts(Socket, [{active, once}])): the next read
  /// starts, and its bytes come as the next hotswap::net::data. Until then nothing is read, and
  /// the client, once the system's buffers are full, waits. Asking twice starts one read.
  void read_more() const {
    if (core_) core_->read_more();
  }
  /// Closes the connection once what was queued is written (OTP's gen_tcp:close/1). Its server
  /// is not sent closed for it. A server's end closes its connection so too.
  void close() const {
    if (core_) core_->close();
  }
  bool open() const noexcept { return core_ && core_->is_open(); }
  /// Bytes queued and not yet taken by the socket.
  std::size_t pending() const noexcept { return core_ ? core_->pending() : 0; }
  /// Unique in the process, never reused (0: an empty handle).
  std::uint64_t id() const noexcept { return core_ ? core_->id : 0; }
  /// The client's address ("127.0.0.1:50412"; "unix" for a Unix socket).
  std::string peer() const { return core_ ? core_->peer : std::string(); }
  explicit operator bool() const noexcept { return core_ != nullptr; }
  friend bool operator==(const connection& a, const connection& b) noexcept { return a.core_ == b.core_; }

 private:
  std::shared_ptr<detail::net::connection_core> core_;
};

/// The bytes of one read (OTP's {tcp, Socket, Data}): an info, declared `info_msg<net::data>`
/// by the interface of a connection's server. No more come until the server asks
/// (connection::read_more).
struct data {
  connection from;
  std::string bytes;
};

/// The connection ended (OTP's {tcp_closed, Socket} and {tcp_error, Socket, Reason}): an info,
/// declared `info_msg<net::closed>`. Nothing comes after it; the server usually stops.
struct closed {
  connection from;
  close_reason reason = close_reason::peer_closed;
  std::string what;  ///< the reason in words (the socket's error, the bytes left unread)
};

// -- listeners --

/// Where a listener listens.
struct endpoint {
  /// TCP on `address` (IPv4 or IPv6), `port` (0: one the system picks; listener::port reads it).
  static endpoint tcp(std::string address, std::uint16_t port) { return {{false, std::move(address), port, {}}}; }
  /// A Unix stream socket at `path`, which must not exist but as a stale socket (removed); the
  /// listener removes it when it goes.
  static endpoint unix_socket(std::string path) { return {{true, {}, 0, std::move(path)}}; }

  detail::net::listen_address address;
};

struct listener_options {
  std::size_t read_size = 16 * 1024;  ///< bytes one data carries at most
  /// Bytes a connection may have queued and not taken by the socket (its client's unread
  /// replies, beyond the system's buffers): past them the client is cut off.
  std::size_t max_pending = 4 * 1024 * 1024;
  unsigned threads = 1;  ///< threads that run the sockets (the servers run on the pool)
  int backlog = 1024;    ///< connections the system holds before they are accepted
  /// How long stop() waits for the servers to finish the requests in hand, then for their
  /// replies to be written: each.
  std::chrono::nanoseconds stop_timeout = default_timeout;
  std::optional<std::size_t> max_connections{};  ///< the owned supervisor's max_children (none: no limit)
  /// Where its lines go (a connection cut off, a server that could not start); empty: the
  /// program's report sink (hotswap::set_report_sink), as reports of kind network.
  std::function<void(const std::string&)> log{};
};

/// What a listener counted, readable from any thread.
struct listener_counters {
  std::uint64_t accepted = 0;  ///< connections accepted since it opened
  std::uint64_t open = 0;      ///< of them, those open now
  std::uint64_t cut_off = 0;   ///< closed because their clients did not read
};

/// What starts the server of a connection: a child spec of a dynamic supervisor (its restart
/// is made temporary: a connection's server is not restarted, its socket is gone).
using connection_child = std::function<child_spec(const connection&)>;

/// The child that runs `Implementation` for a connection: its init takes the connection
/// (`static state init(const hotswap::net::connection&)`).
template <class Implementation>
connection_child server_for_each();

/// A listener: accepts connections and starts a server for each, under a dynamic supervisor
/// it owns or is given; made by the program (not a module: its threads are its code's).
class listener {
 public:
  /// Listens on `where` and runs `Implementation` for each connection, under a dynamic
  /// supervisor of its own (started here, stopped by stop()). Its interface declares the
  /// infos net::data and net::closed; its init takes a `const net::connection&`. Fails with
  /// errc::cannot_listen when the address cannot be listened on.
  template <class Implementation>
  static result<std::unique_ptr<listener>> open(const endpoint& where, listener_options options = {});

  /// The same, each connection's server started by `child` as a child of `supervisor`; the
  /// server's interface is `Interface`. The supervisor is the caller's: stop() terminates the
  /// listener's children only.
  template <class Interface>
  static result<std::unique_ptr<listener>> open(const endpoint& where, connection_child child,
                                                server_ref<dynamic_supervisor_interface> supervisor,
                                                listener_options options = {});

  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  /// Stops it (stop()) if it was not, then its threads.
  ~listener();

  /// The port it listens on (TCP: the one the system picked for port 0), 0 for a Unix socket.
  std::uint16_t port() const noexcept { return acceptor_->port(); }
  listener_counters counters() const noexcept;
  const server_ref<dynamic_supervisor_interface>& supervisor() const noexcept { return supervisor_; }

  /// The orderly stop: closes the listening socket (no more connections), starts no more
  /// reads, waits (stop_timeout) until every server has finished the data in hand (asked for
  /// more, closed its connection, or ended), then stops the servers (the owned supervisor, or
  /// its children of a given one), waits (stop_timeout) for their replies to be written, and
  /// closes what is left. errc::timeout if a wait ran out (it went on). Once; later calls
  /// return at once. Not from a connection's server (it would wait for itself). When the
  /// supervisor ends by itself (hotswap::stop_all stops it), the listening socket closes at
  /// once.
  result<void> stop();

 private:
  struct started_server {
    std::weak_ptr<detail::net::stream_connection> connection;
    any_server server;
  };
  using binder = detail::net::stream_connection::events (*)(const any_server& server);

  listener(const endpoint& where, connection_child child, server_ref<dynamic_supervisor_interface> supervisor,
           bool owned, binder bind, listener_options options);
  result<void> listen(const endpoint& where);
  void accepted(const std::shared_ptr<detail::net::stream_connection>& made);

  listener_options options_;
  connection_child child_;
  server_ref<dynamic_supervisor_interface> supervisor_;
  bool owns_supervisor_;
  binder bind_;
  monitor_ref supervisor_monitor_;
  std::shared_ptr<detail::net::context> shared_;
  std::shared_ptr<detail::net::acceptor> acceptor_;
  std::mutex servers_lock_;
  std::vector<started_server> servers_;  // pruned as it grows
  bool stopped_ = false;
};

}  // namespace hotswap::net

namespace hotswap {
/// A connection's canonical name: a field of a state's schema, held unchanged across versions.
template <>
struct type_name<net::connection> {
  static constexpr std::string_view value = "hotswap::net::connection";
};
/// Its functions are the listener's, in the program: a state holding one does not keep the code
/// that made it loaded (a connection's server started on a version of a module, then moved to
/// another, does not pin the first).
template <>
inline constexpr bool detail::runtime_handle<net::connection> = true;
}  // namespace hotswap

#include "impl/net.hpp"
