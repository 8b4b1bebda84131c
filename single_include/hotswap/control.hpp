// hotswap's control socket, generated from include/ by tools/amalgamate.py; do not edit.
#pragma once
#include "watch.hpp"
// ---- hotswap/control.hpp ----
// The control socket (<hotswap/control.hpp>, beside the umbrella header, not in it): a program
// opens it with one call, and operators drive its release handler and look at its servers from
// outside, with hotswapctl or any client speaking a JSON object a line.
//
//     hotswap::code_server code;
//     hotswap::release_handler releases(code);
//     auto control = hotswap::open_control(code, releases, {.program = "anemone"}).value();
//     // $XDG_RUNTIME_DIR/hotswap/anemone.<pid>.sock until `control` goes
//
// docs/operations.md describes the socket, its security and every command.

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

// ---- hotswap/detail/control/listener.hpp ----
// The control socket's listener, on Boost.Asio and one thread of its own (never a worker's):
// each connection's peer checked before a byte is read and given its role, bounded requests,
// bounded connections (one kept for the program's own user) and streams a uid, a deadline on
// each, one request line a connection a turn (a client that keeps writing starves nobody), and
// replies written as far as the socket takes them (a client that does not read stalls nobody).
//
// A connection is a shared `session`: what runs for it (a read, a wait to write, a timer, a
// stream's pump) holds it, so nothing it owns is freed beneath a caller. A reply stream is
// destroyed only by the listener, never from inside its own pump: a connection that fails while
// the stream writes is closed at once and the stream let go once its pump has returned.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

// ---- hotswap/detail/control/request.hpp ----
// A control request: one JSON object on one line, decoded and checked against the command's
// fields before anything runs (the libFuzzer target in tests/fuzz feeds this any bytes).
//
//     {"command": "upgrade", "release": "/srv/anemone/anemone-3.release.json"}
//
// The commands and their fields are listed once, here: the control server checks requests
// against the list, and hotswapctl makes its subcommands and their help from it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>


