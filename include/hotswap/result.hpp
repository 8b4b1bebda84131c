// The vocabulary of every layer: why a request failed (errc, error), what it returns instead
// (result), and how a server ended (exit_reason). Includes nothing else of hotswap but
// detail/common/write_text.hpp, which includes nothing of hotswap.
//
//     hotswap::result<int> n = hotswap::call(counter, Get{});
//     if (!n) fmt::print("{}\n", n.error());   // timeout: no reply within 5000 ms
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

#include "detail/common/write_text.hpp"

namespace hotswap {

// -- failures --

/// Why a request to a server failed.
enum class errc : std::uint8_t {
  timeout,             ///< no answer within the timeout
  no_server,           ///< the server had stopped (or never ran) when the request was made
  server_died,         ///< the server stopped while the request waited
  not_suspended,       ///< change_code needs a suspended server
  wrong_interface,     ///< the new table implements another interface
  wrong_vsn,           ///< the old vsn given is not the one the server runs
  wrong_state_type,    ///< the state is not of the type asked for
  code_change_failed,  ///< code_change threw or refused; state and table are unchanged
  init_failed,         ///< init threw; no server was started
  handler_failed,      ///< a function given to replace_state threw (the state is unchanged), or a handler threw and the
                       ///< server went back to its code before (a development reload on probation)
  calling_self,        ///< a handler called its own server, which cannot answer while it runs
  wrong_argument,      ///< init takes an argument of another type
  // Loading modules (hotswap/modules.hpp): the code server and every server are left unchanged.
  no_file,             ///< the path does not exist or cannot be read
  unsafe_path,         ///< the file or a directory above it is writable by other users
  not_a_library,       ///< not a shared library for this machine
  truncated,           ///< a shared library cut short
  no_descriptor,       ///< a shared library without HOTSWAP_MODULE
  abi_mismatch,        ///< built by another compiler, standard library, hotswap or settings
  schema_conflict,     ///< a schema version that differs from the one this program knows
  not_newer,           ///< the vsn is not newer than the module's current one
  load_failed,         ///< the dynamic loader refused it (dlerror says why)
  initializer_failed,  ///< a static initializer of the module threw
  not_purged,          ///< servers still run the old version
  no_module,           ///< no module of that name is loaded
  bad_flags,           ///< a supervisor's flags are refused (an intensity below 0, a period not above 0)
  too_large,           ///< a module file larger than the code server takes
  unsealed,            ///< a module file without a seal (not built by hotswap_add_module)
  torn,                ///< a module file whose bytes do not match its seal: torn, or modified since built
  untrusted,           ///< a module not signed by a key the code server trusts
  // Releases (hotswap/releases.hpp): the running release and every server are left unchanged.
  bad_release,     ///< a release manifest that cannot be read
  plan_refused,    ///< a release whose plan does not validate (every reason is given)
  over_budget,     ///< an upgrade whose pause would exceed its budget: rolled back before resuming
  no_release,      ///< no release to go back to, or none to make permanent
  step_failed,     ///< a module's step (HOTSWAP_MODULE_STEP) that a release ran threw or returned an error
  bad_control,     ///< a control socket that cannot be opened safely (its directory, its path)
  bad_request,     ///< a control request that is not one: malformed, oversized, unknown, of wrong types
  not_permitted,   ///< a control request the peer's role does not grant (a viewer asking to operate)
  request_failed,  ///< a control request that threw in the program: answered with this, the program serves on
  // Deferred replies (hotswap::reply_to).
  no_reply,         ///< the server dropped the call's reply handle unanswered (it stopped, or let the handle go)
  already_replied,  ///< a reply to a call that was answered already
  // Supervisors' children (hotswap/supervisors.hpp): the supervisor and its children are left unchanged.
  already_started,  ///< start_child: a running child has that id (OTP's already_started)
  already_present,  ///< start_child: a stopped child has that id (OTP's already_present)
  not_found,        ///< no child has that id, or is that server (OTP's not_found)
  child_running,    ///< restart_child or delete_child of a child that runs (OTP's running)
  max_children,     ///< a dynamic supervisor that has its max_children already (Elixir's max_children)
  bad_child_spec,   ///< a child spec refused: an id given twice, no start, significant but permanent or unneeded
  cannot_listen,    ///< a network listener that cannot listen: the address taken or invalid, the path not a socket
};

constexpr std::string_view to_string(errc code) noexcept {
  switch (code) {  // no default: a code missing here is a warning, and -Werror stops the build
    case errc::timeout:
      return "timeout";
    case errc::no_server:
      return "no_server";
    case errc::server_died:
      return "server_died";
    case errc::not_suspended:
      return "not_suspended";
    case errc::wrong_interface:
      return "wrong_interface";
    case errc::wrong_vsn:
      return "wrong_vsn";
    case errc::wrong_state_type:
      return "wrong_state_type";
    case errc::code_change_failed:
      return "code_change_failed";
    case errc::init_failed:
      return "init_failed";
    case errc::handler_failed:
      return "handler_failed";
    case errc::calling_self:
      return "calling_self";
    case errc::wrong_argument:
      return "wrong_argument";
    case errc::no_file:
      return "no_file";
    case errc::unsafe_path:
      return "unsafe_path";
    case errc::not_a_library:
      return "not_a_library";
    case errc::truncated:
      return "truncated";
    case errc::no_descriptor:
      return "no_descriptor";
    case errc::abi_mismatch:
      return "abi_mismatch";
    case errc::schema_conflict:
      return "schema_conflict";
    case errc::not_newer:
      return "not_newer";
    case errc::load_failed:
      return "load_failed";
    case errc::initializer_failed:
      return "initializer_failed";
    case errc::not_purged:
      return "not_purged";
    case errc::no_module:
      return "no_module";
    case errc::bad_flags:
      return "bad_flags";
    case errc::too_large:
      return "too_large";
    case errc::unsealed:
      return "unsealed";
    case errc::torn:
      return "torn";
    case errc::untrusted:
      return "untrusted";
    case errc::bad_release:
      return "bad_release";
    case errc::plan_refused:
      return "plan_refused";
    case errc::over_budget:
      return "over_budget";
    case errc::no_release:
      return "no_release";
    case errc::step_failed:
      return "step_failed";
    case errc::bad_control:
      return "bad_control";
    case errc::bad_request:
      return "bad_request";
    case errc::not_permitted:
      return "not_permitted";
    case errc::request_failed:
      return "request_failed";
    case errc::no_reply:
      return "no_reply";
    case errc::already_replied:
      return "already_replied";
    case errc::already_started:
      return "already_started";
    case errc::already_present:
      return "already_present";
    case errc::not_found:
      return "not_found";
    case errc::child_running:
      return "child_running";
    case errc::max_children:
      return "max_children";
    case errc::bad_child_spec:
      return "bad_child_spec";
    case errc::cannot_listen:
      return "cannot_listen";
  }
  return "unknown";  // not an errc
}

/// A failed request: what kind of failure, and what the server or the runtime said about it.
struct error {
  errc code;
  std::string what;
};

/// How a server ended: `normal` when asked to stop, `shutdown` when its supervisor stopped it,
/// `crashed` when a handler threw (`what` says what it threw).
enum class exit_kind : std::uint8_t { normal, shutdown, crashed };

constexpr std::string_view to_string(exit_kind kind) noexcept {
  switch (kind) {
    case exit_kind::normal:
      return "normal";
    case exit_kind::shutdown:
      return "shutdown";
    case exit_kind::crashed:
      return "crashed";
  }
  return "unknown";
}

struct exit_reason {
  exit_kind kind = exit_kind::normal;
  std::string what;
};

// -- results --

/// Thrown by result::value() when the request failed.
class call_error : public std::runtime_error {
 public:
  explicit call_error(const error& failure)
      : std::runtime_error("hotswap: " + std::string(to_string(failure.code)) +
                           (failure.what.empty() ? "" : ": " + failure.what)),
        code_(failure.code) {}
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

/// The outcome of a request to a server: its reply, or why there is none.
/// (Its own storage, not a std::optional: every result<T> a file names is instantiated, and an
/// optional's constrained members cost 14 M compiler instructions a type, a third more than the
/// whole of this class.)
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) { emplace(std::move(value)); }                    // NOLINT: implicit, as std::expected
  result(hotswap::error failure) : failure_(std::move(failure)) {}  // NOLINT

