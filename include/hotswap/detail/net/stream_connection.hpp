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
#pragma once

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

#include "connection_core.hpp"
#include "context.hpp"

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