namespace hotswap::detail {

/// A request, its fields checked: those its command does not take are empty.
struct operator_request {
  std::string command;
  std::string release;          ///< plan, dry-run, upgrade, downgrade: a release manifest's path
  std::string file;             ///< load: a module file's path
  std::string module;           ///< purge: a module's name
  std::string directory;        ///< watch: a directory of module files
  std::string server;           ///< state, stats, log, trace: a server's registered name or id
  std::string name, vsn;        ///< remove-release: a release's name and vsn
  std::string archive;          ///< unpack: a release archive's path
  std::uint64_t count = 0;      ///< trace: how many messages
  bool force = false;           ///< purge: stop the servers still using the old version
  std::optional<bool> timing;   ///< stats: the timing of handlers switched on or off
  std::optional<bool> enable;   ///< log: the server's log switched on or off
  std::optional<double> grace;  ///< upgrade, downgrade: the grace period, in seconds
};

/// The longest grace period a request may ask for, in seconds: a year.
inline constexpr double longest_grace = 365.0 * 24 * 3600;

/// A field a command takes: a string, a count (1 to 1,000,000), a boolean, or seconds (0 to a
/// year, with a fraction).
struct operator_field {
  enum kind_type { text, count, flag, seconds } kind;
  std::string_view name;
  bool required;
  std::string_view help;
};

/// What a uid's role grants (control_options::viewer_uids, operator_uids): viewers see how the
/// program runs; operators change it, and see what its servers hold and are sent.
enum class access_level { view, operate };

struct operator_command {
  std::string_view name;
  std::vector<operator_field> fields;
  std::string_view summary;  ///< one line
  std::string_view help;     ///< what it does, for `hotswapctl COMMAND --help` and docs/operations.md
  access_level access = access_level::operate;  ///< the least role that may run it
};

inline const std::vector<operator_command>& operator_commands() {
  using field = operator_field;
  const field release{field::text, "release", true, "the release's manifest file (NAME-VSN.release.json)"};
  const field server{field::text, "server", true, "a server's registered name, or its id"};
  const field grace{field::seconds, "grace", false,
                    "the grace period: until make-permanent, or for this long, a server of the release whose handler "
                    "throws goes back to its version before with its state, and the release rolls back (0: none; "
                    "default: the program's, control_options::grace_period)"};
  static const std::vector<operator_command> commands{
      {"status",
       {},
       "the program, its release, its modules and every server",
       "Lists the running release, every loaded module with its current and old vsn and the servers on "
       "each, and every server: id, name, interface, implementation, vsn, suspended, mailbox, messages "
       "handled. A server too busy to answer at once is listed as busy.",
       access_level::view},
      {"tree",
       {},
       "the supervision trees",
       "Each supervisor with its children by id, down the tree; servers no supervisor owns are listed "
       "on their own.",
       access_level::view},
      {"state",
       {server},
       "a server's state",
       "The server's state, printed as Elixir's inspect prints it where its schema enables inspect, "
       "else its type; with its vsn and the bytes it holds."},
      {"stats",
       {server,
        {field::flag, "timing", false, "switch the timing of handlers on or off (it costs two clock reads a message)"}},
       "a server's statistics",
       "Messages handled, time in handlers (while timing is on), mailbox, and the slowest handler.",
       access_level::view},
      {"top",
       {},
       "every server's load, for hotswapctl top",
       "A snapshot of every server's mailbox, messages handled and time in handlers, with the program's "
       "clock: hotswapctl top ranks the servers by the difference between two of them.",
       access_level::view},
      {"log",
       {server, {field::flag, "enable", false, "switch the server's log on or off"}},
       "the last events of a server (Erlang's sys:log)",
       "The last messages the server took in and handled, from a bounded ring kept while its log is on."},
      {"trace",
       {server, {field::count, "count", true, "how many messages"}},
       "the next COUNT messages in and out of a server, as they happen",
       "Streams a line for each message the server takes in or handles, COUNT in all, at most the "
       "program's trace rate a second (those beyond are counted, not sent), then a summary. Tracing "
       "stops when the client goes."},
      {"releases",
       {},
       "the releases the program knows: permanent, current, old, unpacked",
       "Every release the release handler knows, with its vsn and status.",
       access_level::view},
      {"plan",
       {release},
       "the plan to a release, validated, without running it",
       "The plan's steps in order, the servers of each; refused with every reason at once if any check fails."},
      {"dry-run",
       {release},
       "every migration of the plan tried on the running states, nothing changed",
       "Runs every migration on a copy of each server's state, measures each, and discards them; reports "
       "the expected pause."},
      {"upgrade",
       {release, grace},
       "the release installed: a line per step as it happens, then the report",
       "Loads the release's modules, suspends every affected server at once, changes their code, resumes "
       "them and purges the old versions, as one transaction: if any step fails, every server goes back "
       "to its old code with its old state. The release then runs in its grace period (--grace) until "
       "make-permanent: a server whose handler throws goes back to its old code with its state, and the release "
       "rolls back by itself."},
      {"downgrade",
       {release, grace},
       "an older release installed, each server's state migrated down",
       "As upgrade, to a release whose modules are older: each server's state is migrated down. Refused "
       "if any module would go up."},
      {"make-permanent",
       {},
       "the current release made permanent, ending its grace period",
       "Makes the current release the one the program boots, and ends its grace period."},
      {"rollback",
       {},
       "back to the permanent release, every server keeping its state",
       "Installs the permanent release again: each server's state migrated down, none lost."},
      {"unpack",
       {{field::text, "archive", true, "the release's archive (NAME-VSN.release.tar, hotswap-seal pack makes one)"}},
       "a release shipped as one archive checked and put in place (OTP's unpack_release)",
       "Reads the archive (a flat tar of the manifest, the modules it names and their signature), checks every file "
       "and, when the program trusts keys, the signature over them all and each module's seal, then puts the release "
       "in the release handler's directory, recorded unpacked: upgrade its manifest (the path printed) to install "
       "it. A refused archive leaves nothing behind."},
      {"remove-release",
       {{field::text, "name", true, "the release's name"}, {field::text, "vsn", true, "the release's vsn"}},
       "an old release forgotten, and the files only it used deleted (OTP's remove_release)",
       "Forgets an old release (refused for the permanent and the current one, and a release not known) and "
       "records that; if unpack put it in place, deletes the files of its directory in the release handler's that no "
       "other known release names. Files anywhere else are never deleted."},
      {"load",
       {{field::text, "file", true, "the module file (a shared library built with hotswap_add_module)"}},
       "a module file loaded, checked before any of its code runs",
       "Loads a module through the code server: its seal, ABI, interface and schemas are checked before "
       "any of its code runs. The servers stay on their code until an upgrade moves them."},
      {"purge",
       {{field::text, "module", true, "the module's name"},
        {field::flag, "force", false, "stop the servers still on the old version first"}},
       "a module's old version unloaded",
       "Unloads the old version of a module; refused while servers run it, unless forced."},
      {"watch",
       {{field::text, "directory", true, "the directory the build writes the program's module files to"}},
       "module files reloaded as the build rewrites them, a line each (the development loop)",
       "Watches the directory until the client goes: each module file the build finishes writing whose "
       "module the program runs is loaded, and every server on the module upgraded to it in one "
       "transaction, or refused with the reason and the old code serving on. A program whose code server "
       "is in development mode takes another build of the same vsn; a handler of a reloaded build that "
       "throws within a minute puts its servers back on the build before, with their state."},
  };
  return commands;
}

inline const operator_command* find_operator_command(std::string_view name) {
  for (const auto& one : operator_commands())
    if (one.name == name) return &one;
  return nullptr;
}

/// A reply line: {"ok": true, "result": ...} or {"ok": false, "error": {"code", "message"},
/// "result": ...} (a failed upgrade's report). Bytes that are not UTF-8 (a path, a message
/// quoting a request) are replaced, never thrown on.
inline std::string reply_line(bool ok, nlohmann::json result, const error& failure = {}) {
  nlohmann::json line{{"ok", ok}};
  if (!ok) line["error"] = {{"code", to_string(failure.code)}, {"message", failure.what}};
  if (!result.is_null()) line["result"] = std::move(result);
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// An event line, sent before a request's reply: {"event": kind, ...fields}.
inline std::string event_line(std::string_view kind, nlohmann::json fields) {
  fields["event"] = kind;
  return fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The request on `line` (without its newline), or why it is none (errc::bad_request).
inline result<operator_request> decode_request(std::string_view line) {
  using json = nlohmann::json;
  const json parsed = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return error{errc::bad_request, "not JSON: a request is one JSON object on one line"};
  if (!parsed.is_object()) return error{errc::bad_request, "not a JSON object: a request is {\"command\": ...}"};
  const auto command = parsed.find("command");
  if (command == parsed.end() || !command->is_string())
    return error{errc::bad_request, "no \"command\" string in the request"};
  const std::string& name = command->get_ref<const std::string&>();
  const operator_command* known = find_operator_command(name);
  if (!known) {
    std::string names;
    for (const auto& one : operator_commands()) names += (names.empty() ? "" : ", ") + std::string(one.name);
    return error{errc::bad_request, "unknown command \"" + name.substr(0, 64) + "\" (commands: " + names + ")"};
  }
  operator_request request;
  request.command = name;
  for (const auto& [key, value] : parsed.items()) {
    if (key == "command") continue;
    const operator_field* field = nullptr;
    for (const auto& one : known->fields)
      if (one.name == key) field = &one;
    if (!field) return error{errc::bad_request, name + " takes no \"" + key.substr(0, 64) + "\""};
    switch (field->kind) {
      case operator_field::flag:
        if (!value.is_boolean()) return error{errc::bad_request, "\"" + key + "\" must be true or false"};
        (key == "force" ? request.force : (key == "timing" ? request.timing : request.enable).emplace()) =
            value.get<bool>();
        break;
      case operator_field::count:
        if (!value.is_number_unsigned() || value.get<std::uint64_t>() < 1 || value.get<std::uint64_t>() > 1'000'000)
          return error{errc::bad_request, "\"" + key + "\" must be a whole number from 1 to 1000000"};
        request.count = value.get<std::uint64_t>();
        break;
      case operator_field::seconds:
        if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() <= longest_grace))
          return error{errc::bad_request, "\"" + key + "\" must be a number of seconds from 0 to 31536000"};
        request.grace = value.get<double>();
        break;
      case operator_field::text:
        if (!value.is_string() || value.get_ref<const std::string&>().empty())
          return error{errc::bad_request, "\"" + key + "\" must be a non-empty string"};
        (key == "release"     ? request.release
         : key == "file"      ? request.file
         : key == "module"    ? request.module
         : key == "directory" ? request.directory
         : key == "name"      ? request.name
         : key == "vsn"       ? request.vsn
         : key == "archive"   ? request.archive
                              : request.server) = value.get<std::string>();
        break;
    }
  }
  for (const auto& field : known->fields)
    if (field.required && !parsed.contains(field.name))
      return error{errc::bad_request, name + " needs \"" + std::string(field.name) + "\""};
  return request;
}

}  // namespace hotswap::detail

