// One message as it travels between servers, program and modules alike: a kind, a reply slot and
// the message, in place or boxed.
#pragma once

#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

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

}  // namespace hotswap::detail
