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
#include "servers.hpp"

namespace hotswap {

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

struct supervisor_flags {
  hotswap::strategy strategy = strategy::one_for_one;
  int intensity = 1;                       ///< at most this many restarts (0 or more) ...
  std::chrono::milliseconds period{5000};  ///< ... in this period (more than 0), else the supervisor gives up
};

namespace detail {
struct child_exited {
  std::uint64_t server;
  exit_kind kind;
};
/// A restart that failed, tried again (as OTP's try_again_restart).
struct restart_again {
  std::size_t child;
};

/// Why flags are refused, as OTP refuses them (bad_intensity, bad_period); empty if they are not.
inline std::string refuse_flags(const supervisor_flags& flags) {
  if (flags.intensity < 0) return "the intensity must be 0 or more, not " + std::to_string(flags.intensity);
  if (flags.period.count() <= 0)
    return "the period must be more than 0, not " + std::to_string(flags.period.count()) + " ms";
  return {};
}
}  // namespace detail

/// A child as which_children reports it.
struct child_info {
  std::string id;
  any_server server;  ///< empty while not running
};
struct which_children {};

/// What a supervisor answers to.
using supervisor_interface = interface<"hotswap.supervisor", call_msg<which_children, std::vector<child_info>>,
                                       info_msg<detail::child_exited>, info_msg<detail::restart_again>>;

namespace detail {

struct supervisor_spec {
  supervisor_flags flags;
  std::vector<child_spec> children;
};

struct supervisor_state {
  struct running_child {
    child_spec spec;
    any_server server;
  };
  supervisor_flags flags;
  std::vector<running_child> children;
  std::vector<std::chrono::steady_clock::time_point> restarts;  // at most intensity + 1, oldest first
  server_ref<supervisor_interface> self;
};

/// The supervisor's own implementation. A restart that fails (the child's init throws) counts
/// as a restart and is tried again, as in OTP; restarts beyond the intensity make a handler
/// throw: the supervisor crashes (its terminate stops the children) and its own supervisor
/// decides what follows. (A template only to be compiled when used.)
template <class = void>
struct supervisor_implementation {
  using interface = supervisor_interface;
  static constexpr int vsn = 1;
  using state = supervisor_state;

  static state init(const supervisor_spec& spec) {
    state s{spec.flags, {}, {}, hotswap::self<supervisor_interface>()};
    for (const auto& child : spec.children) s.children.push_back({child, {}});
    try {
      start_children(s, 0);
    } catch (...) {
      stop_children(s, 0);
      throw;
    }
    return s;
  }

  static std::vector<child_info> handle_call(const which_children&, state& s) {
    std::vector<child_info> out;
    for (const auto& child : s.children)
      out.push_back({child.spec.id, child.server.alive() ? child.server : any_server{}});
    return out;
  }

  static void handle_info(const child_exited& exited, state& s) {
    std::size_t at = 0;
    while (at < s.children.size() && s.children[at].server.id() != exited.server) ++at;
    if (at == s.children.size()) return;  // one we stopped ourselves
    state::running_child& ended = s.children[at];
    ended.server = {};
    const restart type = ended.spec.restart;
    if (type == restart::temporary) {
      s.children.erase(s.children.begin() + static_cast<std::ptrdiff_t>(at));
      return;
    }
    if (type == restart::transient && exited.kind != exit_kind::crashed) return;
    count_restart(s, ended.spec.id);
    restart_from(s, at);
  }

  static void handle_info(const restart_again& again, state& s) {
    if (again.child >= s.children.size() || s.children[again.child].server.alive()) return;
    count_restart(s, s.children[again.child].spec.id);
    restart_from(s, again.child);
  }

  static void terminate(const exit_reason&, state& s) { stop_children(s, 0); }

 private:
  static void count_restart(state& s, const std::string& id) {
    const auto now = std::chrono::steady_clock::now();
    s.restarts.push_back(now);
    const auto recent =
        std::find_if(s.restarts.begin(), s.restarts.end(), [&](auto at) { return now - at <= s.flags.period; });
    s.restarts.erase(s.restarts.begin(), recent);
    if (static_cast<int>(s.restarts.size()) > s.flags.intensity)
      throw std::runtime_error("reached the maximum restart intensity (child " + id + " ended once too often)");
  }

  /// Restarts child `at` as the strategy says; if one of them cannot start, those this restart
  /// started are stopped again and it is tried again later, counting as another restart.
  static void restart_from(state& s, std::size_t at) {
    const std::size_t first = s.flags.strategy == strategy::one_for_all ? 0 : at;
    const std::size_t last = s.flags.strategy == strategy::one_for_one ? at + 1 : s.children.size();
    if (s.flags.strategy != strategy::one_for_one) stop_children(s, first);
    if (const auto failed = try_start_children(s, first, last)) {
      if (s.flags.strategy != strategy::one_for_one) stop_children(s, first);
      hotswap::send(s.self, restart_again{failed->child});
    }
  }

  struct start_failure {
    std::size_t child;
    std::string why;
  };

  /// Starts the children in [from, to) that do not run, in order, up to the first that cannot.
  static std::optional<start_failure> try_start_children(state& s, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < std::min(to, s.children.size()); ++i) {
      state::running_child& child = s.children[i];
      if (child.server.alive()) continue;
      auto started = child.spec.start();
      if (!started) return start_failure{i, std::move(started.error().what)};
      child.server = std::move(*started);
      monitor(*child.server.core(), [self = s.self](std::uint64_t id, const exit_reason& reason) {
        hotswap::send(self, child_exited{id, reason.kind});
      });
    }
    return std::nullopt;
  }

  /// At init: every child, in order, or an error naming the one that could not start.
  static void start_children(state& s, std::size_t from) {
    if (const auto failed = try_start_children(s, from, s.children.size()))
      throw std::runtime_error("child " + s.children[failed->child].spec.id + " did not start: " + failed->why);
  }

  static void stop_children(state& s, std::size_t from) {
    for (std::size_t i = s.children.size(); i-- > from;) {
      state::running_child& child = s.children[i];
      if (!child.server) continue;
      any_server stopping = std::exchange(child.server, {});
      (void)control<void>(stopping, child.spec.shutdown, [](server_core& core) -> result<void> {
        end_server(core, {exit_kind::shutdown, "stopped by its supervisor"});
        return {};
      });
    }
  }
};
}  // namespace detail

// What follows is templated on the supervisor's implementation only so that a program that
// never starts a supervisor does not compile one.

/// Starts a supervisor: its children start in order (if one fails, those started are stopped
/// and the supervisor does not start). Flags with an intensity below 0 or a period not above 0
/// are refused (errc::bad_flags), as OTP refuses them.
template <class Implementation = detail::supervisor_implementation<>>
result<server_ref<supervisor_interface>> start_supervisor(supervisor_flags flags, std::vector<child_spec> children,
                                                          start_options options = {}) {
  if (std::string refused = detail::refuse_flags(flags); !refused.empty()) return error{errc::bad_flags, refused};
  return start<Implementation>(detail::supervisor_spec{flags, std::move(children)}, std::move(options));
}

/// A supervisor as a child of another.
template <class Implementation = detail::supervisor_implementation<>>
child_spec supervisor_child(std::string id, supervisor_flags flags, std::vector<child_spec> children,
                            restart restart_type = restart::permanent) {
  return {std::move(id),
          [flags, children = std::move(children)]() -> result<any_server> {
            auto started = start_supervisor<Implementation>(flags, children);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

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