namespace hotswap::detail {

/// The listener's limits, and who may connect with which role.
struct listener_limits {
  std::vector<uid_t> operator_uids;    ///< beside the program's own uid and root's, which always operate
  std::vector<uid_t> viewer_uids;      ///< may use the commands of access_level::view only
  std::size_t max_connections;         ///< the last one only for the program's own uid and root
  std::size_t max_streams_per_uid;     ///< replies that stream (trace, watch) one uid holds at once
  std::size_t max_request;             ///< bytes of one request line
  std::size_t max_pending;             ///< bytes of replies a client has not read: past them, it is cut off
  std::chrono::milliseconds deadline;  ///< to send a request line, and to take a reply, each time
};

/// Who sent a request.
struct control_peer {
  uid_t uid;
  pid_t pid;
  access_level access;  ///< what the uid's role grants
};

class reply_lines;

/// A reply that goes on after its request's handler returned (a trace): pumped by the listener
/// about every 20 ms until it is complete. While it runs, the connection's next requests wait;
/// it is destroyed, and so stops, when it is complete or the client goes (never inside `pump`).
class reply_stream {
 public:
  virtual ~reply_stream() = default;
  /// Writes what is ready; false once the reply is complete.
  virtual bool pump(reply_lines& reply) = 0;
};

/// Where a request's reply lines go: the connection's buffer, written as far as the socket takes.
class reply_lines {
 public:
  virtual void line(const std::string& text) = 0;                 ///< one line (the newline is added)
  virtual void follow(std::unique_ptr<reply_stream> stream) = 0;  ///< the rest of the reply comes from `stream`

 protected:
  ~reply_lines() = default;
};

class control_listener {
 public:
  /// Runs a request line (without its newline), writing its reply lines.
  using handler = std::function<void(std::string_view request, const control_peer& peer, reply_lines& reply)>;
  using logger = std::function<void(const std::string& line)>;

  /// Listens on `name` in the directory open as `directory` (a descriptor the listener keeps a
  /// copy of; `path` names the socket in messages), which must not exist but as a stale socket of
  /// this program's user; mode 0600 (0666 when other uids are allowed: the peer check keeps the
  /// rest out), on a thread of its own.
  static result<std::unique_ptr<control_listener>> open(int directory, const std::string& name, const std::string& path,
                                                        listener_limits limits, handler handle, logger log) {
    std::unique_ptr<control_listener> made(
        new control_listener(path, name, std::move(limits), std::move(handle), std::move(log)));
    if (auto opened = made->listen(directory); !opened) return opened.error();
    made->accept();
    made->thread_ = thread([listener = made.get()] { listener->loop(); });
    return made;
  }

