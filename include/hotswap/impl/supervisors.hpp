// The bodies of <hotswap/supervisors.hpp> (its declarations, documented, are there): the
// supervisors' own implementations (their state, their restarts), starting one, and the
// requests about their children. Included by supervisors.hpp only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "../detail/common/std_algorithm.hpp"
#include "../detail/common/std_parts.hpp"
#include "../detail/servers/control.hpp"
#include "../supervisors.hpp"

namespace hotswap {

namespace detail {
/// Why flags are refused, as OTP refuses them (bad_intensity, bad_period); empty if they are not.
template <class = void>
std::string refuse_flags(int intensity, std::chrono::milliseconds period) {
  if (intensity < 0) return "the intensity must be 0 or more, not " + std::to_string(intensity);
  if (period.count() <= 0) return "the period must be more than 0, not " + std::to_string(period.count()) + " ms";
  return {};
}

/// `child counter`, or `the child` for one without an id (a dynamic supervisor's).
template <class = void>
std::string child_named(const std::string& id) {
  return id.empty() ? "the child" : "child " + id;
}

/// Why a child spec is refused, as OTP refuses it; empty if it is not.
template <class = void>
std::string refuse_child(const child_spec& spec, auto_shutdown mode) {
  if (!spec.start) return child_named(spec.id) + " has no start function";
  if (spec.significant && spec.restart == restart::permanent)
    return child_named(spec.id) +
           " is significant and permanent: only a transient or temporary child may be significant";
  if (spec.significant && mode == auto_shutdown::never)
    return child_named(spec.id) + " is significant, under a supervisor whose auto_shutdown is never";
  return {};
}

/// Why a supervisor's children are refused; empty if they are not.
template <class = void>
std::string refuse_children(const supervisor_flags& flags, const std::vector<child_spec>& children) {
  std::vector<std::string> ids;
  for (const auto& child : children) {
    if (std::string refused = refuse_child(child, flags.auto_shutdown); !refused.empty()) return refused;
    ids.push_back(child.id);
  }
  std::sort(ids.begin(), ids.end());
  if (const auto twice = std::adjacent_find(ids.begin(), ids.end()); twice != ids.end())
    return "child id " + *twice + " is given twice";
  return {};
}

/// Runs a child's start function; one that throws fails as an init that throws does, and the
/// supervisor lives on (OTP catches it too).
template <class = void>
result<any_server> start_of(const child_spec& spec) {
  try {
    return start_supervised(spec.start);
  } catch (const std::exception& thrown) {
    return error{errc::init_failed, thrown.what()};
  } catch (...) {
    return error{errc::init_failed, "an unknown exception"};
  }
}

/// The one place a supervisor watches a child: a monitor, as any server's (OTP's supervisors
/// link instead; a supervisor here stops its children in its terminate). Its down comes also if
/// the child has ended already; it goes with the child, or with the supervisor.
template <class Interface>
void watch_child(const server_ref<Interface>& supervisor, const any_server& child) {
  hotswap::monitor(supervisor, child);
}

/// A supervisor or progress report, from the supervisor's handler.
template <class = void>
void tell_from_supervisor(report::kind about, const std::string& what) {
  server_core* self = current_server();
  write_report(
      {about, self ? self->id : 0, "supervisor report: " + (self ? self->label() : "a supervisor") + ": " + what});
}

/// Stops a child, within its shutdown time, else abandons it (brutal_kill: at once); its exit,
/// told to the supervisor later, finds no child running as it and is let go.
template <class = void>
void stop_child(const any_server& child, std::chrono::milliseconds shutdown) {
  if (shutdown > std::chrono::milliseconds::zero()) {
    const auto stopped = control<void>(child, shutdown, [](server_core& core) -> result<void> {
      end_server(core, {exit_kind::shutdown, "stopped by its supervisor"});
      return {};
    });
    if (stopped || stopped.error().code != errc::timeout) return;
  }
  const std::string why =
      shutdown > std::chrono::milliseconds::zero()
          ? "killed: it did not stop within its shutdown time of " + std::to_string(shutdown.count()) + " ms"
          : "killed (brutal_kill)";
  if (abandon(*child.core(), {exit_kind::shutdown, why}))
    tell_from_supervisor(report::kind::supervisor,
                         fmt::format("{} {}; abandoned: its state goes when its handler returns, without its terminate",
                                     child.core()->label(), why));
}

template <class = void>
std::string describe_exit(const exit_reason& reason) {
  return std::string(hotswap::to_string(reason.kind)) +
         (reason.what.empty() ? "" : " (" + visible(reason.what, false, 512) + ")");
}

/// Counts a restart of `child` (as reports name it); more than `intensity` within `period` and
/// the supervisor gives up: the handler throws, the supervisor crashes (its terminate stops its
/// children) and its own supervisor decides what follows.
template <class = void>
void count_restart(std::vector<std::chrono::steady_clock::time_point>& restarts, int intensity,
                   std::chrono::milliseconds period, const std::string& child) {
  const auto now = std::chrono::steady_clock::now();
  restarts.push_back(now);
  const auto recent = std::find_if(restarts.begin(), restarts.end(), [&](auto at) { return now - at <= period; });
  restarts.erase(restarts.begin(), recent);
  if (static_cast<int>(restarts.size()) > intensity) {
    tell_from_supervisor(report::kind::supervisor,
                         fmt::format("gave up: more than {} restarts in {} ms ({} ended once too often); it stops its "
                                     "children and ends",
                                     intensity, period.count(), visible(child, false)));
    throw std::runtime_error("reached the maximum restart intensity (" + child + " ended once too often)");
  }
}

/// A call's answer that is itself a result, as one result.
template <class T>
result<T> answer_of(result<result<T>> reply) {
  if (!reply) return reply.error();
  return std::move(*reply);
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
    bool restarting = false;  // a restart failed and is tried again (restart_again)
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
    out.reserve(s.children.size());
    for (const auto& child : s.children)
      out.push_back({child.spec.id, child.server.alive() ? child.server : any_server{}, child.restarts, child.last_exit,
                     child.spec.type});
    return out;
  }

