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

#include <array>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

#include "detail/std_parts.hpp"
#include "detail/fixed_string.hpp"
#include "detail/mailbox.hpp"
#include "detail/runtime.hpp"
#include "detail/table.hpp"
#include "migrations.hpp"
#include "schemas.hpp"

namespace hotswap {

/// Erlang's default call timeout.
inline constexpr std::chrono::milliseconds default_timeout{5000};

// ---- results ----

/// Thrown by result::value() when the request failed.
class call_error : public std::runtime_error {
 public:
  explicit call_error(const error& failure)
      : std::runtime_error("hotswap: " + std::string(to_string(failure.code)) +
                           (failure.what.empty() ? "" : ": " + failure.what)),
        code_(failure.code) {}
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

/// The outcome of a request to a server: its reply, or why there is none.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : value_(std::move(value)) {}  // NOLINT: implicit, as std::expected
  result(hotswap::error failure) : failure_(std::move(failure)) {}  // NOLINT

  bool has_value() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  /// The reply; throws call_error if there is none.
  T& value() & { return check(), *value_; }
  const T& value() const& { return check(), *value_; }
  T&& value() && { return check(), std::move(*value_); }
  T& operator*() noexcept { return *value_; }
  const T& operator*() const noexcept { return *value_; }
  T* operator->() noexcept { return &*value_; }
  const T* operator->() const noexcept { return &*value_; }
  /// Why the request failed (only when it did).
  const hotswap::error& error() const noexcept { return failure_; }

 private:
  void check() const {
    if (!value_) throw call_error(failure_);
  }
  std::optional<T> value_;
  hotswap::error failure_{};
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(hotswap::error failure) : failed_(true), failure_(std::move(failure)) {}  // NOLINT
  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (failed_) throw call_error(failure_);
  }
  const hotswap::error& error() const noexcept { return failure_; }

 private:
  bool failed_ = false;
  hotswap::error failure_{};
};

}  // namespace hotswap

// fmt prints an errc as its name (`timeout`), an error as `timeout: no reply within 5000 ms`, and
// a result as its value, `ok` (result<void>) or its error.
template <>
struct fmt::formatter<hotswap::errc> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(hotswap::errc code, Context& context) const {
    return fmt::formatter<std::string_view>::format(hotswap::to_string(code), context);
  }
};

template <>
struct fmt::formatter<hotswap::error> {
  constexpr auto parse(fmt::format_parse_context& context) { return context.begin(); }
  template <class Context>
  auto format(const hotswap::error& failure, Context& context) const {
    if (failure.what.empty()) return fmt::format_to(context.out(), "{}", failure.code);
    return fmt::format_to(context.out(), "{}: {}", failure.code, failure.what);
  }
};

template <class T>
struct fmt::formatter<hotswap::result<T>> {
  constexpr auto parse(fmt::format_parse_context& context) { return context.begin(); }
  template <class Context>
  auto format(const hotswap::result<T>& outcome, Context& context) const {
    if (!outcome) return fmt::format_to(context.out(), "{}", outcome.error());
    if constexpr (std::is_void_v<T>)
      return fmt::format_to(context.out(), "ok");
    else
      return fmt::format_to(context.out(), "{}", *outcome);
  }
};