  control_listener(const control_listener&) = delete;
  control_listener& operator=(const control_listener&) = delete;
  /// Stops the thread, closes every connection (their streams end before what they watch),
  /// removes the socket.
  ~control_listener() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      backoff_.cancel();
      refusals_timer_.cancel();
      while (!sessions_.empty()) drop(sessions_.back());
      io_.stop();
    });
    thread_.join();
    if (directory_ >= 0) {
      if (bound_) ::unlinkat(directory_, name_.c_str(), 0);
      ::close(directory_);
    }
  }

  const std::string& path() const noexcept { return path_; }

 private:
  using clock = std::chrono::steady_clock;
  using socket_type = boost::asio::local::stream_protocol::socket;
  using error_code = boost::system::error_code;

  struct session {
    session(socket_type connected, control_peer who)
        : socket(std::move(connected)), peer(who), deadline(socket.get_executor()), pump_timer(socket.get_executor()) {}
    socket_type socket;
    control_peer peer;
    std::string in, out;
    std::array<char, 16384> chunk{};
    boost::asio::steady_timer deadline, pump_timer;
    std::unique_ptr<reply_stream> stream{};
    bool reading = false;           // a read is under way
    bool waiting_to_write = false;  // a wait for room in the socket is under way
    bool ended = false;             // the client sent its last byte
    bool closing = false;           // closed once `out` is written
    bool gone = false;              // closed: what runs for it stops
    bool pumping = false;           // its stream's pump is on the stack
  };
  using session_ptr = std::shared_ptr<session>;

  class buffered_reply final : public reply_lines {
   public:
    buffered_reply(control_listener& listener, const session_ptr& to) : listener_(listener), to_(to) {}
    void line(const std::string& text) override { listener_.write_line(to_, text); }
    void follow(std::unique_ptr<reply_stream> stream) override { to_->stream = std::move(stream); }

   private:
    control_listener& listener_;
    const session_ptr& to_;
  };

  control_listener(std::string path, std::string name, listener_limits limits, handler handle, logger log)
      : path_(std::move(path)),
        name_(std::move(name)),
        limits_(std::move(limits)),
        handle_(std::move(handle)),
        log_(std::move(log)) {}

  result<void> listen(int directory) {
    auto failed = [&](const char* what, int number) {
      return error{errc::bad_control, fmt::format("control socket {}: {}: {}", path_, what, std::strerror(number))};
    };
    directory_ = ::fcntl(directory, F_DUPFD_CLOEXEC, 0);
    if (directory_ < 0) return failed("dup", errno);
    struct stat seen {};
    if (::fstatat(directory_, name_.c_str(), &seen, AT_SYMLINK_NOFOLLOW) == 0) {  // from a program that had this pid
      if (!S_ISSOCK(seen.st_mode) || seen.st_uid != ::geteuid())
        return error{errc::bad_control, path_ + " exists and is not a socket of this user's: refused"};
      ::unlinkat(directory_, name_.c_str(), 0);
    }
    // Bound through the opened directory: no path is resolved again between its check and here.
    const std::string through = fmt::format("/proc/self/fd/{}/{}", directory_, name_);
    if (through.size() >= sizeof(sockaddr_un{}.sun_path))
      return error{errc::bad_control, path_ + ": the program's name is too long for a socket address"};
    boost::system::error_code failure;
    acceptor_.open(boost::asio::local::stream_protocol(), failure);
    if (!failure) acceptor_.bind(boost::asio::local::stream_protocol::endpoint(through), failure);
    if (failure) return error{errc::bad_control, fmt::format("control socket {}: bind: {}", path_, failure.message())};
    bound_ = true;
    // Others are kept out by the directory, or, when some are allowed, by the peer check.
    const bool shared = !limits_.operator_uids.empty() || !limits_.viewer_uids.empty();
    if (::fchmodat(directory_, name_.c_str(), shared ? 0666 : 0600, 0) != 0) return failed("chmod", errno);
    acceptor_.listen(64, failure);
    if (failure)
      return error{errc::bad_control, fmt::format("control socket {}: listen: {}", path_, failure.message())};
    return {};
  }

  /// The listener's thread: no exception leaves it (one from a handler is logged, and serving
  /// goes on).
  void loop() {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& thrown) {
        log_quietly(fmt::format("control: {} (the listener serves on)", thrown.what()));
      } catch (...) {
        log_quietly("control: an unknown exception (the listener serves on)");
      }
    }
  }

  /// Every line the listener's thread logs: a logger that throws (standard error closed, say)
  /// loses the line, never a connection or the accepting.
  void log_quietly(const std::string& line) noexcept {
    try {
      log_(line);
    } catch (...) {
    }
  }

  // -- accepting --

  void accept() {
    acceptor_.async_accept([this](const error_code& failed, socket_type connected) {
      if (failed == boost::asio::error::operation_aborted) return;  // stopping
      if (failed) return back_off(failed);
      backoff_ms_ = 0;
      accept();  // first: whatever admitting this one does, the next are accepted
      admit(std::move(connected));
    });
  }

  /// Out of descriptors (or memory): the connection waits in the backlog while the listener
  /// waits, a little longer each time, instead of being told of it again at once.
  void back_off(const error_code& failed) {
    backoff_ms_ = std::clamp(backoff_ms_ * 2, 50, 1000);
    log_quietly(
        fmt::format("control: cannot accept a connection ({}): trying again in {} ms", failed.message(), backoff_ms_));
    backoff_.expires_after(std::chrono::milliseconds(backoff_ms_));
    backoff_.async_wait([this](const error_code& cancelled) {
      if (!cancelled) accept();
    });
  }

  void admit(socket_type connected) {
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(connected.native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0) return;
    const auto access = access_of(peer.uid);
    if (!access) return refused(peer);
    const bool owner = peer.uid == ::geteuid() || peer.uid == 0;
    if (sessions_.size() >= (owner ? limits_.max_connections : std::max<std::size_t>(limits_.max_connections, 1) - 1)) {
      const std::string busy =
          reply_line(false, {},
                     error{errc::bad_control, fmt::format("busy: {} connections already", sessions_.size())}) +
          "\n";
      [[maybe_unused]] const auto sent =
          ::send(connected.native_handle(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      return;  // closed as `connected` goes
    }
    error_code ignored;
    connected.non_blocking(true, ignored);
    auto made = std::make_shared<session>(std::move(connected), control_peer{peer.uid, peer.pid, *access});
    sessions_.push_back(made);
    arm_deadline(made);
    read(made);
  }

  std::optional<access_level> access_of(uid_t uid) const {
    const auto listed = [](const std::vector<uid_t>& uids, uid_t one) {
      return std::find(uids.begin(), uids.end(), one) != uids.end();
    };
    if (uid == ::geteuid() || uid == 0 || listed(limits_.operator_uids, uid)) return access_level::operate;
    if (listed(limits_.viewer_uids, uid)) return access_level::view;
    return std::nullopt;
  }

  /// A refused connection: the first of a uid is logged, then a count a second while they go on.
  void refused(const ucred& peer) {
    const auto [counted, first] = refusals_.try_emplace(peer.uid, 0);
    if (!first) {
      ++counted->second;
      return;
    }
    log_quietly(fmt::format("control: refused a connection from uid {} (pid {}): not allowed", peer.uid, peer.pid));
    if (refusals_.size() == 1) count_refusals();
  }

  void count_refusals() {
    refusals_timer_.expires_after(std::chrono::seconds(1));
    refusals_timer_.async_wait([this](const error_code& cancelled) {
      if (cancelled) return;
      for (auto counted = refusals_.begin(); counted != refusals_.end();)
        if (counted->second == 0) {
          counted = refusals_.erase(counted);  // quiet for a second: its next refusal is logged again
        } else {
          log_quietly(fmt::format("control: refused {} more connections from uid {} in the last second",
                                  counted->second, counted->first));
          (counted++)->second = 0;
        }
      if (!refusals_.empty()) count_refusals();
    });
  }

  // -- requests --

  void read(const session_ptr& one) {
    if (one->gone || one->reading || one->stream || one->ended || one->closing) return;
    one->reading = true;
    one->socket.async_read_some(boost::asio::buffer(one->chunk),
                                [this, one](const error_code& failed, std::size_t got) { received(one, failed, got); });
  }

  void received(const session_ptr& one, const error_code& failed, std::size_t got) {
    one->reading = false;
    if (one->gone) return;
    if (failed && failed != boost::asio::error::eof) return drop(one);
    if (failed)
      one->ended = true;  // the client is done sending: what it sent is still answered
    else
      one->in.append(one->chunk.data(), got);  // (the deadline is for a whole line: a piece does not renew it)
    serve(one);
  }

  /// Runs the connection's next complete line, if any, and comes back for the one after on a
  /// later turn (other connections are served meanwhile); reads more when no line is complete.
  /// A line over the limit, or an end of input with a line unfinished, is answered with an error
  /// and the connection closed.
  void serve(const session_ptr& one) {
    if (one->gone || one->closing || one->stream) return;
    const auto end = one->in.find('\n');
    if ((end == std::string::npos ? one->in.size() : end) > limits_.max_request)
      return refuse(one, fmt::format("a request line is at most {} bytes", limits_.max_request));
    if (end == std::string::npos) {
      if (!one->ended) return read(one);
      if (!one->in.empty()) return refuse(one, "the request line has no end");
      return close_when_written(one);
    }
    const std::string line = one->in.substr(0, end);
    one->in.erase(0, end + 1);
    run(one, line);
    if (one->gone) {
      one->stream.reset();  // a stream its handler made for a connection that went meanwhile
      return;
    }
    arm_deadline(one);
    if (one->stream) return start_stream(one);
    boost::asio::post(io_, [this, one] { serve(one); });
  }

  /// The handler, which may throw: its exception is the request's error reply.
  void run(const session_ptr& one, const std::string& line) {
    buffered_reply reply(*this, one);
    std::string failure;
    try {
      handle_(line, one->peer, reply);
      return;
    } catch (const std::exception& thrown) {
      failure = thrown.what();
    } catch (...) {
      failure = "an unknown exception";
    }
    one->stream.reset();
    reply.line(reply_line(false, nullptr,
                          error{errc::request_failed, "the request failed in the program (" + failure +
                                                          "); nothing it had not done yet was done"}));
  }

  void refuse(const session_ptr& one, const std::string& why) {
    write_line(one, reply_line(false, {}, error{errc::bad_request, why}));
    one->in.clear();
    close_when_written(one);
  }

  void close_when_written(const session_ptr& one) {
    one->closing = true;
    if (one->out.empty()) drop(one);
  }

  // -- replies --

  void write_line(const session_ptr& one, const std::string& text) {
    if (one->gone) return;
    one->out += text;
    one->out += '\n';
    flush(one);  // as it happens: an upgrade's steps are seen while it runs
  }

  /// Writes as much of the reply as the socket takes now, and waits for room for the rest; cuts
  /// off a client that lets too much wait. Never destroys the connection's stream.
  void flush(const session_ptr& one) {
    while (!one->gone && !one->out.empty()) {
      error_code failed;
      const std::size_t sent = one->socket.write_some(boost::asio::buffer(one->out), failed);
      if (failed == boost::asio::error::would_block || failed == boost::asio::error::try_again) break;
      if (failed || sent == 0) return drop(one);
      one->out.erase(0, sent);
      arm_deadline(one);
    }
    if (one->out.size() > limits_.max_pending) {
      const std::size_t unread = one->out.size();
      drop(one);
      return log_quietly(fmt::format("control: uid {} cut off: {} bytes of replies not read", one->peer.uid, unread));
    }
    if (one->out.empty()) {
      if (one->closing) drop(one);
      return;
    }
    if (one->waiting_to_write) return;
    one->waiting_to_write = true;
    one->socket.async_wait(socket_type::wait_write, [this, one](const error_code&) {
      one->waiting_to_write = false;
      flush(one);
    });
  }

  // -- streams --

  void start_stream(const session_ptr& one) {
    std::size_t held = 0;
    for (const auto& other : sessions_) held += other != one && other->stream && other->peer.uid == one->peer.uid;
    if (held >= limits_.max_streams_per_uid) {
      one->stream.reset();
      write_line(one, reply_line(false, nullptr,
                                 error{errc::bad_request,
                                       fmt::format("uid {} holds {} streaming replies already (trace, watch): end one",
                                                   one->peer.uid, held)}));
      return boost::asio::post(io_, [this, one] { serve(one); });
    }
    pump(one);
  }

  void pump(const session_ptr& one) {
    if (!one->gone && hung_up(one)) drop(one);  // a client that went: its stream stops
    if (one->gone) {
      one->stream.reset();
      return;
    }
    bool more = false;
    one->pumping = true;
    try {
      buffered_reply reply(*this, one);
      more = one->stream->pump(reply);
    } catch (const std::exception& thrown) {
      write_line(one, reply_line(false, nullptr, error{errc::request_failed, thrown.what()}));
    } catch (...) {
      write_line(one, reply_line(false, nullptr, error{errc::request_failed, "an unknown exception"}));
    }
    one->pumping = false;
    if (one->gone || !more) {
      one->stream.reset();
      if (!one->gone) boost::asio::post(io_, [this, one] { serve(one); });
      return;
    }
    if (one->out.empty()) arm_deadline(one);  // waiting on the program, not on the client
    one->pump_timer.expires_after(std::chrono::milliseconds(20));
    one->pump_timer.async_wait([this, one](const error_code& cancelled) {
      if (!cancelled) pump(one);
    });
  }

  /// Whether the client closed its end (its input is not read while a stream runs).
  static bool hung_up(const session_ptr& one) {
    pollfd probe{one->socket.native_handle(), 0, 0};
    return ::poll(&probe, 1, 0) > 0 && (probe.revents & (POLLHUP | POLLERR));
  }

  // -- ending --

  void arm_deadline(const session_ptr& one) {
    one->deadline.expires_after(limits_.deadline);
    one->deadline.async_wait([this, weak = std::weak_ptr<session>(one)](const error_code& cancelled) {
      const auto one = weak.lock();
      if (cancelled || !one || one->gone) return;
      if (one->stream && one->out.empty()) return arm_deadline(one);
      const bool begun = !one->in.empty() || !one->out.empty();
      drop(one);
      if (begun)
        log_quietly(fmt::format("control: uid {} cut off: {} ms without a request line or taking its reply",
                                one->peer.uid, limits_.deadline.count()));
    });
  }

  /// Closes the connection; what runs for it sees `gone` and stops. Its stream goes now, unless
  /// it is the one writing (then as its pump returns).
  void drop(session_ptr one) {
    if (one->gone) return;
    one->gone = true;
    error_code ignored;
    one->socket.close(ignored);
    one->deadline.cancel();
    one->pump_timer.cancel();
    one->in.clear();
    one->out.clear();
    std::erase(sessions_, one);
    if (!one->pumping) one->stream.reset();
  }

  std::string path_, name_;
  listener_limits limits_;
  handler handle_;
  logger log_;
  int directory_ = -1;
  bool bound_ = false;
  boost::asio::io_context io_{1};
  boost::asio::local::stream_protocol::acceptor acceptor_{io_};
  boost::asio::steady_timer backoff_{io_}, refusals_timer_{io_};
  int backoff_ms_ = 0;
  std::map<uid_t, std::size_t> refusals_;  // uid -> refused since its last line
  std::vector<session_ptr> sessions_;
  thread thread_;
};

}  // namespace hotswap::detail
// ---- hotswap/detail/control/observe.hpp ----
// What the control server watches of servers for `log` and `trace`: one sys::trace hook on each
// watched server feeds its log (a bounded ring of its last events, Erlang's sys:log) and the
// traces streaming its messages (each rate-limited, so that tracing a busy server cannot flood
// the server, the program or the client). A program's own sys::trace hook on the same server is
// replaced while the server is watched, and put back when the watch ends. What the log of a
// server that ended kept is kept after it (the latest few): the log of a crashed server shows
// what it was sent up to its crash. (A template on the server handle, given the hook's setter:
// detail headers include no public one.)

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>