  static result<any_server> handle_call(const start_child_request& request, state& s) {
    const child_spec& spec = request.spec;
    if (std::string refused = refuse_child(spec, s.flags.auto_shutdown); !refused.empty())
      return error{errc::bad_child_spec, std::move(refused)};
    if (const auto at = find_id(s, spec.id)) {
      const any_server& taken = s.children[*at].server;
      if (taken)
        return error{errc::already_started,
                     "child " + spec.id + " already runs, as server " + std::to_string(taken.id())};
      return error{errc::already_present,
                   "child " + spec.id + " is present, stopped: restart_child or delete_child it"};
    }
    s.children.push_back({spec, {}});
    if (const auto failed = try_start_children(s, s.children.size() - 1, s.children.size())) {
      s.children.pop_back();
      return error{failed->failure.code, "child " + spec.id + " did not start: " + failed->failure.what};
    }
    return s.children.back().server;
  }

  static result<void> handle_call(const terminate_child_request& request, state& s) {
    const auto at = find_id(s, request.id);
    if (!at) return not_found(request.id);
    state::running_child& child = s.children[*at];
    child.restarting = false;
    const any_server stopping = std::exchange(child.server, {});
    const std::chrono::milliseconds shutdown = child.spec.shutdown;
    if (child.spec.restart == restart::temporary)  // OTP forgets a temporary child's spec once it ends
      s.children.erase(s.children.begin() + static_cast<std::ptrdiff_t>(*at));
    if (stopping) stop_child(stopping, shutdown);
    return {};
  }