  // -- copy and move, as T allows --

  result(const result& other) requires std::is_copy_constructible_v<T> : failure_(other.failure_) {
    if (other.has_value_) emplace(other.value_);
  }
  result(result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) : failure_(std::move(other.failure_)) {
    if (other.has_value_) emplace(std::move(other.value_));
  }
  result& operator=(const result& other) requires std::is_copy_constructible_v<T> {
    if (this == &other) return *this;
    reset();
    failure_ = other.failure_;
    if (other.has_value_) emplace(other.value_);
    return *this;
  }
  result& operator=(result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this == &other) return *this;
    reset();
    failure_ = std::move(other.failure_);
    if (other.has_value_) emplace(std::move(other.value_));
    return *this;
  }
  ~result() { reset(); }

  // -- the outcome --

  bool has_value() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value(); }
  /// The reply; throws call_error if there is none.
  T& value() & { return check(), value_; }
  const T& value() const& { return check(), value_; }
  T&& value() && { return check(), std::move(value_); }
  T& operator*() noexcept { return value_; }
  const T& operator*() const noexcept { return value_; }
  T* operator->() noexcept { return &value_; }
  const T* operator->() const noexcept { return &value_; }
  /// Why the request failed (only when it did).
  const hotswap::error& error() const noexcept { return failure_; }

 private:
  void check() const {
    if (!has_value_) throw call_error(failure_);
  }
  template <class Value>
  void emplace(Value&& value) {
    ::new (static_cast<void*>(&value_)) T(std::forward<Value>(value));
    has_value_ = true;
  }
  void reset() noexcept {
    if (has_value_) value_.~T();
    has_value_ = false;
  }

  union {
    T value_;  // alive when has_value_
  };
  bool has_value_ = false;
  hotswap::error failure_{};
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(hotswap::error failure) : failed_(true), failure_(std::move(failure)) {}  // NOLINT
  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (failed_) throw call_error(failure_);
  }
  const hotswap::error& error() const noexcept { return failure_; }

 private:
  bool failed_ = false;
  hotswap::error failure_{};
};

}  // namespace hotswap

