// What a supervisor's own implementation is told by itself (a child exited, a restart to try
// again), named by supervisor_interface; and that implementation, declared (impl/supervisors.hpp
// defines it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../../result.hpp"

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

}  // namespace hotswap::detail