  static result<any_server> handle_call(const restart_child_request& request, state& s) {
    const auto at = find_id(s, request.id);
    if (!at) return not_found(request.id);
    if (const any_server& running = s.children[*at].server)
      return error{errc::child_running, "child " + request.id + " runs, as server " + std::to_string(running.id()) +
                                            ": terminate_child first"};
    if (const auto failed = try_start_children(s, *at, *at + 1))
      return error{failed->failure.code, "child " + request.id + " did not start: " + failed->failure.what};
    return s.children[*at].server;
  }

  static result<void> handle_call(const delete_child_request& request, state& s) {
    const auto at = find_id(s, request.id);
    if (!at) return not_found(request.id);
    if (const any_server& running = s.children[*at].server)
      return error{errc::child_running, "child " + request.id + " runs, as server " + std::to_string(running.id()) +
                                            ": terminate_child first"};
    s.children.erase(s.children.begin() + static_cast<std::ptrdiff_t>(*at));
    return {};
  }

  static child_counts handle_call(const count_children_request&, state& s) {
    child_counts counts{s.children.size(), 0, 0, 0};
    for (const auto& child : s.children) {
      if (child.server.alive()) ++counts.active;
      ++(child.spec.type == child_type::supervisor ? counts.supervisors : counts.workers);
    }
    return counts;
  }

  static result<child_spec> handle_call(const get_childspec_request& request, state& s) {
    const auto at = find_id(s, request.id);
    if (!at) return not_found(request.id);
    return s.children[*at].spec;
  }

  static result<std::vector<child_spec>> handle_call(const change_children_request& request, state& s) {
    std::vector<std::string> ids;
    for (const auto& spec : request.put) {
      if (std::string refused = refuse_child(spec, s.flags.auto_shutdown); !refused.empty())
        return error{errc::bad_child_spec, std::move(refused)};
      ids.push_back(spec.id);
    }
    std::vector<std::size_t> leaving;
    for (const auto& id : request.remove) {
      const auto at = find_id(s, id);
      if (!at) return not_found(id);
      leaving.push_back(*at);
      ids.push_back(id);
    }
    std::sort(ids.begin(), ids.end());
    if (const auto twice = std::adjacent_find(ids.begin(), ids.end()); twice != ids.end())
      return error{errc::bad_child_spec, "child id " + *twice + " is given twice"};
    std::vector<child_spec> before;
    const std::size_t first_added = s.children.size();
    for (const auto& spec : request.put)
      if (const auto at = find_id(s, spec.id))
        before.push_back(std::exchange(s.children[*at].spec, spec));
      else
        s.children.push_back({spec, {}});
    if (const auto failed = try_start_children(s, first_added, s.children.size())) {
      const std::string id = s.children[failed->child].spec.id;
      stop_children(s, first_added);
      s.children.erase(s.children.begin() + static_cast<std::ptrdiff_t>(first_added), s.children.end());
      for (auto& spec : before) s.children[*find_id(s, spec.id)].spec = std::move(spec);
      return error{failed->failure.code, "child " + id + " did not start: " + failed->failure.what};
    }
    for (const auto& spec : before)
      tell_from_supervisor(report::kind::progress, fmt::format("child {}'s spec replaced: it takes effect at its "
                                                               "next restart",
                                                               visible(spec.id, false)));
    std::sort(leaving.begin(), leaving.end());
    for (auto at = leaving.rbegin(); at != leaving.rend(); ++at) {  // stopped last first, as a supervisor stops
      state::running_child& child = s.children[*at];
      if (child.server) stop_child(std::exchange(child.server, {}), child.spec.shutdown);
      tell_from_supervisor(report::kind::progress, fmt::format("child {} removed", visible(child.spec.id, false)));
    }
    for (const std::size_t at : leaving) before.push_back(s.children[at].spec);
    for (auto at = leaving.rbegin(); at != leaving.rend(); ++at)
      s.children.erase(s.children.begin() + static_cast<std::ptrdiff_t>(*at));
    return before;
  }

