// What a supervisor's own implementation is told by itself (a restart to try again; a child's
// end comes as any monitor's down), named by supervisor_interface and
// dynamic_supervisor_interface; those implementations, declared (impl/supervisors.hpp defines
// them); and how a supervisor starts a child, marked as its own (start_supervised).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../../result.hpp"
#include "../runtime/runtime.hpp"

namespace hotswap::detail {

/// A restart that failed, tried again (as OTP's try_again_restart): the child, by its id (an
/// index would name another child once one before it is deleted).
struct restart_again {
  std::string id;
};
/// The same for a dynamic supervisor's child, by the server it last ran as.
struct restart_dynamic_again {
  std::uint64_t server;
};

/// The supervisor's own implementation (a template only to be compiled when used).
template <class = void>
struct supervisor_implementation;

/// The dynamic supervisor's.
template <class = void>
struct dynamic_supervisor_implementation;

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