namespace hotswap::detail {

/// One message in or out of a watched server, or whose handler threw (`why` says what).
struct watched_event {
  std::chrono::steady_clock::time_point at;
  trace_event::direction way;
  std::string message;
  std::string why = {};
};

inline std::string_view to_string(trace_event::direction way) {
  return way == trace_event::in ? "in" : way == trace_event::out ? "out" : "failed";
}

inline nlohmann::json to_event_json(const watched_event& event, std::chrono::steady_clock::time_point since) {
  nlohmann::json made{{"way", to_string(event.way)},
                      {"message", event.message},
                      {"us", std::chrono::duration<double, std::micro>(event.at - since).count()}};
  if (event.way == trace_event::failed) made["why"] = event.why;
  return made;
}

inline std::string to_event_text(const watched_event& event, std::chrono::steady_clock::time_point since) {
  return fmt::format("{:>12.3f} ms  {:<6}  {}{}\n", std::chrono::duration<double, std::milli>(event.at - since).count(),
                     to_string(event.way), event.message,
                     event.way == trace_event::failed ? " (" + event.why + ")" : "");
}

/// `Server` is hotswap::any_server; `set_trace(server, hook, timeout)` is sys::trace (of a
/// trace_hook: it returns the hook it replaced).
template <class Server>
class server_watches {
 public:
  using clock = std::chrono::steady_clock;
  using any_server = Server;
  /// sys::replace_trace: `change` runs on the server with its hook, and returns the hook to put in place.
  using trace_setter = std::function<result<void>(const Server&, std::function<trace_hook(trace_hook)> change,
                                                  std::chrono::nanoseconds)>;

  /// What the log of a server that ended had kept.
  struct ended_log {
    std::uint64_t id;
    std::string name;  // its registered name when its log was switched on (empty: none)
    exit_reason reason;
    std::vector<watched_event> events;
  };
  /// How many logs of ended servers are kept, the latest.
  static constexpr std::size_t ended_logs_kept = 16;
  /// How long a failure's `why` kept in a log may be.
  static constexpr std::size_t largest_why = 1024;

