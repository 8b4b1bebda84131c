// hotswap's network, generated from include/ by tools/amalgamate.py; do not edit.
#pragma once
#include "signals.hpp"
// ---- hotswap/net.hpp ----
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

// ---- hotswap/detail/net/acceptor.hpp ----
// The listening socket: TCP on an address and port (port 0: the system picks one, readable
// after), or a Unix stream socket at a path; each accepted connection made a stream_connection
// and handed on. On the listener's io_context, in a strand of its own; out of descriptors, it
// waits a little longer each time instead of spinning (the connection waits in the backlog).

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

// ---- hotswap/detail/net/context.hpp ----
// What a listener's connections share, and may outlive the listener with: the io_context and
// the threads that run it, the guard on posting to it, the counters, and the count of requests
// in hand that an orderly stop waits for. A connection's handle lives in its server's state,
// which may outlive the listener: each connection holds this, so its socket is destroyed before
// the io_context; once closed, nothing more is posted (a handler posted to an io_context no
// thread runs would hold its connection, which holds this, for ever).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>


namespace hotswap::detail::net {

/// The io_context, whose services can be shut down (handlers destroyed, sockets left closable)
/// before it is destroyed: when the listener goes, while connections live on in servers' states.
class owned_io : public boost::asio::io_context {
 public:
  using boost::asio::io_context::io_context;
  using boost::asio::io_context::shutdown;
};

class context {
 public:
  using logger = std::function<void(const std::string& line)>;

  context(unsigned threads, logger log) : io_(static_cast<int>(threads)), log_(std::move(log)) {}
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context() { close(); }

  boost::asio::io_context& io() noexcept { return io_; }

  /// Runs the io_context on `count` threads of its own (at least one). No exception leaves them:
  /// one a handler lets out is logged, and the thread runs on.
  void start(unsigned count) {
    for (unsigned made = 0; made < std::max(count, 1u); ++made)
      threads_.emplace_back([this] {
        for (;;) {
          try {
            io_.run();
            return;
          } catch (const std::exception& thrown) {
            log(std::string("net: ") + thrown.what() + " (the listener serves on)");
          } catch (...) {
            log("net: an unknown exception (the listener serves on)");
          }
        }
      });
  }

  /// Posts `work` to `on` unless the context is closed; false then (the work is dropped, never run).
  template <class Executor, class Work>
  bool post(const Executor& on, Work&& work) {
    const std::shared_lock hold(lock_);
    if (closed_) return false;
    boost::asio::post(on, std::forward<Work>(work));
    return true;
  }

  /// Stops the threads, joins them, and destroys what was still to run: the connections that
  /// live on are closed, and what they are asked is not done. (Not from one of its threads.)
  void close() noexcept {
    {
      const std::unique_lock hold(lock_);
      if (closed_) return;
      closed_ = true;
    }
    work_.reset();
    io_.stop();
    for (auto& running : threads_) running.join();
    io_.shutdown();
  }
  bool closed() const {
    const std::shared_lock hold(lock_);
    return closed_;
  }
  bool on_its_thread() const noexcept {
    for (const auto& running : threads_)
      if (running.is_this_thread()) return true;
    return false;
  }

  /// Every line the listener logs; a logger that throws loses the line only.
  void log(const std::string& line) noexcept {
    try {
      if (log_) log_(line);
    } catch (...) {
    }
  }

  // -- requests in hand --

  /// A connection's server got data (+1), or is done with it: it asked for more, or ended (-1).
  void in_hand(int change) {
    {
      const std::lock_guard hold(hand_lock_);
      in_hand_ += change;
    }
    if (change < 0) hand_changed_.notify_all();
  }
  /// Waits until no server has data in hand, at most `timeout`; false if one still has.
  bool wait_for_hands(std::chrono::nanoseconds timeout) {
    std::unique_lock hold(hand_lock_);
    return hand_changed_.wait_for(hold, std::min(timeout, longest_wait), [this] { return in_hand_ <= 0; });
  }
  /// Wakes wait_for_hands and wait_for_closed (a connection closed).
  void notify() {
    { const std::lock_guard hold(hand_lock_); }
    hand_changed_.notify_all();
  }
  /// Waits until no connection is open, at most `timeout`.
  bool wait_for_closed(std::chrono::nanoseconds timeout) {
    std::unique_lock hold(hand_lock_);
    return hand_changed_.wait_for(hold, std::min(timeout, longest_wait),
                                  [this] { return open.load(std::memory_order_acquire) == 0; });
  }

