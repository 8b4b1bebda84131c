// The bodies of <hotswap/servers.hpp> (its declarations, documented, are there): what follows a
// handler (continue_with, idle timeouts), requests sent without waiting, monitors and links.
// Included by servers.hpp only.
#pragma once

#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../detail/common/std_parts.hpp"
#include "../detail/runtime/requests.hpp"
#include "../detail/servers/send.hpp"
#include "../servers.hpp"

namespace hotswap {

namespace detail {
/// Sends call `message` of `Interface` to `to` through `box`; its request id.
template <class Interface, class M, class Reply>
std::uint64_t send_into(request_box<Reply>& box, const server_ref<Interface>& to, M&& message) {
  using check = sent_check<Interface, M, message_kind::call>;
  if constexpr (!fine<check>) {
    (void)sizeof(error_of<check>);  // a message the interface does not call: reported once
    __builtin_unreachable();
  } else {
    static_assert(std::is_same_v<reply_of<Interface, M>, Reply>,
                  "hotswap: a request_set takes calls of one reply type: the Reply it is declared with");
    return box.send(to.core(), sent_as<Interface, std::remove_cvref_t<M>>::kind, std::forward<M>(message));
  }
}
/// The idle timeout set `set` of a server: handles `message` if, when its time comes, it is
/// still the last one set and the server has handled nothing since (a sys request: it runs on the
/// server's thread, and is not counted as a message).
template <class M>
struct idle_check final : control_request {
  std::uint64_t set, mark;
  std::uint32_t kind;
  M message;
  idle_check(std::uint64_t which, std::uint64_t handled, std::uint32_t sent_kind, M info)
      : control_request([](reply_slot_base* self) noexcept { delete static_cast<idle_check*>(self); }),
        set(which),
        mark(handled),
        kind(sent_kind),
        message(std::move(info)) {
    state.store(abandoned, std::memory_order_relaxed);  // its server frees it once run
    run = [](control_request& self, server_core& server) noexcept {
      auto& check = static_cast<idle_check&>(self);
      if (server.idle_timeouts == check.set && server.handled == check.mark && !server.suspended) {
        envelope info{};
        try {
          pack_sent<M>(info, check.kind, std::move(check.message));
          info.kind = check.kind;
          dispatch(server, info);
        } catch (...) {  // out of memory boxing it: no timeout
        }
      }
      self.finish(answered);
    };
  }
};

/// The running server, if it is `expected`'s; else std::logic_error naming `what`.
template <class = void>
server_core& running_server(const server_core* expected, const char* what) {
  server_core* const current = current_server();
  if (!current || (expected && current != expected))
    throw std::logic_error(std::string("hotswap::") + what + " called outside a handler or init of the server");
  return *current;
}
}  // namespace detail

// -- what follows a handler --

template <class Implementation, class Continue>
void continue_with(Continue continuation) {
  using S = typename Implementation::state;
  static_assert(
      requires(const Continue& c, S& s) { Implementation::handle_continue(c, s); },
      "hotswap: continue_with<Implementation>(c) runs Implementation::handle_continue(const Continue&, "
      "state&): write it");
  detail::server_core& server = detail::running_server(nullptr, "continue_with");
  if (server.table->state_fingerprint != detail::value_fingerprint<S>)
    throw std::logic_error("hotswap::continue_with: the running server's state is not this implementation's");
  server.continuation = [continuation = std::move(continuation)](void* state, detail::outcome& result) {
    detail::report_failure(result, [&] { Implementation::handle_continue(continuation, *static_cast<S*>(state)); });
  };
}

template <class Interface, class M>
void idle_timeout(const server_ref<Interface>& self, std::chrono::nanoseconds after, M message) {
  using check = detail::sent_check<Interface, M, detail::message_kind::info>;
  if constexpr (!detail::fine<check>) {
    (void)sizeof(detail::error_of<check>);  // an idle timeout sends an info: reported once
    __builtin_unreachable();
  } else {
    detail::server_core& server = detail::running_server(self.core(), "idle_timeout");
    const std::uint64_t set = ++server.idle_timeouts;
    server.idle_mark = server.handled;
    struct pending {  // what the timer holds until it fires, or goes with its server
      detail::server_core* server = nullptr;
      detail::idle_check<M>* request = nullptr;
      ~pending() {
        delete request;
        if (server) server->release();
      }
    };
    std::unique_ptr<detail::idle_check<M>> request(
        new detail::idle_check<M>(set, server.handled, detail::sent_as<Interface, M>::kind, std::move(message)));
    auto held = std::make_shared<pending>();
    held->request = request.release();
    server.acquire();
    held->server = &server;
    detail::the_runtime().timers.add(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(after), {},
        [held] {
          detail::idle_check<M>* request = std::exchange(held->request, nullptr);
          if (request && !held->server->deliver_control(*request)) delete request;
          return false;
        },
        detail::pin_this_image(), &server);
  }
}

// -- request --

template <class Reply>
result<Reply> request<Reply>::wait(std::chrono::nanoseconds timeout) {
  if (!id_) return error{errc::no_reply, "an empty request"};
  auto taken = box_.take_one(id_, timeout, &detail::before_parking<>);
  if (!taken) return error{errc::no_reply, "its reply was taken already"};
  return std::move(*taken);
}

template <class Interface, class M>
request<reply_of<Interface, M>> send_request(const server_ref<Interface>& to, M&& message) {
  detail::request_box<reply_of<Interface, M>> box;
  const std::uint64_t id = detail::send_into(box, to, std::forward<M>(message));
  return {std::move(box), id};
}

// -- request_set --

template <class Reply>
template <class Interface, class M>
std::uint64_t request_set<Reply>::send(const server_ref<Interface>& to, M&& message) {
  sent_.reserve(sent_.size() + 1);  // first: a request sent is always listed
  sent_.push_back(detail::send_into(box_, to, std::forward<M>(message)));
  return sent_.back();
}

template <class Reply>
std::optional<std::pair<std::uint64_t, result<Reply>>> request_set<Reply>::wait_any(std::chrono::nanoseconds timeout) {
  auto taken = box_.take_any(timeout, &detail::before_parking<>);
  if (taken && taken->first) sent_.erase(std::find(sent_.begin(), sent_.end(), taken->first));
  return taken;
}

template <class Reply>
std::vector<result<Reply>> request_set<Reply>::wait_all(std::chrono::nanoseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, detail::longest_wait);
  std::vector<result<Reply>> replies(sent_.size(), error{errc::timeout, "no reply in time"});
  std::vector<std::uint64_t> waited = sent_;
  while (!sent_.empty()) {
    const auto left = std::max<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now(), {});
    auto taken = wait_any(left);
    if (!taken || !taken->first) break;  // the time is up
    replies[std::find(waited.begin(), waited.end(), taken->first) - waited.begin()] = std::move(taken->second);
  }
  return replies;
}