  static void handle_info(const hotswap::down& exited, state& s) {
    std::size_t at = 0;
    while (at < s.children.size() && s.children[at].server.id() != exited.server) ++at;
    if (at == s.children.size()) return;  // one we stopped ourselves
    state::running_child& ended = s.children[at];
    ended.server = {};
    ended.last_exit = exited.reason;
    const restart type = ended.spec.restart;
    const bool restarted =
        type == restart::permanent || (type == restart::transient && exited.reason.kind == exit_kind::crashed);
    // OTP 24: a significant child that ended by itself, not restarted, may end the supervisor.
    const bool shuts_down = !restarted && ended.spec.significant && auto_shutdown_now(s, at);
    tell_from_supervisor(
        report::kind::supervisor,
        fmt::format("child {} (server {}) ended: {}; {}{}", visible(ended.spec.id, false), exited.server,
                    describe_exit(exited.reason),
                    restarted                    ? "restarting it"
                    : type == restart::temporary ? "not restarted (temporary)"
                                                 : "not restarted (transient)",
                    shuts_down
                        ? fmt::format("; it was significant: the supervisor shuts down (auto_shutdown {})",
                                      s.flags.auto_shutdown == auto_shutdown::any_significant ? "any_significant"
                                                                                              : "all_significant")
                        : ""));
    if (shuts_down)
      end_later(*s.self.core(), {exit_kind::shutdown, "auto_shutdown: significant child " + ended.spec.id + " ended"});
    if (type == restart::temporary) {
      s.children.erase(s.children.begin() + static_cast<std::ptrdiff_t>(at));
      return;
    }
    if (!restarted) return;
    count_restart(s.restarts, s.flags.intensity, s.flags.period, "child " + ended.spec.id);
    restart_from(s, at);
  }

  static void handle_info(const restart_again& again, state& s) {
    const auto at = find_id(s, again.id);
    if (!at || !s.children[*at].restarting || s.children[*at].server) return;  // started or stopped meanwhile
    count_restart(s.restarts, s.flags.intensity, s.flags.period, "child " + again.id);
    restart_from(s, *at);
  }

  static void terminate(const exit_reason&, state& s) { stop_children(s, 0); }

 private:
  static std::optional<std::size_t> find_id(const state& s, const std::string& id) {
    for (std::size_t at = 0; at < s.children.size(); ++at)
      if (s.children[at].spec.id == id) return at;
    return std::nullopt;
  }
  static error not_found(const std::string& id) { return {errc::not_found, "no child has the id " + id}; }

  /// Whether the end of significant child `at` ends the supervisor now: any_significant, or
  /// all_significant and no other significant child runs (or waits for a restart).
  static bool auto_shutdown_now(const state& s, std::size_t at) {
    if (s.flags.auto_shutdown != auto_shutdown::all_significant) return s.flags.auto_shutdown != auto_shutdown::never;
    for (std::size_t i = 0; i < s.children.size(); ++i)
      if (i != at && s.children[i].spec.significant && (s.children[i].server || s.children[i].restarting)) return false;
    return true;
  }

  /// Restarts child `at` as the strategy says; if one of them cannot start, those this restart
  /// started are stopped again and the whole restart is tried again later (from `at`: with
  /// rest_for_one, from the child that failed would leave those before it stopped), counting
  /// as another restart.
  static void restart_from(state& s, std::size_t at) {
    const std::size_t first = s.flags.strategy == strategy::one_for_all ? 0 : at;
    const std::size_t last = s.flags.strategy == strategy::one_for_one ? at + 1 : s.children.size();
    if (s.flags.strategy != strategy::one_for_one) stop_children(s, first);
    for (std::size_t i = first; i < std::min(last, s.children.size()); ++i) ++s.children[i].restarts;
    if (const auto failed = try_start_children(s, first, last)) {
      tell_from_supervisor(report::kind::supervisor, fmt::format("child {} did not start: {}; trying again",
                                                                 visible(s.children[failed->child].spec.id, false),
                                                                 visible(failed->failure.what, false, 512)));
      if (s.flags.strategy != strategy::one_for_one) stop_children(s, first);
      s.children[at].restarting = true;
      hotswap::send(s.self, restart_again{s.children[at].spec.id});
    }
  }

