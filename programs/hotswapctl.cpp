// hotswapctl: drives a running hotswap program through its control socket, as an operator drives
// an Erlang node from a remote shell: look at its servers, and upgrade it, from outside.
//
//   hotswapctl list                                  # this user's running programs
//   hotswapctl anemone status                        # a program by name (or -p PID, -s SOCKET)
//   hotswapctl anemone upgrade build/anemone-3.release.json
//   hotswapctl anemone upgrade ... --json            # the program's reply lines, for scripts
//   hotswapctl --version                             # hotswap's version
//
// Its subcommands are the control server's commands (detail/control/request.hpp lists them
// once, with their help); docs/operations.md shows each with its output.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <hotswap/detail/common/utf8.hpp>
#include <hotswap/detail/control/request.hpp>
#include <hotswap/detail/control/socket_place.hpp>
#include <hotswap/version.hpp>

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
namespace detail = hotswap::detail;

/// hotswapctl's exit statuses (docs/operations.md lists them).
enum exit_status : int {
  done = 0,
  refused = 1,      ///< the program refused the request; nothing changed
  rolled_back = 2,  ///< an upgrade, downgrade or rollback failed and every server went back
  no_program = 3,   ///< no program to talk to: none found, the socket refused or not believed, or the connection lost
  usage = 64,       ///< a command line that is not one (EX_USAGE)
};

/// What ends hotswapctl: a line for standard error, and its exit status.
struct stop {
  exit_status status;
  std::string why;
};

/// The longest reply line taken: a program that sends a line without an end is refused there.
constexpr std::size_t largest_line = std::size_t{64} << 20;

/// `text` made safe to show on a terminal (detail::visible): what a program sent, or a file name,
/// could clear the screen or fake lines.
std::string visible(std::string_view text) {
  return detail::visible(text);
}

/// A JSON line for --json: ASCII only, so that DEL and C1 characters are escaped as C0 ones are
/// (a name that is not UTF-8, from a directory, gets U+FFFD).
std::string json_text(const json& line) {
  return line.dump(-1, ' ', true, json::error_handler_t::replace);
}

/// The uids hotswapctl believes beside its own: root's, and those given with --peer-uid.
using trusted_uids = std::vector<uid_t>;

bool trusts(const trusted_uids& others, uid_t uid) {
  return uid == ::geteuid() || std::find(others.begin(), others.end(), uid) != others.end();
}

/// Checks the socket at `path` before connecting: in a directory checked as the program checks
/// its own (detail::check_socket_directory), and a socket of a trusted user.
void check_socket_file(const std::string& path, const trusted_uids& others) {
  const std::string absolute = detail::absolute(path);
  const std::string directory = absolute.substr(0, absolute.rfind('/'));
  if (auto checked = detail::check_socket_directory(directory.empty() ? "/" : directory, others); !checked)
    throw stop{no_program, fmt::format("{}: {}", path, checked.error().what)};
  struct stat seen {};
  if (::lstat(path.c_str(), &seen) != 0)
    throw stop{no_program, fmt::format("cannot connect to {}: {}", path, std::strerror(errno))};
  if (!S_ISSOCK(seen.st_mode)) throw stop{no_program, path + " is not a socket: refused"};
  if (!trusts(others, seen.st_uid))
    throw stop{no_program, fmt::format("{} belongs to uid {}: refused", path, seen.st_uid)};
}

// -- finding programs --

struct program_socket {
  std::string program;
  long pid;
  std::string path;
};