  std::atomic<std::uint64_t> accepted{0}, open{0}, cut_off{0};
  std::atomic<bool> stopping{false};  ///< reads are no longer started: the listener is stopping

 private:
  static constexpr std::chrono::nanoseconds longest_wait = std::chrono::hours(24 * 365);

  owned_io io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  logger log_;
  std::vector<thread> threads_;
  mutable std::shared_mutex lock_;
  bool closed_ = false;
  std::mutex hand_lock_;
  std::condition_variable hand_changed_;
  long in_hand_ = 0;
};

}  // namespace hotswap::detail::net
// ---- hotswap/detail/net/stream_connection.hpp ----
// One connection over Boost.Asio, as OTP's gen_tcp with {active, once}: one read in flight at a
// time, started when the server asks (read_more), its bytes handed to the server as a message;
// writes queued without blocking the server, bounded in bytes (past the bound the client is cut
// off); closed once what was queued is written when its server closes it or ends.
//
// Everything that touches the socket runs on the connection's strand (its handlers, what
// read_more, close and the server's end post), so threads of the pool may call it at once, but
// two things, so that a request and its reply cost no hop to the strand but the read's own: a send
// with nothing queued ahead of it is written on the server's thread, as far as the socket takes
// it without blocking, under the lock the strand takes before it closes the socket; and
// read_more only says so (an atomic handshake), the socket's readiness being awaited again as
// soon as a read is delivered, and its bytes read only once the server has asked (left in the
// socket until then: the client is held back, nothing is buffered here). What runs for it holds it (a
// shared_ptr), and so does the handle in its server's state: nothing is freed beneath a caller.

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

// ---- hotswap/detail/net/connection_core.hpp ----
// What a network connection's handle (hotswap::net::connection) reaches: the operations a server
// uses on its connection, as virtual functions of an object the listener makes. The listener
// runs in the program, so the object, its vtable and its shared control block are the program's
// code: a module's server that holds the handle in its state, sends on it or asks for more calls
// the program's copy, and nothing it posts outlives a module's code (docs/architecture.md, the
// ABI rule).

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

namespace hotswap::detail::net {

class stream_connection final : public connection_core, public std::enable_shared_from_this<stream_connection> {
 public:
  using socket_type = boost::asio::generic::stream_protocol::socket;
  using strand_type = boost::asio::strand<boost::asio::io_context::executor_type>;
  using error_code = boost::system::error_code;

  struct limits {
    std::size_t read_size;    ///< bytes one read takes at most
    std::size_t max_pending;  ///< bytes queued and not taken by the socket: past them, cut off
  };
  /// What the connection tells its server; bound by the listener once the server started, and
  /// called on the strand.
  struct events {
    /// The next bytes read (OTP's {tcp, Socket, Data}); false if the server has ended.
    std::function<bool(const std::shared_ptr<connection_core>& from, std::string bytes)> data;
    /// The connection ended (OTP's {tcp_closed, Socket}, {tcp_error, Socket, Reason}).
    std::function<void(const std::shared_ptr<connection_core>& from, close_reason why, std::string what)> closed;
  };

  stream_connection(std::shared_ptr<context> shared, std::uint64_t number, limits bounds)
      : shared_(std::move(shared)),
        strand_(boost::asio::make_strand(shared_->io())),
        socket_(strand_),
        limits_(bounds) {
    id = number;
  }
  stream_connection(const stream_connection&) = delete;
  stream_connection& operator=(const stream_connection&) = delete;
  ~stream_connection() override {
    if (open_.load(std::memory_order_acquire)) counted_closed();  // the context closed beneath it
  }

  /// The socket the acceptor accepts into (before anything else runs for it).
  socket_type& socket() noexcept { return socket_; }