namespace hotswap {

// ---- interfaces ----

/// A call: a `Message` answered with a `Reply`.
template <class Message, class Reply>
struct call_msg {
  static_assert(!std::is_void_v<Reply>, "hotswap: a call has a reply; for a message without one, use cast_msg");
  using message = Message;
  using reply = Reply;
};
/// A cast: a `Message` sent without waiting for its handling.
template <class Message>
struct cast_msg {
  using message = Message;
};
/// An info: a `Message` that is not part of the request protocol (timer ticks, notifications).
template <class Message>
struct info_msg {
  using message = Message;
};

namespace errors {
template <class Interface, class Message>
struct message_is_not_in_the_interface {
  static_assert(reported<message_is_not_in_the_interface>,
                "hotswap: this message is not one the server's interface declares; add "
                "hotswap::call_msg<Message, Reply>, cast_msg<Message> or info_msg<Message> to the interface");
};
template <class Interface, class Message, class DeclaredAs>
struct message_sent_the_wrong_way {
  static_assert(reported<message_sent_the_wrong_way>,
                "hotswap: the interface declares this message as another kind (DeclaredAs): send a call_msg "
                "with hotswap::call, a cast_msg with hotswap::cast, an info_msg with hotswap::send");
};
template <class Interface, class Message>
struct message_listed_twice {
  static_assert(reported<message_listed_twice>, "hotswap: an interface lists each message type once");
};
}  // namespace errors

namespace detail {

template <class T>
constexpr std::string_view type_spelling() {
  constexpr std::string_view text = __PRETTY_FUNCTION__;
  constexpr std::string_view gcc_start = "[with T = ", clang_start = "[T = ";
  if constexpr (text.find(gcc_start) != std::string_view::npos) {
    constexpr auto from = text.find(gcc_start) + gcc_start.size();
    return text.substr(from, text.find(';', from) - from);
  } else {
    constexpr auto from = text.find(clang_start) + clang_start.size();
    return text.substr(from, text.rfind(']') - from);
  }
}
static_assert(type_spelling<int>() == "int", "hotswap: cannot read type names from this compiler's signatures");

constexpr std::uint64_t hash_more(std::uint64_t hash, std::string_view text) {
  for (const char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return hash;
}
inline constexpr std::uint64_t hash_start = 0xcbf29ce484222325ULL;

/// A type the schemas layer can describe canonically.
template <class T>
constexpr bool describable() {
  if constexpr (requires { type_name<T>::value; } || versioned<T> || std::is_arithmetic_v<T> ||
                std::is_enum_v<T> || std::is_same_v<T, std::string>)
    return true;
  else if constexpr (optional<T> || sequence<T> || fixed_array<T>)
    return describable<typename T::value_type>();
  else if constexpr (ordered_map<T> || hashed_map<T>)
    return describable<typename T::key_type>() && describable<typename T::mapped_type>();
  else
    return false;
}

/// A message's fingerprint: its canonical description, or for a plain struct its name and its
/// fields' names and fingerprints.
template <class T>
constexpr std::uint64_t message_hash(std::uint64_t hash) {
  if constexpr (describable<T>()) {
    return hash_more(hash, type_description<T>);
  } else if constexpr (std::is_class_v<T> && std::is_aggregate_v<T>) {
    hash = hash_more(hash_more(hash, type_spelling<T>()), "{");
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((hash = message_hash<field_type<T, I>>(hash_more(hash_more(hash, field_names<T>[I]), ":"))), ...);
    }(std::make_index_sequence<field_count<T>>{});
    return hash_more(hash, "}");
  } else {
    return hash_more(hash, type_spelling<T>());
  }
}

/// The fingerprint of a state or extra type: canonical when describable, else its spelling
/// (such a state can only be handed on to an implementation with the very same state type).
template <class T>
inline constexpr std::uint64_t value_fingerprint = [] {
  if constexpr (describable<T>())
    return fingerprint<T>;
  else
    return hash_more(hash_start, type_spelling<T>());
}();


template <class Kind>
constexpr std::uint64_t kind_hash(std::uint64_t hash) {
  using M = typename Kind::message;
  if constexpr (requires { typename Kind::reply; })
    return message_hash<typename Kind::reply>(message_hash<M>(hash_more(hash, "call:")));
  else if constexpr (std::is_same_v<Kind, cast_msg<M>>)
    return message_hash<M>(hash_more(hash, "cast:"));
  else
    return message_hash<M>(hash_more(hash, "info:"));
}

template <class Message, class... Kinds>
constexpr std::size_t index_in() {
  constexpr bool match[] = {std::is_same_v<typename Kinds::message, Message>..., false};
  std::size_t i = 0;
  while (i < sizeof...(Kinds) && !match[i]) ++i;
  return i;
}

template <class Interface, class... Kinds, std::size_t... I>
constexpr auto check_interface(std::index_sequence<I...>) {
  return first_of<verdict<std::conditional_t<index_in<typename Kinds::message, Kinds...>() == I, no_error,
                                             errors::message_listed_twice<Interface, typename Kinds::message>>>...>{};
}

enum class message_kind { call, cast, info };

template <class Kind>
constexpr message_kind kind_of() {
  if constexpr (requires { typename Kind::reply; })
    return message_kind::call;
  else if constexpr (std::is_same_v<Kind, cast_msg<typename Kind::message>>)
    return message_kind::cast;
  else
    return message_kind::info;
}
}  // namespace detail

template <detail::fixed_string Name, class... Kinds>
struct interface;

namespace detail {
template <class T>
inline constexpr bool is_interface = false;
template <fixed_string Name, class... Kinds>
inline constexpr bool is_interface<interface<Name, Kinds...>> = true;
}  // namespace detail

/// A stable interface: the calls (each with its reply type), casts and infos a server takes.
/// Fixed across the versions of its implementations; a changed set is a new interface.
template <detail::fixed_string Name, class... Kinds>
struct interface {
  static constexpr std::string_view name = Name.view();
  static constexpr std::uint32_t size = sizeof...(Kinds);
  using kinds = detail::type_list<Kinds...>;

  /// The position of `Message` in the interface (size when absent).
  template <class Message>
  static constexpr std::uint32_t index_of = detail::index_in<std::remove_cvref_t<Message>, Kinds...>();
  template <std::size_t I>
  using kind_at = std::tuple_element_t<I, std::tuple<Kinds...>>;

  /// A hash of the name, and of each message's kind, name and fields (and reply) in order.
  static constexpr std::uint64_t fingerprint = [] {
    std::uint64_t hash = detail::hash_more(detail::hash_start, Name.view());
    ((hash = detail::kind_hash<Kinds>(detail::hash_more(hash, ";"))), ...);
    return hash;
  }();
  static constexpr std::array<std::string_view, sizeof...(Kinds)> message_names{
      detail::type_spelling<typename Kinds::message>()...};

