// One message as it travels between servers, program and modules alike: a kind, a reply slot and
// the message, in place or boxed.
#pragma once

#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "image.hpp"

namespace hotswap::detail {

/// One message as it travels: what it is (an index in the server's interface, or a control
/// request), a pointer for the reply or the control request, and the message itself: in place
/// when it is small and trivially copyable, else a pointer to it on the heap.
struct alignas(32) envelope {
  std::uint32_t ready;  // in a mailbox slot: set (atomically) once the rest is written
  std::uint32_t kind;
  void* reply;
  alignas(8) unsigned char payload[16];
};

template <class T>
inline constexpr bool stored_in_place = std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(envelope::payload) &&
                                        alignof(T) <= 8;

/// Puts `message` into an envelope's payload.
template <class T>
void pack(envelope& into, T&& message) {
  using M = std::remove_cvref_t<T>;
  if constexpr (stored_in_place<M>) {
    ::new (static_cast<void*>(into.payload)) M(std::forward<T>(message));
  } else {
    M* boxed = new M(std::forward<T>(message));
    std::memcpy(into.payload, &boxed, sizeof boxed);
  }
}

/// The message in an envelope.
template <class T>
T& unpack(envelope& from) {
  if constexpr (stored_in_place<T>) {
    return *std::launder(reinterpret_cast<T*>(from.payload));
  } else {
    T* boxed;
    std::memcpy(&boxed, from.payload, sizeof boxed);
    return *boxed;
  }
}

/// Ends the message's life (once handled, or dropped undelivered).
template <class T>
void discard(envelope& from) noexcept {
  if constexpr (stored_in_place<T>)
    unpack<T>(from).~T();
  else
    delete &unpack<T>(from);
}

/// A boxed message that says how to free it: what a message of a later interface version than
/// the first travels in, so that a server downgraded below it (whose code cannot name its type)
/// can free it. `pin` keeps the sender's code (its image) loaded while the box lives.
struct message_box {
  void (*free)(message_box* box) noexcept;
  std::shared_ptr<const void> pin;
};
template <class M>
struct message_box_of : message_box {
  template <class T>
  explicit message_box_of(T&& message)
      : message_box{[](message_box* box) noexcept { delete static_cast<message_box_of*>(box); }, pin_this_image()},
        value(std::forward<T>(message)) {}
  M value;
};

// -- the kind word, and messages of later interface versions --

/// A message's kind word (envelope::kind): its slot in the interface, the interface vsn the
/// type the sender packed dates from (its slot's `since`, detail/servers/interface_versions.hpp;
/// the runtime's own messages, down, exit and responses, say 0: the receiver's current type), and
/// whether it travels in a message_box (below).
inline constexpr std::uint32_t slot_bits = 0xffff;
inline constexpr std::uint32_t vsn_shift = 16;
inline constexpr std::uint32_t boxed_bit = 1u << 31;
constexpr std::uint32_t slot_of(std::uint32_t kind) noexcept {
  return kind & slot_bits;
}
constexpr std::uint32_t sent_vsn_of(std::uint32_t kind) noexcept {
  return (kind & ~boxed_bit) >> vsn_shift;
}

/// Whether a message of a slot dating from interface vsn `since` travels in a message_box that
/// says how to free it (below): one dating from a later version than the first, not in place.
/// A server downgraded below it cannot name its type.
template <class M>
constexpr bool self_disposing(std::uint32_t since) noexcept {
  return since > 1 && !stored_in_place<M>;
}

/// Frees a message box by its own code (the sender's image), the hold on that code let go after,
/// here.
inline void free_box(message_box* box) noexcept {
  const std::shared_ptr<const void> keep = box->pin;
  box->free(box);
}

/// Packs `message` as kind word `kind` says (in a message_box, or as pack does).
template <class M, class T>
void pack_sent(envelope& into, std::uint32_t kind, T&& message) {
  if (!stored_in_place<M> && (kind & boxed_bit)) {
    message_box* box = new message_box_of<M>(std::forward<T>(message));
    std::memcpy(into.payload, &box, sizeof box);
  } else {
    pack(into, std::forward<T>(message));
  }
}
template <class M>
M& unpack_sent(envelope& from) {
  if (!stored_in_place<M> && (from.kind & boxed_bit)) {
    message_box* box;
    std::memcpy(&box, from.payload, sizeof box);
    return static_cast<message_box_of<M>*>(box)->value;
  }
  return unpack<M>(from);
}
template <class M>
void discard_sent(envelope& from, std::uint32_t kind) noexcept {
  if (!stored_in_place<M> && (kind & boxed_bit)) {
    message_box* box;
    std::memcpy(&box, from.payload, sizeof box);
    delete static_cast<message_box_of<M>*>(box);
  } else {
    discard<M>(from);
  }
}

/// Frees a message a server's code cannot name (sent as of a later interface version): a box
/// says how; a message in place is trivially destructible.
inline void discard_unknown(envelope& from) noexcept {
  if (!(from.kind & boxed_bit)) return;
  message_box* box;
  std::memcpy(&box, from.payload, sizeof box);
  free_box(box);
}

}  // namespace hotswap::detail