  /// `log_size` events kept a server; at most `trace_rate` events a second sent by a trace.
  server_watches(std::size_t log_size, std::size_t trace_rate, trace_setter set_trace)
      : log_size_(log_size), trace_rate_(trace_rate), set_trace_(std::move(set_trace)) {}

  /// Switches `server`'s log on or off (off forgets its events).
  result<void> set_log(const any_server& server, bool on, std::chrono::nanoseconds timeout) {
    auto watch = on ? watch_of(server, timeout) : find(server);
    if (!watch) return on ? watch.error() : result<void>{};
    {
      const std::lock_guard hold((*watch)->lock);
      (*watch)->logging = on;
      if (!on) (*watch)->ring.clear();
    }
    forget_unused(server, timeout);
    return {};
  }

  /// The log kept of the latest ended server named `name` (or whose id it is), if its log was on.
  std::optional<ended_log> ended(std::string_view name) {
    keep_ended();
    for (auto one = ended_.rbegin(); one != ended_.rend(); ++one)
      if (one->name == name || std::to_string(one->id) == name) return *one;
    return std::nullopt;
  }

  /// The server's logged events, oldest first; empty when its log is off (`logging` says).
  std::vector<watched_event> log(const any_server& server, bool& logging) {
    auto watch = find(server);
    logging = false;
    if (!watch) return {};
    const std::lock_guard hold((*watch)->lock);
    logging = (*watch)->logging;
    return {(*watch)->ring.begin(), (*watch)->ring.end()};
  }

  /// A trace of the next `count` messages in and out of `server`, streamed as event lines and
  /// ended with a reply line (hotswapctl trace).
  result<std::unique_ptr<reply_stream>> trace(const any_server& server, std::uint64_t count,
                                              std::chrono::nanoseconds timeout) {
    auto watch = watch_of(server, timeout);
    if (!watch) return watch.error();
    auto tracer = std::make_shared<trace_queue>(count, trace_rate_);
    {
      const std::lock_guard hold((*watch)->lock);
      (*watch)->traces.push_back(tracer);
    }
    return std::unique_ptr<reply_stream>(new trace_stream(*this, *watch, std::move(tracer), timeout));
  }

 private:
  /// One trace's events, taken on the server's thread and sent by the listener's.
  struct trace_queue {
    trace_queue(std::uint64_t wanted, std::size_t rate)
        : wanted(wanted), rate(static_cast<double>(rate)), tokens(static_cast<double>(rate)) {}
    const std::uint64_t wanted;
    const double rate;
    std::deque<watched_event> ready;
    std::uint64_t taken = 0, dropped = 0;
    double tokens;  // a token bucket: `rate` a second, at most `rate` at once
    clock::time_point refilled = clock::now();

    void take(const watched_event& event) {  // under the watch's lock
      if (taken >= wanted) return;
      tokens = std::min(rate, tokens + rate * std::chrono::duration<double>(event.at - refilled).count());
      refilled = event.at;
      if (tokens < 1) {
        ++dropped;
        return;
      }
      tokens -= 1;
      ++taken;
      ready.push_back(event);
    }
  };

  struct watch {
    any_server server;
    std::string name;
    std::mutex lock;
    bool logging = false;
    std::deque<watched_event> ring;
    std::vector<std::shared_ptr<trace_queue>> traces;
    trace_hook replaced;  // the program's own, put back when the watch ends
  };

  /// The hook on a watched server, on the server's thread with each message: kept as short as a
  /// lock and a copy of a name. (The watch holds the server: the hook, which the server holds,
  /// must not hold the watch.)
  struct watch_hook {
    std::weak_ptr<watch> weak;
    std::size_t log_size;
    void operator()(const trace_event& event) const {
      const auto made = weak.lock();
      if (!made) return;
      watched_event seen{clock::now(), event.way, std::string(event.message),
                         std::string(event.why.substr(0, largest_why))};
      const std::lock_guard hold(made->lock);
      if (made->logging) {
        if (made->ring.size() == log_size) made->ring.pop_front();
        made->ring.push_back(seen);
      }
      for (const auto& one : made->traces) one->take(seen);
    }
  };

  class trace_stream final : public reply_stream {
   public:
    trace_stream(server_watches& watches, std::shared_ptr<watch> watched, std::shared_ptr<trace_queue> queue,
                 std::chrono::nanoseconds timeout)
        : watches_(watches), watch_(std::move(watched)), queue_(std::move(queue)), timeout_(timeout) {}
    ~trace_stream() override { watches_.stop_trace(*watch_, queue_, timeout_); }

    bool pump(reply_lines& reply) override {
      std::deque<watched_event> ready;
      std::uint64_t taken, dropped;
      {
        const std::lock_guard hold(watch_->lock);
        ready.swap(queue_->ready);
        taken = queue_->taken;
        dropped = queue_->dropped;
      }
      for (const auto& event : ready) {
        auto line = to_event_json(event, began_);
        line["server"] = watch_->server.id();
        line["text"] = to_event_text(event, began_);
        reply.line(event_line("trace", std::move(line)));
      }
      const bool ended = !watch_->server.alive();
      if (taken < queue_->wanted && !ended) return true;
      std::string text = fmt::format("{} messages traced", taken);
      if (dropped) text += fmt::format(", {} more not sent (over {} a second)", dropped, queue_->rate);
      if (ended) text += "; the server ended";
      reply.line(reply_line(true, {{"traced", taken}, {"dropped", dropped}, {"ended", ended}, {"text", text + "\n"}}));
      return false;
    }

   private:
    server_watches& watches_;
    std::shared_ptr<watch> watch_;
    std::shared_ptr<trace_queue> queue_;
    std::chrono::nanoseconds timeout_;
    clock::time_point began_ = clock::now();
  };

  result<std::shared_ptr<watch>> find(const any_server& server) {
    const auto found = watches_.find(server.id());
    if (found == watches_.end()) return error{errc::no_server, "not watched"};
    return found->second;
  }

  /// The server's watch, its hook installed if it is new.
  result<std::shared_ptr<watch>> watch_of(const any_server& server, std::chrono::nanoseconds timeout) {
    keep_ended();
    if (auto found = find(server)) return found;
    auto made = std::make_shared<watch>();
    made->server = server;
    {
      const spin_guard hold(server.core()->exit_lock);
      made->name = server.core()->name;
    }
    auto hooked = set_trace_(
        server,
        [made, log_size = log_size_](trace_hook replaced) {
          const std::lock_guard hold(made->lock);
          made->replaced = std::move(replaced);
          return trace_hook{nullptr, watch_hook{made, log_size}};
        },
        timeout);
    if (!hooked) return hooked.error();
    watches_.emplace(server.id(), made);
    return made;
  }

