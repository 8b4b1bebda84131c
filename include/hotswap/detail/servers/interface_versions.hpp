// Interfaces that evolve: an interface that lists hotswap::follows<Previous> first is the next
// version of Previous, as a schema lists its versions. Its messages keep their places (slots):
// a slot is a message's number on the wire, the same in every version, so that a client built
// against an older version keeps calling a server that runs a newer one. A listed message whose
// type (or reply) is a later version of a slot's schema replaces it in its slot; a new message
// takes a new slot at the end; hotswap::removed_msg<M> empties M's slot; a message not listed is
// kept. Each slot knows the vsn its kind dates from (`since`) and what it was before, so that a
// handler can take any version of its message, and answer any version of its reply.
// Cost, for an interface that follows none: one `slot` instantiation per message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../abi/envelope.hpp"
#include "../common/fixed_string.hpp"
#include "../common/hash.hpp"
#include "../common/type_list.hpp"
#include "../common/type_name.hpp"
#include "../common/verdict.hpp"
#include "../migrations/checks.hpp"
#include "../migrations/context.hpp"
#include "../schemas/field_kinds.hpp"
#include "interface.hpp"

namespace hotswap {
template <class Previous>
struct follows;  // hotswap/servers.hpp
template <class Message>
struct removed_msg;  // hotswap/servers.hpp
}  // namespace hotswap

namespace hotswap::errors {
template <class Interface, class Message, class Was, class Is>
struct message_changes_kind {
  static_assert(reported<message_changes_kind>,
                "hotswap: a later interface takes a message of its previous version as the same kind (Was: a "
                "call stays a call, with a reply); declare another message for the new kind");
};
template <class Interface, class Message, class Was>
struct message_goes_back_a_version {
  static_assert(reported<message_goes_back_a_version>,
                "hotswap: a later interface takes a message as the same or a later version of its schema than "
                "its previous version (Was)");
};
template <class Interface, class Message, class Was, class Is>
struct reply_changes_type {
  static_assert(reported<reply_changes_type>,
                "hotswap: a call's reply may change, in a later interface, only to a later version of its "
                "schema (Was, Is): the reply is migrated down for the callers built against the earlier one");
};
template <class Interface, class Message, class Mistake>
struct message_does_not_migrate {
  static_assert(reported<message_does_not_migrate>,
                "hotswap: a message of an earlier interface must migrate up to the later one's, and a later reply "
                "down to the earlier one's, by the schema's generated steps (Mistake says why not; a step's rules "
                "can say what it cannot infer)");
};
template <class Interface, class Message>
struct removed_message_is_not_in_the_previous_version {
  static_assert(reported<removed_message_is_not_in_the_previous_version>,
                "hotswap: hotswap::removed_msg<M> names a message the previous interface takes");
};
template <class Interface, class Previous>
struct later_interface_is_renamed {
  static_assert(reported<later_interface_is_renamed>,
                "hotswap: a later version of an interface keeps its name (Previous is the version before)");
};
template <class Old, class New, class FirstMessageNotKept>
struct interface_does_not_follow {
  static_assert(reported<interface_does_not_follow>,
                "hotswap: New is not a later version of Old: list hotswap::follows<Old> first in New's messages "
                "(FirstMessageNotKept is the first of Old's messages New does not take as Old sends it; void: "
                "none, but the slots are numbered anew without the declaration)");
};
}  // namespace hotswap::errors

