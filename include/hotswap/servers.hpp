// Servers, as Erlang's gen_server: a stable interface (the messages a server takes), versioned
// implementations of it, and a runtime that runs them on a small pool of threads.
//
//     struct Get { };  struct Add { int n; };  struct Tick { };
//     using Counter = hotswap::interface<"Counter", hotswap::call_msg<Get, int>, hotswap::cast_msg<Add>,
//                                        hotswap::info_msg<Tick>>;
//
//     struct CounterV1 {
//       using interface = Counter;
//       static constexpr int vsn = 1;
//       using state = CountV1;                       // a schema version, or a container of them
//       static state init() { return {}; }
//       static int handle_call(const Get&, state& s) { return s.count; }
//       static void handle_cast(const Add& add, state& s) { s.count += add.n; }
//       static void handle_info(const Tick&, state&) {}
//     };
//
//     auto counter = hotswap::start<CounterV1>().value();
//     hotswap::cast(counter, Add{2});
//     int n = hotswap::call(counter, Get{}).value();
//
// An implementation may also have `terminate(const exit_reason&, state&)`, and for hot code
// changes a `state_history` (the state each older vsn it upgrades from held), an `extra` type,
// and `code_change(hotswap::from_vsn<N>, OldState&&, const Extra&)` for the vsns it migrates by
// hand. Everything else migrates by the generated migrations (hotswap/migrations.hpp).
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "detail/abi/implementation_table.hpp"
#include "detail/common/fixed_string.hpp"
#include "detail/common/std_memory.hpp"
#include "detail/common/std_parts.hpp"
#include "detail/runtime/requests.hpp"
#include "detail/runtime/runtime.hpp"
#include "detail/servers/control.hpp"
#include "detail/servers/implementation_checks.hpp"
#include "detail/servers/interface.hpp"
#include "detail/servers/interface_versions.hpp"
#include "detail/servers/send.hpp"
#include "detail/servers/start.hpp"
#include "detail/servers/table_of.hpp"
#include "detail/servers/timers.hpp"
#include "migrations.hpp"
#include "result.hpp"
#include "schemas.hpp"

namespace hotswap {

/// Erlang's default call timeout.
inline constexpr std::chrono::milliseconds default_timeout{5000};

// -- interfaces --

/// A call: a `Message` answered with a `Reply`.
template <class Message, class Reply>
struct call_msg {
  static_assert(!std::is_void_v<Reply>, "hotswap: a call has a reply; for a message without one, use cast_msg");
  using message = Message;
  using reply = Reply;
  static constexpr detail::message_kind kind = detail::message_kind::call;
};
/// A cast: a `Message` sent without waiting for its handling.
template <class Message>
struct cast_msg {
  using message = Message;
  static constexpr detail::message_kind kind = detail::message_kind::cast;
};
/// An info: a `Message` that is not part of the request protocol (timer ticks, notifications).
template <class Message>
struct info_msg {
  using message = Message;
  static constexpr detail::message_kind kind = detail::message_kind::info;
};

/// Declares, first in an interface's list, that it is the next version of `Previous` (of the
/// same name): a client built against `Previous` keeps calling a server that runs it. Its list
/// then says what changed: a message of `Previous` listed with a later version of its schema (or
/// its call with a later version of its reply's) replaces it; a new message is added; a message
/// of `Previous` not listed is kept; hotswap::removed_msg<M> takes M away.
template <class Previous>
struct follows {
  using message = follows;  // (as a message would say: checked once in the list)
  static_assert(detail::is_interface<Previous>, "hotswap: hotswap::follows names the interface this one follows");
};
/// In a later version of an interface: `Message` of the version before is no longer taken
/// (a client that sends it gets errc::wrong_interface).
template <class Message>
struct removed_msg {
  using message = Message;
};

/// An interface: the calls (each with its reply type), casts and infos a server takes, fixed
/// across the versions of its implementations; a later version of it lists hotswap::follows
/// first (above). Each message has a slot, its number on the wire, the same in every version.
template <detail::fixed_string Name, class... Kinds>
struct interface {
 private:
  using layout = detail::interface_layout<Name, Kinds...>;

