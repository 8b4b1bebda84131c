// The listening socket: TCP on an address and port (port 0: the system picks one, readable
// after), or a Unix stream socket at a path; each accepted connection made a stream_connection
// and handed on. On the listener's io_context, in a strand of its own; out of descriptors, it
// waits a little longer each time instead of spinning (the connection waits in the backlog).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <fmt/format.h>

#include "../../result.hpp"
#include "context.hpp"
#include "stream_connection.hpp"

namespace hotswap::detail::net {

/// Where to listen.
struct listen_address {
  bool local = false;      ///< a Unix stream socket at `path`, else TCP at `host`:`port`
  std::string host{};      ///< an IPv4 or IPv6 address
  std::uint16_t port = 0;  ///< 0: one the system picks
  std::string path{};
};

/// The client's address as text: "127.0.0.1:50412", "[::1]:50412", or "unix".
inline std::string describe_peer(const boost::asio::generic::stream_protocol::socket& socket) {
  boost::system::error_code failed;
  const auto where = socket.remote_endpoint(failed);
  if (failed) return "unknown";
  char text[INET6_ADDRSTRLEN] = {};
  if (where.data()->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(where.data());
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return fmt::format("{}:{}", text, ntohs(in->sin_port));
  }
  if (where.data()->sa_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(where.data());
    ::inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof text);
    return fmt::format("[{}]:{}", text, ntohs(in->sin6_port));
  }
  return "unix";
}

class acceptor : public std::enable_shared_from_this<acceptor> {
 public:
  using accepted = std::function<void(const std::shared_ptr<stream_connection>&)>;
  using error_code = boost::system::error_code;

  acceptor(std::shared_ptr<context> shared, stream_connection::limits bounds, accepted on_accept)
      : shared_(std::move(shared)),
        strand_(boost::asio::make_strand(shared_->io())),
        acceptor_(strand_),
        backoff_(strand_),
        limits_(bounds),
        on_accept_(std::move(on_accept)) {}
  acceptor(const acceptor&) = delete;
  acceptor& operator=(const acceptor&) = delete;
  ~acceptor() {
    if (!bound_path_.empty()) ::unlink(bound_path_.c_str());
  }

  /// Binds and listens (before the io_context runs). A Unix socket's path must not exist, but
  /// as a stale socket (removed).
  result<void> listen(const listen_address& where, int backlog) {
    error_code failed;
    const char* step = "open";
    boost::asio::generic::stream_protocol::endpoint endpoint;
    if (where.local) {
      struct stat seen {};
      if (::lstat(where.path.c_str(), &seen) == 0) {
        if (!S_ISSOCK(seen.st_mode))
          return error{errc::cannot_listen, where.path + " exists and is not a socket: refused"};
        ::unlink(where.path.c_str());
      }
      if (where.path.size() >= sizeof(sockaddr_un{}.sun_path))
        return error{errc::cannot_listen, where.path + ": too long for a Unix socket's address"};
      endpoint = boost::asio::local::stream_protocol::endpoint(where.path);
    } else {
      const auto address = boost::asio::ip::make_address(where.host, failed);
      if (failed)
        return error{errc::cannot_listen, fmt::format("{}: not an IP address ({})", where.host, failed.message())};
      endpoint = boost::asio::ip::tcp::endpoint(address, where.port);
    }
    acceptor_.open(endpoint.protocol(), failed);
    if (!failed && !where.local) {
      step = "setsockopt";
      acceptor_.set_option(boost::asio::socket_base::reuse_address(true), failed);
    }
    if (!failed) {
      step = "bind";
      acceptor_.bind(endpoint, failed);
      if (!failed && where.local) bound_path_ = where.path;
    }
    if (!failed) {
      step = "listen";
      acceptor_.listen(backlog, failed);
    }
    if (failed) {
      const std::string place = where.local ? where.path : fmt::format("{}:{}", where.host, where.port);
      return error{errc::cannot_listen, fmt::format("{}: {}: {}", place, step, failed.message())};
    }
    const auto bound = acceptor_.local_endpoint(failed);
    if (!failed && bound.data()->sa_family == AF_INET)
      port_ = ntohs(reinterpret_cast<const sockaddr_in*>(bound.data())->sin_port);
    else if (!failed && bound.data()->sa_family == AF_INET6)
      port_ = ntohs(reinterpret_cast<const sockaddr_in6*>(bound.data())->sin6_port);
    return {};
  }

  /// The port it listens on (TCP; 0 for a Unix socket).
  std::uint16_t port() const noexcept { return port_; }

  void start() {
    shared_->post(strand_, [self = shared_from_this()] { self->accept(); });
  }

  /// Closes the listening socket: no connection is accepted after (those accepted are not
  /// touched). Returns at once; close() waits for it.
  void close_later() {
    shared_->post(strand_, [self = shared_from_this()] { self->close_here(); });
  }
  /// The same, returning once it is closed (not from one of the io_context's threads).
  void close() {
    auto done = std::make_shared<std::promise<void>>();
    auto closed = done->get_future();
    if (!shared_->post(strand_, [self = shared_from_this(), done] {
          self->close_here();
          done->set_value();
        }))
      return;  // the context is closed: nothing runs any more
    closed.wait();
  }

 private:
  static std::uint64_t next_id() noexcept {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  void close_here() {
    error_code ignored;
    acceptor_.close(ignored);
    backoff_.cancel();
  }

  void accept() {
    if (!acceptor_.is_open()) return;
    auto made = std::make_shared<stream_connection>(shared_, next_id(), limits_);
    acceptor_.async_accept(made->socket(), [self = shared_from_this(), made](const error_code& failed) {
      if (failed == boost::asio::error::operation_aborted || !self->acceptor_.is_open()) return;
      if (failed) return self->back_off(failed);
      self->backoff_ms_ = 0;
      made->peer = describe_peer(made->socket());
      made->opened();
      self->shared_->accepted.fetch_add(1, std::memory_order_acq_rel);
      self->accept();  // first: whatever starting this one's server does, the next are accepted
      if (self->shared_->stopping.load(std::memory_order_acquire))
        return made->end_now(close_reason::stopped, "the listener is stopping");
      try {
        self->on_accept_(made);
      } catch (const std::exception& thrown) {  // out of memory: this connection goes, the others stay
        made->end_now(close_reason::failed, thrown.what());
      }
    });
  }

  void back_off(const error_code& failed) {
    backoff_ms_ = std::clamp(backoff_ms_ * 2, 50, 1000);
    shared_->log(
        fmt::format("net: cannot accept a connection ({}): trying again in {} ms", failed.message(), backoff_ms_));
    backoff_.expires_after(std::chrono::milliseconds(backoff_ms_));
    backoff_.async_wait([self = shared_from_this()](const error_code& cancelled) {
      if (!cancelled) self->accept();
    });
  }

  std::shared_ptr<context> shared_;  // first: what follows goes before the io_context
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol> acceptor_;
  boost::asio::steady_timer backoff_;
  stream_connection::limits limits_;
  accepted on_accept_;
  std::string bound_path_;
  std::uint16_t port_ = 0;
  int backoff_ms_ = 0;
};

}  // namespace hotswap::detail::net
