// Generating an implementation table (hotswap::table_of): a handler per message that unpacks it,
// runs the implementation's handler and answers a call; init, terminate and destroy; and
// code_change, which builds the new state from the old by the implementation's code_change or
// the generated migration. Nothing thrown crosses the table: failures are reported as outcomes.
#pragma once

#include <cxxabi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "../abi/implementation_table.hpp"
#include "../common/type_name.hpp"
#include "../migrations/apply.hpp"
#include "../runtime/deferred_reply.hpp"
#include "../runtime/reply_slot.hpp"
#include "../runtime/server_core.hpp"
#include "../schemas/describe.hpp"
#include "../schemas/field_kinds.hpp"
#include "../schemas/inspect.hpp"
#include "../schemas/state_size.hpp"
#include "implementation_checks.hpp"
#include "interface.hpp"
#include "interface_versions.hpp"

namespace hotswap::detail {

/// The name of the type of the exception being handled, as the compiler spells it.
template <class = void>
std::string thrown_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (!type) return {};
  int status = 0;
  char* readable = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  std::string name = readable ? readable : type->name();
  std::free(readable);
  return name;
}

/// Runs `body`, reporting what it throws instead of letting it cross the table boundary.
template <class Body>
void report_failure(outcome& result, Body&& body) noexcept {
  try {
    body();
  } catch (const std::exception& thrown) {
    try {
      result = {true, thrown.what(), thrown_type()};
    } catch (...) {  // out of memory
      result.failed = true;
    }
  } catch (...) {
    try {
      result = {true, "an exception not derived from std::exception", thrown_type()};
    } catch (...) {
      result.failed = true;
    }
  }
}

/// Runs the handler of slot kind `Kind` on a message sent as `Sent` (the same kind, or the one
/// the slot held at an earlier interface vsn): the message migrated up, and a call's reply
/// migrated down to what the caller waits for.
template <class Implementation, class Kind, class Sent>
void handle_sent(void* state, envelope& message, outcome& result) noexcept {
  using M = typename Kind::message;
  using Arrived = typename Sent::message;
  using S = typename Implementation::state;
  using none = std::conditional_t<sizeof(Arrived) != 0, no_extra, void>;  // complete where it is used
  struct consume {
    envelope& message;
    ~consume() { discard_sent<Arrived>(message, message.kind); }
  } consumed{message};
  S& s = *static_cast<S*>(state);
  Arrived& arrived = unpack_sent<Arrived>(message);
  auto taken = [&]() -> decltype(auto) {  // the message as this version takes it
    if constexpr (std::is_same_v<Arrived, M>)
      return std::move(arrived);
    else
      return migrate_top<M>(Arrived(std::move(arrived)), none{});
  };
  if constexpr (defers_reply_of<Implementation, Kind>()) {  // it answers through a reply_to
    using R = typename Kind::reply;
    static_assert(std::is_same_v<R, typename Sent::reply>,
                  "hotswap: a call whose reply changed between versions of the interface answers by returning "
                  "it (the reply is migrated down for the callers built against an earlier version): a "
                  "hotswap::reply_to cannot migrate it");
    reply_slot_base* const slot = static_cast<reply_slot_base*>(message.reply);
    std::optional<deferred<R>> own;
    report_failure(result, [&] {
      own.emplace(slot);
      message.reply = nullptr;  // the handle's now
      Implementation::handle_call(taken(), s, deferred<R>(*own));
    });
    if (result.failed && own && own->hand_back()) message.reply = slot;  // the crash fails it
    // `own` goes: if it was the last copy, unanswered, the caller hears no_reply now
  } else {
    report_failure(result, [&] {
      if constexpr (Kind::kind == message_kind::call) {
        using R = typename Sent::reply;  // what the caller waits for
        auto* slot = static_cast<reply_slot<R>*>(static_cast<reply_slot_base*>(message.reply));
        if constexpr (std::is_same_v<R, typename Kind::reply>)
          slot->answer(R(Implementation::handle_call(taken(), s)));
        else
          slot->answer(migrate_top<R>(typename Kind::reply(Implementation::handle_call(taken(), s)), none{}));
      } else if constexpr (Kind::kind == message_kind::cast) {
        Implementation::handle_cast(taken(), s);
      } else {
        Implementation::handle_info(taken(), s);
      }
    });
  }
}