  void stop_trace(watch& watched, const std::shared_ptr<trace_queue>& queue, std::chrono::nanoseconds timeout) {
    {
      const std::lock_guard hold(watched.lock);
      std::erase(watched.traces, queue);
    }
    forget_unused(watched.server, timeout);
  }

  /// Unhooks a server neither logged nor traced.
  void forget_unused(const any_server& server, std::chrono::nanoseconds timeout) {
    auto watch = find(server);
    if (!watch) return;
    {
      const std::lock_guard hold((*watch)->lock);
      if ((*watch)->logging || !(*watch)->traces.empty()) return;
    }
    if (server.alive())
      (void)set_trace_(
          server,
          [watched = *watch](trace_hook current) {
            if (!current.call.template target<watch_hook>()) return current;  // the program set its own meanwhile
            const std::lock_guard hold(watched->lock);
            return std::move(watched->replaced);
          },
          timeout);
    watches_.erase(server.id());
  }

  /// The watches of servers that ended go; what their logs kept is kept in `ended_`.
  void keep_ended() {
    for (auto at = watches_.begin(); at != watches_.end();) {
      watch& watched = *at->second;
      if (watched.server.alive()) {
        ++at;
        continue;
      }
      {
        const std::lock_guard hold(watched.lock);
        if (watched.logging) {
          if (ended_.size() == ended_logs_kept) ended_.pop_front();
          ended_.push_back(
              {watched.server.id(), watched.name, watched.server.exit(), {watched.ring.begin(), watched.ring.end()}});
        }
      }
      at = watches_.erase(at);
    }
  }

  std::size_t log_size_, trace_rate_;
  trace_setter set_trace_;
  std::map<std::uint64_t, std::shared_ptr<watch>> watches_;  // the listener's thread's alone
  std::deque<ended_log> ended_;                              // the same
};

}  // namespace hotswap::detail
// ---- hotswap/detail/control/socket_place.hpp ----
// Where a program's control socket lives: a directory only its user can enter, made if missing,
// refused if it is anyone else's or open to others, or if a directory above it is (a path another
// user prepared is never reused); the socket is <program>.<pid>.sock in it. hotswapctl checks the
// same before it believes a socket.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>


namespace hotswap::detail {

/// The directory for the sockets of this user's programs: $XDG_RUNTIME_DIR/hotswap when the
/// session has one, else /tmp/hotswap-<uid>. (hotswapctl list looks in the same place.)
inline std::string default_socket_directory() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  struct stat seen {};
  if (runtime && *runtime == '/' && ::stat(runtime, &seen) == 0 && S_ISDIR(seen.st_mode))
    return std::string(runtime) + "/hotswap";
  return "/tmp/hotswap-" + std::to_string(::geteuid());
}

/// A socket directory, opened once checked: what is made in it is made relative to `fd()`, so a
/// directory renamed or replaced after the check is not the one used.
class socket_directory {
 public:
  socket_directory(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  socket_directory(socket_directory&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}
  socket_directory& operator=(socket_directory&& other) noexcept {
    std::swap(fd_, other.fd_);
    std::swap(path_, other.path_);
    return *this;
  }
  socket_directory(const socket_directory&) = delete;
  socket_directory& operator=(const socket_directory&) = delete;
  ~socket_directory() {
    if (fd_ >= 0) ::close(fd_);
  }

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

namespace socket_place {

/// Whether `uid` may own a socket directory, or one above it: this user, root (when in
/// `others`, or above), or one of `others`.
inline bool trusted(uid_t uid, const std::vector<uid_t>& others, bool above) {
  if (uid == ::geteuid() || (above && uid == 0)) return true;
  for (uid_t one : others)
    if (uid == one) return true;
  return false;
}

/// Why the directory `shown`, above `directory`, makes it unsafe (empty: it is safe): the rules of
/// module paths (unsafe_because in modules/module_file.hpp), with `others` trusted too.
inline std::string unsafe_above(const struct stat& info, const std::string& shown, const std::string& directory,
                                const std::vector<uid_t>& others) {
  if (!trusted(info.st_uid, others, true))
    return fmt::format("{}, above {}, belongs to uid {}: refused", shown, directory, info.st_uid);
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) && !(S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX)))
    return fmt::format("{}, above {}, is writable by {} (mode {:03o}): refused", shown, directory,
                       (info.st_mode & S_IWOTH) ? "every user" : "its group", info.st_mode & 07777);
  return {};
}

/// Checks every directory above `directory`, up to /: as the path says (a link on the way must be a
/// trusted user's: one in a sticky directory could be anyone's) and as it resolves.
inline result<void> check_above(const std::string& directory, const std::vector<uid_t>& others) {
  std::string given = absolute(directory);
  while (given.size() > 1 && given.back() == '/') given.pop_back();
  const std::string parent = given.substr(0, given.rfind('/'));
  char* resolved = ::realpath(parent.empty() ? "/" : parent.c_str(), nullptr);
  if (!resolved) return error{errc::bad_control, fmt::format("cannot read {}: {}", parent, std::strerror(errno))};
  const std::string real(resolved);
  std::free(resolved);
  for (std::string dir : {parent, real}) {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    for (;;) {
      const std::string shown = dir.empty() ? "/" : dir;
      struct stat info {};
      if (::lstat(shown.c_str(), &info) != 0)
        return error{errc::bad_control, fmt::format("cannot read {}: {}", shown, std::strerror(errno))};
      if (S_ISLNK(info.st_mode)) {
        if (!trusted(info.st_uid, others, true))
          return error{errc::bad_control,
                       fmt::format("{}, above {}, is a link of uid {}: refused", shown, directory, info.st_uid)};
        if (::stat(shown.c_str(), &info) != 0)
          return error{errc::bad_control, fmt::format("cannot read {}: {}", shown, std::strerror(errno))};
      }
      if (std::string why = unsafe_above(info, shown, directory, others); !why.empty())
        return error{errc::bad_control, std::move(why)};
      if (dir.empty()) break;
      dir.erase(dir.rfind('/'));
    }
  }
  return {};
}

/// Checks the opened directory `fd`: a directory, of this user or one of `others`, closed to
/// others but for passing through it (mode 0711).
inline result<void> check_opened(int fd, const std::string& directory, const std::vector<uid_t>& others) {
  struct stat seen {};
  if (::fstat(fd, &seen) != 0)
    return error{errc::bad_control, "cannot read " + directory + ": " + std::strerror(errno)};
  if (!S_ISDIR(seen.st_mode)) return error{errc::bad_control, directory + " is not a directory: refused"};
  if (!trusted(seen.st_uid, others, false)) {
    std::string owners = std::to_string(::geteuid());
    for (uid_t one : others)
      if (one != ::geteuid()) owners += " nor " + std::to_string(one);
    return error{errc::bad_control,
                 fmt::format("{} belongs to uid {}, not to uid {}: refused", directory, seen.st_uid, owners)};
  }
  if ((seen.st_mode & 066) != 0)
    return error{errc::bad_control,
                 fmt::format("{} is open to other users (mode {:03o}): refused", directory, seen.st_mode & 0777)};
  return {};
}