// fmt prints an errc as its name (`timeout`), an error as `timeout: no reply within 5000 ms`, and
// a result as its value, `ok` (result<void>) or its error. They write through the output iterator
// and fmt::format: fmt::format_to needs <fmt/format.h> (and with clang does not link against
// Debian's libfmt with <fmt/core.h> alone), which costs as much to include as the rest of hotswap.
template <>
struct fmt::formatter<hotswap::errc> {
  std::string_view spec;  // a string's format spec (`{:>16}`), applied to the name
  constexpr auto parse(fmt::format_parse_context& context) {
    auto end = context.begin();
    while (end != context.end() && *end != '}') ++end;
    spec = std::string_view(context.begin(), static_cast<std::size_t>(end - context.begin()));
    return end;
  }
  template <class Context>
  auto format(hotswap::errc code, Context& context) const {
    if (spec.empty()) return hotswap::detail::write_text(context.out(), hotswap::to_string(code));
    return hotswap::detail::write_text(
        context.out(), fmt::format(fmt::runtime("{:" + std::string(spec) + "}"), hotswap::to_string(code)));
  }
};

template <>
struct fmt::formatter<hotswap::error> {
  constexpr auto parse(fmt::format_parse_context& context) { return context.begin(); }
  template <class Context>
  auto format(const hotswap::error& failure, Context& context) const {
    auto out = hotswap::detail::write_text(context.out(), hotswap::to_string(failure.code));
    if (failure.what.empty()) return out;
    return hotswap::detail::write_text(hotswap::detail::write_text(out, ": "), failure.what);
  }
};

template <class T>
struct fmt::formatter<hotswap::result<T>> {
  constexpr auto parse(fmt::format_parse_context& context) { return context.begin(); }
  template <class Context>
  auto format(const hotswap::result<T>& outcome, Context& context) const {
    if (!outcome) return fmt::formatter<hotswap::error>().format(outcome.error(), context);
    if constexpr (std::is_void_v<T>)
      return hotswap::detail::write_text(context.out(), "ok");
    else
      return hotswap::detail::write_text(context.out(), fmt::format("{}", *outcome));
  }
};