/// What a server answers a message of a slot its interface emptied (hotswap::removed_msg).
template <class Interface, class Slot>
void refuse_removed(envelope& message) noexcept {
  with_sent_kind<Slot>(sent_vsn_of(message.kind), [&]<class Sent>(std::type_identity<Sent>) {
    discard_sent<typename Sent::message>(message, message.kind);
  });
  if (message.reply)
    static_cast<reply_slot_base*>(message.reply)
        ->fail(errc::wrong_interface, std::string(type_spelling<typename Slot::kind::was::message>()) +
                                          " is not taken since version " + std::to_string(Slot::since) + " of " +
                                          std::string(Interface::name));
}

template <class Implementation, std::size_t I>
void handle(void* state, envelope& message, outcome& result) noexcept {
  using Interface = typename Implementation::interface;
  using Slot = slot_at<Interface, I>;
  if constexpr (is_gone<typename Slot::kind>) {
    (void)state, (void)result;
    refuse_removed<Interface, Slot>(message);
  } else {
    with_sent_kind<Slot>(sent_vsn_of(message.kind), [&]<class Sent>(std::type_identity<Sent>) {
      handle_sent<Implementation, typename Slot::kind, Sent>(state, message, result);
    });
  }
}

template <class Interface, std::size_t I>
void discard_message(envelope& message) noexcept {
  with_sent_kind<slot_at<Interface, I>>(sent_vsn_of(message.kind), [&]<class Sent>(std::type_identity<Sent>) {
    discard_sent<typename Sent::message>(message, message.kind);
  });
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
  if constexpr (requires(S & s) { Implementation::terminate(reason, s); }) {
    outcome ignored;  // terminate is the last word: what it throws goes nowhere
    report_failure(ignored, [&] { Implementation::terminate(reason, *static_cast<S*>(state)); });
  }
}

template <class Implementation>
void destroy_state(void* state) noexcept {
  delete static_cast<typename Implementation::state*>(state);
}

/// Builds this implementation's state from the old one, which stays intact: the generated
/// migration reads it (copying each part as it is used); a code_change takes a copy of it.
template <class Implementation, int Vsn, class Old>
typename Implementation::state change_from(const Old& old, const extra_of<Implementation>& extra) {
  if constexpr (requires(Old && o) { Implementation::code_change(from_vsn<Vsn>{}, std::move(o), extra); })
    return Implementation::code_change(from_vsn<Vsn>{}, Old(old), extra);
  else if constexpr (writes_code_change<Implementation, Vsn, Old>)
    return Implementation::code_change(from_vsn<Vsn>{}, Old(old));
  else
    return migrate_top<typename Implementation::state>(old, extra);
}

/// A rebuild of the same vsn whose state is now another version of its schema (a development
/// build: code_server_options::development): the state made from the old by the schema's steps,
/// when the old is one of the schema's versions and the steps reach this one. Cost: a migration
/// check per version of the state's schema, for an implementation whose state is a schema
/// version; nothing otherwise.
template <class Implementation>
void* rebuilt_state(void* old_state, std::uint64_t old_fingerprint, const extra_of<Implementation>& extra,
                    outcome& result) {
  using S = typename Implementation::state;
  void* made = nullptr;
  if constexpr (field_kind_of<S> == field_kind::version) {
    using Schema = schema_of<S>;
    [&]<int... Offset>(std::integer_sequence<int, Offset...>) {
      auto one = [&]<class Old>(std::type_identity<Old>) {
        if constexpr (!std::is_same_v<Old, S>) {
          using check = migration_check<Old, S, context<extra_of<Implementation>, no_key>>;
          if (value_fingerprint<Old> != old_fingerprint) return;
          if constexpr (fine<check>)
            made = new S(migrate_top<S>(*static_cast<const Old*>(old_state), extra));
          else
            result = {true, "the state changed from " + std::string(type_spelling<Old>()) + " to " +
                                std::string(type_spelling<S>()) + ", which the schema's steps do not migrate: " +
                                std::string(type_spelling<error_of<check>>())};
        }
      };
      (one(std::type_identity<typename Schema::template type_of<Schema::oldest_vsn + Offset>>{}), ...);
    }
    (std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
  }
  return made;
}

template <class Implementation, class... Versions>
void* change_state(void* old_state, std::uint64_t old_fingerprint, int old_vsn, const extra_of<Implementation>& extra,
                   outcome& result, state_history<Versions...>) {
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
    if (old_fingerprint == value_fingerprint<S>) return old_state;  // the same state type: handed on as it is
    if (old_vsn == Implementation::vsn) {                           // a rebuild of this vsn
      report_failure(result, [&] { made = rebuilt_state<Implementation>(old_state, old_fingerprint, extra, result); });
      if (made || result.failed) return made;
      result = {true, "this rebuild of vsn " + std::to_string(old_vsn) + " holds its state as " +
                          std::string(type_spelling<S>()) +
                          ", and the server's is not another version of its schema: make the new state a new "
                          "version of the old one's schema"};
      return nullptr;
    }
    result = {true, std::string(type_spelling<Implementation>()) + " does not know the state of vsn " +
                        std::to_string(old_vsn) + ": list it in state_history"};
  }
  return made;
}

