// The control socket's listener, on Boost.Asio and one thread of its own (never a worker's):
// each connection's peer checked before a byte is read and given its role, bounded requests,
// bounded connections (one kept for the program's own user) and streams a uid, a deadline on
// each, one request line a connection a turn (a client that keeps writing starves nobody), and
// replies written as far as the socket takes them (a client that does not read stalls nobody).
//
// A connection is a shared `session`: what runs for it (a read, a wait to write, a timer, a
// stream's pump) holds it, so nothing it owns is freed beneath a caller. A reply stream is
// destroyed only by the listener, never from inside its own pump: a connection that fails while
// the stream writes is closed at once and the stream let go once its pump has returned.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "../../result.hpp"
#include "../common/sync.hpp"
#include "request.hpp"

namespace hotswap::detail {

/// The listener's limits, and who may connect with which role.
struct listener_limits {
  std::vector<uid_t> operator_uids;    ///< beside the program's own uid and root's, which always operate
  std::vector<uid_t> viewer_uids;      ///< may use the commands of access_level::view only
  std::size_t max_connections;         ///< the last one only for the program's own uid and root
  std::size_t max_streams_per_uid;     ///< replies that stream (trace, watch) one uid holds at once
  std::size_t max_request;             ///< bytes of one request line
  std::size_t max_pending;             ///< bytes of replies a client has not read: past them, it is cut off
  std::chrono::milliseconds deadline;  ///< to send a request line, and to take a reply, each time
};

/// Who sent a request.
struct control_peer {
  uid_t uid;
  pid_t pid;
  access_level access;  ///< what the uid's role grants
};

class reply_lines;

/// A reply that goes on after its request's handler returned (a trace): pumped by the listener
/// about every 20 ms until it is complete. While it runs, the connection's next requests wait;
/// it is destroyed, and so stops, when it is complete or the client goes (never inside `pump`).
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
  using handler = std::function<void(std::string_view request, const control_peer& peer, reply_lines& reply)>;
  using logger = std::function<void(const std::string& line)>;

  /// Listens on `name` in the directory open as `directory` (a descriptor the listener keeps a
  /// copy of; `path` names the socket in messages), which must not exist but as a stale socket of
  /// this program's user; mode 0600 (0666 when other uids are allowed: the peer check keeps the
  /// rest out), on a thread of its own.
  static result<std::unique_ptr<control_listener>> open(int directory, const std::string& name, const std::string& path,
                                                        listener_limits limits, handler handle, logger log) {
    std::unique_ptr<control_listener> made(
        new control_listener(path, name, std::move(limits), std::move(handle), std::move(log)));
    if (auto opened = made->listen(directory); !opened) return opened.error();
    made->accept();
    made->thread_ = thread([listener = made.get()] { listener->loop(); });
    return made;
  }

