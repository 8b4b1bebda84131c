// What the control server watches of servers for `log` and `trace`: one sys::trace hook on each
// watched server feeds its log (a bounded ring of its last events, Erlang's sys:log) and the
// traces streaming its messages (each rate-limited, so that tracing a busy server cannot flood
// the server, the program or the client). A program's own sys::trace hook on the same server is
// replaced while the server is watched, and put back when the watch ends. What the log of a
// server that ended kept is kept after it (the latest few): the log of a crashed server shows
// what it was sent up to its crash. (A template on the server handle, given the hook's setter:
// detail headers include no public one.)
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../../result.hpp"
#include "../abi/trace_event.hpp"
#include "../common/spin_lock.hpp"
#include "listener.hpp"

namespace hotswap::detail {

/// One message in or out of a watched server, or whose handler threw (`why` says what).
struct watched_event {
  std::chrono::steady_clock::time_point at;
  trace_event::direction way;
  std::string message;
  std::string why = {};
};

inline std::string_view to_string(trace_event::direction way) {
  return way == trace_event::in ? "in" : way == trace_event::out ? "out" : "failed";
}

inline nlohmann::json to_event_json(const watched_event& event, std::chrono::steady_clock::time_point since) {
  nlohmann::json made{{"way", to_string(event.way)},
                      {"message", event.message},
                      {"us", std::chrono::duration<double, std::micro>(event.at - since).count()}};
  if (event.way == trace_event::failed) made["why"] = event.why;
  return made;
}

inline std::string to_event_text(const watched_event& event, std::chrono::steady_clock::time_point since) {
  return fmt::format("{:>12.3f} ms  {:<6}  {}{}\n", std::chrono::duration<double, std::milli>(event.at - since).count(),
                     to_string(event.way), event.message,
                     event.way == trace_event::failed ? " (" + event.why + ")" : "");
}

/// `Server` is hotswap::any_server; `set_trace(server, hook, timeout)` is sys::trace (of a
/// trace_hook: it returns the hook it replaced).
template <class Server>
class server_watches {
 public:
  using clock = std::chrono::steady_clock;
  using any_server = Server;
  /// sys::replace_trace: `change` runs on the server with its hook, and returns the hook to put in place.
  using trace_setter = std::function<result<void>(const Server&, std::function<trace_hook(trace_hook)> change,
                                                  std::chrono::nanoseconds)>;

  /// What the log of a server that ended had kept.
  struct ended_log {
    std::uint64_t id;
    std::string name;  // its registered name when its log was switched on (empty: none)
    exit_reason reason;
    std::vector<watched_event> events;
  };
  /// How many logs of ended servers are kept, the latest.
  static constexpr std::size_t ended_logs_kept = 16;
  /// How long a failure's `why` kept in a log may be.
  static constexpr std::size_t largest_why = 1024;

  /// `log_size` events kept a server; at most `trace_rate` events a second sent by a trace.
  server_watches(std::size_t log_size, std::size_t trace_rate, trace_setter set_trace)
      : log_size_(log_size), trace_rate_(trace_rate), set_trace_(std::move(set_trace)) {}

  /// Switches `server`'s log on or off (off forgets its events).
  result<void> set_log(const any_server& server, bool on, std::chrono::nanoseconds timeout) {
    auto watch = on ? watch_of(server, timeout) : find(server);
    if (!watch) return on ? watch.error() : result<void>{};
    {
      const std::lock_guard hold((*watch)->lock);
      (*watch)->logging = on;
      if (!on) (*watch)->ring.clear();
    }
    forget_unused(server, timeout);
    return {};
  }

  /// The log kept of the latest ended server named `name` (or whose id it is), if its log was on.
  std::optional<ended_log> ended(std::string_view name) {
    keep_ended();
    for (auto one = ended_.rbegin(); one != ended_.rend(); ++one)
      if (one->name == name || std::to_string(one->id) == name) return *one;
    return std::nullopt;
  }

  /// The server's logged events, oldest first; empty when its log is off (`logging` says).
  std::vector<watched_event> log(const any_server& server, bool& logging) {
    auto watch = find(server);
    logging = false;
    if (!watch) return {};
    const std::lock_guard hold((*watch)->lock);
    logging = (*watch)->logging;
    return {(*watch)->ring.begin(), (*watch)->ring.end()};
  }

  /// A trace of the next `count` messages in and out of `server`, streamed as event lines and
  /// ended with a reply line (hotswapctl trace).
  result<std::unique_ptr<reply_stream>> trace(const any_server& server, std::uint64_t count,
                                              std::chrono::nanoseconds timeout) {
    auto watch = watch_of(server, timeout);
    if (!watch) return watch.error();
    auto tracer = std::make_shared<trace_queue>(count, trace_rate_);
    {
      const std::lock_guard hold((*watch)->lock);
      (*watch)->traces.push_back(tracer);
    }
    return std::unique_ptr<reply_stream>(new trace_stream(*this, *watch, std::move(tracer), timeout));
  }

 private:
  /// One trace's events, taken on the server's thread and sent by the listener's.
  struct trace_queue {
    trace_queue(std::uint64_t wanted, std::size_t rate)
        : wanted(wanted), rate(static_cast<double>(rate)), tokens(static_cast<double>(rate)) {}
    const std::uint64_t wanted;
    const double rate;
    std::deque<watched_event> ready;
    std::uint64_t taken = 0, dropped = 0;
    double tokens;  // a token bucket: `rate` a second, at most `rate` at once
    clock::time_point refilled = clock::now();

