// What a network connection's handle (hotswap::net::connection) reaches: the operations a server
// uses on its connection, as virtual functions of an object the listener makes. The listener
// runs in the program, so the object, its vtable and its shared control block are the program's
// code: a module's server that holds the handle in its state, sends on it or asks for more calls
// the program's copy, and nothing it posts outlives a module's code (docs/architecture.md, the
// ABI rule).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hotswap::detail::net {

/// Why a connection ended, as its server is told (hotswap::net::closed).
enum class close_reason : std::uint8_t {
  peer_closed,  ///< the client closed its end (OTP's tcp_closed)
  reset,        ///< the client reset the connection (ECONNRESET, EPIPE)
  failed,       ///< another error of the socket (`what` says which)
  cut_off,      ///< the client left more bytes unread than the listener's bound allows
  closed,       ///< the server closed it (connection::close), or ended
  stopped,      ///< the listener stopped
};

constexpr const char* to_string(close_reason reason) noexcept {
  switch (reason) {
    case close_reason::peer_closed:
      return "peer_closed";
    case close_reason::reset:
      return "reset";
    case close_reason::failed:
      return "failed";
    case close_reason::cut_off:
      return "cut_off";
    case close_reason::closed:
      return "closed";
    case close_reason::stopped:
      return "stopped";
  }
  return "unknown";
}

/// One connection as its server sees it. Every function may be called from any thread.
class connection_core {
 public:
  virtual ~connection_core() = default;
  /// Queues `bytes` to be written, without blocking. False once the connection is closed; false
  /// too when `bytes` would leave more unwritten than the bound: the connection is then cut off.
  virtual bool send(std::string bytes) = 0;
  /// Starts the next read ({active, once} set again); its bytes come as the next data info. A
  /// read already in flight, or a closed connection: nothing.
  virtual void read_more() = 0;
  /// Closes the connection once what was queued is written.
  virtual void close() = 0;
  virtual bool is_open() const noexcept = 0;
  /// Bytes queued and not yet taken by the socket.
  virtual std::size_t pending() const noexcept = 0;

  std::uint64_t id = 0;  ///< unique in the process
  std::string peer;      ///< the client's address ("127.0.0.1:50412"; a Unix socket's: "unix")
};

}  // namespace hotswap::detail::net