/// This user's running programs with a control socket in `directory` (a socket whose pid is
/// gone is left over from a program that was killed: not listed).
std::vector<program_socket> running_programs(const std::string& directory) {
  std::vector<program_socket> found;
  std::error_code failed;
  for (const auto& entry : std::filesystem::directory_iterator(directory, failed)) {
    const std::string name = entry.path().filename();
    if (!name.ends_with(".sock")) continue;
    const std::string stem = name.substr(0, name.size() - 5);
    const auto dot = stem.rfind('.');
    if (dot == std::string::npos || dot == 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(stem.c_str() + dot + 1, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) continue;
    found.push_back({stem.substr(0, dot), pid, entry.path()});
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  return found;
}

/// The socket the command line names: -s, -p, a program's name, or the only program running.
std::string socket_of(const std::string& directory, const std::string& socket, long pid, const std::string& name,
                      const trusted_uids& others) {
  if (!socket.empty()) return socket;
  std::vector<program_socket> matching;
  const std::string which = pid ? fmt::format("with pid {}", pid) : name.empty() ? "" : "named " + name;
  // A directory the program would refuse is not believed; a missing one holds no program.
  if (auto checked = detail::check_socket_directory(directory, others); !checked) {
    if (checked.error().code != hotswap::errc::no_file) throw stop{no_program, checked.error().what};
  } else {
    for (auto& one : running_programs(directory))
      if ((pid && one.pid == pid) || (!pid && (name.empty() || one.program == name))) matching.push_back(one);
  }
  if (matching.empty())
    throw stop{no_program, fmt::format("no running program {}{}has a control socket in {}", which,
                                       which.empty() ? "" : " ", directory)};
  if (matching.size() > 1) {
    std::string listed;
    for (const auto& one : matching) listed += fmt::format(" {} (pid {})", one.program, one.pid);
    throw stop{usage, fmt::format("{} programs {}{}run:{}; name one with -p PID", matching.size(), which,
                                  which.empty() ? "" : " ", listed)};
  }
  return matching.front().path;
}

// -- talking to one --

/// A connection to a program's control socket, a JSON line each way; the program is believed
/// only if it runs as this user, root, or a uid given with --peer-uid (SO_PEERCRED).
class connection {
 public:
  connection(const std::string& path, const trusted_uids& others) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) throw stop{no_program, path + ": too long for a socket address"};
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
      throw stop{no_program, fmt::format("cannot connect to {}: {}", path, std::strerror(errno))};
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0)
      throw stop{no_program, fmt::format("{}: cannot tell who runs the program: {}", path, std::strerror(errno))};
    if (!trusts(others, peer.uid))
      throw stop{no_program, fmt::format("{}: the program there runs as uid {} (pid {}), not as this user (uid {}) "
                                         "nor root: refused (--peer-uid {} believes it)",
                                         path, peer.uid, peer.pid, ::geteuid(), peer.uid)};
  }
  ~connection() { ::close(fd_); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  void send(const json& request) {
    const std::string line = request.dump() + "\n";
    for (std::size_t sent = 0; sent < line.size();) {
      const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw stop{no_program, fmt::format("{}: the program closed the connection", path_)};
      sent += static_cast<std::size_t>(n);
    }
  }

  /// The next line, waiting at most `timeout` (none when zero), its fields of the types read.
  json line(std::chrono::milliseconds timeout) {
    for (;;) {
      if (const auto end = pending_.find('\n', scanned_); end != std::string::npos) {
        const json parsed = json::parse(pending_.begin(), pending_.begin() + static_cast<long>(end), nullptr, false);
        pending_.erase(0, end + 1);
        scanned_ = 0;
        if (parsed.is_discarded() || !parsed.is_object())
          throw stop{no_program, path_ + ": the program answered something that is not a JSON object"};
        if (const char* wrong = mistyped(parsed))
          throw stop{no_program, fmt::format("{}: the program answered a line whose {}: refused", path_, wrong)};
        return parsed;
      }
      scanned_ = pending_.size();
      pollfd waited{fd_, POLLIN, 0};
      const int ready = ::poll(&waited, 1, timeout.count() ? static_cast<int>(timeout.count()) : -1);
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) throw stop{no_program, fmt::format("{}: no answer within {} s", path_, timeout.count() / 1000)};
      char chunk[65536];
      const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) throw stop{no_program, path_ + ": the program closed the connection before its reply"};
      // Refused before it is kept: what is held stays within the bound.
      if (pending_.size() + static_cast<std::size_t>(got) > largest_line &&
          std::memchr(chunk, '\n', static_cast<std::size_t>(got)) == nullptr)
        throw stop{no_program,
                   fmt::format("{}: the program sent a line longer than {} MiB: refused", path_, largest_line >> 20)};
      pending_.append(chunk, static_cast<std::size_t>(got));
    }
  }

 private:
  /// What is of the wrong type in a line, of those fields hotswapctl reads (null: none).
  static const char* mistyped(const json& line) {
    auto is = [&](const char* pointer, auto check) {
      const json::json_pointer at(pointer);
      return !line.contains(at) || check(line[at]);
    };
    auto string = [](const json& field) { return field.is_string(); };
    auto object = [](const json& field) { return field.is_object(); };
    if (!line.contains("ok"))  // an event
      return !is("/text", string) ? "text is not a string" : !is("/line", string) ? "line is not a string" : nullptr;
    if (!line["ok"].is_boolean()) return "ok is not true or false";
    if (!is("/result", object)) return "result is not an object";
    if (!is("/result/text", string)) return "result's text is not a string";
    if (!is("/error", object)) return "error is not an object";
    if (!is("/error/code", string) || !is("/error/message", string)) return "error's code or message is not a string";
    return nullptr;
  }

  std::string path_;
  int fd_ = -1;
  std::string pending_;
  std::size_t scanned_ = 0;  // bytes of pending_ known to hold no end of line
};

