// Supervisors, as Erlang's: a server that starts children in order, restarts them when they
// end by its strategy and their restart type, gives up (and ends itself, which its own
// supervisor sees) when restarts come faster than its intensity allows, and stops its children
// in reverse order when it stops. Children can be started, stopped and removed while it runs;
// a dynamic supervisor (Elixir's DynamicSupervisor, OTP's simple_one_for_one) holds many
// independent children started on demand.
//
//     auto root = hotswap::start_supervisor({.strategy = hotswap::strategy::one_for_one},
//                                           {hotswap::child<CounterV1>("counter", {.name = "counter"})});
//     auto jobs = hotswap::start_dynamic_supervisor({.max_children = 1000}).value();
//     any_server job = hotswap::start_child(jobs, hotswap::child<JobV1>("", {}, hotswap::restart::temporary)).value();
#pragma once

#include <cstddef>
#include <cstdint>
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

/// Whether a child is a supervisor (OTP's child type): what count_children counts it as.
enum class child_type { worker, supervisor };

/// A child's shutdown that abandons it at once, without its terminate (OTP's brutal_kill).
inline constexpr std::chrono::milliseconds brutal_kill{0};
/// A child's shutdown that waits for it for ever (OTP's infinity): a supervisor child's.
/// (The longest wait that still converts to nanoseconds, as the waits below take it.)
inline constexpr std::chrono::milliseconds infinity =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds::max());

/// How to start and restart one child.
struct child_spec {
  std::string id;  ///< unique among a supervisor's children (a dynamic supervisor's have none: empty)
  std::function<result<any_server>()> start;
  hotswap::restart restart = restart::permanent;
  /// How long its stop (its terminate) may take: past it, the child is abandoned, as OTP's
  /// brutal_kill as threads allow: told ended at once to its monitors and links, its name free,
  /// its state destroyed (without terminate) when the handler that holds it returns. brutal_kill
  /// abandons it at once; infinity waits (supervisor_child's default).
  std::chrono::milliseconds shutdown = default_timeout;
  hotswap::child_type type = child_type::worker;  ///< supervisor_child sets it
  /// Its end stops its supervisor, as its auto_shutdown says (OTP 24's significant child): only
  /// a transient or temporary child may be significant, and only under a supervisor whose
  /// auto_shutdown is not never (errc::bad_child_spec otherwise, as OTP refuses it).
  bool significant = false;
};

