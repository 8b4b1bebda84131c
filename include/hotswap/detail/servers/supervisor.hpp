// What a supervisor's own implementation is told by itself (a child exited, a restart to try
// again), named by supervisor_interface; that implementation, declared (impl/supervisors.hpp
// defines it); and how it starts a child, marked as its own (start_supervised).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../../result.hpp"
#include "../runtime/runtime.hpp"

namespace hotswap::detail {

struct child_exited {
  std::uint64_t server;
  exit_reason reason;
};
/// A restart that failed, tried again (as OTP's try_again_restart).
struct restart_again {
  std::size_t child;
};

/// The supervisor's own implementation (a template only to be compiled when used).
template <class = void>
struct supervisor_implementation;

/// Runs `start` (a child spec's start) from a supervisor's handler: the server it starts is
/// marked supervised before it is tracked, so that hotswap::stop_all leaves it to this
/// supervisor (which would restart it) even if it looks at the live servers meanwhile.
template <class Start>
auto start_supervised(const Start& start) {
  struct marking {
    server_core* supervisor;
    ~marking() {
      if (supervisor) supervisor->starting_child = false;
    }
  } mark{current_server()};
  if (mark.supervisor) mark.supervisor->starting_child = true;
  return start();
}

}  // namespace hotswap::detail