template <class Interface, class M>
std::vector<result<reply_of<Interface, M>>> call_all(const std::vector<server_ref<Interface>>& to, const M& message,
                                                     std::chrono::nanoseconds timeout) {
  request_set<reply_of<Interface, M>> requests;
  for (const auto& server : to) requests.send(server, message);
  return requests.wait_all(timeout);
}

// -- requests answered to a server --

template <class Interface, class M, class Requester>
std::uint64_t send_request(const server_ref<Interface>& to, M&& message, const server_ref<Requester>& requester) {
  using check = detail::sent_check<Interface, M, detail::message_kind::call>;
  if constexpr (!detail::fine<check>) {
    (void)sizeof(detail::error_of<check>);
    __builtin_unreachable();
  } else {
    using Reply = reply_of<Interface, M>;
    constexpr auto index = Requester::template index_of<response<Reply>>;
    static_assert(index != Requester::size,
                  "hotswap: a server that sends requests answered to it declares "
                  "hotswap::info_msg<hotswap::response<Reply>> in its interface, for the Reply of the call it sends");
    if (!requester) throw std::invalid_argument("hotswap: send_request answered to an empty server handle");
    return detail::send_forwarded<Reply>(to.core(), detail::sent_as<Interface, std::remove_cvref_t<M>>::kind,
                                         std::forward<M>(message), *requester.core(), index);
  }
}

// -- handles --

template <class Interface>
result<server_ref<Interface>> server_ref<Interface>::of(any_server server) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (auto typed = from(server)) return *std::move(typed);
  return error{errc::wrong_interface, server.core()->label() + " runs " + server.core()->interface_now() + ", not " +
                                          std::string(Interface::name) +
                                          (Interface::vsn > 1 ? " version " + std::to_string(Interface::vsn) : "") +
                                          " or a later version of it"};
}

// -- monitors and links --

template <class Interface>
monitor_ref monitor(const server_ref<Interface>& watcher, const any_server& watched) {
  static_assert(Interface::template index_of<down> != Interface::size,
                "hotswap: a server that monitors another declares hotswap::info_msg<hotswap::down> in its interface");
  if (!watcher || !watched) return {};
  return {detail::add_monitor(*watched.core(), watcher.core(), {}), watched, watcher};
}

template <class Unused>
monitor_ref monitor(const any_server& watched, std::function<void(const down&)> on_down) {
  if (!watched || !on_down) return {};
  const std::uint64_t id = detail::new_id();
  detail::add_monitor(
      *watched.core(), nullptr,
      [on_down = std::move(on_down), id](std::uint64_t server, const exit_reason& reason) {
        on_down(down{id, server, reason});
      },
      id);
  return {id, watched, {}};
}

template <class Unused>
bool demonitor(monitor_ref& monitor) {
  if (!monitor) return false;
  bool taken_off = detail::remove_monitor(*monitor.watched().core(), monitor.id());
  if (!taken_off && monitor.watcher()) taken_off = detail::forget_watching(*monitor.watcher().core(), monitor.id());
  monitor = {};
  return taken_off;
}

template <class Unused>
bool link(const any_server& a, const any_server& b) {
  return a && b && detail::add_link(*a.core(), *b.core());
}

template <class Unused>
bool unlink(const any_server& a, const any_server& b) {
  return a && b && detail::remove_link(*a.core(), *b.core());
}

template <class Interface>
void trap_exits(const server_ref<Interface>& server, bool on) {
  static_assert(Interface::template index_of<exit_signal> != Interface::size,
                "hotswap: a server that traps exits declares hotswap::info_msg<hotswap::exit_signal> in its "
                "interface");
  if (server) server.core()->trapping_exits.store(on, std::memory_order_release);
}

}  // namespace hotswap
