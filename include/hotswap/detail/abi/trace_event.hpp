// One message going into or out of a server, or failing in its handler, as the runtime hands it
// to a sys::trace hook (which may be a module's code): hotswap::trace_event.
#pragma once

#include <cstdint>
#include <string_view>

#include "../common/std_memory.hpp"
#include "../common/std_parts.hpp"

namespace hotswap::detail {

/// One message going into or out of a server, or whose handler threw (hotswap::trace_event).
struct trace_event {
  enum direction { in, out, failed } way;
  std::string_view message;   ///< the message type (valid during the hook's call only)
  std::uint64_t server;       ///< the server's id
  std::string_view why = {};  ///< `failed`: what the handler threw (valid during the call only)
};

/// A server's trace hook with what keeps its code loaded (a module's), as sys::trace sets it and
/// hands back the one it replaced (hotswap::sys::trace_hook).
struct trace_hook {
  std::shared_ptr<const void> code;  // declared first: released after `call`
  std::function<void(const trace_event&)> call;
};

}  // namespace hotswap::detail
