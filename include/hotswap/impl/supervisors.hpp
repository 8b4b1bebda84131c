// The bodies of <hotswap/supervisors.hpp> (its declarations, documented, are there): the
// supervisor's own implementation (its state, its restarts) and starting one. Included by
// supervisors.hpp only.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "../detail/common/std_algorithm.hpp"
#include "../detail/common/std_parts.hpp"
#include "../supervisors.hpp"

namespace hotswap {

namespace detail {
/// Why flags are refused, as OTP refuses them (bad_intensity, bad_period); empty if they are not.
inline std::string refuse_flags(const supervisor_flags& flags) {
  if (flags.intensity < 0) return "the intensity must be 0 or more, not " + std::to_string(flags.intensity);
  if (flags.period.count() <= 0)
    return "the period must be more than 0, not " + std::to_string(flags.period.count()) + " ms";
  return {};
}

struct supervisor_spec {
  supervisor_flags flags;
  std::vector<child_spec> children;
};

struct supervisor_state {
  struct running_child {
    child_spec spec;
    any_server server;
    int restarts = 0;
    std::optional<exit_reason> last_exit = {};
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
template <class>
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
      out.push_back(
          {child.spec.id, child.server.alive() ? child.server : any_server{}, child.restarts, child.last_exit});
    return out;
  }

  static void handle_info(const child_exited& exited, state& s) {
    std::size_t at = 0;
    while (at < s.children.size() && s.children[at].server.id() != exited.server) ++at;
    if (at == s.children.size()) return;  // one we stopped ourselves
    state::running_child& ended = s.children[at];
    ended.server = {};
    ended.last_exit = exited.reason;
    const restart type = ended.spec.restart;
    const bool restarted =
        type == restart::permanent || (type == restart::transient && exited.reason.kind == exit_kind::crashed);
    tell(report::kind::supervisor, fmt::format("child {} (server {}) ended: {}; {}", visible(ended.spec.id, false),
                                               exited.server, describe(exited.reason),
                                               restarted                    ? "restarting it"
                                               : type == restart::temporary ? "not restarted (temporary)"
                                                                            : "not restarted (transient)"));
    if (type == restart::temporary) {
      s.children.erase(s.children.begin() + static_cast<std::ptrdiff_t>(at));
      return;
    }
    if (!restarted) return;
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
  /// A supervisor or progress report, from the supervisor's handler.
  static void tell(report::kind about, const std::string& what) {
    server_core* self = current_server();
    write_report(
        {about, self ? self->id : 0, "supervisor report: " + (self ? self->label() : "a supervisor") + ": " + what});
  }
  static std::string describe(const exit_reason& reason) {
    return std::string(hotswap::to_string(reason.kind)) +
           (reason.what.empty() ? "" : " (" + visible(reason.what, false, 512) + ")");
  }

  static void count_restart(state& s, const std::string& id) {
    const auto now = std::chrono::steady_clock::now();
    s.restarts.push_back(now);
    const auto recent =
        std::find_if(s.restarts.begin(), s.restarts.end(), [&](auto at) { return now - at <= s.flags.period; });
    s.restarts.erase(s.restarts.begin(), recent);
    if (static_cast<int>(s.restarts.size()) > s.flags.intensity) {
      tell(report::kind::supervisor,
           fmt::format("gave up: more than {} restarts in {} ms (child {} ended once too often); it stops its children "
                       "and ends",
                       s.flags.intensity, s.flags.period.count(), visible(id, false)));
      throw std::runtime_error("reached the maximum restart intensity (child " + id + " ended once too often)");
    }
  }

  /// Restarts child `at` as the strategy says; if one of them cannot start, those this restart
  /// started are stopped again and it is tried again later, counting as another restart.
  static void restart_from(state& s, std::size_t at) {
    const std::size_t first = s.flags.strategy == strategy::one_for_all ? 0 : at;
    const std::size_t last = s.flags.strategy == strategy::one_for_one ? at + 1 : s.children.size();
    if (s.flags.strategy != strategy::one_for_one) stop_children(s, first);
    for (std::size_t i = first; i < std::min(last, s.children.size()); ++i) ++s.children[i].restarts;
    if (const auto failed = try_start_children(s, first, last)) {
      tell(report::kind::supervisor,
           fmt::format("child {} did not start: {}; trying again", visible(s.children[failed->child].spec.id, false),
                       visible(failed->why, false, 512)));
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
      auto started = start_supervised(child.spec.start);
      if (!started) return start_failure{i, std::move(started.error().what)};
      child.server = std::move(*started);
      tell(report::kind::progress,
           fmt::format("started child {} as server {}", visible(child.spec.id, false), child.server.id()));
      monitor(*child.server.core(), [self = s.self](std::uint64_t id, const exit_reason& reason) {
        hotswap::send(self, child_exited{id, reason});
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

template <class Implementation>
result<server_ref<supervisor_interface>> start_supervisor(supervisor_flags flags, std::vector<child_spec> children,
                                                          start_options options) {
  if (std::string refused = detail::refuse_flags(flags); !refused.empty()) return error{errc::bad_flags, refused};
  return start<Implementation>(detail::supervisor_spec{flags, std::move(children)}, std::move(options));
}

template <class Implementation>
child_spec supervisor_child(std::string id, supervisor_flags flags, std::vector<child_spec> children,
                            restart restart_type) {
  return {std::move(id),
          [flags, children = std::move(children)]() -> result<any_server> {
            auto started = start_supervisor<Implementation>(flags, children);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

}  // namespace hotswap
