// Sending: a message packed before the mailbox is touched (whatever can throw happens first), a
// cast or an info checked against the interface, and a call that waits for its reply.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "../../result.hpp"
#include "../abi/envelope.hpp"
#include "../common/std_parts.hpp"
#include "../common/verdict.hpp"
#include "../runtime/reply_slot.hpp"
#include "../runtime/runtime.hpp"
#include "../runtime/server_core.hpp"
#include "interface.hpp"
#include "interface_versions.hpp"

namespace hotswap {
template <class Interface>
class server_ref;  // hotswap/servers.hpp
}  // namespace hotswap

namespace hotswap::detail {

/// A message packed for an envelope before the mailbox is touched: whatever can throw
/// (allocating a boxed message) happens here.
template <class M>
class packed {
 public:
  /// Packed as kind word `kind` says (detail/abi/envelope.hpp).
  template <class T>
  packed(std::uint32_t kind, T&& message) : kind_(kind) {
    pack_sent<M>(bytes_, kind, std::forward<T>(message));
  }
  ~packed() {
    if (!sent_) discard_sent<M>(bytes_, kind_);
  }
  packed(const packed&) = delete;
  packed& operator=(const packed&) = delete;
  bool send(server_core& to, void* reply) {
    sent_ = to.deliver([&](envelope& into) noexcept {
      std::memcpy(into.payload, bytes_.payload, sizeof bytes_.payload);
      into.kind = kind_;
      into.reply = reply;
    });
    return sent_;
  }

 private:
  envelope bytes_{};
  std::uint32_t kind_;
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
    using sent = sent_as<Interface, T>;
    if constexpr (sent::since > 1)  // a server downgraded below the message's version refuses it
      if (!to.core()->takes(sent::since)) return false;
    return packed<T>(sent::kind, std::forward<M>(message)).send(*to.core(), nullptr);
  }
}

template <class = void>
void before_parking() {
  worker_pool* pool = building_module ? the_runtime().this_thread_pool() : worker_pool::this_thread_pool();
  if (pool) pool->blocking();
}

/// Sends `message` as a call (its kind word: `kind`) and waits for its reply of type `R`, at
/// most `timeout`.
template <class R, class M>
result<R> call_server(server_core& to, std::uint32_t kind, M&& message, std::chrono::nanoseconds timeout) {
  using T = std::remove_cvref_t<M>;
  if (&to == current_server()) return error{errc::calling_self, "it would wait for itself"};
  cached_slot<R> slot;
  reply_slot_base* const reply = slot.get();  // what the receiver casts the envelope's pointer back to
  if (!packed<T>(kind, std::forward<M>(message)).send(to, reply)) return error{errc::no_server, {}};
  if (!slot.get()->wait(timeout, before_parking<>)) {
    slot.abandon();
    return error{errc::timeout, "no reply within " + std::to_string(timeout.count() / 1'000'000) + " ms"};
  }
  if (!slot.get()->value) return slot.get()->failure;
  return std::move(*slot.get()->value);
}

}  // namespace hotswap::detail