  struct start_failure {
    std::size_t child;
    error failure;
  };

  /// Starts the children in [from, to) that do not run, in order, up to the first that cannot.
  static std::optional<start_failure> try_start_children(state& s, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < std::min(to, s.children.size()); ++i) {
      state::running_child& child = s.children[i];
      if (child.server.alive()) continue;
      auto started = start_of(child.spec);
      if (!started) return start_failure{i, std::move(started.error())};
      child.server = std::move(*started);
      child.restarting = false;
      tell_from_supervisor(report::kind::progress, fmt::format("started child {} as server {}",
                                                               visible(child.spec.id, false), child.server.id()));
      watch_child(s.self, child.server);
    }
    return std::nullopt;
  }

  /// At init: every child, in order, or an error naming the one that could not start.
  static void start_children(state& s, std::size_t from) {
    if (const auto failed = try_start_children(s, from, s.children.size()))
      throw std::runtime_error("child " + s.children[failed->child].spec.id +
                               " did not start: " + failed->failure.what);
  }

  static void stop_children(state& s, std::size_t from) {
    for (std::size_t i = s.children.size(); i-- > from;) {
      state::running_child& child = s.children[i];
      if (child.server) stop_child(std::exchange(child.server, {}), child.spec.shutdown);
    }
  }
};

struct dynamic_supervisor_state {
  struct child {
    child_spec spec;
    any_server server;      // empty while it waits for a restart
    std::uint64_t key = 0;  // the server it runs, or last ran while it waits: its key in by_server
    int restarts = 0;
    std::optional<exit_reason> last_exit = {};
    bool waiting = false;  // for a restart that failed (restart_dynamic_again)
  };
  dynamic_supervisor_flags flags;
  std::list<child> children;                                      // in start order (a restart keeps a child's place)
  std::map<std::uint64_t, std::list<child>::iterator> by_server;  // <map>: half <unordered_map>'s compile cost
  std::vector<std::chrono::steady_clock::time_point> restarts;    // at most intensity + 1, oldest first
  std::size_t supervisors = 0;                                    // children of type supervisor
  std::size_t waiting = 0;                                        // children waiting for a restart
  server_ref<dynamic_supervisor_interface> self;
};

/// The dynamic supervisor's own implementation: children are found by their server in a map
/// and kept in start order in a list, so that starting or stopping one grows only with the
/// logarithm of how many there are. As OTP's simple_one_for_one, a child's start makes no progress
/// report, and its end a supervisor report only when it crashed or was permanent.
template <class>
struct dynamic_supervisor_implementation {
  using interface = dynamic_supervisor_interface;
  static constexpr int vsn = 1;
  using state = dynamic_supervisor_state;
  using child = state::child;

  static state init(const dynamic_supervisor_flags& flags) {
    state s{flags, {}, {}, {}, 0, 0, hotswap::self<dynamic_supervisor_interface>()};
    return s;
  }

  static std::vector<child_info> handle_call(const which_children&, state& s) {
    std::vector<child_info> out;
    out.reserve(s.children.size());
    for (const auto& one : s.children)
      out.push_back(
          {one.spec.id, one.server.alive() ? one.server : any_server{}, one.restarts, one.last_exit, one.spec.type});
    return out;
  }