 private:
  static_assert(sizeof(detail::error_of<decltype(detail::check_interface<interface, Kinds...>(
                    std::index_sequence_for<Kinds...>{}))>) != 0);  // a message listed twice, reported once
};

namespace detail {
/// Whether `Message` may be sent to `Interface` as a `Kind`.
template <class Interface, class Message, message_kind Kind>
constexpr auto check_sent() {
  using M = std::remove_cvref_t<Message>;
  constexpr auto index = Interface::template index_of<M>;
  if constexpr (index == Interface::size) {
    return verdict<errors::message_is_not_in_the_interface<Interface, M>>{};
  } else {
    using declared = typename Interface::template kind_at<index>;
    if constexpr (kind_of<declared>() != Kind)
      return verdict<errors::message_sent_the_wrong_way<Interface, M, declared>>{};
    else
      return verdict<no_error>{};
  }
}
template <class Interface, class Message, message_kind Kind>
using sent_check = decltype(check_sent<Interface, Message, Kind>());

/// What hotswap::call returns for a message that is no call (its error is reported instead).
struct not_a_call {};

template <class Interface, class Message>
constexpr auto reply_type() {
  constexpr auto index = Interface::template index_of<std::remove_cvref_t<Message>>;
  if constexpr (index == Interface::size) return std::type_identity<not_a_call>{};
  else if constexpr (kind_of<typename Interface::template kind_at<index>>() != message_kind::call)
    return std::type_identity<not_a_call>{};
  else return std::type_identity<typename Interface::template kind_at<index>::reply>{};
}
}  // namespace detail

/// The reply type of call `Message` in `Interface`.
template <class Interface, class Message>
using reply_of = typename decltype(detail::reply_type<Interface, Message>())::type;

// ---- implementations ----

/// Names the vsn a hand-written code_change upgrades (or downgrades) from.
template <int Vsn>
struct from_vsn {
  static constexpr int value = Vsn;
};

/// The state type each older (or newer) vsn of an implementation held, as hotswap::version
/// entries: what change_code can start from.
template <class... Versions>
struct state_history {};

namespace errors {
template <class Implementation>
struct implementation_needs_interface_vsn_state_and_init {
  static_assert(reported<implementation_needs_interface_vsn_state_and_init>,
                "hotswap: an implementation declares `using interface = ...;`, `static constexpr int vsn = N;`, "
                "`using state = ...;` and `static state init();` (or `static state init(const Argument&);`, not "
                "overloaded)");
};
template <class Implementation, class Message, class Reply>
struct implementation_lacks_handle_call {
  static_assert(reported<implementation_lacks_handle_call>,
                "hotswap: the implementation has no handler for this call; write "
                "`static Reply handle_call(const Message&, state&);`");
};
template <class Implementation, class Message, class Reply, class Returned>
struct handle_call_returns_the_wrong_type {
  static_assert(reported<handle_call_returns_the_wrong_type>,
                "hotswap: this handle_call returns a type that does not convert to the reply type the interface "
                "declares for the message; return Reply");
};
template <class Implementation, class Message>
struct implementation_lacks_handle_cast {
  static_assert(reported<implementation_lacks_handle_cast>,
                "hotswap: the implementation has no handler for this cast; write "
                "`static void handle_cast(const Message&, state&);`");
};
template <class Implementation, class Message>
struct implementation_lacks_handle_info {
  static_assert(reported<implementation_lacks_handle_info>,
                "hotswap: the implementation has no handler for this info; write "
                "`static void handle_info(const Message&, state&);`");
};
template <class Implementation, int FromVsn, class OldState, class State>
struct state_cannot_change_from_vsn {
  static_assert(reported<state_cannot_change_from_vsn>,
                "hotswap: the state of the vsn named in state_history does not migrate to this implementation's "
                "state by itself; write `static state code_change(hotswap::from_vsn<FromVsn>, OldState&& old, "
                "const extra&);` or declare the step rules of the schema (hotswap::step)");
};
template <class Implementation, int FromVsn, class OldState, class State>
struct states_are_not_versions_of_a_schema {
  static_assert(reported<states_are_not_versions_of_a_schema>,
                "hotswap: the state of the vsn named in state_history and this implementation's state are structs "
                "that are not declared as versions of one schema, so no migration between them is generated; "
                "declare them: `using S = hotswap::schema<\"Name\", hotswap::version<1, OldState>, "
                "hotswap::version<2, State>>;` and `template <hotswap::listed_in<S> T> struct hotswap::schema_of<T> "
                ": S {};`, or write `static state code_change(hotswap::from_vsn<FromVsn>, OldState&& old);`");
};
}  // namespace errors

namespace detail {

template <class Result, class Argument>
Argument init_argument_of(Result (*)(Argument));
template <class Result>
void init_argument_of(Result (*)());

template <class Implementation>
concept has_basics = requires {
  typename Implementation::interface;
  typename Implementation::state;
  { Implementation::vsn } -> std::convertible_to<int>;
  init_argument_of(&Implementation::init);
};

template <class Implementation>
using init_argument = std::remove_cvref_t<decltype(init_argument_of(&Implementation::init))>;

template <class Implementation>
concept init_takes_argument = has_basics<Implementation> && !std::is_void_v<init_argument<Implementation>>;

template <class Implementation>
struct extra_type : std::type_identity<no_extra> {};
template <class Implementation>
  requires requires { typename Implementation::extra; }
struct extra_type<Implementation> : std::type_identity<typename Implementation::extra> {};
template <class Implementation>
using extra_of = typename extra_type<Implementation>::type;

template <class Implementation, class M, class S>
using call_returns = decltype(Implementation::handle_call(std::declval<M&&>(), std::declval<S&>()));

template <class Implementation, class Kind>
constexpr auto check_handler() {
  using M = typename Kind::message;
  using S = typename Implementation::state;
  if constexpr (kind_of<Kind>() == message_kind::call) {
    using R = typename Kind::reply;
    if constexpr (!requires(M&& m, S& s) { Implementation::handle_call(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_call<Implementation, M, R>>{};
    else if constexpr (!std::is_convertible_v<call_returns<Implementation, M, S>, R>)
      return verdict<errors::handle_call_returns_the_wrong_type<Implementation, M, R, call_returns<Implementation, M, S>>>{};
    else
      return verdict<no_error>{};
  } else if constexpr (kind_of<Kind>() == message_kind::cast) {
    if constexpr (!requires(M&& m, S& s) { Implementation::handle_cast(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_cast<Implementation, M>>{};
    else
      return verdict<no_error>{};
  } else {
    if constexpr (!requires(M&& m, S& s) { Implementation::handle_info(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_info<Implementation, M>>{};
    else
      return verdict<no_error>{};
  }
}

template <class Implementation, int Vsn, class Old>
concept writes_code_change = requires(Old&& old, const extra_of<Implementation>& extra) {
  { Implementation::code_change(from_vsn<Vsn>{}, std::move(old), extra) } -> std::same_as<typename Implementation::state>;
} || requires(Old&& old) {
  { Implementation::code_change(from_vsn<Vsn>{}, std::move(old)) } -> std::same_as<typename Implementation::state>;
};

/// A vsn of the history: code_change written for it, the same state, or a migration that
/// compiles (its own first mistake is reported when there is a route, which names the field).
template <class Implementation, class Version>
constexpr auto check_history_entry() {
  using Old = typename Version::type;
  using S = typename Implementation::state;
  if constexpr (writes_code_change<Implementation, Version::vsn, Old> || std::is_same_v<Old, S>)
    return verdict<no_error>{};
  else if constexpr (!has_route<Old, S>() && std::is_aggregate_v<Old> && std::is_aggregate_v<S> && !versioned<Old> &&
                     !versioned<S>)
    return verdict<errors::states_are_not_versions_of_a_schema<Implementation, Version::vsn, Old, S>>{};
  else if constexpr (!has_route<Old, S>())
    return verdict<errors::state_cannot_change_from_vsn<Implementation, Version::vsn, Old, S>>{};
  else
    return check_migration<Old, S, context<extra_of<Implementation>>>();
}

template <class Implementation>
struct history_type : std::type_identity<state_history<>> {};
template <class Implementation>
  requires requires { typename Implementation::state_history; }
struct history_type<Implementation> : std::type_identity<typename Implementation::state_history> {};
template <class Implementation>
using history_of = typename history_type<Implementation>::type;

template <class Implementation, class... Versions>
constexpr auto check_history(state_history<Versions...>) {
  return first_of<decltype(check_history_entry<Implementation, Versions>())...>{};
}

template <class Implementation, class... Kinds>
constexpr auto check_handlers(type_list<Kinds...>) {
  return first_of<decltype(check_handler<Implementation, Kinds>())...>{};
}

/// The first mistake of an implementation: its basics, its handlers, then its history.
template <class Implementation>
constexpr auto check_implementation() {
  if constexpr (!has_basics<Implementation>) {
    return verdict<errors::implementation_needs_interface_vsn_state_and_init<Implementation>>{};
  } else {
    using handlers = decltype(check_handlers<Implementation>(typename Implementation::interface::kinds{}));
    if constexpr (!fine<handlers>)
      return verdict<error_of<handlers>>{};
    else
      return verdict<error_of<decltype(check_history<Implementation>(history_of<Implementation>{}))>>{};
  }
}

template <class Implementation>
using implementation_check = decltype(check_implementation<Implementation>());

/// Runs `body`, reporting what it throws instead of letting it cross the table boundary.
template <class Body>
void report_failure(outcome& result, Body&& body) noexcept {
  try {
    body();
  } catch (const std::exception& thrown) {
    result = {true, thrown.what()};
  } catch (...) {
    result = {true, "an exception not derived from std::exception"};
  }
}

template <class Implementation, std::size_t I>
void handle(void* state, envelope& message, outcome& result) noexcept {
  using Kind = typename Implementation::interface::template kind_at<I>;
  using M = typename Kind::message;
  using S = typename Implementation::state;
  struct consume {
    envelope& message;
    ~consume() { discard<M>(message); }
  } consumed{message};
  S& s = *static_cast<S*>(state);
  M& m = unpack<M>(message);
  report_failure(result, [&] {
    if constexpr (requires { typename Kind::reply; })
      static_cast<reply_slot<typename Kind::reply>*>(static_cast<reply_slot_base*>(message.reply))
          ->answer(typename Kind::reply(Implementation::handle_call(std::move(m), s)));
    else if constexpr (std::is_same_v<Kind, cast_msg<M>>)
      Implementation::handle_cast(std::move(m), s);
    else
      Implementation::handle_info(std::move(m), s);
  });
}

template <class Interface, std::size_t I>
void discard_message(envelope& message) noexcept {
  discard<typename Interface::template kind_at<I>::message>(message);
}

template <class Implementation>
void* init_state(const void* argument, outcome& result) noexcept {
  using S = typename Implementation::state;
  S* made = nullptr;
  report_failure(result, [&] {
    if constexpr (std::is_void_v<init_argument<Implementation>>)
      made = new S(Implementation::init());
    else
      made = new S(Implementation::init(*static_cast<const init_argument<Implementation>*>(argument)));
  });
  return made;
}

template <class Implementation>
void terminate_state(void* state, const exit_reason& reason) noexcept {
  using S = typename Implementation::state;
  if constexpr (requires(S& s) { Implementation::terminate(reason, s); }) {
    outcome ignored;  // terminate is the last word: what it throws goes nowhere
    report_failure(ignored, [&] { Implementation::terminate(reason, *static_cast<S*>(state)); });
  }
}

template <class Implementation>
void destroy_state(void* state) noexcept {
  delete static_cast<typename Implementation::state*>(state);
}

/// Builds this implementation's state from a copy of the old one (the old stays intact).
template <class Implementation, int Vsn, class Old>
typename Implementation::state change_from(const Old& old, const extra_of<Implementation>& extra) {
  if constexpr (requires(Old&& o) { Implementation::code_change(from_vsn<Vsn>{}, std::move(o), extra); })
    return Implementation::code_change(from_vsn<Vsn>{}, Old(old), extra);
  else if constexpr (writes_code_change<Implementation, Vsn, Old>)
    return Implementation::code_change(from_vsn<Vsn>{}, Old(old));
  else
    return migrate<typename Implementation::state>(old, extra);
}

template <class Implementation, class... Versions>
void* change_state(void* old_state, std::uint64_t old_fingerprint, int old_vsn,
                   const extra_of<Implementation>& extra, outcome& result, state_history<Versions...>) {
  using S = typename Implementation::state;
  void* made = nullptr;
  bool known = false;
  report_failure(result, [&] {
    (void)((Versions::vsn == old_vsn && (known = true) &&
            (value_fingerprint<typename Versions::type> == old_fingerprint
                 ? (made = new S(change_from<Implementation, Versions::vsn>(
                        *static_cast<const typename Versions::type*>(old_state), extra)),
                    true)
                 : (result = {true, "vsn " + std::to_string(old_vsn) + " is declared with state " +
                                        std::string(type_spelling<typename Versions::type>()) +
                                        ", but the server holds a state of another type"},
                    true))) ||
           ...);
  });
  if (!known && !result.failed) {
    if (old_fingerprint == value_fingerprint<S>)
      return old_state;  // the same state type: handed on as it is
    result = {true, std::string(type_spelling<Implementation>()) + " does not know the state of vsn " +
                        std::to_string(old_vsn) + ": list it in state_history"};
  }
  return made;
}

template <class Implementation>
void* change_code(void* old_state, std::uint64_t old_fingerprint, int old_vsn, const extra_ref& extra,
                  outcome& result) noexcept {
  using Extra = extra_of<Implementation>;
  if (!extra.value) {
    Extra none{};
    return change_state<Implementation>(old_state, old_fingerprint, old_vsn, none, result,
                                        history_of<Implementation>{});
  }
  if (extra.fingerprint != value_fingerprint<Extra>) {
    result = {true, "the extra given is a " + std::string(extra.type) + "; " +
                        std::string(type_spelling<Implementation>()) + " takes a " +
                        std::string(type_spelling<Extra>())};
    return nullptr;
  }
  return change_state<Implementation>(old_state, old_fingerprint, old_vsn, *static_cast<const Extra*>(extra.value),
                                      result, history_of<Implementation>{});
}

template <class Argument>
inline constexpr std::uint64_t argument_fingerprint = value_fingerprint<Argument>;
template <>
inline constexpr std::uint64_t argument_fingerprint<void> = 0;
template <class Argument>
inline constexpr std::string_view argument_spelling = type_spelling<Argument>();
template <>
inline constexpr std::string_view argument_spelling<void> = "nothing";

/// A type whose values hold nothing that points into code or constants: numbers, strings,
/// schema versions, standard containers and aggregates of those. A state that is not keeps the
/// code that made it loaded while it lives, also after change_code hands it on untouched.
template <class T>
constexpr bool plain_data() {
  if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_same_v<T, std::string>)
    return true;
  else if constexpr (optional<T> || sequence<T> || fixed_array<T>)
    return plain_data<typename T::value_type>();
  else if constexpr (ordered_map<T> || hashed_map<T>)
    return plain_data<typename T::key_type>() && plain_data<typename T::mapped_type>();
  else if constexpr (std::is_class_v<T> && std::is_aggregate_v<T> && !std::is_polymorphic_v<T>)
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (plain_data<field_type<T, I>>() && ...);
    }(std::make_index_sequence<field_count<T>>{});
  else
    return false;
}

template <class Implementation>
struct table_parts {
  using interface = typename Implementation::interface;
  static constexpr auto handlers = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<handler_fn, sizeof...(I)>{&handle<Implementation, I>...};
  }(std::make_index_sequence<interface::size>{});
  static constexpr auto discards = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<discard_fn, sizeof...(I)>{&discard_message<interface, I>...};
  }(std::make_index_sequence<interface::size>{});
};

template <class Implementation>
constexpr implementation_table make_table() {
  using parts = table_parts<Implementation>;
  using interface = typename Implementation::interface;
  using S = typename Implementation::state;
  return {interface::fingerprint,
          interface::name,
          type_spelling<Implementation>(),
          Implementation::vsn,
          value_fingerprint<S>,
          type_spelling<S>(),
          interface::size,
          parts::handlers.data(),
          parts::discards.data(),
          interface::message_names.data(),
          argument_fingerprint<init_argument<Implementation>>,
          argument_spelling<init_argument<Implementation>>,
          plain_data<S>(),
          &init_state<Implementation>,
          &terminate_state<Implementation>,
          &destroy_state<Implementation>,
          &change_code<Implementation>};
}

// A class, not a function, reports the error: clang takes a function whose instantiation failed
// for one that cannot be evaluated, and would report every constant computed from it too.
template <class Implementation>
struct checked_table {
  static_assert(sizeof(error_of<implementation_check<Implementation>>) != 0);  // the first mistake, once
  static constexpr implementation_table table = [] {
    if constexpr (fine<implementation_check<Implementation>>) return make_table<Implementation>();
    else return implementation_table{};
  }();
};
}  // namespace detail

/// The implementation table of `Implementation`: what a server runs, and what change_code
/// swaps in. Does not compile (naming the message or the vsn) if a handler is missing, returns
/// the wrong type, or a state in the history cannot migrate.
template <class Implementation>
inline constexpr implementation_table table_of = detail::checked_table<Implementation>::table;

// ---- servers ----

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
  /// The same server, if it has this interface.
  static std::optional<server_ref> from(any_server server) {
    if (!server || server.core()->interface_fingerprint != Interface::fingerprint) return std::nullopt;
    return server_ref(std::move(server));
  }

 private:
  explicit server_ref(any_server server) noexcept : any_server(std::move(server)) {}
};

struct start_options {
  std::string name{};       ///< registered as this name (empty: none)
  bool own_thread = false;  ///< a thread of its own instead of the pool (for handlers that block)
  /// Keeps the code of the table loaded while the server runs it (the modules layer sets it).
  std::shared_ptr<const void> table_owner{};
  /// Called with the new server before its init runs, to tell table_owner which server holds it.
  void (*bind_owner)(const void* table_owner, detail::server_core& server) noexcept = nullptr;
};

/// Starts a server running `table`: init runs on the calling thread (where hotswap::self() is
/// the new server), then the server takes messages. Fails if init throws or the name is taken.
template <class Interface>
result<server_ref<Interface>> start(const implementation_table& table, const void* argument,
                                    start_options options = {}) {
  if (table.interface_fingerprint != Interface::fingerprint)
    return error{errc::wrong_interface, std::string(table.name) + " implements " + std::string(table.interface_name) +
                                            ", not " + std::string(Interface::name)};
  detail::runtime& runtime = detail::the_runtime();
  auto* core = new detail::server_core(runtime.next_id(), table);
  any_server handle(core);
  core->acquire();  // the reference for being alive
  if (!options.table_owner && detail::building_module) {  // a module's server of its own: leased from it
    const detail::lease_maker& leases = detail::module_leases();
    options.table_owner = leases.make(detail::pin_this_image());
    options.bind_owner = leases.bind;
  }
  core->table_owner = std::move(options.table_owner);
  if (options.bind_owner) options.bind_owner(core->table_owner.get(), *core);
  // Marked running (owned by this thread) until init returns: what is sent meanwhile, through
  // the name or from init itself, waits.
  core->run_state.store(detail::server_core::running);
  core->runs_on = &runtime.pool;
  detail::outcome initialized;
  if (options.own_thread) {
    // It runs only when scheduled.
    detail::report_failure(initialized, [&] { core->runs_on = runtime.start_own_thread(*core); });
  }
  if (!initialized.failed && !options.name.empty() && !runtime.register_name(options.name, *core))
    initialized = {true, "the name " + options.name + " is already registered"};
  if (!initialized.failed) {
    detail::server_core*& current = detail::current_server();
    detail::server_core* const outer = std::exchange(current, core);
    core->state = table.init(argument, initialized);
    current = outer;
  }
  if (initialized.failed) {
    // As if it had ended: what was sent meanwhile fails, monitors hear of it, the name is free.
    detail::end_server(*core, {exit_kind::crashed, initialized.what});
    if (core->own_thread) core->own_thread->wake();  // to see that it has ended
  }
  std::uint32_t quiet = detail::server_core::running;
  if (!core->run_state.compare_exchange_strong(quiet, detail::server_core::idle)) core->runs_on->schedule(*core);
  if (initialized.failed) return error{errc::init_failed, std::move(initialized.what)};
  return *server_ref<Interface>::from(std::move(handle));
}

/// Starts a server of `Implementation`, whose init takes no argument.
template <class Implementation>
  requires(!detail::init_takes_argument<Implementation>)
result<server_ref<typename Implementation::interface>> start(start_options options = {}) {
  return start<typename Implementation::interface>(table_of<Implementation>, nullptr, std::move(options));
}

/// Starts a server of `Implementation`, passing `argument` to its init.
template <class Implementation>
  requires detail::init_takes_argument<Implementation>
result<server_ref<typename Implementation::interface>> start(const detail::init_argument<Implementation>& argument,
                                                             start_options options = {}) {
  return start<typename Implementation::interface>(table_of<Implementation>, &argument, std::move(options));
}

namespace detail {
/// A message packed for an envelope before the mailbox is touched: whatever can throw
/// (allocating a boxed message) happens here.
template <class M>
class packed {
 public:
  template <class T>
  explicit packed(T&& message) {
    pack(bytes_, std::forward<T>(message));
  }
  ~packed() {
    if (!sent_) discard<M>(bytes_);
  }
  packed(const packed&) = delete;
  packed& operator=(const packed&) = delete;
  bool send(server_core& to, std::uint32_t kind, void* reply) {
    sent_ = to.deliver([&](envelope& into) noexcept {
      std::memcpy(into.payload, bytes_.payload, sizeof bytes_.payload);
      into.kind = kind;
      into.reply = reply;
    });
    return sent_;
  }

 private:
  envelope bytes_{};
  bool sent_ = false;
};

/// Sends a cast or an info; a message the interface does not declare as that kind is a compile
/// error, reported once.
template <message_kind Kind, class Interface, class M>
bool send_kind(const server_ref<Interface>& to, M&& message) {
  using check = sent_check<Interface, M, Kind>;
  if constexpr (!fine<check>) {
    (void)sizeof(error_of<check>);
    __builtin_unreachable();
  } else {
    using T = std::remove_cvref_t<M>;
    if (!to) return false;
    return packed<T>(std::forward<M>(message)).send(*to.core(), Interface::template index_of<T>, nullptr);
  }
}

inline void before_parking() {
  worker_pool* pool = building_module ? the_runtime().this_thread_pool() : worker_pool::this_thread_pool();
  if (pool) pool->blocking();
}
}  // namespace detail

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
  using R = reply_of<Interface, M>;
  using T = std::remove_cvref_t<M>;
  if (!to) return error{errc::no_server, "an empty server handle"};
  if (to.core() == detail::current_server()) return error{errc::calling_self, "it would wait for itself"};
  detail::cached_slot<R> slot;
  detail::reply_slot_base* const reply = slot.get();  // what the receiver casts the envelope's pointer back to
  if (!detail::packed<T>(std::forward<M>(message)).send(*to.core(), Interface::template index_of<T>, reply))
    return error{errc::no_server, {}};
  if (!slot.get()->wait(timeout, detail::before_parking)) {
    slot.abandon();
    return error{errc::timeout, "no reply within " + std::to_string(timeout.count() / 1'000'000) + " ms"};
  }
  if (!slot.get()->value) return slot.get()->failure;
  return std::move(*slot.get()->value);
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

// ---- sys requests (the machinery; hotswap/sys.hpp has the requests) ----

namespace detail {
template <class Result, class Run>
struct control_call final : control_request {
  Run body;
  std::optional<hotswap::result<Result>> answer;
  explicit control_call(Run run)
      : control_request([](reply_slot_base* self) noexcept { delete static_cast<control_call*>(self); }),
        body(std::move(run)) {
    this->run = [](control_request& self, server_core& server) noexcept {
      auto& call = static_cast<control_call&>(self);
      outcome failed;
      report_failure(failed, [&] { call.answer.emplace(call.body(server)); });
      if (failed.failed)
        call.fail(errc::handler_failed, std::move(failed.what));
      else
        call.finish(answered);
    };
  }
};

/// Runs `request` on this thread if the server (on the pool) is idle and no sys request is
/// ahead of it: no worker has to be woken for it (a wake costs 20-80 us), whatever waits in
/// the mailbox. False if it must be sent instead.
inline bool run_control_here(server_core& server, control_request& request) noexcept {
  if (server.runs_on != &the_runtime().pool) return false;
  std::uint32_t expected = server_core::idle;
  if (!server.run_state.compare_exchange_strong(expected, server_core::running, std::memory_order_seq_cst))
    return false;
  const bool ran = server.controls.load(std::memory_order_acquire) == nullptr;
  if (ran) {
    server_core*& current = current_server();
    server_core* const outer = std::exchange(current, &server);
    if (server.alive.load(std::memory_order_acquire))
      request.run(request, server);
    else
      request.fail(errc::no_server, "the server has stopped");
    current = outer;
  }
  // Messages that were there, came meanwhile, or were held until a resume: the pool takes over.
  expected = server_core::running;
  if (server.has_input() ||
      !server.run_state.compare_exchange_strong(expected, server_core::idle, std::memory_order_seq_cst))
    server.runs_on->schedule(server);
  return ran;
}

/// Runs `run(server_core&) -> result<Result>` on the server, between its messages (also while
/// suspended), and waits for it at most `timeout`. On an idle server it runs at once on the
/// calling thread; the timeout then bounds nothing (sys requests are short).
template <class Result, class Run>
result<Result> control(const server_handle auto& server, std::chrono::nanoseconds timeout, Run run) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (server.core() == current_server()) return error{errc::calling_self, "a server cannot wait for itself"};
  auto answer_of = [](control_call<Result, Run>& done) -> result<Result> {
    if (!done.answer) return done.failure;
    return std::move(*done.answer);
  };
  control_call<Result, Run> here(std::move(run));  // on the stack: nobody else sees it if it runs here
  if (run_control_here(*server.core(), here)) return answer_of(here);
  auto* request = new control_call<Result, Run>(std::move(here.body));
  if (!server.core()->deliver_control(*request)) {
    delete request;
    return error{errc::no_server, {}};
  }
  if (!request->wait(timeout, before_parking))
    return error{errc::timeout, "no answer within " + std::to_string(timeout.count() / 1'000'000) +
                                    " ms: the request may yet take effect (sys::get_status shows whether it did)"};
  const std::unique_ptr<control_call<Result, Run>> done(request);
  return answer_of(*done);
}
}  // namespace detail

/// Stops a server: its terminate runs (reason normal), calls still waiting fail with
/// errc::server_died, its name is freed. From the server's own handler, the stop is queued and
/// happens once the handler returns (this returns at once).
result<void> stop(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  auto end = [](detail::server_core& core) -> result<void> {
    detail::end_server(core, {exit_kind::normal, {}});
    return {};
  };
  if (server && server.core() == detail::current_server()) {
    auto* request = new detail::control_call<void, decltype(end)>(end);
    request->state.store(detail::reply_slot_base::abandoned);  // nobody waits: the server frees it
    if (!server.core()->deliver_control(*request)) delete request;
    return {};
  }
  return detail::control<void>(server, timeout, end);
}

// ---- names ----

/// Registers `server` as `name`; false if the name is taken, the server already has a name, or
/// it has stopped. A name is freed when its server stops.
inline bool register_name(const std::string& name, const any_server& server) {
  return server && detail::the_runtime().register_name(name, *server.core());
}

/// The server registered as `name`, if it has `Interface`.
template <class Interface>
std::optional<server_ref<Interface>> whereis(const std::string& name) {
  detail::server_core* found = detail::the_runtime().whereis(name);
  if (!found) return std::nullopt;
  return server_ref<Interface>::from(any_server(found));
}

inline bool unregister_name(const std::string& name) { return detail::the_runtime().unregister_name(name); }

// ---- timers ----

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

namespace detail {
/// A timer sending `message`: as plain bytes when it travels in place (no code of the caller's
/// is kept), else by a copy of it (a module's code then stays loaded while the timer runs).
template <class Interface, class M>
std::shared_ptr<timer_service::entry> add_timer(const server_ref<Interface>& to, M&& message,
                                                std::chrono::steady_clock::duration delay,
                                                std::chrono::steady_clock::duration period) {
  using check = sent_check<Interface, M, message_kind::info>;
  if constexpr (!fine<check>) {
    (void)sizeof(error_of<check>);  // timers send infos: reported once
    __builtin_unreachable();
  }
  using T = std::remove_cvref_t<M>;
  if constexpr (stored_in_place<T>) {
    if (to) {
      envelope bytes{};
      pack(bytes, std::forward<M>(message));
      bytes.kind = Interface::template index_of<T>;
      return the_runtime().timers.add(delay, period, *to.core(), bytes);
    }
  }
  return the_runtime().timers.add(
      delay, period,
      [to, message = T(std::forward<M>(message)), repeats = period.count() > 0]() mutable {
        return repeats ? send(to, message) : send(to, std::move(message));
      },
      pin_this_image());
}
}  // namespace detail

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

inline bool cancel(timer& pending) noexcept { return pending.cancel(); }

}  // namespace hotswap