/// A child running `Implementation`, started with `options` (its init takes no argument).
template <class Implementation>
requires(!detail::init_takes_argument<Implementation>) child_spec
    child(std::string id, start_options options = {}, restart restart_type = restart::permanent) {
  return {std::move(id),
          [options]() -> result<any_server> {
            auto started = start<Implementation>(options);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

/// The same, passing `argument` (kept in the spec) to its init at each start: a dynamic
/// supervisor's child for one connection, one job.
template <class Implementation>
requires detail::init_takes_argument<Implementation> child_spec child(std::string id,
                                                                      detail::init_argument<Implementation> argument,
                                                                      start_options options = {},
                                                                      restart restart_type = restart::permanent) {
  return {std::move(id),
          [argument = std::move(argument), options]() -> result<any_server> {
            auto started = start<Implementation>(argument, options);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

// -- supervisors --

/// When a supervisor stops itself because significant children ended by themselves (not
/// restarted, and not stopped by the supervisor): OTP 24's auto_shutdown.
enum class auto_shutdown {
  never,            ///< never (no child may be significant)
  any_significant,  ///< when any significant child ends
  all_significant,  ///< when the last significant child that ran ends
};

struct supervisor_flags {
  hotswap::strategy strategy = strategy::one_for_one;
  int intensity = 1;                       ///< at most this many restarts (0 or more) ...
  std::chrono::milliseconds period{5000};  ///< ... in this period (more than 0), else the supervisor gives up
  hotswap::auto_shutdown auto_shutdown = auto_shutdown::never;  ///< it then ends with reason shutdown
};

/// A child as which_children reports it.
struct child_info {
  std::string id;                          ///< empty for a dynamic supervisor's children
  any_server server;                       ///< empty while not running
  int restarts = 0;                        ///< how often it was restarted
  std::optional<exit_reason> last_exit{};  ///< how it last ended, if it has
  hotswap::child_type type = child_type::worker;
};

/// What count_children answers (OTP's count_children).
struct child_counts {
  std::size_t specs = 0;        ///< children it knows, running or not
  std::size_t active = 0;       ///< of them, those running
  std::size_t supervisors = 0;  ///< of them, those whose type is supervisor, running or not
  std::size_t workers = 0;      ///< and those whose type is worker
};

// The requests, as messages: the functions below send them (which_children is asked directly:
// hotswap::call(sup, hotswap::which_children{})).
struct which_children {};
struct start_child_request {
  child_spec spec;
};
struct terminate_child_request {
  std::string id;
};
struct restart_child_request {
  std::string id;
};
struct delete_child_request {
  std::string id;
};
struct count_children_request {};
struct get_childspec_request {
  std::string id;
};
struct change_children_request {
  std::vector<child_spec> put;
  std::vector<std::string> remove;
};
struct terminate_server_request {
  std::uint64_t server;  ///< a dynamic supervisor's child, by its server's id
};

/// What a supervisor answers to.
using supervisor_interface =
    interface<"hotswap.supervisor", call_msg<which_children, std::vector<child_info>>,
              call_msg<start_child_request, result<any_server>>, call_msg<terminate_child_request, result<void>>,
              call_msg<restart_child_request, result<any_server>>, call_msg<delete_child_request, result<void>>,
              call_msg<count_children_request, child_counts>, call_msg<get_childspec_request, result<child_spec>>,
              call_msg<change_children_request, result<std::vector<child_spec>>>, info_msg<down>,
              info_msg<detail::restart_again>>;

/// What a dynamic supervisor answers to.
using dynamic_supervisor_interface =
    interface<"hotswap.dynamic_supervisor", call_msg<which_children, std::vector<child_info>>,
              call_msg<start_child_request, result<any_server>>, call_msg<terminate_server_request, result<void>>,
              call_msg<count_children_request, child_counts>, info_msg<down>, info_msg<detail::restart_dynamic_again>>;

/// How long the functions below wait for a supervisor by default: as OTP's supervisor calls,
/// for ever (a start runs the child's init, a stop waits its shutdown time).
inline constexpr std::chrono::nanoseconds supervisor_timeout = std::chrono::nanoseconds::max();

// What follows is templated on the supervisor's implementation only so that a program that
// never starts a supervisor does not compile one.

/// Starts a supervisor: its children start in order (if one fails, those started are stopped
/// and the supervisor does not start). Flags with an intensity below 0 or a period not above 0
/// are refused (errc::bad_flags), and children with an id given twice, no start function, or
/// significant but permanent or under auto_shutdown never (errc::bad_child_spec), as OTP
/// refuses them.
template <class Implementation = detail::supervisor_implementation<>>
result<server_ref<supervisor_interface>> start_supervisor(supervisor_flags flags, std::vector<child_spec> children,
                                                          start_options options = {});

/// A supervisor as a child of another (its type: supervisor).
template <class Implementation = detail::supervisor_implementation<>>
child_spec supervisor_child(std::string id, supervisor_flags flags, std::vector<child_spec> children,
                            restart restart_type = restart::permanent);

// -- a running supervisor's children --
// Each is a call to the supervisor, answered between its other messages: what it answers
// follows every child exit it handled before.

/// Adds a child at the end of the order and starts it (OTP's start_child): it is then
/// restarted, and stopped, as those given at the start. Fails with errc::already_started if a
/// running child has the id, errc::already_present if a stopped one has it, errc::bad_child_spec
/// for a spec refused at the start too, or the child's own start error (the spec is then
/// forgotten).
template <class = void>
result<any_server> start_child(const server_ref<supervisor_interface>& supervisor, child_spec spec,
                               std::chrono::nanoseconds timeout = supervisor_timeout);

/// Stops child `id` (within its shutdown time) and keeps its spec, not restarted until
/// restart_child (a temporary child's spec is forgotten). errc::not_found if no child has the id;
/// a child that is not running is left so, and this succeeds.
template <class = void>
result<void> terminate_child(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                             std::chrono::nanoseconds timeout = supervisor_timeout);

/// Starts the stopped child `id` again from its spec. errc::child_running if it runs,
/// errc::not_found if no child has the id, or the child's start error (the spec is kept).
template <class = void>
result<any_server> restart_child(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                                 std::chrono::nanoseconds timeout = supervisor_timeout);

/// Forgets the stopped child `id`. errc::child_running if it runs, errc::not_found if no child has it.
template <class = void>
result<void> delete_child(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                          std::chrono::nanoseconds timeout = supervisor_timeout);

/// How many children it has, running, supervisors and workers.
template <class = void>
result<child_counts> count_children(const server_ref<supervisor_interface>& supervisor,
                                    std::chrono::nanoseconds timeout = supervisor_timeout);

/// Child `id`'s spec. errc::not_found if no child has the id.
template <class = void>
result<child_spec> get_childspec(const server_ref<supervisor_interface>& supervisor, const std::string& id,
                                 std::chrono::nanoseconds timeout = supervisor_timeout);

/// Changes its children as one, between its other messages (what OTP's release handler does
/// with `{update, Mod, supervisor}` and the terminate_child and delete_child after it; a release
/// manifest's "supervisors"): each spec of `put` replaces the spec of the child with its id (the
/// child runs on: the new spec takes effect at its next restart, as in OTP), or, no child having
/// its id, is added at the end of the order and started; each child of `remove` is stopped
/// (within its shutdown time, last in the order first) and forgotten. Checked whole before
/// anything changes: errc::bad_child_spec for a spec start_child refuses or an id given twice,
/// errc::not_found for an id to remove that no child has. If an added child cannot start, those
/// this call started are stopped, the specs put back, and its start error returned. Returns the
/// specs it replaced and removed, in that order: change_children(supervisor, them, the ids it
/// added) undoes it (the removed children start again, at the end of the order).
template <class = void>
result<std::vector<child_spec>> change_children(const server_ref<supervisor_interface>& supervisor,
                                                std::vector<child_spec> put, std::vector<std::string> remove,
                                                std::chrono::nanoseconds timeout = supervisor_timeout);

// -- dynamic supervisors --

/// A dynamic supervisor's flags (Elixir's DynamicSupervisor options, and its defaults).
struct dynamic_supervisor_flags {
  int intensity = 3;                          ///< at most this many restarts (0 or more) ...
  std::chrono::milliseconds period{5000};     ///< ... in this period (more than 0), else it gives up
  std::optional<std::size_t> max_children{};  ///< at most this many children at once (none: no limit)
};

/// Starts a dynamic supervisor (Elixir's DynamicSupervisor, OTP's simple_one_for_one): no
/// children at first; each child started by start_child is independent of the others
/// (one_for_one), restarted by its restart type, and forgotten once it ends for good (a
/// temporary child, a transient one ending normally); stopping the supervisor stops them, last
/// started first. Starting and stopping a child costs the same with 10 children or 100,000.
/// Flags refused as start_supervisor refuses them: errc::bad_flags.
template <class Implementation = detail::dynamic_supervisor_implementation<>>
result<server_ref<dynamic_supervisor_interface>> start_dynamic_supervisor(dynamic_supervisor_flags flags = {},
                                                                          start_options options = {});

/// A dynamic supervisor as a child of another (its type: supervisor).
template <class Implementation = detail::dynamic_supervisor_implementation<>>
child_spec dynamic_supervisor_child(std::string id, dynamic_supervisor_flags flags = {},
                                    restart restart_type = restart::permanent);

/// Starts a child (its id may be empty: children are known by their server) and returns its
/// server. Fails with errc::max_children when it has max_children children already,
/// errc::bad_child_spec for a significant child (a dynamic supervisor has no auto_shutdown) or
/// one without a start function, or the child's own start error.
template <class = void>
result<any_server> start_child(const server_ref<dynamic_supervisor_interface>& supervisor, child_spec spec,
                               std::chrono::nanoseconds timeout = supervisor_timeout);

/// Stops the child running as `child` (within its shutdown time) and forgets it.
/// errc::not_found if it is none of this supervisor's children.
template <class = void>
result<void> terminate_child(const server_ref<dynamic_supervisor_interface>& supervisor, const any_server& child,
                             std::chrono::nanoseconds timeout = supervisor_timeout);

/// How many children it has (specs: all; active: those not waiting for a restart).
template <class = void>
result<child_counts> count_children(const server_ref<dynamic_supervisor_interface>& supervisor,
                                    std::chrono::nanoseconds timeout = supervisor_timeout);

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
