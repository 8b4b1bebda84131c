// Supervisors, as Erlang's: a server that starts children in order, restarts them when they
// end by its strategy and their restart type, gives up (and ends itself, which its own
// supervisor sees) when restarts come faster than its intensity allows, and stops its children
// in reverse order when it stops.
//
//     auto root = hotswap::start_supervisor({.strategy = hotswap::strategy::one_for_one},
//                                           {hotswap::child<CounterV1>("counter", {.name = "counter"})});
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "detail/common/std_algorithm.hpp"
#include "detail/common/std_parts.hpp"
#include "detail/servers/supervisor.hpp"
#include "servers.hpp"

namespace hotswap {

// -- children --

/// What else a supervisor restarts when one child ends.
enum class strategy {
  one_for_one,   ///< that child only
  one_for_all,   ///< every child: the others are stopped (in reverse order) and all started again
  rest_for_one,  ///< that child and those started after it
};

/// When a child is restarted.
enum class restart {
  permanent,  ///< always
  transient,  ///< only when it crashed
  temporary,  ///< never (it is forgotten when it ends)
};

/// How to start and restart one child.
struct child_spec {
  std::string id;
  std::function<result<any_server>()> start;
  hotswap::restart restart = restart::permanent;
  std::chrono::milliseconds shutdown = default_timeout;  ///< how long stopping it may take
};

/// A child running `Implementation`, started with `options` (its init takes no argument).
template <class Implementation>
child_spec child(std::string id, start_options options = {}, restart restart_type = restart::permanent) {
  return {std::move(id),
          [options]() -> result<any_server> {
            auto started = start<Implementation>(options);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

// -- supervisors --

struct supervisor_flags {
  hotswap::strategy strategy = strategy::one_for_one;
  int intensity = 1;                       ///< at most this many restarts (0 or more) ...
  std::chrono::milliseconds period{5000};  ///< ... in this period (more than 0), else the supervisor gives up
};

/// A child as which_children reports it.
struct child_info {
  std::string id;
  any_server server;                       ///< empty while not running
  int restarts = 0;                        ///< how often it was restarted
  std::optional<exit_reason> last_exit{};  ///< how it last ended, if it has
};
struct which_children {};

/// What a supervisor answers to.
using supervisor_interface = interface<"hotswap.supervisor", call_msg<which_children, std::vector<child_info>>,
                                       info_msg<detail::child_exited>, info_msg<detail::restart_again>>;

// What follows is templated on the supervisor's implementation only so that a program that
// never starts a supervisor does not compile one.

/// Starts a supervisor: its children start in order (if one fails, those started are stopped
/// and the supervisor does not start). Flags with an intensity below 0 or a period not above 0
/// are refused (errc::bad_flags), as OTP refuses them.
template <class Implementation = detail::supervisor_implementation<>>
result<server_ref<supervisor_interface>> start_supervisor(supervisor_flags flags, std::vector<child_spec> children,
                                                          start_options options = {});

/// A supervisor as a child of another.
template <class Implementation = detail::supervisor_implementation<>>
child_spec supervisor_child(std::string id, supervisor_flags flags, std::vector<child_spec> children,
                            restart restart_type = restart::permanent);

// -- applications --

template <class Implementation = detail::supervisor_implementation<>>
class basic_application {
 public:
  /// Starts the children in order, under a supervisor registered as `name`.
  static result<basic_application> start(std::string name, supervisor_flags flags, std::vector<child_spec> children) {
    auto root = start_supervisor<Implementation>(flags, std::move(children), {.name = std::move(name)});
    if (!root) return root.error();
    return basic_application(std::move(*root));
  }
  /// Stops every child, last started first, then the supervisor.
  result<void> stop(std::chrono::nanoseconds timeout = default_timeout) { return hotswap::stop(root_, timeout); }
  /// False once stopped, or once the top supervisor gave up.
  bool running() const noexcept { return root_.alive(); }
  const server_ref<supervisor_interface>& supervisor() const noexcept { return root_; }

 private:
  explicit basic_application(server_ref<supervisor_interface> root) : root_(std::move(root)) {}
  server_ref<supervisor_interface> root_;
};

/// An application: a top supervisor started from an ordered children list, stopped in reverse.
using application = basic_application<>;

}  // namespace hotswap

#include "impl/supervisors.hpp"