  static result<any_server> handle_call(const start_child_request& request, state& s) {
    if (std::string refused = refuse_child(request.spec, auto_shutdown::never); !refused.empty())
      return error{errc::bad_child_spec, std::move(refused) + " (a dynamic supervisor has no auto_shutdown)"};
    if (s.flags.max_children && s.children.size() >= *s.flags.max_children)
      return error{errc::max_children, "the dynamic supervisor has its " + std::to_string(*s.flags.max_children) +
                                           " children (max_children)"};
    auto started = start_of(request.spec);
    if (!started) return started.error();
    child& added = s.children.emplace_back(child{request.spec, std::move(*started)});
    added.key = added.server.id();
    s.by_server.emplace(added.key, std::prev(s.children.end()));
    if (added.spec.type == child_type::supervisor) ++s.supervisors;
    watch_child(s.self, added.server);
    return added.server;
  }

  static result<void> handle_call(const terminate_server_request& request, state& s) {
    const auto found = s.by_server.find(request.server);
    if (found == s.by_server.end())
      return error{errc::not_found, "server " + std::to_string(request.server) + " is no child of this supervisor"};
    const auto one = found->second;
    const any_server stopping = std::move(one->server);
    const std::chrono::milliseconds shutdown = one->spec.shutdown;
    forget(s, one);
    if (stopping) stop_child(stopping, shutdown);
    return {};
  }

  static child_counts handle_call(const count_children_request&, state& s) {
    return {s.children.size(), s.children.size() - s.waiting, s.supervisors, s.children.size() - s.supervisors};
  }

  static void handle_info(const hotswap::down& exited, state& s) {
    const auto found = s.by_server.find(exited.server);
    if (found == s.by_server.end() || found->second->server.id() != exited.server) return;  // stopped by us
    const auto one = found->second;
    one->server = {};
    one->last_exit = exited.reason;
    const restart type = one->spec.restart;
    const bool crashed = exited.reason.kind == exit_kind::crashed;
    const bool restarted = type == restart::permanent || (type == restart::transient && crashed);
    if (crashed || type == restart::permanent)
      tell_from_supervisor(report::kind::supervisor,
                           fmt::format("child server {} ended: {}; {}", exited.server, describe_exit(exited.reason),
                                       restarted                    ? "restarting it"
                                       : type == restart::temporary ? "not restarted (temporary)"
                                                                    : "not restarted (transient)"));
    if (!restarted) {
      forget(s, one);
      return;
    }
    count_restart(s.restarts, s.flags.intensity, s.flags.period, "child server " + std::to_string(exited.server));
    start_again(s, one);
  }

  static void handle_info(const restart_dynamic_again& again, state& s) {
    const auto found = s.by_server.find(again.server);
    if (found == s.by_server.end() || found->second->server) return;  // stopped meanwhile
    count_restart(s.restarts, s.flags.intensity, s.flags.period, "child server " + std::to_string(again.server));
    start_again(s, found->second);
  }

  /// Stops every child, last started first.
  static void terminate(const exit_reason&, state& s) {
    for (auto one = s.children.rbegin(); one != s.children.rend(); ++one)
      if (one->server) stop_child(std::exchange(one->server, {}), one->spec.shutdown);
  }

 private:
  using place = std::list<child>::iterator;

  static void forget(state& s, place one) {
    if (one->spec.type == child_type::supervisor) --s.supervisors;
    if (one->waiting) --s.waiting;
    s.by_server.erase(one->key);
    s.children.erase(one);
  }

  /// Starts the child again; if it cannot start, tried again later, counting as another restart.
  static void start_again(state& s, place one) {
    ++one->restarts;
    auto started = start_of(one->spec);
    if (!started) {
      tell_from_supervisor(report::kind::supervisor,
                           fmt::format("child server {} did not start again: {}; trying again", one->key,
                                       visible(started.error().what, false, 512)));
      if (!std::exchange(one->waiting, true)) ++s.waiting;
      hotswap::send(s.self, restart_dynamic_again{one->key});
      return;
    }
    if (std::exchange(one->waiting, false)) --s.waiting;
    one->server = std::move(*started);
    auto entry = s.by_server.extract(one->key);  // known by its new server from now on
    one->key = one->server.id();
    entry.key() = one->key;
    s.by_server.insert(std::move(entry));
    watch_child(s.self, one->server);
  }
};
}  // namespace detail