/// Whether the implementation's state goes down to `Old` by the generated migration (no extra).
template <class Implementation, class Old>
using down_check = migration_check<typename Implementation::state, Old, context<no_extra, no_key>>;

template <class Implementation, class... Versions>
void* down_state(void* state, int vsn, std::uint64_t fingerprint, outcome& result, state_history<Versions...>) {
  using S = typename Implementation::state;
  if (fingerprint == value_fingerprint<S>) return state;  // the same state: handed on
  void* made = nullptr;
  report_failure(result, [&] {
    auto one = [&]<class Old>(std::type_identity<Old>) {
      using none = std::conditional_t<sizeof(Old) != 0, no_extra, void>;  // complete where it is used
      if constexpr (fine<down_check<Implementation, Old>>)
        made = new Old(migrate_top<Old>(*static_cast<const S*>(state), none{}));
    };
    (void)one;  // an empty history
    (void)((Versions::vsn == vsn && value_fingerprint<typename Versions::type> == fingerprint &&
            (one(std::type_identity<typename Versions::type>{}), true)) ||
           ...);
  });
  return made;
}

template <class Implementation>
void* down(void* state, int vsn, std::uint64_t fingerprint, outcome& result) noexcept {
  return down_state<Implementation>(state, vsn, fingerprint, result, history_of<Implementation>{});
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

template <class Implementation>
struct table_parts {
  using interface = typename Implementation::interface;
  static constexpr auto handlers = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<handler_fn, sizeof...(I)>{&handle<Implementation, I>...};
  }
  (std::make_index_sequence<interface::size>{});
  static constexpr auto discards = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<discard_fn, sizeof...(I)>{&discard_message<interface, I>...};
  }
  (std::make_index_sequence<interface::size>{});
  static constexpr auto since = []<class... Slots>(type_list<Slots...>) {
    return std::array<std::uint32_t, sizeof...(Slots)>{Slots::since...};
  }(typename interface::slots{});
};

/// What inspect shows of a server's state: `Implementation::format_status(state)` if it has one
/// (OTP's format_status: what crash reports and the control socket's views show), else the state.
template <class Implementation>
std::size_t inspect_status(const void* state, char* out, std::size_t size) noexcept {
  using S = typename Implementation::state;
  try {
    const auto shown = Implementation::format_status(*static_cast<const S*>(state));
    return inspect_state<std::remove_cvref_t<decltype(shown)>>(&shown, out, size);
  } catch (...) {  // format_status threw: nothing is shown
    return 0;
  }
}

template <class Implementation>
constexpr auto inspect_of() -> std::size_t (*)(const void*, char*, std::size_t) noexcept {
  using S = typename Implementation::state;
  if constexpr (requires(const S& s) { Implementation::format_status(s); }) {
    using shown = std::remove_cvref_t<decltype(Implementation::format_status(std::declval<const S&>()))>;
    static_assert(inspect_enabled<shown>(),
                  "hotswap: format_status returns what inspect prints: numbers, strings, containers of them, "
                  "hotswap::secret, and versions of schemas that enable inspect");
    return &inspect_status<Implementation>;
  } else {
    return inspect_state_of<S>();
  }
}

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
          readable_name<S>,  // what status, state and tree show: the same on every compiler
          interface::size,
          interface::template index_of<down_message>,
          interface::template index_of<exit_message>,
          parts::handlers.data(),
          parts::discards.data(),
          interface::message_names.data(),
          interface::vsn,
          interface::lineage.data(),
          parts::since.data(),
          argument_fingerprint<init_argument<Implementation>>,
          argument_spelling<init_argument<Implementation>>,
          plain_data<S>(),
          &init_state<Implementation>,
          &terminate_state<Implementation>,
          &destroy_state<Implementation>,
          &change_code<Implementation>,
          &down<Implementation>,
          &state_bytes<S>,
          inspect_of<Implementation>()};
}

// A class, not a function, reports the error: clang takes a function whose instantiation failed
// for one that cannot be evaluated, and would report every constant computed from it too.
template <class Implementation>
struct checked_table {
  static_assert(sizeof(error_of<implementation_check<Implementation>>) != 0);  // the first mistake, once
  static constexpr implementation_table table = [] {
    if constexpr (fine<implementation_check<Implementation>>)
      return make_table<Implementation>();
    else
      return implementation_table{};
  }();
};

}  // namespace hotswap::detail