  /// From the acceptor, once accepted: counted open.
  void opened() {
    open_.store(true, std::memory_order_release);
    shared_->open.fetch_add(1, std::memory_order_acq_rel);
    error_code ignored;
    socket_.non_blocking(true, ignored);
    // A reply goes out as it is written, not held back for the previous one's ACK (Redis, too,
    // sets it). A Unix socket refuses the option: nothing to do there.
    socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
  }

  /// Binds its server and starts the first read (as {active, once} at the accept).
  void attach(events told) {
    post([self = shared_from_this(), told = std::move(told)]() mutable {
      if (self->gone_) return;
      self->events_ = std::move(told);
      self->read_state_.store(wanted, std::memory_order_release);
      self->start_read();
    });
  }

  /// Its server ended: no more is delivered; closed once what it queued is written.
  void server_ended() {
    post([self = shared_from_this()] {
      self->events_ = {};
      self->release_hand();
      self->close_when_written();
    });
  }

  /// Closes it now (the listener stopping, or no server could start for it).
  void end_now(close_reason why, std::string what) {
    post([self = shared_from_this(), why, what = std::move(what)]() mutable { self->end(why, std::move(what)); });
  }

  // -- what its server calls (any thread) --

  bool send(std::string bytes) override {
    std::size_t unread = 0;
    {
      const std::lock_guard hold(out_lock_);
      if (!writable_) return false;
      if (queued_.empty() && !writing_now_ && !flush_posted_) {  // nothing ahead of it: written here
        const auto wrote = ::send(socket_.native_handle(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (wrote == static_cast<ssize_t>(bytes.size())) return true;
        if (wrote > 0) bytes.erase(0, static_cast<std::size_t>(wrote));
        // The rest, or a failure (the strand's write then meets it), goes the strand's way.
      }
      unread = queued_.size() + writing_.size() + bytes.size();
      if (unread <= limits_.max_pending) {
        if (queued_.empty())
          queued_ = std::move(bytes);
        else
          queued_ += bytes;
        if (flush_posted_) return true;
        flush_posted_ = true;
      } else {
        writable_ = false;  // cut off: what follows is refused
      }
    }
    if (unread <= limits_.max_pending) return post([self = shared_from_this()] { self->flush(); });
    post([self = shared_from_this(), unread] { self->cut_off(unread); });
    return false;
  }

  void read_more() override {
    release_hand();
    // Asked: the next readiness reads at once; or it came already and waits for this: read now.
    auto state = read_state_.load(std::memory_order_acquire);
    while (!(state & ready))
      if (read_state_.compare_exchange_weak(state, state | wanted, std::memory_order_acq_rel)) return;
    while (!read_state_.compare_exchange_weak(state, 0, std::memory_order_acq_rel)) {
    }
    post([self = shared_from_this()] { self->read_now(); });
  }

  void close() override {
    {
      const std::lock_guard hold(out_lock_);
      writable_ = false;
    }
    post([self = shared_from_this()] {
      self->release_hand();
      self->close_when_written();
    });
  }

  bool is_open() const noexcept override { return open_.load(std::memory_order_acquire); }

  std::size_t pending() const noexcept override {
    const std::lock_guard hold(out_lock_);
    return queued_.size() + writing_.size();
  }

 private:
  template <class Work>
  bool post(Work&& work) {
    return shared_->post(strand_, std::forward<Work>(work));
  }

  // -- on the strand --

  void start_read() {
    if (gone_ || reading_ || closing_ || !events_.data) return;
    if (shared_->stopping.load(std::memory_order_acquire)) return;  // the request in hand was the last
    reading_ = true;
    // A peek of one byte, not async_wait: Asio's reactor is edge-triggered, and a wait started
    // after bytes came (between a read and this) would wait for the next ones; a receive first
    // tries the socket. It reads nothing: the bytes wait in the socket until read_now.
    socket_.async_receive(
        boost::asio::buffer(&peeked_, 1), socket_type::message_peek,
        [self = shared_from_this()](const error_code& failed, std::size_t) { self->readable(failed); });
  }

  void readable(const error_code& failed) {
    reading_ = false;
    if (gone_) return;
    if (failed) return ended_by(failed);
    // Not asked yet: the bytes stay in the socket until read_more says so (and reads them).
    auto state = read_state_.load(std::memory_order_acquire);
    while (!(state & wanted))
      if (read_state_.compare_exchange_weak(state, ready, std::memory_order_acq_rel)) return;
    while (!read_state_.compare_exchange_weak(state, 0, std::memory_order_acq_rel)) {
    }
    read_now();
  }

  /// Reads what is there and hands it to the server, which has asked for it; then awaits the
  /// next readiness at once.
  void read_now() {
    if (gone_ || closing_ || !events_.data) return;
    if (shared_->stopping.load(std::memory_order_acquire)) return;  // its bytes stay unread: no request starts now
    // Read into the thread's buffer, then copied as long as it is: idle connections hold none.
    thread_local std::string scratch;
    if (scratch.size() < limits_.read_size) scratch.resize(limits_.read_size);
    error_code read_failed;
    const std::size_t got = socket_.read_some(boost::asio::buffer(scratch.data(), limits_.read_size), read_failed);
    if (read_failed == boost::asio::error::would_block || read_failed == boost::asio::error::try_again) {
      read_state_.fetch_or(wanted, std::memory_order_acq_rel);  // still asked
      return start_read();
    }
    if (read_failed) return ended_by(read_failed);
    if (!events_.data) return;  // its server ended meanwhile
    std::string bytes(scratch.data(), got);
    // Counted once while in hand: a read_more may come before it is delivered (the server asking
    // again, parsed out): it is then released by the next.
    if (!in_hand_.exchange(true, std::memory_order_acq_rel)) shared_->in_hand(+1);
    if (!events_.data(shared_from_this(), std::move(bytes))) {
      events_ = {};
      release_hand();
      return end(close_reason::closed, "its server has ended");
    }
    start_read();
  }

  void ended_by(const error_code& failed) {
    if (failed == boost::asio::error::eof) return end(close_reason::peer_closed, "the client closed the connection");
    if (failed == boost::asio::error::connection_reset || failed == boost::asio::error::broken_pipe)
      return end(close_reason::reset, failed.message());
    if (failed == boost::asio::error::operation_aborted) return;  // closed here
    end(close_reason::failed, failed.message());
  }

  void flush() {
    bool finished = false;
    {
      const std::lock_guard hold(out_lock_);
      flush_posted_ = false;
      if (gone_ || writing_now_) return;
      if (queued_.empty()) {
        finished = closing_;
      } else {
        writing_.swap(queued_);
        writing_now_ = true;
      }
    }
    if (finished) return end(close_reason::closed, "closed by its server");
    if (!writing_now_) return;
    boost::asio::async_write(socket_, boost::asio::buffer(writing_),
                             [self = shared_from_this()](const error_code& failed, std::size_t) {
                               {
                                 const std::lock_guard hold(self->out_lock_);
                                 self->writing_now_ = false;
                                 self->writing_.clear();
                               }
                               if (self->gone_) return;
                               if (failed) return self->ended_by(failed);
                               self->flush();
                             });
  }

  void close_when_written() {
    if (gone_) return;
    closing_ = true;
    {
      const std::lock_guard hold(out_lock_);
      writable_ = false;
    }
    flush();
  }

  void cut_off(std::size_t unread) {
    if (gone_) return;
    shared_->cut_off.fetch_add(1, std::memory_order_acq_rel);
    std::string what =
        fmt::format("{} bytes not read by the client, over the bound of {}", unread, limits_.max_pending);
    shared_->log(fmt::format("net: connection {} ({}) cut off: {}", id, peer, what));
    end(close_reason::cut_off, std::move(what));
  }

  void release_hand() {  // (any thread)
    if (in_hand_.exchange(false, std::memory_order_acq_rel)) shared_->in_hand(-1);
  }

  /// Closes the socket; its server is told why (unless it closed it, or has ended).
  void end(close_reason why, std::string what) {
    if (gone_) return;
    gone_ = true;
    {
      const std::lock_guard hold(out_lock_);
      writable_ = false;
      queued_.clear();
    }
    error_code ignored;
    socket_.close(ignored);
    release_hand();
    auto told = std::move(events_);
    events_ = {};
    counted_closed();
    if (told.closed && why != close_reason::closed) told.closed(shared_from_this(), why, std::move(what));
  }

  void counted_closed() {
    if (!open_.exchange(false, std::memory_order_acq_rel)) return;
    shared_->open.fetch_sub(1, std::memory_order_acq_rel);
    shared_->notify();
  }

  std::shared_ptr<context> shared_;  // first: the socket goes before the io_context
  strand_type strand_;
  socket_type socket_;
  limits limits_;
  events events_;
  std::atomic<bool> open_{false};
  std::atomic<bool> in_hand_{false};  // a read delivered, the server not done with it (read_more, its end)
  // The read's handshake: the server asked for more (read_more) / the socket is readable and not read.
  static constexpr unsigned wanted = 1, ready = 2;
  std::atomic<unsigned> read_state_{0};
  // On the strand:
  bool reading_ = false, closing_ = false, gone_ = false;
  char peeked_ = 0;  // where the readiness's peek puts its byte (not used)
  // Under out_lock_ (send is called from the server's thread):
  mutable std::mutex out_lock_;
  std::string queued_, writing_;
  bool writable_ = true, flush_posted_ = false, writing_now_ = false;
};

}  // namespace hotswap::detail::net

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

// ---- hotswap/impl/net.hpp ----
// The bodies of <hotswap/net.hpp> (its declarations, documented, are there): the listener's
// start of a server for each connection, its binding to the server's mailbox, and the orderly
// stop. Included by net.hpp only.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>


namespace hotswap::net {

template <class Implementation>
connection_child server_for_each() {
  return [](const connection& conn) { return child<Implementation>("", conn, {}, restart::temporary); };
}

namespace bind {

/// What a connection tells a server of `Interface`: its data and its end, as infos to its
/// mailbox (so a read that completes while the server is suspended waits there, in order). The
/// typed handle is checked once, here.
template <class Interface>
detail::net::stream_connection::events to(const any_server& server) {
  static_assert(
      Interface::template index_of<data> < Interface::size && Interface::template index_of<closed> < Interface::size,
      "hotswap: a connection's server declares info_msg<hotswap::net::data> and "
      "info_msg<hotswap::net::closed> in its interface");
  const auto typed = server_ref<Interface>::from(server);
  if (!typed) return {};
  detail::net::stream_connection::events told;
  told.data = [to = *typed](const std::shared_ptr<detail::net::connection_core>& from, std::string bytes) {
    return hotswap::send(to, data{connection(from), std::move(bytes)});
  };
  told.closed = [to = *typed](const std::shared_ptr<detail::net::connection_core>& from, close_reason why,
                              std::string what) {
    (void)hotswap::send(to, closed{connection(from), why, std::move(what)});
  };
  return told;
}

}  // namespace bind

template <class Implementation>
result<std::unique_ptr<listener>> listener::open(const endpoint& where, listener_options options) {
  auto supervisor = start_dynamic_supervisor({.max_children = options.max_connections});
  if (!supervisor) return supervisor.error();
  std::unique_ptr<listener> made(new listener(where, server_for_each<Implementation>(), *supervisor, true,
                                              &bind::to<typename Implementation::interface>, std::move(options)));
  if (auto listening = made->listen(where); !listening) return listening.error();
  return made;
}

template <class Interface>
result<std::unique_ptr<listener>> listener::open(const endpoint& where, connection_child child,
                                                 server_ref<dynamic_supervisor_interface> supervisor,
                                                 listener_options options) {
  if (!supervisor || !child) return error{errc::bad_child_spec, "a listener needs a supervisor and a child"};
  std::unique_ptr<listener> made(
      new listener(where, std::move(child), std::move(supervisor), false, &bind::to<Interface>, std::move(options)));
  if (auto listening = made->listen(where); !listening) return listening.error();
  return made;
}

inline listener::listener(const endpoint&, connection_child child, server_ref<dynamic_supervisor_interface> supervisor,
                          bool owned, binder bind, listener_options options)
    : options_(std::move(options)),
      child_(std::move(child)),
      supervisor_(std::move(supervisor)),
      owns_supervisor_(owned),
      bind_(bind) {
  auto log = options_.log;
  if (!log)
    log = [](const std::string& line) {
      detail::the_runtime().reports.write({detail::report::kind::network, 0, line});
    };
  shared_ = std::make_shared<detail::net::context>(options_.threads, std::move(log));
  acceptor_ = std::make_shared<detail::net::acceptor>(
      shared_,
      detail::net::stream_connection::limits{std::max<std::size_t>(options_.read_size, 1), options_.max_pending},
      [this](const std::shared_ptr<detail::net::stream_connection>& made) { accepted(made); });
}

inline result<void> listener::listen(const endpoint& where) {
  if (auto bound = acceptor_->listen(where.address, options_.backlog); !bound) {
    stopped_ = true;  // nothing to stop but its owned supervisor
    if (owns_supervisor_) (void)hotswap::stop(supervisor_, exit_reason{exit_kind::shutdown, {}}, supervisor_timeout);
    return bound.error();
  }
  // The supervisor gone (hotswap::stop_all stopped it), no server can start: no more connections.
  supervisor_monitor_ = monitor(supervisor_, [closing = std::weak_ptr<detail::net::acceptor>(acceptor_)](const down&) {
    if (const auto still = closing.lock()) still->close_later();
  });
  shared_->start(options_.threads);
  acceptor_->start();
  return {};
}

/// On an io thread: starts the connection's server, then its first read.
inline void listener::accepted(const std::shared_ptr<detail::net::stream_connection>& made) {
  child_spec spec = child_(connection(made));
  spec.restart = restart::temporary;  // its socket goes with it: not restarted
  auto started = start_child(supervisor_, std::move(spec));
  if (!started) {
    shared_->log(fmt::format("net: connection {} ({}) closed: its server did not start ({}: {})", made->id, made->peer,
                             to_string(started.error().code), started.error().what));
    return made->end_now(close_reason::failed, "its server did not start");
  }
  auto told = bind_(*started);
  if (!told.data) {
    shared_->log(fmt::format("net: connection {} ({}) closed: its server has another interface", made->id, made->peer));
    (void)terminate_child(supervisor_, *started);
    return made->end_now(close_reason::failed, "its server has another interface");
  }
  // Its end closes the connection (once its replies are written).
  monitor(*started, [weak = std::weak_ptr<detail::net::stream_connection>(made)](const down&) {
    if (const auto still = weak.lock()) still->server_ended();
  });
  {
    const std::lock_guard hold(servers_lock_);
    if (servers_.size() >= 64 && servers_.size() == servers_.capacity())  // amortized: pruned when it would grow
      std::erase_if(servers_,
                    [](const started_server& one) { return one.connection.expired() || !one.server.alive(); });
    servers_.push_back({made, *started});
  }
  made->attach(std::move(told));
}

inline listener_counters listener::counters() const noexcept {
  return {shared_->accepted.load(std::memory_order_acquire), shared_->open.load(std::memory_order_acquire),
          shared_->cut_off.load(std::memory_order_acquire)};
}

inline result<void> listener::stop() {
  if (std::exchange(stopped_, true)) return {};
  shared_->stopping.store(true, std::memory_order_release);
  acceptor_->close();
  std::vector<std::string> late;
  if (!shared_->wait_for_hands(options_.stop_timeout)) late.emplace_back("a server did not finish its data in hand");
  std::vector<started_server> started;
  {
    const std::lock_guard hold(servers_lock_);
    started = servers_;
  }
  if (owns_supervisor_) {
    (void)hotswap::stop(supervisor_, exit_reason{exit_kind::shutdown, {}}, supervisor_timeout);  // gone already: fine
  } else {
    for (const auto& one : started)
      if (one.server.alive()) (void)terminate_child(supervisor_, one.server);
  }
  if (!shared_->wait_for_closed(options_.stop_timeout)) {
    late.emplace_back("a connection's replies were not all written");
    for (const auto& one : started)
      if (const auto still = one.connection.lock()) still->end_now(close_reason::stopped, "the listener stopped");
  }
  if (late.empty()) return {};
  return error{errc::timeout, fmt::format("the listener's stop: {} in time", fmt::join(late, ", "))};
}

inline listener::~listener() {
  if (!stopped_) (void)stop();
  if (supervisor_monitor_) (void)demonitor(supervisor_monitor_);
  shared_->close();
}

}  // namespace hotswap::net