template <class Implementation>
result<server_ref<supervisor_interface>> start_supervisor(supervisor_flags flags, std::vector<child_spec> children,
                                                          start_options options) {
  if (std::string refused = detail::refuse_flags(flags.intensity, flags.period); !refused.empty())
    return error{errc::bad_flags, refused};
  if (std::string refused = detail::refuse_children(flags, children); !refused.empty())
    return error{errc::bad_child_spec, refused};
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
          restart_type, infinity, child_type::supervisor};
}

template <class>
result<any_server> start_child(const server_ref<supervisor_interface>& supervisor, child_spec spec,
                               std::chrono::nanoseconds timeout) {
  return detail::answer_of(call(supervisor, start_child_request{std::move(spec)}, timeout));
}

template <class>
result<void> terminate_child(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                             std::chrono::nanoseconds timeout) {
  return detail::answer_of(call(supervisor, terminate_child_request{id}, timeout));
}

template <class>
result<any_server> restart_child(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                                 std::chrono::nanoseconds timeout) {
  return detail::answer_of(call(supervisor, restart_child_request{id}, timeout));
}

template <class>
result<void> delete_child(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                          std::chrono::nanoseconds timeout) {
  return detail::answer_of(call(supervisor, delete_child_request{id}, timeout));
}

template <class>
result<child_counts> count_children(const server_ref<supervisor_interface>& supervisor,
                                    std::chrono::nanoseconds timeout) {
  return call(supervisor, count_children_request{}, timeout);
}

template <class>
result<child_spec> get_childspec(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                                 std::chrono::nanoseconds timeout) {
  return detail::answer_of(call(supervisor, get_childspec_request{id}, timeout));
}

template <class>
result<std::vector<child_spec>> change_children(const server_ref<supervisor_interface>& supervisor,
                                                std::vector<child_spec> put, std::vector<std::string> remove,
                                                std::chrono::nanoseconds timeout) {
  return detail::answer_of(call(supervisor, change_children_request{std::move(put), std::move(remove)}, timeout));
}

template <class Implementation>
result<server_ref<dynamic_supervisor_interface>> start_dynamic_supervisor(dynamic_supervisor_flags flags,
                                                                          start_options options) {
  if (std::string refused = detail::refuse_flags(flags.intensity, flags.period); !refused.empty())
    return error{errc::bad_flags, refused};
  return start<Implementation>(flags, std::move(options));
}

template <class Implementation>
child_spec dynamic_supervisor_child(std::string id, dynamic_supervisor_flags flags, restart restart_type) {
  return {std::move(id),
          [flags]() -> result<any_server> {
            auto started = start_dynamic_supervisor<Implementation>(flags);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type, infinity, child_type::supervisor};
}

template <class>
result<any_server> start_child(const server_ref<dynamic_supervisor_interface>& supervisor, child_spec spec,
                               std::chrono::nanoseconds timeout) {
  return detail::answer_of(call(supervisor, start_child_request{std::move(spec)}, timeout));
}

template <class>
result<void> terminate_child(const server_ref<dynamic_supervisor_interface>& supervisor, const any_server& child,
                             std::chrono::nanoseconds timeout) {
  if (!child) return error{errc::not_found, "an empty server handle"};
  return detail::answer_of(call(supervisor, terminate_server_request{child.id()}, timeout));
}

template <class>
result<child_counts> count_children(const server_ref<dynamic_supervisor_interface>& supervisor,
                                    std::chrono::nanoseconds timeout) {
  return call(supervisor, count_children_request{}, timeout);
}

}  // namespace hotswap
