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

#include "detail/control/listener.hpp"
#include "detail/control/observe.hpp"
#include "detail/control/request.hpp"
#include "detail/control/socket_place.hpp"
#include "releases.hpp"
#include "supervisors.hpp"
#include "watch.hpp"

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

#include "impl/control.hpp"