    void take(const watched_event& event) {  // under the watch's lock
      if (taken >= wanted) return;
      tokens = std::min(rate, tokens + rate * std::chrono::duration<double>(event.at - refilled).count());
      refilled = event.at;
      if (tokens < 1) {
        ++dropped;
        return;
      }
      tokens -= 1;
      ++taken;
      ready.push_back(event);
    }
  };

  struct watch {
    any_server server;
    std::string name;
    std::mutex lock;
    bool logging = false;
    std::deque<watched_event> ring;
    std::vector<std::shared_ptr<trace_queue>> traces;
    trace_hook replaced;  // the program's own, put back when the watch ends
  };

  /// The hook on a watched server, on the server's thread with each message: kept as short as a
  /// lock and a copy of a name. (The watch holds the server: the hook, which the server holds,
  /// must not hold the watch.)
  struct watch_hook {
    std::weak_ptr<watch> weak;
    std::size_t log_size;
    void operator()(const trace_event& event) const {
      const auto made = weak.lock();
      if (!made) return;
      watched_event seen{clock::now(), event.way, std::string(event.message),
                         std::string(event.why.substr(0, largest_why))};
      const std::lock_guard hold(made->lock);
      if (made->logging) {
        if (made->ring.size() == log_size) made->ring.pop_front();
        made->ring.push_back(seen);
      }
      for (const auto& one : made->traces) one->take(seen);
    }
  };

  class trace_stream final : public reply_stream {
   public:
    trace_stream(server_watches& watches, std::shared_ptr<watch> watched, std::shared_ptr<trace_queue> queue,
                 std::chrono::nanoseconds timeout)
        : watches_(watches), watch_(std::move(watched)), queue_(std::move(queue)), timeout_(timeout) {}
    ~trace_stream() override { watches_.stop_trace(*watch_, queue_, timeout_); }

    bool pump(reply_lines& reply) override {
      std::deque<watched_event> ready;
      std::uint64_t taken, dropped;
      {
        const std::lock_guard hold(watch_->lock);
        ready.swap(queue_->ready);
        taken = queue_->taken;
        dropped = queue_->dropped;
      }
      for (const auto& event : ready) {
        auto line = to_event_json(event, began_);
        line["server"] = watch_->server.id();
        line["text"] = to_event_text(event, began_);
        reply.line(event_line("trace", std::move(line)));
      }
      const bool ended = !watch_->server.alive();
      if (taken < queue_->wanted && !ended) return true;
      std::string text = fmt::format("{} messages traced", taken);
      if (dropped) text += fmt::format(", {} more not sent (over {} a second)", dropped, queue_->rate);
      if (ended) text += "; the server ended";
      reply.line(reply_line(true, {{"traced", taken}, {"dropped", dropped}, {"ended", ended}, {"text", text + "\n"}}));
      return false;
    }

   private:
    server_watches& watches_;
    std::shared_ptr<watch> watch_;
    std::shared_ptr<trace_queue> queue_;
    std::chrono::nanoseconds timeout_;
    clock::time_point began_ = clock::now();
  };

  result<std::shared_ptr<watch>> find(const any_server& server) {
    const auto found = watches_.find(server.id());
    if (found == watches_.end()) return error{errc::no_server, "not watched"};
    return found->second;
  }

  /// The server's watch, its hook installed if it is new.
  result<std::shared_ptr<watch>> watch_of(const any_server& server, std::chrono::nanoseconds timeout) {
    keep_ended();
    if (auto found = find(server)) return found;
    auto made = std::make_shared<watch>();
    made->server = server;
    {
      const spin_guard hold(server.core()->exit_lock);
      made->name = server.core()->name;
    }
    auto hooked = set_trace_(
        server,
        [made, log_size = log_size_](trace_hook replaced) {
          const std::lock_guard hold(made->lock);
          made->replaced = std::move(replaced);
          return trace_hook{nullptr, watch_hook{made, log_size}};
        },
        timeout);
    if (!hooked) return hooked.error();
    watches_.emplace(server.id(), made);
    return made;
  }

  void stop_trace(watch& watched, const std::shared_ptr<trace_queue>& queue, std::chrono::nanoseconds timeout) {
    {
      const std::lock_guard hold(watched.lock);
      std::erase(watched.traces, queue);
    }
    forget_unused(watched.server, timeout);
  }

  /// Unhooks a server neither logged nor traced.
  void forget_unused(const any_server& server, std::chrono::nanoseconds timeout) {
    auto watch = find(server);
    if (!watch) return;
    {
      const std::lock_guard hold((*watch)->lock);
      if ((*watch)->logging || !(*watch)->traces.empty()) return;
    }
    if (server.alive())
      (void)set_trace_(
          server,
          [watched = *watch](trace_hook current) {
            if (!current.call.template target<watch_hook>()) return current;  // the program set its own meanwhile
            const std::lock_guard hold(watched->lock);
            return std::move(watched->replaced);
          },
          timeout);
    watches_.erase(server.id());
  }

  /// The watches of servers that ended go; what their logs kept is kept in `ended_`.
  void keep_ended() {
    for (auto at = watches_.begin(); at != watches_.end();) {
      watch& watched = *at->second;
      if (watched.server.alive()) {
        ++at;
        continue;
      }
      {
        const std::lock_guard hold(watched.lock);
        if (watched.logging) {
          if (ended_.size() == ended_logs_kept) ended_.pop_front();
          ended_.push_back(
              {watched.server.id(), watched.name, watched.server.exit(), {watched.ring.begin(), watched.ring.end()}});
        }
      }
      at = watches_.erase(at);
    }
  }

  std::size_t log_size_, trace_rate_;
  trace_setter set_trace_;
  std::map<std::uint64_t, std::shared_ptr<watch>> watches_;  // the listener's thread's alone
  std::deque<ended_log> ended_;                              // the same
};

}  // namespace hotswap::detail