/// The exit status a failed reply means.
exit_status failure_status(const std::string& command, const json& reply) {
  const std::string code = reply.value("/error/code"_json_pointer, std::string());
  const bool moved_servers = command == "upgrade" || command == "downgrade" || command == "rollback";
  const bool nothing_moved =
      code == "plan_refused" || code == "bad_release" || code == "no_release" || code == "bad_request";
  return moved_servers && !nothing_moved && reply.contains("result") ? rolled_back : refused;
}

struct output_options {
  bool json_lines = false;
  std::chrono::milliseconds timeout{0};
};

/// Sends one request and shows its event lines as they come, then its reply. Returns the reply.
json ask(connection& program, const json& request, const output_options& output) {
  const auto sent = clock_type::now();
  program.send(request);
  for (;;) {
    json line = program.line(output.timeout);
    if (output.json_lines) fmt::print("{}\n", json_text(line));
    if (line.contains("ok")) return line;
    if (output.json_lines) {
      std::fflush(stdout);
      continue;
    }
    if (line.contains("text"))  // a trace's or a watch's lines
      fmt::print("{}", visible(line.value("text", "")));
    else  // an upgrade's step, as it happens
      fmt::print("[{:>9.3f} ms] {}\n", std::chrono::duration<double, std::milli>(clock_type::now() - sent).count(),
                 visible(line.value("line", json_text(line))));
    std::fflush(stdout);
  }
}

/// Runs one command: its reply's text on standard output, its failure on standard error.
int run_command(connection& program, const json& request, const output_options& output) {
  const json reply = ask(program, request, output);
  const std::string command = request["command"];
  if (reply.value("ok", false)) {
    if (!output.json_lines) fmt::print("{}", visible(reply.value("/result/text"_json_pointer, std::string())));
    return done;
  }
  if (!output.json_lines) {
    // A report shows the step that failed; one of a plan refused before any step has nothing to show.
    if (reply.contains("/result/text"_json_pointer) && !reply["result"].value("steps", json::array({0})).empty())
      fmt::print("{}", visible(reply["result"]["text"].get<std::string>()));
    const auto status = failure_status(command, reply);
    fmt::print(stderr, "hotswapctl: {} {}: {} {}\n", command, status == rolled_back ? "failed, rolled back" : "refused",
               visible(reply.value("/error/code"_json_pointer, std::string())),
               visible(reply.value("/error/message"_json_pointer, std::string())));
  }
  return failure_status(command, reply);
}

// -- top --

struct top_options {
  std::string sort = "rate";
  double interval = 1;
  int iterations = 0;  // 0: until interrupted (on a terminal), else once
};

/// Snapshots every `interval`; ranks the servers by what changed between two.
int run_top(connection& program, const top_options& options, const output_options& output) {
  const bool terminal = ::isatty(STDOUT_FILENO);
  const int iterations = options.iterations ? options.iterations : terminal ? -1 : 1;
  const json request{{"command", "top"}};
  auto snapshot = [&] {
    json reply = ask(program, request, output);
    if (!reply.value("ok", false))
      throw stop{refused, "top: " + reply.value("/error/message"_json_pointer, std::string())};
    return reply["result"];
  };
  json before = snapshot();
  for (int shown = 0; iterations < 0 || shown < iterations; ++shown) {
    std::this_thread::sleep_for(std::chrono::duration<double>(options.interval));
    json now = snapshot();
    if (output.json_lines) {
      before = std::move(now);
      continue;
    }
    const double seconds = (now["at_us"].get<double>() - before["at_us"].get<double>()) / 1e6;
    std::map<std::uint64_t, json> earlier;
    for (const auto& server : before["servers"]) earlier[server["id"].get<std::uint64_t>()] = server;
    struct row {
      json server;
      double rate, busy;
    };
    std::vector<row> rows;
    for (const auto& server : now["servers"]) {
      const auto was = earlier.find(server["id"].get<std::uint64_t>());
      const double handled =
          server["handled"].get<double>() - (was == earlier.end() ? 0 : was->second["handled"].get<double>());
      const double busy_us = server["time_in_handlers_us"].get<double>() -
                             (was == earlier.end() ? 0 : was->second["time_in_handlers_us"].get<double>());
      rows.push_back({server, handled / seconds, server["timing"].get<bool>() ? busy_us / (seconds * 1e4) : -1});
    }
    std::stable_sort(rows.begin(), rows.end(), [&](const row& a, const row& b) {
      if (options.sort == "mailbox")
        return a.server["mailbox"].get<std::size_t>() > b.server["mailbox"].get<std::size_t>();
      if (options.sort == "time") return a.busy > b.busy;
      return a.rate > b.rate;
    });
    if (terminal) fmt::print("\x1b[H\x1b[2J");
    fmt::print("{} servers, over {:.2f} s, by {}\n\n{:>6} {:<20} {:<36} {:>8} {:>10} {:>7}\n", rows.size(), seconds,
               options.sort == "rate"   ? "messages a second"
               : options.sort == "time" ? "time in handlers"
                                        : "mailbox",
               "id", "name", "implementation", "mailbox", "msgs/s", "busy");
    for (const auto& one : rows) {
      const std::string name = one.server["name"];
      fmt::print("{:>6} {:<20} {:<36} {:>8} {:>10.1f} {:>7}\n", one.server["id"].get<std::uint64_t>(),
                 name.empty() ? "-" : visible(name), visible(one.server["implementation"].get<std::string>()),
                 one.server["mailbox"].get<std::size_t>(), one.rate,
                 one.busy < 0 ? std::string("-") : fmt::format("{:.1f}%", one.busy));
    }
    std::fflush(stdout);
    before = std::move(now);
  }
  return done;
}

