// The bodies of <hotswap/net.hpp> (its declarations, documented, are there): the listener's
// start of a server for each connection, its binding to the server's mailbox, and the orderly
// stop. Included by net.hpp only.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../net.hpp"

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
