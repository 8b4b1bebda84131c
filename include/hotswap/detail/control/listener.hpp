// The control socket's listener: one thread of its own polling the socket and its connections
// (never a worker's), each connection's peer checked before a byte is read, bounded requests,
// bounded connections, a deadline on each, and replies buffered so that a client that does not
// read stalls nobody.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../../result.hpp"
#include "../common/sync.hpp"
#include "request.hpp"

namespace hotswap::detail {

/// The listener's limits and who may connect.
struct listener_limits {
  std::vector<uid_t> allowed_uids;  ///< beside the program's own uid and root's
  std::size_t max_connections;
  std::size_t max_request;             ///< bytes of one request line
  std::size_t max_pending;             ///< bytes of replies a client has not read: past them, it is cut off
  std::chrono::milliseconds deadline;  ///< to send a request line, and to take a reply, each time
};

class reply_lines;

/// A reply that goes on after its request's handler returned (a trace): pumped by the listener
/// about every 20 ms until it is complete. While it runs, the connection's next requests wait;
/// it is destroyed, and so stops, when it is complete or the client goes.
class reply_stream {
 public:
  virtual ~reply_stream() = default;
  /// Writes what is ready; false once the reply is complete.
  virtual bool pump(reply_lines& reply) = 0;
};

/// Where a request's reply lines go: the connection's buffer, written as far as the socket takes.
class reply_lines {
 public:
  virtual void line(const std::string& text) = 0;                 ///< one line (the newline is added)
  virtual void follow(std::unique_ptr<reply_stream> stream) = 0;  ///< the rest of the reply comes from `stream`

 protected:
  ~reply_lines() = default;
};

class control_listener {
 public:
  /// Runs a request line (without its newline), writing its reply lines.
  using handler = std::function<void(std::string_view request, reply_lines& reply)>;
  using logger = std::function<void(const std::string& line)>;

  /// Listens on `path` (which must not exist but as a stale socket of this program's pid), mode
  /// 0600 (0666 when other uids are allowed: the peer check keeps the rest out), on a thread of
  /// its own.
  static result<std::unique_ptr<control_listener>> open(const std::string& path, listener_limits limits, handler handle,
                                                        logger log) {
    std::unique_ptr<control_listener> made(
        new control_listener(path, std::move(limits), std::move(handle), std::move(log)));
    if (auto opened = made->listen(); !opened) return opened.error();
    made->thread_ = thread([listener = made.get()] { listener->loop(); });
    return made;
  }

  control_listener(const control_listener&) = delete;
  control_listener& operator=(const control_listener&) = delete;
  /// Stops the thread, closes every connection, removes the socket.
  ~control_listener() {
    if (wake_ >= 0) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto written = ::write(wake_, &one, sizeof one);
    }
    thread_.join();
    for (auto& connection : connections_) drop(connection);  // streams end before what they watch
    if (socket_ >= 0) {
      ::close(socket_);
      ::unlink(path_.c_str());
    }
    if (wake_ >= 0) ::close(wake_);
  }

  const std::string& path() const noexcept { return path_; }

 private:
  using clock = std::chrono::steady_clock;
  struct connection {
    int fd;
    uid_t uid;
    std::string in, out;
    clock::time_point deadline;
    bool closing = false;  // closed once `out` is written
    bool ended = false;    // the client sent its last byte
    std::unique_ptr<reply_stream> stream{};
  };

  class buffered_reply final : public reply_lines {
   public:
    buffered_reply(control_listener& listener, connection& to) : listener_(listener), to_(to) {}
    void line(const std::string& text) override {
      to_.out += text;
      to_.out += '\n';
      listener_.flush(to_);  // as it happens: an upgrade's steps are seen while it runs
    }
    void follow(std::unique_ptr<reply_stream> stream) override { to_.stream = std::move(stream); }

   private:
    control_listener& listener_;
    connection& to_;
  };

  control_listener(std::string path, listener_limits limits, handler handle, logger log)
      : path_(std::move(path)), limits_(std::move(limits)), handle_(std::move(handle)), log_(std::move(log)) {}

  result<void> listen() {
    auto failed = [&](const char* what) {
      return error{errc::bad_control, fmt::format("control socket {}: {}: {}", path_, what, std::strerror(errno))};
    };
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) return failed("eventfd");
    socket_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (socket_ < 0) return failed("socket");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
    struct stat seen {};
    if (::lstat(path_.c_str(), &seen) == 0) {  // this pid's, from a program that ran before with it
      if (!S_ISSOCK(seen.st_mode) || seen.st_uid != ::geteuid())
        return error{errc::bad_control, path_ + " exists and is not a socket of this user's: refused"};
      ::unlink(path_.c_str());
    }
    if (::bind(socket_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      const int bound = errno;
      ::close(std::exchange(socket_, -1));
      errno = bound;
      return failed("bind");
    }
    // Others are kept out by the directory, or, when some are allowed, by the peer check.
    if (::chmod(path_.c_str(), limits_.allowed_uids.empty() ? 0600 : 0666) != 0 || ::listen(socket_, 64) != 0) {
      const auto why = failed("listen");
      ::close(std::exchange(socket_, -1));
      ::unlink(path_.c_str());
      return why;
    }
    return {};
  }