// -- the command line --

/// The command line's first word that is not an option nor an option's value: a program's name
/// when it is no command (`hotswapctl anemone status`). Taken out of `args` if so.
std::string take_program_name(std::vector<std::string>& args, const std::vector<std::string>& commands) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") return {};
    if (word.starts_with("-")) {
      const bool takes_value = word == "-p" || word == "--pid" || word == "-s" || word == "--socket" || word == "-d" ||
                               word == "--directory" || word == "--timeout" || word == "--peer-uid";
      i += takes_value;
      continue;
    }
    if (std::find(commands.begin(), commands.end(), word) != commands.end()) return {};
    std::string name = word;
    args.erase(args.begin() + static_cast<long>(i));
    return name;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "hotswapctl: look at a running hotswap program and upgrade it, through its control socket.\n\n"
      "  hotswapctl list\n"
      "  hotswapctl [-p PID | -s SOCKET | NAME] COMMAND [ARGS] [--json]\n\n"
      "Options go anywhere on the line. "
      "A program is found by its name (the socket NAME.PID.sock of this user), its pid, or its socket's "
      "path; with none given, the only program running is meant. Output is for people (aligned tables, an "
      "upgrade's steps as they happen, with the milliseconds since the request); --json prints the "
      "program's reply lines as they come, a JSON object each, for scripts.",
      "hotswapctl"};
  app.footer(
      "Exit status: 0 done; 1 refused (nothing changed); 2 failed and rolled back (every server back on "
      "its old code with its state); 3 no program (none found, the socket refused or not believed, or "
      "the connection lost); 64 usage.\n\nSee docs/operations.md for every command with its output.");
  app.require_subcommand(1);
  app.set_version_flag("--version", "hotswapctl (hotswap) " HOTSWAP_VERSION_STRING, "print hotswap's version");
  std::string directory = detail::default_socket_directory(), socket;
  long pid = 0;
  output_options output;
  double timeout_seconds = 60;
  app.add_option("-p,--pid", pid, "the program's pid");
  app.add_option("-s,--socket", socket, "the program's control socket");
  app.add_option("-d,--directory", directory, "where programs put their sockets")->capture_default_str();
  app.add_flag("--json", output.json_lines, "print the program's reply lines, a JSON object each");
  app.add_option("--timeout", timeout_seconds, "seconds to wait for each line of a reply (0: no limit)")
      ->capture_default_str();
  trusted_uids others;
  app.add_option("--peer-uid", others,
                 "believe a program run by this uid too, and its socket's directory (another user's program "
                 "that shares its socket: control_options::operator_uids or viewer_uids)");

  std::vector<std::string> commands{"list"};
  app.add_subcommand("list", "this user's running programs with a control socket")->fallthrough();

  // Each of the control server's commands, its fields as arguments.
  std::map<std::string, json> requests;
  std::map<std::string, std::string> switches;  // on/off options, by "command field"
  for (const auto& command : detail::operator_commands()) {
    const std::string name(command.name);
    commands.push_back(name);
    auto* sub = app.add_subcommand(name, std::string(command.summary));
    sub->footer(std::string(command.help));
    sub->fallthrough();  // hotswapctl's own options go anywhere: `hotswapctl anemone status --json`
    requests[name] = {{"command", name}};
    for (const auto& field : command.fields) {
      const std::string key(field.name);
      std::string upper = key;
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      switch (field.kind) {
        case detail::operator_field::text: {
          auto* option = sub->add_option_function<std::string>(
              upper,
              [&requests, name, key](const std::string& value) {
                // A path is the program's to open, from its own directory: made absolute here.
                requests[name][key] = key == "release" || key == "file" || key == "directory" || key == "archive"
                                          ? std::filesystem::absolute(value).string()
                                          : value;
              },
              std::string(field.help));
          if (field.required) option->required();
          break;
        }
        case detail::operator_field::count:
          sub->add_option_function<std::uint64_t>(
                 upper, [&requests, name, key](std::uint64_t value) { requests[name][key] = value; },
                 std::string(field.help))
              ->required(field.required)
              ->check(CLI::Range(1, 1'000'000));
          break;
        case detail::operator_field::seconds:
          sub->add_option_function<double>(
                 "--" + key, [&requests, name, key](double value) { requests[name][key] = value; },
                 std::string(field.help))
              ->check(CLI::Range(0.0, detail::longest_grace));
          break;
        case detail::operator_field::flag:
          if (key == "force")
            sub->add_flag_callback(
                "--force", [&requests, name, key] { requests[name][key] = true; }, std::string(field.help));
          else
            sub->add_option_function<std::string>(
                   "--" + key,
                   [&requests, name, key](const std::string& value) { requests[name][key] = value == "on"; },
                   std::string(field.help))
                ->check(CLI::IsMember({"on", "off"}));
          break;
      }
    }
  }
  top_options top;
  auto* top_command = app.get_subcommand("top");
  top_command->add_option("--sort", top.sort, "rank by: rate (messages a second), time (in handlers), mailbox")
      ->check(CLI::IsMember({"rate", "time", "mailbox"}))
      ->capture_default_str();
  top_command->add_option("-i,--interval", top.interval, "seconds between two refreshes")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  top_command->add_option("-n,--iterations", top.iterations,
                          "refreshes before it ends (default: until interrupted on a terminal, else one)");

  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string program_name = take_program_name(args, commands);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& wrong) {
    const int status = app.exit(wrong);
    if (status != 0 && !program_name.empty() && app.get_subcommands().empty())
      fmt::print(stderr, "({} was taken for a program's name: it is no command; hotswapctl --help lists them)\n",
                 program_name);
    return status == 0 ? done : usage;
  }
  std::string path;  // the socket talked to
  try {
    others.push_back(0);  // root's programs are believed, as a program believes root
    output.timeout = std::chrono::milliseconds(static_cast<long>(timeout_seconds * 1000));
    const std::string chosen = app.get_subcommands().front()->get_name();
    if (chosen == "list") {
      if (!program_name.empty() || pid || !socket.empty()) throw stop{usage, "list takes no program"};
      const auto checked = detail::check_socket_directory(directory, others);
      if (!checked && checked.error().code != hotswap::errc::no_file) throw stop{no_program, checked.error().what};
      const auto programs = checked ? running_programs(directory) : std::vector<program_socket>{};
      if (output.json_lines)
        for (const auto& one : programs)
          fmt::print("{}\n", json_text(json{{"program", one.program}, {"pid", one.pid}, {"socket", one.path}}));
      else if (programs.empty())
        fmt::print("no running program has a control socket in {}\n", visible(directory));
      else {
        fmt::print("{:<24} {:>8}  {}\n", "program", "pid", "socket");
        for (const auto& one : programs)
          fmt::print("{:<24} {:>8}  {}\n", visible(one.program), one.pid, visible(one.path));
      }
      return done;
    }
    path = socket_of(directory, socket, pid, program_name, others);
    check_socket_file(path, others);
    connection program(path, others);
    if (chosen == "top") return run_top(program, top, output);
    if (chosen == "trace" && !app.get_option("--timeout")->count()) output.timeout = {};  // waits for messages
    return run_command(program, requests[chosen], output);
  } catch (const stop& stopped) {
    fmt::print(stderr, "hotswapctl: {}\n", visible(stopped.why));
    return stopped.status;
  } catch (const json::exception& wrong) {  // a field of the wrong type, read past the checks of `line`
    fmt::print(stderr, "hotswapctl: {}: the program answered what hotswapctl cannot read ({}): refused\n",
               visible(path), visible(wrong.what()));
    return no_program;
  }
}
