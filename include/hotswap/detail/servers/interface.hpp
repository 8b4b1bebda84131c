// Interfaces: a message's fingerprint, an interface's check (each message listed once), and
// whether a message may be sent to an interface as a call, a cast or an info.
// Cost: one fingerprint per message type (a hash of its description, or of its fields' names
// and fingerprints); index_in is a constant fold over the interface's kinds, not a recursion.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../common/fixed_string.hpp"
#include "../common/hash.hpp"
#include "../common/type_name.hpp"
#include "../common/verdict.hpp"
#include "../reflect/fields.hpp"
#include "../schemas/describe.hpp"

namespace hotswap {
template <detail::fixed_string Name, class... Kinds>
struct interface;  // hotswap/servers.hpp

// The errors name the interface as errors::interface_named<'C', 'o', ...>: clang prints the
// interface's own name argument as character codes.
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
}  // namespace hotswap

namespace hotswap::detail {

/// Whether a message is a call, a cast or an info (call_msg, cast_msg, info_msg say which).
enum class message_kind { call, cast, info };

/// A message's fingerprint: its canonical description, or for a plain struct its name and its
/// fields' names and fingerprints.
template <class T>
constexpr std::uint64_t message_hash(std::uint64_t hash) {
  if constexpr (describable<T>()) {
    return fnv1a(description<T>, hash);
  } else if constexpr (std::is_class_v<T> && std::is_aggregate_v<T>) {
    hash = fnv1a("{", fnv1a(type_spelling<T>(), hash));
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((hash = message_hash<field_type<T, I>>(fnv1a(":", fnv1a(field_names<T>[I], hash)))), ...);
    }
    (std::make_index_sequence<field_count<T>>{});
    return fnv1a("}", hash);
  } else {
    return fnv1a(type_spelling<T>(), hash);
  }
}

/// The fingerprint of a state or extra type: canonical when describable, else its spelling
/// (such a state can only be handed on to an implementation with the very same state type).
template <class T>
inline constexpr std::uint64_t value_fingerprint = [] {
  if constexpr (describable<T>())
    return fnv1a(description<T>);
  else
    return fnv1a(type_spelling<T>());
}();

template <class Kind>
constexpr std::uint64_t kind_hash(std::uint64_t hash) {
  using M = typename Kind::message;
  if constexpr (Kind::kind == message_kind::call)
    return message_hash<typename Kind::reply>(message_hash<M>(fnv1a("call:", hash)));
  else if constexpr (Kind::kind == message_kind::cast)
    return message_hash<M>(fnv1a("cast:", hash));
  else
    return message_hash<M>(fnv1a("info:", hash));
}

template <class Message, class... Kinds>
constexpr std::size_t index_in() {
  constexpr bool match[] = {std::is_same_v<typename Kinds::message, Message>..., false};
  std::size_t i = 0;
  while (i < sizeof...(Kinds) && !match[i]) ++i;
  return i;
}

/// An interface's name as errors spell it (read from its arguments: also while it is defined).
template <class Interface>
struct interface_name_of;
template <fixed_string Name, class... Kinds>
struct interface_name_of<interface<Name, Kinds...>> {
  using type = spelled<errors::interface_named, Name>;
};
template <class Interface>
using interface_name = typename interface_name_of<Interface>::type;

template <class Interface, class... Kinds, std::size_t... I>
constexpr auto check_interface(std::index_sequence<I...>) {
  return first_of<verdict<
      std::conditional_t<index_in<typename Kinds::message, Kinds...>() == I, no_error,
                         errors::message_listed_twice<interface_name<Interface>, typename Kinds::message>>>...>{};
}

template <class T>
inline constexpr bool is_interface = false;
template <fixed_string Name, class... Kinds>
inline constexpr bool is_interface<interface<Name, Kinds...>> = true;

/// Whether `Message` may be sent to `Interface` as a `Kind`.
template <class Interface, class Message, message_kind Kind>
constexpr auto check_sent() {
  using M = std::remove_cvref_t<Message>;
  constexpr auto index = Interface::template index_of<M>;
  if constexpr (index == Interface::size) {
    return verdict<errors::message_is_not_in_the_interface<interface_name<Interface>, M>>{};
  } else {
    using declared = typename Interface::template kind_at<index>;
    if constexpr (declared::kind != Kind)
      return verdict<errors::message_sent_the_wrong_way<interface_name<Interface>, M, declared>>{};
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
  if constexpr (index == Interface::size)
    return std::type_identity<not_a_call>{};
  else if constexpr (Interface::template kind_at<index>::kind != message_kind::call)
    return std::type_identity<not_a_call>{};
  else
    return std::type_identity<typename Interface::template kind_at<index>::reply>{};
}

}  // namespace hotswap::detail
