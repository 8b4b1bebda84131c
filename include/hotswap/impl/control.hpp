// The bodies of <hotswap/control.hpp> (its declarations, documented, are there): the JSON forms
// of reports and plans, the commands run against the code server and the release handler (each
// command's reply, and run_request, which decodes a request line and runs it), and opening the
// socket. Included by control.hpp only.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../control.hpp"

namespace hotswap {

inline void to_json(nlohmann::json& out, const upgrade_report& report) {
  using json = nlohmann::json;
  json steps = json::array();
  for (const auto& step : report.steps)
    steps.push_back({{"server", step.server},
                     {"label", step.server_label},
                     {"from_vsn", step.from_vsn},
                     {"to", step.to},
                     {"to_vsn", step.to_vsn},
                     {"time_us", std::chrono::duration<double, std::micro>(step.time).count()},
                     {"state_bytes", step.state_bytes}});
  out = {{"dry_run", report.dry_run},
         {"steps", std::move(steps)},
         {"pause_us", std::chrono::duration<double, std::micro>(report.pause).count()},
         {"notes", report.notes},
         {"servers", report.servers},
         {"applied", report.applied},
         {"text", to_string(report)}};
}

inline void to_json(nlohmann::json& out, const release_plan& plan) {
  using json = nlohmann::json;
  json changes = json::array();
  for (const auto& change : plan.changes) {
    json servers = json::array();
    for (const auto& server : change.servers)
      servers.push_back({{"server", server.server.id()}, {"label", server.label}, {"from_vsn", server.from_vsn}});
    changes.push_back({{"module", change.module},
                       {"from_vsn", change.from_vsn},
                       {"to_vsn", change.to_vsn},
                       {"file", change.file},
                       {"loaded", change.loaded},
                       {"back", change.back},
                       {"servers", std::move(servers)}});
  }
  json starts = json::array(), stops = json::array(), restarts = json::array();
  for (const auto& start : plan.starts)
    starts.push_back({{"name", start.name},
                      {"module", start.module},
                      {"vsn", start.vsn},
                      {"resumes", start.held ? json(start.held.id()) : json(nullptr)}});
  for (const auto& stop : plan.stops)
    stops.push_back({{"name", stop.name}, {"server", stop.server.id()}, {"label", stop.label}});
  for (const auto& restart : plan.restarts)
    restarts.push_back({{"name", restart.name},
                        {"server", restart.server.id()},
                        {"label", restart.label},
                        {"module", restart.module},
                        {"from_vsn", restart.from_vsn},
                        {"to_vsn", restart.to_vsn},
                        {"state_kept", restart.state_lost.empty()},
                        {"state_lost", restart.state_lost}});
  json applies = json::array();
  for (const auto& apply : plan.applies)
    applies.push_back({{"module", apply.module}, {"step", apply.step}, {"at", apply.at}, {"vsn", apply.vsn}});
  json supervisors = json::array();
  for (const auto& step : plan.supervisors) {
    json put = json::array();
    for (const auto& spec : step.put) put.push_back(spec.id);
    supervisors.push_back({{"supervisor", step.supervisor},
                           {"server", step.server.id()},
                           {"put", std::move(put)},
                           {"remove", step.remove},
                           {"lines", step.lines}});
  }
  out = {{"from", {{"name", plan.from.name}, {"vsn", plan.from.vsn}}},
         {"to", {{"name", plan.to.name}, {"vsn", plan.to.vsn}}},
         {"changes", std::move(changes)},
         {"start", std::move(starts)},
         {"stop", std::move(stops)},
         {"restart", std::move(restarts)},
         {"apply", std::move(applies)},
         {"supervisors", std::move(supervisors)},
         {"retired", plan.retired},
         {"text", to_string(plan)}};
}

namespace detail {

inline std::string program_name() {
  std::ifstream comm("/proc/self/comm");
  std::string name;
  std::getline(comm, name);
  return name.empty() ? "hotswap" : name;
}

using json = nlohmann::json;

/// status: the program, its release, its modules and every server (a server too busy to answer
/// within `timeout` is listed as busy).
/// How a child of a supervisor last ended: `crashed: why` (at most 120 bytes of why), or `-`.
inline std::string last_exit_text(const std::optional<exit_reason>& reason) {
  if (!reason) return "-";
  std::string text(to_string(reason->kind));
  if (!reason->what.empty()) text += ": " + visible(reason->what, false, 120);
  return text;
}
inline nlohmann::json last_exit_json(const std::optional<exit_reason>& reason) {
  if (!reason) return nullptr;
  return {{"kind", std::string(to_string(reason->kind))}, {"what", reason->what}};
}

/// A supervisor's children (either kind's), or nullopt if `server` is no supervisor or did not
/// answer.
inline std::optional<std::vector<child_info>> children_of(const any_server& server, std::chrono::nanoseconds timeout) {
  result<std::vector<child_info>> children = error{errc::no_server, {}};
  if (auto supervisor = server_ref<supervisor_interface>::from(server))
    children = call(*supervisor, which_children{}, timeout);
  else if (auto dynamic = server_ref<dynamic_supervisor_interface>::from(server))
    children = call(*dynamic, which_children{}, timeout);
  if (!children) return std::nullopt;
  return std::move(*children);
}

/// Every supervisor's children that run, by server id: their restarts and last exit.
inline std::map<std::uint64_t, child_info> supervised_children(const std::vector<any_server>& servers,
                                                               std::chrono::nanoseconds timeout) {
  std::map<std::uint64_t, child_info> found;
  for (const auto& server : servers)
    if (auto children = children_of(server, timeout))
      for (auto& child : *children)
        if (child.server) found.emplace(child.server.id(), std::move(child));
  return found;
}

template <class CodeServer, class ReleaseHandler>
nlohmann::json status_json(const std::string& program, CodeServer& code, ReleaseHandler& releases,
                           std::chrono::nanoseconds timeout) {
  json release = nullptr;
  for (const auto& known : releases.which_releases())
    if (known.status == release_status::current || (known.status == release_status::permanent && release.is_null()))
      release = {{"name", known.name}, {"vsn", known.vsn}, {"status", std::string(to_string(known.status))}};
  std::string text =
      fmt::format("{} (pid {}), release {}\n\n", program, ::getpid(),
                  release.is_null() ? std::string("none")
                                    : release["name"].get<std::string>() + " " + release["vsn"].get<std::string>());
  json modules = json::array();
  text += fmt::format("{:<32} {:>7} {:>7}  {}\n", "module", "current", "old", "ids of its servers");
  for (const auto& loaded : code.all_loaded()) {
    auto ids = [](const module_ptr& version) {
      std::vector<std::uint64_t> found;
      if (version)
        for (const auto& server : version->servers()) found.push_back(server.id());
      return found;
    };
    const auto on_current = ids(loaded.current), on_old = ids(loaded.old);
    modules.push_back({{"name", loaded.name},
                       {"current", loaded.current ? json(loaded.current->vsn()) : json(nullptr)},
                       {"old", loaded.old ? json(loaded.old->vsn()) : json(nullptr)},
                       {"servers_current", on_current},
                       {"servers_old", on_old}});
    text += fmt::format("{:<32} {:>7} {:>7}  {}{}\n", loaded.name,
                        loaded.current ? std::to_string(loaded.current->vsn()) : "-",
                        loaded.old ? std::to_string(loaded.old->vsn()) : "-", fmt::join(on_current, " "),
                        on_old.empty() ? std::string() : fmt::format(" (on old: {})", fmt::join(on_old, " ")));
  }
  json servers = json::array();
  text += fmt::format("\n{:>6} {:<20} {:<24} {:<32} {:>4} {:>9} {:>7} {:>10} {:>8}  {}\n", "id", "name", "interface",
                      "implementation", "vsn", "suspended", "mailbox", "handled", "restarts", "last exit");
  const std::vector<any_server> live = all_servers();
  const auto children = supervised_children(live, timeout);
  for (const auto& server : live) {
    auto status = sys::get_status(server, timeout);
    auto statistics = sys::statistics(server, timeout);
    if (!status || !statistics) {
      if (!server.alive()) continue;  // ended meanwhile
      servers.push_back({{"id", server.id()}, {"busy", true}});
      text += fmt::format("{:>6} (busy: no answer within {} ms)\n", server.id(),
                          std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
      continue;
    }
    // A supervisor's child: how often its supervisor restarted it, and how it last ended.
    const auto child = children.find(status->id);
    const bool supervised = child != children.end();
    servers.push_back({{"id", status->id},
                       {"name", status->name},
                       {"interface", status->interface},
                       {"implementation", status->implementation},
                       {"vsn", status->vsn},
                       {"suspended", status->suspended},
                       {"mailbox", status->mailbox_length},
                       {"handled", statistics->messages_handled},
                       {"restarts", supervised ? json(child->second.restarts) : json(nullptr)},
                       {"last_exit", supervised ? last_exit_json(child->second.last_exit) : json(nullptr)}});
    text += fmt::format("{:>6} {:<20} {:<24} {:<32} {:>4} {:>9} {:>7} {:>10} {:>8}  {}\n", status->id,
                        status->name.empty() ? "-" : status->name, status->interface, status->implementation,
                        status->vsn, status->suspended ? "yes" : "no", status->mailbox_length,
                        statistics->messages_handled, supervised ? std::to_string(child->second.restarts) : "-",
                        supervised ? last_exit_text(child->second.last_exit) : "-");
  }
  return {{"program", program},
          {"pid", ::getpid()},
          {"release", std::move(release)},
          {"modules", std::move(modules)},
          {"servers", std::move(servers)},
          {"text", std::move(text)}};
}

/// The server an operator names: by its registered name, or by its id.
inline result<any_server> named_server(const std::string& name) {
  if (server_core* found = the_runtime().whereis(name)) return any_server(found);
  for (auto& server : all_servers())
    if (std::to_string(server.id()) == name) return std::move(server);
  return error{errc::no_server, "no server is named or numbered " + name.substr(0, 64)};
}

/// tree: each supervisor's children, down from the servers no supervisor owns.
inline nlohmann::json tree_json(std::chrono::nanoseconds timeout) {
  struct node {
    any_server server;
    std::optional<sys::status> status;
    std::vector<child_info> children;
  };
  std::map<std::uint64_t, node> nodes;
  std::set<std::uint64_t> owned;
  for (auto& server : all_servers()) {
    node one{server, {}, {}};
    if (auto status = sys::get_status(server, timeout)) one.status = std::move(*status);
    if (auto children = children_of(server, timeout)) one.children = std::move(*children);
    for (const auto& child : one.children)
      if (child.server) owned.insert(child.server.id());
    nodes.emplace(server.id(), std::move(one));
  }
  std::string text;
  auto describe = [&](auto& self, std::uint64_t id, const std::string& child, int depth) -> json {
    const auto found = nodes.find(id);
    json out{{"id", id}};
    std::string line = fmt::format("{:{}}{}", "", depth * 2, child.empty() ? "" : child + ": ");
    if (found == nodes.end() || !found->second.status) {
      out["busy"] = true;
      text += line + fmt::format("server {} (busy)\n", id);
      return out;
    }
    const auto& status = *found->second.status;
    out.update({{"name", status.name},
                {"interface", status.interface},
                {"implementation", status.implementation},
                {"vsn", status.vsn}});
    text +=
        line + fmt::format("{}  {} vsn {}\n", found->second.server.core()->label(), status.implementation, status.vsn);
    json children = json::array();
    for (const auto& one : found->second.children) {
      const std::size_t child_line = text.size();
      if (one.server) {
        children.push_back(self(self, one.server.id(), one.id, depth + 1));
        children.back()["child"] = one.id;
      } else {
        children.push_back({{"child", one.id}, {"id", nullptr}});
        text += fmt::format("{:{}}{}: not running\n", "", (depth + 1) * 2, one.id);
      }
      children.back()["restarts"] = one.restarts;
      children.back()["last_exit"] = last_exit_json(one.last_exit);
      if (one.restarts || one.last_exit)  // at the end of the child's line, before its own children's
        text.insert(text.find('\n', child_line),
                    fmt::format("  (restarts {}, last exit {})", one.restarts, last_exit_text(one.last_exit)));
    }
    if (!found->second.children.empty() || server_ref<supervisor_interface>::from(found->second.server) ||
        server_ref<dynamic_supervisor_interface>::from(found->second.server))
      out["children"] = std::move(children);
    return out;
  };
  json roots = json::array();
  for (const auto& [id, one] : nodes)
    if (!owned.contains(id)) roots.push_back(describe(describe, id, "", 0));
  return {{"roots", std::move(roots)}, {"text", std::move(text)}};
}

/// state: the server's state printed with inspect where its schemas enable it, else its type;
/// its vsn and bytes either way (on the server's thread, between its messages).
inline result<json> state_json(const any_server& server, std::size_t max_text, std::chrono::nanoseconds timeout) {
  return control<json>(server, timeout, [max_text](server_core& core) -> result<json> {
    const implementation_table& table = *core.table;
    json out{{"implementation", std::string(table.name)},
             {"vsn", table.vsn},
             {"type", std::string(table.state_type)},
             {"bytes", table.state_bytes(core.state)}};
    std::string head = fmt::format("{} vsn {}, a {} of ", table.name, table.vsn, table.state_type);
    head += print_bytes(table.state_bytes(core.state));
    if (!table.inspect_state) {
      out["text"] = head + "\n(its schemas do not enable inspect: see hotswap::enable_inspect)\n";
      return out;
    }
    std::string text(std::min<std::size_t>(max_text, 64 * 1024), '\0');
    std::size_t whole = table.inspect_state(core.state, text.data(), text.size());
    if (whole > text.size() && text.size() < max_text) {
      text.assign(std::min(whole, max_text), '\0');
      whole = table.inspect_state(core.state, text.data(), text.size());
    }
    text.resize(std::min(whole, text.size()));
    out["inspect"] = text;
    out["truncated"] = whole > text.size();
    out["text"] = fmt::format("{}\n{}{}\n", head, text,
                              whole > text.size() ? fmt::format("... ({} bytes more)", whole - text.size()) : "");
    return out;
  });
}

/// stats: the server's statistics, its timing switched first if asked.
inline result<json> stats_json(const any_server& server, std::optional<bool> timing, std::chrono::nanoseconds timeout) {
  if (timing)
    if (auto set = sys::statistics(server, *timing, timeout); !set) return set.error();
  auto status = sys::get_status(server, timeout);
  if (!status) return status.error();
  auto statistics = sys::statistics(server, timeout);
  if (!statistics) return statistics.error();
  const auto us = [](std::chrono::nanoseconds time) { return std::chrono::duration<double, std::micro>(time).count(); };
  json out{{"id", status->id},
           {"name", status->name},
           {"mailbox", status->mailbox_length},
           {"handled", statistics->messages_handled},
           {"timing", statistics->timing},
           {"time_in_handlers_us", us(statistics->time_in_handlers)},
           {"slow_handlers", statistics->slow_handlers},
           {"slowest_message", statistics->slowest_message},
           {"slowest_handler_us", us(statistics->slowest_handler)}};
  std::string text = fmt::format("{}\n  messages handled   {}\n  mailbox            {}\n", server.core()->label(),
                                 statistics->messages_handled, status->mailbox_length);
  text += statistics->timing ? fmt::format("  time in handlers   {:.1f} us\n", us(statistics->time_in_handlers))
                             : "  time in handlers   - (timing is off: stats --timing on)\n";
  text += fmt::format("  slow handlers      {}{}\n", statistics->slow_handlers,
                      statistics->slow_handlers ? fmt::format(" (slowest: {}, {:.1f} us)", statistics->slowest_message,
                                                              us(statistics->slowest_handler))
                                                : "");
  out["text"] = std::move(text);
  return out;
}

/// top: every server's counters now, with the program's clock; rates come from two of them.
inline json top_json(std::chrono::nanoseconds timeout) {
  json servers = json::array();
  for (const auto& server : all_servers()) {
    auto status = sys::get_status(server, timeout);
    auto statistics = sys::statistics(server, timeout);
    if (!status || !statistics) continue;  // busy or ended: in the next one
    servers.push_back(
        {{"id", status->id},
         {"name", status->name},
         {"implementation", status->implementation},
         {"mailbox", status->mailbox_length},
         {"handled", statistics->messages_handled},
         {"timing", statistics->timing},
         {"time_in_handlers_us", std::chrono::duration<double, std::micro>(statistics->time_in_handlers).count()}});
  }
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return {{"at_us", std::chrono::duration<double, std::micro>(now).count()}, {"servers", std::move(servers)}};
}

/// log: the server's last events (its log switched first if asked). A server that ended while
/// logged (a crash, say) keeps its log: `name` finds it while no live server named so is logged
/// (the supervisor's restart of it, say, or none).
inline result<json> log_json(server_watches<any_server>& watches, const result<any_server>& server,
                             const std::string& name, std::optional<bool> enable, std::chrono::nanoseconds timeout) {
  if (enable) {
    if (!server) return server.error();
    if (auto set = watches.set_log(*server, *enable, timeout); !set) return set.error();
  }
  bool logging = false;
  auto events = server ? watches.log(*server, logging) : std::vector<watched_event>{};
  const auto ended = logging || enable ? std::nullopt : watches.ended(name);
  if (!server && !ended) return server.error();
  const auto now = std::chrono::steady_clock::now();
  json listed = json::array(), out{{"logging", logging}};
  std::string text;
  if (logging) {
    text = fmt::format("the last {} events of server {} (ms before now):\n", events.size(), server->id());
  } else if (ended) {
    events = ended->events;
    text =
        fmt::format("server {}{} ended, {}; the last {} events its log kept (ms before now):\n", ended->id,
                    ended->name.empty() ? "" : " (" + ended->name + ")", last_exit_text(ended->reason), events.size());
    out["ended"] = {{"id", ended->id}, {"name", ended->name}, {"exit", last_exit_json(ended->reason)}};
  } else {
    text = fmt::format("the log of server {} is off (log {} --enable on switches it on)\n", server->id(), name);
  }
  for (const auto& event : events) {
    listed.push_back(to_event_json(event, now));
    text += to_event_text(event, now);
  }
  if (ended && server)
    text += fmt::format("(server {}, named {} now, is not logged: log {} --enable on)\n", server->id(), name, name);
  out["events"] = std::move(listed);
  out["text"] = std::move(text);
  return out;
}

/// watch: a module watch on a directory whose lines stream to the client until it goes (and the
/// watch with it).
template <class CodeServer>
class watch_stream final : public reply_stream {
 public:
  static result<std::unique_ptr<reply_stream>> open(CodeServer& code, const std::string& directory) {
    std::unique_ptr<watch_stream> made(new watch_stream(code));
    if (auto watched = made->watch_.watch(directory); !watched) return watched.error();
    return std::unique_ptr<reply_stream>(std::move(made));
  }
  bool pump(reply_lines& reply) override {
    std::vector<std::string> lines;
    {
      const std::lock_guard hold(said_->lock);
      lines.swap(said_->lines);
    }
    for (const auto& line : lines) reply.line(event_line("watch", {{"text", line + "\n"}}));
    return true;  // until the client goes
  }

 private:
  struct said {
    std::mutex lock;
    std::vector<std::string> lines;
  };
  explicit watch_stream(CodeServer& code)
      : watch_(code, {.print = [said = said_](const std::string& line) {
                 const std::lock_guard hold(said->lock);
                 said->lines.push_back(line);
               }}) {}
  std::shared_ptr<said> said_ = std::make_shared<said>();  // (before the watch, which prints to it)
  basic_module_watch<CodeServer> watch_;
};

/// Runs one request line, writing its progress lines and its reply line.
template <class CodeServer, class ReleaseHandler>
void run_request(std::string_view line, const control_peer& peer, reply_lines& reply, const std::string& program,
                 CodeServer& code, ReleaseHandler& releases, server_watches<any_server>& watches,
                 const control_options& limits) {
  const std::chrono::nanoseconds timeout = limits.server_timeout;
  auto request = decode_request(line);
  if (!request) return reply.line(reply_line(false, nullptr, request.error()));
  const std::string& command = request->command;
  if (peer.access == access_level::view &&
      (find_operator_command(command)->access == access_level::operate || request->timing))
    return reply.line(reply_line(
        false, nullptr,
        error{errc::not_permitted,
              fmt::format("uid {} may view, not operate: {}{} needs an operator (control_options::operator_uids)",
                          peer.uid, command, request->timing ? " --timing" : "")}));
  upgrade_options options;
  options.progress = [&](upgrade_stage stage, const std::string& told) {
    reply.line(json{{"event", "progress"}, {"stage", std::string(to_string(stage))}, {"line", told}}.dump(
        -1, ' ', false, json::error_handler_t::replace));
  };
  auto report_reply = [&](const upgrade_report& report) {
    reply.line(reply_line(report.outcome.has_value(), json(report), report ? error{} : report.outcome.error()));
  };
  auto answer = [&](const result<json>& made) {
    reply.line(made ? reply_line(true, *made) : reply_line(false, nullptr, made.error()));
  };
  if (command == "status") return reply.line(reply_line(true, status_json(program, code, releases, timeout)));
  if (command == "tree") return reply.line(reply_line(true, tree_json(timeout)));
  if (command == "top") return reply.line(reply_line(true, top_json(timeout)));
  if (!request->server.empty()) {
    auto server = named_server(request->server);
    if (command == "log") return answer(log_json(watches, server, request->server, request->enable, timeout));
    if (!server) return answer(server.error());
    if (command == "state") return answer(state_json(*server, limits.max_state_text, timeout));
    if (command == "stats") return answer(stats_json(*server, request->timing, timeout));
    auto traced = watches.trace(*server, request->count, timeout);
    if (!traced) return answer(traced.error());
    reply.line(event_line("tracing", {{"server", server->id()},
                                      {"text", fmt::format("tracing the next {} messages of server {} (ms since now)\n",
                                                           request->count, server->id())}}));
    return reply.follow(std::move(*traced));
  }
  if (command == "releases") {
    json known = json::array();
    std::string text = fmt::format("{:<24} {:<12} {}\n", "release", "vsn", "status");
    for (const auto& one : releases.which_releases()) {
      known.push_back({{"name", one.name}, {"vsn", one.vsn}, {"status", std::string(to_string(one.status))}});
      text += fmt::format("{:<24} {:<12} {}\n", one.name, one.vsn, to_string(one.status));
    }
    return reply.line(reply_line(true, {{"releases", std::move(known)}, {"text", std::move(text)}}));
  }
  if (command == "plan" || command == "downgrade") {
    auto plan = releases.plan(request->release, timeout);
    if (!plan) return reply.line(reply_line(false, nullptr, plan.error()));
    if (command == "plan") return reply.line(reply_line(true, json(*plan)));
    for (const auto& change : plan->changes)
      if (change.from_vsn && change.to_vsn > change.from_vsn)
        return reply.line(
            reply_line(false, nullptr,
                       error{errc::bad_request,
                             fmt::format("release {} {} is no downgrade: {} goes up from vsn {} to {} (upgrade it)",
                                         plan->to.name, plan->to.vsn, change.module, change.from_vsn, change.to_vsn)}));
  }
  if (command == "dry-run") return report_reply(releases.dry_run(request->release, options));
  if (command == "upgrade" || command == "downgrade") {
    options.grace_period =
        request->grace
            ? std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(*request->grace))
            : limits.grace_period;
    return report_reply(releases.upgrade(request->release, options));
  }
  if (command == "rollback") return report_reply(releases.rollback(options));
  if (command == "make-permanent") {
    auto made = releases.make_permanent();
    if (!made) return reply.line(reply_line(false, nullptr, made.error()));
    return reply.line(reply_line(true, {{"text", "the current release is permanent\n"}}));
  }
  if (command == "unpack") {
    auto put = releases.unpack(request->archive);
    if (!put) return reply.line(reply_line(false, nullptr, put.error()));
    return reply.line(reply_line(true, {{"name", put->name},
                                        {"vsn", put->vsn},
                                        {"manifest", put->manifest},
                                        {"text", fmt::format("unpacked release {} {}: {}\n(upgrade {} installs it)\n",
                                                             put->name, put->vsn, put->manifest, put->manifest)}}));
  }
  if (command == "remove-release") {
    auto removed = releases.remove_release(request->name, request->vsn);
    if (!removed) return reply.line(reply_line(false, nullptr, removed.error()));
    std::string text = fmt::format("removed release {} {}\n", removed->name, removed->vsn);
    for (const auto& file : removed->removed) text += "  deleted " + file + "\n";
    for (const auto& note : removed->notes) text += "  " + note + "\n";
    return reply.line(reply_line(true, {{"name", removed->name},
                                        {"vsn", removed->vsn},
                                        {"removed", removed->removed},
                                        {"notes", removed->notes},
                                        {"text", text}}));
  }
  if (command == "load") {
    auto loaded = code.load(request->file);
    if (!loaded) return reply.line(reply_line(false, nullptr, loaded.error()));
    const std::string text =
        fmt::format("loaded {} vsn {} ({})\n", (*loaded)->name(), (*loaded)->vsn(), (*loaded)->implementation());
    return reply.line(reply_line(true, {{"module", (*loaded)->name()}, {"vsn", (*loaded)->vsn()}, {"text", text}}));
  }
  if (command == "purge") {
    auto purged = code.purge(request->module, request->force ? purge_mode::force : purge_mode::soft);
    if (!purged) return reply.line(reply_line(false, nullptr, purged.error()));
    const std::string text =
        purged->vsn ? fmt::format("purged {} vsn {}{}{}\n", request->module, purged->vsn,
                                  purged->servers_stopped ? fmt::format(", {} servers stopped", purged->servers_stopped)
                                                          : std::string(),
                                  purged->note.empty() ? std::string() : ": " + purged->note)
                    : fmt::format("{} has no old version\n", request->module);
    return reply.line(reply_line(true, {{"vsn", purged->vsn},
                                        {"servers_stopped", purged->servers_stopped},
                                        {"unmapped", purged->unmapped},
                                        {"text", text}}));
  }
  if (command == "watch") {
    auto stream = watch_stream<CodeServer>::open(code, request->directory);
    if (!stream) return answer(stream.error());
    reply.line(event_line(
        "watching",
        {{"text", fmt::format("watching {} for module files; {}\n", request->directory,
                              code.development() ? "a rebuild of the same vsn is taken (development mode)"
                                                 : "only newer vsns are taken (the code server is not in development "
                                                   "mode)")}}));
    return reply.follow(std::move(*stream));
  }
  reply.line(reply_line(false, nullptr, error{errc::bad_request, "command " + command + " is not served here"}));
}

}  // namespace detail

template <class CodeServer>
result<control_socket> open_control(CodeServer& code, basic_release_handler<CodeServer>& releases,
                                    control_options options) {
  const std::string program = options.program.empty() ? detail::program_name() : options.program;
  const std::string directory = options.directory.empty() ? detail::default_socket_directory() : options.directory;
  const bool shared = !options.operator_uids.empty() || !options.viewer_uids.empty();
  auto opened = detail::open_socket_directory(directory, shared);
  if (!opened) return opened.error();
  auto path = detail::socket_path(directory, program);
  if (!path) return path.error();
  auto log = options.log ? options.log : [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  auto watches = std::make_shared<detail::server_watches<any_server>>(
      options.log_size, options.trace_rate,
      [](const any_server& server, std::function<trace_hook(trace_hook)> change, std::chrono::nanoseconds timeout) {
        return sys::replace_trace(server, std::move(change), timeout);
      });
  const detail::listener_limits limits{
      options.operator_uids, options.viewer_uids, options.max_connections, options.max_streams_per_uid,
      options.max_request,   options.max_pending, options.deadline};
  auto listener = detail::control_listener::open(
      opened->fd(), path->substr(path->rfind('/') + 1), *path, limits,
      [&code, &releases, program, watches, options](std::string_view line, const detail::control_peer& peer,
                                                    detail::reply_lines& reply) {
        detail::run_request(line, peer, reply, program, code, releases, *watches, options);
      },
      std::move(log));
  if (!listener) return listener.error();
  return control_socket(std::move(*listener));
}

}  // namespace hotswap
