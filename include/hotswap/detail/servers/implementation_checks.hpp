// Checking an implementation: its basics (interface, vsn, state, init), a handler of the right
// type for each message of its interface, and a way to change code from each vsn of its state
// history (a hand-written code_change, the same state, or a migration that compiles). The first
// mistake is reported, once, by table_of.
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>

#include "../common/type_list.hpp"
#include "../common/verdict.hpp"
#include "../migrations/checks.hpp"
#include "../migrations/context.hpp"
#include "../migrations/routes.hpp"
#include "../runtime/deferred_reply.hpp"
#include "../schemas/field_kinds.hpp"
#include "interface.hpp"

namespace hotswap {
template <int Vsn>
struct from_vsn;  // hotswap/servers.hpp
template <class... Versions>
struct state_history;  // hotswap/servers.hpp

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
                "`static Reply handle_call(const Message&, state&);`, or, to answer later, "
                "`static void handle_call(const Message&, state&, hotswap::reply_to<Reply>);`");
};
template <class Implementation, class Message, class Reply, class Returned>
struct deferring_handle_call_returns_a_value {
  static_assert(reported<deferring_handle_call_returns_a_value>,
                "hotswap: a handle_call that takes a hotswap::reply_to answers through it (now or later) and returns "
                "void");
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
}  // namespace hotswap

namespace hotswap::detail {

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
requires requires {
  typename Implementation::extra;
}
struct extra_type<Implementation> : std::type_identity<typename Implementation::extra> {};
template <class Implementation>
using extra_of = typename extra_type<Implementation>::type;

template <class Implementation, class M, class S>
using call_returns = decltype(Implementation::handle_call(std::declval<M&&>(), std::declval<S&>()));

/// A call handler that takes the call's reply handle (OTP's handle_call/3 with From) and answers
/// through it, now or later.
template <class Implementation, class M, class S, class R>
concept defers_reply = requires(M&& m, S& s, deferred<R> from) {
  Implementation::handle_call(std::move(m), s, std::move(from));
};
/// Whether the handler of `Kind` is a call handler that takes the reply handle.
template <class Implementation, class Kind>
constexpr bool defers_reply_of() {
  if constexpr (Kind::kind == message_kind::call)
    return defers_reply<Implementation, typename Kind::message, typename Implementation::state, typename Kind::reply>;
  else
    return false;
}

template <class Implementation, class Kind>
constexpr auto check_handler() {
  using M = typename Kind::message;
  using S = typename Implementation::state;
  if constexpr (Kind::kind == message_kind::call) {
    using R = typename Kind::reply;
    if constexpr (defers_reply<Implementation, M, S, R>) {
      using returned =
          decltype(Implementation::handle_call(std::declval<M&&>(), std::declval<S&>(), std::declval<deferred<R>>()));
      if constexpr (std::is_void_v<returned>)
        return verdict<no_error>{};
      else
        return verdict<errors::deferring_handle_call_returns_a_value<Implementation, M, R, returned>>{};
    } else if constexpr (!requires(M && m, S & s) { Implementation::handle_call(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_call<Implementation, M, R>>{};
    else if constexpr (!std::is_convertible_v<call_returns<Implementation, M, S>, R>)
      return verdict<
          errors::handle_call_returns_the_wrong_type<Implementation, M, R, call_returns<Implementation, M, S>>>{};
    else
      return verdict<no_error>{};
  } else if constexpr (Kind::kind == message_kind::cast) {
    if constexpr (!requires(M && m, S & s) { Implementation::handle_cast(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_cast<Implementation, M>>{};
    else
      return verdict<no_error>{};
  } else {
    if constexpr (!requires(M && m, S & s) { Implementation::handle_info(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_info<Implementation, M>>{};
    else
      return verdict<no_error>{};
  }
}

template <class Implementation, int Vsn, class Old>
concept writes_code_change = requires(Old&& old, const extra_of<Implementation>& extra) {
  {
    Implementation::code_change(from_vsn<Vsn>{}, std::move(old), extra)
    } -> std::same_as<typename Implementation::state>;
}
|| requires(Old&& old) {
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
  else if constexpr (!has_route<Old, S>() && std::is_aggregate_v<Old> && std::is_aggregate_v<S> &&
                     !versioned_type<Old> && !versioned_type<S>)
    return verdict<errors::states_are_not_versions_of_a_schema<Implementation, Version::vsn, Old, S>>{};
  else if constexpr (!has_route<Old, S>())
    return verdict<errors::state_cannot_change_from_vsn<Implementation, Version::vsn, Old, S>>{};
  else
    return check_migration<Old, S, context<extra_of<Implementation>, no_key>>();
}

template <class Implementation>
struct history_type : std::type_identity<state_history<>> {};
template <class Implementation>
requires requires {
  typename Implementation::state_history;
}
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

}  // namespace hotswap::detail