/// `directory` opened with `flags` (never through a link); errc::no_file if it is missing.
inline result<int> open_directory(const std::string& directory, int flags) {
  const int fd = ::open(directory.c_str(), flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return fd;
  if (errno == ENOENT) return error{errc::no_file, directory + ": " + std::strerror(errno)};
  if (errno == ENOTDIR || errno == ELOOP)
    return error{errc::bad_control, directory + " is not a directory (a link or a file): refused"};
  return error{errc::bad_control, "cannot open " + directory + ": " + std::strerror(errno)};
}

}  // namespace socket_place

/// Checks, making nothing, that `directory` may hold a socket to believe: a directory (not a
/// link), of this user or one of `others`, closed to others but for passing through it, and every
/// directory above it owned by root, this user or one of `others`, writable by no one else unless
/// sticky. errc::no_file if it is missing. (hotswapctl, before it lists or connects.)
inline result<void> check_socket_directory(const std::string& directory, const std::vector<uid_t>& others = {}) {
  if (auto above = socket_place::check_above(directory, others); !above) return above.error();
  // O_PATH: another user's shared directory (mode 0711) can be checked without reading it.
  auto fd = socket_place::open_directory(directory, O_PATH);
  if (!fd) return fd.error();
  auto checked = socket_place::check_opened(*fd, directory, others);
  ::close(*fd);
  return checked;
}

/// Makes `directory` (mode 0700) if it is missing, and opens it once checked as
/// check_socket_directory does, for this user alone. A socket `shared` with other users
/// (control_options::operator_uids, viewer_uids) needs passage through it: the directory is then made 0711,
/// and the socket's peer check is the gate.
inline result<socket_directory> open_socket_directory(const std::string& directory, bool shared = false) {
  if (auto above = socket_place::check_above(directory, {}); !above) return above.error();
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
    return error{errc::bad_control, "cannot make " + directory + ": " + std::strerror(errno)};
  auto fd = socket_place::open_directory(directory, O_RDONLY);
  if (!fd) return error{errc::bad_control, fd.error().what};
  socket_directory opened(*fd, directory);
  if (auto checked = socket_place::check_opened(opened.fd(), directory, {}); !checked) return checked.error();
  struct stat seen {};
  if (shared && (::fstat(opened.fd(), &seen) != 0 ||
                 ((seen.st_mode & 011) != 011 && ::fchmod(opened.fd(), (seen.st_mode & 0700) | 0711) != 0)))
    return error{errc::bad_control, "cannot open " + directory + " to other users: " + std::strerror(errno)};
  return opened;
}

/// `directory`/<program>.<pid>.sock, if a socket address can hold it.
inline result<std::string> socket_path(const std::string& directory, const std::string& program) {
  if (program.empty() || program.find('/') != std::string::npos || program.find('.') == 0)
    return error{errc::bad_control, "the program's name \"" + program + "\" cannot name a socket file"};
  std::string path = directory + "/" + program + "." + std::to_string(::getpid()) + ".sock";
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    return error{errc::bad_control, path + " is too long for a socket address (" +
                                        std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes at most)"};
  return path;
}

}  // namespace hotswap::detail

namespace hotswap {

// -- JSON forms (nlohmann's to_json: `nlohmann::json j = report;`) --

inline void to_json(nlohmann::json& out, const upgrade_report& report);

inline void to_json(nlohmann::json& out, const release_plan& plan);

// -- the control socket --

struct control_options {
  /// Names the socket, <program>.<pid>.sock (default: the program's name, /proc/self/comm).
  std::string program{};
  /// Where the socket goes (default: $XDG_RUNTIME_DIR/hotswap, else /tmp/hotswap-<uid>): made
  /// mode 0700 if missing (0711 with other uids allowed), refused if another user's or open to others.
  std::string directory{};
  /// Who may connect beside the program's own user and root, and what each may do (checked with
  /// SO_PEERCRED before a byte is read; others are refused, and logged at most a line a second
  /// a uid). Viewers run the commands of access_level::view (status, tree, top, releases,
  /// stats); operators run every command, as the program's own user and root do. (With any,
  /// the directory is 0711 and the socket 0666, so that they can reach it: the check is then
  /// the gate.) An operator can make the program load code: grant it as the program's account.
  std::vector<uid_t> operator_uids{};
  std::vector<uid_t> viewer_uids{};
  std::size_t max_connections = 16;           ///< the last one kept for the program's own user and root
  std::size_t max_streams_per_uid = 4;        ///< replies that stream (trace, watch) open at once, a uid
  std::size_t max_request = 64 * 1024;        ///< bytes of one request line
  std::size_t max_pending = 4 * 1024 * 1024;  ///< bytes of replies a client leaves unread: then cut off
  /// To send a request line, and to take each reply: a client slower than that is cut off.
  std::chrono::milliseconds deadline{10'000};
  /// For a server's status: one busier than that is listed as busy.
  std::chrono::milliseconds server_timeout{100};
  std::size_t log_size = 64;             ///< events a server's log keeps (`log`)
  std::size_t trace_rate = 100;          ///< events a second a trace sends at most (`trace`)
  std::size_t max_state_text = 1 << 20;  ///< bytes of a state `state` prints at most
  /// The grace period of an upgrade or downgrade from the socket, unless the request gives one
  /// (`hotswapctl upgrade --grace SECONDS`): until make-permanent, or until it ends, a server of
  /// the release whose handler throws goes back to its version before with its state, and the
  /// release rolls back by itself (upgrade_options::grace_period). 0: none.
  std::chrono::nanoseconds grace_period = std::chrono::minutes(1);
  /// Refusals and cut-off clients, a line each (default: standard error).
  std::function<void(const std::string&)> log{};
};

/// An open control socket: served on a thread of its own until it goes (the socket file is
/// removed then).
class control_socket {
 public:
  const std::string& path() const noexcept { return listener_->path(); }

  explicit control_socket(std::unique_ptr<detail::control_listener> listener) : listener_(std::move(listener)) {}

 private:
  std::unique_ptr<detail::control_listener> listener_;
};

/// Opens the program's control socket on `code` and `releases` (which must outlive it).
template <class CodeServer>
result<control_socket> open_control(CodeServer& code, basic_release_handler<CodeServer>& releases,
                                    control_options options = {});

}  // namespace hotswap

// ---- hotswap/impl/control.hpp ----
// The bodies of <hotswap/control.hpp> (its declarations, documented, are there): the JSON forms
// of reports and plans, the commands run against the code server and the release handler (each
// command's reply, and run_request, which decodes a request line and runs it), and opening the
// socket. Included by control.hpp only.

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