  control_listener(const control_listener&) = delete;
  control_listener& operator=(const control_listener&) = delete;
  /// Stops the thread, closes every connection (their streams end before what they watch),
  /// removes the socket.
  ~control_listener() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      backoff_.cancel();
      refusals_timer_.cancel();
      while (!sessions_.empty()) drop(sessions_.back());
      io_.stop();
    });
    thread_.join();
    if (directory_ >= 0) {
      if (bound_) ::unlinkat(directory_, name_.c_str(), 0);
      ::close(directory_);
    }
  }

  const std::string& path() const noexcept { return path_; }

 private:
  using clock = std::chrono::steady_clock;
  using socket_type = boost::asio::local::stream_protocol::socket;
  using error_code = boost::system::error_code;

  struct session {
    session(socket_type connected, control_peer who)
        : socket(std::move(connected)), peer(who), deadline(socket.get_executor()), pump_timer(socket.get_executor()) {}
    socket_type socket;
    control_peer peer;
    std::string in, out;
    std::array<char, 16384> chunk{};
    boost::asio::steady_timer deadline, pump_timer;
    std::unique_ptr<reply_stream> stream{};
    bool reading = false;           // a read is under way
    bool waiting_to_write = false;  // a wait for room in the socket is under way
    bool ended = false;             // the client sent its last byte
    bool closing = false;           // closed once `out` is written
    bool gone = false;              // closed: what runs for it stops
    bool pumping = false;           // its stream's pump is on the stack
  };
  using session_ptr = std::shared_ptr<session>;

  class buffered_reply final : public reply_lines {
   public:
    buffered_reply(control_listener& listener, const session_ptr& to) : listener_(listener), to_(to) {}
    void line(const std::string& text) override { listener_.write_line(to_, text); }
    void follow(std::unique_ptr<reply_stream> stream) override { to_->stream = std::move(stream); }

   private:
    control_listener& listener_;
    const session_ptr& to_;
  };

  control_listener(std::string path, std::string name, listener_limits limits, handler handle, logger log)
      : path_(std::move(path)),
        name_(std::move(name)),
        limits_(std::move(limits)),
        handle_(std::move(handle)),
        log_(std::move(log)) {}

  result<void> listen(int directory) {
    auto failed = [&](const char* what, int number) {
      return error{errc::bad_control, fmt::format("control socket {}: {}: {}", path_, what, std::strerror(number))};
    };
    directory_ = ::fcntl(directory, F_DUPFD_CLOEXEC, 0);
    if (directory_ < 0) return failed("dup", errno);
    struct stat seen {};
    if (::fstatat(directory_, name_.c_str(), &seen, AT_SYMLINK_NOFOLLOW) == 0) {  // from a program that had this pid
      if (!S_ISSOCK(seen.st_mode) || seen.st_uid != ::geteuid())
        return error{errc::bad_control, path_ + " exists and is not a socket of this user's: refused"};
      ::unlinkat(directory_, name_.c_str(), 0);
    }
    // Bound through the opened directory: no path is resolved again between its check and here.
    const std::string through = fmt::format("/proc/self/fd/{}/{}", directory_, name_);
    if (through.size() >= sizeof(sockaddr_un{}.sun_path))
      return error{errc::bad_control, path_ + ": the program's name is too long for a socket address"};
    boost::system::error_code failure;
    acceptor_.open(boost::asio::local::stream_protocol(), failure);
    if (!failure) acceptor_.bind(boost::asio::local::stream_protocol::endpoint(through), failure);
    if (failure) return error{errc::bad_control, fmt::format("control socket {}: bind: {}", path_, failure.message())};
    bound_ = true;
    // Others are kept out by the directory, or, when some are allowed, by the peer check.
    const bool shared = !limits_.operator_uids.empty() || !limits_.viewer_uids.empty();
    if (::fchmodat(directory_, name_.c_str(), shared ? 0666 : 0600, 0) != 0) return failed("chmod", errno);
    acceptor_.listen(64, failure);
    if (failure)
      return error{errc::bad_control, fmt::format("control socket {}: listen: {}", path_, failure.message())};
    return {};
  }

  /// The listener's thread: no exception leaves it (one from a handler is logged, and serving
  /// goes on).
  void loop() {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& thrown) {
        log_quietly(fmt::format("control: {} (the listener serves on)", thrown.what()));
      } catch (...) {
        log_quietly("control: an unknown exception (the listener serves on)");
      }
    }
  }

  /// Every line the listener's thread logs: a logger that throws (standard error closed, say)
  /// loses the line, never a connection or the accepting.
  void log_quietly(const std::string& line) noexcept {
    try {
      log_(line);
    } catch (...) {
    }
  }

  // -- accepting --

  void accept() {
    acceptor_.async_accept([this](const error_code& failed, socket_type connected) {
      if (failed == boost::asio::error::operation_aborted) return;  // stopping
      if (failed) return back_off(failed);
      backoff_ms_ = 0;
      accept();  // first: whatever admitting this one does, the next are accepted
      admit(std::move(connected));
    });
  }

  /// Out of descriptors (or memory): the connection waits in the backlog while the listener
  /// waits, a little longer each time, instead of being told of it again at once.
  void back_off(const error_code& failed) {
    backoff_ms_ = std::clamp(backoff_ms_ * 2, 50, 1000);
    log_quietly(
        fmt::format("control: cannot accept a connection ({}): trying again in {} ms", failed.message(), backoff_ms_));
    backoff_.expires_after(std::chrono::milliseconds(backoff_ms_));
    backoff_.async_wait([this](const error_code& cancelled) {
      if (!cancelled) accept();
    });
  }

  void admit(socket_type connected) {
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(connected.native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0) return;
    const auto access = access_of(peer.uid);
    if (!access) return refused(peer);
    const bool owner = peer.uid == ::geteuid() || peer.uid == 0;
    if (sessions_.size() >= (owner ? limits_.max_connections : std::max<std::size_t>(limits_.max_connections, 1) - 1)) {
      const std::string busy =
          reply_line(false, {},
                     error{errc::bad_control, fmt::format("busy: {} connections already", sessions_.size())}) +
          "\n";
      [[maybe_unused]] const auto sent =
          ::send(connected.native_handle(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      return;  // closed as `connected` goes
    }
    error_code ignored;
    connected.non_blocking(true, ignored);
    auto made = std::make_shared<session>(std::move(connected), control_peer{peer.uid, peer.pid, *access});
    sessions_.push_back(made);
    arm_deadline(made);
    read(made);
  }

  std::optional<access_level> access_of(uid_t uid) const {
    const auto listed = [](const std::vector<uid_t>& uids, uid_t one) {
      return std::find(uids.begin(), uids.end(), one) != uids.end();
    };
    if (uid == ::geteuid() || uid == 0 || listed(limits_.operator_uids, uid)) return access_level::operate;
    if (listed(limits_.viewer_uids, uid)) return access_level::view;
    return std::nullopt;
  }

  /// A refused connection: the first of a uid is logged, then a count a second while they go on.
  void refused(const ucred& peer) {
    const auto [counted, first] = refusals_.try_emplace(peer.uid, 0);
    if (!first) {
      ++counted->second;
      return;
    }
    log_quietly(fmt::format("control: refused a connection from uid {} (pid {}): not allowed", peer.uid, peer.pid));
    if (refusals_.size() == 1) count_refusals();
  }

  void count_refusals() {
    refusals_timer_.expires_after(std::chrono::seconds(1));
    refusals_timer_.async_wait([this](const error_code& cancelled) {
      if (cancelled) return;
      for (auto counted = refusals_.begin(); counted != refusals_.end();)
        if (counted->second == 0) {
          counted = refusals_.erase(counted);  // quiet for a second: its next refusal is logged again
        } else {
          log_quietly(fmt::format("control: refused {} more connections from uid {} in the last second",
                                  counted->second, counted->first));
          (counted++)->second = 0;
        }
      if (!refusals_.empty()) count_refusals();
    });
  }

  // -- requests --

  void read(const session_ptr& one) {
    if (one->gone || one->reading || one->stream || one->ended || one->closing) return;
    one->reading = true;
    one->socket.async_read_some(boost::asio::buffer(one->chunk),
                                [this, one](const error_code& failed, std::size_t got) { received(one, failed, got); });
  }

  void received(const session_ptr& one, const error_code& failed, std::size_t got) {
    one->reading = false;
    if (one->gone) return;
    if (failed && failed != boost::asio::error::eof) return drop(one);
    if (failed)
      one->ended = true;  // the client is done sending: what it sent is still answered
    else
      one->in.append(one->chunk.data(), got);  // (the deadline is for a whole line: a piece does not renew it)
    serve(one);
  }

  /// Runs the connection's next complete line, if any, and comes back for the one after on a
  /// later turn (other connections are served meanwhile); reads more when no line is complete.
  /// A line over the limit, or an end of input with a line unfinished, is answered with an error
  /// and the connection closed.
  void serve(const session_ptr& one) {
    if (one->gone || one->closing || one->stream) return;
    const auto end = one->in.find('\n');
    if ((end == std::string::npos ? one->in.size() : end) > limits_.max_request)
      return refuse(one, fmt::format("a request line is at most {} bytes", limits_.max_request));
    if (end == std::string::npos) {
      if (!one->ended) return read(one);
      if (!one->in.empty()) return refuse(one, "the request line has no end");
      return close_when_written(one);
    }
    const std::string line = one->in.substr(0, end);
    one->in.erase(0, end + 1);
    run(one, line);
    if (one->gone) {
      one->stream.reset();  // a stream its handler made for a connection that went meanwhile
      return;
    }
    arm_deadline(one);
    if (one->stream) return start_stream(one);
    boost::asio::post(io_, [this, one] { serve(one); });
  }

  /// The handler, which may throw: its exception is the request's error reply.
  void run(const session_ptr& one, const std::string& line) {
    buffered_reply reply(*this, one);
    std::string failure;
    try {
      handle_(line, one->peer, reply);
      return;
    } catch (const std::exception& thrown) {
      failure = thrown.what();
    } catch (...) {
      failure = "an unknown exception";
    }
    one->stream.reset();
    reply.line(reply_line(false, nullptr,
                          error{errc::request_failed, "the request failed in the program (" + failure +
                                                          "); nothing it had not done yet was done"}));
  }

  void refuse(const session_ptr& one, const std::string& why) {
    write_line(one, reply_line(false, {}, error{errc::bad_request, why}));
    one->in.clear();
    close_when_written(one);
  }

  void close_when_written(const session_ptr& one) {
    one->closing = true;
    if (one->out.empty()) drop(one);
  }

  // -- replies --

  void write_line(const session_ptr& one, const std::string& text) {
    if (one->gone) return;
    one->out += text;
    one->out += '\n';
    flush(one);  // as it happens: an upgrade's steps are seen while it runs
  }

  /// Writes as much of the reply as the socket takes now, and waits for room for the rest; cuts
  /// off a client that lets too much wait. Never destroys the connection's stream.
  void flush(const session_ptr& one) {
    while (!one->gone && !one->out.empty()) {
      error_code failed;
      const std::size_t sent = one->socket.write_some(boost::asio::buffer(one->out), failed);
      if (failed == boost::asio::error::would_block || failed == boost::asio::error::try_again) break;
      if (failed || sent == 0) return drop(one);
      one->out.erase(0, sent);
      arm_deadline(one);
    }
    if (one->out.size() > limits_.max_pending) {
      const std::size_t unread = one->out.size();
      drop(one);
      return log_quietly(fmt::format("control: uid {} cut off: {} bytes of replies not read", one->peer.uid, unread));
    }
    if (one->out.empty()) {
      if (one->closing) drop(one);
      return;
    }
    if (one->waiting_to_write) return;
    one->waiting_to_write = true;
    one->socket.async_wait(socket_type::wait_write, [this, one](const error_code&) {
      one->waiting_to_write = false;
      flush(one);
    });
  }

  // -- streams --

  void start_stream(const session_ptr& one) {
    std::size_t held = 0;
    for (const auto& other : sessions_) held += other != one && other->stream && other->peer.uid == one->peer.uid;
    if (held >= limits_.max_streams_per_uid) {
      one->stream.reset();
      write_line(one, reply_line(false, nullptr,
                                 error{errc::bad_request,
                                       fmt::format("uid {} holds {} streaming replies already (trace, watch): end one",
                                                   one->peer.uid, held)}));
      return boost::asio::post(io_, [this, one] { serve(one); });
    }
    pump(one);
  }

  void pump(const session_ptr& one) {
    if (!one->gone && hung_up(one)) drop(one);  // a client that went: its stream stops
    if (one->gone) {
      one->stream.reset();
      return;
    }
    bool more = false;
    one->pumping = true;
    try {
      buffered_reply reply(*this, one);
      more = one->stream->pump(reply);
    } catch (const std::exception& thrown) {
      write_line(one, reply_line(false, nullptr, error{errc::request_failed, thrown.what()}));
    } catch (...) {
      write_line(one, reply_line(false, nullptr, error{errc::request_failed, "an unknown exception"}));
    }
    one->pumping = false;
    if (one->gone || !more) {
      one->stream.reset();
      if (!one->gone) boost::asio::post(io_, [this, one] { serve(one); });
      return;
    }
    if (one->out.empty()) arm_deadline(one);  // waiting on the program, not on the client
    one->pump_timer.expires_after(std::chrono::milliseconds(20));
    one->pump_timer.async_wait([this, one](const error_code& cancelled) {
      if (!cancelled) pump(one);
    });
  }

  /// Whether the client closed its end (its input is not read while a stream runs).
  static bool hung_up(const session_ptr& one) {
    pollfd probe{one->socket.native_handle(), 0, 0};
    return ::poll(&probe, 1, 0) > 0 && (probe.revents & (POLLHUP | POLLERR));
  }

  // -- ending --

  void arm_deadline(const session_ptr& one) {
    one->deadline.expires_after(limits_.deadline);
    one->deadline.async_wait([this, weak = std::weak_ptr<session>(one)](const error_code& cancelled) {
      const auto one = weak.lock();
      if (cancelled || !one || one->gone) return;
      if (one->stream && one->out.empty()) return arm_deadline(one);
      const bool begun = !one->in.empty() || !one->out.empty();
      drop(one);
      if (begun)
        log_quietly(fmt::format("control: uid {} cut off: {} ms without a request line or taking its reply",
                                one->peer.uid, limits_.deadline.count()));
    });
  }

  /// Closes the connection; what runs for it sees `gone` and stops. Its stream goes now, unless
  /// it is the one writing (then as its pump returns).
  void drop(session_ptr one) {
    if (one->gone) return;
    one->gone = true;
    error_code ignored;
    one->socket.close(ignored);
    one->deadline.cancel();
    one->pump_timer.cancel();
    one->in.clear();
    one->out.clear();
    std::erase(sessions_, one);
    if (!one->pumping) one->stream.reset();
  }

  std::string path_, name_;
  listener_limits limits_;
  handler handle_;
  logger log_;
  int directory_ = -1;
  bool bound_ = false;
  boost::asio::io_context io_{1};
  boost::asio::local::stream_protocol::acceptor acceptor_{io_};
  boost::asio::steady_timer backoff_{io_}, refusals_timer_{io_};
  int backoff_ms_ = 0;
  std::map<uid_t, std::size_t> refusals_;  // uid -> refused since its last line
  std::vector<session_ptr> sessions_;
  thread thread_;
};

}  // namespace hotswap::detail