namespace hotswap::detail {

// -- slots --

/// Joins type lists (a fold over +).
template <class... A, class... B>
constexpr type_list<A..., B...> operator+(type_list<A...>, type_list<B...>) {
  return {};
}

/// What a slot held from interface vsn `Vsn` on (until the next entry, or the slot's own kind).
template <std::uint32_t Vsn, class Kind>
struct slot_version {
  static constexpr std::uint32_t vsn = Vsn;
  using kind = Kind;
};

/// An emptied slot (hotswap::removed_msg): it takes no message of its own, so that sending the
/// removed message with a handle of the later version does not compile.
template <class Kind>
struct gone {
  using message = gone;
  using was = Kind;
  static constexpr message_kind kind = Kind::kind;
};
template <class Kind>
inline constexpr bool is_gone = false;
template <class Kind>
inline constexpr bool is_gone<gone<Kind>> = true;

/// A message's place: its kind now (or gone), the vsn it dates from, and the earlier
/// slot_versions, oldest first.
template <class Kind, std::uint32_t Since, class... Earlier>
struct slot {
  using kind = Kind;
  static constexpr std::uint32_t since = Since;
  using earlier = type_list<Earlier...>;
  template <std::uint32_t Vsn, class Next>
  using changed_to = slot<Next, Vsn, Earlier..., slot_version<Since, Kind>>;
};

// -- the wire (detail/abi/envelope.hpp) --

/// Calls `with(std::type_identity<Kind>{})` for the kind `Slot` held at sent vsn `vsn` (0: the
/// kind now); false if it held none then.
template <class Slot, class With>
constexpr bool with_sent_kind(std::uint32_t vsn, With&& with) {
  if constexpr (!is_gone<typename Slot::kind>) {
    if (vsn == 0 || vsn == Slot::since) {
      with(std::type_identity<typename Slot::kind>{});
      return true;
    }
  }
  return [&]<class... Earlier>(type_list<Earlier...>) {
    return ((Earlier::vsn == vsn && (with(std::type_identity<typename Earlier::kind>{}), true)) || ...);
  }(typename Slot::earlier{});
}

template <std::size_t I, class List>
struct list_at;
template <std::size_t I, class... T>
struct list_at<I, type_list<T...>> {
  using type = std::tuple_element_t<I, std::tuple<T...>>;
};
/// Slot `I` of `Interface`.
template <class Interface, std::size_t I>
using slot_at = typename list_at<I, typename Interface::slots>::type;

/// How message `M` travels to a server of `Interface`: its slot, and the kind word it carries.
template <class Interface, class M>
struct sent_as {
  static constexpr std::uint32_t index = Interface::template index_of<M>;
  static constexpr std::uint32_t since = [] {
    if constexpr (index < Interface::size)
      return slot_at<Interface, index>::since;
    else
      return 1u;  // not a message it takes: reported by the send's own check
  }();
  static constexpr std::uint32_t kind =
      index | since << vsn_shift | (self_disposing<std::remove_cvref_t<M>>(since) ? boxed_bit : 0);
};

// -- a later version's slots --

/// Whether `A` is `B` or another version of the same schema.
template <class A, class B>
constexpr bool same_message() {
  if constexpr (std::is_same_v<A, B>)
    return true;
  else if constexpr (field_kind_of<A> == field_kind::version && field_kind_of<B> == field_kind::version)
    return schema_of<A>::name == schema_of<B>::name;
  else
    return false;
}

template <class Entry>
inline constexpr bool is_removal = false;
template <class Message>
inline constexpr bool is_removal<removed_msg<Message>> = true;

/// Whether `Entry` of a later interface is about the live slot `Slot` of the one before.
template <class Entry, class Slot>
constexpr bool entry_is_about() {
  if constexpr (is_gone<typename Slot::kind>)
    return false;
  else if constexpr (is_removal<Entry>)
    return std::is_same_v<typename Entry::message, typename Slot::kind::message>;
  else
    return same_message<typename Entry::message, typename Slot::kind::message>();
}

template <class Slot, class... Entries>
constexpr std::size_t entry_about() {
  constexpr bool match[] = {entry_is_about<Entries, Slot>()..., false};
  std::size_t i = 0;
  while (i < sizeof...(Entries) && !match[i]) ++i;
  return i;
}

template <class Kind, class Other>
inline constexpr bool same_kind = [] {
  if constexpr (Kind::kind != Other::kind)
    return false;
  else if constexpr (Kind::kind == message_kind::call)
    return std::is_same_v<typename Kind::message, typename Other::message> &&
           std::is_same_v<typename Kind::reply, typename Other::reply>;
  else
    return std::is_same_v<typename Kind::message, typename Other::message>;
}();

/// What slot `Slot` of the version before becomes in version `Vsn`, whose entries are `Entries`.
template <std::uint32_t Vsn, class Slot, class... Entries>
constexpr auto next_slot() {
  constexpr std::size_t about = entry_about<Slot, Entries...>();
  if constexpr (about == sizeof...(Entries)) {
    return std::type_identity<Slot>{};  // not listed: kept
  } else {
    using Entry = std::tuple_element_t<about, std::tuple<Entries...>>;
    if constexpr (is_removal<Entry>)
      return std::type_identity<typename Slot::template changed_to<Vsn, gone<typename Slot::kind>>>{};
    else if constexpr (same_kind<Entry, typename Slot::kind>)
      return std::type_identity<Slot>{};  // listed again as it was
    else
      return std::type_identity<typename Slot::template changed_to<Vsn, Entry>>{};
  }
}

/// Whether entry `Entry` of version `Vsn` takes a slot of the version before.
template <class Entry, class... Slots>
constexpr bool entry_has_a_slot() {
  return (entry_is_about<Entry, Slots>() || ...);
}

template <std::uint32_t Vsn, class Previous, class Entries>
struct later_slots;
template <std::uint32_t Vsn, class... Slots, class... Entries>
struct later_slots<Vsn, type_list<Slots...>, type_list<Entries...>> {
  template <class Entry>
  using added = std::conditional_t<is_removal<Entry> || entry_has_a_slot<Entry, Slots...>(), type_list<>,
                                   type_list<slot<Entry, Vsn>>>;
  using type =
      decltype((type_list<typename decltype(next_slot<Vsn, Slots, Entries...>())::type...>{} + ... + added<Entries>{}));
};

// -- the layout of a version --

/// What traces and reports call a slot's message (an emptied one, by the message it took).
template <class Kind>
constexpr std::string_view slot_name() {
  if constexpr (is_gone<Kind>)
    return type_spelling<typename Kind::was::message>();
  else
    return type_spelling<typename Kind::message>();
}

/// An interface's slots, their kinds, and its place in its line: the layout hotswap::interface
/// reads. `Previous` is void for a first version.
template <class Previous, class Slots>
struct slot_layout;
template <class Previous, class... Slots>
struct slot_layout<Previous, type_list<Slots...>> {
  using previous = Previous;
  using slots = type_list<Slots...>;
  static constexpr std::uint32_t vsn = [] {
    if constexpr (std::is_void_v<Previous>)
      return 1u;
    else
      return Previous::vsn + 1;
  }();
  static constexpr std::uint32_t size = sizeof...(Slots);
  static_assert(size < slot_bits && vsn < (boxed_bit >> vsn_shift),
                "hotswap: an interface has fewer than 65535 messages, and 32767 versions");
  template <class Message>
  static constexpr std::uint32_t index_of = index_in<Message, typename Slots::kind...>();
  template <std::size_t I>
  using slot_at = std::tuple_element_t<I, std::tuple<Slots...>>;
  static constexpr std::array<std::string_view, sizeof...(Slots)> message_names{slot_name<typename Slots::kind>()...};
};

template <fixed_string Name, class... Kinds>
struct interface_layout : slot_layout<void, type_list<slot<Kinds, 1>...>> {
  /// The slots' kinds now, the emptied ones left out: what an implementation handles.
  using live_kinds = type_list<Kinds...>;
  /// A hash of the name, and of each message's kind, name and fields (and reply) in order.
  static constexpr std::uint64_t fingerprint = [] {
    std::uint64_t hash = fnv1a(Name.view());
    ((hash = kind_hash<Kinds>(fnv1a(";", hash))), ...);
    return hash;
  }();
  static constexpr std::array<std::uint64_t, 1> lineage{fingerprint};
};

/// A vsn as its decimal digits, for a fingerprint.
template <std::uint32_t Vsn>
inline constexpr auto vsn_text = [] {
  std::array<char, 10> digits{};
  std::size_t size = 0;
  for (std::uint32_t v = Vsn; v; v /= 10) digits[size++] = static_cast<char>('0' + v % 10);
  std::array<char, 11> text{};  // and a NUL
  for (std::size_t i = 0; i < size; ++i) text[i] = digits[size - 1 - i];
  return text;
}();

template <class Kind>
constexpr std::uint64_t slot_hash(std::uint64_t hash) {
  if constexpr (is_gone<Kind>)
    return kind_hash<typename Kind::was>(fnv1a("removed:", hash));
  else
    return kind_hash<Kind>(hash);
}

template <fixed_string Name, class Previous, class... Entries>
struct interface_layout<Name, follows<Previous>, Entries...>
    : slot_layout<Previous,
                  typename later_slots<Previous::vsn + 1, typename Previous::slots, type_list<Entries...>>::type> {
  using base =
      slot_layout<Previous,
                  typename later_slots<Previous::vsn + 1, typename Previous::slots, type_list<Entries...>>::type>;
  using live_kinds = decltype([]<class... Slots>(type_list<Slots...>) {
    return (type_list<>{} + ... +
            std::conditional_t<is_gone<typename Slots::kind>, type_list<>, type_list<typename Slots::kind>>{});
  }(typename base::slots{}));
  /// The version before's, then each slot's vsn and kind (the emptied ones' too), in order.
  static constexpr std::uint64_t fingerprint = []<class... Slots>(type_list<Slots...>) {
    std::uint64_t hash = fnv1a(" follows ", fnv1a(Name.view(), Previous::fingerprint));
    ((hash = slot_hash<typename Slots::kind>(fnv1a(";", fnv1a(std::string_view(vsn_text<Slots::since>.data()), hash)))),
     ...);
    return hash;
  }(typename base::slots{});
  static constexpr auto lineage = [] {
    std::array<std::uint64_t, Previous::lineage.size() + 1> line{};
    for (std::size_t i = 0; i < Previous::lineage.size(); ++i) line[i] = Previous::lineage[i];
    line.back() = fingerprint;
    return line;
  }();
};

// -- checks --

/// Whether `Now` is an earlier version of the schema of `Was` (both versions of one schema).
template <class Was, class Now>
constexpr bool goes_back() {
  if constexpr (std::is_same_v<Was, Now>)
    return false;
  else
    return version_number<Was> > version_number<Now>;
}

/// What is wrong with a later version's change of slot `Slot` (no_error if nothing).
template <class Interface, class Slot>
constexpr auto check_slot() {
  if constexpr (Slot::earlier::size == 0 || is_gone<typename Slot::kind>) {
    return verdict<no_error>{};
  } else {
    using Before = typename decltype([]<class... Earlier>(type_list<Earlier...>) {
      return std::type_identity<std::tuple_element_t<sizeof...(Earlier) - 1, std::tuple<Earlier...>>>{};
    }(typename Slot::earlier{}))::type::kind;
    using Now = typename Slot::kind;
    using M = typename Now::message;
    using Name = interface_name<Interface>;
    if constexpr (is_gone<Before> || Before::kind != Now::kind) {
      return verdict<errors::message_changes_kind<Name, M, Before, Now>>{};
    } else if constexpr (goes_back<typename Before::message, M>()) {
      return verdict<errors::message_goes_back_a_version<Name, M, typename Before::message>>{};
    } else {
      using up = migration_check<typename Before::message, M, context<no_extra, no_key>>;
      if constexpr (!fine<up>) {
        return verdict<errors::message_does_not_migrate<Name, M, error_of<up>>>{};
      } else if constexpr (Now::kind == message_kind::call) {
        using Was = typename Before::reply;
        using Is = typename Now::reply;
        if constexpr (std::is_same_v<Was, Is>) {
          return verdict<no_error>{};
        } else if constexpr (!same_message<Was, Is>()) {
          return verdict<errors::reply_changes_type<Name, M, Was, Is>>{};
        } else if constexpr (goes_back<Was, Is>()) {
          return verdict<errors::reply_changes_type<Name, M, Was, Is>>{};
        } else {
          using down = migration_check<Is, Was, context<no_extra, no_key>>;
          if constexpr (!fine<down>)
            return verdict<errors::message_does_not_migrate<Name, M, error_of<down>>>{};
          else
            return verdict<no_error>{};
        }
      } else {
        return verdict<no_error>{};
      }
    }
  }
}

/// Whether `Entry` is no removal, or one of a message of the version before.
template <class Entry, class... Slots>
constexpr bool removal_found(type_list<Slots...>) {
  return !is_removal<Entry> || (entry_is_about<Entry, Slots>() || ...);
}

template <class Interface, class Previous, class... Entries>
constexpr auto check_later() {
  using Name = interface_name<Interface>;
  if constexpr (Previous::name != Interface::name) {
    return verdict<errors::later_interface_is_renamed<Name, interface_name<Previous>>>{};
  } else {
    constexpr bool found[] = {removal_found<Entries>(typename Previous::slots{})..., false};
    constexpr std::size_t stray = [&] {
      std::size_t i = 0;
      while (found[i]) ++i;
      return i;
    }();
    if constexpr (stray < sizeof...(Entries))
      return verdict<errors::removed_message_is_not_in_the_previous_version<
          Name, typename std::tuple_element_t<stray, std::tuple<Entries...>>::message>>{};
    else
      return []<class... Slots>(type_list<Slots...>) {
        return first_of<decltype(check_slot<Interface, Slots>())...>{};
      }(typename Interface::slots{});
  }
}

/// The check of an interface when it is defined: each message listed once, and for a later
/// version, each change allowed.
template <class Interface, class... Kinds>
constexpr auto check_versions(std::type_identity<Kinds>...) {
  return verdict<no_error>{};
}
template <class Interface, class Previous, class... Entries>
constexpr auto check_versions(std::type_identity<follows<Previous>>, std::type_identity<Entries>...) {
  return check_later<Interface, Previous, Entries...>();
}

/// Whether a handle of `Old` may talk to a server that runs `New`: `New` is `Old`, or a later
/// version of it.
template <class Old, class New>
inline constexpr bool follows_from = Old::vsn <= New::vsn&& New::lineage[Old::vsn - 1] == Old::fingerprint;

template <class Old, class New>
constexpr auto check_compatible() {
  if constexpr (follows_from<Old, New>) {
    return verdict<no_error>{};
  } else {
    constexpr std::size_t first = []<class... Kinds>(type_list<Kinds...>) {
      constexpr bool kept[] = {[] {
                                 constexpr auto index = New::template index_of<typename Kinds::message>;
                                 if constexpr (index == New::size)
                                   return false;
                                 else
                                   return same_kind<Kinds, typename New::template kind_at<index>>;
                               }()...,
                               false};
      std::size_t i = 0;
      while (i < sizeof...(Kinds) && kept[i]) ++i;
      return i;
    }(typename Old::kinds{});
    using Message = decltype([]<class... Kinds>(type_list<Kinds...>) {
      if constexpr (first < sizeof...(Kinds))
        return std::type_identity<typename std::tuple_element_t<first, std::tuple<Kinds...>>::message>{};
      else
        return std::type_identity<void>{};
    }(typename Old::kinds{}));
    return verdict<
        errors::interface_does_not_follow<interface_name<Old>, interface_name<New>, typename Message::type>>{};
  }
}

// A class, not a variable's initializer, reports it: clang takes a variable whose initializer
// failed for one that is not a constant, a second error.
template <class Old, class New>
struct compatibility {
  static_assert(sizeof(error_of<decltype(check_compatible<Old, New>())>) != 0);  // the first message not kept, once
  static constexpr bool value = true;
};

}  // namespace hotswap::detail