 public:
  static constexpr std::string_view name = Name.view();
  /// 1, or one more than the interface it follows.
  static constexpr std::uint32_t vsn = layout::vsn;
  /// The messages' slots (detail::slot: the kind now, since when, and what it was before).
  using slots = typename layout::slots;
  /// The messages an implementation handles (call_msg, cast_msg and info_msg).
  using kinds = typename layout::live_kinds;
  static constexpr std::uint32_t size = layout::size;

  /// The slot of `Message` (size when absent, or removed).
  template <class Message>
  static constexpr std::uint32_t index_of = layout::template index_of<std::remove_cvref_t<Message>>;
  template <std::size_t I>
  using kind_at = typename layout::template slot_at<I>::kind;

  /// A hash of the name, and of each message's kind, name and fields (and reply) in order; for
  /// a later version, of the one before and of each slot's vsn and kind.
  static constexpr std::uint64_t fingerprint = layout::fingerprint;
  /// The fingerprints of its versions, the first first, this one's last.
  static constexpr std::array<std::uint64_t, layout::vsn> lineage = layout::lineage;  // (typed: computed when used)
  static constexpr std::array<std::string_view, layout::size> message_names = layout::message_names;

 private:
  static_assert(sizeof(detail::error_of<decltype(detail::check_interface<interface, Kinds...>(
                           std::index_sequence_for<Kinds...>{}))>) != 0);  // a message listed twice, reported once
  static_assert(sizeof(detail::error_of<decltype(detail::check_versions<interface>(std::type_identity<Kinds>{}...))>) !=
                0);  // a change a later version may not make
};

/// A check that a client built against `Old` may talk to a server that runs `New`: true when
/// `New` is `Old` or a later version of it; otherwise one compile error, naming the first of Old's
/// messages New does not take as Old sends it. `static_assert(hotswap::compatible<V1, V2>);`
template <class Old, class New>
inline constexpr bool compatible = detail::compatibility<Old, New>::value;

/// The reply type of call `Message` in `Interface`.
template <class Interface, class Message>
using reply_of = typename decltype(detail::reply_type<Interface, Message>())::type;

// -- implementations --

/// Names the vsn a hand-written code_change upgrades (or downgrades) from.
template <int Vsn>
struct from_vsn {
  static constexpr int value = Vsn;
};

/// The state type each older (or newer) vsn of an implementation held, as hotswap::version
/// entries: what change_code can start from.
template <class... Versions>
struct state_history {};

/// An implementation of an interface as the runtime sees it: plain data and function pointers, the
/// same in a program and in the modules it loads.
using implementation_table = detail::implementation_table;

/// The implementation table of `Implementation`: what a server runs, and what change_code
/// swaps in. Does not compile (naming the message or the vsn) if a handler is missing, returns
/// the wrong type, or a state in the history cannot migrate.
template <class Implementation>
inline constexpr implementation_table table_of = detail::checked_table<Implementation>::table;

// -- handles --

/// A handle to a server, of any interface. Copies share the server; a handle does not keep a
/// server running (a server runs until it stops), only answerable: requests to a stopped
/// server fail with errc::no_server.
class any_server {
 public:
  any_server() = default;
  any_server(const any_server& other) noexcept : core_(other.core_) {
    if (core_) core_->acquire();
  }
  any_server(any_server&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  any_server& operator=(any_server other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~any_server() {
    if (core_) core_->release();
  }

  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// Unique in the process, never reused.
  std::uint64_t id() const noexcept { return core_ ? core_->id : 0; }
  bool alive() const noexcept { return core_ && core_->alive.load(std::memory_order_acquire); }
  /// How it ended (when it has).
  exit_reason exit() const {
    const detail::spin_guard hold(core_->exit_lock);
    return core_->reason;
  }
  friend bool operator==(const any_server& a, const any_server& b) noexcept { return a.core_ == b.core_; }

  /// Wraps a core, taking over one reference.
  explicit any_server(detail::server_core* adopted) noexcept : core_(adopted) {}
  detail::server_core* core() const noexcept { return core_; }

 protected:
  detail::server_core* core_ = nullptr;
};

/// any_server or a server_ref. (The functions that take one are templates so that a program
/// compiles only the requests it makes.)
template <class T>
concept server_handle = std::derived_from<T, any_server>;

/// A handle to a server of `Interface`, whatever implementation or version it runs.
template <class Interface>
class server_ref : public any_server {
 public:
  using interface = Interface;
  server_ref() = default;
  /// The same server, if its code implements this interface (or a later version of it).
  static std::optional<server_ref> from(any_server server) {
    if (!server || !server.core()->implements(Interface::fingerprint, Interface::vsn)) return std::nullopt;
    return server_ref(std::move(server));
  }
  /// The same, or why not: errc::wrong_interface naming the interface it runs, or no_server.
  static result<server_ref> of(any_server server);

 private:
  explicit server_ref(any_server server) noexcept : any_server(std::move(server)) {}
};

// -- what follows a handler --

/// OTP's {continue, Continue} and handle_continue/2: once the running handler (or init) returns,
/// `Implementation::handle_continue(const Continue&, state&)` runs, before any other message or
/// sys request; after init, on the server's own thread, once hotswap::start has returned (slow
/// setup that should not hold the starter). A throw in it is a handler's. From a handler or the
/// init of a server running `Implementation` (std::logic_error otherwise).
template <class Implementation, class Continue>
void continue_with(Continue continuation);

/// OTP's {noreply, State, Timeout}: if no message comes within `after` of the running handler's
/// return, the server receives the info `message` (a message that comes first, a suspension, or
/// another idle_timeout cancels it). From a handler or the init of `self` (std::logic_error
/// otherwise).
template <class Interface, class M>
void idle_timeout(const server_ref<Interface>& self, std::chrono::nanoseconds after, M message);

// -- deferred replies --

/// The right to answer one call, now or later (OTP's From in handle_call/3, answered by
/// gen_server:reply/2; CAF's response_promise). A call handler that takes one,
/// `static void handle_call(const Message&, state&, hotswap::reply_to<Reply> from)`, answers
/// through it: at once, from another message's handler, from a timer's info, or from another
/// server it hands the handle to. Copies answer the same call: the first answer is the reply,
/// a second is refused (errc::already_replied). When the last copy goes unanswered (dropped, or
/// its server stops with it in its state), the caller gets errc::no_reply at once. It is data of
/// the runtime, not of the code: a server keeps it in its state across an upgrade.
template <class Reply>
using reply_to = detail::deferred<Reply>;

/// OTP's gen_server:reply(From, Reply): `to.reply(value)`.
template <class Reply, class R>
result<void> reply(reply_to<Reply>& to, R&& value) {
  return to.reply(std::forward<R>(value));
}

/// reply_to's canonical name, `hotswap::reply_to<` the reply's `>`: a field of a state's schema.
template <class Reply>
struct type_name<detail::deferred<Reply>> : detail::wrapper_name<"hotswap::reply_to", Reply> {};

// -- starting --

struct start_options {
  std::string name{};       ///< registered as this name (empty: none)
  bool own_thread = false;  ///< a thread of its own instead of the pool (for handlers that block)
};

/// Starts a server running `table`: init runs on the calling thread (where hotswap::self() is
/// the new server), then the server takes messages. Fails if init throws or the name is taken.
template <class Interface>
result<server_ref<Interface>> start(const implementation_table& table, const void* argument,
                                    start_options options = {}) {
  return detail::start_as<Interface>(table, argument, options.name, options.own_thread);
}

/// Starts a server of `Implementation`, whose init takes no argument.
template <class Implementation>
requires(!detail::init_takes_argument<Implementation>) result<server_ref<typename Implementation::interface>> start(
    start_options options = {}) {
  return start<typename Implementation::interface>(table_of<Implementation>, nullptr, std::move(options));
}

/// Starts a server of `Implementation`, passing `argument` to its init.
template <class Implementation>
requires detail::init_takes_argument<Implementation> result<server_ref<typename Implementation::interface>> start(
    const detail::init_argument<Implementation>& argument, start_options options = {}) {
  return start<typename Implementation::interface>(table_of<Implementation>, &argument, std::move(options));
}

// -- requests --

/// Sends a call and waits for its reply, at most `timeout`. Fails with errc::timeout,
/// errc::no_server (the server had stopped), errc::server_died (it stopped, or its handler
/// threw, while the call waited: reported at once), or errc::calling_self (from a handler of
/// the same server, as Erlang's calling_self).
template <class Interface, class M>
result<reply_of<Interface, M>> call(const server_ref<Interface>& to, M&& message,
                                    std::chrono::nanoseconds timeout = default_timeout) {
  using check = detail::sent_check<Interface, M, detail::message_kind::call>;
  if constexpr (!detail::fine<check>) {
    (void)sizeof(detail::error_of<check>);  // a message the interface does not call: reported once
    __builtin_unreachable();
  }
  if (!to) return error{errc::no_server, "an empty server handle"};
  return detail::call_server<reply_of<Interface, M>>(
      *to.core(), detail::sent_as<Interface, std::remove_cvref_t<M>>::kind, std::forward<M>(message), timeout);
}

/// Sends a cast. False if the server had stopped (the message is dropped, as in Erlang).
template <class Interface, class M>
bool cast(const server_ref<Interface>& to, M&& message) {
  return detail::send_kind<detail::message_kind::cast>(to, std::forward<M>(message));
}

/// Sends an info. False if the server had stopped.
template <class Interface, class M>
bool send(const server_ref<Interface>& to, M&& message) {
  return detail::send_kind<detail::message_kind::info>(to, std::forward<M>(message));
}

/// The server whose handler (or init) is running on this thread, as a handle of `Interface`.
/// Throws std::logic_error outside a handler or for another interface.
template <class Interface>
server_ref<Interface> self() {
  detail::server_core* current = detail::current_server();
  if (!current) throw std::logic_error("hotswap::self() called outside a server");
  current->acquire();
  auto typed = server_ref<Interface>::from(any_server(current));
  if (!typed) throw std::logic_error("hotswap::self(): the running server has another interface");
  return *typed;
}

/// Stops a server with `reason` (OTP's gen_server:stop/3): its terminate runs, calls still
/// waiting fail with errc::server_died, its name is freed, its monitors and links are told the
/// reason (a reason other than normal stops the servers linked to it that do not trap exits, and
/// a transient child's supervisor restarts it). From the server's own handler, the stop is
/// queued and happens once the handler returns (this returns at once): a call handler that
/// stops its server this way still replies (OTP's {stop, Reason, Reply, State}).
result<void> stop(const server_handle auto& server, exit_reason reason,
                  std::chrono::nanoseconds timeout = default_timeout) {
  if (server && server.core() == detail::current_server()) {
    detail::end_later(*server.core(), std::move(reason));
    return {};
  }
  return detail::control<void>(server, timeout,
                               [reason = std::move(reason)](detail::server_core& core) -> result<void> {
                                 detail::end_server(core, reason);
                                 return {};
                               });
}

/// Stops a server normally (reason normal), as above.
result<void> stop(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return stop(server, exit_reason{}, timeout);
}

// -- monitors and links --

/// What a monitor tells the server that set it when the server it watches ends (OTP's {'DOWN',
/// Ref, process, Pid, Reason}): its interface declares `info_msg<hotswap::down>`.
using down = detail::down_message;
/// What a server that traps exits receives when a server linked to it ends (OTP's {'EXIT', Pid,
/// Reason}): its interface declares `info_msg<hotswap::exit_signal>`.
using exit_signal = detail::exit_message;

/// A monitor set, for demonitor.
class monitor_ref {
 public:
  monitor_ref() = default;
  /// The id its down carries (hotswap::down::monitor); 0 for none.
  std::uint64_t id() const noexcept { return id_; }
  explicit operator bool() const noexcept { return id_ != 0; }

  /// (What monitor() makes.)
  monitor_ref(std::uint64_t id, any_server watched, any_server watcher) noexcept
      : id_(id), watched_(std::move(watched)), watcher_(std::move(watcher)) {}
  const any_server& watched() const noexcept { return watched_; }
  const any_server& watcher() const noexcept { return watcher_; }

 private:
  std::uint64_t id_ = 0;
  any_server watched_, watcher_;
};

/// Erlang's monitor(process, Server): `watcher` receives one hotswap::down when `watched` ends,
/// with its exit reason; at once if it has ended already. When `watcher` ends first, its
/// monitors are taken off. Several monitors on one server are told each.
template <class Interface>
monitor_ref monitor(const server_ref<Interface>& watcher, const any_server& watched);

/// A monitor whose down is a call of `on_down`, once, on the thread where `watched` ends (at once,
/// on this thread, if it has): for code that is not a server. It must not block.
template <class = void>
monitor_ref monitor(const any_server& watched, std::function<void(const down&)> on_down);

/// Erlang's demonitor(Ref, [flush]): takes the monitor off, and a down already in the watcher's
/// mailbox is dropped unhandled. True if its down is not (and will not be) handled or called;
/// false if it was, or had begun to be.
template <class = void>
bool demonitor(monitor_ref& monitor);

/// Erlang's link/2 (as link/1 from either side): each of `a` and `b` is told when the other
/// ends. An end with a reason other than normal stops the other too, with the same reason, unless
/// it traps exits (then it receives a hotswap::exit_signal). If one has ended already, the other
/// is told at once. False for an empty handle or a server linked to itself.
template <class = void>
bool link(const any_server& a, const any_server& b);

/// Erlang's unlink/1: false if they were not linked.
template <class = void>
bool unlink(const any_server& a, const any_server& b);

/// Erlang's process_flag(trap_exit, On): whether the ends of linked servers reach `server` as
/// hotswap::exit_signal infos instead of stopping it.
template <class Interface>
void trap_exits(const server_ref<Interface>& server, bool on = true);

// -- requests sent without waiting --

/// A call sent without waiting for its reply (OTP's gen_server:send_request/2): `wait` takes the
/// reply (receive_response/2). Dropped unwaited, its reply is freed when it comes (OTP's
/// abandon). Not shared between threads.
template <class Reply>
class request {
 public:
  request() = default;
  /// The reply, waiting at most `timeout`: errc::timeout leaves the request pending (wait again),
  /// errc::no_server, server_died, no_reply as a call's; errc::no_reply too once its reply has
  /// been taken.
  result<Reply> wait(std::chrono::nanoseconds timeout = default_timeout);
  /// Unique in the process; what a `response` carries.
  std::uint64_t id() const noexcept { return id_; }

  /// (What send_request makes.)
  request(detail::request_box<Reply> box, std::uint64_t id) noexcept : box_(std::move(box)), id_(id) {}

 private:
  detail::request_box<Reply> box_;
  std::uint64_t id_ = 0;
};

/// Sends call `message` to `to` without waiting. (From a handler, a request waited on blocks
/// the worker as a call does: pass the server to answer to, below, instead.)
template <class Interface, class M>
request<reply_of<Interface, M>> send_request(const server_ref<Interface>& to, M&& message);

/// Many requests' replies, taken as they come (OTP 25's request id collections, CAF's
/// fan_out_request): send to each, then wait for any or for all. Not shared between threads.
template <class Reply>
class request_set {
 public:
  /// Sends call `message` to `to` (any interface whose call has this reply type); the request's id.
  template <class Interface, class M>
  std::uint64_t send(const server_ref<Interface>& to, M&& message);
  /// Requests whose reply has not been taken.
  std::size_t pending() const noexcept { return sent_.size(); }
  /// The first reply to come, of any pending request, with its request's id (OTP's
  /// wait_response/3 on a collection); nullopt if none is pending; errc::timeout (id 0) if none
  /// came in `timeout`.
  std::optional<std::pair<std::uint64_t, result<Reply>>> wait_any(std::chrono::nanoseconds timeout = default_timeout);
  /// The reply of every pending request, in the order sent, within one `timeout` for all; one
  /// that did not come in time is errc::timeout, and stays pending.
  std::vector<result<Reply>> wait_all(std::chrono::nanoseconds timeout = default_timeout);

 private:
  detail::request_box<Reply> box_;
  std::vector<std::uint64_t> sent_;  // pending, in the order sent
};

/// Sends `message` to each of `to` at once and waits for all their replies, within one `timeout`:
/// the replies in the order of `to` (OTP's multi_call, to servers rather than nodes).
template <class Interface, class M>
std::vector<result<reply_of<Interface, M>>> call_all(const std::vector<server_ref<Interface>>& to, const M& message,
                                                     std::chrono::nanoseconds timeout = default_timeout);

/// The reply to a request a server sent with send_request(to, message, requester): an info to
/// `requester`, whose interface declares `info_msg<hotswap::response<Reply>>`. `request` is the
/// id send_request returned.
template <class Reply>
using response = detail::response_message<Reply>;

/// Sends call `message` to `to`; its reply comes back to `requester` (a server, usually
/// self()) as a hotswap::response<Reply> info, so that no worker waits for it. The request's id.
template <class Interface, class M, class Requester>
std::uint64_t send_request(const server_ref<Interface>& to, M&& message, const server_ref<Requester>& requester);

// -- the program's end --

/// Stops the program's servers, as OTP's init:stop/0 stops its applications, and returns once
/// they have ended: every server not started by a supervisor, the newest first, each by a stop
/// with reason shutdown (its terminate runs; a supervisor stops its children, last started
/// first, each within its shutdown time), each given `timeout_each` (a supervisor: for its whole
/// tree). A supervisor's children are left to it (stopped first, it would restart them). Servers
/// started while it runs are stopped too: it returns once a look at the live servers finds none
/// it has not stopped. Fails with errc::timeout naming the servers that did not end in time (it
/// goes on with the others: each such server ends once its handler or terminate returns), and,
/// from a server's handler (which it would wait for), with errc::calling_self.
template <class = void>
result<void> stop_all(std::chrono::nanoseconds timeout_each = default_timeout) {
  return detail::stop_servers(detail::the_runtime(), timeout_each);
}

// -- names --

/// Registers `server` as `name`; false if the name is taken, the server already has a name, or
/// it has stopped. A name is freed when its server stops.
template <class = void>
bool register_name(const std::string& name, const any_server& server) {
  return server && detail::the_runtime().register_name(name, *server.core());
}

/// The server registered as `name`, if it has `Interface`.
template <class Interface>
std::optional<server_ref<Interface>> whereis(const std::string& name) {
  detail::server_core* found = detail::the_runtime().whereis(name);
  if (!found) return std::nullopt;
  return server_ref<Interface>::from(any_server(found));
}

template <class = void>
bool unregister_name(const std::string& name) {
  return detail::the_runtime().unregister_name(name);
}

/// Every live server (started, not yet ended), oldest first: Erlang's processes(), what
/// observers list.
template <class = void>
std::vector<any_server> all_servers() {
  std::vector<any_server> all;
  detail::the_runtime().each_live([&](detail::server_core* server) { all.emplace_back(server); });
  return all;
}

// -- timers --

/// A pending send_after or send_interval.
class timer {
 public:
  timer() = default;
  explicit timer(std::shared_ptr<detail::timer_service::entry> entry) : entry_(std::move(entry)) {}
  /// Stops it; false if it had already fired (send_after) or been cancelled.
  bool cancel() noexcept { return entry_ && !entry_->cancelled.exchange(true); }

 private:
  std::shared_ptr<detail::timer_service::entry> entry_;
};

/// Sends the info `message` to `to` after `delay`.
template <class Interface, class M>
timer send_after(const server_ref<Interface>& to, M message, std::chrono::steady_clock::duration delay) {
  return timer(detail::add_timer(to, std::move(message), delay, {}));
}

/// Sends a copy of the info `message` to `to` every `period`, until cancelled or the server
/// stops. Ticks are due at whole periods from the start: late ticks do not shift later ones.
template <class Interface, class M>
timer send_interval(const server_ref<Interface>& to, M message, std::chrono::steady_clock::duration period) {
  return timer(detail::add_timer(to, std::move(message), period, period));
}

inline bool cancel(timer& pending) noexcept {
  return pending.cancel();
}

// -- reports --

/// What hotswap says by itself, as OTP's logger hears it, one line each: a crash report when a
/// handler throws (the server, its implementation and vsn, the message, what was thrown, its
/// state as inspect shows it, bounded; and whether it crashed or went back to the code before),
/// a supervisor report when a child starts, ends, is restarted or is given up on. `text` is safe
/// to show on a terminal.
using report = detail::report;
using report_sink = std::function<void(const report&)>;

/// Puts `sink` in place of the program's sink of reports (empty: standard error, the default)
/// and returns the one it replaced. The sink is called on the thread that reports (a server's),
/// must not block for long, and must not set the sink. Set it from the program, not a module.
template <class = void>
report_sink set_report_sink(report_sink sink) {
  return detail::the_runtime().reports.replace(std::move(sink));
}

}  // namespace hotswap

#include "impl/servers.hpp"