  void loop() {
    std::vector<pollfd> watched;
    for (;;) {
      watched.clear();
      watched.push_back({wake_, POLLIN, 0});
      watched.push_back({socket_, POLLIN, 0});
      auto next_deadline = clock::time_point::max();
      for (const auto& one : connections_) {
        // A connection whose reply streams reads nothing until it ends: its input waits in the socket.
        short events = one.closing || one.ended || one.stream ? 0 : POLLIN;
        if (!one.out.empty()) events |= POLLOUT;
        watched.push_back({one.fd, events, 0});
        next_deadline =
            std::min(next_deadline, one.stream ? clock::now() + std::chrono::milliseconds(20) : one.deadline);
      }
      int wait_ms = -1;
      if (next_deadline != clock::time_point::max()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(next_deadline - clock::now()).count();
        wait_ms = static_cast<int>(std::clamp<long long>(left, 0, 60'000));
      }
      if (::poll(watched.data(), watched.size(), wait_ms) < 0 && errno != EINTR) return;
      if (watched[0].revents) return;  // stopping
      const auto now = clock::now();
      // Connections first (by index: accepting below appends), then the new ones.
      for (std::size_t i = 0; i < connections_.size(); ++i) {
        connection& one = connections_[i];
        const short happened = watched[i + 2].revents;
        if (happened & POLLOUT) flush(one);
        if (one.stream && (happened & (POLLHUP | POLLERR))) drop(one);  // gone: its stream stops
        if ((happened & (POLLIN | POLLHUP | POLLERR)) && one.fd >= 0 && !one.closing && !one.stream) receive(one);
        if (one.fd >= 0 && one.stream) {
          buffered_reply reply(*this, one);
          if (!one.stream->pump(reply)) {
            one.stream.reset();
            run_lines(one);
          }
          if (one.stream && one.out.empty()) one.deadline = clock::now() + limits_.deadline;  // waiting on us
        }
        if (one.fd >= 0 && one.deadline <= now) {
          if (!one.in.empty() || !one.out.empty())
            log_(fmt::format("control: uid {} cut off: {} ms without a request line or taking its reply", one.uid,
                             limits_.deadline.count()));
          drop(one);
        }
        if (one.fd >= 0 && one.closing && one.out.empty()) drop(one);
      }
      std::erase_if(connections_, [](const connection& one) { return one.fd < 0; });
      if (watched[1].revents & POLLIN) accept_all(now);
    }
  }

  void accept_all(clock::time_point now) {
    for (;;) {
      const int fd = ::accept4(socket_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: the others are served meanwhile
      ucred peer{};
      socklen_t size = sizeof peer;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || !allowed(peer.uid)) {
        log_(fmt::format("control: refused a connection from uid {} (pid {})", peer.uid, peer.pid));
        ::close(fd);
        continue;
      }
      if (connections_.size() >= limits_.max_connections) {
        const std::string busy =
            reply_line(false, {},
                       error{errc::bad_control, fmt::format("busy: {} connections already", limits_.max_connections)}) +
            "\n";
        [[maybe_unused]] const auto sent = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      connections_.push_back({fd, peer.uid, {}, {}, now + limits_.deadline});
    }
  }

  bool allowed(uid_t uid) const {
    if (uid == ::geteuid() || uid == 0) return true;
    for (uid_t one : limits_.allowed_uids)
      if (one == uid) return true;
    return false;
  }

  /// Reads what came; runs each complete line.
  void receive(connection& one) {
    char chunk[16384];
    for (;;) {
      const ssize_t got = ::recv(one.fd, chunk, sizeof chunk, MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) break;
      if (got <= 0) {  // the client is done sending (or gone)
        one.ended = true;
        break;
      }
      one.in.append(chunk, static_cast<std::size_t>(got));
      run_lines(one);
      if (one.fd < 0 || one.closing || one.stream) return;
    }
    run_lines(one);
  }

  /// Runs each complete line, until one's reply streams. A line over the limit, or an end of
  /// input with a line unfinished, is answered with an error and the connection closed.
  void run_lines(connection& one) {
    std::size_t end;
    while (one.fd >= 0 && !one.closing && !one.stream && (end = one.in.find('\n')) != std::string::npos) {
      if (end > limits_.max_request) break;
      const std::string line = one.in.substr(0, end);
      one.in.erase(0, end + 1);
      buffered_reply reply(*this, one);
      handle_(line, reply);
      one.deadline = clock::now() + limits_.deadline;
    }
    if (one.fd < 0 || one.closing || one.stream) return;
    if (const auto first = one.in.find('\n');
        (first == std::string::npos ? one.in.size() : first) > limits_.max_request)
      return refuse(one, fmt::format("a request line is at most {} bytes", limits_.max_request));
    if (one.ended) {
      if (!one.in.empty()) return refuse(one, "the request line has no end");
      one.closing = true;
    }
  }

  void refuse(connection& one, const std::string& why) {
    buffered_reply reply(*this, one);
    reply.line(reply_line(false, {}, error{errc::bad_request, why}));
    one.in.clear();
    one.closing = true;
  }

  /// Writes as much of `one.out` as the socket takes now; cuts off a client that lets too much
  /// wait.
  void flush(connection& one) {
    while (one.fd >= 0 && !one.out.empty()) {
      const ssize_t sent = ::send(one.fd, one.out.data(), one.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && errno == EAGAIN) break;
      if (sent <= 0) {
        drop(one);
        return;
      }
      one.out.erase(0, static_cast<std::size_t>(sent));
      one.deadline = clock::now() + limits_.deadline;
    }
    if (one.out.size() > limits_.max_pending) {
      log_(fmt::format("control: uid {} cut off: {} bytes of replies not read", one.uid, one.out.size()));
      drop(one);
    }
  }

  void drop(connection& one) {
    if (one.fd < 0) return;
    ::close(one.fd);
    one.fd = -1;
    one.out.clear();
    one.in.clear();
    one.stream.reset();
  }

  std::string path_;
  listener_limits limits_;
  handler handle_;
  logger log_;
  int socket_ = -1;
  int wake_ = -1;
  std::vector<connection> connections_;
  thread thread_;
};

}  // namespace hotswap::detail
