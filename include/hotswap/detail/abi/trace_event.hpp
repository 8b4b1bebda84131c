// One message going into or out of a server, as the runtime hands it to a sys::trace hook (which
// may be a module's code): hotswap::trace_event.
#pragma once

#include <cstdint>
#include <string_view>

namespace hotswap::detail {

/// One message going into or out of a server (hotswap::trace_event).
struct trace_event {
  enum direction { in, out } way;
  std::string_view message;  ///< the message type (valid during the hook's call only)
  std::uint64_t server;      ///< the server's id
};

}  // namespace hotswap::detail
