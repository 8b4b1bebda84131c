// Timers of servers: a message sent after a delay or every period, by the runtime's timer thread.
#pragma once

#include <type_traits>
#include <utility>

#include "../abi/envelope.hpp"
#include "../abi/image.hpp"
#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"
#include "../common/verdict.hpp"
#include "../runtime/runtime.hpp"
#include "interface.hpp"
#include "interface_versions.hpp"

namespace hotswap {
template <class Interface>
class server_ref;  // hotswap/servers.hpp
}  // namespace hotswap

namespace hotswap::detail {

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
      bytes.kind = sent_as<Interface, T>::kind;  // in place: packed as any message
      return the_runtime().timers.add(delay, period, *to.core(), bytes);
    }
  }
  return the_runtime().timers.add(
      delay, period,
      [to, message = T(std::forward<M>(message)), repeats = period.count() > 0]() mutable {
        return repeats ? send(to, message) : send(to, std::move(message));
      },
      pin_this_image(), to.core());
}

}  // namespace hotswap::detail
