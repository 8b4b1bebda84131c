// hotswap single header, generated from include/ by tools/amalgamate.py; do not edit.
#pragma once
// ---- hotswap/hotswap.hpp ----
// hotswap: Erlang/OTP-style hot code upgrades for C++20. Include this, or only the headers you use.

// ---- hotswap/inspect.hpp ----
// Values printed as Elixir's `inspect` prints them: `%Account{name: "Alice", score: 3, stage: 1}`.
//
// Opt in per schema, so that the formatter never competes with fmt's own for other aggregates:
//
//     template <> inline constexpr bool hotswap::enable_inspect<AccountSchema> = true;
//     fmt::print("{}\n", account);   // %Account{name: nil, score: 0, stage: 0}

#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/core.h>

// ---- hotswap/detail/schemas/inspect.hpp ----
// Printing values as Elixir's inspect does (hotswap/inspect.hpp): structs as %Name{field: value},
// strings quoted and escaped (or as bytes), maps in key order, floats with a fraction.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

// ---- hotswap/result.hpp ----
// The vocabulary of every layer: why a request failed (errc, error), what it returns instead
// (result), and how a server ended (exit_reason). Includes nothing else of hotswap but
// detail/common/write_text.hpp, which includes nothing of hotswap.
//
//     hotswap::result<int> n = hotswap::call(counter, Get{});
//     if (!n) fmt::print("{}\n", n.error());   // timeout: no reply within 5000 ms

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

// ---- hotswap/detail/common/write_text.hpp ----
// Text written through a formatter's output iterator, one character at a time: what result.hpp's
// and inspect's fmt formatters write with (fmt::format_to needs <fmt/format.h>). Includes nothing
// of hotswap: result.hpp, a vocabulary header, includes it.

#include <string_view>

namespace hotswap::detail {

template <class Out>
Out write_text(Out out, std::string_view text) {
  for (const char c : text) *out++ = c;
  return out;
}

}  // namespace hotswap::detail

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
// ---- hotswap/detail/common/std_memory.hpp ----
// shared_ptr and unique_ptr without the rest of <memory> (its ranges algorithms and
// parallel policies, half of what it costs to include), as std_parts.hpp does for <chrono>.

#include <cstddef>  // defines __GLIBCXX__ when the standard library is libstdc++

#if defined(__GLIBCXX__) && __has_include(<bits/shared_ptr.h>) && __has_include(<bits/unique_ptr.h>)
#include <bits/shared_ptr.h>
#include <bits/unique_ptr.h>
#else
#include <memory>
#endif
// ---- hotswap/detail/common/utf8.hpp ----
// Reading UTF-8 one code point at a time, strictly: what inspect prints as a string, and what
// hotswapctl shows of what a program sent, depend on which bytes are characters; and text from
// outside made safe to show on a terminal.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hotswap::detail {

/// The code point whose UTF-8 sequence starts at `text[at]` (at < text.size()), `at` moved past
/// it; -1, `at` unmoved, when no valid sequence starts there. Valid as Erlang's `<<c::utf8>>`
/// match takes it: the shortest form, no surrogate, at most U+10FFFF.
constexpr std::int32_t next_code_point(std::string_view text, std::size_t& at) noexcept {
  const auto byte = [&](std::size_t i) -> std::uint32_t { return static_cast<unsigned char>(text[i]); };
  const std::uint32_t first = byte(at);
  if (first < 0x80) return static_cast<std::int32_t>(text[at++]);
  std::size_t length = 0;
  std::uint32_t point = 0, least = 0;
  if ((first & 0xE0) == 0xC0)
    length = 2, point = first & 0x1F, least = 0x80;
  else if ((first & 0xF0) == 0xE0)
    length = 3, point = first & 0x0F, least = 0x800;
  else if ((first & 0xF8) == 0xF0)
    length = 4, point = first & 0x07, least = 0x10000;
  else
    return -1;
  if (text.size() - at < length) return -1;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) return -1;
    point = point << 6 | (byte(at + i) & 0x3F);
  }
  if (point < least || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) return -1;
  at += length;
  return static_cast<std::int32_t>(point);
}

/// `text` made safe to show on a terminal: what a program sent, a file name or an exception's
/// message could clear the screen or fake lines. Control characters (C0 but, with `newlines`, \n
/// and \t; and DEL) are shown as \xNN, C1 characters as \u00NN, bytes that are not UTF-8 as
/// \xNN; the rest as it is. At most `limit` bytes of `text` are shown, then `...`.
template <class = void>
std::string visible(std::string_view text, bool newlines = true, std::size_t limit = std::string_view::npos) {
  constexpr std::string_view hex = "0123456789abcdef";
  std::string shown;
  shown.reserve(text.size() < limit ? text.size() : limit);
  for (std::size_t at = 0; at < text.size();) {
    if (at >= limit) {
      shown += "...";
      break;
    }
    const std::size_t start = at;
    const std::int32_t c = next_code_point(text, at);
    const auto escaped = [&](std::string_view prefix, unsigned value) {
      shown += prefix;
      shown += hex[(value >> 4) & 0xF];
      shown += hex[value & 0xF];
    };
    if (c < 0)
      escaped("\\x", static_cast<unsigned char>(text[at++]));
    else if ((c < 0x20 && !(newlines && (c == '\n' || c == '\t'))) || c == 0x7f)
      escaped("\\x", static_cast<unsigned>(c));
    else if (c >= 0x80 && c <= 0x9f)
      escaped("\\u00", static_cast<unsigned>(c));
    else
      shown.append(text, start, at - start);
  }
  return shown;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/reflect/fields.hpp ----
// Structure reflection: the count, types, names and references of an aggregate's fields.
//
// Boost.PFR's technique, our own code: PFR 1.81's tuples are slow to compile for wide structs,
// and its field count crashes g++ 12 (internal compiler error in check_noexcept_r) on a struct
// with a std::array of aggregates. The structured bindings (bindings.hpp) stop at 64 fields:
// each count is spelled out, and parsing them is most of what including hotswap costs.

#include <array>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/version.hpp>
#if BOOST_VERSION >= 108400
#include <boost/pfr/core_name.hpp>
#endif

// ---- hotswap/detail/reflect/bindings.hpp ----
// Generated by tools/generate_bindings.py; do not edit.

#include <cstddef>

// ---- hotswap/detail/reflect/field_refs.hpp ----
// References to every field of an aggregate, indexable without std::tuple (what a structured
// binding in bindings.hpp hands on).

#include <cstddef>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/common/type_list.hpp ----
// A list of types, as a value (type_list<A, B>{}) that functions take and return.

#include <cstddef>

namespace hotswap::detail {

template <class... T>
struct type_list {
  static constexpr std::size_t size = sizeof...(T);
};

}  // namespace hotswap::detail

namespace hotswap::detail {

template <std::size_t I, class T>
struct field_slot {
  T* pointer;
};

template <class Indices, class... T>
struct field_refs;

template <std::size_t... I, class... T>
struct field_refs<std::index_sequence<I...>, T...> : field_slot<I, T>... {
  using types = type_list<std::remove_const_t<T>...>;
};

template <class... T>
constexpr auto tie_members(T&... members) {
  return field_refs<std::index_sequence_for<T...>, T...>{{&members}...};
}

/// The I-th field of a `field_refs`, found by overload resolution rather than recursion.
template <std::size_t I, class T>
constexpr T& member(field_slot<I, T> slot) {
  return *slot.pointer;
}

}  // namespace hotswap::detail

namespace hotswap::detail {

/// The most fields a versioned struct may have.
inline constexpr std::size_t max_fields = 64;

/// Binds the N members of `object` and passes them to `tie_members`.
// clang-format off: one binding a line, as generated
template <std::size_t N, class T>
constexpr auto bind_members(T& object) {
  if constexpr (N == 0) {
    (void)object;
    return tie_members();
  } else if constexpr (N == 1) {
    auto& [a0] = object;
    return tie_members(a0);
  } else if constexpr (N == 2) {
    auto& [a0, a1] = object;
    return tie_members(a0, a1);
  } else if constexpr (N == 3) {
    auto& [a0, a1, a2] = object;
    return tie_members(a0, a1, a2);
  } else if constexpr (N == 4) {
    auto& [a0, a1, a2, a3] = object;
    return tie_members(a0, a1, a2, a3);
  } else if constexpr (N == 5) {
    auto& [a0, a1, a2, a3, a4] = object;
    return tie_members(a0, a1, a2, a3, a4);
  } else if constexpr (N == 6) {
    auto& [a0, a1, a2, a3, a4, a5] = object;
    return tie_members(a0, a1, a2, a3, a4, a5);
  } else if constexpr (N == 7) {
    auto& [a0, a1, a2, a3, a4, a5, a6] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6);
  } else if constexpr (N == 8) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7);
  } else if constexpr (N == 9) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8);
  } else if constexpr (N == 10) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9);
  } else if constexpr (N == 11) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
  } else if constexpr (N == 12) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
  } else if constexpr (N == 13) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
  } else if constexpr (N == 14) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13);
  } else if constexpr (N == 15) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14);
  } else if constexpr (N == 16) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
  } else if constexpr (N == 17) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16);
  } else if constexpr (N == 18) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17);
  } else if constexpr (N == 19) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18);
  } else if constexpr (N == 20) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19);
  } else if constexpr (N == 21) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20);
  } else if constexpr (N == 22) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21);
  } else if constexpr (N == 23) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22] =
        object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22);
  } else if constexpr (N == 24) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22,
           a23] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23);
  } else if constexpr (N == 25) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24);
  } else if constexpr (N == 26) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25);
  } else if constexpr (N == 27) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26);
  } else if constexpr (N == 28) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27);
  } else if constexpr (N == 29) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28);
  } else if constexpr (N == 30) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29);
  } else if constexpr (N == 31) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30);
  } else if constexpr (N == 32) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31);
  } else if constexpr (N == 33) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32);
  } else if constexpr (N == 34) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33);
  } else if constexpr (N == 35) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34);
  } else if constexpr (N == 36) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35);
  } else if constexpr (N == 37) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36);
  } else if constexpr (N == 38) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37);
  } else if constexpr (N == 39) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38);
  } else if constexpr (N == 40) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39);
  } else if constexpr (N == 41) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40);
  } else if constexpr (N == 42) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41);
  } else if constexpr (N == 43) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42);
  } else if constexpr (N == 44) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43);
  } else if constexpr (N == 45) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44] =
        object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44);
  } else if constexpr (N == 46) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44,
           a45] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45);
  } else if constexpr (N == 47) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46);
  } else if constexpr (N == 48) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47);
  } else if constexpr (N == 49) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48);
  } else if constexpr (N == 50) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49);
  } else if constexpr (N == 51) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50);
  } else if constexpr (N == 52) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51);
  } else if constexpr (N == 53) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52);
  } else if constexpr (N == 54) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53);
  } else if constexpr (N == 55) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54);
  } else if constexpr (N == 56) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55);
  } else if constexpr (N == 57) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56);
  } else if constexpr (N == 58) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57);
  } else if constexpr (N == 59) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58);
  } else if constexpr (N == 60) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58,
                       a59);
  } else if constexpr (N == 61) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58,
                       a59, a60);
  } else if constexpr (N == 62) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58,
                       a59, a60, a61);
  } else if constexpr (N == 63) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61, a62] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58,
                       a59, a60, a61, a62);
  } else if constexpr (N == 64) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23,
           a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45,
           a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61, a62, a63] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20,
                       a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39,
                       a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58,
                       a59, a60, a61, a62, a63);
  }
}
// clang-format on

}  // namespace hotswap::detail

namespace hotswap::detail {

// ---- the field count: the most initializers that aggregate initialization accepts ----

struct any_field {
  std::size_t index;
  template <class U>
  operator U&&() const&& noexcept;  // never defined: only asked about
};

template <class T, std::size_t... I>
constexpr bool accepts_initializers(std::index_sequence<I...>) {
  return requires {
    T{any_field{I}...};
  };
}

/// Binary search: T accepts Low initializers and not High.
template <class T, std::size_t Low, std::size_t High>
constexpr std::size_t count_fields() {
  if constexpr (High - Low <= 1) {
    return Low;
  } else {
    constexpr std::size_t middle = (Low + High) / 2;
    if constexpr (accepts_initializers<T>(std::make_index_sequence<middle>{}))
      return count_fields<T, middle, High>();
    else
      return count_fields<T, Low, middle>();
  }
}

/// The number of fields of an aggregate; max_fields + 1 stands for "more than max_fields".
template <class T>
inline constexpr std::size_t field_count = count_fields<T, 0, max_fields + 2>();

/// References to the fields of `object`; `member<I>(fields(object))` is its I-th field.
template <class T>
constexpr auto fields(T& object) {
  return bind_members<field_count<std::remove_const_t<T>>>(object);
}

// Types are read through a const binding: a const reference binds even to a bit-field, so that
// the bit-field check can run and say what is wrong.
template <class T>
using field_types = typename decltype(fields(std::declval<const T&>()))::types;

template <class T, std::size_t I>
using field_type = std::remove_cvref_t<decltype(member<I>(fields(std::declval<const T&>())))>;

// ---- field names ----
//
// The address of each member of an object that is declared but never defined is a constant;
// the compiler spells it, member name included, in __PRETTY_FUNCTION__ when the addresses are
// a template argument.

template <class T>
struct fake_holder {
  const T hotswap_fake_member_;
};

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wundefined-var-template"
#pragma clang diagnostic ignored "-Wundefined-internal"  // a struct in an anonymous namespace
#endif
template <class T>
extern const fake_holder<T> fake_object;

template <class T>
constexpr auto member_addresses() {
  constexpr std::size_t n = field_count<T>;
  std::array<const void*, n> addresses{};
  if constexpr (n > 0) {
    auto refs = fields(fake_object<T>.hotswap_fake_member_);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((addresses[I] = &member<I>(refs)), ...);
    }
    (std::make_index_sequence<n>{});
  }
  return addresses;
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

template <auto Addresses>
constexpr std::string_view spelled_addresses() {
  return __PRETTY_FUNCTION__;
}

/// The I-th member name in a spelling of member addresses: g++ writes
/// `&fake_object<X>.holder<X>::hotswap_fake_member_.ns::X::name`, clang `&fake_object.hotswap_fake_member_.name`.
constexpr std::string_view nth_member_name(std::string_view spelled, std::size_t index) {
  constexpr std::string_view marker = "hotswap_fake_member_.";
  std::size_t at = 0;
  for (std::size_t i = 0; i <= index; ++i) {
    at = spelled.find(marker, at);
    if (at == std::string_view::npos) return {};
    at += marker.size();
  }
  // The path runs to the first `,` at depth 0 or the first closing bracket that was not opened
  // in it: type names in it may hold brackets and commas ({anonymous}, Pair<int, 2>).
  std::size_t end = at;
  for (int depth = 0; end < spelled.size(); ++end) {
    const char c = spelled[end];
    if (c == '<' || c == '(' || c == '{' || c == '[')
      ++depth;
    else if (c == '>' || c == ')' || c == '}' || c == ']') {
      if (depth-- == 0) break;
    } else if (c == ',' && depth == 0)
      break;
  }
  std::string_view path = spelled.substr(at, end - at);
  const std::size_t last = path.find_last_of(":.");
  return last == std::string_view::npos ? path : path.substr(last + 1);
}

// clang writes "..." for the elements of an array template argument past the tenth, so the
// addresses are spelled eight at a time.
inline constexpr std::size_t names_per_spelling = 8;

template <class T, std::size_t Chunk>
constexpr auto address_chunk() {
  constexpr auto all = member_addresses<T>();
  constexpr std::size_t first = Chunk * names_per_spelling;
  std::array<const void*, (all.size() - first < names_per_spelling ? all.size() - first : names_per_spelling)> chunk{};
  for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = all[first + i];
  return chunk;
}

template <class T>
constexpr auto compute_field_names() {
  std::array<std::string_view, field_count<T>> names{};
  [&]<std::size_t... Chunk>(std::index_sequence<Chunk...>) {
    auto read_chunk = [&]<std::size_t C>(std::integral_constant<std::size_t, C>) {
      constexpr std::string_view spelled = spelled_addresses<address_chunk<T, C>()>();
      for (std::size_t i = 0; i < address_chunk<T, C>().size(); ++i)
        names[C * names_per_spelling + i] = nth_member_name(spelled, i);
    };
    (read_chunk(std::integral_constant<std::size_t, Chunk>{}), ...);
    (void)read_chunk;  // a struct without fields has no chunk to read
  }
  (std::make_index_sequence<(field_count<T> + names_per_spelling - 1) / names_per_spelling>{});
  return names;
}

/// The names of T's fields, in declaration order: Boost.PFR's where the Boost in use reads them
/// (1.84 and later), our own otherwise; the tests check that the two agree.
template <class T>
inline constexpr std::array<std::string_view, field_count<T>> field_names =
#if BOOST_VERSION >= 108400
    boost::pfr::names_as_array<T>();
#else
    compute_field_names<T>();
#endif

/// The index of the field called `name`, or field_count<T> when there is none.
template <class T>
constexpr std::size_t field_index(std::string_view name) {
  std::size_t index = 0;
  while (index < field_count<T> && field_names<T>[index] != name) ++index;
  return index;
}

namespace self_test {
template <class, int>
struct probe {
  int first_field;
  char second;
};
static_assert(compute_field_names<probe<int, 2>>()[0] == "first_field" &&
                  compute_field_names<probe<int, 2>>()[1] == "second",
              "hotswap: this compiler spells template arguments in a way hotswap cannot read field names "
              "from (was -fno-pretty-templates given?); build without that option");
}  // namespace self_test

// ---- shape checks ----

/// The size T would have if every field were laid out whole, as an aggregate without
/// bit-fields is; a smaller T packs a bit-field (or an empty [[no_unique_address]] member).
template <class... Fields>
constexpr std::size_t plain_layout_size(type_list<Fields...>) {
  std::size_t offset = 0, align = 1;
  ((offset = (offset + alignof(Fields) - 1) / alignof(Fields) * alignof(Fields) + sizeof(Fields),
    align = alignof(Fields) > align ? alignof(Fields) : align),
   ...);
  return offset == 0 ? 1 : (offset + align - 1) / align * align;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/schemas/field_kinds.hpp ----
// The field types hotswap supports, listed once. Every place that treats a field type by what it
// is switches on field_kind_of<T>: describing it canonically (schemas/describe.hpp), whether it
// can be described, whether it is plain data (servers' tables), how it migrates
// (migrations/routes.hpp), which schemas it holds (modules' notes) and how inspect prints it.
// Supporting another standard container is one concept in containers.hpp, one kind here, and a
// case in each switch (the compiler's -Wswitch names the switches that lack it).

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/reflect/containers.hpp ----
// The standard containers a schema field may be, recognised by their shape as fmt recognises
// ranges, so that hotswap does not include <map>, <unordered_map> or <vector> for its users.

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace hotswap::detail {

template <template <class...> class Template, class T>
inline constexpr bool is_instance_of = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_instance_of<Template, Template<Args...>> = true;

template <class T>
concept optional = is_instance_of<std::optional, T>;

template <class T>
inline constexpr bool is_std_array = false;
template <class T, std::size_t N>
inline constexpr bool is_std_array<std::array<T, N>> = true;

/// std::array.
template <class T>
concept fixed_array = is_std_array<T>;

/// std::vector and its kin: contiguous, growable, not a string.
template <class T>
concept sequence = !is_instance_of<std::basic_string, T> && !std::is_convertible_v<const T&, std::string_view> &&
                   requires(T & c, typename T::value_type&& v) {
  c.reserve(std::size_t{});
  c.push_back(std::move(v));
  c.data();
};

template <class T>
concept unique_key_map = requires(T& c, const typename T::key_type& k) {
  typename T::mapped_type;
  c.at(k);
};

/// std::map and its kin.
template <class T>
concept ordered_map = unique_key_map<T> && requires {
  typename T::key_compare;
};

/// std::unordered_map and its kin.
template <class T>
concept hashed_map = unique_key_map<T> && requires {
  typename T::hasher;
};

}  // namespace hotswap::detail

namespace hotswap {
// The customization points (defined in hotswap/schemas.hpp), which decide two kinds.
template <class T>
struct schema_of;
template <class T>
struct type_name;
}  // namespace hotswap

namespace hotswap::detail {

/// A version of some schema (hotswap::versioned).
template <class T>
concept versioned_type = requires {
  schema_of<T>::name;
}
&&schema_of<T>::template lists<T>;

/// The version number of a versioned struct (hotswap::vsn_of).
template <class T>
inline constexpr int version_number = schema_of<T>::template vsn_of<T>;

/// Two structs are versions of the same schema (hotswap::same_schema).
template <class A, class B>
concept same_schema_types =
    versioned_type<A> && versioned_type<B> && std::is_same_v < typename schema_of<A>::schema_type,
typename schema_of<B>::schema_type > ;

/// A type given a canonical name by specializing hotswap::type_name.
template <class T>
concept named_type = requires {
  type_name<T>::value;
};

enum class field_kind {
  version,      ///< a schema version (a struct of fields)
  boolean,      ///< bool
  character,    ///< char (whose signedness is the platform's)
  integer,      ///< the other integers
  floating,     ///< float, double, long double
  enumeration,  ///< an enum, described by its underlying type
  string,       ///< std::string
  optional,     ///< std::optional
  sequence,     ///< std::vector and its kin
  fixed_array,  ///< std::array
  ordered_map,  ///< std::map and its kin
  hashed_map,   ///< std::unordered_map and its kin
  other,        ///< none of these: a type named by hotswap::type_name, or one not supported
};

template <class T>
constexpr field_kind kind_of_field() {
  if constexpr (versioned_type<T>)
    return field_kind::version;
  else if constexpr (std::is_same_v<T, bool>)
    return field_kind::boolean;
  else if constexpr (std::is_same_v<T, char>)
    return field_kind::character;
  else if constexpr (std::is_integral_v<T>)
    return field_kind::integer;
  else if constexpr (std::is_floating_point_v<T>)
    return field_kind::floating;
  else if constexpr (std::is_enum_v<T>)
    return field_kind::enumeration;
  else if constexpr (std::is_same_v<T, std::string>)
    return field_kind::string;
  else if constexpr (optional<T>)
    return field_kind::optional;
  else if constexpr (sequence<T>)
    return field_kind::sequence;
  else if constexpr (fixed_array<T>)
    return field_kind::fixed_array;
  else if constexpr (ordered_map<T>)
    return field_kind::ordered_map;
  else if constexpr (hashed_map<T>)
    return field_kind::hashed_map;
  else
    return field_kind::other;
}

template <class T>
inline constexpr field_kind field_kind_of = kind_of_field<T>();

/// A number, an enum or a string: a value that holds no other field type.
constexpr bool is_scalar(field_kind kind) {
  switch (kind) {
    case field_kind::boolean:
    case field_kind::character:
    case field_kind::integer:
    case field_kind::floating:
    case field_kind::enumeration:
    case field_kind::string:
      return true;
    case field_kind::version:
    case field_kind::optional:
    case field_kind::sequence:
    case field_kind::fixed_array:
    case field_kind::ordered_map:
    case field_kind::hashed_map:
    case field_kind::other:
      return false;
  }
  return false;
}

/// What a container holds: its element type, or its key and value types (none for the rest).
template <class T>
constexpr auto held_types_of() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (kind == field_kind::optional || kind == field_kind::sequence || kind == field_kind::fixed_array)
    return type_list<typename T::value_type>{};
  else if constexpr (kind == field_kind::ordered_map || kind == field_kind::hashed_map)
    return type_list<typename T::key_type, typename T::mapped_type>{};
  else
    return type_list<>{};
}
template <class T>
using held_types = decltype(held_types_of<T>());

/// Whether `Test<H>()` holds for every type H that `T` holds.
template <class T, class Test>
constexpr bool all_held(Test test) {
  return [&]<class... Held>(type_list<Held...>) { return (test(std::type_identity<Held>{}) && ...); }(held_types<T>{});
}

/// A handle of the runtime's own whose functions are the program's code, never a module's
/// (net::connection): a state holding one is still plain data. Specialized beside each.
template <class T>
inline constexpr bool runtime_handle = false;

/// A type whose values hold nothing that points into code or constants: numbers, strings,
/// schema versions, standard containers and aggregates of those, the runtime's handles. A state
/// that is not keeps the code that made it loaded while it lives, also after change_code hands
/// it on untouched.
template <class T>
constexpr bool plain_data() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (runtime_handle<T>)
    return true;
  else if constexpr (is_scalar(kind))
    return true;
  else if constexpr (kind != field_kind::version && kind != field_kind::other)
    return all_held<T>([]<class H>(std::type_identity<H>) { return plain_data<H>(); });
  else if constexpr (std::is_class_v<T> && std::is_aggregate_v<T> && !std::is_polymorphic_v<T>)
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (plain_data<field_type<T, I>>() && ...);
    }
  (std::make_index_sequence<field_count<T>>{});
  else return false;
}

}  // namespace hotswap::detail

namespace hotswap {

/// Set to true for a schema to make fmt print its versions as Elixir's inspect does
/// (hotswap/inspect.hpp); a server's state is then printed so too (hotswapctl state).
template <class Schema>
inline constexpr bool enable_inspect = false;

}  // namespace hotswap

namespace hotswap::detail {

/// Whether Elixir's String.printable? holds: UTF-8 of printable characters only (\a to \r, \e,
/// space to DEL, and U+00A0 on but for surrogates, U+FFFE and U+FFFF). Inspect prints a string so
/// quoted, any other binary as its bytes.
template <class = void>
bool elixir_printable(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const std::int32_t c = next_code_point(text, at);
    if (!((c >= 7 && c <= 13) || c == 27 || (c >= 32 && c <= 127) || (c >= 0xA0 && c <= 0xD7FF) ||
          (c >= 0xE000 && c <= 0xFFFD) || c >= 0x10000))
      return false;
  }
  return true;
}

/// A string as Elixir's inspect prints it (Inspect for BitString, Code.Identifier.escape): quoted,
/// its control characters escaped, when printable; else its bytes, <<104, 105, 0>>. No control
/// byte is ever written as it is.
template <class Out>
Out inspect_string(Out out, std::string_view text) {
  if (!elixir_printable(text)) {
    out = write_text(out, "<<");
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (i > 0) out = write_text(out, ", ");
      out = write_text(out, fmt::format("{}", static_cast<unsigned char>(text[i])));
    }
    return write_text(out, ">>");
  }
  *out++ = '"';
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t start = at;
    switch (next_code_point(text, at)) {  // a code point: the text is printable
      case '"':
        out = write_text(out, "\\\"");
        break;
      case '\\':
        out = write_text(out, "\\\\");
        break;
      case '#':  // "#{" escaped: no interpolation when pasted back
        if (at < text.size() && text[at] == '{') {
          out = write_text(out, "\\#{");
          ++at;
        } else {
          *out++ = '#';
        }
        break;
      case '\a':
        out = write_text(out, "\\a");
        break;
      case '\b':
        out = write_text(out, "\\b");
        break;
      case 0x7f:
        out = write_text(out, "\\d");
        break;
      case 0x1b:
        out = write_text(out, "\\e");
        break;
      case '\f':
        out = write_text(out, "\\f");
        break;
      case '\n':
        out = write_text(out, "\\n");
        break;
      case '\r':
        out = write_text(out, "\\r");
        break;
      case '\t':
        out = write_text(out, "\\t");
        break;
      case '\v':
        out = write_text(out, "\\v");
        break;
      case 0xFEFF:  // a byte order mark, invisible
        out = write_text(out, "\\uFEFF");
        break;
      default:
        out = write_text(out, text.substr(start, at - start));
    }
  }
  *out++ = '"';
  return out;
}

/// Elixir writes floats with a fraction and a bare exponent: 1.0, 0.1, 1.0e20, 1.5e-7.
template <class Out>
Out inspect_float(Out out, double value) {
  const std::string text = fmt::format("{}", value);
  if (text.find_first_of("in") != std::string::npos) return write_text(out, text);  // inf, nan
  const std::size_t e = text.find('e') == std::string::npos ? text.size() : text.find('e');
  std::string_view mantissa(text.data(), e), exponent(text.data() + e, text.size() - e);
  const bool negative = exponent.size() > 1 && exponent[1] == '-';
  const std::size_t digits = exponent.find_first_not_of("e+-0");
  exponent = digits == std::string_view::npos ? std::string_view() : exponent.substr(digits);
  out = write_text(out, mantissa);
  if (mantissa.find('.') == std::string_view::npos) out = write_text(out, ".0");
  if (e < text.size()) out = write_text(out, negative ? "e-" : "e");
  return write_text(out, exponent);
}

template <class Out, class T>
Out inspect_to(Out out, const T& value);

template <class Out, class Range>
Out inspect_list(Out out, const Range& range) {
  *out++ = '[';
  bool first = true;
  for (const auto& element : range) {
    if (!first) out = write_text(out, ", ");
    first = false;
    out = inspect_to(out, element);
  }
  *out++ = ']';
  return out;
}

/// Maps print with their keys in order, as Elixir prints small maps.
template <class Out, class Map>
Out inspect_map(Out out, const Map& map) {
  const std::size_t size = map.size();
  auto entries = std::make_unique<const typename Map::value_type*[]>(size);
  std::size_t n = 0;
  for (const auto& entry : map) {  // insertion sort: a hash map is printed in key order too
    std::size_t at = n++;
    for (; at > 0 && entry.first < entries[at - 1]->first; --at) entries[at] = entries[at - 1];
    entries[at] = &entry;
  }
  out = write_text(out, "%{");
  for (std::size_t i = 0; i < size; ++i) {
    const auto* entry = entries[i];
    if (i > 0) out = write_text(out, ", ");
    out = inspect_to(out, entry->first);
    out = write_text(out, " => ");
    out = inspect_to(out, entry->second);
  }
  *out++ = '}';
  return out;
}

/// A type inspect prints as its label alone, whatever it holds: a hotswap::secret, a reply
/// handle.
template <class T>
concept shown_as_label = requires {
  { T::inspect_label } -> std::convertible_to<std::string_view>;
};

template <class Out, class T>
Out inspect_to(Out out, const T& value) {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (shown_as_label<T>) {
    return write_text(out, T::inspect_label);
  } else if constexpr (kind == field_kind::version) {
    out = write_text(write_text(out, "%"), schema_of<T>::name);
    *out++ = '{';
    auto members = fields(value);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((out = write_text(write_text(write_text(out, I == 0 ? "" : ", "), field_names<T>[I]), ": "),
        out = inspect_to(out, member<I>(members))),
       ...);
    }
    (std::make_index_sequence<field_count<T>>{});
    *out++ = '}';
    return out;
  } else if constexpr (kind == field_kind::boolean) {
    return write_text(out, value ? "true" : "false");
  } else if constexpr (kind == field_kind::floating) {
    return inspect_float(out, static_cast<double>(value));
  } else if constexpr (kind == field_kind::character || kind == field_kind::integer) {
    return write_text(out, fmt::format("{}", +value));  // a char is a number in Elixir
  } else if constexpr (kind == field_kind::enumeration) {
    return write_text(out, fmt::format("{}", static_cast<std::underlying_type_t<T>>(value)));
  } else if constexpr (kind == field_kind::string) {
    return inspect_string(out, value);
  } else if constexpr (kind == field_kind::optional) {
    return value ? inspect_to(out, *value) : write_text(out, "nil");
  } else if constexpr (kind == field_kind::ordered_map || kind == field_kind::hashed_map) {
    return inspect_map(out, value);
  } else if constexpr (kind == field_kind::sequence || kind == field_kind::fixed_array) {
    return inspect_list(out, value);
  } else {
    // Beyond the field types: what prints as a string, a range, or by fmt.
    static_assert(kind == field_kind::other, "hotswap: a field kind inspect does not print");
    if constexpr (std::is_convertible_v<const T&, std::string_view>)
      return inspect_string(out, value);
    else if constexpr (requires {
                         std::begin(value);
                         std::end(value);
                       })
      return inspect_list(out, value);
    else
      return write_text(out, fmt::format("{}", value));
  }
}

/// Whether inspect prints a `T` as its schemas ask: numbers, strings, containers of them, and
/// versions of schemas that enabled inspect (whose fields are all so too).
template <class T>
constexpr bool inspect_enabled() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (is_scalar(kind) || shown_as_label<T>)
    return true;
  else if constexpr (kind == field_kind::version)
    return enable_inspect<typename schema_of<T>::schema_type>&&[]<std::size_t... I>(std::index_sequence<I...>) {
      return (inspect_enabled<field_type<T, I>>() && ...);
    }
  (std::make_index_sequence<field_count<T>>{});
  else if constexpr (kind != field_kind::other) return all_held<T>(
      []<class H>(std::type_identity<H>) { return inspect_enabled<H>(); });
  else return false;
}

/// A state of type `T` printed into `out` (up to `size` bytes); the size of all of it
/// (implementation_table::inspect_state). Out of memory, it prints what it could.
template <class T>
std::size_t inspect_state(const void* state, char* out, std::size_t size) noexcept {
  struct bounded_out {  // writes the first `size` characters, counts them all
    char* out;
    std::size_t size;
    std::size_t* count;
    bounded_out& operator*() { return *this; }
    bounded_out& operator++() { return *this; }
    bounded_out operator++(int) { return *this; }
    bounded_out& operator=(char c) {
      if (*count < size) out[*count] = c;
      ++*count;
      return *this;
    }
  };
  std::size_t count = 0;
  try {
    inspect_to(bounded_out{out, size, &count}, *static_cast<const T*>(state));
  } catch (...) {  // out of memory for a number's text: what was printed stands
  }
  return count;
}

/// Null when `T`'s schemas did not enable inspect.
template <class T>
constexpr auto inspect_state_of() -> std::size_t (*)(const void*, char*, std::size_t) noexcept {
  if constexpr (inspect_enabled<T>())
    return &inspect_state<T>;
  else
    return nullptr;
}

}  // namespace hotswap::detail
// ---- hotswap/schemas.hpp ----
// Versioned reflected schemas: plain aggregates declared as the versions of one schema, their
// field names and types, per-step field diffs, fingerprints and a run-time registry.
//
//     namespace v1 { struct Account { std::optional<std::string> name; int score = 0; }; }
//     namespace v2 { struct Account { std::optional<std::string> name; int score = 0; int stage = 0; }; }
//
//     using AccountSchema = hotswap::schema<"Account", hotswap::version<1, v1::Account>,
//                                                      hotswap::version<2, v2::Account>>;
//     template <hotswap::listed_in<AccountSchema> T>
//     struct hotswap::schema_of<T> : AccountSchema {};

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// ---- hotswap/detail/abi/image.hpp ----
// Which program image this code is compiled into. A module (a shared library built with
// hotswap_add_module, which defines HOTSWAP_MODULE_BUILD) owns no runtime and no schema
// registry: it uses those of the program that loads it, which the code server hands it before
// the module's static initializers run.
//
// The idiom this file names, "the program's copy of the code": whatever would outlive a call into
// a module's code (a thread, a timer, a callback, a control block, a freed server) is made or run
// by the program's copy of these headers, reached through function pointers the program fills in
// (the runtime's, the host link's), or it keeps the module loaded (pin_this_image, a lease).
// docs/architecture.md lists where.


namespace hotswap {
class schema_registry;
namespace detail {
template <class = void>
class basic_runtime;
using runtime = basic_runtime<>;
struct server_core;

#ifdef HOTSWAP_MODULE_BUILD
inline constexpr bool building_module = true;
#else
inline constexpr bool building_module = false;
#endif

/// In a module: the program's runtime and registry, and the module's own loaded version with the
/// program's function that makes a hold on it. (In a program: unused.) Plain data: a module
/// registers no destructor at exit, which glibc would keep a record of after every unload.
struct host_link {
  runtime* runtime_of_host = nullptr;
  schema_registry* registry_of_host = nullptr;
  const void* self = nullptr;
  std::shared_ptr<const void> (*hold_self)(const void* self) noexcept = nullptr;
};
inline host_link module_host{};

/// What keeps this image's code loaded, for whatever it makes that may outlive the call that
/// made it (a timer, a callback, an abandoned reply): nothing in a program, its loaded version
/// in a module. Whatever holds one releases it only after the module's part of it is gone, and
/// never from the module's own code: a module's code always runs under a hold of the program's.
inline std::shared_ptr<const void> pin_this_image() noexcept {
  if constexpr (building_module)
    return module_host.hold_self ? module_host.hold_self(module_host.self) : nullptr;
  else
    return {};
}

/// How the program makes a server's hold on a module (a lease, which lists the server among
/// those running the module's code); a module's servers of its own get one too.
struct lease_maker {
  std::shared_ptr<const void> (*make)(const std::shared_ptr<const void>& version) = nullptr;
  void (*bind)(const void* lease, server_core& server) noexcept = nullptr;
};
inline lease_maker& module_leases() noexcept {
  static lease_maker maker;
  return maker;
}

}  // namespace detail
}  // namespace hotswap
// ---- hotswap/detail/common/fixed_string.hpp ----
// A string usable as a template argument: schema names and field names in declarations.

#include <cstddef>
#include <string_view>
#include <utility>

namespace hotswap::detail {

template <std::size_t N>
struct fixed_string {
  char chars[N]{};

  constexpr fixed_string(const char (&text)[N]) {  // NOLINT: implicit on purpose, `"name"` is the spelling
    for (std::size_t i = 0; i < N; ++i) chars[i] = text[i];
  }
  constexpr explicit fixed_string(std::string_view text) {
    for (std::size_t i = 0; i + 1 < N && i < text.size(); ++i) chars[i] = text[i];
  }
  constexpr std::string_view view() const { return {chars, N - 1}; }
  constexpr operator std::string_view() const { return view(); }
};

}  // namespace hotswap::detail

namespace hotswap::errors {
/// Names in compile errors, spelled out letter by letter: the one spelling of a string in a
/// template argument that g++ and clang both print readably.
template <char... Letters>
struct schema_named {};
template <char... Letters>
struct field_named {};
template <char... Letters>
struct interface_named {};
}  // namespace hotswap::errors

namespace hotswap::detail {
template <template <char...> class Spelling, fixed_string Text, std::size_t... I>
Spelling<Text.chars[I]...> spell(std::index_sequence<I...>);

/// `spelled<errors::field_named, "stage">` is `errors::field_named<'s', 't', 'a', 'g', 'e'>`.
template <template <char...> class Spelling, fixed_string Text>
using spelled = decltype(spell<Spelling, Text>(std::make_index_sequence<Text.view().size()>{}));
}  // namespace hotswap::detail
// ---- hotswap/detail/common/hash.hpp ----
// The one hash of hotswap's fingerprints (schemas, interfaces, messages, states, the ABI).

#include <cstdint>
#include <string_view>

namespace hotswap::detail {

/// FNV-1a, 64 bits: the same on every compiler, which is all a fingerprint needs. Fingerprints
/// of several parts continue one hash: fnv1a(b, fnv1a(a)).
inline constexpr std::uint64_t fnv1a_start = 0xcbf29ce484222325ULL;

constexpr std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = fnv1a_start) {
  for (const char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return hash;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/common/spin_lock.hpp ----
// A one-byte lock for data that is rarely touched and briefly held (std::mutex is 40 bytes, and
// <mutex> a heavy include for the schemas layer). Waits on the flag, not in a busy loop.

#include <atomic>

namespace hotswap::detail {

class spin_lock {
 public:
  void lock() noexcept {
    while (flag_.test_and_set(std::memory_order_acquire)) flag_.wait(true, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    flag_.clear(std::memory_order_release);
    flag_.notify_one();
  }

 private:
  std::atomic_flag flag_;
};

/// Holds a spin_lock for a scope.
class spin_guard {
 public:
  explicit spin_guard(spin_lock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~spin_guard() { lock_.unlock(); }
  spin_guard(const spin_guard&) = delete;
  spin_guard& operator=(const spin_guard&) = delete;

 private:
  spin_lock& lock_;
};

}  // namespace hotswap::detail
// ---- hotswap/detail/common/verdict.hpp ----
// Verdicts: what a compile-time check found, as a type, computed without reporting anything.
//
// A check returns `verdict<no_error>`, or `verdict<errors::some_mistake<...>>` naming the first
// mistake; nothing is instantiated meanwhile. The public entry point (migrate, table_of, a
// schema, call) then reports it by instantiating that error type, whose static_assert says what
// to write, and compiles nothing else that depends on the mistake. So one mistake is one error,
// reported a few frames from the user's line (compilers print every frame), and a concept such as
// hotswap::migrates asks the very same check that decides whether the code compiles.
//
// Reporting the same error type twice (a schema used in two places) instantiates it once:
// still one error.

#include <type_traits>

namespace hotswap::detail {

/// Nothing to report.
struct no_error {};

/// The result of a check: `Error` is no_error or the errors:: type to report.
template <class Error>
struct verdict {
  using error = Error;
};

template <class Verdict>
using error_of = typename Verdict::error;

template <class Verdict>
inline constexpr bool fine = std::is_same_v<error_of<Verdict>, no_error>;

/// The first verdict that is not fine (all of them computed: each must be quiet on its own).
template <class... Verdicts>
struct first_of;
template <>
struct first_of<> : verdict<no_error> {};
template <class Verdict, class... Rest>
struct first_of<Verdict, Rest...> : std::conditional_t<fine<Verdict>, first_of<Rest...>, Verdict> {};

}  // namespace hotswap::detail

namespace hotswap::errors {
/// False, but only once instantiated: an error type's `static_assert(reported<...>, "what to write")`
/// fires only when a check reports it.
template <class...>
inline constexpr bool reported = false;
}  // namespace hotswap::errors
// ---- hotswap/detail/schemas/describe.hpp ----
// Canonical descriptions of types, the same on every compiler (`Account@2{name:optional<string>,
// score:i32}`), from which fingerprints are hashed. Describing a type also checks it.
// Cost: one instantiation of describe_type per distinct field type, twice (a counting pass sizes
// the array the second pass writes); descriptions of nested versions are not shared between
// the structs that hold them, so a deeply nested schema is described once per holder.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/common/sinks.hpp ----
// Text built at compile time: a sink that counts, then one that writes into an array of that size
// (schema descriptions, module notes).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hotswap::detail {

struct length_sink {
  std::size_t size = 0;
  constexpr void put(std::string_view text) { size += text.size(); }
};

template <std::size_t N>
struct chars_sink {
  std::array<char, N> chars{};
  std::size_t size = 0;
  constexpr void put(std::string_view text) {
    for (char c : text) chars[size++] = c;
  }
};

template <class Sink>
constexpr void put_number(Sink& sink, std::size_t value) {
  char digits[20]{};
  std::size_t n = 0;
  do digits[n++] = static_cast<char>('0' + value % 10);
  while ((value /= 10) != 0);
  while (n > 0) sink.put(std::string_view(&digits[--n], 1));
}

inline constexpr std::string_view hex_digits = "0123456789abcdef";

template <class Sink>
constexpr void put_hex(Sink& sink, std::uint64_t value) {
  for (int shift = 60; shift >= 0; shift -= 4) sink.put(hex_digits.substr((value >> shift) & 0xF, 1));
}

}  // namespace hotswap::detail
// ---- hotswap/detail/common/type_name.hpp ----
// The one reader of type names: the compiler's own spelling of a type, read from
// __PRETTY_FUNCTION__ at compile time. Spellings differ between compilers, so they name types in
// messages and tell types apart within a build; fingerprints use canonical descriptions instead.

#include <string_view>

namespace hotswap::detail {

/// `T` as this compiler spells it (`v2::Account`, `std::vector<int>`).
template <class T>
constexpr std::string_view type_spelling() {
  constexpr std::string_view text = __PRETTY_FUNCTION__;
  constexpr std::string_view gcc_start = "[with T = ", clang_start = "[T = ";
  if constexpr (text.find(gcc_start) != std::string_view::npos) {
    constexpr auto from = text.find(gcc_start) + gcc_start.size();
    return text.substr(from, text.find(';', from) - from);
  } else {
    constexpr auto from = text.find(clang_start) + clang_start.size();
    return text.substr(from, text.rfind(']') - from);
  }
}
static_assert(type_spelling<int>() == "int", "hotswap: cannot read type names from this compiler's signatures");

}  // namespace hotswap::detail
// ---- hotswap/detail/schemas/schema_checks.hpp ----
// Checking a schema's list of versions when the schema is first used: numbered 1, 2, 3... and each
// version a plain aggregate of at most max_fields fields. Cost: one verdict per version, no
// recursion into the fields (describing them, describe.hpp, checks those).

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>


namespace hotswap {
template <detail::fixed_string Name, class... Versions>
struct schema;  // hotswap/schemas.hpp

/// Compile errors. Each names what is wrong in its own name and template arguments (which the
/// compiler prints as "in instantiation of ...") and says in its message what to write.
namespace errors {
template <class Schema, int Previous, int Next>
struct version_numbers_must_count_up_by_one {
  static_assert(reported<version_numbers_must_count_up_by_one>,
                "hotswap: the versions of a schema must be numbered consecutively (1, 2, 3...) in order: "
                "renumber them, without a gap or a duplicate, oldest first");
};
template <class Schema, int Vsn, class T>
struct version_is_not_an_aggregate {
  static_assert(reported<version_is_not_an_aggregate>,
                "hotswap: a schema version must be a plain aggregate (public fields, no constructors, no "
                "virtual functions, no base classes): remove the constructors or wrap the class in a struct");
};
template <class Schema, int Vsn, class T>
struct version_is_not_default_constructible {
  static_assert(reported<version_is_not_default_constructible>,
                "hotswap: every field of a schema version needs a default, so that a migration can add it: "
                "give a field whose type has no default constructor a default member initializer");
};
template <class Schema, int Vsn, class T>
struct version_has_a_reference_or_const_member {
  static_assert(reported<version_has_a_reference_or_const_member>,
                "hotswap: a schema version cannot have a reference or const member (its fields must be "
                "move-assignable): a migrated value owns its data, so store the value itself, not const");
};
template <class Schema, int Vsn, class T>
struct version_has_a_bit_field {
  static_assert(reported<version_has_a_bit_field>,
                "hotswap: a schema version cannot have a bit-field (or a [[no_unique_address]] member): "
                "declare the field as a whole integer such as std::uint8_t");
};
template <class Schema, int Vsn, class T, std::size_t Fields>
struct version_has_too_many_fields {
  static_assert(reported<version_has_too_many_fields>,
                "hotswap: a schema version may have at most hotswap::detail::max_fields (64) fields: group "
                "fields into nested structs, or raise MAX_FIELDS in tools/generate_bindings.py and rerun it");
};
}  // namespace errors
}  // namespace hotswap

namespace hotswap::detail {

/// The type of version `Vsn` among `Versions` (void when none is).
template <int Vsn, class... Versions>
constexpr auto version_type() {
  constexpr bool match[] = {Versions::vsn == Vsn..., false};
  constexpr std::size_t at = [&] {
    std::size_t i = 0;
    while (i < sizeof...(Versions) && !match[i]) ++i;
    return i;
  }();
  if constexpr (at == sizeof...(Versions))
    return std::type_identity<void>{};
  else
    return std::type_identity<std::tuple_element_t<at, std::tuple<typename Versions::type...>>>{};
}

template <class Schema, int Vsn, class T>
constexpr auto check_version() {
  if constexpr (!std::is_aggregate_v<T> || std::is_polymorphic_v<T>)
    return verdict<errors::version_is_not_an_aggregate<Schema, Vsn, T>>{};
  else if constexpr (!std::is_default_constructible_v<T>)
    return verdict<errors::version_is_not_default_constructible<Schema, Vsn, T>>{};
  else if constexpr (field_count<T> > max_fields)
    return verdict<errors::version_has_too_many_fields<Schema, Vsn, T, field_count<T>>>{};
  else if constexpr (!std::is_move_assignable_v<T>)
    return verdict<errors::version_has_a_reference_or_const_member<Schema, Vsn, T>>{};
  else if constexpr (plain_layout_size(field_types<T>{}) != sizeof(T))
    return verdict<errors::version_has_a_bit_field<Schema, Vsn, T>>{};
  else
    return verdict<no_error>{};
}

template <class Schema, int Previous, int Next>
using check_numbering =
    verdict<std::conditional_t<Next == Previous + 1, no_error,
                               errors::version_numbers_must_count_up_by_one<Schema, Previous, Next>>>;

template <class Schema, auto Vsns, std::size_t... I>
constexpr auto check_numbers(std::index_sequence<I...>) {
  return first_of<check_numbering<Schema, Vsns[I], Vsns[I + 1]>...>{};
}

/// The first mistake in a schema's list: its numbering, then each version's shape.
template <fixed_string Schema, class... Versions>
constexpr auto check_schema() {
  using name = spelled<errors::schema_named, Schema>;
  using numbering = decltype(check_numbers<name, std::array<int, sizeof...(Versions)>{Versions::vsn...}>(
      std::make_index_sequence<sizeof...(Versions) - 1>{}));
  if constexpr (!fine<numbering>)
    return verdict<error_of<numbering>>{};
  else
    return verdict<error_of<first_of<decltype(check_version<name, Versions::vsn, typename Versions::type>())...>>>{};
}

/// The verdict on the schema `T` is a version of (its list's first mistake).
template <class Schema>
struct schema_check;
template <fixed_string Name, class... Versions>
struct schema_check<schema<Name, Versions...>> : decltype(check_schema<Name, Versions...>()) {};

}  // namespace hotswap::detail

namespace hotswap::errors {
template <class T>
struct type_has_no_canonical_name {
  static_assert(reported<type_has_no_canonical_name>,
                "hotswap: this field type has no canonical name for schema fingerprints: declare it as a "
                "schema version, or specialize hotswap::type_name<T> with `static constexpr std::string_view "
                "value = \"...\";`");
};
}  // namespace hotswap::errors

namespace hotswap::detail {

// Describing a type also checks it: each function returns the verdict on what it described
// (a type without a canonical name), so that the list of describable types is written once.
// (Verdicts are never operands of `,`: its overload lookup would instantiate the error.)

template <class T, class Sink>
constexpr auto describe_type(Sink& sink);

template <class T, class Sink>
constexpr auto describe_after(Sink& sink, std::string_view separator, std::string_view name = {}) {
  sink.put(separator);
  sink.put(name);
  if (!name.empty()) sink.put(":");
  return describe_type<T>(sink);
}

/// `Account@2{name:optional<string>,score:i32,stage:i32}`.
template <versioned_type T, class Sink>
constexpr auto describe_struct(Sink& sink) {
  using schema_verdict = schema_check<typename schema_of<T>::schema_type>;
  if constexpr (!fine<schema_verdict>) {
    return verdict<error_of<schema_verdict>>{};  // reported by the schema itself
  } else {
    sink.put(schema_of<T>::name);
    sink.put("@");
    put_number(sink, static_cast<std::size_t>(schema_of<T>::template vsn_of<T>));
    sink.put("{");
    const auto found = [&]<std::size_t... I>(std::index_sequence<I...>) {
      (static_cast<void>(describe_after<field_type<T, I>>(sink, I == 0 ? "" : ",", field_names<T>[I])), ...);
      return verdict<error_of<first_of<decltype(describe_type<field_type<T, I>>(sink))...>>>{};
    }
    (std::make_index_sequence<field_count<T>>{});
    sink.put("}");
    return found;
  }
}

template <class Sink, class... Args>
constexpr auto describe_arguments(Sink& sink, std::string_view template_name, type_list<Args...>) {
  sink.put(template_name);
  sink.put("<");
  std::size_t i = 0;
  (static_cast<void>(describe_after<Args>(sink, i++ == 0 ? "" : ",")), ...);
  sink.put(">");
  return verdict<error_of<first_of<decltype(describe_type<Args>(sink))...>>>{};
}

template <class T, class Sink>
constexpr auto describe_type(Sink& sink) {
  constexpr verdict<no_error> described{};
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (named_type<T>) {
    return sink.put(type_name<T>::value), described;
  } else if constexpr (kind == field_kind::version) {
    return describe_struct<T>(sink);
  } else if constexpr (kind == field_kind::boolean) {
    return sink.put("bool"), described;
  } else if constexpr (kind == field_kind::character) {
    return sink.put("char"), described;
  } else if constexpr (kind == field_kind::integer) {
    sink.put(std::is_signed_v<T> ? "i" : "u");
    return put_number(sink, sizeof(T) * 8), described;
  } else if constexpr (kind == field_kind::floating) {
    sink.put("f");
    return put_number(sink, sizeof(T) * 8), described;
  } else if constexpr (kind == field_kind::enumeration) {
    sink.put("enum:");
    return describe_type<std::underlying_type_t<T>>(sink);
  } else if constexpr (kind == field_kind::string) {
    return sink.put("string"), described;
  } else if constexpr (kind == field_kind::optional) {
    return describe_arguments(sink, "optional", held_types<T>{});
  } else if constexpr (kind == field_kind::sequence) {
    return describe_arguments(sink, "vector", held_types<T>{});
  } else if constexpr (kind == field_kind::ordered_map) {
    return describe_arguments(sink, "map", held_types<T>{});
  } else if constexpr (kind == field_kind::hashed_map) {
    return describe_arguments(sink, "unordered_map", held_types<T>{});
  } else if constexpr (kind == field_kind::fixed_array) {
    const auto found = describe_arguments(sink, "array", held_types<T>{});
    sink.put("[");
    put_number(sink, std::tuple_size_v<T>);
    sink.put("]");
    return found;
  } else {
    static_assert(kind == field_kind::other, "hotswap: a field kind without a canonical description");
    return verdict<errors::type_has_no_canonical_name<T>>{};
  }
}

/// A type the schemas layer can describe canonically (without reporting anything).
template <class T>
constexpr bool describable() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (named_type<T> || kind == field_kind::version || is_scalar(kind))
    return true;
  else if constexpr (kind == field_kind::other)
    return false;
  else
    return all_held<T>([]<class H>(std::type_identity<H>) { return describable<H>(); });
}

/// The verdict on describing T: a field type without a canonical name, or a broken schema.
template <class T>
using description_check = decltype(describe_type<T>(std::declval<length_sink&>()));

template <class T>
constexpr auto make_type_description() {
  if constexpr (!fine<description_check<T>>) {
    return std::array<char, 0>{};
  } else {
    constexpr std::size_t size = [] {
      length_sink counter;
      describe_type<T>(counter);
      return counter.size;
    }();
    chars_sink<size> text;
    describe_type<T>(text);
    return text.chars;
  }
}

// A class, not a function, reports the error: clang takes a function whose instantiation failed
// for one that cannot be evaluated, and would report every constant computed from it too.
template <class T>
struct type_description_of {
  static_assert(sizeof(error_of<description_check<T>>) != 0);  // the first mistake, reported once
  static constexpr auto chars = make_type_description<T>();
};

/// The canonical description of `T` (hotswap::type_description).
template <class T>
inline constexpr std::string_view description{type_description_of<T>::chars.data(),
                                              type_description_of<T>::chars.size()};

/// The canonical name of a wrapper hotswap defines around `T` (`Name<` T's description `>`,
/// or its spelling when it has none): what its hotswap::type_name says, so that a state holding
/// one is described, and migrated, with it.
template <fixed_string Name, class T>
struct wrapper_name {
  static constexpr std::string_view held = [] {
    if constexpr (describable<T>())
      return description<T>;
    else
      return type_spelling<T>();
  }();
  static constexpr auto chars = [] {
    std::array<char, Name.view().size() + held.size() + 2> text{};
    auto at = text.begin();
    for (const char c : Name.view()) *at++ = c;
    *at++ = '<';
    for (const char c : held) *at++ = c;
    *at = '>';
    return text;
  }();
  static constexpr std::string_view value{chars.data(), chars.size()};
};

// ---- names for people: a server's state in status, state and tree, and in refusals ----

template <class T, class Sink>
constexpr void put_short_name(Sink& sink);

template <class Sink, class... Held>
constexpr void put_short_names(Sink& sink, std::string_view template_name, type_list<Held...>) {
  sink.put(template_name);
  sink.put("<");
  std::size_t i = 0;
  ((sink.put(i++ == 0 ? "" : ","), put_short_name<Held>(sink)), ...);
  sink.put(">");
}

/// The canonical description with each schema version as `Name@vsn` only (`map<string,Account@3>`).
template <class T, class Sink>
constexpr void put_short_name(Sink& sink) {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (kind == field_kind::version && !named_type<T>) {
    sink.put(schema_of<T>::name);
    sink.put("@");
    put_number(sink, static_cast<std::size_t>(schema_of<T>::template vsn_of<T>));
  } else if constexpr (kind == field_kind::optional) {
    put_short_names(sink, "optional", held_types<T>{});
  } else if constexpr (kind == field_kind::sequence) {
    put_short_names(sink, "vector", held_types<T>{});
  } else if constexpr (kind == field_kind::ordered_map) {
    put_short_names(sink, "map", held_types<T>{});
  } else if constexpr (kind == field_kind::hashed_map) {
    put_short_names(sink, "unordered_map", held_types<T>{});
  } else if constexpr (kind == field_kind::fixed_array) {
    put_short_names(sink, "array", held_types<T>{});
    sink.put("[");
    put_number(sink, std::tuple_size_v<T>);
    sink.put("]");
  } else {
    static_cast<void>(describe_type<T>(sink));  // a scalar, a string or a named type
  }
}

/// This compiler's spelling without libstdc++'s inner names, and with `>>` as clang writes it:
/// `std::pair<std::string, int>` on g++ and clang alike.
template <class Sink>
constexpr void put_spelling(Sink& sink, std::string_view text) {
  constexpr std::string_view strings[] = {"std::__cxx11::basic_string<char>", "std::basic_string<char>"};
  constexpr std::string_view inner = "std::__cxx11::";
  for (std::size_t i = 0; i < text.size();) {
    std::size_t skipped = 0;
    for (const std::string_view string : strings)
      if (text.substr(i).starts_with(string)) sink.put("std::string"), skipped = string.size();
    if (skipped == 0 && text.substr(i).starts_with(inner)) sink.put("std::"), skipped = inner.size();
    if (skipped == 0 && !text.substr(i).starts_with(" >")) sink.put(text.substr(i, 1));
    i += skipped == 0 ? 1 : skipped;
  }
}

template <class T, class Sink>
constexpr void put_readable_name(Sink& sink) {
  if constexpr (describable<T>())
    put_short_name<T>(sink);
  else
    put_spelling(sink, type_spelling<T>());
}

template <class T>
constexpr auto make_readable_name() {
  constexpr std::size_t size = [] {
    length_sink counter;
    put_readable_name<T>(counter);
    return counter.size;
  }();
  chars_sink<size> text;
  put_readable_name<T>(text);
  return text.chars;
}
template <class T>
inline constexpr auto readable_name_chars = make_readable_name<T>();

/// `T` as views name it: its canonical description with versions as `Name@vsn`
/// (`map<string,Account@3>`), the same on every compiler; a type without one as this compiler
/// spells it, libstdc++'s inner names taken out (`std::pair<std::string, int>`).
template <class T>
inline constexpr std::string_view readable_name{readable_name_chars<T>.data(), readable_name_chars<T>.size()};

}  // namespace hotswap::detail
// ---- hotswap/detail/schemas/field_diff.hpp ----
// What changes from one struct to another, field by field and by name (hotswap::field_diff).
// Types are told apart by the compiler's spelling of them: comparing the addresses of per-type
// variables is not a constant expression under -fsanitize=address.

#include <array>
#include <cstddef>
#include <string_view>
#include <utility>


namespace hotswap::detail {

template <class T>
inline constexpr auto field_type_ids = []<std::size_t... I>(std::index_sequence<I...>) {
  return std::array<std::string_view, sizeof...(I)>{type_spelling<field_type<T, I>>()...};
}
(std::make_index_sequence<field_count<T>>{});

enum class field_change { added, removed, kept, retyped };

template <class From, class To>
constexpr bool diff_has(std::string_view name, field_change change) {
  const std::size_t in_from = field_index<From>(name), in_to = field_index<To>(name);
  const bool was = in_from < field_count<From>, is = in_to < field_count<To>;
  switch (change) {
    case field_change::added:
      return !was && is;
    case field_change::removed:
      return was && !is;
    case field_change::kept:
      return was && is && field_type_ids<From>[in_from] == field_type_ids<To>[in_to];
    case field_change::retyped:
      return was && is && field_type_ids<From>[in_from] != field_type_ids<To>[in_to];
  }
  return false;
}

/// The names of one kind of change, in the order of the struct that has them.
template <class From, class To, field_change Change>
constexpr auto diff_names() {
  using Listing = std::conditional_t<Change == field_change::removed, From, To>;
  constexpr auto count = [] {
    std::size_t n = 0;
    for (std::string_view name : field_names<Listing>) n += diff_has<From, To>(name, Change);
    return n;
  }();
  std::array<std::string_view, count> names{};
  std::size_t n = 0;
  for (std::string_view name : field_names<Listing>)
    if (diff_has<From, To>(name, Change)) names[n++] = name;
  return names;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/schemas/version_info.hpp ----
// One version of a schema as the run-time registry holds it, and its description made from the
// struct at compile time.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


namespace hotswap::detail {

/// One version of a schema as the registry holds it (hotswap::version_info): what type-erased
/// code can know of a value. Modules hand theirs to the program.
struct version_info {
  std::string schema;
  int vsn = 0;
  std::uint64_t fingerprint = 0;
  std::vector<std::string> field_names;
  std::vector<std::string> field_types;
  friend bool operator==(const version_info&, const version_info&) = default;
};

/// The description of version `T` of its schema.
template <versioned_type T>
version_info describe_version() {
  version_info info{std::string(schema_of<T>::name), version_number<T>, fnv1a(description<T>), {}, {}};
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (info.field_names.emplace_back(field_names<T>[I]), ...);
    (info.field_types.emplace_back(description<field_type<T, I>>), ...);
  }
  (std::make_index_sequence<field_count<T>>{});
  return info;
}

// -- what differs between two versions of a schema held under one name and vsn --

using described_field = std::pair<std::string, std::string>;  // (name, type) as a description has them

/// The fields of a description (`Account@2{owner:string,balance:money}`), in order; empty if it
/// is none (a type's description is not read further than its first level).
template <class = void>
std::vector<described_field> described_fields(std::string_view description) {
  std::vector<described_field> fields;
  const std::size_t open = description.find('{');
  if (open == std::string_view::npos || description.empty() || description.back() != '}') return fields;
  const std::string_view body = description.substr(open + 1, description.size() - open - 2);
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t at = 0; at <= body.size(); ++at) {
    const char c = at < body.size() ? body[at] : ',';
    if (c == '<' || c == '{' || c == '(' || c == '[') ++depth;
    if (c == '>' || c == '}' || c == ')' || c == ']') --depth;
    if (c != ',' || depth != 0) continue;
    const std::string_view field = body.substr(start, at - start);
    const std::size_t colon = field.find(':');
    if (!field.empty()) {
      if (colon == std::string_view::npos) return {};
      fields.emplace_back(std::string(field.substr(0, colon)), std::string(field.substr(colon + 1)));
    }
    start = at + 1;
  }
  return fields;
}

/// The fields of a version the registry holds.
template <class = void>
std::vector<described_field> described_fields(const version_info& version) {
  std::vector<described_field> fields;
  for (std::size_t i = 0; i < version.field_names.size() && i < version.field_types.size(); ++i)
    fields.emplace_back(version.field_names[i], version.field_types[i]);
  return fields;
}

/// A version the registry holds as its description reads: `Account@2{owner:string,balance:money}`.
template <class = void>
std::string described(const version_info& version) {
  std::string text = version.schema + "@" + std::to_string(version.vsn) + "{";
  for (std::size_t i = 0; i < version.field_names.size() && i < version.field_types.size(); ++i)
    text += (i ? "," : "") + version.field_names[i] + ":" + version.field_types[i];
  return text + "}";
}

/// Which fields differ between `there` (another's) and `here`: `count is short there, long
/// here; shelf:string is only there; price:int only here; the same fields in another order`.
/// Empty when they are the same.
template <class = void>
std::string field_differences(const std::vector<described_field>& there, const std::vector<described_field>& here,
                              std::string_view there_is = "there", std::string_view here_is = "here") {
  std::vector<std::string> said;
  const auto find = [](const std::vector<described_field>& in, const std::string& name) {
    for (const auto& field : in)
      if (field.first == name) return &field;
    return static_cast<const described_field*>(nullptr);
  };
  for (const auto& field : there)
    if (const auto* other = find(here, field.first); !other)
      said.push_back(field.first + ":" + field.second + " is only " + std::string(there_is));
    else if (other->second != field.second)
      said.push_back(field.first + " is " + field.second + " " + std::string(there_is) + ", " + other->second + " " +
                     std::string(here_is));
  for (const auto& field : here)
    if (!find(there, field.first))
      said.push_back(field.first + ":" + field.second + " is only " + std::string(here_is));
  if (said.empty() && there != here) said.push_back("the same fields in another order");
  constexpr std::size_t shown = 8;  // a message, not a listing
  std::string text;
  for (std::size_t i = 0; i < said.size() && i < shown; ++i) text += (i ? "; " : "") + said[i];
  if (said.size() > shown) text += "; and " + std::to_string(said.size() - shown) + " more";
  return text;
}

}  // namespace hotswap::detail

namespace hotswap {

// -- declaring a schema --

/// Declares that `T` is version `Vsn` of a schema.
template <int Vsn, class T>
struct version {
  static constexpr int vsn = Vsn;
  using type = T;
};

/// Lists the versions of the schema `Name`, oldest first, numbered consecutively.
template <detail::fixed_string Name, class... Versions>
struct schema {
  static_assert(sizeof...(Versions) > 0, "hotswap: a schema lists at least one hotswap::version<N, T>");
  // Reports the first mistake in the list, once (the check is true whatever it found).
  static_assert(sizeof(detail::error_of<decltype(detail::check_schema<Name, Versions...>())>) != 0);

  using schema_type = schema;
  static constexpr std::string_view name = Name.view();
  static constexpr std::array<int, sizeof...(Versions)> vsns{Versions::vsn...};
  static constexpr int oldest_vsn = vsns.front();
  static constexpr int latest_vsn = vsns.back();

  /// Whether `T` is one of the listed versions.
  template <class T>
  static constexpr bool lists = (std::is_same_v<T, typename Versions::type> || ...);

  /// The version number of `T`.
  template <class T>
  requires lists<T>
  static constexpr int vsn_of = ((std::is_same_v<T, typename Versions::type> ? Versions::vsn : 0) + ...);

  /// The struct of version `Vsn`.
  template <int Vsn>
  using type_of = typename decltype(detail::version_type<Vsn, Versions...>())::type;
  using latest = type_of<latest_vsn>;
};

// -- the customization points --

/// Maps a struct to its schema. Specialize it once per schema, for the types the schema lists:
///
///     template <hotswap::listed_in<AccountSchema> T>
///     struct hotswap::schema_of<T> : AccountSchema {};
template <class T>
struct schema_of {};

/// The canonical name of a field type that is neither standard nor a schema version. Specialize
/// with `static constexpr std::string_view value = "...";`: it enters the fingerprint of every
/// schema that uses the type, so it must not depend on the compiler.
template <class T>
struct type_name {};

/// A field whose value never leaves the process: inspect prints it as `#secret`, and so do crash
/// reports, sys views and the control socket's `state` (a password, a key). It migrates as its
/// `T` does not: a `secret<T>` stays a `secret<T>`.
template <class T>
struct secret {
  static constexpr std::string_view inspect_label = "#secret";
  T value{};
  friend bool operator==(const secret&, const secret&) = default;
};
template <class T>
struct type_name<secret<T>> : detail::wrapper_name<"hotswap::secret", T> {};

/// `T` is one of the versions `Schema` lists.
template <class T, class Schema>
concept listed_in = Schema::template lists<T>;

/// `T` is a version of some schema.
template <class T>
concept versioned = detail::versioned_type<T>;

/// The version number of a versioned struct.
template <versioned T>
inline constexpr int vsn_of = schema_of<T>::template vsn_of<T>;

/// Two structs are versions of the same schema.
template <class A, class B>
concept same_schema = detail::same_schema_types<A, B>;

// -- reflection --

/// The field names of a struct, in declaration order.
template <class T>
inline constexpr auto field_names = detail::field_names<T>;

/// The type of field `I` of a struct.
template <class T, std::size_t I>
using field_type = detail::field_type<T, I>;

/// The number of fields of a struct.
template <class T>
inline constexpr std::size_t field_count = detail::field_count<T>;

/// The index of the field called `name`, or field_count<T> when there is none.
template <class T>
constexpr std::size_t field_index(std::string_view name) {
  return detail::field_index<T>(name);
}

/// What changes, field by field and by name, from the struct `From` to the struct `To`.
template <class From, class To>
struct field_diff {
  static constexpr auto added = detail::diff_names<From, To, detail::field_change::added>();
  static constexpr auto removed = detail::diff_names<From, To, detail::field_change::removed>();
  static constexpr auto kept = detail::diff_names<From, To, detail::field_change::kept>();
  static constexpr auto retyped = detail::diff_names<From, To, detail::field_change::retyped>();
};

// -- canonical type names and fingerprints --

/// The canonical spelling of a type, the same on every compiler: `optional<string>`, `i32`,
/// `Account@2{name:optional<string>,score:i32,stage:i32}`.
template <class T>
inline constexpr std::string_view type_description = detail::description<T>;

/// The fingerprint of a schema version (or any describable type): a hash of its schema name,
/// vsn, field names and canonical field types, recursively.
template <class T>
inline constexpr std::uint64_t fingerprint = detail::fnv1a(detail::description<T>);

// -- run-time registry --

/// One version of a schema as the registry holds it: what type-erased code can know of a value.
using version_info = detail::version_info;

/// The description of version `T` of its schema.
template <versioned T>
version_info describe() {
  return detail::describe_version<T>();
}

/// Thrown when two descriptions of the same schema version disagree.
class schema_conflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The schema versions known to this process, by schema name and vsn. Few and rarely added to,
/// so a list under a spin lock serves (and keeps <map> and <mutex> out of every includer).
class schema_registry {
 public:
  /// Adds one version; adding the same description again is harmless, a different one for the
  /// same name and vsn throws schema_conflict and changes nothing.
  void add(version_info info) {
    const detail::spin_guard hold(busy_);
    if (const version_info* known = find_locked(info.schema, info.vsn)) {
      if (known->fingerprint != info.fingerprint)
        throw schema_conflict("hotswap: schema " + info.schema + " version " + std::to_string(info.vsn) +
                              " is already registered with a different fingerprint (its fields or their types differ)");
      return;
    }
    entries_.push_back(std::move(info));
  }

  /// Adds every version a schema lists.
  template <class Schema>
  void add() {
    [&]<int... Offset>(std::integer_sequence<int, Offset...>) {
      (add(describe<typename Schema::template type_of<Schema::oldest_vsn + Offset>>()), ...);
    }
    (std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
  }

  std::optional<version_info> find(std::string_view schema, int vsn) const {
    const detail::spin_guard hold(busy_);
    const version_info* known = find_locked(schema, vsn);
    return known ? std::optional(*known) : std::nullopt;
  }

  /// The versions of one schema, oldest first.
  std::vector<version_info> versions(std::string_view schema) const {
    const detail::spin_guard hold(busy_);
    std::vector<version_info> out;
    for (const auto& info : entries_)
      if (info.schema == schema) out.insert(find_insertion(out, info.vsn), info);
    return out;
  }

 private:
  const version_info* find_locked(std::string_view schema, int vsn) const {
    for (const auto& info : entries_)
      if (info.schema == schema && info.vsn == vsn) return &info;
    return nullptr;
  }
  static std::vector<version_info>::iterator find_insertion(std::vector<version_info>& sorted, int vsn) {
    auto at = sorted.begin();
    while (at != sorted.end() && at->vsn < vsn) ++at;
    return at;
  }

  mutable detail::spin_lock busy_;
  std::vector<version_info> entries_;
};

/// The registry of this program (a module's code reaches the program's).
inline schema_registry& registry() {
#ifdef HOTSWAP_MODULE_BUILD
  return *detail::module_host.registry_of_host;
#else
  static schema_registry instance;
  return instance;
#endif
}

}  // namespace hotswap

namespace hotswap {

// -- inspect --

// hotswap::enable_inspect<Schema>: declared in detail/schemas/inspect.hpp, beside what it enables.

/// A version of a schema that opted in to inspect formatting.
template <class T>
concept inspectable = versioned<T> && enable_inspect<typename schema_of<T>::schema_type>;

/// `value` as Elixir's inspect would print it.
template <class T>
std::string inspect(const T& value) {
  std::string text;
  detail::inspect_to(std::back_inserter(text), value);
  return text;
}

}  // namespace hotswap

template <hotswap::inspectable T>
struct fmt::formatter<T, char> {
  constexpr auto parse(format_parse_context& context) { return context.begin(); }
  template <class FormatContext>
  auto format(const T& value, FormatContext& context) const {
    return hotswap::detail::inspect_to(context.out(), value);
  }
};
// ---- hotswap/migrations.hpp ----
// Migrations between the versions of a schema, generated field by field at compile time.
//
// Fields are matched by name. A kept field is moved; an added field takes the new struct's
// default member initializer (an added number, bool, char or enum must have one, checked at
// compile time, or be declared `hotswap::added<"field">` where the struct holds a string or a
// container, whose default member initializers cannot be read there); a field whose type is a
// schema version, or a standard container or optional of one, migrates recursively; widening
// conversions apply by themselves. What cannot be inferred is declared once per step:
//
//     template <>
//     struct hotswap::step<v1::Account, v2::Account> {
//       static constexpr auto rules = hotswap::rules{
//           hotswap::init<"stage">([](const v1::Account&, const Stages& stages, const std::string& name) {
//             return stages.at(name);
//           }),
//       };
//     };
//
//     auto accounts_v3 = hotswap::migrate<std::map<std::string, v3::Account>>(std::move(accounts_v1), stages);

#include <array>
#include <cstddef>
#include <limits>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/migrations/apply.hpp ----
// Migrating a value, once checks.hpp found nothing: step by step between versions, field by field
// within a step, element by element within a container. A value given as an rvalue is moved
// from; one given as a const (or any lvalue) is read, each part copied as it is used: a server's
// old state, kept as it is for a rollback, is so migrated without a whole copy made first.

#include <cstddef>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/migrations/context.hpp ----
// The vocabulary of migrations that the machinery names: declared here, defined (and documented)
// in hotswap/migrations.hpp, whose users name them. Every use below is in a template, so the
// definitions are complete by the time anything is instantiated.

namespace hotswap {
struct no_key;
struct no_extra;
template <class Extra, class Key>
struct context;
}  // namespace hotswap
// ---- hotswap/detail/migrations/routes.hpp ----
// What migrates by itself: how a value of one field type becomes another (the same type, versions
// of one schema, a widening, or a container of those), decided once for checking and migrating.

#include <limits>
#include <tuple>
#include <type_traits>


namespace hotswap::detail {

/// A conversion that keeps every value: to a larger integer of the same signedness, to a larger
/// floating type, or from an integer to a floating type whose mantissa holds all its values
/// (int -> double, not int -> float or long -> double). bool and char (whose signedness depends
/// on the platform) convert only to themselves.
template <class From, class To>
constexpr bool widens() {
  constexpr bool plain_number = [] {
    using F = std::remove_cv_t<From>;
    using T = std::remove_cv_t<To>;
    return std::is_arithmetic_v<F> && std::is_arithmetic_v<T> && !std::is_same_v<F, bool> && !std::is_same_v<T, bool> &&
           !std::is_same_v<F, char> && !std::is_same_v<T, char>;
  }();
  if constexpr (!plain_number) {
    return false;
  } else if constexpr (std::is_integral_v<From> && std::is_integral_v<To>) {
    return std::is_signed_v<From> == std::is_signed_v<To> && sizeof(From) <= sizeof(To);
  } else if constexpr (std::is_floating_point_v<To>) {
    return std::numeric_limits<From>::digits <= std::numeric_limits<To>::digits;
  } else {
    return false;
  }
}

/// How a value of From becomes a To: the one decision that checking and migrating share.
enum class route { same, versions, widening, sequence, map, optional, into_optional, array, none };

template <class From, class To>
constexpr route route_of() {
  constexpr field_kind from = field_kind_of<From>, to = field_kind_of<To>;
  if constexpr (std::is_same_v<From, To>)
    return route::same;
  else if constexpr (same_schema_types<From, To>)
    return route::versions;
  else if constexpr (widens<From, To>())
    return route::widening;
  else if constexpr (from != to)
    return to == field_kind::optional ? route::into_optional : route::none;
  else if constexpr (from == field_kind::sequence)
    return route::sequence;
  else if constexpr (from == field_kind::ordered_map || from == field_kind::hashed_map)
    return std::is_same_v<typename From::key_type, typename To::key_type> ? route::map : route::none;
  else if constexpr (from == field_kind::optional)
    return route::optional;
  else if constexpr (from == field_kind::fixed_array)
    return std::tuple_size_v<From> == std::tuple_size_v<To> ? route::array : route::none;
  else
    return route::none;  // two scalars that do not widen, two versions of different schemas
}

/// Whether From reaches To by a route, element by element (shapes only: check_migration also
/// checks the steps between schema versions).
template <class From, class To>
constexpr bool has_route() {
  constexpr route way = route_of<From, To>();
  if constexpr (way == route::sequence || way == route::optional || way == route::array)
    return has_route<typename From::value_type, typename To::value_type>();
  else if constexpr (way == route::map)
    return has_route<typename From::mapped_type, typename To::mapped_type>();
  else if constexpr (way == route::into_optional)
    return has_route<From, typename To::value_type>();
  else
    return way != route::none;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/migrations/step_plan.hpp ----
// One step's plan: where each field of the newer (or older) struct comes from, by name, given the
// step's declarations (removed, renamed, convert, init).

#include <array>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/migrations/errors.hpp ----
// The compile errors of migrations: each names the schema, the step and the field, and says what
// to declare.


namespace hotswap::errors {

template <class Schema, int From, int To, class Field>
struct field_dropped_without_declaration {
  static_assert(reported<field_dropped_without_declaration>,
                "hotswap: this step drops a field that the older struct has; declare "
                "hotswap::removed<\"field\"> in the rules of hotswap::step<From, To> (for a downgrade, that "
                "declares the loss), or hotswap::renamed<\"field\", \"new_name\"> if it was renamed");
};
template <class Schema, int From, int To, class Field, class OldType, class NewType>
struct field_type_changed_without_converter {
  static_assert(reported<field_type_changed_without_converter>,
                "hotswap: this field changes type in a way hotswap does not convert by itself (only widening "
                "and schema versions are); declare hotswap::convert<\"field\">([](OldType old) { return ...; }) "
                "in the rules of hotswap::step<From, To>");
};
template <class Schema, int From, int To, class Field>
struct added_field_has_no_default {
  static_assert(reported<added_field_has_no_default>,
                "hotswap: a number, bool, char or enum field added in this step has no default member "
                "initializer; give it one (`int stage = 0;`), or declare hotswap::added<\"field\"> (it is then "
                "zero) or hotswap::init<\"field\">(fn) in the rules of hotswap::step<From, To>");
};
template <class Schema, int From, int To, class Field, class HeldField>
struct added_field_must_be_declared {
  static_assert(reported<added_field_must_be_declared>,
                "hotswap: a number, bool, char or enum field added in this step must be declared: declare "
                "hotswap::added<\"field\"> (it takes its default member initializer, zero without one) or "
                "hotswap::init<\"field\">(fn) in the rules of hotswap::step<From, To>. hotswap reads a default "
                "member initializer at compile time only in a struct whose fields are all numbers, enums, "
                "std::array and std::optional of those or schema versions of those, which every compiler can "
                "build in a constant expression; HeldField holds another type (a string, a container...)");
};
template <class Schema, int From, int To, class Field>
struct rule_names_an_unknown_field {
  static_assert(reported<rule_names_an_unknown_field>,
                "hotswap: a rule of this step names a field that does not exist: removed and renamed name a "
                "field of the older struct, renamed's second name and init and convert a field of the newer "
                "(and convert one the older struct has too, under its old name), added a field of the newer "
                "struct that the older lacks");
};
template <class Function, class Value, class Extra, class Key>
struct declared_function_does_not_fit {
  static_assert(reported<declared_function_does_not_fit>,
                "hotswap: a declared init or convert function cannot be called here; it must take (old) or "
                "(old, context), or (old, extra, key) when the value is migrated inside a map (Key is "
                "hotswap::no_key outside one), with Extra the type of the value given to hotswap::migrate");
};
template <class Schema, int From, int To, class Field, class Returned, class FieldType>
struct declared_function_returns_the_wrong_type {
  static_assert(reported<declared_function_returns_the_wrong_type>,
                "hotswap: a declared init or convert function returns a type (Returned) that does not convert to "
                "the type of the field it makes (FieldType); return FieldType");
};
template <class From, class To>
struct no_migration_between {
  static_assert(
      reported<no_migration_between>,
      "hotswap: there is no migration between these types: they are not versions of one schema, "
      "matching containers of them, or a widening conversion; if From and To are two versions of one "
      "struct, declare them: `using S = hotswap::schema<\"Name\", hotswap::version<1, From>, "
      "hotswap::version<2, To>>;` and `template <hotswap::listed_in<S> T> struct hotswap::schema_of<T> : S {};`");
};

}  // namespace hotswap::errors

namespace hotswap {
template <class From, class To>
struct step;  // the customization point, hotswap/migrations.hpp
}  // namespace hotswap

namespace hotswap::detail {

enum class rule_kind { removed, renamed, convert, init, added };

/// One declaration of a step, as the plan reads it.
struct rule_entry {
  rule_kind kind;
  std::string_view field;       // the old field (removed, renamed) or the new one (convert, init, added)
  std::string_view renamed_to;  // renamed only
};

/// The declarations of a step that declares none.
struct no_rules {
  static constexpr std::array<rule_entry, 0> entries{};
  template <std::size_t I>
  using rule_type = std::tuple_element_t<I, std::tuple<>>;  // never named: no field has a rule
};

template <class T, std::size_t I>
using field_name_arg = spelled<errors::field_named, fixed_string<field_names<T>[I].size() + 1>(field_names<T>[I])>;

template <class T>
using schema_name_arg = spelled<errors::schema_named, fixed_string<schema_of<T>::name.size() + 1>(schema_of<T>::name)>;

template <class Step>
constexpr auto rules_of() {
  if constexpr (requires { Step::rules; })
    return Step::rules;
  else
    return no_rules{};
}

template <class Step>
using rules_type = decltype(rules_of<Step>());

template <class From, class To>
struct step_rules {
  static constexpr auto own = rules_type<step<From, To>>::entries;
  // A downgrade renames back what the upgrade renamed.
  static constexpr auto reverse = version_number<From> > version_number<To>
                                      ? rules_type<step<To, From>>::entries
                                      : decltype(rules_type<step<To, From>>::entries){};

  static constexpr std::size_t find(rule_kind kind, std::string_view field) {
    for (std::size_t i = 0; i < own.size(); ++i)
      if (own[i].kind == kind && own[i].field == field) return i;
    return own.size();
  }
  static constexpr bool has(rule_kind kind, std::string_view field) { return find(kind, field) < own.size(); }

  /// The name field `new_name` of `To` had in `From`; empty when it is new although `From` has a
  /// field of that name, because that field was renamed away.
  static constexpr std::string_view old_name(std::string_view new_name) {
    for (const auto& rule : own)
      if (rule.kind == rule_kind::renamed && rule.renamed_to == new_name) return rule.field;
    for (const auto& rule : reverse)
      if (rule.kind == rule_kind::renamed && rule.field == new_name) return rule.renamed_to;
    for (const auto& rule : own)
      if (rule.kind == rule_kind::renamed && rule.field == new_name) return {};
    for (const auto& rule : reverse)
      if (rule.kind == rule_kind::renamed && rule.renamed_to == new_name) return {};
    return new_name;
  }
};

/// The function a rule of `kind` declares for field `New` of To.
template <class From, class To, rule_kind Kind, std::size_t New>
using declared_rule =
    typename rules_type<step<From, To>>::template rule_type<step_rules<From, To>::find(Kind, field_names<To>[New])>;

enum class source_kind { init, convert, moved, added };

struct field_source {
  source_kind kind;
  std::size_t old_index;  // field_count<From> when the field is added
};

/// Where each field of `To` comes from.
template <class From, class To>
constexpr auto plan_step() {
  using Rules = step_rules<From, To>;
  std::array<field_source, field_count<To>> plan{};
  for (std::size_t j = 0; j < plan.size(); ++j) {
    const std::string_view name = field_names<To>[j];
    const std::size_t old_index = field_index<From>(Rules::old_name(name));
    if (Rules::has(rule_kind::init, name))
      plan[j] = {source_kind::init, old_index};
    else if (Rules::has(rule_kind::convert, name))
      plan[j] = {source_kind::convert, old_index};
    else if (old_index < field_count<From>)
      plan[j] = {source_kind::moved, old_index};
    else
      plan[j] = {source_kind::added, old_index};
  }
  return plan;
}

template <class From, class To>
inline constexpr auto step_plan = plan_step<From, To>();

/// How many leading fields need an initializer: trailing added fields are left to their default
/// member initializers by aggregate initialization itself.
template <auto Plan>
constexpr std::size_t initialized_prefix() {
  std::size_t prefix = Plan.size();
  while (prefix > 0 && Plan[prefix - 1].kind == source_kind::added) --prefix;
  return prefix;
}

/// Whether an added field comes before an initialized one (the struct is then built with its
/// defaults, and the other fields assigned).
template <auto Plan>
constexpr bool adds_before_the_end() {
  for (std::size_t j = 0; j < initialized_prefix<Plan>(); ++j)
    if (Plan[j].kind == source_kind::added) return true;
  return false;
}

/// Whether g++ and clang can both build T in a constant expression, judged by its field types
/// alone, never by trying: trying gives each compiler's own verdict (clang 14 cannot build
/// libstdc++'s std::string there, g++ 12 can; neither can build a std::map). Numbers, enums,
/// std::array and std::optional of those, and schema versions made of those.
template <class T>
constexpr bool built_at_compile_time() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (kind == field_kind::version) return []<std::size_t... I>(std::index_sequence<I...>) {
      return (built_at_compile_time<field_type<T, I>>() && ...);
    }
  (std::make_index_sequence<field_count<T>>{});
  else if constexpr (kind == field_kind::optional ||
                     kind == field_kind::fixed_array) return built_at_compile_time<typename T::value_type>();
  else return kind == field_kind::boolean || kind == field_kind::character || kind == field_kind::integer ||
      kind == field_kind::floating || kind == field_kind::enumeration;
}

/// The first field of T that keeps it from being built at compile time (field_count<T> if none).
template <class T>
constexpr std::size_t first_field_not_built() {
  return []<std::size_t... I>(std::index_sequence<I...>) {
    constexpr bool built[] = {built_at_compile_time<field_type<T, I>>()..., false};
    std::size_t i = 0;
    while (i < sizeof...(I) && built[i]) ++i;
    return i;
  }
  (std::make_index_sequence<field_count<T>>{});
}

// Reading a field after default initialization is a constant expression exactly when it has a
// default member initializer.
template <class T, std::size_t J>
constexpr bool read_default_member() {
  T value;
  auto field = member<J>(fields(value));
  return (void)field, true;
}
template <class T>
constexpr bool build_default() {
  T value;
  return (void)value, true;
}

/// What the check knows of an added field's default member initializer.
enum class added_default { given, missing, unknown };

/// Only a number, bool, char or enum needs one: the other types' value-initialization is their
/// empty value. It is read only where built_at_compile_time says both compilers can, so that the
/// same source gets the same verdict on both; elsewhere it is unknown, and the step declares it.
template <class T, std::size_t J>
constexpr added_default default_of() {
  if constexpr (!std::is_scalar_v<field_type<T, J>>)
    return added_default::given;
  else if constexpr (!built_at_compile_time<T>())
    return added_default::unknown;
  else if constexpr (std::is_trivially_default_constructible_v<T>)
    return added_default::missing;  // no field has a default member initializer
  else if constexpr (!requires { typename std::bool_constant<build_default<T>()>; })
    return added_default::unknown;  // a default member initializer that is no constant expression
  else if constexpr (requires { typename std::bool_constant<read_default_member<T, J>()>; })
    return added_default::given;
  else
    return added_default::missing;
}

/// How a declared function is called: `(old, extra, key)` inside a map when it takes that,
/// else `(old, context)`, else `(old)`.
enum class call_form { extra_and_key, context, value, none };

template <class Function, class Value, class Context>
constexpr call_form call_form_of() {
  if constexpr (Context::has_key && std::is_invocable_v<const Function&, Value, const typename Context::extra_type&,
                                                        const typename Context::key_type&>)
    return call_form::extra_and_key;
  else if constexpr (std::is_invocable_v<const Function&, Value, const Context&>)
    return call_form::context;
  else if constexpr (std::is_invocable_v<const Function&, Value>)
    return call_form::value;
  else
    return call_form::none;
}

template <class Function, class Value, class Context>
decltype(auto) call_declared(const Function& function, Value&& value, const Context& context) {
  constexpr call_form form = call_form_of<Function, Value&&, Context>();
  if constexpr (form == call_form::extra_and_key)
    return function(std::forward<Value>(value), context.extra, context.key);
  else if constexpr (form == call_form::context)
    return function(std::forward<Value>(value), context);
  else
    return function(std::forward<Value>(value));
}

}  // namespace hotswap::detail

namespace hotswap::detail {

template <class To, class Source, class Context>
To migrate_value(Source&& from, const Context& context);

// -- moved or read --

/// Whether a migration given `Source` (a forwarding reference's type) reads it, not moves from it.
template <class Source>
inline constexpr bool reads_only =
    std::is_lvalue_reference_v<Source> || std::is_const_v<std::remove_reference_t<Source>>;

/// A part of the source, passed on as the source was given: moved out, or as a const lvalue.
template <class Source, class Part>
constexpr decltype(auto) part_of(Part& part) noexcept {
  if constexpr (reads_only<Source>)
    return std::as_const(part);
  else
    return std::move(part);
}

// -- one step, one version to the next --

template <class Field, class Value>
Field implicitly(Value&& value) {
  return std::forward<Value>(value);
}

template <class From, class To, class Source, class Context>
To run_step(Source&& from, const Context& context) {
  using Step = step<From, To>;
  if constexpr (requires(From && whole) { Step::migrate(std::move(whole), context); }) {
    if constexpr (reads_only<Source>)
      return Step::migrate(From(from), context);  // the step's own function takes its value whole
    else
      return Step::migrate(std::move(from), context);
  } else {
    constexpr auto plan = step_plan<From, To>;
    constexpr auto declared = rules_of<Step>();
    auto old_fields = fields(from);
    auto declared_function = [&]<rule_kind Kind, std::size_t New>() -> const auto& {
      return static_cast<const declared_rule<From, To, Kind, New>&>(declared).function;
    };

    // Initializers read the whole old value, so they all run before anything is moved out of it.
    constexpr auto init_fields = [&] {
      std::array<std::size_t, field_count<To>> indices{};
      std::size_t n = 0;
      for (std::size_t j = 0; j < plan.size(); ++j)
        if (plan[j].kind == source_kind::init) indices[n++] = j;
      return std::pair{indices, n};
    }();
    auto initialized = [&]<std::size_t... K>(std::index_sequence<K...>) {
      return std::tuple<field_type<To, init_fields.first[K]>...>{implicitly<field_type<To, init_fields.first[K]>>(
          call_declared(declared_function.template operator()<rule_kind::init, init_fields.first[K]>(),
                        std::as_const(from), context))...};
    }
    (std::make_index_sequence<init_fields.second>{});

    // Each field's initializer: a moved field is moved straight into place, as a hand-written
    // `To{std::move(old.name), ...}` does.
    auto field_value = [&]<std::size_t New>(std::integral_constant<std::size_t, New>) -> decltype(auto) {
      constexpr field_source source = plan[New];
      using Field = field_type<To, New>;
      if constexpr (source.kind == source_kind::init) {
        constexpr std::size_t position = [&] {
          std::size_t k = 0;
          while (init_fields.first[k] != New) ++k;
          return k;
        }();
        return std::move(std::get<position>(initialized));
      } else if constexpr (source.kind == source_kind::convert) {
        const auto& convert = declared_function.template operator()<rule_kind::convert, New>();
        using Old = field_type<From, source.old_index>;
        if constexpr (reads_only<Source>)  // a copy of its own: the function may take it by rvalue reference
          return implicitly<Field>(call_declared(convert, Old(member<source.old_index>(old_fields)), context));
        else
          return implicitly<Field>(call_declared(convert, std::move(member<source.old_index>(old_fields)), context));
      } else {
        static_assert(source.kind == source_kind::moved);
        if constexpr (std::is_same_v<field_type<From, source.old_index>, Field>)
          return part_of<Source>(member<source.old_index>(old_fields));
        else
          return migrate_value<Field>(part_of<Source>(member<source.old_index>(old_fields)), context);
      }
    };
    if constexpr (adds_before_the_end<plan>()) {
      // A field added before others: aggregate initialization cannot skip it, so the struct is
      // built with every default member initializer, and the other fields are assigned.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
// g++ 12 at -O2/-O3 believes a std::string in `made` may be destroyed uninitialized on the path
// where building it throws (valgrind finds nothing; plain code building the same struct does not
// warn).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
      To made{};
      auto made_fields = fields(made);
      [&]<std::size_t... J>(std::index_sequence<J...>) {
        auto assign = [&]<std::size_t New>(std::integral_constant<std::size_t, New> field) {
          if constexpr (plan[New].kind != source_kind::added) member<New>(made_fields) = field_value(field);
        };
        (assign(std::integral_constant<std::size_t, J>{}), ...);
      }
      (std::make_index_sequence<plan.size()>{});
      return made;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    } else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // trailing added fields: on purpose
      return [&]<std::size_t... J>(std::index_sequence<J...>) {
        return To{field_value(std::integral_constant<std::size_t, J>{})...};
      }
      (std::make_index_sequence<initialized_prefix<plan>()>{});
#pragma GCC diagnostic pop
    }
  }
}

/// Migrates a schema version to another version of the same schema, one step at a time (what
/// the first step made is moved from by the next).
template <class To, class Source, class Context>
To migrate_versions(Source&& from, const Context& context) {
  using From = std::remove_cvref_t<Source>;
  constexpr int from_vsn = version_number<From>, to_vsn = version_number<To>;
  using Next = typename schema_of<From>::template type_of<(from_vsn < to_vsn ? from_vsn + 1 : from_vsn - 1)>;
  if constexpr (std::is_same_v<Next, To>)
    return run_step<From, To>(std::forward<Source>(from), context);  // built in place, not moved once more
  else
    return migrate_versions<To>(run_step<From, Next>(std::forward<Source>(from), context), context);
}

/// Converts to `To` by calling `make`, so that a container building a `To` from it in place
/// builds it straight from make's result, with no temporary moved in.
template <class To, class Make>
struct built_in_place {
  Make make;
  operator To() && { return make(); }
};
template <class To, class Make>
built_in_place<To, Make> in_place(Make make) {
  return {std::move(make)};
}

template <class To, class Source, class Context>
To migrate_value(Source&& from, const Context& context) {
  constexpr route way = route_of<std::remove_cvref_t<Source>, To>();
  if constexpr (way == route::same) {
    return part_of<Source>(from);
  } else if constexpr (way == route::versions) {
    return migrate_versions<To>(std::forward<Source>(from), context);
  } else if constexpr (way == route::widening) {
    return static_cast<To>(from);
  } else if constexpr (way == route::sequence) {
    To out;
    out.reserve(from.size());
    for (auto& element : from)
      out.emplace_back(in_place<typename To::value_type>(
          [&] { return migrate_value<typename To::value_type>(part_of<Source>(element), context); }));
    return out;
  } else if constexpr (way == route::map && ordered_map<To>) {
    To out;
    for (auto& entry : from)  // not a structured binding: clang 14 cannot capture one
      out.emplace_hint(out.end(), entry.first, in_place<typename To::mapped_type>([&] {
                         return migrate_value<typename To::mapped_type>(part_of<Source>(entry.second),
                                                                        context.with_key(entry.first));
                       }));
    return out;
  } else if constexpr (way == route::map) {
    To out;
    out.reserve(from.size());
    for (auto& entry : from)
      out.emplace(entry.first, in_place<typename To::mapped_type>([&] {
                    return migrate_value<typename To::mapped_type>(part_of<Source>(entry.second),
                                                                   context.with_key(entry.first));
                  }));
    return out;
  } else if constexpr (way == route::optional) {
    if (!from) return To{};
    return To{migrate_value<typename To::value_type>(part_of<Source>(*from), context)};
  } else if constexpr (way == route::into_optional) {
    return To{migrate_value<typename To::value_type>(std::forward<Source>(from), context)};
  } else {
    static_assert(way == route::array);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return To{migrate_value<typename To::value_type>(part_of<Source>(from[I]), context)...};
    }
    (std::make_index_sequence<std::tuple_size_v<To>>{});
  }
}

/// Migrates a whole value: the context of the top level, outside any map.
template <class To, class From, class Extra, class Key = no_key>
To migrate_top(From&& value, const Extra& extra) {
  static constexpr Key top_level{};
  return migrate_value<To>(std::forward<From>(value), context<Extra, Key>{extra, top_level});
}

}  // namespace hotswap::detail
// ---- hotswap/detail/migrations/checks.hpp ----
// Checking a migration: its first mistake, found without reporting anything.

#include <cstddef>
#include <type_traits>
#include <utility>


namespace hotswap::detail {

// ---- checks: the first mistake of a migration, found without reporting anything ----
//
// check_migration mirrors migrate_value route by route, and each step's check mirrors run_step
// field by field: `migrate` compiles exactly when it finds nothing, and hotswap::migrates asks
// it. Cost: one instantiation per field per step per context (the key type of an enclosing map
// is part of it), the same fields run_step instantiates anyway.

template <class From, class To, class Context>
constexpr auto check_migration();

/// Whether a rule names fields that exist where it says.
template <class From, class To>
constexpr bool names_known_fields(rule_entry rule) {
  using Rules = step_rules<From, To>;
  switch (rule.kind) {
    case rule_kind::removed:
      return field_index<From>(rule.field) < field_count<From>;
    case rule_kind::renamed:
      return field_index<From>(rule.field) < field_count<From> && field_index<To>(rule.renamed_to) < field_count<To>;
    case rule_kind::convert:
      return field_index<To>(rule.field) < field_count<To> &&
             field_index<From>(Rules::old_name(rule.field)) < field_count<From>;
    case rule_kind::init:
      return field_index<To>(rule.field) < field_count<To>;
    case rule_kind::added:  // a field of the newer struct that the older lacks
      return field_index<To>(rule.field) < field_count<To> &&
             step_plan<From, To>[field_index<To>(rule.field)].kind == source_kind::added;
  }
  return false;
}

template <class From, class To, std::size_t I>
constexpr auto check_rule() {
  using Rules = step_rules<From, To>;
  constexpr rule_entry rule = Rules::own[I];
  constexpr bool known = names_known_fields<From, To>(rule);
  if constexpr (known)
    return verdict<no_error>{};
  else
    return verdict<errors::rule_names_an_unknown_field<
        schema_name_arg<To>, version_number<From>, version_number<To>,
        spelled<errors::field_named, fixed_string<rule.field.size() + 1>(rule.field)>>>{};
}

/// An old field nothing takes, unless declared removed.
template <class From, class To, std::size_t Old>
constexpr auto check_dropped() {
  constexpr bool used = [] {
    for (const auto& source : step_plan<From, To>)
      if (source.kind != source_kind::added && source.old_index == Old) return true;
    return step_rules<From, To>::has(rule_kind::removed, field_names<From>[Old]);
  }();
  if constexpr (used)
    return verdict<no_error>{};
  else
    return verdict<errors::field_dropped_without_declaration<schema_name_arg<To>, version_number<From>,
                                                             version_number<To>, field_name_arg<From, Old>>>{};
}

template <class From, class To, class Context, std::size_t New, class Function, class Value>
constexpr auto check_declared() {
  using Extra = typename Context::extra_type;
  using Key = typename Context::key_type;
  if constexpr (call_form_of<Function, Value, Context>() == call_form::none) {
    return verdict<errors::declared_function_does_not_fit<Function, std::remove_reference_t<Value>, Extra, Key>>{};
  } else {
    using Returned =
        decltype(call_declared(std::declval<const Function&>(), std::declval<Value>(), std::declval<const Context&>()));
    if constexpr (!std::is_convertible_v<Returned, field_type<To, New>>)
      return verdict<errors::declared_function_returns_the_wrong_type<schema_name_arg<To>, version_number<From>,
                                                                      version_number<To>, field_name_arg<To, New>,
                                                                      Returned, field_type<To, New>>>{};
    else
      return verdict<no_error>{};
  }
}

/// Field `New` of To, made as the plan says.
template <class From, class To, class Context, std::size_t New>
constexpr auto check_field() {
  constexpr field_source source = step_plan<From, To>[New];
  using Field = field_type<To, New>;
  if constexpr (source.kind == source_kind::init) {
    using Function = decltype(declared_rule<From, To, rule_kind::init, New>::function);
    return check_declared<From, To, Context, New, Function, const From&>();
  } else if constexpr (source.kind == source_kind::convert) {
    using Function = decltype(declared_rule<From, To, rule_kind::convert, New>::function);
    return check_declared<From, To, Context, New, Function, field_type<From, source.old_index>&&>();
  } else if constexpr (source.kind == source_kind::moved) {
    using Old = field_type<From, source.old_index>;
    if constexpr (!has_route<Old, Field>())
      return verdict<errors::field_type_changed_without_converter<
          schema_name_arg<To>, version_number<From>, version_number<To>, field_name_arg<To, New>, Old, Field>>{};
    else
      return check_migration<Old, Field, Context>();
  } else if constexpr (step_rules<From, To>::has(rule_kind::added, field_names<To>[New])) {
    return verdict<no_error>{};
  } else if constexpr (default_of<To, New>() == added_default::missing) {
    return verdict<errors::added_field_has_no_default<schema_name_arg<To>, version_number<From>, version_number<To>,
                                                      field_name_arg<To, New>>>{};
  } else if constexpr (default_of<To, New>() == added_default::unknown) {
    constexpr std::size_t held = first_field_not_built<To>();
    return verdict < errors::added_field_must_be_declared<schema_name_arg<To>, version_number<From>, version_number<To>,
                                                          field_name_arg<To, New>,
                                                          field_name_arg<To, held<field_count<To> ? held : New>>>{};
  } else {
    return verdict<no_error>{};
  }
}

template <class From, class To, class Context, std::size_t... Rule, std::size_t... Old, std::size_t... New>
constexpr auto check_generated_step(std::index_sequence<Rule...>, std::index_sequence<Old...>,
                                    std::index_sequence<New...>) {
  using rules_verdict = first_of<decltype(check_rule<From, To, Rule>())...>;
  using dropped_verdict = first_of<decltype(check_dropped<From, To, Old>())...>;
  if constexpr (!fine<rules_verdict>)
    return verdict<error_of<rules_verdict>>{};  // the plan is not to be trusted before this
  else if constexpr (!fine<dropped_verdict>)
    return verdict<error_of<dropped_verdict>>{};
  else
    return verdict<error_of<first_of<decltype(check_field<From, To, Context, New>())...>>>{};
}

/// One step between adjacent versions: written by hand, or generated from the plan.
template <class From, class To, class Context>
constexpr auto check_step() {
  if constexpr (requires(From && from, const Context& context) { step<From, To>::migrate(std::move(from), context); })
    return verdict<no_error>{};
  else
    return check_generated_step<From, To, Context>(std::make_index_sequence<step_rules<From, To>::own.size()>{},
                                                   std::make_index_sequence<field_count<From>>{},
                                                   std::make_index_sequence<field_count<To>>{});
}

/// Each step from From to To, in order (the schema's own mistakes first).
template <class From, class To, class Context>
constexpr auto check_versions() {
  using schema_verdict = schema_check<typename schema_of<From>::schema_type>;
  if constexpr (!fine<schema_verdict>) {
    return verdict<error_of<schema_verdict>>{};
  } else {
    constexpr int from = version_number<From>, to = version_number<To>;
    using Next = typename schema_of<From>::template type_of<(from < to ? from + 1 : from - 1)>;
    using step_verdict = decltype(check_step<From, Next, Context>());
    if constexpr (!fine<step_verdict> || std::is_same_v<Next, To>)
      return step_verdict{};
    else
      return check_versions<Next, To, Context>();
  }
}

template <class From, class To, class Context>
constexpr auto check_migration() {
  constexpr route way = route_of<From, To>();
  if constexpr (way == route::same || way == route::widening)
    return verdict<no_error>{};
  else if constexpr (way == route::versions)
    return check_versions<From, To, Context>();
  else if constexpr (way == route::sequence || way == route::optional || way == route::array)
    return check_migration<typename From::value_type, typename To::value_type, Context>();
  else if constexpr (way == route::map)
    return check_migration<typename From::mapped_type, typename To::mapped_type,
                           typename Context::template with_key_type<typename From::key_type>>();
  else if constexpr (way == route::into_optional)
    return check_migration<From, typename To::value_type, Context>();
  else
    return verdict<errors::no_migration_between<From, To>>{};
}

template <class From, class To, class Context>
using migration_check = decltype(check_migration<From, To, Context>());

/// `hotswap::migrate<To>(from, extra)` compiles: From reaches To, and every step on the way has
/// what it needs (declarations, defaults, declared functions that take `extra`'s type).

}  // namespace hotswap::detail

namespace hotswap {

// -- declaring a step --

/// Declares that field `Field` of the older struct is dropped on purpose (for a downgrade: that
/// its loss is accepted).
template <detail::fixed_string Field>
struct removed_rule {
  static constexpr detail::rule_entry entry{detail::rule_kind::removed, Field.view(), {}};
};
template <detail::fixed_string Field>
inline constexpr removed_rule<Field> removed{};

/// Declares that field `Old` is called `New` from this step on. The downgrade renames it back.
template <detail::fixed_string Old, detail::fixed_string New>
struct renamed_rule {
  static constexpr detail::rule_entry entry{detail::rule_kind::renamed, Old.view(), New.view()};
};
template <detail::fixed_string Old, detail::fixed_string New>
inline constexpr renamed_rule<Old, New> renamed{};

/// Converts the old value of field `Field` to its new type: `function(old_value)`,
/// `function(old_value, context)` or, inside a map, `function(old_value, extra, key)`.
template <detail::fixed_string Field, class Function>
struct convert_rule {
  static constexpr detail::rule_entry entry{detail::rule_kind::convert, Field.view(), {}};
  Function function;
};
template <detail::fixed_string Field, class Function>
constexpr convert_rule<Field, Function> convert(Function function) {
  return {function};
}

/// Computes field `Field` of the newer struct from the whole old value and, optionally, the
/// context: `function(old)`, `function(old, context)` or, inside a map, `function(old, extra, key)`.
template <detail::fixed_string Field, class Function>
struct init_rule {
  static constexpr detail::rule_entry entry{detail::rule_kind::init, Field.view(), {}};
  Function function;
};
template <detail::fixed_string Field, class Function>
constexpr init_rule<Field, Function> init(Function function) {
  return {function};
}

/// Declares that field `Field`, added in this step, takes its default member initializer (or is
/// value-initialized without one). A number, bool, char or enum field added to a struct that
/// holds a string or a container needs it (or init): hotswap cannot read that struct's default
/// member initializers at compile time.
template <detail::fixed_string Field>
struct added_rule {
  static constexpr detail::rule_entry entry{detail::rule_kind::added, Field.view(), {}};
};
template <detail::fixed_string Field>
inline constexpr added_rule<Field> added{};

/// The declarations of one step.
template <class... Rules>
struct rules : Rules... {
  constexpr rules(Rules... each) : Rules(each)... {}
  template <std::size_t I>
  using rule_type = std::tuple_element_t<I, std::tuple<Rules...>>;
  static constexpr std::array<detail::rule_entry, sizeof...(Rules)> entries{Rules::entry...};
};

/// One step between adjacent versions, in either direction. Specialize it to declare what the
/// generated step cannot infer, with `static constexpr auto rules = hotswap::rules{...};`, or to
/// replace the whole step with `static To migrate(From&& old, const auto& context);`.
template <class From, class To>
struct step {};

/// What a migration passes to declared functions: `extra`, the value the caller gave `migrate`,
/// and `key`, the key of the map entry being migrated (`no_key` outside a map).
struct no_key {};
struct no_extra {};

template <class Extra, class Key = no_key>
struct context {
  using extra_type = Extra;
  using key_type = Key;
  const Extra& extra;
  const Key& key;

  static constexpr bool has_key = !std::is_same_v<Key, no_key>;

  template <class NewKey>
  using with_key_type = context<Extra, NewKey>;
  template <class NewKey>
  constexpr context<Extra, NewKey> with_key(const NewKey& new_key) const {
    return {extra, new_key};
  }
};

// -- migrating --

/// `hotswap::migrate<To>(from, extra)` compiles: From reaches To, and every step on the way has
/// what it needs (declarations, defaults, declared functions that take `extra`'s type).
template <class From, class To, class Extra = no_extra>
concept migrates =
    detail::fine<detail::migration_check<std::remove_cvref_t<From>, To, context<std::remove_cvref_t<Extra>>>>;

/// Migrates `value` to `To`: a schema version to another (up or down, step by step), or a
/// container or optional of versions to the same container of others. `extra` reaches every
/// declared function as `context.extra`. What does not migrate is a compile error naming the
/// first mistake (hotswap::migrates<From, To, Extra> asks the same question quietly).
template <class To, class From, class Extra = no_extra>
To migrate(From value, const Extra& extra = {}) {
  using check = detail::migration_check<From, To, context<Extra>>;
  if constexpr (!detail::fine<check>) {
    (void)sizeof(detail::error_of<check>);  // the first mistake, reported once
    __builtin_unreachable();
  } else {
    return detail::migrate_top<To>(std::move(value), extra);
  }
}

}  // namespace hotswap
// ---- hotswap/modules.hpp ----
// Modules: implementation tables and schema histories loaded from shared libraries at run time,
// as Erlang's code server loads modules.
//
// A module is a shared library (made by hotswap_add_module in CMake) whose source says
//
//     HOTSWAP_MODULE("counter", CounterV2)
//
// and the program loads it, starts servers on it or switches running ones to it:
//
//     hotswap::code_server code;
//     auto v2 = code.load<Counter>("modules/counter_v2.so").value();
//     hotswap::sys::suspend(server).value();
//     hotswap::sys::change_code(server, v2, 1).value();   // from vsn 1
//     hotswap::sys::resume(server).value();
//     code.purge("counter");                              // unloads v1, or names the servers using it
//
// Everything a module says of itself (ABI, name, vsn, interface, schemas) is text in a section of
// the file, read and checked before the library is opened, with the seal its build wrote (a digest
// of its bytes, and a signature if the build has a key): a module that does not fit, is torn or
// is not signed by a trusted key never runs a line of its code. Each version is loaded from a
// private copy (rebuilding the file in place does not touch running code), and unmapped only once
// no server, table, state, timer or reply of its code is left.

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// ---- hotswap/detail/abi/abi_description.hpp ----
// The ABI a module must share with the program that loads it, described in text that enters its
// note and hashed into the fingerprint both compare.

#include <cstdint>
#include <string_view>

// ---- hotswap/version.hpp ----
// hotswap's version. It enters the ABI fingerprint of every module built against it.

#define HOTSWAP_VERSION_MAJOR 0
#define HOTSWAP_VERSION_MINOR 1
#define HOTSWAP_VERSION_PATCH 0
#define HOTSWAP_VERSION_STRING "0.1.0"

namespace hotswap {
inline constexpr int version_major = HOTSWAP_VERSION_MAJOR;
inline constexpr int version_minor = HOTSWAP_VERSION_MINOR;
inline constexpr int version_patch = HOTSWAP_VERSION_PATCH;
}  // namespace hotswap
// ---- hotswap/detail/abi/headers_digest.hpp ----
// Generated by tools/headers_digest.py from every other header under include/hotswap; do not
// edit. It enters the ABI fingerprint: a module built from other headers is refused.

#define HOTSWAP_DETAIL_HEADERS_DIGEST "364c6f5597871438"

#define HOTSWAP_DETAIL_TEXT(x) #x
#define HOTSWAP_DETAIL_STRING(x) HOTSWAP_DETAIL_TEXT(x)

#if defined(__clang__)
#define HOTSWAP_DETAIL_COMPILER                                              \
  "clang " HOTSWAP_DETAIL_STRING(__clang_major__) "." HOTSWAP_DETAIL_STRING( \
      __clang_minor__) "." HOTSWAP_DETAIL_STRING(__clang_patchlevel__)
#elif defined(__GNUC__)
#define HOTSWAP_DETAIL_COMPILER                                                                               \
  "g++ " HOTSWAP_DETAIL_STRING(__GNUC__) "." HOTSWAP_DETAIL_STRING(__GNUC_MINOR__) "." HOTSWAP_DETAIL_STRING( \
      __GNUC_PATCHLEVEL__)
#else
#define HOTSWAP_DETAIL_COMPILER "unknown compiler"
#endif

#if defined(__GLIBCXX__)
#define HOTSWAP_DETAIL_STDLIB \
  "libstdc++ " HOTSWAP_DETAIL_STRING(__GLIBCXX__) ", cxx11 abi " HOTSWAP_DETAIL_STRING(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define HOTSWAP_DETAIL_STDLIB \
  "libc++ " HOTSWAP_DETAIL_STRING(_LIBCPP_VERSION) ", abi " HOTSWAP_DETAIL_STRING(_LIBCPP_ABI_VERSION)
#else
#define HOTSWAP_DETAIL_STDLIB "unknown standard library"
#endif

#if defined(_GLIBCXX_DEBUG)  // debug containers have other layouts
#define HOTSWAP_DETAIL_DEBUG_CONTAINERS ", debug containers"
#else
#define HOTSWAP_DETAIL_DEBUG_CONTAINERS ""
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define HOTSWAP_DETAIL_EXCEPTIONS "exceptions on"
#else
#define HOTSWAP_DETAIL_EXCEPTIONS "exceptions off"
#endif

#if defined(__GXX_RTTI) || defined(__cpp_rtti)
#define HOTSWAP_DETAIL_RTTI "rtti on"
#else
#define HOTSWAP_DETAIL_RTTI "rtti off"
#endif

namespace hotswap::detail {

/// What a module must share with the program that loads it (hotswap::abi_description): the compiler and its version,
/// the standard library and its dual-ABI setting, hotswap's version and the digest of its headers (the layouts of what
/// program and module share, and the code that works on them), the pointer size, exceptions and RTTI. (Types cross
/// between them as they are, so any of these changing is a refusal.)
inline constexpr std::string_view abi_description =
    HOTSWAP_DETAIL_COMPILER "; " HOTSWAP_DETAIL_STDLIB HOTSWAP_DETAIL_DEBUG_CONTAINERS
                            "; hotswap " HOTSWAP_VERSION_STRING " headers " HOTSWAP_DETAIL_HEADERS_DIGEST
                            "; " HOTSWAP_DETAIL_STRING(__SIZEOF_POINTER__) "-byte pointers; " HOTSWAP_DETAIL_EXCEPTIONS
                                                                           "; " HOTSWAP_DETAIL_RTTI;
inline constexpr std::uint64_t abi_fingerprint = fnv1a(abi_description);

}  // namespace hotswap::detail
// ---- hotswap/detail/abi/module_descriptor.hpp ----
// What the program finds through a module's one exported symbol, once the module's note has passed
// its checks; and how the module attaches to the program (its static initializers run then).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

// ---- hotswap/detail/abi/implementation_table.hpp ----
// The boundary between the runtime and an implementation: plain data and plain function
// pointers, no exceptions across it, so that a table can come from a shared library built later.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// ---- hotswap/detail/abi/envelope.hpp ----
// One message as it travels between servers, program and modules alike: a kind, a reply slot and
// the message, in place or boxed.

#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>


namespace hotswap::detail {

/// One message as it travels: what it is (an index in the server's interface, or a control
/// request), a pointer for the reply or the control request, and the message itself: in place
/// when it is small and trivially copyable, else a pointer to it on the heap.
struct alignas(32) envelope {
  std::uint32_t ready;  // in a mailbox slot: set (atomically) once the rest is written
  std::uint32_t kind;
  void* reply;
  alignas(8) unsigned char payload[16];
};

template <class T>
inline constexpr bool stored_in_place = std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(envelope::payload) &&
                                        alignof(T) <= 8;

/// Puts `message` into an envelope's payload.
template <class T>
void pack(envelope& into, T&& message) {
  using M = std::remove_cvref_t<T>;
  if constexpr (stored_in_place<M>) {
    ::new (static_cast<void*>(into.payload)) M(std::forward<T>(message));
  } else {
    M* boxed = new M(std::forward<T>(message));
    std::memcpy(into.payload, &boxed, sizeof boxed);
  }
}

/// The message in an envelope.
template <class T>
T& unpack(envelope& from) {
  if constexpr (stored_in_place<T>) {
    return *std::launder(reinterpret_cast<T*>(from.payload));
  } else {
    T* boxed;
    std::memcpy(&boxed, from.payload, sizeof boxed);
    return *boxed;
  }
}

/// Ends the message's life (once handled, or dropped undelivered).
template <class T>
void discard(envelope& from) noexcept {
  if constexpr (stored_in_place<T>)
    unpack<T>(from).~T();
  else
    delete &unpack<T>(from);
}

/// A boxed message that says how to free it: what a message of a later interface version than
/// the first travels in, so that a server downgraded below it (whose code cannot name its type)
/// can free it. `pin` keeps the sender's code (its image) loaded while the box lives.
struct message_box {
  void (*free)(message_box* box) noexcept;
  std::shared_ptr<const void> pin;
};
template <class M>
struct message_box_of : message_box {
  template <class T>
  explicit message_box_of(T&& message)
      : message_box{[](message_box* box) noexcept { delete static_cast<message_box_of*>(box); }, pin_this_image()},
        value(std::forward<T>(message)) {}
  M value;
};

// -- the kind word, and messages of later interface versions --

/// A message's kind word (envelope::kind): its slot in the interface, the interface vsn the
/// type the sender packed dates from (its slot's `since`, detail/servers/interface_versions.hpp;
/// the runtime's own messages, down, exit and responses, say 0: the receiver's current type), and
/// whether it travels in a message_box (below).
inline constexpr std::uint32_t slot_bits = 0xffff;
inline constexpr std::uint32_t vsn_shift = 16;
inline constexpr std::uint32_t boxed_bit = 1u << 31;
constexpr std::uint32_t slot_of(std::uint32_t kind) noexcept {
  return kind & slot_bits;
}
constexpr std::uint32_t sent_vsn_of(std::uint32_t kind) noexcept {
  return (kind & ~boxed_bit) >> vsn_shift;
}

/// Whether a message of a slot dating from interface vsn `since` travels in a message_box that
/// says how to free it (below): one dating from a later version than the first, not in place.
/// A server downgraded below it cannot name its type.
template <class M>
constexpr bool self_disposing(std::uint32_t since) noexcept {
  return since > 1 && !stored_in_place<M>;
}

/// Frees a message box by its own code (the sender's image), the hold on that code let go after,
/// here.
inline void free_box(message_box* box) noexcept {
  const std::shared_ptr<const void> keep = box->pin;
  box->free(box);
}

/// Packs `message` as kind word `kind` says (in a message_box, or as pack does).
template <class M, class T>
void pack_sent(envelope& into, std::uint32_t kind, T&& message) {
  if (!stored_in_place<M> && (kind & boxed_bit)) {
    message_box* box = new message_box_of<M>(std::forward<T>(message));
    std::memcpy(into.payload, &box, sizeof box);
  } else {
    pack(into, std::forward<T>(message));
  }
}
template <class M>
M& unpack_sent(envelope& from) {
  if (!stored_in_place<M> && (from.kind & boxed_bit)) {
    message_box* box;
    std::memcpy(&box, from.payload, sizeof box);
    return static_cast<message_box_of<M>*>(box)->value;
  }
  return unpack<M>(from);
}
template <class M>
void discard_sent(envelope& from, std::uint32_t kind) noexcept {
  if (!stored_in_place<M> && (kind & boxed_bit)) {
    message_box* box;
    std::memcpy(&box, from.payload, sizeof box);
    delete static_cast<message_box_of<M>*>(box);
  } else {
    discard<M>(from);
  }
}

/// Frees a message a server's code cannot name (sent as of a later interface version): a box
/// says how; a message in place is trivially destructible.
inline void discard_unknown(envelope& from) noexcept {
  if (!(from.kind & boxed_bit)) return;
  message_box* box;
  std::memcpy(&box, from.payload, sizeof box);
  free_box(box);
}

}  // namespace hotswap::detail

namespace hotswap::detail {

/// A value passed to code_change, type-erased and tagged with its type's fingerprint.
struct extra_ref {
  const void* value = nullptr;
  std::uint64_t fingerprint = 0;
  std::string_view type;
};

/// What a table function reports instead of throwing.
struct outcome {
  bool failed = false;
  std::string what;
  std::string thrown = {};  ///< the type of what a handler threw, as the compiler spells it (its crash report's)
};
/// A handler: runs the message on the state, consumes the message, sends the reply (calls).
using handler_fn = void (*)(void* state, envelope& message, outcome& result) noexcept;
using discard_fn = void (*)(envelope& message) noexcept;

/// An implementation of an interface, as the runtime sees it (hotswap::implementation_table).
/// Generated by hotswap::table_of; a module's comes from its library.
struct implementation_table {
  std::uint64_t interface_fingerprint;
  std::string_view interface_name;
  std::string_view name;  ///< the implementation type, as the compiler spells it
  int vsn;
  std::uint64_t state_fingerprint;
  std::string_view state_type;
  std::uint32_t message_count;
  std::uint32_t down_index;    ///< the index of hotswap::down among its messages (message_count: not one)
  std::uint32_t exit_index;    ///< and of hotswap::exit_signal
  const handler_fn* handlers;  ///< by message index in the interface
  const discard_fn* discards;  ///< by message index: drops a message undelivered
  const std::string_view* message_names;
  /// Its interface's vsn, the fingerprints of every version up to it (the first first), and the
  /// vsn each slot's kind dates from: a message sent as of a later vsn is not one it can take.
  std::uint32_t interface_vsn;
  const std::uint64_t* interface_lineage;
  const std::uint32_t* slot_since;
  std::uint64_t init_argument_fingerprint;  ///< 0 when init takes no argument
  std::string_view init_argument_type;
  bool state_is_plain_data;  ///< holds nothing that points into the code (see detail::plain_data)
  /// Makes the initial state from init's argument (null when init takes none).
  void* (*init)(const void* argument, outcome& result) noexcept;
  void (*terminate)(void* state, const exit_reason& reason) noexcept;
  void (*destroy)(void* state) noexcept;
  /// Makes this implementation's state from another's (leaving that one intact), or returns
  /// `old_state` itself when it is already of this implementation's state type.
  void* (*code_change)(void* old_state, std::uint64_t old_fingerprint, int old_vsn, const extra_ref& extra,
                       outcome& result) noexcept;
  /// Makes the state an older vsn held (listed in state_history, of fingerprint `fingerprint`)
  /// from this implementation's, leaving it intact, by the generated migration: how a release
  /// goes down, the newer code making the older state as Erlang's code_change({down, Vsn}) does.
  /// Returns `state` itself when it is of that type already; null when it cannot (a vsn it does
  /// not list, a migration not generated: then the older table's own code_change may know), or
  /// when the migration threw (`result` says what).
  void* (*down)(void* state, int vsn, std::uint64_t fingerprint, outcome& result) noexcept;
  /// The bytes the state holds, estimated by a walk of its fields (detail/schemas/state_size.hpp).
  std::size_t (*state_bytes)(const void* state) noexcept;
  /// Prints the state as Elixir's inspect does into `out` (at most `size` bytes) and returns the
  /// size of all of it; null when the state's schemas did not enable inspect.
  std::size_t (*inspect_state)(const void* state, char* out, std::size_t size) noexcept;
};

/// Whether `table` implements version `vsn` (of fingerprint `fingerprint`) of an interface, or
/// a later version of it.
inline bool implements(const implementation_table& table, std::uint64_t fingerprint, std::uint32_t vsn) noexcept {
  return vsn >= 1 && vsn <= table.interface_vsn && table.interface_lineage[vsn - 1] == fingerprint;
}

/// Whether a server may change from one table to the other: they implement one interface, or
/// one a declared later version of the other's (a handle of the later one is refused after a
/// change to the earlier).
inline bool same_interface_line(const implementation_table& a, const implementation_table& b) noexcept {
  return implements(a, b.interface_fingerprint, b.interface_vsn) ||
         implements(b, a.interface_fingerprint, a.interface_vsn);
}

/// `Counter`, or `Counter version 2` for a later version.
inline std::string describe_interface(const implementation_table& table) {
  return std::string(table.interface_name) +
         (table.interface_vsn > 1 ? " version " + std::to_string(table.interface_vsn) : std::string());
}

}  // namespace hotswap::detail

// Set by the linker around the static initializers hotswap_add_module moved out of .init_array.
extern "C" {
[[gnu::weak, gnu::visibility("hidden")]] extern void (*const __start_hotswap_init_array[])(int, char**, char**);
[[gnu::weak, gnu::visibility("hidden")]] extern void (*const __stop_hotswap_init_array[])(int, char**, char**);
}

namespace hotswap::detail {

struct version_info;  // schemas/version_info.hpp

inline constexpr std::uint64_t descriptor_magic = 0x3276'6d73'7768'746fULL;  // "othwsmv2"

/// A function of the module that a release runs at a named point of its upgrade
/// (HOTSWAP_MODULE_STEP; OTP's {apply, {M, F, A}}): its name, as the note lists it, and its run,
/// which says in `result` what failed (nothing it throws leaves the module).
struct module_step {
  const char* name;
  void (*run)(outcome& result) noexcept;
};

/// What the program finds through the module's one exported symbol, once the note has passed.
struct module_descriptor {
  std::uint64_t magic;
  const char* note;  // the same text as the section
  const implementation_table* table;
  void (*describe_schemas)(std::vector<version_info>& out);
  /// Links the module to the program (its runtime, its registry, the module's own version and
  /// how the program leases it to servers), then runs the module's static initializers (which
  /// hotswap_add_module's link script defers to here); false, with what one of them threw.
  bool (*attach)(const host_link& host, const lease_maker& leases, std::string& failure) noexcept;
  /// The module's steps, `count` of them from the one returned (none: null): the entries each
  /// HOTSWAP_MODULE_STEP puts in its hotswap_steps section, wherever in the module it is.
  const module_step* (*steps)(std::size_t& count) noexcept;
};

template <class Implementation>
bool attach_module(const host_link& host, const lease_maker& leases, std::string& failure) noexcept {
  module_host = host;
  module_leases() = leases;
  try {
    for (auto* run = __start_hotswap_init_array; run != __stop_hotswap_init_array; ++run) (*run)(0, nullptr, environ);
    return true;
  } catch (const std::exception& thrown) {
    failure = thrown.what();
  } catch (...) {
    failure = "an exception not derived from std::exception";
  }
  return false;
}

}  // namespace hotswap::detail

// Set by the linker around the module's hotswap_steps section, if it has one (else null).
extern "C" {
[[gnu::weak, gnu::visibility("hidden")]] extern const hotswap::detail::module_step __start_hotswap_steps[];
[[gnu::weak, gnu::visibility("hidden")]] extern const hotswap::detail::module_step __stop_hotswap_steps[];
}

namespace hotswap::detail {

/// The module's steps (a template, so that it is compiled into the module and finds its own).
template <class Implementation>
const module_step* module_steps(std::size_t& count) noexcept {
  count = static_cast<std::size_t>(__stop_hotswap_steps - __start_hotswap_steps);  // (both null: none)
  return count ? __start_hotswap_steps : nullptr;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/common/std_algorithm.hpp ----
// The algorithms on iterators without the rest of <algorithm> (its ranges versions and
// parallel policies, half of what it costs to include), as std_parts.hpp does for <chrono>.

#include <cstddef>  // defines __GLIBCXX__ when the standard library is libstdc++

#if defined(__GLIBCXX__) && __has_include(<bits/stl_algo.h>)
#include <bits/stl_algo.h>
#else
#include <algorithm>
#endif
// ---- hotswap/detail/common/std_parts.hpp ----
// The parts of <chrono> and <functional> hotswap uses (durations and clocks; std::function)
// without the rest: libstdc++ keeps them in headers of their own, which cost a fraction as much to
// include (<chrono>'s calendar and time zones, <functional>'s searchers and hash maps). Other
// standard libraries get the full headers. (std_memory.hpp and std_algorithm.hpp do the same.)

#include <cstddef>  // defines __GLIBCXX__ when the standard library is libstdc++

#if defined(__GLIBCXX__) && __has_include(<bits/chrono.h>) && __has_include(<bits/std_function.h>)
#include <bits/chrono.h>
#include <bits/std_function.h>
#else
#include <chrono>
#include <functional>
#endif
// ---- hotswap/detail/modules/code_server_access.hpp ----
// The release handler's way into the code server (a module file's note, a load of an older vsn,
// the undoing of a load): declared here, where basic_code_server names it a friend, and defined
// by the releases layer (impl/releases.hpp).

namespace hotswap::detail {

template <class>
struct code_server_access;

}  // namespace hotswap::detail
// ---- hotswap/detail/modules/copy_directory.hpp ----
// The private copies of modules: the directory that holds them (made, checked and opened once;
// every copy made and opened relative to it), writing a copy, and closing libraries once their
// last user has gone. Templates only so that a program that loads no module does not compile them.

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// ---- hotswap/detail/modules/module_file.hpp ----
// Reading a module's file before any of its code runs: the path (nobody else could have written
// it), the bytes, the ELF headers (nothing the loader maps lies past the end: a truncated library
// would crash the program when first touched), and the note HOTSWAP_MODULE stamps into it.
// Functions are templates only so that a program that loads no module does not compile them.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

// ---- hotswap/detail/modules/module_name.hpp ----
// The rules for a module's name and its steps' names, which both the note's writer (at compile time) and its reader
// check.

#include <cstddef>
#include <string_view>

namespace hotswap::detail {

/// A module's name: letters, digits, '.', '_', '-' (it names files).
constexpr bool valid_module_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

/// A step's name (HOTSWAP_MODULE_STEP; a manifest's "apply" names it): letters, digits, '.', '_',
/// '-', not first '.', '_' or '-', at most 64.
constexpr bool valid_step_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '_' || name[0] == '-') return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}
/// The most steps a module exports (its note is read before any of its code runs: bounded).
inline constexpr std::size_t most_module_steps = 64;

}  // namespace hotswap::detail

namespace hotswap::detail {

/// The ELF64 records read here (the System V ABI's layout), so that <elf.h>'s thousands of
/// macros stay out of every file that includes hotswap.
namespace elf {
struct header {
  unsigned char ident[16];
  std::uint16_t type, machine;
  std::uint32_t version;
  std::uint64_t entry, phoff, shoff;
  std::uint32_t flags;
  std::uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct segment {
  std::uint32_t type, flags;
  std::uint64_t offset, vaddr, paddr, filesz, memsz, align;
};
struct section {
  std::uint32_t name, type;
  std::uint64_t flags, addr, offset, size;
  std::uint32_t link, info;
  std::uint64_t addralign, entsize;
};
static_assert(sizeof(header) == 64 && sizeof(segment) == 56 && sizeof(section) == 64);
inline constexpr unsigned char class_64 = 2, little_endian = 1, big_endian = 2;
inline constexpr std::uint16_t relocatable = 1, shared_object = 3;
inline constexpr std::uint32_t loadable = 1, progbits = 1, nobits = 8;
#if defined(__x86_64__)
inline constexpr std::uint16_t this_machine = 62;
#elif defined(__aarch64__)
inline constexpr std::uint16_t this_machine = 183;
#else
inline constexpr std::uint16_t this_machine = 0;  // none: modules are refused
#endif
}  // namespace elf

/// What a module's note says.
/// The most slots (and versions) an interface has: what a message's kind word holds.
inline constexpr std::size_t largest_slot = 0xffff;
/// The longest schema description a note's is taken with (longer: the message says less).
inline constexpr std::size_t largest_description = 4096;

struct module_note_fields {
  std::uint64_t abi = 0;
  std::string abi_text, name, implementation, interface_name;
  int vsn = 0;
  std::uint64_t interface = 0;
  std::vector<std::uint64_t> interface_lineage;  // the fingerprints of its interface's versions, up to its own
  struct message_slot {                          // a message its interface takes (or took: removed)
    std::uint32_t slot, since;
    std::uint64_t fingerprint;  // of its kind, message and reply
    std::string name;
  };
  std::vector<message_slot> messages;
  std::uint64_t state = 0;    // its state type's fingerprint
  std::string init_argument;  // the type its init takes, as the compiler spells it (empty: none)
  struct earlier_state {      // a vsn its code_change starts from, and the state that vsn held
    int vsn;
    std::uint64_t state;
    bool down = false;     // its code makes that state from its own (a release going down),
    std::string not_down;  // or why not
  };
  std::vector<earlier_state> history;
  struct schema_version {
    std::string schema;
    int vsn;
    std::uint64_t fingerprint;
    std::string description;  // Account@2{owner:string,balance:money}
  };
  std::vector<schema_version> schemas;
  std::vector<std::string> steps;  // the steps it exports (HOTSWAP_MODULE_STEP), by name
  std::string build;               // not in the note: its seal's (check_seal), which covers the note and the code
};

template <class = void>
error file_error(errc code, const std::string& path, const std::string& why) {
  return error{code, path + ": " + why};
}

/// Why `info` makes its file or directory unsafe (empty: it is safe): writable by group or
/// others (a sticky directory such as /tmp excepted: nobody can replace what is in it but its
/// owner), or owned by a user other than root or this one.
template <class = void>
std::string unsafe_because(const struct stat& info, const std::string& what) {
  if (info.st_uid != 0 && info.st_uid != ::geteuid())
    return what + " belongs to another user (uid " + std::to_string(info.st_uid) + ")";
  const bool sticky = S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX);
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) && !sticky)
    return what + " is writable by " + ((info.st_mode & S_IWOTH) ? "every user" : "its group") +
           ": loading it would run code others could have written";
  return {};
}

/// Why a directory from `dir` (absolute) up to / is unsafe, as it is now (no reason: all are safe).
template <class = void>
error unsafe_directory_on(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  for (;; dir.erase(dir.rfind('/'))) {
    const std::string shown = dir.empty() ? "/" : dir;
    struct stat info {};
    if (::stat(shown.c_str(), &info) != 0) return {errc::no_file, shown + ": " + std::strerror(errno)};
    if (std::string why = unsafe_because(info, "the directory " + shown); !why.empty())
      return {errc::unsafe_path, std::move(why)};
    if (dir.empty()) return {errc::unsafe_path, {}};
  }
}

/// The same for the directory of `file` (absolute).
template <class = void>
error unsafe_directory_of(const std::string& file) {
  return unsafe_directory_on(file.substr(0, file.rfind('/')));
}

/// `path` made absolute (from the working directory), not resolved.
template <class = void>
std::string absolute(const std::string& path) {
  if (path.starts_with('/')) return path;
  std::string here(4096, '\0');
  if (!::getcwd(here.data(), here.size())) return path;
  return here.c_str() + std::string("/") + path;
}

/// Why a symbolic link on `path` (absolute), or on what its links point to, would not be followed
/// by a kernel with protected_symlinks (no reason: none): a link in a sticky directory others can
/// write (/tmp) is followed only if it is this user's or the directory owner's; another user
/// could have planted it there.
template <class = void>
std::string planted_link_on(const std::string& path, int depth = 0) {
  if (depth > 40) return "too many symbolic links on the way";
  for (std::size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    struct stat link {
    }, directory{};
    if (::lstat(prefix.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      const std::string parent = prefix.rfind('/') == 0 ? "/" : prefix.substr(0, prefix.rfind('/'));
      if (::stat(parent.c_str(), &directory) == 0 && (directory.st_mode & S_ISVTX) && (directory.st_mode & S_IWOTH) &&
          link.st_uid != ::geteuid() && link.st_uid != directory.st_uid)
        return "the symbolic link " + prefix + " belongs to uid " + std::to_string(link.st_uid) +
               ", in the sticky directory " + parent +
               " others can write: another user could have planted it (protected_symlinks refuses it too)";
      std::string target(4096, '\0');
      const ssize_t size = ::readlink(prefix.c_str(), target.data(), target.size());
      if (size > 0) {
        target.resize(static_cast<std::size_t>(size));
        if (!target.starts_with('/')) target = parent + "/" + target;
        if (std::string why = planted_link_on(target + path.substr(prefix.size()), depth + 1); !why.empty()) return why;
        return {};  // the rest of the path was checked through the link
      }
    }
    if (end == std::string::npos) return {};
  }
}

/// The path with every symbolic link resolved, once every directory on it is safe, and every
/// directory of the path as given too (a symbolic link in a directory others can write could be
/// pointed elsewhere before the next load), and no link on it planted by another user.
template <class = void>
result<std::string> resolve_safe_path(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (!resolved) return file_error(errc::no_file, path, std::strerror(errno));
  const std::string file(resolved);
  std::free(resolved);
  for (const std::string& way : {file, absolute(path)})
    if (error unsafe = unsafe_directory_of(way); !unsafe.what.empty())
      return file_error(unsafe.code, path, unsafe.what);
  if (std::string why = planted_link_on(absolute(path)); !why.empty()) return file_error(errc::unsafe_path, path, why);
  return file;
}

/// The bytes of the file at `resolved` (a safe path), checked on the open file itself: a regular
/// file, safe, at most `largest` bytes (a larger one is refused before a byte is read). Never
/// blocks (a FIFO is refused, not waited on).
template <class = void>
result<std::string> read_module_file(const std::string& resolved, const std::string& path, std::size_t largest) {
  const int fd = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return file_error(errc::no_file, path, std::strerror(errno));
  struct stat info {};
  std::string bytes, why;
  errc code = errc::not_a_library;
  if (::fstat(fd, &info) != 0) {
    code = errc::no_file;
    why = std::strerror(errno);
  } else if (!S_ISREG(info.st_mode)) {
    why = "not a regular file";
  } else if (static_cast<std::uint64_t>(info.st_size) > largest) {
    code = errc::too_large;
    why = std::to_string(info.st_size) + " bytes, more than this code server takes (" + std::to_string(largest) +
          "; code_server_options::largest_module)";
  } else if (why = unsafe_because(info, "the file"); !why.empty()) {
    code = errc::unsafe_path;
  } else {
    bytes.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<std::size_t>(got);
    }
    bytes.resize(done);  // shorter if it shrank while read: the checks below see what was read
  }
  ::close(fd);
  if (!why.empty()) return file_error(code, path, why);
  return bytes;
}

/// What HOTSWAP_MODULE puts in a module's file: its note (text), and its seal (no data: none);
/// and the lines of its steps (HOTSWAP_MODULE_STEP), each a piece of the note's section of its
/// own, NUL-ended as the note is, in the order the linker put them.
struct module_sections {
  std::string_view note, seal;
  std::vector<std::string_view> steps;
};

/// The sections of an ELF shared library for this machine that HOTSWAP_MODULE makes, after
/// checking that every header, loaded segment and section lies inside the file.
template <class = void>
result<module_sections> find_module_sections(std::string_view file, const std::string& path) {
  auto fits = [&](std::uint64_t offset, std::uint64_t size) {
    return offset <= file.size() && size <= file.size() - offset;
  };
  auto read = [&](std::uint64_t offset, auto& out) { std::memcpy(&out, file.data() + offset, sizeof out); };
  if (file.size() < 4 || file.substr(0, 4) !=
                             "\x7f"
                             "ELF")
    return file_error(errc::not_a_library, path, "not a shared library (not an ELF file)");
  if (!fits(0, sizeof(elf::header))) return file_error(errc::truncated, path, "truncated: its ELF header is cut short");
  elf::header header;
  read(0, header);
  const unsigned char byte_order = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? elf::little_endian : elf::big_endian;
  if (header.ident[4] != elf::class_64 || header.ident[5] != byte_order || header.machine != elf::this_machine ||
      sizeof(void*) != 8)
    return file_error(errc::not_a_library, path, "not a shared library for this machine");
  if (header.type != elf::shared_object)
    return file_error(errc::not_a_library, path,
                      header.type == elf::relocatable ? "not a shared library (an object file: link it)"
                                                      : "not a shared library (an executable)");
  if ((header.phnum && header.phentsize != sizeof(elf::segment)) ||
      (header.shnum && header.shentsize != sizeof(elf::section)))
    return file_error(errc::not_a_library, path, "not a shared library (malformed ELF headers)");
  if (!fits(header.phoff, std::uint64_t{header.phnum} * sizeof(elf::segment)))
    return file_error(errc::truncated, path, "truncated: its program headers are cut short");
  for (std::uint64_t i = 0; i < header.phnum; ++i) {
    elf::segment segment;
    read(header.phoff + i * sizeof(elf::segment), segment);
    if (segment.type == elf::loadable && !fits(segment.offset, segment.filesz))
      return file_error(errc::truncated, path, "truncated: a segment ends past the end of the file");
  }
  if (header.shoff == 0 || header.shnum == 0)
    return file_error(errc::no_descriptor, path, "no section headers, so no hotswap module note");
  if (!fits(header.shoff, std::uint64_t{header.shnum} * sizeof(elf::section)) || header.shstrndx >= header.shnum)
    return file_error(errc::truncated, path, "truncated: its section headers are cut short");
  elf::section names;
  read(header.shoff + header.shstrndx * sizeof(elf::section), names);
  if (!fits(names.offset, names.size))
    return file_error(errc::truncated, path, "truncated: its section names are cut short");
  module_sections found_sections;
  bool found = false;
  std::uint64_t initializers = 0;  // bytes of .init_array: what the dynamic loader would run
  for (std::uint64_t i = 0; i < header.shnum; ++i) {
    elf::section section;
    read(header.shoff + i * sizeof(elf::section), section);
    const bool in_file = section.type != elf::nobits;
    if (in_file && !fits(section.offset, section.size))
      return file_error(errc::truncated, path, "truncated: a section ends past the end of the file");
    if (section.name >= names.size) continue;
    const char* name_at = file.data() + names.offset + section.name;
    const std::string_view name(name_at, ::strnlen(name_at, names.size - section.name));
    if (name == ".init_array") initializers += section.size;
    if (name == "hotswap_seal" && in_file) found_sections.seal = file.substr(section.offset, section.size);
    if (name != "hotswap_module") continue;
    if (section.type != elf::progbits)
      return file_error(errc::no_descriptor, path, "its hotswap_module section holds no note");
    // Its pieces, each NUL-ended (zeros between them are the linker's padding): the note, which
    // starts with its header, and the steps' lines.
    std::string_view pieces = file.substr(section.offset, section.size);
    found_sections.note = {};
    found_sections.steps.clear();
    while (!pieces.empty()) {
      const std::string_view piece = pieces.substr(0, pieces.find('\0'));
      pieces.remove_prefix(std::min(pieces.size(), piece.size() + 1));
      if (piece.empty()) continue;
      if (found_sections.note.empty() && (piece.starts_with("hotswap module") || !piece.starts_with("step ")))
        found_sections.note = piece;
      else if (found_sections.steps.size() < most_module_steps + 1)  // one more: refused, not read on
        found_sections.steps.push_back(piece);
      else
        break;
    }
    found = true;
  }
  if (!found)
    return file_error(errc::no_descriptor, path,
                      "a shared library without a hotswap module descriptor (HOTSWAP_MODULE in one of its sources)");
  // One entry is the C runtime's own; more are the module's static initializers, which the
  // loader would run before the code server could catch what they throw.
  if (initializers > sizeof(void*))
    return file_error(errc::load_failed, path,
                      "its static initializers would run as it is opened: link it with hotswap_module.ld "
                      "(hotswap_add_module does)");
  return found_sections;
}

template <class = void>
result<module_note_fields> parse_module_note(std::string_view text, const std::string& path,
                                             const std::vector<std::string_view>& steps = {}) {
  module_note_fields note;
  auto bad = [&](std::string_view line) {
    return file_error(errc::no_descriptor, path, "an unreadable hotswap module note at \"" + std::string(line) + "\"");
  };
  auto number = [](std::string_view word, int base, auto& out) {
    const std::string copy(word);
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(copy.c_str(), &end, base);
    out = static_cast<std::remove_reference_t<decltype(out)>>(value);
    return !copy.empty() && *end == '\0' && errno == 0 &&
           value <= static_cast<unsigned long long>(std::numeric_limits<std::remove_reference_t<decltype(out)>>::max());
  };
  bool header = false;
  while (!text.empty()) {
    const std::string_view line = text.substr(0, text.find('\n'));
    text.remove_prefix(std::min(text.size(), line.size() + 1));
    const auto space = line.find(' ');
    const std::string_view key = line.substr(0, space);
    const std::string_view rest = space == line.npos ? std::string_view{} : line.substr(space + 1);
    const std::string_view first = rest.substr(0, rest.find(' '));
    const std::string_view after_first =
        first.size() < rest.size() ? rest.substr(first.size() + 1) : std::string_view{};
    if (key == "hotswap") {
      if (rest != "module 1")
        return file_error(errc::abi_mismatch, path, "a module note of another format: " + std::string(line));
      header = true;
    } else if (key == "abi") {
      if (!number(first, 16, note.abi)) return bad(line);
      note.abi_text = after_first;
    } else if (key == "name") {
      note.name = rest;
    } else if (key == "vsn") {
      if (!number(rest, 10, note.vsn)) return bad(line);
    } else if (key == "implementation") {
      note.implementation = rest;
    } else if (key == "interface") {
      if (!number(first, 16, note.interface)) return bad(line);
      note.interface_name = after_first;
    } else if (key == "interface-version") {  // in order, from 1
      std::size_t vsn = 0;
      std::uint64_t fingerprint = 0;
      if (!number(first, 10, vsn) || vsn != note.interface_lineage.size() + 1 || vsn > largest_slot ||
          !number(after_first, 16, fingerprint))
        return bad(line);
      note.interface_lineage.push_back(fingerprint);
    } else if (key == "message") {  // in order, from 0
      const std::string_view since = after_first.substr(0, after_first.find(' '));
      const std::string_view tail = since.size() < after_first.size() ? after_first.substr(since.size() + 1) : "";
      const std::string_view fingerprint = tail.substr(0, tail.find(' '));
      module_note_fields::message_slot message{0, 0, 0, {}};
      if (!number(first, 10, message.slot) || message.slot != note.messages.size() || message.slot > largest_slot ||
          !number(since, 10, message.since) || !number(fingerprint, 16, message.fingerprint) ||
          fingerprint.size() >= tail.size())
        return bad(line);
      message.name = tail.substr(fingerprint.size() + 1);
      note.messages.push_back(std::move(message));
    } else if (key == "state") {
      if (!number(rest, 16, note.state)) return bad(line);
    } else if (key == "init") {
      note.init_argument = rest;
    } else if (key == "from") {
      module_note_fields::earlier_state earlier{0, 0, false, {}};
      if (!number(first, 10, earlier.vsn) || !number(after_first, 16, earlier.state)) return bad(line);
      note.history.push_back(std::move(earlier));
    } else if (key == "down" || key == "no-down") {  // of the "from" line before it
      int vsn = 0;
      if (note.history.empty() || !number(first, 10, vsn) || vsn != note.history.back().vsn) return bad(line);
      note.history.back().down = key == "down";
      note.history.back().not_down = after_first;
    } else if (key == "schema") {
      const std::string_view vsn = after_first.substr(0, after_first.find(' '));
      module_note_fields::schema_version version{std::string(first), 0, 0, {}};
      if (vsn.size() >= after_first.size()) return bad(line);
      std::string_view fingerprint = after_first.substr(vsn.size() + 1);
      const std::size_t space = fingerprint.find(' ');
      std::string_view description;
      if (space != std::string_view::npos) {
        description = fingerprint.substr(space + 1);
        fingerprint = fingerprint.substr(0, space);
      }
      if (!number(vsn, 10, version.vsn) || !number(fingerprint, 16, version.fingerprint)) return bad(line);
      // Only what the fingerprint vouches for, and not more than an error message can show.
      if (description.size() <= largest_description && fnv1a(description) == version.fingerprint)
        version.description = description;
      note.schemas.push_back(std::move(version));
    }
  }
  if (!header) return bad("hotswap module 1");
  if (note.interface_lineage.empty() || note.interface_lineage.back() != note.interface)
    return bad("interface-version " + std::to_string(note.interface_lineage.size()));
  if (!valid_module_name(note.name)) return bad("name " + note.name);
  // Each step a line of its own piece: `step warm_cache`, once.
  if (steps.size() > most_module_steps)
    return file_error(errc::no_descriptor, path,
                      "a hotswap module note naming more than " + std::to_string(most_module_steps) + " steps");
  for (const std::string_view piece : steps) {
    const std::string_view line = piece.substr(0, piece.find('\n'));
    const std::string_view name = line.starts_with("step ") ? line.substr(5) : std::string_view{};
    if (line.size() + 1 != piece.size() || !valid_step_name(name) ||
        std::find(note.steps.begin(), note.steps.end(), name) != note.steps.end())
      return bad(line.substr(0, std::min<std::size_t>(line.size(), 80)));
    note.steps.emplace_back(name);
  }
  return note;
}

}  // namespace hotswap::detail

namespace hotswap::detail {

/// The directory of a code server's private copies, held open from its first use: copies are
/// made and opened relative to it, so that nothing can redirect them once it was checked (not a
/// rename of it, not a symbolic link put in its place). Shared with the closer of the libraries,
/// which may outlive the code server.
struct copy_directory {
  int fd = -1;
  copy_directory() = default;
  copy_directory(const copy_directory&) = delete;
  copy_directory& operator=(const copy_directory&) = delete;
  ~copy_directory() {
    if (fd >= 0) ::close(fd);
  }
  /// What the dynamic loader opens for the copy `name`: a path through the open directory (no
  /// path of the file system is resolved again), never the same for two copies of the process
  /// (glibc takes a library already loaded under the same name for the one asked for).
  std::string path_of(const std::string& name) const { return "/proc/self/fd/" + std::to_string(fd) + "/" + name; }
};

/// Shared libraries whose last user has gone, closed by the code server (in the program's code:
/// the last user may have been the module's own code, which cannot unmap itself).
template <class = void>
class library_closer {
 public:
  struct closed {
    std::string name;  // of the copy
    bool unmapped;
  };
  explicit library_closer(std::shared_ptr<const copy_directory> directory) : directory_(std::move(directory)) {}
  /// The copy `name` was opened: it is removed when its library is closed, or by unlink_all.
  void opened(const std::string& copy) {
    const spin_guard hold(lock_);
    open_.push_back(copy);
  }
  void add(void* handle, std::string copy) {
    const spin_guard hold(lock_);
    pending_.push_back({handle, std::move(copy)});
  }
  std::vector<closed> close_pending() {
    std::vector<std::pair<void*, std::string>> closing;
    {
      const spin_guard hold(lock_);
      closing.swap(pending_);
    }
    std::vector<closed> done;
    for (auto& [handle, copy] : closing) {
      ::dlclose(handle);
      // glibc keeps a library mapped that registered thread-local destructors or has unique symbols.
      void* still = ::dlopen(directory_->path_of(copy).c_str(), RTLD_LAZY | RTLD_NOLOAD);
      if (still) ::dlclose(still);
      ::unlinkat(directory_->fd, copy.c_str(), 0);
      {
        const spin_guard hold(lock_);
        if (const auto at = std::find(open_.begin(), open_.end(), copy); at != open_.end()) open_.erase(at);
      }
      done.push_back({std::move(copy), still == nullptr});
    }
    return done;
  }
  /// Removes the copies of the libraries still open (the code server is going): their mappings
  /// outlive their files, and no copy is left on disk.
  void unlink_all() {
    std::vector<std::string> open;
    {
      const spin_guard hold(lock_);
      open.swap(open_);
    }
    for (const auto& copy : open) ::unlinkat(directory_->fd, copy.c_str(), 0);
  }

 private:
  std::shared_ptr<const copy_directory> directory_;
  spin_lock lock_;
  std::vector<std::pair<void*, std::string>> pending_;
  std::vector<std::string> open_;  // the copies of libraries open
};

/// Numbers the private copies of the process's code servers.
inline std::uint64_t next_copy_number() noexcept {
  static std::atomic<std::uint64_t> copies{0};
  return copies.fetch_add(1, std::memory_order_relaxed);
}

// -- the directories made under $TMPDIR, and those that dead processes left --

/// Where a code server given no directory makes one: $TMPDIR, else /tmp.
inline std::string temporary_base() {
  const char* base = std::getenv("TMPDIR");
  return base && *base ? base : "/tmp";
}

/// This process's pid namespace (the inode of /proc/self/ns/pid), which a copy directory's name
/// records beside the pid: a pid names a process only in its namespace (a container sharing
/// /tmp has its own).
inline std::uint64_t pid_namespace() noexcept {
  struct stat info {};
  return ::stat("/proc/self/ns/pid", &info) == 0 ? static_cast<std::uint64_t>(info.st_ino) : 0;
}

inline constexpr std::string_view copy_directory_prefix = "hotswap-modules-";

/// `<pid>-<namespace>-XXXXXX` (what mkdtemp fills in), after the prefix: the pid, if `rest` is
/// that and the namespace is this process's; else 0.
inline pid_t copy_directory_pid(std::string_view rest, std::uint64_t namespace_here) noexcept {
  auto number = [&](std::uint64_t& value) {
    std::size_t digits = 0;
    value = 0;
    while (digits < rest.size() && digits < 19 && rest[digits] >= '0' && rest[digits] <= '9')
      value = value * 10 + static_cast<std::uint64_t>(rest[digits++] - '0');
    if (digits == 0 || digits == rest.size() || rest[digits] != '-') return false;
    rest.remove_prefix(digits + 1);
    return true;
  };
  std::uint64_t pid = 0, space = 0;
  if (!number(pid) || !number(space) || space != namespace_here || rest.size() != 6 || pid == 0 ||
      pid > 0x3fffffff)  // the kernel's largest pid
    return 0;
  for (const char c : rest)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return 0;
  return static_cast<pid_t>(pid);
}

/// Whether `name` is what write_copy names a copy: `<module>-v<vsn>-<n>.so`.
inline bool looks_like_copy(std::string_view name) noexcept {
  auto digits_after = [&](std::string_view marker) {
    const auto at = name.rfind(marker);
    if (at == std::string_view::npos || at + marker.size() == name.size()) return false;
    for (const char c : name.substr(at + marker.size()))
      if (c < '0' || c > '9') return false;
    name = name.substr(0, at);
    return true;
  };
  if (!name.ends_with(".so")) return false;
  name.remove_suffix(3);
  return digits_after("-") && digits_after("-v") && !name.empty();
}

/// Removes the copy directory `name` in `parent` if it is provably one a code server of this
/// user made and no process uses: a directory (not a link to one), this user's, mode 0700, whose
/// lock nobody holds (a code server holds it while its directory is open, and so do the children
/// it forked: a pid alone proves nothing across hosts sharing the directory, or after a fork),
/// holding nothing but this user's regular files named as copies. Anything else, and it stays
/// whole.
template <class = void>
bool remove_copy_directory(int parent, const std::string& name) {
  struct stat seen {};
  if (::fstatat(parent, name.c_str(), &seen, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(seen.st_mode) ||
      seen.st_uid != ::geteuid() || (seen.st_mode & 07777) != 0700)
    return false;
  const int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat opened {};
  if (::fstat(fd, &opened) != 0 || opened.st_dev != seen.st_dev || opened.st_ino != seen.st_ino ||
      ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  const std::unique_ptr<DIR, int (*)(DIR*)> listing(::fdopendir(fd), ::closedir);
  if (!listing) {
    ::close(fd);
    return false;
  }
  std::vector<std::string> copies;
  bool ours = true;
  while (const dirent* one = ::readdir(listing.get())) {
    const std::string_view file = one->d_name;
    if (file == "." || file == "..") continue;
    struct stat info {};
    if (copies.size() >= 4096 || !looks_like_copy(file) ||
        ::fstatat(fd, one->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(info.st_mode) ||
        info.st_uid != ::geteuid()) {
      ours = false;
      break;
    }
    copies.emplace_back(file);
  }
  if (ours)
    for (const auto& copy : copies) ::unlinkat(fd, copy.c_str(), 0);
  return ours && ::unlinkat(parent, name.c_str(), AT_REMOVEDIR) == 0;
}

/// Removes, under `base`, the copy directories of this user's processes that died without
/// removing them (killed by a signal: no destructor ran): those named for a pid of this pid
/// namespace that no process has (kill(pid, 0) fails with ESRCH). A pid in use, by whatever
/// process, keeps its directory. How many were removed.
template <class = void>
std::size_t sweep_dead_copy_directories(const std::string& base) noexcept {
  try {
    const std::uint64_t namespace_here = pid_namespace();
    if (namespace_here == 0) return 0;  // no /proc: no namespace to tell pids apart by
    const int fd = ::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    const std::unique_ptr<DIR, int (*)(DIR*)> listing(::fdopendir(fd), ::closedir);
    if (!listing) {
      ::close(fd);
      return 0;
    }
    std::vector<std::string> dead;
    while (const dirent* one = ::readdir(listing.get())) {
      const std::string_view name = one->d_name;
      if (!name.starts_with(copy_directory_prefix)) continue;
      const pid_t pid = copy_directory_pid(name.substr(copy_directory_prefix.size()), namespace_here);
      if (pid != 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) dead.emplace_back(name);
    }
    std::size_t removed = 0;
    for (const auto& name : dead) removed += remove_copy_directory(fd, name) ? 1 : 0;
    return removed;
  } catch (...) {  // out of memory: they stay, as they would have
    return 0;
  }
}

/// A directory for copies, made if need be and opened, and whether it was made here.
struct opened_directory {
  std::string name;
  bool made;
  int fd;
};

/// Makes (`directory` empty: a new one under $TMPDIR or /tmp) and opens the directory for the
/// copies of the module in `path`. It, and every directory above it, must be safe (others could
/// otherwise swap it for their own between two loads).
template <class = void>
result<opened_directory> open_copy_directory(std::string directory, const std::string& path) {
  bool made = false;
  if (directory.empty()) {
    // Named for this process, so that a code server of a later one can remove it if this one is
    // killed (sweep_dead_copy_directories).
    std::string pattern = temporary_base() + "/" + std::string(copy_directory_prefix) + std::to_string(::getpid()) +
                          "-" + std::to_string(pid_namespace()) + "-XXXXXX";
    if (!::mkdtemp(pattern.data()))
      return file_error(errc::load_failed, path,
                        "cannot make a directory for its copy: " + std::string(std::strerror(errno)));
    directory = pattern;
    made = true;
  } else {
    made = ::mkdir(directory.c_str(), 0700) == 0;
  }
  auto refuse = [&](errc code, const std::string& why) {
    if (made) ::rmdir(directory.c_str());
    return file_error(code, path, why);
  };
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat info {};
  if (fd < 0 || ::fstat(fd, &info) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return refuse(errc::load_failed, "no directory " + directory + " for its copy: " + why);
  }
  error unsafe{errc::unsafe_path, unsafe_because(info, "the directory " + directory + " for copies")};
  // Above it, as given and as resolved: the directories others could rename it out of.
  std::string resolved = absolute(directory);
  if (char* real = ::realpath(directory.c_str(), nullptr)) {
    resolved = real;
    std::free(real);
  }
  for (const std::string& way : {absolute(directory), resolved})
    if (unsafe.what.empty()) unsafe = unsafe_directory_of(way);
  if (!unsafe.what.empty()) {
    ::close(fd);
    return refuse(unsafe.code,
                  unsafe.what + (unsafe.code == errc::unsafe_path ? " (it holds the directory for copies)" : ""));
  }
  // Held while the directory is open here (or in a child forked meanwhile): a sweep leaves it.
  if (made) (void)::flock(fd, LOCK_EX | LOCK_NB);
  return opened_directory{std::move(directory), made, fd};
}

/// A private copy of the bytes checked, for this load only, made in the copy directory `into`
/// (named `directory`; O_EXCL, O_NOFOLLOW: never an existing file, never through a link): its
/// name there.
template <class = void>
result<std::string> write_copy(const copy_directory& into, const std::string& directory, const std::string& bytes,
                               const module_note_fields& note, const std::string& path) {
  std::string copy;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {  // another process may share the directory
    copy = note.name + "-v" + std::to_string(note.vsn) + "-" + std::to_string(next_copy_number()) + ".so";
    fd = ::openat(into.fd, copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0500);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0)
    return file_error(errc::load_failed, path,
                      "cannot write its copy " + directory + "/" + copy + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) break;
    done += static_cast<std::size_t>(wrote);
  }
  ::close(fd);
  if (done != bytes.size()) {
    ::unlinkat(into.fd, copy.c_str(), 0);
    return file_error(errc::load_failed, path, "cannot write its copy " + directory + "/" + copy);
  }
  return copy;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/modules/leases.hpp ----
// Leases: a server's hold on the module whose code it runs (its table's, or its state's). A lease
// lists the server among the module's servers, and keeps the module loaded while the server holds
// it. Templates on the module type, which hotswap/modules.hpp defines (module_version).

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

// ---- hotswap/detail/runtime/server_core.hpp ----
// A running server as the runtime holds it, and where its messages are handled (an executor).

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

// ---- hotswap/detail/abi/trace_event.hpp ----
// One message going into or out of a server, or failing in its handler, as the runtime hands it
// to a sys::trace hook (which may be a module's code): hotswap::trace_event.

#include <cstdint>
#include <string_view>


namespace hotswap::detail {

/// One message going into or out of a server, or whose handler threw (hotswap::trace_event).
struct trace_event {
  enum direction { in, out, failed } way;
  std::string_view message;   ///< the message type (valid during the hook's call only)
  std::uint64_t server;       ///< the server's id
  std::string_view why = {};  ///< `failed`: what the handler threw (valid during the call only)
};

/// A server's trace hook with what keeps its code loaded (a module's), as sys::trace sets it and
/// hands back the one it replaced (hotswap::sys::trace_hook).
struct trace_hook {
  std::shared_ptr<const void> code;  // declared first: released after `call`
  std::function<void(const trace_event&)> call;
};

}  // namespace hotswap::detail
// ---- hotswap/detail/runtime/mailbox.hpp ----
// A server's mailbox: an unbounded lock-free queue, many senders and one receiver.
//
// Messages sit in arrays of slots (segments) so that a receiver reads them in address order,
// several to a cache line, rather than chasing one allocation per message. A sender claims a
// slot with one fetch_add on the tail word, which packs the tail segment's address with the
// next free index, so that claiming a slot and learning its segment is one atomic step. A sender
// that finds the segment full links the next one (twice the size, up to a limit) and moves the
// tail on. A segment is freed when the receiver has left it and every sender that overflowed it
// is done with it: the sender that moves the tail on learns how many did, from the index.
//
// Once a backlog of more than a few MiB has drained, the mailbox says so, and the runtime gives
// the freed memory back to the system when it next idles (malloc's free lists would otherwise
// keep it, and the process's size, for good).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>


#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace hotswap::detail {

/// Returns what malloc holds free to the system (glibc: malloc_trim; elsewhere nothing to do).
inline void give_back_free_memory() noexcept {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

class mailbox {
 public:
  mailbox() {
    segment* first = segment::make(first_capacity);
    head_ = first;
    tail_.store(pack_tail(first, 0), std::memory_order_relaxed);
  }
  mailbox(const mailbox&) = delete;
  mailbox& operator=(const mailbox&) = delete;

  /// Frees the segments; the owner has taken out and discarded every message first.
  ~mailbox() {
    segment* last = tail_segment(tail_.load(std::memory_order_acquire));
    for (segment* at = head_; at != last;) {
      segment* next = at->next.load(std::memory_order_acquire);
      at->drop(1);
      at = next;
    }
    last->drop(1 + tail_reference);
  }

  /// Any thread. `fill(envelope&)` writes the message; it must not throw.
  template <class Fill>
  void push(Fill&& fill) {
    for (;;) {
      const std::uintptr_t word = tail_.fetch_add(1, std::memory_order_acq_rel);
      segment* at = tail_segment(word);
      const std::uint32_t index = tail_index(word);
      if (index < at->capacity) {
        envelope& claimed = at->slots()[index];
        fill(claimed);
        std::atomic_ref(claimed.ready).store(1, std::memory_order_release);
        return;
      }
      move_tail_past(at);
    }
  }

  /// Receiver only: the oldest message, or null when none has arrived.
  envelope* front() noexcept {
    for (;;) {
      if (head_index_ < head_->capacity) {
        envelope& next = head_->slots()[head_index_];
        return std::atomic_ref(next.ready).load(std::memory_order_acquire) ? &next : nullptr;
      }
      segment* following = head_->next.load(std::memory_order_acquire);
      if (!following) return nullptr;
      segment* left = head_;
      head_ = following;
      head_index_ = 0;
      drained_since_empty_ += left->capacity;
      left->drop(1);
    }
  }

  /// Receiver only, with the mailbox found empty: whether more than `backlog_to_give_back` bytes
  /// of messages went through it since it was last empty (a backlog, whose memory is free now).
  bool drained_after_backlog() noexcept {
    return std::exchange(drained_since_empty_, 0) * sizeof(slot) > backlog_to_give_back;
  }

  /// Receiver only: removes the message front() returned.
  void pop() noexcept { ++head_index_; }

  /// Receiver only: how many messages have arrived and wait (walks them; for status reports).
  std::size_t size() noexcept {
    std::size_t count = 0;
    std::uint32_t index = head_index_;
    for (segment* at = head_; at; at = at->next.load(std::memory_order_acquire), index = 0)
      for (; index < at->capacity && std::atomic_ref(at->slots()[index].ready).load(std::memory_order_acquire); ++index)
        ++count;
    return count;
  }

 private:
  using slot = envelope;

  struct alignas(alignof(slot)) segment {
    std::atomic<segment*> next{nullptr};
    // The receiver's reference, plus a bias held while the tail may still point here; the
    // sender that moves the tail on trades the bias for the number of senders that overflowed.
    std::atomic<std::int64_t> references{1 + tail_reference};
    std::uint32_t capacity;

    slot* slots() noexcept { return reinterpret_cast<slot*>(this + 1); }

    static segment* make(std::uint32_t capacity) {
      void* memory = ::operator new (sizeof(segment) + capacity * sizeof(slot), std::align_val_t{alignof(segment)});
      if (reinterpret_cast<std::uintptr_t>(memory) >> (64 - index_bits)) {  // tagged or above 2^48: cannot pack
        ::operator delete (memory, std::align_val_t{alignof(segment)});
        throw std::bad_alloc();
      }
      auto* made = ::new (memory) segment{};
      made->capacity = capacity;
      for (std::uint32_t i = 0; i < capacity; ++i) ::new (static_cast<void*>(made->slots() + i)) slot{};
      return made;
    }
    void drop(std::int64_t count) noexcept {
      if (references.fetch_sub(count, std::memory_order_acq_rel) == count) {
        this->~segment();  // slots are trivially destructible
        ::operator delete (static_cast<void*>(this), std::align_val_t{alignof(segment)});
      }
    }
  };
  static_assert(sizeof(segment) % alignof(slot) == 0 && std::is_trivially_destructible_v<slot>);

  static constexpr std::uint32_t first_capacity = 4;  // an idle server costs little
  static constexpr std::uint32_t max_capacity = 512;
  static constexpr std::size_t backlog_to_give_back = std::size_t{8} << 20;
  static constexpr std::int64_t tail_reference = std::int64_t{1} << 40;
  static constexpr int index_bits = 16;
  static_assert(sizeof(std::uintptr_t) == 8, "hotswap: the mailbox packs a 48-bit address and an index in 64 bits");

  static std::uintptr_t pack_tail(segment* at, std::uint32_t index) noexcept {
    return (reinterpret_cast<std::uintptr_t>(at) << index_bits) | index;
  }
  static segment* tail_segment(std::uintptr_t word) noexcept { return reinterpret_cast<segment*>(word >> index_bits); }
  static std::uint32_t tail_index(std::uintptr_t word) noexcept {
    return static_cast<std::uint32_t>(word & ((std::uintptr_t{1} << index_bits) - 1));
  }

  // A sender found `full` full: link the next segment if nobody has, move the tail onto it if
  // nobody has, and release its hold on `full`.
  void move_tail_past(segment* full) {
    segment* next = full->next.load(std::memory_order_acquire);
    if (!next) {
      segment* fresh = segment::make(std::min(full->capacity * 2, max_capacity));
      if (full->next.compare_exchange_strong(next, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
        next = fresh;
      else
        fresh->drop(1 + tail_reference);
    }
    std::uintptr_t word = tail_.load(std::memory_order_acquire);
    while (tail_segment(word) == full) {
      if (tail_.compare_exchange_weak(word, pack_tail(next, 0), std::memory_order_acq_rel, std::memory_order_acquire)) {
        const std::int64_t overflowed = tail_index(word) - std::int64_t{full->capacity};
        full->drop(tail_reference - overflowed);
        break;
      }
    }
    full->drop(1);
  }

  std::atomic<std::uintptr_t> tail_;  // senders'
  // Keeps the receiver's head off the line the senders write.
  [[maybe_unused]] unsigned char apart_[64 - sizeof(std::atomic<std::uintptr_t>)];
  segment* head_;  // the receiver's
  std::uint32_t head_index_ = 0;
  std::size_t drained_since_empty_ = 0;  // slots of the segments left since the mailbox was empty
};

}  // namespace hotswap::detail
// ---- hotswap/detail/runtime/reply_slot.hpp ----
// Where a reply lands: a slot the caller waits on (spinning, then parked on a futex) and the
// server answers into; and the sys requests, which travel as slots of their own.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

// ---- hotswap/detail/common/sync.hpp ----
// Threads, and waiting without burning a core: spin briefly (a cache-line round trip between
// cores costs 0.07-0.5 us), then park on a futex (a wake round trip costs ~20 us). Linux only;
// pthreads and futexes directly, as <thread>, <mutex> and <condition_variable> would double the
// cost of including hotswap.

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>
#include <utility>


namespace hotswap::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Sleeps while `word` holds `expected`, at most `timeout` (forever when negative). Returns
/// early on a wake, a changed word, a signal, or spuriously: callers re-check their condition.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  timespec limit{};
  timespec* limit_or_none = nullptr;
  if (timeout.count() >= 0) {
    limit.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    limit.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    limit_or_none = &limit;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, limit_or_none, nullptr, 0);
}

inline void futex_wake(std::atomic<std::uint32_t>& word, int waiters) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, waiters, nullptr, nullptr, 0);
}

/// Changes `word` and wakes up to `waiters` threads parked on it: a waiter that read the word
/// before the change and has not parked yet does not park (futex_wait sees another value).
inline void futex_bump(std::atomic<std::uint32_t>& word, int waiters) noexcept {
  word.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(word, waiters);
}

/// How long a waiter spins before it parks.
inline constexpr auto spin_time = std::chrono::microseconds(50);

/// Spins until `ready()` or `spin_time` has passed; true if ready. Reads the clock only every
/// 64 rounds, from the 64th on: steady_clock::now costs 20-40 ns, a fifth of a call that is
/// answered at once.
template <class Ready>
bool spin_until(Ready ready) {
  std::chrono::steady_clock::time_point give_up{};
  for (unsigned round = 1;; ++round) {
    if (ready()) return true;
    cpu_relax();
    if (round % 64 == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (round == 64)
        give_up = now + spin_time;
      else if (now >= give_up)
        return ready();
      sched_yield();  // when threads outnumber cores, the one we wait for may need this one's
    }
  }
}

/// A joinable thread running `body()`.
class thread {
 public:
  thread() = default;
  template <class Body>
  explicit thread(Body body) {
    auto* owned = new Body(std::move(body));
    const int failed = pthread_create(
        &handle_, nullptr,
        [](void* argument) -> void* {
          auto* run = static_cast<Body*>(argument);
          (*run)();
          delete run;
          return nullptr;
        },
        owned);
    if (failed) {
      delete owned;
      throw std::runtime_error("hotswap: cannot start a thread (pthread_create: error " + std::to_string(failed) + ")");
    }
    running_ = true;
  }
  thread(thread&& other) noexcept : handle_(other.handle_), running_(std::exchange(other.running_, false)) {}
  thread& operator=(thread&& other) noexcept {
    std::swap(handle_, other.handle_);
    std::swap(running_, other.running_);
    return *this;
  }
  ~thread() {
    if (running_) pthread_detach(handle_);
  }

  bool joinable() const noexcept { return running_; }
  bool is_this_thread() const noexcept { return running_ && pthread_equal(handle_, pthread_self()); }
  void join() noexcept {
    if (std::exchange(running_, false)) pthread_join(handle_, nullptr);
  }

 private:
  pthread_t handle_{};
  bool running_ = false;
};

inline unsigned hardware_threads() noexcept {
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<unsigned>(online) : 1u;
}

}  // namespace hotswap::detail

namespace hotswap::detail {

// ---- replies ----

/// Where a reply (or a failure) lands. The waiting side spins, then parks on `state`. If it
/// gives up (timeout), it abandons the slot to the server, which frees it after answering.
/// Longer timeouts (nanoseconds::max() for "forever") are cut to this, which steady_clock can add.
inline constexpr std::chrono::nanoseconds longest_wait = std::chrono::hours(24 * 365 * 100);

struct reply_slot_base {
  enum : std::uint32_t { waiting, parked, answered, failed, abandoned };
  alignas(64) std::atomic<std::uint32_t> state{waiting};
  hotswap::error failure{};
  void (*free)(reply_slot_base*) noexcept;
  std::shared_ptr<const void> code;  // a module's slot keeps the module loaded until it is freed

  explicit reply_slot_base(void (*free_slot)(reply_slot_base*) noexcept) : free(free_slot), code(pin_this_image()) {}

  void fail(errc code, std::string what = {}) noexcept {
    failure = {code, std::move(what)};
    finish(failed);
  }
  /// After the answer is written: wakes a parked waiter, or frees an abandoned slot. (The wake
  /// may come after the waiter has seen the answer and reused the slot: it re-checks and waits on.)
  void finish(std::uint32_t how) noexcept {
    const std::uint32_t before = state.exchange(how, std::memory_order_acq_rel);
    if (before == parked) {
      futex_wake(state, 1);
    } else if (before == abandoned) {
      const auto keep = code;  // `free` may be a module's code: its hold is released out here
      free(this);
    }
  }

  /// Waits until answered or `timeout`; false on timeout, after which the slot is no longer
  /// the caller's. `before_parking` runs once if the wait outlasts the spin.
  template <class BeforeParking>
  bool wait(std::chrono::nanoseconds timeout, BeforeParking before_parking) {
    auto answered_yet = [&] { return state.load(std::memory_order_acquire) >= answered; };
    if (spin_until(answered_yet)) return true;
    before_parking();
    const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, longest_wait);
    for (;;) {
      std::uint32_t expected = waiting;
      if (state.compare_exchange_strong(expected, parked, std::memory_order_acq_rel) || expected == parked) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left > std::chrono::nanoseconds::zero()) futex_wait(state, parked, left);
      }
      if (answered_yet()) return true;
      if (std::chrono::steady_clock::now() >= deadline) {
        expected = state.load(std::memory_order_acquire);
        while (expected < answered)
          if (state.compare_exchange_weak(expected, abandoned, std::memory_order_acq_rel)) return false;
        return true;
      }
    }
  }
  /// Ready for the next request of the same caller.
  void reset() noexcept { state.store(waiting, std::memory_order_relaxed); }
};

template <class Reply>
struct reply_slot : reply_slot_base {
  std::optional<Reply> value;
  reply_slot() : reply_slot_base([](reply_slot_base* slot) noexcept { delete static_cast<reply_slot*>(slot); }) {}
  template <class R>
  void answer(R&& reply) noexcept(std::is_nothrow_constructible_v<Reply, R&&>) {
    value.emplace(std::forward<R>(reply));
    finish(answered);
  }
};

/// A thread reuses one slot per reply type: no allocation per call. (Not in a module: a
/// thread-local with a destructor would keep the module's code mapped until the thread ends.)
template <class Reply>
class cached_slot {
 public:
  cached_slot() {
    if constexpr (building_module) {
      slot_ = new reply_slot<Reply>;
      return;
    }
    if (!spare()) spare().reset(new reply_slot<Reply>);
    slot_ = spare().release();
  }
  ~cached_slot() {
    if (!slot_) return;
    if constexpr (building_module) {
      delete slot_;
      return;
    }
    slot_->value.reset();
    slot_->failure = {};
    slot_->reset();
    spare().reset(slot_);
  }
  cached_slot(const cached_slot&) = delete;
  cached_slot& operator=(const cached_slot&) = delete;
  reply_slot<Reply>* get() const noexcept { return slot_; }
  /// The server side now owns the slot (the caller timed out).
  void abandon() noexcept { slot_ = nullptr; }

 private:
  static std::unique_ptr<reply_slot<Reply>>& spare() {
    thread_local std::unique_ptr<reply_slot<Reply>> slot;
    return slot;
  }
  reply_slot<Reply>* slot_;
};

struct server_core;

/// A sys request: runs on the server between two messages, ahead of the messages waiting, and
/// while it is suspended. It travels in the server's sys lane, not in its mailbox.
struct control_request : reply_slot_base {
  void (*run)(control_request& self, server_core& server) noexcept;
  control_request* next_in_lane = nullptr;
  using reply_slot_base::reply_slot_base;
};

}  // namespace hotswap::detail

namespace hotswap::detail {

// ---- executors ----

/// Where a server's messages are handled: the shared pool, or a thread of its own.
class executor {
 public:
  virtual ~executor() = default;
  /// Takes a reference to `server` and runs it soon.
  virtual void schedule(server_core& server) = 0;
  /// Another server waits for this executor's thread.
  virtual bool others_waiting() const noexcept = 0;
};

// ---- servers ----

/// Receives the exit of a monitored server.
using exit_callback = std::function<void(std::uint64_t id, const exit_reason& reason)>;

// ---- what a watcher receives ----

/// The info a monitor delivers when the server it watches ends (OTP's {'DOWN', Ref, process,
/// Pid, Reason}): hotswap::down.
struct down_message {
  std::uint64_t monitor = 0;  ///< the monitor's id (monitor_ref::id)
  std::uint64_t server = 0;   ///< the server that ended
  exit_reason reason{};
};

/// The info a server that traps exits receives when a server linked to it ends (OTP's {'EXIT',
/// Pid, Reason}): hotswap::exit_signal.
struct exit_message {
  std::uint64_t server = 0;  ///< the linked server that ended
  exit_reason reason{};
};

struct server_core;

/// A monitor on a server (runtime/exits.hpp): the server told (a `down` info) or a callback,
/// and what keeps the callback's code loaded (a module's), released after it.
struct exit_monitor {
  std::uint64_t ref = 0;
  server_core* watcher = nullptr;  // holding a reference
  std::shared_ptr<const void> code;
  exit_callback call;
};
/// A monitor a server set on another, whose down it has not yet received.
struct watched_server {
  std::uint64_t ref;
  server_core* server;  // holding a reference
};

/// A running server: its mailbox, its sys lane, its implementation table and state, and its sys
/// settings. Shared by every handle to it. The first cache line is what senders touch (it ends
/// with the mailbox's tail); from the mailbox's head on, fields belong to the thread running the
/// server, but for the sys lane, which sys requests (rare) push to.
///
/// Sys requests have a lane of their own so that what they cost does not depend on the mailbox:
/// a suspended server leaves its normal messages in the mailbox, in order, untouched, and a busy
/// one serves a sys request after the message it is handling, not after its backlog.
struct server_core {
  /// Who has it: nobody (idle); a thread running it (running); a worker that has run it dry and
  /// watches for more, which anybody may take from it (watched). A sender sets `notified` on top.
  enum : std::uint32_t { idle = 0, running = 1, notified = 2, watched = 4 };

  alignas(64) std::atomic<std::uint32_t> run_state{idle};
  std::atomic<bool> alive{true};
  std::atomic<std::uint32_t> references{1};  // one for being alive, one per handle, queue or timer
  executor* runs_on = nullptr;
  const std::uint64_t id;
  /// The version of its interface its code implements: a sender's check of a message of a
  /// later version than the first (the receiver checks again: detail::takes_kind).
  std::atomic<std::uint32_t> interface_vsn;
  // Where its interface takes what the runtime sends it (runtime/exits.hpp): the same in every
  // version of its code. `table_size` where it takes none.
  const std::uint32_t table_size, down_index, exit_index;
  std::atomic<bool> trapping_exits{false};
  std::atomic<bool> abandoned{false};  // ended while a handler ran (runtime's abandon): no terminate
  mailbox inbox;

  bool ended = false;  // the receiver's own !alive: read for every message, so not on the senders' line
  std::atomic<control_request*> controls{nullptr};  // the sys lane: newest first
  const implementation_table* table;
  /// Frees it once its last reference is gone: the program's code (abi/image.hpp), whoever
  /// lets go last.
  void (*const free_core)(server_core& server) noexcept;
  void* state = nullptr;
  std::shared_ptr<const void> table_owner;  // keeps the code of `table` loaded
  std::shared_ptr<const void> state_owner;  // and of the code that made a state not plain data
  bool suspended = false;                   // normal messages wait in the mailbox
  std::uint64_t handled = 0;
  bool timing = false;
  std::chrono::nanoseconds time_in_handlers{};
  std::uint64_t slow_handlers = 0;  // that held a pool worker past slow_handler_after
  std::string slowest_message;      // of them, the longest: its message, and (at least) how long
  std::chrono::nanoseconds slowest_handler{};
  std::shared_ptr<const void> trace_code;  // released after `trace`
  std::function<void(const trace_event&)> trace;
  /// Asked once, on the server's thread, when a handler fails (set while a development reload is
  /// on probation: hotswap::module_watch): true if it put the server back on code that serves,
  /// with its state, and the server lives on; false, or none, and the server crashes.
  std::function<bool(server_core& server, const std::string& why)> on_failure;
  /// What a handler (or init) asked to run next, before any other message or sys request (OTP's
  /// {continue, C}): hotswap::continue_with. It reports a throw in `result`.
  std::function<void(void* state, outcome& result)> continuation;
  /// The last idle timeout a handler set (OTP's {noreply, State, Timeout}): its info is handled
  /// only if it is still the last one set and `handled` is still what it was then.
  std::uint64_t idle_timeouts = 0, idle_mark = 0;

  std::unique_ptr<executor> own_thread;  // a thread of its own (an own_thread), if it runs on one

  server_core* live_prev = nullptr;  // the runtime's list of live servers (runtime::track)
  server_core* live_next = nullptr;
  /// Started by a supervisor (set before it is tracked, fixed after): stop_all leaves it to its
  /// supervisor, which would restart it.
  bool supervised = false;
  bool starting_child = false;  // a supervisor's, while its handler starts a child (start_supervised)

  spin_lock exit_lock;  // guards what follows: read by other threads
  /// Its code's interface_lineage (set before that code's hold is let go: set_interface), what
  /// a handle of an interface is checked against (server_ref::from).
  const std::uint64_t* interface_lineage;
  std::string_view interface_name;
  std::string name;
  std::vector<exit_monitor> monitors;    // told when it ends
  std::vector<watched_server> watching;  // the monitors it set on others, taken off when it ends
  std::vector<server_core*> links;       // each holding a reference
  exit_reason reason;

  server_core(std::uint64_t server_id, const implementation_table& implementation,
              void (*free)(server_core& server) noexcept)
      : id(server_id),
        interface_vsn(implementation.interface_vsn),
        table_size(implementation.message_count),
        down_index(implementation.down_index),
        exit_index(implementation.exit_index),
        table(&implementation),
        free_core(free),
        interface_lineage(implementation.interface_lineage),
        interface_name(implementation.interface_name) {}

  /// Any thread: `server 4 (counter)`, or `server 4` if it has no name: how messages name it.
  std::string label() {
    const spin_guard hold(exit_lock);
    return "server " + std::to_string(id) + (name.empty() ? "" : " (" + name + ")");
  }

  /// On the server, as its code changes (before the hold on the code before is let go).
  void set_interface(const implementation_table& now) noexcept {
    const spin_guard hold(exit_lock);
    interface_lineage = now.interface_lineage;
    interface_name = now.interface_name;
    interface_vsn.store(now.interface_vsn, std::memory_order_relaxed);
  }
  /// Any thread: `Counter`, or `Counter version 2`: the interface its code implements now.
  std::string interface_now() {
    const spin_guard hold(exit_lock);
    const std::uint32_t vsn = interface_vsn.load(std::memory_order_relaxed);
    return std::string(interface_name) + (vsn > 1 ? " version " + std::to_string(vsn) : std::string());
  }
  /// Any thread: whether its code implements the interface of fingerprint `fingerprint`, version
  /// `vsn`, or a later version of it.
  bool implements(std::uint64_t fingerprint, std::uint32_t vsn) {
    const spin_guard hold(exit_lock);
    return vsn >= 1 && vsn <= interface_vsn.load(std::memory_order_relaxed) &&
           interface_lineage[vsn - 1] == fingerprint;
  }
  /// Any thread: whether its code takes a message dating from interface vsn `since` (of a
  /// handle's interface that it implements).
  bool takes(std::uint32_t since) const noexcept { return interface_vsn.load(std::memory_order_relaxed) >= since; }

  void acquire() noexcept { references.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) free_core(*this);
  }

  /// Any thread: queues a message and gets the server running. False if it has stopped.
  template <class Fill>
  bool deliver(Fill&& fill) {
    if (!alive.load(std::memory_order_acquire)) return false;
    inbox.push(std::forward<Fill>(fill));
    notify();
    return true;
  }

  /// Any thread: puts a sys request in the sys lane and gets the server running. False if it
  /// has stopped.
  bool deliver_control(control_request& request) noexcept {
    if (!alive.load(std::memory_order_acquire)) return false;
    control_request* newest = controls.load(std::memory_order_relaxed);
    do request.next_in_lane = newest;
    while (!controls.compare_exchange_weak(newest, &request, std::memory_order_release, std::memory_order_relaxed));
    notify();
    return true;
  }

  /// Receiver: whether there is something to do now.
  bool has_input() noexcept {
    return controls.load(std::memory_order_acquire) != nullptr || (!suspended && inbox.front() != nullptr) ||
           continuation;
  }

 private:
  void notify() {
    if (run_state.fetch_or(notified, std::memory_order_acq_rel) == idle) runs_on->schedule(*this);
  }
};

}  // namespace hotswap::detail
// ---- hotswap/detail/servers/table_of.hpp ----
// Generating an implementation table (hotswap::table_of): a handler per message that unpacks it,
// runs the implementation's handler and answers a call; init, terminate and destroy; and
// code_change, which builds the new state from the old by the implementation's code_change or
// the generated migration. Nothing thrown crosses the table: failures are reported as outcomes.

#include <cxxabi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

// ---- hotswap/detail/runtime/deferred_reply.hpp ----
// A call answered later (OTP's gen_server:reply/2, CAF's response_promise): the caller's reply
// slot, held by a counted handle that a handler keeps, hands to another server, or answers from
// a timer's info. Answered once: a second answer is refused; the last copy dropped unanswered
// fails the call at once with errc::no_reply.

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>


namespace hotswap::detail {

/// What the copies of one handle share. Plain data: whichever image lets go last frees it.
struct deferred_record {
  std::atomic<std::uint32_t> holders{1};
  std::atomic<bool> answered{false};
  reply_slot_base* slot;
};

/// hotswap::reply_to<Reply>: the right to answer one call. Copies answer the same call; it is
/// data of the runtime, not of the code, so a server keeps it in its state across upgrades.
template <class Reply>
class deferred {
 public:
  static constexpr std::string_view inspect_label = "#reply_to";  ///< how inspect prints it
  deferred() = default;
  /// Takes over answering `slot` (the table's handler makes it).
  explicit deferred(reply_slot_base* slot) : record_(new deferred_record{{1}, {false}, slot}) {}
  deferred(const deferred& other) noexcept : record_(other.record_) {
    if (record_) record_->holders.fetch_add(1, std::memory_order_relaxed);
  }
  deferred(deferred&& other) noexcept : record_(std::exchange(other.record_, nullptr)) {}
  deferred& operator=(deferred other) noexcept {
    std::swap(record_, other.record_);
    return *this;
  }
  ~deferred() { drop(); }

  /// Answers the call: its caller's hotswap::call returns `value`. Refused with
  /// errc::already_replied if it was answered (by any copy), errc::no_reply for an empty handle.
  /// (A caller that has given up waiting gets nothing; that is no error, as in OTP.)
  template <class R = Reply>
  hotswap::result<void> reply(R&& value) {
    if (!record_) return error{errc::no_reply, "an empty reply handle"};
    Reply made(std::forward<R>(value));  // what can throw, before the call counts as answered
    if (record_->answered.exchange(true, std::memory_order_acq_rel))
      return error{errc::already_replied, "this call was answered already"};
    static_cast<reply_slot<Reply>*>(record_->slot)->answer(std::move(made));
    return {};
  }
  /// Whether it was answered (by any copy).
  bool replied() const noexcept { return record_ && record_->answered.load(std::memory_order_acquire); }
  explicit operator bool() const noexcept { return record_ != nullptr; }

  /// The handler's own copy, after the handler threw: if no other copy holds the call and it is
  /// unanswered, the call is handed back (true), for the crash to fail it as any call.
  bool hand_back() noexcept {
    if (!record_ || record_->holders.load(std::memory_order_acquire) != 1 ||
        record_->answered.exchange(true, std::memory_order_acq_rel))
      return false;
    delete std::exchange(record_, nullptr);
    return true;
  }

 private:
  void drop() noexcept {
    deferred_record* const record = std::exchange(record_, nullptr);
    if (!record || record->holders.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (!record->answered.exchange(true, std::memory_order_acq_rel))
      record->slot->fail(errc::no_reply, "the server dropped the call unanswered");
    delete record;
  }
  deferred_record* record_ = nullptr;
};

}  // namespace hotswap::detail
// ---- hotswap/detail/schemas/state_size.hpp ----
// How many bytes a state holds, for an upgrade's report: the value itself and what its fields'
// containers hold on the heap, walked by field kind as inspect walks them.
//
// An estimate, stated as such: a container's heap is its capacity (a vector's, a string's when it
// is not held inline) or its nodes (a map's: the value and the tree's three pointers and colour; a
// hash map's: the value, a link and a cached hash, and its buckets), allocator overhead aside. A
// type of kind `other` counts as its size alone. Costs one visit per element: a walk of the state,
// so never inside a pause.

#include <cstddef>
#include <utility>


namespace hotswap::detail {

/// The bytes `value` holds beyond its own size.
template <class T>
std::size_t heap_bytes(const T& value) {
  constexpr field_kind kind = field_kind_of<T>;
  constexpr std::size_t pointer = sizeof(void*);
  auto of_elements = [](const auto& range) {
    std::size_t bytes = 0;
    for (const auto& element : range) bytes += heap_bytes(element);
    return bytes;
  };
  if constexpr (kind == field_kind::version) {
    auto members = fields(value);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return (std::size_t{0} + ... + heap_bytes(member<I>(members)));
    }
    (std::make_index_sequence<field_count<T>>{});
  } else if constexpr (kind == field_kind::string) {
    const char* const inline_begin = reinterpret_cast<const char*>(&value);
    const bool held_inline = value.data() >= inline_begin && value.data() < inline_begin + sizeof(T);
    return held_inline ? 0 : value.capacity() + 1;
  } else if constexpr (kind == field_kind::optional) {
    return value ? heap_bytes(*value) : 0;
  } else if constexpr (kind == field_kind::sequence) {
    return value.capacity() * sizeof(typename T::value_type) + of_elements(value);
  } else if constexpr (kind == field_kind::fixed_array) {
    return of_elements(value);
  } else if constexpr (kind == field_kind::ordered_map || kind == field_kind::hashed_map) {
    const std::size_t node = sizeof(typename T::value_type) + (kind == field_kind::ordered_map ? 4 : 2) * pointer;
    std::size_t bytes = value.size() * node;
    if constexpr (kind == field_kind::hashed_map) bytes += value.bucket_count() * pointer;
    for (const auto& [key, mapped] : value) bytes += heap_bytes(key) + heap_bytes(mapped);
    return bytes;
  } else {
    return 0;  // numbers, enums, and types hotswap does not look into
  }
}

/// The bytes a state of type `T` holds, itself included: what implementation_table::state_bytes
/// reports.
template <class T>
std::size_t state_bytes(const void* state) noexcept {
  return sizeof(T) + heap_bytes(*static_cast<const T*>(state));
}

}  // namespace hotswap::detail
// ---- hotswap/detail/servers/implementation_checks.hpp ----
// Checking an implementation: its basics (interface, vsn, state, init), a handler of the right
// type for each message of its interface, and a way to change code from each vsn of its state
// history (a hand-written code_change, the same state, or a migration that compiles). The first
// mistake is reported, once, by table_of.

#include <concepts>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/servers/interface.hpp ----
// Interfaces: a message's fingerprint, an interface's check (each message listed once), and
// whether a message may be sent to an interface as a call, a cast or an info.
// Cost: one fingerprint per message type (a hash of its description, or of its fields' names
// and fingerprints); index_in is a constant fold over the interface's kinds, not a recursion.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>


namespace hotswap {
template <detail::fixed_string Name, class... Kinds>
struct interface;  // hotswap/servers.hpp

// The errors name the interface as errors::interface_named<'C', 'o', ...>: clang prints the
// interface's own name argument as character codes.
namespace errors {
template <class Interface, class Message>
struct message_is_not_in_the_interface {
  static_assert(reported<message_is_not_in_the_interface>,
                "hotswap: this message is not one the server's interface declares; add "
                "hotswap::call_msg<Message, Reply>, cast_msg<Message> or info_msg<Message> to the interface");
};
template <class Interface, class Message, class DeclaredAs>
struct message_sent_the_wrong_way {
  static_assert(reported<message_sent_the_wrong_way>,
                "hotswap: the interface declares this message as another kind (DeclaredAs): send a call_msg "
                "with hotswap::call, a cast_msg with hotswap::cast, an info_msg with hotswap::send");
};
template <class Interface, class Message>
struct message_listed_twice {
  static_assert(reported<message_listed_twice>, "hotswap: an interface lists each message type once");
};
}  // namespace errors
}  // namespace hotswap

namespace hotswap::detail {

/// Whether a message is a call, a cast or an info (call_msg, cast_msg, info_msg say which).
enum class message_kind { call, cast, info };

/// A message's fingerprint: its canonical description, or for a plain struct its name and its
/// fields' names and fingerprints.
template <class T>
constexpr std::uint64_t message_hash(std::uint64_t hash) {
  if constexpr (describable<T>()) {
    return fnv1a(description<T>, hash);
  } else if constexpr (std::is_class_v<T> && std::is_aggregate_v<T>) {
    hash = fnv1a("{", fnv1a(type_spelling<T>(), hash));
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((hash = message_hash<field_type<T, I>>(fnv1a(":", fnv1a(field_names<T>[I], hash)))), ...);
    }
    (std::make_index_sequence<field_count<T>>{});
    return fnv1a("}", hash);
  } else {
    return fnv1a(type_spelling<T>(), hash);
  }
}

/// The fingerprint of a state or extra type: canonical when describable, else its spelling
/// (such a state can only be handed on to an implementation with the very same state type).
template <class T>
inline constexpr std::uint64_t value_fingerprint = [] {
  if constexpr (describable<T>())
    return fnv1a(description<T>);
  else
    return fnv1a(type_spelling<T>());
}();

template <class Kind>
constexpr std::uint64_t kind_hash(std::uint64_t hash) {
  using M = typename Kind::message;
  if constexpr (Kind::kind == message_kind::call)
    return message_hash<typename Kind::reply>(message_hash<M>(fnv1a("call:", hash)));
  else if constexpr (Kind::kind == message_kind::cast)
    return message_hash<M>(fnv1a("cast:", hash));
  else
    return message_hash<M>(fnv1a("info:", hash));
}

template <class Message, class... Kinds>
constexpr std::size_t index_in() {
  constexpr bool match[] = {std::is_same_v<typename Kinds::message, Message>..., false};
  std::size_t i = 0;
  while (i < sizeof...(Kinds) && !match[i]) ++i;
  return i;
}

/// An interface's name as errors spell it (read from its arguments: also while it is defined).
template <class Interface>
struct interface_name_of;
template <fixed_string Name, class... Kinds>
struct interface_name_of<interface<Name, Kinds...>> {
  using type = spelled<errors::interface_named, Name>;
};
template <class Interface>
using interface_name = typename interface_name_of<Interface>::type;

template <class Interface, class... Kinds, std::size_t... I>
constexpr auto check_interface(std::index_sequence<I...>) {
  return first_of<verdict<
      std::conditional_t<index_in<typename Kinds::message, Kinds...>() == I, no_error,
                         errors::message_listed_twice<interface_name<Interface>, typename Kinds::message>>>...>{};
}

template <class T>
inline constexpr bool is_interface = false;
template <fixed_string Name, class... Kinds>
inline constexpr bool is_interface<interface<Name, Kinds...>> = true;

/// Whether `Message` may be sent to `Interface` as a `Kind`.
template <class Interface, class Message, message_kind Kind>
constexpr auto check_sent() {
  using M = std::remove_cvref_t<Message>;
  constexpr auto index = Interface::template index_of<M>;
  if constexpr (index == Interface::size) {
    return verdict<errors::message_is_not_in_the_interface<interface_name<Interface>, M>>{};
  } else {
    using declared = typename Interface::template kind_at<index>;
    if constexpr (declared::kind != Kind)
      return verdict<errors::message_sent_the_wrong_way<interface_name<Interface>, M, declared>>{};
    else
      return verdict<no_error>{};
  }
}
template <class Interface, class Message, message_kind Kind>
using sent_check = decltype(check_sent<Interface, Message, Kind>());

/// What hotswap::call returns for a message that is no call (its error is reported instead).
struct not_a_call {};

template <class Interface, class Message>
constexpr auto reply_type() {
  constexpr auto index = Interface::template index_of<std::remove_cvref_t<Message>>;
  if constexpr (index == Interface::size)
    return std::type_identity<not_a_call>{};
  else if constexpr (Interface::template kind_at<index>::kind != message_kind::call)
    return std::type_identity<not_a_call>{};
  else
    return std::type_identity<typename Interface::template kind_at<index>::reply>{};
}

}  // namespace hotswap::detail

namespace hotswap {
template <int Vsn>
struct from_vsn;  // hotswap/servers.hpp
template <class... Versions>
struct state_history;  // hotswap/servers.hpp

namespace errors {
template <class Implementation>
struct implementation_needs_interface_vsn_state_and_init {
  static_assert(reported<implementation_needs_interface_vsn_state_and_init>,
                "hotswap: an implementation declares `using interface = ...;`, `static constexpr int vsn = N;`, "
                "`using state = ...;` and `static state init();` (or `static state init(const Argument&);`, not "
                "overloaded)");
};
template <class Implementation, class Message, class Reply>
struct implementation_lacks_handle_call {
  static_assert(reported<implementation_lacks_handle_call>,
                "hotswap: the implementation has no handler for this call; write "
                "`static Reply handle_call(const Message&, state&);`, or, to answer later, "
                "`static void handle_call(const Message&, state&, hotswap::reply_to<Reply>);`");
};
template <class Implementation, class Message, class Reply, class Returned>
struct deferring_handle_call_returns_a_value {
  static_assert(reported<deferring_handle_call_returns_a_value>,
                "hotswap: a handle_call that takes a hotswap::reply_to answers through it (now or later) and returns "
                "void");
};
template <class Implementation, class Message, class Reply, class Returned>
struct handle_call_returns_the_wrong_type {
  static_assert(reported<handle_call_returns_the_wrong_type>,
                "hotswap: this handle_call returns a type that does not convert to the reply type the interface "
                "declares for the message; return Reply");
};
template <class Implementation, class Message>
struct implementation_lacks_handle_cast {
  static_assert(reported<implementation_lacks_handle_cast>,
                "hotswap: the implementation has no handler for this cast; write "
                "`static void handle_cast(const Message&, state&);`");
};
template <class Implementation, class Message>
struct implementation_lacks_handle_info {
  static_assert(reported<implementation_lacks_handle_info>,
                "hotswap: the implementation has no handler for this info; write "
                "`static void handle_info(const Message&, state&);`");
};
template <class Implementation, int FromVsn, class OldState, class State>
struct state_cannot_change_from_vsn {
  static_assert(reported<state_cannot_change_from_vsn>,
                "hotswap: the state of the vsn named in state_history does not migrate to this implementation's "
                "state by itself; write `static state code_change(hotswap::from_vsn<FromVsn>, OldState&& old, "
                "const extra&);` or declare the step rules of the schema (hotswap::step)");
};
template <class Implementation, int FromVsn, class OldState, class State>
struct states_are_not_versions_of_a_schema {
  static_assert(reported<states_are_not_versions_of_a_schema>,
                "hotswap: the state of the vsn named in state_history and this implementation's state are structs "
                "that are not declared as versions of one schema, so no migration between them is generated; "
                "declare them: `using S = hotswap::schema<\"Name\", hotswap::version<1, OldState>, "
                "hotswap::version<2, State>>;` and `template <hotswap::listed_in<S> T> struct hotswap::schema_of<T> "
                ": S {};`, or write `static state code_change(hotswap::from_vsn<FromVsn>, OldState&& old);`");
};
}  // namespace errors
}  // namespace hotswap

namespace hotswap::detail {

template <class Result, class Argument>
Argument init_argument_of(Result (*)(Argument));
template <class Result>
void init_argument_of(Result (*)());

template <class Implementation>
concept has_basics = requires {
  typename Implementation::interface;
  typename Implementation::state;
  { Implementation::vsn } -> std::convertible_to<int>;
  init_argument_of(&Implementation::init);
};

template <class Implementation>
using init_argument = std::remove_cvref_t<decltype(init_argument_of(&Implementation::init))>;

template <class Implementation>
concept init_takes_argument = has_basics<Implementation> && !std::is_void_v<init_argument<Implementation>>;

template <class Implementation>
struct extra_type : std::type_identity<no_extra> {};
template <class Implementation>
requires requires {
  typename Implementation::extra;
}
struct extra_type<Implementation> : std::type_identity<typename Implementation::extra> {};
template <class Implementation>
using extra_of = typename extra_type<Implementation>::type;

template <class Implementation, class M, class S>
using call_returns = decltype(Implementation::handle_call(std::declval<M&&>(), std::declval<S&>()));

/// A call handler that takes the call's reply handle (OTP's handle_call/3 with From) and answers
/// through it, now or later.
template <class Implementation, class M, class S, class R>
concept defers_reply = requires(M&& m, S& s, deferred<R> from) {
  Implementation::handle_call(std::move(m), s, std::move(from));
};
/// Whether the handler of `Kind` is a call handler that takes the reply handle.
template <class Implementation, class Kind>
constexpr bool defers_reply_of() {
  if constexpr (Kind::kind == message_kind::call)
    return defers_reply<Implementation, typename Kind::message, typename Implementation::state, typename Kind::reply>;
  else
    return false;
}

template <class Implementation, class Kind>
constexpr auto check_handler() {
  using M = typename Kind::message;
  using S = typename Implementation::state;
  if constexpr (Kind::kind == message_kind::call) {
    using R = typename Kind::reply;
    if constexpr (defers_reply<Implementation, M, S, R>) {
      using returned =
          decltype(Implementation::handle_call(std::declval<M&&>(), std::declval<S&>(), std::declval<deferred<R>>()));
      if constexpr (std::is_void_v<returned>)
        return verdict<no_error>{};
      else
        return verdict<errors::deferring_handle_call_returns_a_value<Implementation, M, R, returned>>{};
    } else if constexpr (!requires(M && m, S & s) { Implementation::handle_call(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_call<Implementation, M, R>>{};
    else if constexpr (!std::is_convertible_v<call_returns<Implementation, M, S>, R>)
      return verdict<
          errors::handle_call_returns_the_wrong_type<Implementation, M, R, call_returns<Implementation, M, S>>>{};
    else
      return verdict<no_error>{};
  } else if constexpr (Kind::kind == message_kind::cast) {
    if constexpr (!requires(M && m, S & s) { Implementation::handle_cast(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_cast<Implementation, M>>{};
    else
      return verdict<no_error>{};
  } else {
    if constexpr (!requires(M && m, S & s) { Implementation::handle_info(std::move(m), s); })
      return verdict<errors::implementation_lacks_handle_info<Implementation, M>>{};
    else
      return verdict<no_error>{};
  }
}

template <class Implementation, int Vsn, class Old>
concept writes_code_change = requires(Old&& old, const extra_of<Implementation>& extra) {
  {
    Implementation::code_change(from_vsn<Vsn>{}, std::move(old), extra)
    } -> std::same_as<typename Implementation::state>;
}
|| requires(Old&& old) {
  { Implementation::code_change(from_vsn<Vsn>{}, std::move(old)) } -> std::same_as<typename Implementation::state>;
};

/// A vsn of the history: code_change written for it, the same state, or a migration that
/// compiles (its own first mistake is reported when there is a route, which names the field).
template <class Implementation, class Version>
constexpr auto check_history_entry() {
  using Old = typename Version::type;
  using S = typename Implementation::state;
  if constexpr (writes_code_change<Implementation, Version::vsn, Old> || std::is_same_v<Old, S>)
    return verdict<no_error>{};
  else if constexpr (!has_route<Old, S>() && std::is_aggregate_v<Old> && std::is_aggregate_v<S> &&
                     !versioned_type<Old> && !versioned_type<S>)
    return verdict<errors::states_are_not_versions_of_a_schema<Implementation, Version::vsn, Old, S>>{};
  else if constexpr (!has_route<Old, S>())
    return verdict<errors::state_cannot_change_from_vsn<Implementation, Version::vsn, Old, S>>{};
  else
    return check_migration<Old, S, context<extra_of<Implementation>, no_key>>();
}

template <class Implementation>
struct history_type : std::type_identity<state_history<>> {};
template <class Implementation>
requires requires {
  typename Implementation::state_history;
}
struct history_type<Implementation> : std::type_identity<typename Implementation::state_history> {};
template <class Implementation>
using history_of = typename history_type<Implementation>::type;

template <class Implementation, class... Versions>
constexpr auto check_history(state_history<Versions...>) {
  return first_of<decltype(check_history_entry<Implementation, Versions>())...>{};
}

template <class Implementation, class... Kinds>
constexpr auto check_handlers(type_list<Kinds...>) {
  return first_of<decltype(check_handler<Implementation, Kinds>())...>{};
}

/// The first mistake of an implementation: its basics, its handlers, then its history.
template <class Implementation>
constexpr auto check_implementation() {
  if constexpr (!has_basics<Implementation>) {
    return verdict<errors::implementation_needs_interface_vsn_state_and_init<Implementation>>{};
  } else {
    using handlers = decltype(check_handlers<Implementation>(typename Implementation::interface::kinds{}));
    if constexpr (!fine<handlers>)
      return verdict<error_of<handlers>>{};
    else
      return verdict<error_of<decltype(check_history<Implementation>(history_of<Implementation>{}))>>{};
  }
}

template <class Implementation>
using implementation_check = decltype(check_implementation<Implementation>());

}  // namespace hotswap::detail
// ---- hotswap/detail/servers/interface_versions.hpp ----
// Interfaces that evolve: an interface that lists hotswap::follows<Previous> first is the next
// version of Previous, as a schema lists its versions. Its messages keep their places (slots):
// a slot is a message's number on the wire, the same in every version, so that a client built
// against an older version keeps calling a server that runs a newer one. A listed message whose
// type (or reply) is a later version of a slot's schema replaces it in its slot; a new message
// takes a new slot at the end; hotswap::removed_msg<M> empties M's slot; a message not listed is
// kept. Each slot knows the vsn its kind dates from (`since`) and what it was before, so that a
// handler can take any version of its message, and answer any version of its reply.
// Cost, for an interface that follows none: one `slot` instantiation per message.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>


namespace hotswap {
template <class Previous>
struct follows;  // hotswap/servers.hpp
template <class Message>
struct removed_msg;  // hotswap/servers.hpp
}  // namespace hotswap

namespace hotswap::errors {
template <class Interface, class Message, class Was, class Is>
struct message_changes_kind {
  static_assert(reported<message_changes_kind>,
                "hotswap: a later interface takes a message of its previous version as the same kind (Was: a "
                "call stays a call, with a reply); declare another message for the new kind");
};
template <class Interface, class Message, class Was>
struct message_goes_back_a_version {
  static_assert(reported<message_goes_back_a_version>,
                "hotswap: a later interface takes a message as the same or a later version of its schema than "
                "its previous version (Was)");
};
template <class Interface, class Message, class Was, class Is>
struct reply_changes_type {
  static_assert(reported<reply_changes_type>,
                "hotswap: a call's reply may change, in a later interface, only to a later version of its "
                "schema (Was, Is): the reply is migrated down for the callers built against the earlier one");
};
template <class Interface, class Message, class Mistake>
struct message_does_not_migrate {
  static_assert(reported<message_does_not_migrate>,
                "hotswap: a message of an earlier interface must migrate up to the later one's, and a later reply "
                "down to the earlier one's, by the schema's generated steps (Mistake says why not; a step's rules "
                "can say what it cannot infer)");
};
template <class Interface, class Message>
struct removed_message_is_not_in_the_previous_version {
  static_assert(reported<removed_message_is_not_in_the_previous_version>,
                "hotswap: hotswap::removed_msg<M> names a message the previous interface takes");
};
template <class Interface, class Previous>
struct later_interface_is_renamed {
  static_assert(reported<later_interface_is_renamed>,
                "hotswap: a later version of an interface keeps its name (Previous is the version before)");
};
template <class Old, class New, class FirstMessageNotKept>
struct interface_does_not_follow {
  static_assert(reported<interface_does_not_follow>,
                "hotswap: New is not a later version of Old: list hotswap::follows<Old> first in New's messages "
                "(FirstMessageNotKept is the first of Old's messages New does not take as Old sends it; void: "
                "none, but the slots are numbered anew without the declaration)");
};
}  // namespace hotswap::errors

namespace hotswap::detail {

// -- slots --

/// Joins type lists (a fold over +).
template <class... A, class... B>
constexpr type_list<A..., B...> operator+(type_list<A...>, type_list<B...>) {
  return {};
}

/// What a slot held from interface vsn `Vsn` on (until the next entry, or the slot's own kind).
template <std::uint32_t Vsn, class Kind>
struct slot_version {
  static constexpr std::uint32_t vsn = Vsn;
  using kind = Kind;
};

/// An emptied slot (hotswap::removed_msg): it takes no message of its own, so that sending the
/// removed message with a handle of the later version does not compile.
template <class Kind>
struct gone {
  using message = gone;
  using was = Kind;
  static constexpr message_kind kind = Kind::kind;
};
template <class Kind>
inline constexpr bool is_gone = false;
template <class Kind>
inline constexpr bool is_gone<gone<Kind>> = true;

/// A message's place: its kind now (or gone), the vsn it dates from, and the earlier
/// slot_versions, oldest first.
template <class Kind, std::uint32_t Since, class... Earlier>
struct slot {
  using kind = Kind;
  static constexpr std::uint32_t since = Since;
  using earlier = type_list<Earlier...>;
  template <std::uint32_t Vsn, class Next>
  using changed_to = slot<Next, Vsn, Earlier..., slot_version<Since, Kind>>;
};

// -- the wire (detail/abi/envelope.hpp) --

/// Calls `with(std::type_identity<Kind>{})` for the kind `Slot` held at sent vsn `vsn` (0: the
/// kind now); false if it held none then.
template <class Slot, class With>
constexpr bool with_sent_kind(std::uint32_t vsn, With&& with) {
  if constexpr (!is_gone<typename Slot::kind>) {
    if (vsn == 0 || vsn == Slot::since) {
      with(std::type_identity<typename Slot::kind>{});
      return true;
    }
  }
  return [&]<class... Earlier>(type_list<Earlier...>) {
    return ((Earlier::vsn == vsn && (with(std::type_identity<typename Earlier::kind>{}), true)) || ...);
  }(typename Slot::earlier{});
}

template <std::size_t I, class List>
struct list_at;
template <std::size_t I, class... T>
struct list_at<I, type_list<T...>> {
  using type = std::tuple_element_t<I, std::tuple<T...>>;
};
/// Slot `I` of `Interface`.
template <class Interface, std::size_t I>
using slot_at = typename list_at<I, typename Interface::slots>::type;

/// How message `M` travels to a server of `Interface`: its slot, and the kind word it carries.
template <class Interface, class M>
struct sent_as {
  static constexpr std::uint32_t index = Interface::template index_of<M>;
  static constexpr std::uint32_t since = [] {
    if constexpr (index < Interface::size)
      return slot_at<Interface, index>::since;
    else
      return 1u;  // not a message it takes: reported by the send's own check
  }();
  static constexpr std::uint32_t kind =
      index | since << vsn_shift | (self_disposing<std::remove_cvref_t<M>>(since) ? boxed_bit : 0);
};

// -- a later version's slots --

/// Whether `A` is `B` or another version of the same schema.
template <class A, class B>
constexpr bool same_message() {
  if constexpr (std::is_same_v<A, B>)
    return true;
  else if constexpr (field_kind_of<A> == field_kind::version && field_kind_of<B> == field_kind::version)
    return schema_of<A>::name == schema_of<B>::name;
  else
    return false;
}

template <class Entry>
inline constexpr bool is_removal = false;
template <class Message>
inline constexpr bool is_removal<removed_msg<Message>> = true;

/// Whether `Entry` of a later interface is about the live slot `Slot` of the one before.
template <class Entry, class Slot>
constexpr bool entry_is_about() {
  if constexpr (is_gone<typename Slot::kind>)
    return false;
  else if constexpr (is_removal<Entry>)
    return std::is_same_v<typename Entry::message, typename Slot::kind::message>;
  else
    return same_message<typename Entry::message, typename Slot::kind::message>();
}

template <class Slot, class... Entries>
constexpr std::size_t entry_about() {
  constexpr bool match[] = {entry_is_about<Entries, Slot>()..., false};
  std::size_t i = 0;
  while (i < sizeof...(Entries) && !match[i]) ++i;
  return i;
}

template <class Kind, class Other>
inline constexpr bool same_kind = [] {
  if constexpr (Kind::kind != Other::kind)
    return false;
  else if constexpr (Kind::kind == message_kind::call)
    return std::is_same_v<typename Kind::message, typename Other::message> &&
           std::is_same_v<typename Kind::reply, typename Other::reply>;
  else
    return std::is_same_v<typename Kind::message, typename Other::message>;
}();

/// What slot `Slot` of the version before becomes in version `Vsn`, whose entries are `Entries`.
template <std::uint32_t Vsn, class Slot, class... Entries>
constexpr auto next_slot() {
  constexpr std::size_t about = entry_about<Slot, Entries...>();
  if constexpr (about == sizeof...(Entries)) {
    return std::type_identity<Slot>{};  // not listed: kept
  } else {
    using Entry = std::tuple_element_t<about, std::tuple<Entries...>>;
    if constexpr (is_removal<Entry>)
      return std::type_identity<typename Slot::template changed_to<Vsn, gone<typename Slot::kind>>>{};
    else if constexpr (same_kind<Entry, typename Slot::kind>)
      return std::type_identity<Slot>{};  // listed again as it was
    else
      return std::type_identity<typename Slot::template changed_to<Vsn, Entry>>{};
  }
}

/// Whether entry `Entry` of version `Vsn` takes a slot of the version before.
template <class Entry, class... Slots>
constexpr bool entry_has_a_slot() {
  return (entry_is_about<Entry, Slots>() || ...);
}

template <std::uint32_t Vsn, class Previous, class Entries>
struct later_slots;
template <std::uint32_t Vsn, class... Slots, class... Entries>
struct later_slots<Vsn, type_list<Slots...>, type_list<Entries...>> {
  template <class Entry>
  using added = std::conditional_t<is_removal<Entry> || entry_has_a_slot<Entry, Slots...>(), type_list<>,
                                   type_list<slot<Entry, Vsn>>>;
  using type =
      decltype((type_list<typename decltype(next_slot<Vsn, Slots, Entries...>())::type...>{} + ... + added<Entries>{}));
};

// -- the layout of a version --

/// What traces and reports call a slot's message (an emptied one, by the message it took).
template <class Kind>
constexpr std::string_view slot_name() {
  if constexpr (is_gone<Kind>)
    return type_spelling<typename Kind::was::message>();
  else
    return type_spelling<typename Kind::message>();
}

/// An interface's slots, their kinds, and its place in its line: the layout hotswap::interface
/// reads. `Previous` is void for a first version.
template <class Previous, class Slots>
struct slot_layout;
template <class Previous, class... Slots>
struct slot_layout<Previous, type_list<Slots...>> {
  using previous = Previous;
  using slots = type_list<Slots...>;
  static constexpr std::uint32_t vsn = [] {
    if constexpr (std::is_void_v<Previous>)
      return 1u;
    else
      return Previous::vsn + 1;
  }();
  static constexpr std::uint32_t size = sizeof...(Slots);
  static_assert(size < slot_bits && vsn < (boxed_bit >> vsn_shift),
                "hotswap: an interface has fewer than 65535 messages, and 32767 versions");
  template <class Message>
  static constexpr std::uint32_t index_of = index_in<Message, typename Slots::kind...>();
  template <std::size_t I>
  using slot_at = std::tuple_element_t<I, std::tuple<Slots...>>;
  static constexpr std::array<std::string_view, sizeof...(Slots)> message_names{slot_name<typename Slots::kind>()...};
};

template <fixed_string Name, class... Kinds>
struct interface_layout : slot_layout<void, type_list<slot<Kinds, 1>...>> {
  /// The slots' kinds now, the emptied ones left out: what an implementation handles.
  using live_kinds = type_list<Kinds...>;
  /// A hash of the name, and of each message's kind, name and fields (and reply) in order.
  static constexpr std::uint64_t fingerprint = [] {
    std::uint64_t hash = fnv1a(Name.view());
    ((hash = kind_hash<Kinds>(fnv1a(";", hash))), ...);
    return hash;
  }();
  static constexpr std::array<std::uint64_t, 1> lineage{fingerprint};
};

/// A vsn as its decimal digits, for a fingerprint.
template <std::uint32_t Vsn>
inline constexpr auto vsn_text = [] {
  std::array<char, 10> digits{};
  std::size_t size = 0;
  for (std::uint32_t v = Vsn; v; v /= 10) digits[size++] = static_cast<char>('0' + v % 10);
  std::array<char, 11> text{};  // and a NUL
  for (std::size_t i = 0; i < size; ++i) text[i] = digits[size - 1 - i];
  return text;
}();

template <class Kind>
constexpr std::uint64_t slot_hash(std::uint64_t hash) {
  if constexpr (is_gone<Kind>)
    return kind_hash<typename Kind::was>(fnv1a("removed:", hash));
  else
    return kind_hash<Kind>(hash);
}

template <fixed_string Name, class Previous, class... Entries>
struct interface_layout<Name, follows<Previous>, Entries...>
    : slot_layout<Previous,
                  typename later_slots<Previous::vsn + 1, typename Previous::slots, type_list<Entries...>>::type> {
  using base =
      slot_layout<Previous,
                  typename later_slots<Previous::vsn + 1, typename Previous::slots, type_list<Entries...>>::type>;
  using live_kinds = decltype([]<class... Slots>(type_list<Slots...>) {
    return (type_list<>{} + ... +
            std::conditional_t<is_gone<typename Slots::kind>, type_list<>, type_list<typename Slots::kind>>{});
  }(typename base::slots{}));
  /// The version before's, then each slot's vsn and kind (the emptied ones' too), in order.
  static constexpr std::uint64_t fingerprint = []<class... Slots>(type_list<Slots...>) {
    std::uint64_t hash = fnv1a(" follows ", fnv1a(Name.view(), Previous::fingerprint));
    ((hash = slot_hash<typename Slots::kind>(fnv1a(";", fnv1a(std::string_view(vsn_text<Slots::since>.data()), hash)))),
     ...);
    return hash;
  }(typename base::slots{});
  static constexpr auto lineage = [] {
    std::array<std::uint64_t, Previous::lineage.size() + 1> line{};
    for (std::size_t i = 0; i < Previous::lineage.size(); ++i) line[i] = Previous::lineage[i];
    line.back() = fingerprint;
    return line;
  }();
};

// -- checks --

/// Whether `Now` is an earlier version of the schema of `Was` (both versions of one schema).
template <class Was, class Now>
constexpr bool goes_back() {
  if constexpr (std::is_same_v<Was, Now>)
    return false;
  else
    return version_number<Was> > version_number<Now>;
}

/// What is wrong with a later version's change of slot `Slot` (no_error if nothing).
template <class Interface, class Slot>
constexpr auto check_slot() {
  if constexpr (Slot::earlier::size == 0 || is_gone<typename Slot::kind>) {
    return verdict<no_error>{};
  } else {
    using Before = typename decltype([]<class... Earlier>(type_list<Earlier...>) {
      return std::type_identity<std::tuple_element_t<sizeof...(Earlier) - 1, std::tuple<Earlier...>>>{};
    }(typename Slot::earlier{}))::type::kind;
    using Now = typename Slot::kind;
    using M = typename Now::message;
    using Name = interface_name<Interface>;
    if constexpr (is_gone<Before> || Before::kind != Now::kind) {
      return verdict<errors::message_changes_kind<Name, M, Before, Now>>{};
    } else if constexpr (goes_back<typename Before::message, M>()) {
      return verdict<errors::message_goes_back_a_version<Name, M, typename Before::message>>{};
    } else {
      using up = migration_check<typename Before::message, M, context<no_extra, no_key>>;
      if constexpr (!fine<up>) {
        return verdict<errors::message_does_not_migrate<Name, M, error_of<up>>>{};
      } else if constexpr (Now::kind == message_kind::call) {
        using Was = typename Before::reply;
        using Is = typename Now::reply;
        if constexpr (std::is_same_v<Was, Is>) {
          return verdict<no_error>{};
        } else if constexpr (!same_message<Was, Is>()) {
          return verdict<errors::reply_changes_type<Name, M, Was, Is>>{};
        } else if constexpr (goes_back<Was, Is>()) {
          return verdict<errors::reply_changes_type<Name, M, Was, Is>>{};
        } else {
          using down = migration_check<Is, Was, context<no_extra, no_key>>;
          if constexpr (!fine<down>)
            return verdict<errors::message_does_not_migrate<Name, M, error_of<down>>>{};
          else
            return verdict<no_error>{};
        }
      } else {
        return verdict<no_error>{};
      }
    }
  }
}

/// Whether `Entry` is no removal, or one of a message of the version before.
template <class Entry, class... Slots>
constexpr bool removal_found(type_list<Slots...>) {
  return !is_removal<Entry> || (entry_is_about<Entry, Slots>() || ...);
}

template <class Interface, class Previous, class... Entries>
constexpr auto check_later() {
  using Name = interface_name<Interface>;
  if constexpr (Previous::name != Interface::name) {
    return verdict<errors::later_interface_is_renamed<Name, interface_name<Previous>>>{};
  } else {
    constexpr bool found[] = {removal_found<Entries>(typename Previous::slots{})..., false};
    constexpr std::size_t stray = [&] {
      std::size_t i = 0;
      while (found[i]) ++i;
      return i;
    }();
    if constexpr (stray < sizeof...(Entries))
      return verdict<errors::removed_message_is_not_in_the_previous_version<
          Name, typename std::tuple_element_t<stray, std::tuple<Entries...>>::message>>{};
    else
      return []<class... Slots>(type_list<Slots...>) {
        return first_of<decltype(check_slot<Interface, Slots>())...>{};
      }(typename Interface::slots{});
  }
}

/// The check of an interface when it is defined: each message listed once, and for a later
/// version, each change allowed.
template <class Interface, class... Kinds>
constexpr auto check_versions(std::type_identity<Kinds>...) {
  return verdict<no_error>{};
}
template <class Interface, class Previous, class... Entries>
constexpr auto check_versions(std::type_identity<follows<Previous>>, std::type_identity<Entries>...) {
  return check_later<Interface, Previous, Entries...>();
}

/// Whether a handle of `Old` may talk to a server that runs `New`: `New` is `Old`, or a later
/// version of it.
template <class Old, class New>
inline constexpr bool follows_from = Old::vsn <= New::vsn&& New::lineage[Old::vsn - 1] == Old::fingerprint;

template <class Old, class New>
constexpr auto check_compatible() {
  if constexpr (follows_from<Old, New>) {
    return verdict<no_error>{};
  } else {
    constexpr std::size_t first = []<class... Kinds>(type_list<Kinds...>) {
      constexpr bool kept[] = {[] {
                                 constexpr auto index = New::template index_of<typename Kinds::message>;
                                 if constexpr (index == New::size)
                                   return false;
                                 else
                                   return same_kind<Kinds, typename New::template kind_at<index>>;
                               }()...,
                               false};
      std::size_t i = 0;
      while (i < sizeof...(Kinds) && kept[i]) ++i;
      return i;
    }(typename Old::kinds{});
    using Message = decltype([]<class... Kinds>(type_list<Kinds...>) {
      if constexpr (first < sizeof...(Kinds))
        return std::type_identity<typename std::tuple_element_t<first, std::tuple<Kinds...>>::message>{};
      else
        return std::type_identity<void>{};
    }(typename Old::kinds{}));
    return verdict<
        errors::interface_does_not_follow<interface_name<Old>, interface_name<New>, typename Message::type>>{};
  }
}

// A class, not a variable's initializer, reports it: clang takes a variable whose initializer
// failed for one that is not a constant, a second error.
template <class Old, class New>
struct compatibility {
  static_assert(sizeof(error_of<decltype(check_compatible<Old, New>())>) != 0);  // the first message not kept, once
  static constexpr bool value = true;
};

}  // namespace hotswap::detail

namespace hotswap::detail {

/// The name of the type of the exception being handled, as the compiler spells it.
template <class = void>
std::string thrown_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (!type) return {};
  int status = 0;
  char* readable = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  std::string name = readable ? readable : type->name();
  std::free(readable);
  return name;
}

/// Runs `body`, reporting what it throws instead of letting it cross the table boundary.
template <class Body>
void report_failure(outcome& result, Body&& body) noexcept {
  try {
    body();
  } catch (const std::exception& thrown) {
    try {
      result = {true, thrown.what(), thrown_type()};
    } catch (...) {  // out of memory
      result.failed = true;
    }
  } catch (...) {
    try {
      result = {true, "an exception not derived from std::exception", thrown_type()};
    } catch (...) {
      result.failed = true;
    }
  }
}

/// Runs the handler of slot kind `Kind` on a message sent as `Sent` (the same kind, or the one
/// the slot held at an earlier interface vsn): the message migrated up, and a call's reply
/// migrated down to what the caller waits for.
template <class Implementation, class Kind, class Sent>
void handle_sent(void* state, envelope& message, outcome& result) noexcept {
  using M = typename Kind::message;
  using Arrived = typename Sent::message;
  using S = typename Implementation::state;
  using none = std::conditional_t<sizeof(Arrived) != 0, no_extra, void>;  // complete where it is used
  struct consume {
    envelope& message;
    ~consume() { discard_sent<Arrived>(message, message.kind); }
  } consumed{message};
  S& s = *static_cast<S*>(state);
  Arrived& arrived = unpack_sent<Arrived>(message);
  auto taken = [&]() -> decltype(auto) {  // the message as this version takes it
    if constexpr (std::is_same_v<Arrived, M>)
      return std::move(arrived);
    else
      return migrate_top<M>(Arrived(std::move(arrived)), none{});
  };
  if constexpr (defers_reply_of<Implementation, Kind>()) {  // it answers through a reply_to
    using R = typename Kind::reply;
    static_assert(std::is_same_v<R, typename Sent::reply>,
                  "hotswap: a call whose reply changed between versions of the interface answers by returning "
                  "it (the reply is migrated down for the callers built against an earlier version): a "
                  "hotswap::reply_to cannot migrate it");
    reply_slot_base* const slot = static_cast<reply_slot_base*>(message.reply);
    std::optional<deferred<R>> own;
    report_failure(result, [&] {
      own.emplace(slot);
      message.reply = nullptr;  // the handle's now
      Implementation::handle_call(taken(), s, deferred<R>(*own));
    });
    if (result.failed && own && own->hand_back()) message.reply = slot;  // the crash fails it
    // `own` goes: if it was the last copy, unanswered, the caller hears no_reply now
  } else {
    report_failure(result, [&] {
      if constexpr (Kind::kind == message_kind::call) {
        using R = typename Sent::reply;  // what the caller waits for
        auto* slot = static_cast<reply_slot<R>*>(static_cast<reply_slot_base*>(message.reply));
        if constexpr (std::is_same_v<R, typename Kind::reply>)
          slot->answer(R(Implementation::handle_call(taken(), s)));
        else
          slot->answer(migrate_top<R>(typename Kind::reply(Implementation::handle_call(taken(), s)), none{}));
      } else if constexpr (Kind::kind == message_kind::cast) {
        Implementation::handle_cast(taken(), s);
      } else {
        Implementation::handle_info(taken(), s);
      }
    });
  }
}

/// What a server answers a message of a slot its interface emptied (hotswap::removed_msg).
template <class Interface, class Slot>
void refuse_removed(envelope& message) noexcept {
  with_sent_kind<Slot>(sent_vsn_of(message.kind), [&]<class Sent>(std::type_identity<Sent>) {
    discard_sent<typename Sent::message>(message, message.kind);
  });
  if (message.reply)
    static_cast<reply_slot_base*>(message.reply)
        ->fail(errc::wrong_interface, std::string(type_spelling<typename Slot::kind::was::message>()) +
                                          " is not taken since version " + std::to_string(Slot::since) + " of " +
                                          std::string(Interface::name));
}

template <class Implementation, std::size_t I>
void handle(void* state, envelope& message, outcome& result) noexcept {
  using Interface = typename Implementation::interface;
  using Slot = slot_at<Interface, I>;
  if constexpr (is_gone<typename Slot::kind>) {
    (void)state, (void)result;
    refuse_removed<Interface, Slot>(message);
  } else {
    with_sent_kind<Slot>(sent_vsn_of(message.kind), [&]<class Sent>(std::type_identity<Sent>) {
      handle_sent<Implementation, typename Slot::kind, Sent>(state, message, result);
    });
  }
}

template <class Interface, std::size_t I>
void discard_message(envelope& message) noexcept {
  with_sent_kind<slot_at<Interface, I>>(sent_vsn_of(message.kind), [&]<class Sent>(std::type_identity<Sent>) {
    discard_sent<typename Sent::message>(message, message.kind);
  });
}

template <class Implementation>
void* init_state(const void* argument, outcome& result) noexcept {
  using S = typename Implementation::state;
  S* made = nullptr;
  report_failure(result, [&] {
    if constexpr (std::is_void_v<init_argument<Implementation>>)
      made = new S(Implementation::init());
    else
      made = new S(Implementation::init(*static_cast<const init_argument<Implementation>*>(argument)));
  });
  return made;
}

template <class Implementation>
void terminate_state(void* state, const exit_reason& reason) noexcept {
  using S = typename Implementation::state;
  if constexpr (requires(S & s) { Implementation::terminate(reason, s); }) {
    outcome ignored;  // terminate is the last word: what it throws goes nowhere
    report_failure(ignored, [&] { Implementation::terminate(reason, *static_cast<S*>(state)); });
  }
}

template <class Implementation>
void destroy_state(void* state) noexcept {
  delete static_cast<typename Implementation::state*>(state);
}

/// Builds this implementation's state from the old one, which stays intact: the generated
/// migration reads it (copying each part as it is used); a code_change takes a copy of it.
template <class Implementation, int Vsn, class Old>
typename Implementation::state change_from(const Old& old, const extra_of<Implementation>& extra) {
  if constexpr (requires(Old && o) { Implementation::code_change(from_vsn<Vsn>{}, std::move(o), extra); })
    return Implementation::code_change(from_vsn<Vsn>{}, Old(old), extra);
  else if constexpr (writes_code_change<Implementation, Vsn, Old>)
    return Implementation::code_change(from_vsn<Vsn>{}, Old(old));
  else
    return migrate_top<typename Implementation::state>(old, extra);
}

/// A rebuild of the same vsn whose state is now another version of its schema (a development
/// build: code_server_options::development): the state made from the old by the schema's steps,
/// when the old is one of the schema's versions and the steps reach this one. Cost: a migration
/// check per version of the state's schema, for an implementation whose state is a schema
/// version; nothing otherwise.
template <class Implementation>
void* rebuilt_state(void* old_state, std::uint64_t old_fingerprint, const extra_of<Implementation>& extra,
                    outcome& result) {
  using S = typename Implementation::state;
  void* made = nullptr;
  if constexpr (field_kind_of<S> == field_kind::version) {
    using Schema = schema_of<S>;
    [&]<int... Offset>(std::integer_sequence<int, Offset...>) {
      auto one = [&]<class Old>(std::type_identity<Old>) {
        if constexpr (!std::is_same_v<Old, S>) {
          using check = migration_check<Old, S, context<extra_of<Implementation>, no_key>>;
          if (value_fingerprint<Old> != old_fingerprint) return;
          if constexpr (fine<check>)
            made = new S(migrate_top<S>(*static_cast<const Old*>(old_state), extra));
          else
            result = {true, "the state changed from " + std::string(type_spelling<Old>()) + " to " +
                                std::string(type_spelling<S>()) + ", which the schema's steps do not migrate: " +
                                std::string(type_spelling<error_of<check>>())};
        }
      };
      (one(std::type_identity<typename Schema::template type_of<Schema::oldest_vsn + Offset>>{}), ...);
    }
    (std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
  }
  return made;
}

template <class Implementation, class... Versions>
void* change_state(void* old_state, std::uint64_t old_fingerprint, int old_vsn, const extra_of<Implementation>& extra,
                   outcome& result, state_history<Versions...>) {
  using S = typename Implementation::state;
  void* made = nullptr;
  bool known = false;
  report_failure(result, [&] {
    (void)((Versions::vsn == old_vsn && (known = true) &&
            (value_fingerprint<typename Versions::type> == old_fingerprint
                 ? (made = new S(change_from<Implementation, Versions::vsn>(
                        *static_cast<const typename Versions::type*>(old_state), extra)),
                    true)
                 : (result = {true, "vsn " + std::to_string(old_vsn) + " is declared with state " +
                                        std::string(type_spelling<typename Versions::type>()) +
                                        ", but the server holds a state of another type"},
                    true))) ||
           ...);
  });
  if (!known && !result.failed) {
    if (old_fingerprint == value_fingerprint<S>) return old_state;  // the same state type: handed on as it is
    if (old_vsn == Implementation::vsn) {                           // a rebuild of this vsn
      report_failure(result, [&] { made = rebuilt_state<Implementation>(old_state, old_fingerprint, extra, result); });
      if (made || result.failed) return made;
      result = {true, "this rebuild of vsn " + std::to_string(old_vsn) + " holds its state as " +
                          std::string(type_spelling<S>()) +
                          ", and the server's is not another version of its schema: make the new state a new "
                          "version of the old one's schema"};
      return nullptr;
    }
    result = {true, std::string(type_spelling<Implementation>()) + " does not know the state of vsn " +
                        std::to_string(old_vsn) + ": list it in state_history"};
  }
  return made;
}

/// Whether the implementation's state goes down to `Old` by the generated migration (no extra).
template <class Implementation, class Old>
using down_check = migration_check<typename Implementation::state, Old, context<no_extra, no_key>>;

template <class Implementation, class... Versions>
void* down_state(void* state, int vsn, std::uint64_t fingerprint, outcome& result, state_history<Versions...>) {
  using S = typename Implementation::state;
  if (fingerprint == value_fingerprint<S>) return state;  // the same state: handed on
  void* made = nullptr;
  report_failure(result, [&] {
    auto one = [&]<class Old>(std::type_identity<Old>) {
      using none = std::conditional_t<sizeof(Old) != 0, no_extra, void>;  // complete where it is used
      if constexpr (fine<down_check<Implementation, Old>>)
        made = new Old(migrate_top<Old>(*static_cast<const S*>(state), none{}));
    };
    (void)one;  // an empty history
    (void)((Versions::vsn == vsn && value_fingerprint<typename Versions::type> == fingerprint &&
            (one(std::type_identity<typename Versions::type>{}), true)) ||
           ...);
  });
  return made;
}

template <class Implementation>
void* down(void* state, int vsn, std::uint64_t fingerprint, outcome& result) noexcept {
  return down_state<Implementation>(state, vsn, fingerprint, result, history_of<Implementation>{});
}

template <class Implementation>
void* change_code(void* old_state, std::uint64_t old_fingerprint, int old_vsn, const extra_ref& extra,
                  outcome& result) noexcept {
  using Extra = extra_of<Implementation>;
  if (!extra.value) {
    Extra none{};
    return change_state<Implementation>(old_state, old_fingerprint, old_vsn, none, result,
                                        history_of<Implementation>{});
  }
  if (extra.fingerprint != value_fingerprint<Extra>) {
    result = {true, "the extra given is a " + std::string(extra.type) + "; " +
                        std::string(type_spelling<Implementation>()) + " takes a " +
                        std::string(type_spelling<Extra>())};
    return nullptr;
  }
  return change_state<Implementation>(old_state, old_fingerprint, old_vsn, *static_cast<const Extra*>(extra.value),
                                      result, history_of<Implementation>{});
}

template <class Argument>
inline constexpr std::uint64_t argument_fingerprint = value_fingerprint<Argument>;
template <>
inline constexpr std::uint64_t argument_fingerprint<void> = 0;
template <class Argument>
inline constexpr std::string_view argument_spelling = type_spelling<Argument>();
template <>
inline constexpr std::string_view argument_spelling<void> = "nothing";

template <class Implementation>
struct table_parts {
  using interface = typename Implementation::interface;
  static constexpr auto handlers = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<handler_fn, sizeof...(I)>{&handle<Implementation, I>...};
  }
  (std::make_index_sequence<interface::size>{});
  static constexpr auto discards = []<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<discard_fn, sizeof...(I)>{&discard_message<interface, I>...};
  }
  (std::make_index_sequence<interface::size>{});
  static constexpr auto since = []<class... Slots>(type_list<Slots...>) {
    return std::array<std::uint32_t, sizeof...(Slots)>{Slots::since...};
  }(typename interface::slots{});
};

/// What inspect shows of a server's state: `Implementation::format_status(state)` if it has one
/// (OTP's format_status: what crash reports and the control socket's views show), else the state.
template <class Implementation>
std::size_t inspect_status(const void* state, char* out, std::size_t size) noexcept {
  using S = typename Implementation::state;
  try {
    const auto shown = Implementation::format_status(*static_cast<const S*>(state));
    return inspect_state<std::remove_cvref_t<decltype(shown)>>(&shown, out, size);
  } catch (...) {  // format_status threw: nothing is shown
    return 0;
  }
}

template <class Implementation>
constexpr auto inspect_of() -> std::size_t (*)(const void*, char*, std::size_t) noexcept {
  using S = typename Implementation::state;
  if constexpr (requires(const S& s) { Implementation::format_status(s); }) {
    using shown = std::remove_cvref_t<decltype(Implementation::format_status(std::declval<const S&>()))>;
    static_assert(inspect_enabled<shown>(),
                  "hotswap: format_status returns what inspect prints: numbers, strings, containers of them, "
                  "hotswap::secret, and versions of schemas that enable inspect");
    return &inspect_status<Implementation>;
  } else {
    return inspect_state_of<S>();
  }
}

template <class Implementation>
constexpr implementation_table make_table() {
  using parts = table_parts<Implementation>;
  using interface = typename Implementation::interface;
  using S = typename Implementation::state;
  return {interface::fingerprint,
          interface::name,
          type_spelling<Implementation>(),
          Implementation::vsn,
          value_fingerprint<S>,
          readable_name<S>,  // what status, state and tree show: the same on every compiler
          interface::size,
          interface::template index_of<down_message>,
          interface::template index_of<exit_message>,
          parts::handlers.data(),
          parts::discards.data(),
          interface::message_names.data(),
          interface::vsn,
          interface::lineage.data(),
          parts::since.data(),
          argument_fingerprint<init_argument<Implementation>>,
          argument_spelling<init_argument<Implementation>>,
          plain_data<S>(),
          &init_state<Implementation>,
          &terminate_state<Implementation>,
          &destroy_state<Implementation>,
          &change_code<Implementation>,
          &down<Implementation>,
          &state_bytes<S>,
          inspect_of<Implementation>()};
}

// A class, not a function, reports the error: clang takes a function whose instantiation failed
// for one that cannot be evaluated, and would report every constant computed from it too.
template <class Implementation>
struct checked_table {
  static_assert(sizeof(error_of<implementation_check<Implementation>>) != 0);  // the first mistake, once
  static constexpr implementation_table table = [] {
    if constexpr (fine<implementation_check<Implementation>>)
      return make_table<Implementation>();
    else
      return implementation_table{};
  }();
};

}  // namespace hotswap::detail

namespace hotswap::detail {

template <class Module>
struct lease {
  std::shared_ptr<const Module> code;
  server_core* server = nullptr;  // bound before the server's init runs

  explicit lease(std::shared_ptr<const Module> of) : code(std::move(of)) {
    const spin_guard hold(code->lock_);
    code->leases_.push_back(this);
  }
  ~lease() {
    const spin_guard hold(code->lock_);
    std::erase(code->leases_, this);
  }
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  void bind(server_core& running) noexcept {
    const spin_guard hold(code->lock_);
    server = &running;
  }
};

template <class Module>
std::shared_ptr<const void> make_lease(const std::shared_ptr<const void>& version) {
  return version ? std::make_shared<lease<Module>>(std::static_pointer_cast<const Module>(version)) : nullptr;
}
template <class Module>
void bind_lease(const void* held, server_core& server) noexcept {
  if (held) static_cast<lease<Module>*>(const_cast<void*>(held))->bind(server);
}
/// How the program leases a module to servers (a module's own servers get theirs through it).
template <class Module>
inline constexpr lease_maker leases_of{&make_lease<Module>, &bind_lease<Module>};

/// A module's table, reached only to lease it.
template <class Module>
struct module_access {
  static const implementation_table& table(const Module& version) noexcept { return *version.table_; }
};

/// A module's table with a lease on the module, not yet bound to a server.
struct leased_table {
  const implementation_table* table;
  std::shared_ptr<const void> lease;
};

/// The table of `code` for a server whose init takes `Argument` (void: none), leased.
template <class Argument, class Module>
result<leased_table> lease_to_start(const std::shared_ptr<const Module>& code) {
  if (!code) return error{errc::no_module, "no module given"};
  const implementation_table& table = module_access<Module>::table(*code);
  if (table.init_argument_fingerprint != argument_fingerprint<Argument>)
    return error{errc::wrong_argument, code->implementation() + " (module " + code->name() + ") takes " +
                                           std::string(table.init_argument_type) + " in init, not " +
                                           std::string(argument_spelling<Argument>)};
  return leased_table{&table, make_lease<Module>(code)};
}

/// The table of `code` for a running server, leased and bound to it.
template <class Module>
result<leased_table> lease_to_server(const std::shared_ptr<const Module>& code, server_core* server) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (!code) return error{errc::no_module, "no module given"};
  leased_table leased{&module_access<Module>::table(*code), make_lease<Module>(code)};
  bind_lease<Module>(leased.lease.get(), *server);
  return leased;
}

/// A reference to `server` unless it is already being freed.
inline bool try_acquire(server_core& server) noexcept {
  std::uint32_t count = server.references.load(std::memory_order_relaxed);
  while (count != 0)
    if (server.references.compare_exchange_weak(count, count + 1, std::memory_order_acq_rel)) return true;
  return false;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/modules/load_checks.hpp ----
// The code server's policy: whether a module's note fits the program (its ABI, the interface
// asked for, the schemas it knows) and the module's loaded versions (the same interface, a newer
// vsn, an old version no server uses), and how the servers in the way are named.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>


namespace hotswap::detail {

/// What to do about servers that keep an old version in use.
inline constexpr std::string_view purge_advice =
    ": change their code or stop them first (or purge with purge_mode::force)";

/// `counter vsn 1 is still used by server 4 (counter), server 7`.
template <class Version, class Handle>
std::string describe_users(const Version& version, const std::vector<Handle>& using_it) {
  std::string text = version.name() + " vsn " + std::to_string(version.vsn()) + " is still used by ";
  for (std::size_t i = 0; i < using_it.size(); ++i) text += (i ? ", " : "") + using_it[i].core()->label();
  return text;
}

/// Whether an interface of fingerprint `interface` is one of the versions in `lineage`.
inline bool in_lineage(const std::vector<std::uint64_t>& lineage, std::uint64_t interface) {
  return std::find(lineage.begin(), lineage.end(), interface) != lineage.end();
}

/// The first difference between the messages of two interfaces, said of the later one.
inline std::string first_message_change(const std::vector<module_note_fields::message_slot>& before,
                                        const std::vector<module_note_fields::message_slot>& after) {
  for (const auto& message : before) {
    if (message.slot >= after.size()) return message.name + " is not taken any more";
    const auto& now = after[message.slot];
    if (now.fingerprint != message.fingerprint)
      return message.name == now.name ? message.name + " is taken with another reply, or as another kind"
                                      : "in the place of " + message.name + " it takes " + now.name;
  }
  if (after.size() > before.size()) return after[before.size()].name + " is added";
  return "its messages are the same, in another interface";
}

/// Checks a module's note against the program (`interface`: the one asked for, 0 for any;
/// `known`: the program's schema registry) and the module's loaded versions (`now`, `before`:
/// its current and old ones, or null); `older`: a release going down loads an older vsn;
/// `development`: another build of the current vsn is taken too.
template <class ModulePtr, class Registry>
result<void> check_fits(const module_note_fields& note, const std::string& path, std::uint64_t interface,
                        std::string_view interface_name, const ModulePtr& now, const ModulePtr& before,
                        const Registry& known, bool older = false, bool development = false) {
  if (note.abi != abi_fingerprint)
    return file_error(errc::abi_mismatch, path,
                      "built for another ABI: the module has \"" + note.abi_text + "\", this program \"" +
                          std::string(abi_description) + "\"");
  if (interface && !in_lineage(note.interface_lineage, interface))
    return file_error(errc::wrong_interface, path,
                      note.implementation + " implements " + note.interface_name +
                          (note.interface_name == interface_name
                               ? " with other messages than this program's, and not as a declared later version of it"
                               : ", not this program's " + std::string(interface_name)));
  if (const ModulePtr& loaded = now ? now : before;
      loaded && !in_lineage(note.interface_lineage, loaded->interface_fingerprint()) &&
      !in_lineage(loaded->interface_lineage(), note.interface))
    return file_error(errc::wrong_interface, path,
                      note.name + " vsn " + std::to_string(note.vsn) + " implements " + note.interface_name +
                          " differently from the loaded vsn " + std::to_string(loaded->vsn()) + " (" +
                          loaded->interface_name() + "), and not as a declared later (or earlier) version of it: " +
                          first_message_change(loaded->messages(), note.messages));
  if (now && development && !older && note.vsn == now->vsn()) {
    if (note.build == now->build())
      return file_error(
          errc::not_newer, path,
          note.name + " vsn " + std::to_string(note.vsn) + " build " + note.build + " is the build loaded already");
  } else if (now && (older ? note.vsn >= now->vsn() : note.vsn <= now->vsn())) {
    return file_error(errc::not_newer, path,
                      note.name + " vsn " + std::to_string(note.vsn) + " is not " + (older ? "older" : "newer") +
                          " than the current vsn " + std::to_string(now->vsn()) +
                          (!older && note.vsn == now->vsn() && note.build != now->build()
                               ? " (another build of it: a code server in development mode takes that)"
                               : ""));
  }
  if (now && before)
    if (const auto using_it = before->servers(); !using_it.empty())
      return file_error(
          errc::not_purged, path,
          "the old version must go first: " + describe_users(*before, using_it) + std::string(purge_advice));
  for (const auto& version : note.schemas)
    if (const auto found = known.find(version.schema, version.vsn); found && found->fingerprint != version.fingerprint)
      return file_error(
          errc::schema_conflict, path,
          "its schema " + version.schema + " version " + std::to_string(version.vsn) +
              " differs from this program's: " +
              field_differences(described_fields(version.description), described_fields(*found), "in it", "here") +
              " (it has " + version.description + ", this program " + described(*found) + ")");
  return {};
}

}  // namespace hotswap::detail
// ---- hotswap/detail/modules/module_note.hpp ----
// What HOTSWAP_MODULE puts in a module: its note (one fact a line: ABI, name, vsn, implementation,
// interface, its state, the argument its init takes if any, the vsns it changes code from, and
// every schema version its states and extra hold), checked by the program before any of the
// module's code runs, and its descriptor. Cost: one visit per schema version reached from the
// state, its history and its extra; a schema reached twice is written once.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>


namespace hotswap::errors {
template <class Name>
struct module_name_is_invalid {
  static_assert(reported<module_name_is_invalid>,
                "hotswap: a module's name names its files: use letters, digits, '.', '_' and '-' only, not first '.'");
};

template <class Name>
struct step_name_is_invalid {
  static_assert(reported<step_name_is_invalid>,
                "hotswap: a step's name is what a release manifest's \"apply\" names: use letters, digits, '.', '_' "
                "and '-' only, not first '.', '_' or '-', at most 64");
};
template <class Function>
struct step_is_not_a_function_of_no_argument {
  static_assert(reported<step_is_not_a_function_of_no_argument>,
                "hotswap: HOTSWAP_MODULE_STEP takes a function of no argument returning void (it may throw) or "
                "hotswap::result<void>");
};

}  // namespace hotswap::errors

namespace hotswap::detail {

template <class T, class Visit>
constexpr void visit_schemas_in(Visit& visit);

/// Calls `visit(std::type_identity<V>{})` for every version V of `Schema`, then for the schemas
/// their fields hold.
template <class Schema, class Visit>
constexpr void visit_schema_versions(Visit& visit) {
  [&]<int... Offset>(std::integer_sequence<int, Offset...>) {
    auto one = [&]<class V>(std::type_identity<V> version) {
      visit(version);
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (visit_schemas_in<field_type<V, I>>(visit), ...);
      }
      (std::make_index_sequence<field_count<V>>{});
    };
    (one(std::type_identity<typename Schema::template type_of<Schema::oldest_vsn + Offset>>{}), ...);
  }
  (std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
}

/// The schemas a type holds: its own if it is a schema version, those of its elements if it is
/// a standard container.
template <class T, class Visit>
constexpr void visit_schemas_in(Visit& visit) {
  if constexpr (field_kind_of<T> == field_kind::version)
    visit_schema_versions<schema_of<T>>(visit);
  else
    [&]<class... Held>(type_list<Held...>) { (visit_schemas_in<Held>(visit), ...); }(held_types<T>{});
}

/// The schema history a module carries: the schemas its state, the states it upgrades from and
/// its extra hold (each schema with every version it lists). A schema may come more than once.
template <class Implementation, class Visit>
constexpr void visit_module_schemas(Visit& visit) {
  visit_schemas_in<typename Implementation::state>(visit);
  [&]<class... Versions>(state_history<Versions...>) {
    (visit_schemas_in<typename Versions::type>(visit), ...);
  }(history_of<Implementation>{});
  visit_schemas_in<extra_of<Implementation>>(visit);
}

/// The text of a module's note: one fact a line, readable with `readelf -p hotswap_module`.
template <fixed_string Name, class Implementation, class Sink>
constexpr void put_module_note(Sink& sink) {
  using interface = typename Implementation::interface;
  sink.put("hotswap module 1\nabi ");
  put_hex(sink, abi_fingerprint);
  sink.put(" ");
  sink.put(abi_description);
  sink.put("\nname ");
  sink.put(Name.view());
  sink.put("\nvsn ");
  put_number(sink, static_cast<std::size_t>(Implementation::vsn));
  sink.put("\nimplementation ");
  sink.put(type_spelling<Implementation>());
  sink.put("\ninterface ");
  put_hex(sink, interface::fingerprint);
  sink.put(" ");
  sink.put(interface::name);
  for (std::size_t i = 0; i < interface::lineage.size(); ++i) {  // interface-version 1 <fingerprint>
    sink.put("\ninterface-version ");
    put_number(sink, i + 1);
    sink.put(" ");
    put_hex(sink, interface::lineage[i]);
  }
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto message = [&]<std::size_t Index>(std::integral_constant<std::size_t, Index>) {
      using Slot = slot_at<interface, Index>;  // message <slot> <since> <fingerprint> <name>
      sink.put("\nmessage ");
      put_number(sink, Index);
      sink.put(" ");
      put_number(sink, static_cast<std::size_t>(Slot::since));
      sink.put(" ");
      put_hex(sink, slot_hash<typename Slot::kind>(fnv1a_start));
      sink.put(" ");
      sink.put(slot_name<typename Slot::kind>());
    };
    (message(std::integral_constant<std::size_t, I>{}), ...);
  }
  (std::make_index_sequence<interface::size>{});
  sink.put("\nstate ");  // what a release checks a running server against before anything moves
  put_hex(sink, value_fingerprint<typename Implementation::state>);
  sink.put("\n");
  if constexpr (init_takes_argument<Implementation>) {  // what a release that starts a server checks
    sink.put("init ");
    sink.put(argument_spelling<init_argument<Implementation>>);
    sink.put("\n");
  }
  [&]<class... Versions>(state_history<Versions...>) {
    auto from = [&]<class Earlier>(std::type_identity<Earlier>) {
      using Old = typename Earlier::type;
      sink.put("from ");  // from 1 <fingerprint of vsn 1's state>
      put_number(sink, static_cast<std::size_t>(Earlier::vsn));
      sink.put(" ");
      put_hex(sink, value_fingerprint<Old>);
      if constexpr (fine<down_check<Implementation, Old>>) {
        sink.put("\ndown ");  // down 1: this code makes vsn 1's state (a release going down)
        put_number(sink, static_cast<std::size_t>(Earlier::vsn));
      } else {
        sink.put("\nno-down ");  // no-down 1 <the first mistake of the migration down>
        put_number(sink, static_cast<std::size_t>(Earlier::vsn));
        sink.put(" ");
        sink.put(type_spelling<error_of<down_check<Implementation, Old>>>());
      }
      sink.put("\n");
    };
    (void)from;  // an empty history
    (from(std::type_identity<Versions>{}), ...);
  }(history_of<Implementation>{});
  std::array<std::uint64_t, 256> seen{};  // a schema reached twice is written once
  std::size_t seen_count = 0;
  auto line = [&]<class V>(std::type_identity<V>) {  // schema Account 2 <fingerprint> <description>
    for (std::size_t i = 0; i < seen_count; ++i)
      if (seen[i] == fnv1a(description<V>)) return;
    if (seen_count < seen.size()) seen[seen_count++] = fnv1a(description<V>);
    sink.put("schema ");
    sink.put(schema_of<V>::name);
    sink.put(" ");
    put_number(sink, static_cast<std::size_t>(version_number<V>));
    sink.put(" ");
    put_hex(sink, fnv1a(description<V>));
    sink.put(" ");  // the fields, so that a conflict can say which differ
    sink.put(description<V>);
    sink.put("\n");
  };
  visit_module_schemas<Implementation>(line);
}

template <fixed_string Name, class Implementation>
constexpr auto make_module_note() {
  constexpr std::size_t size = [] {
    length_sink counter;
    put_module_note<Name, Implementation>(counter);
    return counter.size;
  }();
  chars_sink<size + 1> text;  // and a NUL
  put_module_note<Name, Implementation>(text);
  return text.chars;
}

/// Stamped into the module's `hotswap_module` section by HOTSWAP_MODULE.
template <fixed_string Name, class Implementation>
inline constexpr auto module_note = [] {
  if constexpr (fine<implementation_check<Implementation>>)
    return make_module_note<Name, Implementation>();
  else
    return (void)checked_table<Implementation>::table, std::array<char, 1>{};  // reports the implementation's mistake
}();

template <fixed_string Name>
using module_name_check = std::conditional_t<valid_module_name(Name.view()), no_error,
                                             errors::module_name_is_invalid<spelled<errors::schema_named, Name>>>;

template <class Implementation>
void describe_schemas(std::vector<version_info>& out) {
  auto add = [&]<class V>(std::type_identity<V>) { out.push_back(describe_version<V>()); };
  visit_module_schemas<Implementation>(add);
}

template <class Implementation>
inline constexpr module_descriptor make_descriptor(const char* note) {
  return {descriptor_magic,
          note,
          &checked_table<Implementation>::table,
          &describe_schemas<Implementation>,
          &attach_module<Implementation>,
          &module_steps<Implementation>};
}

// -- steps (HOTSWAP_MODULE_STEP) --

/// A step's line of the note, a piece of the hotswap_module section of its own (NUL-ended, as
/// the note is): `step warm_cache`. The note's reader reads every piece of the section.
template <fixed_string Name>
inline constexpr auto step_note = [] {
  constexpr std::string_view head = "step ";
  std::array<char, head.size() + Name.view().size() + 2> text{};  // a newline and a NUL
  for (std::size_t i = 0; i < head.size(); ++i) text[i] = head[i];
  for (std::size_t i = 0; i < Name.view().size(); ++i) text[head.size() + i] = Name.view()[i];
  text[text.size() - 2] = '\n';
  return text;
}();

template <fixed_string Name>
using step_name_check = std::conditional_t<valid_step_name(Name.view()), no_error,
                                           errors::step_name_is_invalid<spelled<errors::schema_named, Name>>>;

/// Whether `F` is what HOTSWAP_MODULE_STEP takes: a function of no argument returning void or
/// hotswap::result<void>.
template <class F>
constexpr bool is_step_function() {
  if constexpr (!std::is_invocable_v<F>)
    return false;
  else
    return std::is_void_v<std::invoke_result_t<F>> || std::is_same_v<std::invoke_result_t<F>, result<void>>;
}

template <auto Function>
using step_function_check = std::conditional_t<is_step_function<decltype(Function)>(), no_error,
                                               errors::step_is_not_a_function_of_no_argument<decltype(Function)>>;

/// Runs a step, in the module: what it throws, or the error it returns, is said in `result`.
template <auto Function>
void run_step(outcome& result) noexcept {
  if constexpr (is_step_function<decltype(Function)>())  // (else step_function_check reports it)
    report_failure(result, [&] {
      if constexpr (std::is_void_v<std::invoke_result_t<decltype(Function)>>) {
        Function();
      } else if (const hotswap::result<void> done = Function(); !done) {
        result = {true, done.error().what.empty() ? std::string(to_string(done.error().code)) : done.error().what};
      }
    });
}

}  // namespace hotswap::detail
// ---- hotswap/detail/modules/module_seal.hpp ----
// A module's seal: a digest of its file, and optionally a signature of that digest, which
// hotswap-seal writes after the link (hotswap_add_module runs it) into a section HOTSWAP_MODULE
// reserves. The code server recomputes the digest over exactly the bytes it read, so a file torn
// by a rebuild or a copy that was not atomic, or modified since it was built, is refused before
// any of its code runs (checks of shape cannot see a torn file: each half is well formed). Given
// trusted keys, it also refuses a module not signed by one of them. SHA-256 and Ed25519 are
// OpenSSL's (libcrypto); functions are templates only so that a program that loads no module
// does not compile them.

#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

// ---- hotswap/detail/modules/libcrypto.hpp ----
// The part of OpenSSL's libcrypto (3.x) the seal check calls, declared here: <openssl/evp.h>
// alone would cost 6% of what including hotswap does, in every file. The declarations are
// OpenSSL's own, to the letter: programs/hotswap_seal.cpp includes both, which compiles only if
// they agree, and checks the two constants against OpenSSL's macros.

#include <cstddef>
#include <utility>

extern "C" {
struct evp_md_st;
struct evp_md_ctx_st;
struct evp_pkey_st;
struct evp_pkey_ctx_st;
struct engine_st;
struct ossl_lib_ctx_st;
struct ossl_decoder_ctx_st;
}

namespace hotswap::detail::libcrypto {

extern "C" {
// <openssl/evp.h>
evp_md_ctx_st* EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(evp_md_ctx_st* ctx);
const evp_md_st* EVP_sha256(void);
int EVP_DigestInit_ex(evp_md_ctx_st* ctx, const evp_md_st* type, engine_st* impl);
int EVP_DigestUpdate(evp_md_ctx_st* ctx, const void* d, std::size_t cnt);
int EVP_DigestFinal_ex(evp_md_ctx_st* ctx, unsigned char* md, unsigned int* s);
int EVP_DigestVerifyInit(evp_md_ctx_st* ctx, evp_pkey_ctx_st** pctx, const evp_md_st* type, engine_st* e,
                         evp_pkey_st* pkey);
int EVP_DigestVerify(evp_md_ctx_st* ctx, const unsigned char* sigret, std::size_t siglen, const unsigned char* tbs,
                     std::size_t tbslen);
void EVP_PKEY_free(evp_pkey_st* pkey);
int EVP_PKEY_get_base_id(const evp_pkey_st* pkey);
int EVP_PKEY_get_raw_public_key(const evp_pkey_st* pkey, unsigned char* pub, std::size_t* len);
// <openssl/err.h>
int ERR_set_mark(void);
int ERR_pop_to_mark(void);
// <openssl/decoder.h>
ossl_decoder_ctx_st* OSSL_DECODER_CTX_new_for_pkey(evp_pkey_st** pkey, const char* input_type, const char* input_struct,
                                                   const char* keytype, int selection, ossl_lib_ctx_st* libctx,
                                                   const char* propquery);
int OSSL_DECODER_from_data(ossl_decoder_ctx_st* ctx, const unsigned char** pdata, std::size_t* pdata_len);
void OSSL_DECODER_CTX_free(ossl_decoder_ctx_st* ctx);
}

/// A libcrypto object, freed by `Free` with its owner. (Not a std::unique_ptr with a deleter:
/// each such specialization costs 13 M compiler instructions in every file including hotswap.)
template <class T, void (*Free)(T*)>
class owned {
 public:
  explicit owned(T* object = nullptr) noexcept : object_(object) {}
  owned(owned&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
  owned& operator=(owned&& other) noexcept {
    std::swap(object_, other.object_);
    return *this;
  }
  ~owned() { reset(); }
  T* get() const noexcept { return object_; }
  explicit operator bool() const noexcept { return object_ != nullptr; }
  void reset() noexcept {
    if (object_) Free(std::exchange(object_, nullptr));
  }

 private:
  T* object_;
};

inline constexpr int ed25519 = 1087;          // EVP_PKEY_ED25519 (NID_ED25519)
inline constexpr int public_key_part = 0x86;  // EVP_PKEY_PUBLIC_KEY

}  // namespace hotswap::detail::libcrypto

namespace hotswap::detail {

/// The `hotswap_seal` section. All but the marker is zero until hotswap-seal writes it, and is
/// read as zeros while hashing (the digest cannot cover itself).
struct module_seal {
  char marker[16];
  unsigned char digest[32];     ///< SHA-256 of the file, this payload read as zeros
  unsigned char signature[64];  ///< Ed25519 signature of seal_message(digest); zeros: unsigned
  unsigned char signer[32];     ///< the signer's public key (raw); zeros: unsigned
};
static_assert(sizeof(module_seal) == 144 && offsetof(module_seal, digest) == 16);
// (An array, not a string_view of 16 chars: that constructor alone would cost 1.5% of what
// including hotswap does, checking the iterator concepts of its overloads.)
inline constexpr char seal_marker[sizeof(module_seal::marker)] = "hotswap seal 1";
inline constexpr std::size_t seal_payload = sizeof(module_seal) - sizeof seal_marker;

using seal_digest = std::array<unsigned char, 32>;
using md_context = libcrypto::owned<evp_md_ctx_st, libcrypto::EVP_MD_CTX_free>;

/// What is signed: the digest, under a label of its own (a signature made for anything else
/// never verifies as a seal).
template <class = void>
std::string seal_message(const seal_digest& digest) {
  return std::string("hotswap module seal 1\n") +
         std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

/// The digest of `file` whose seal starts at `seal_at`, its payload read as zeros.
template <class = void>
seal_digest digest_of_module(std::string_view file, std::size_t seal_at) {
  const md_context hashing(libcrypto::EVP_MD_CTX_new());
  static constexpr unsigned char zeros[seal_payload] = {};
  const std::size_t payload_at = seal_at + sizeof seal_marker;
  seal_digest digest{};
  unsigned int size = 0;
  if (!hashing || !libcrypto::EVP_DigestInit_ex(hashing.get(), libcrypto::EVP_sha256(), nullptr) ||
      !libcrypto::EVP_DigestUpdate(hashing.get(), file.data(), payload_at) ||
      !libcrypto::EVP_DigestUpdate(hashing.get(), zeros, seal_payload) ||
      !libcrypto::EVP_DigestUpdate(hashing.get(), file.data() + payload_at + seal_payload,
                                   file.size() - payload_at - seal_payload) ||
      !libcrypto::EVP_DigestFinal_ex(hashing.get(), digest.data(), &size))
    throw std::bad_alloc();  // libcrypto fails only to allocate
  return digest;
}

/// The seal in `section` (found by find_module_note; no data: there is none), checked for its
/// size and marker.
template <class = void>
result<module_seal> read_seal(std::string_view section, const std::string& path) {
  if (section.data() == nullptr)
    return file_error(errc::unsealed, path, "not sealed (no hotswap_seal section): build it with hotswap_add_module");
  module_seal seal;
  if (section.size() != sizeof seal || std::memcmp(section.data(), seal_marker, sizeof seal_marker) != 0)
    return file_error(errc::unsealed, path, "its hotswap_seal section is not a seal of this hotswap");
  std::memcpy(&seal, section.data(), sizeof seal);
  return seal;
}

// -- keys --

using evp_key = libcrypto::owned<evp_pkey_st, libcrypto::EVP_PKEY_free>;  // a public or private key

/// The Ed25519 public key in `pem` (as `openssl pkey -pubout` or `hotswap-seal keygen` write it).
/// (Read by OpenSSL's decoders: <openssl/pem.h> would cost a third of what including hotswap does.)
template <class = void>
evp_key read_public_key(std::string_view pem) {
  libcrypto::ERR_set_mark();  // what fails is said by the caller, not left in this thread's error queue
  evp_pkey_st* read = nullptr;
  const libcrypto::owned<ossl_decoder_ctx_st, libcrypto::OSSL_DECODER_CTX_free> decoder(
      libcrypto::OSSL_DECODER_CTX_new_for_pkey(&read, "PEM", nullptr, "ED25519", libcrypto::public_key_part, nullptr,
                                               nullptr));
  const auto* data = reinterpret_cast<const unsigned char*>(pem.data());
  std::size_t size = pem.size();
  if (decoder) libcrypto::OSSL_DECODER_from_data(decoder.get(), &data, &size);
  evp_key key(read);
  if (key && libcrypto::EVP_PKEY_get_base_id(key.get()) != libcrypto::ed25519) key.reset();
  libcrypto::ERR_pop_to_mark();
  return key;
}

/// A raw Ed25519 public key, and how it is shown: hex.
using raw_key = std::array<unsigned char, 32>;
template <class = void>
raw_key raw_public_key(const evp_pkey_st* key) {
  raw_key raw{};
  std::size_t size = raw.size();
  libcrypto::EVP_PKEY_get_raw_public_key(key, raw.data(), &size);
  return raw;
}
template <class = void>
std::string hex(const unsigned char* bytes, std::size_t size) {
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    text += hex_digits[bytes[i] >> 4];
    text += hex_digits[bytes[i] & 0xF];
  }
  return text;
}

// -- the check --

/// The seal of `file` matches its bytes and, when `trusted` is not empty, is signed by one of
/// those keys. Returns the module's build: its digest's first 8 bytes in hex, which tell two
/// builds of one vsn apart (the digest covers every byte of the file, so a build that differs in
/// anything, code or note, has another).
template <class = void>
result<std::string> check_seal(std::string_view file, std::string_view section, const std::vector<evp_key>& trusted,
                               const std::string& path) {
  const auto seal = read_seal(section, path);
  if (!seal) return seal.error();
  auto zero = [](const auto& bytes) {
    return std::all_of(std::begin(bytes), std::end(bytes), [](auto b) { return b == 0; });
  };
  if (zero(seal->digest))
    return file_error(errc::unsealed, path,
                      "not sealed: hotswap_add_module's post-link step (hotswap-seal) did not run");
  const seal_digest digest = digest_of_module(file, static_cast<std::size_t>(section.data() - file.data()));
  if (!std::equal(digest.begin(), digest.end(), seal->digest))
    return file_error(errc::torn, path,
                      "torn or modified since it was built: its bytes do not match its seal (a rebuild or a copy "
                      "that was not atomic, caught half-way?)");
  std::string build = hex(digest.data(), 8);
  if (trusted.empty()) return build;
  if (zero(seal->signer))
    return file_error(errc::untrusted, path,
                      "not signed, and this code server takes only modules signed by a trusted key "
                      "(code_server_options::trusted_keys; sign with HOTSWAP_SIGNING_KEY)");
  const std::string signer = hex(seal->signer, sizeof seal->signer);
  const auto key = std::find_if(trusted.begin(), trusted.end(), [&](const evp_key& candidate) {
    const raw_key raw = raw_public_key(candidate.get());
    return std::equal(raw.begin(), raw.end(), seal->signer);
  });
  if (key == trusted.end())
    return file_error(errc::untrusted, path, "signed by key " + signer + ", which this code server does not trust");
  const std::string message = seal_message(digest);
  const md_context verifying(libcrypto::EVP_MD_CTX_new());
  libcrypto::ERR_set_mark();
  const bool verified =
      verifying && libcrypto::EVP_DigestVerifyInit(verifying.get(), nullptr, nullptr, nullptr, key->get()) == 1 &&
      libcrypto::EVP_DigestVerify(verifying.get(), seal->signature, sizeof seal->signature,
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  libcrypto::ERR_pop_to_mark();
  if (!verified) return file_error(errc::untrusted, path, "its signature by key " + signer + " does not verify");
  return build;
}

}  // namespace hotswap::detail
// ---- hotswap/servers.hpp ----
// Servers, as Erlang's gen_server: a stable interface (the messages a server takes), versioned
// implementations of it, and a runtime that runs them on a small pool of threads.
//
//     struct Get { };  struct Add { int n; };  struct Tick { };
//     using Counter = hotswap::interface<"Counter", hotswap::call_msg<Get, int>, hotswap::cast_msg<Add>,
//                                        hotswap::info_msg<Tick>>;
//
//     struct CounterV1 {
//       using interface = Counter;
//       static constexpr int vsn = 1;
//       using state = CountV1;                       // a schema version, or a container of them
//       static state init() { return {}; }
//       static int handle_call(const Get&, state& s) { return s.count; }
//       static void handle_cast(const Add& add, state& s) { s.count += add.n; }
//       static void handle_info(const Tick&, state&) {}
//     };
//
//     auto counter = hotswap::start<CounterV1>().value();
//     hotswap::cast(counter, Add{2});
//     int n = hotswap::call(counter, Get{}).value();
//
// An implementation may also have `terminate(const exit_reason&, state&)`, and for hot code
// changes a `state_history` (the state each older vsn it upgrades from held), an `extra` type,
// and `code_change(hotswap::from_vsn<N>, OldState&&, const Extra&)` for the vsns it migrates by
// hand. Everything else migrates by the generated migrations (hotswap/migrations.hpp).

#include <concepts>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// ---- hotswap/detail/runtime/requests.hpp ----
// Calls sent without waiting (OTP's gen_server:send_request/2, and the request id collections of
// OTP 25): each reply lands in a slot that, once answered, is handed to a collector the sender
// waits on for one, any or all of its requests; or, sent from a server, travels back to it as a
// `response` info, so that no worker blocks.
//
// A slot starts abandoned: whoever answers it (the server, or the runtime failing it) calls its
// `free`, which hands it on instead of freeing it. So a slot is never waited on by its own
// futex, and the collector may go before its slots do.

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

// ---- hotswap/detail/runtime/exits.hpp ----
// How a server's end is told: monitors (Erlang's monitor/2: a `down` info to a server, or a
// callback, exactly once) and links (link/1: an abnormal end stops the linked server, or reaches it
// as an `exit_signal` info when it traps exits). One mechanism for every watcher: supervisors, a
// release's grace period and programs use it alike, and each takes its monitors off when done.

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

// ---- hotswap/detail/runtime/dispatch.hpp ----
// The receiving side of a server: taking its messages and sys requests in order, running each
// handler, and running a server on an executor until it has nothing to do.

#include <cstdint>
#include <utility>

// ---- hotswap/detail/runtime/reports.hpp ----
// What hotswap says by itself, as OTP's logger hears it: a crash report when a handler throws, a
// supervisor report when a child ends, cannot start, or its supervisor gives up, a progress
// report when a child starts, a network report when a connection is cut off (hotswap::report). One line each, to the
// program's sink: by default standard error, which, as OTP's default logger level, leaves progress reports out. The
// sink is the runtime's, so a module's servers report to the program's.

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>


namespace hotswap::detail {

/// One report: what it is about, and its line (no newline; safe to show on a terminal).
struct report {
  enum class kind : std::uint8_t { crash, supervisor, progress, network } about;
  std::uint64_t server;  ///< the server that crashed, or the supervisor's child (0: none)
  std::string text;
};

/// Writes the report's line and a newline to standard error in one write, as reports of two
/// threads do not interleave (lines longer than a pipe's atomic size may, as any writer's);
/// progress reports are left out.
template <class = void>
void write_to_stderr(const report& said) noexcept {
  if (said.about == report::kind::progress) return;
  try {
    std::string line = "hotswap: " + said.text + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  } catch (...) {  // out of memory: the report is lost, the program is not
  }
}

/// The program's sink of reports (the runtime holds one). (A template only to be compiled where
/// used.)
template <class = void>
class basic_report_log {
 public:
  using sink = std::function<void(const report&)>;

  /// Hands `said` to the sink, on the calling thread. A sink that throws loses that report only.
  void write(const report& said) noexcept {
    try {
      sink to;
      {
        const spin_guard hold(lock_);
        to = sink_;
      }
      if (to)
        to(said);
      else
        write_to_stderr(said);
    } catch (...) {
    }
  }

  /// Puts `next` in place (empty: standard error again) and returns the sink it replaced.
  sink replace(sink next) {
    const spin_guard hold(lock_);
    return std::exchange(sink_, std::move(next));
  }

 private:
  spin_lock lock_;
  sink sink_;
};
using report_log = basic_report_log<>;

}  // namespace hotswap::detail
// ---- hotswap/detail/runtime/slow_handlers.hpp ----
// Noticing handlers that hold a pool worker too long. C++ cannot preempt a handler that sleeps,
// blocks or loops, as Erlang's schedulers do; instead the pool's monitor looks at its workers
// every millisecond or so, and one found in the same handler past `slow_handler_after` while
// other servers wait gets the pool another worker (bounded), as Go's runtime hands the processor
// of a thread blocked in a system call to another thread. The handler is marked, and its server
// counts it, with its message and time, once it returns (sys::statistics).

#include <atomic>
#include <cstdint>
#include <vector>


namespace hotswap::detail {

/// A handler running longer than this, while other servers wait, gets the pool another worker.
inline constexpr std::chrono::milliseconds slow_handler_after{4};

/// What one pool worker is doing, for the monitor. The worker writes `ticks` only, on a line of
/// its own (a handler costs two relaxed stores and a load more); the monitor writes the mark.
struct worker_activity {
  alignas(64) std::atomic<std::uint64_t> ticks{0};  ///< handlers entered and left: odd while in one
  std::atomic<std::uint64_t> slow_tick{0};          ///< the monitor's mark: the handler entered at this tick
  std::atomic<std::int64_t> slow_since{0};          ///< has run since then, at least (steady_clock)

  /// The tick of the handler entered now.
  std::uint64_t enter() noexcept {
    const std::uint64_t tick = ticks.load(std::memory_order_relaxed) + 1;
    ticks.store(tick, std::memory_order_relaxed);
    return tick;
  }
  /// Leaves the handler entered at `tick`: since when it ran, if the monitor marked it slow. (A
  /// handler that returns as the monitor marks it is not counted by its server.)
  std::int64_t leave(std::uint64_t tick) noexcept {
    ticks.store(tick + 1, std::memory_order_relaxed);
    return slow_tick.load(std::memory_order_acquire) == tick ? slow_since.load(std::memory_order_relaxed) : 0;
  }
};

/// The monitor's memory of what each worker was doing when it last looked.
class handler_watch {
 public:
  using clock = std::chrono::steady_clock;

  /// Looks at the first `count` workers; for each newly found in one handler past the threshold,
  /// marks it and calls `compensate()` (which adds a worker if others wait, and says whether it
  /// did; a worker not compensated is offered again at the next look). True if any worker was in
  /// a handler.
  template <class Compensate>
  bool look(worker_activity* workers, std::size_t count, clock::time_point now, Compensate compensate) {
    if (seen_.size() < count) seen_.resize(count);
    bool busy = false;
    for (std::size_t i = 0; i < count; ++i) {
      seen& last = seen_[i];
      const std::uint64_t ticks = workers[i].ticks.load(std::memory_order_relaxed);
      if (ticks % 2 == 0 || ticks != last.ticks) {
        last = {ticks, now, false, false};
        busy = busy || ticks % 2 != 0;
        continue;
      }
      busy = true;
      if (now - last.since < slow_handler_after) continue;
      if (!last.marked) {
        workers[i].slow_since.store(last.since.time_since_epoch().count(), std::memory_order_relaxed);
        workers[i].slow_tick.store(ticks, std::memory_order_release);  // after slow_since
        last.marked = true;
        marked_.fetch_add(1, std::memory_order_relaxed);
      }
      if (!last.compensated) last.compensated = compensate();
    }
    return busy;
  }
  /// How many handlers it has found slow.
  std::uint64_t marked() const noexcept { return marked_.load(std::memory_order_relaxed); }

 private:
  struct seen {
    std::uint64_t ticks = 0;
    clock::time_point since{};
    bool marked = false, compensated = false;
  };
  std::vector<seen> seen_;
  std::atomic<std::uint64_t> marked_{0};
};

}  // namespace hotswap::detail

namespace hotswap::detail {

// ---- the runtime: pool, server list, names, timers ----

template <class = void>
runtime& the_runtime();
/// A backlog has drained: its memory goes back to the system once the pool idles.
template <class = void>
void give_back_memory_when_idle() noexcept;
/// A new id for a server or a monitor: unique in the program, never reused.
template <class = void>
std::uint64_t new_id() noexcept;
/// Hands a report to the program's sink (the runtime's report_log).
template <class = void>
void write_report(const report& said) noexcept;

/// The server whose handler this thread is running, if any.
template <class = void>
server_core*& current_server_of_thread() noexcept {
  thread_local server_core* current = nullptr;
  return current;
}
/// The same, reached from a module's code or a program's.
template <class = void>
server_core*& current_server() noexcept;

/// Receiver side: hands out the oldest message, or false when none waits.
template <class = void>
bool take_message(server_core& server, envelope& out) noexcept {
  envelope* next = server.inbox.front();
  if (!next) return false;
  out = *next;
  server.inbox.pop();
  return true;
}

/// Whether `table` takes a message of kind word `kind`: not one sent as of a later version of
/// the interface than it implements (a server downgraded since the handle was made).
inline bool takes_kind(const implementation_table& table, std::uint32_t kind) noexcept {
  const std::uint32_t slot = slot_of(kind);
  return slot < table.message_count && sent_vsn_of(kind) <= table.slot_since[slot];
}

/// Drops a message unhandled, whatever version of the interface it was sent as.
inline void drop_message(const implementation_table& table, envelope& message) noexcept {
  if (takes_kind(table, message.kind))
    table.discards[slot_of(message.kind)](message);
  else
    discard_unknown(message);
}

/// Answers a message that will never be handled: calls fail, the rest is dropped.
template <class = void>
void refuse(server_core& server, envelope& message, errc why) noexcept {
  drop_message(*server.table, message);
  if (message.reply) static_cast<reply_slot_base*>(message.reply)->fail(why, "the server has stopped");
}

/// Refuses a message sent as of a later version of the interface than the server runs: a call
/// fails with errc::wrong_interface, the rest is dropped.
template <class = void>
void refuse_later(server_core& server, envelope& message) noexcept {
  const implementation_table& table = *server.table;
  discard_unknown(message);
  if (message.reply)
    static_cast<reply_slot_base*>(message.reply)
        ->fail(errc::wrong_interface, "a message of version " + std::to_string(sent_vsn_of(message.kind)) + " of " +
                                          std::string(table.interface_name) + ", and the server runs version " +
                                          std::to_string(table.interface_vsn) + " (" + std::string(table.name) + ")");
}

/// Receiver side: runs the sys requests in the lane, oldest first (those of an ended server
/// fail); false if there were none.
template <class = void>
bool run_controls(server_core& server) noexcept {
  control_request* newest = server.controls.exchange(nullptr, std::memory_order_acquire);
  if (!newest) return false;
  control_request* oldest = nullptr;
  while (newest) {
    control_request* next = newest->next_in_lane;
    newest->next_in_lane = oldest;
    oldest = newest;
    newest = next;
  }
  while (oldest) {
    control_request* request = oldest;
    oldest = request->next_in_lane;  // before it runs: its waiter may free it as soon as it is answered
    if (server.ended)
      request->fail(errc::no_server, "the server has stopped");
    else
      request->run(*request, server);
  }
  return true;
}

template <class = void>
void end_server(server_core& server, exit_reason reason) noexcept;
/// Receiver: whether the `down` in `message` is of a monitor still set (it is no longer), or of
/// one taken off (demonitor): then it is dropped (runtime/exits.hpp).
template <class = void>
bool down_awaited(server_core& watcher, envelope& message) noexcept;

/// What this pool worker is doing (null: not a pool worker).
template <class = void>
worker_activity*& current_activity() noexcept {
  thread_local worker_activity* activity = nullptr;
  return activity;
}

/// A handler the pool's monitor found slow has returned: counted, and kept if the slowest.
template <class = void>
void note_slow_handler(server_core& server, const implementation_table& table, std::uint32_t slot,
                       std::int64_t since) noexcept {
  const std::chrono::steady_clock::time_point began{std::chrono::steady_clock::duration(since)};
  const auto took = std::chrono::steady_clock::now() - began;
  ++server.slow_handlers;
  if (took <= server.slowest_handler) return;
  server.slowest_handler = took;
  try {
    server.slowest_message = table.message_names[slot];
  } catch (...) {  // out of memory: the time is kept without the name
  }
}

/// The first line of a crash report: the server, its code, the message, what was thrown, and
/// the state it failed on as inspect shows it (at most `state_shown` bytes of it).
template <class = void>
std::string crash_report_text(server_core& server, const implementation_table& table, std::string_view handling,
                              const outcome& result) {
  constexpr std::size_t state_shown = 512;
  std::string text = "crash report: " + visible(server.label(), false) + ", " + visible(table.name, false) + " vsn " +
                     std::to_string(table.vsn) + ", handling " + visible(handling, false) + ": " +
                     (result.thrown.empty() ? "" : visible(result.thrown, false) + ": ") +
                     visible(result.what, false, state_shown);
  if (!table.inspect_state || !server.state) return text + "; its state is not shown (inspect is not enabled for it)";
  std::string state(state_shown, '\0');
  const std::size_t size = table.inspect_state(server.state, state.data(), state.size());
  state.resize(std::min(size, state.size()));
  return text + "; its state: " + visible(state, false) + (size > state_shown ? "..." : "");
}

/// A handler threw: the server's on_failure guard puts it back on the code before, its state
/// kept (a development reload or a release on probation), else the server ends, crashed. Either
/// way its trace hook hears of it, and a crash report goes to the program's sink.
template <class = void>
void handler_failed(server_core& server, std::string_view handling, reply_slot_base* reply, outcome& result) noexcept {
  const implementation_table& table = *server.table;
  if (server.trace) server.trace({trace_event::failed, handling, server.id, std::string_view(result.what)});
  std::string text;
  try {
    text = crash_report_text(server, table, handling, result);  // before the state goes
  } catch (...) {                                               // out of memory: no report
  }
  if (auto guard = std::exchange(server.on_failure, nullptr); guard && guard(server, result.what)) {
    if (!text.empty()) try {
        write_report({report::kind::crash, server.id,
                      text + "; back on " + visible(server.table->name, false) + " vsn " +
                          std::to_string(server.table->vsn) + ", its state kept"});
      } catch (...) {
      }
    if (reply) reply->fail(errc::handler_failed, result.what);
    return;  // back on the code before, its state kept: it serves on
  }
  if (!text.empty()) write_report({report::kind::crash, server.id, std::move(text) + "; the server crashed"});
  if (reply) reply->fail(errc::server_died, result.what);
  end_server(server, {exit_kind::crashed, std::move(result.what)});
}

template <class = void>
void dispatch(server_core& server, envelope& message) noexcept {
  const implementation_table& table = *server.table;
  if (!takes_kind(table, message.kind)) return refuse_later(server, message);
  const std::uint32_t slot = slot_of(message.kind);
  if (server.trace) server.trace({trace_event::in, table.message_names[slot], server.id});
  outcome result;
  const auto start = server.timing ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  worker_activity* const activity = current_activity();
  const std::uint64_t tick = activity ? activity->enter() : 0;
  ++server.handled;  // before: what the handler sets for "after me" (an idle timeout) counts it
  table.handlers[slot](server.state, message, result);
  if (activity)
    if (const std::int64_t slow_since = activity->leave(tick)) note_slow_handler(server, table, slot, slow_since);
  if (server.timing) server.time_in_handlers += std::chrono::steady_clock::now() - start;
  if (result.failed)
    return handler_failed(server, table.message_names[slot], static_cast<reply_slot_base*>(message.reply), result);
  if (server.trace) server.trace({trace_event::out, table.message_names[slot], server.id});
}

/// Runs the continuation a handler (or init) left (OTP's handle_continue), before anything else:
/// a throw is a handler's.
template <class = void>
void run_continuation(server_core& server) noexcept {
  const auto next = std::exchange(server.continuation, nullptr);
  outcome result;
  ++server.handled;
  next(server.state, result);
  if (result.failed) handler_failed(server, "its handle_continue", nullptr, result);
}

/// Handles up to `budget` messages, the sys lane first before each; true if that many were
/// handled (more may wait). While suspended, only the sys lane is served.
template <class = void>
bool handle_messages(server_core& server, unsigned budget) noexcept {
  envelope message;
  for (unsigned handled = 0; handled < budget; ++handled) {
    if (server.continuation && !server.ended) run_continuation(server);
    if (server.controls.load(std::memory_order_relaxed)) run_controls(server);
    if (server.suspended) return false;
    if (!take_message(server, message)) {
      if (server.inbox.drained_after_backlog()) give_back_memory_when_idle();
      return false;
    }
    if (server.ended)
      refuse(server, message, errc::server_died);
    else if (message.kind == server.down_index && !down_awaited(server, message))
      drop_message(*server.table, message);
    else
      dispatch(server, message);
  }
  return true;
}

/// Runs a server until it has nothing to do (or, when others wait for this thread, until it
/// has had a fair share). After its mailbox empties it watches it a little longer, unless others
/// wait: a caller that sends again soon is answered without a wake-up. While it only watches, the
/// server is not this thread's: a sys request's caller may take it (run_control_here), and then
/// this thread leaves it without touching it again.
template <class = void>
void run_server(server_core& server, executor& on) noexcept {
  constexpr unsigned fair_share = 256;
  // An exchange, not a store: a read-modify-write synchronizes with every sender's fetch_or
  // before it, so their messages are visible here.
  server.run_state.exchange(server_core::running, std::memory_order_seq_cst);
  server_core*& current = current_server();
  server_core* const outer = current;
  current = &server;
  for (;;) {
    if (handle_messages(server, fair_share)) {
      if (!on.others_waiting()) continue;
      on.schedule(server);  // still marked running: nobody else schedules it meanwhile
      break;
    }
    // Also a suspended one: the resume then hands it to a worker already spinning, not to one
    // that must be woken (the slowest call of a client calling through an upgrade: p99 38-183
    // against 108-849 us).
    const bool watch = !on.others_waiting() && !server.ended;
    std::uint32_t expected = server_core::running;
    if (!server.run_state.compare_exchange_strong(expected, watch ? server_core::watched : server_core::idle,
                                                  std::memory_order_seq_cst)) {
      server.run_state.exchange(server_core::running, std::memory_order_seq_cst);  // a message came meanwhile
      continue;
    }
    if (!watch) break;
    current = outer;
    // Only the state is read while watching: a sender's notify sets a bit of it, a taker all of it.
    spin_until([&] {
      return server.run_state.load(std::memory_order_relaxed) != server_core::watched || on.others_waiting();
    });
    expected = server_core::watched;
    if (server.run_state.compare_exchange_strong(expected, server_core::idle, std::memory_order_seq_cst)) break;
    if (expected != (server_core::watched | server_core::notified) ||
        !server.run_state.compare_exchange_strong(expected, server_core::running, std::memory_order_seq_cst))
      break;            // taken by a sys request's caller (who will hand it back to the pool if need be)
    current = &server;  // a message came: handled here, without a wake-up
  }
  current = outer;
}

/// The shared worker threads (default: one per hardware thread). At most one idle worker spins
/// at a time; the others park. A worker about to block (a handler calling another server)
/// makes sure another can take its place, so calls between servers never starve the pool; and
/// a monitor adds a worker when one is held in a handler past slow_handler_after while others
/// wait and no worker is idle (a handler that sleeps, blocks on I/O or loops), at most
/// max_compensating in all (they stay, parked when idle, and are used first the next time).

}  // namespace hotswap::detail

namespace hotswap::detail {

// -- monitors --

/// Orders a server's `watching` by ref.
struct by_ref_order {
  bool operator()(const watched_server& entry, std::uint64_t ref) const noexcept { return entry.ref < ref; }
  bool operator()(std::uint64_t ref, const watched_server& entry) const noexcept { return ref < entry.ref; }
};
inline constexpr by_ref_order by_ref{};

/// Whether `reason` stops a linked server that does not trap exits (OTP: any but normal).
inline bool abnormal(const exit_reason& reason) noexcept {
  return reason.kind != exit_kind::normal;
}

/// Puts `message` in `to`'s mailbox as its info number `index` (false if `to` has ended, or its
/// interface does not take it: `index` is its message count).
template <class Message>
bool deliver_info(server_core& to, std::uint32_t index, Message&& message) noexcept {
  using M = std::remove_cvref_t<Message>;
  if (index >= to.table_size) return false;
  envelope packed{};
  try {
    pack(packed, std::forward<Message>(message));
  } catch (...) {  // out of memory: the watcher is not told
    return false;
  }
  const bool sent = to.deliver([&](envelope& into) noexcept {
    std::memcpy(into.payload, packed.payload, sizeof packed.payload);
    into.kind = index;
    into.reply = nullptr;
  });
  if (!sent) discard<M>(packed);
  return sent;
}

/// Takes `ref` out of the monitors `watcher` set; false if it was not there.
template <class = void>
bool forget_watching(server_core& watcher, std::uint64_t ref) noexcept {
  server_core* watched = nullptr;
  {
    const spin_guard hold(watcher.exit_lock);
    const auto at = std::lower_bound(watcher.watching.begin(), watcher.watching.end(), ref, by_ref);
    if (at == watcher.watching.end() || at->ref != ref) return false;
    watched = at->server;
    watcher.watching.erase(at);
  }
  watched->release();
  return true;
}

/// A monitor set by `watcher` (which will receive a `down` info) on `watched`, or a callback if
/// `watcher` is null; its id (`ref`, never 0). If `watched` has ended, the down is delivered (the
/// callback called) at once, as OTP's monitor of a dead process is told `noproc` at once.
template <class = void>
std::uint64_t add_monitor(server_core& watched, server_core* watcher, exit_callback on_exit,
                          std::uint64_t ref = new_id()) {
  if (watcher) {  // first in the watcher's list, so that its down is taken when it arrives
    const spin_guard hold(watcher->exit_lock);
    if (!watcher->alive.load(std::memory_order_seq_cst)) return ref;  // it has ended: nobody to tell
    watched.acquire();
    // Sorted by ref (a dynamic supervisor watches each of its many children): ids grow, so this
    // is nearly always the end.
    watcher->watching.insert(std::upper_bound(watcher->watching.begin(), watcher->watching.end(), ref, by_ref),
                             {ref, &watched});
  }
  exit_reason ended;
  {
    const spin_guard hold(watched.exit_lock);
    if (watched.alive.load(std::memory_order_seq_cst)) {
      if (watcher) watcher->acquire();
      watched.monitors.push_back({ref, watcher, watcher ? nullptr : pin_this_image(), std::move(on_exit)});
      return ref;
    }
    ended = watched.reason;
  }
  if (watcher)
    deliver_info(*watcher, watcher->down_index, down_message{ref, watched.id, std::move(ended)});
  else
    on_exit(watched.id, ended);
  return ref;
}

/// Takes monitor `ref` off `watched` (and, for a server's monitor, a down already in its
/// mailbox, as OTP's demonitor(Ref, [flush])); false if it had fired already.
template <class = void>
bool remove_monitor(server_core& watched, std::uint64_t ref) noexcept {
  exit_monitor removed{};
  {
    const spin_guard hold(watched.exit_lock);
    const auto at = std::find_if(watched.monitors.begin(), watched.monitors.end(),
                                 [&](const exit_monitor& monitor) { return monitor.ref == ref; });
    if (at != watched.monitors.end()) {
      removed = std::move(*at);
      watched.monitors.erase(at);
    }
  }
  if (removed.watcher) {
    forget_watching(*removed.watcher, ref);
    removed.watcher->release();
  }
  const auto code = std::move(removed.code);  // the callback, a module's code, goes first
  removed.call = nullptr;
  return removed.ref != 0;
}

template <class>
bool down_awaited(server_core& watcher, envelope& message) noexcept {
  return forget_watching(watcher, unpack<down_message>(message).monitor);
}

// -- links --

/// A sys request that ends a server: an exit signal, a stop a server asks of itself (nobody
/// waits: the server frees it), or a stop of every server (waited for). (A template only to be
/// compiled where it is used: its run instantiates the whole of a server's end.)
template <class = void>
struct basic_ending_request final : control_request {
  exit_reason reason;
  explicit basic_ending_request(exit_reason why, bool waited = false)
      : control_request([](reply_slot_base* self) noexcept { delete static_cast<basic_ending_request*>(self); }),
        reason(std::move(why)) {
    if (!waited) state.store(abandoned, std::memory_order_relaxed);
    run = [](control_request& self, server_core& server) noexcept {
      end_server(server, std::move(static_cast<basic_ending_request&>(self).reason));
      self.finish(answered);
    };
  }
};
using ending_request = basic_ending_request<>;

/// Ends `server` with `reason` after the message it is handling (false if it has ended).
template <class = void>
bool end_later(server_core& server, exit_reason reason) noexcept {
  ending_request* request;
  try {
    request = new ending_request(std::move(reason));
  } catch (...) {
    return false;
  }
  if (server.deliver_control(*request)) return true;
  delete request;
  return false;
}

/// `to` hears that linked server `from` ended with `reason`: as an info if it traps exits,
/// else it ends too when the reason is abnormal, as Erlang's exit signals do.
template <class = void>
void signal_exit(server_core& to, std::uint64_t from, const exit_reason& reason) noexcept {
  if (to.trapping_exits.load(std::memory_order_acquire)) {
    try {
      deliver_info(to, to.exit_index, exit_message{from, reason});
    } catch (...) {  // out of memory copying the reason
    }
  } else if (abnormal(reason)) {
    try {
      end_later(to, reason);
    } catch (...) {
    }
  }
}

/// Links `a` and `b` (each told of the other's end); if one has ended, the other is told at
/// once. False if they are the same server.
template <class = void>
bool add_link(server_core& a, server_core& b) noexcept {
  if (&a == &b) return false;
  server_core& first = a.id < b.id ? a : b;  // one order of locking for every pair
  server_core& second = a.id < b.id ? b : a;
  server_core* ended = nullptr;
  exit_reason reason;
  {
    const spin_guard hold_first(first.exit_lock);
    const spin_guard hold_second(second.exit_lock);
    const bool first_alive = first.alive.load(std::memory_order_seq_cst);
    const bool second_alive = second.alive.load(std::memory_order_seq_cst);
    if (first_alive && second_alive) {
      if (std::find(first.links.begin(), first.links.end(), &second) == first.links.end()) {
        first.acquire();
        second.acquire();
        first.links.push_back(&second);
        second.links.push_back(&first);
      }
      return true;
    }
    if (first_alive != second_alive) {
      ended = first_alive ? &second : &first;
      reason = ended->reason;
    }
  }
  if (ended) signal_exit(ended == &a ? b : a, ended->id, reason);
  return true;
}

/// Unlinks `a` and `b`; false if they were not linked.
template <class = void>
bool remove_link(server_core& a, server_core& b) noexcept {
  server_core& first = a.id < b.id ? a : b;
  server_core& second = a.id < b.id ? b : a;
  {
    const spin_guard hold_first(first.exit_lock);
    const spin_guard hold_second(second.exit_lock);
    const auto at = std::find(first.links.begin(), first.links.end(), &second);
    if (at == first.links.end()) return false;
    first.links.erase(at);
    second.links.erase(std::find(second.links.begin(), second.links.end(), &first));
  }
  first.release();
  second.release();
  return true;
}

// -- a server's end --

/// Tells a server's end to its monitors and links, and takes the monitors it set on others off
/// them: nothing it set outlives it. Called by end_server once, after the server is marked ended.
template <class = void>
void tell_exit(server_core& server, const exit_reason& reason, std::vector<exit_monitor> monitors,
               std::vector<server_core*> links, std::vector<watched_server> watching) noexcept {
  for (auto& monitor : monitors) {
    if (monitor.watcher) {
      try {
        deliver_info(*monitor.watcher, monitor.watcher->down_index, down_message{monitor.ref, server.id, reason});
      } catch (...) {
      }
      monitor.watcher->release();
    } else {
      try {
        monitor.call(server.id, reason);
      } catch (...) {  // a callback lets nothing out into the server's end
      }
      const auto code = std::move(monitor.code);  // released after its callback
      monitor.call = nullptr;
    }
  }
  for (server_core* linked : links) {
    {
      const spin_guard hold(linked->exit_lock);
      const auto at = std::find(linked->links.begin(), linked->links.end(), &server);
      if (at != linked->links.end()) {
        linked->links.erase(at);
        server.release();  // the reference the linked server's list held
      }
    }
    signal_exit(*linked, server.id, reason);
    linked->release();
  }
  for (const watched_server& entry : watching) {  // (clang 14 captures no structured binding)
    const std::uint64_t ref = entry.ref;
    server_core* const watched = entry.server;
    exit_monitor removed{};
    {
      const spin_guard hold(watched->exit_lock);
      const auto at = std::find_if(watched->monitors.begin(), watched->monitors.end(),
                                   [&](const exit_monitor& monitor) { return monitor.ref == ref; });
      if (at != watched->monitors.end()) {
        removed = std::move(*at);
        watched->monitors.erase(at);
      }
    }
    if (removed.watcher) removed.watcher->release();
    watched->release();
  }
}

}  // namespace hotswap::detail

namespace hotswap::detail {

// -- sending --

/// Sends call `message` to `to` as its message number `kind`, its answer to the slot
/// `make_slot()` makes (after the message is packed: what throws comes first). A server that had
/// stopped, or none (an empty handle), fails the slot at once with errc::no_server.
template <class M, class MakeSlot>
void send_call(server_core* to, std::uint32_t kind, M&& message, MakeSlot make_slot) {
  envelope packed{};
  pack_sent<std::remove_cvref_t<M>>(packed, kind, std::forward<M>(message));
  reply_slot_base* slot;
  try {
    slot = make_slot();
  } catch (...) {
    discard_sent<std::remove_cvref_t<M>>(packed, kind);
    throw;
  }
  const bool sent = to && to->deliver([&](envelope& into) noexcept {
    std::memcpy(into.payload, packed.payload, sizeof packed.payload);
    into.kind = kind;
    into.reply = slot;
  });
  if (!sent) {
    discard_sent<std::remove_cvref_t<M>>(packed, kind);
    slot->fail(errc::no_server, to ? "the server had stopped" : "an empty server handle");
  }
}

// -- waiting in the sender --

/// Where the answered slots of one sender's requests gather. Plain data, counted: the sender
/// and each slot not yet answered hold it, and whoever lets go last frees it.
struct request_collector {
  std::atomic<std::uint32_t> holders{1};
  std::atomic<std::uint32_t> answers{0};  // bumped at each answer: the futex the sender waits on
  spin_lock lock;                         // guards what follows
  reply_slot_base* answered = nullptr;    // newest first, through collected_slot::next
  bool closed = false;                    // the sender has gone: answers are freed as they come

  void release() noexcept {
    if (holders.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

/// A request's slot while it waits for its answer, and after, in its collector's list.
template <class Reply>
struct collected_slot final : reply_slot<Reply> {
  request_collector* collector;
  reply_slot_base* next = nullptr;
  std::uint64_t id;

  collected_slot(request_collector& to, std::uint64_t request) : collector(&to), id(request) {
    this->free = [](reply_slot_base* self) noexcept { static_cast<collected_slot*>(self)->collect(); };
    this->state.store(reply_slot_base::abandoned, std::memory_order_relaxed);
    collector->holders.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  void collect() noexcept {
    request_collector* const to = collector;
    bool taken;
    {
      const spin_guard hold(to->lock);
      taken = !to->closed;
      if (taken) next = std::exchange(to->answered, this);  // the sender's now: not touched after
    }
    if (!taken) delete this;
    to->answers.fetch_add(1, std::memory_order_release);
    futex_wake(to->answers, 1);
    to->release();
  }
};

/// The sender's side of its requests of reply type `Reply`: sends them and takes their answers,
/// each tagged with its request id. Not shared between threads.
template <class Reply>
class request_box {
 public:
  request_box() : collector_(new request_collector) {}
  request_box(request_box&& other) noexcept
      : collector_(std::exchange(other.collector_, nullptr)), pending_(std::exchange(other.pending_, 0)) {}
  request_box& operator=(request_box&& other) noexcept {
    std::swap(collector_, other.collector_);
    std::swap(pending_, other.pending_);
    return *this;
  }
  /// Answers not yet taken are freed as they come (OTP's abandon).
  ~request_box() {
    if (!collector_) return;
    reply_slot_base* answered;
    {
      const spin_guard hold(collector_->lock);
      collector_->closed = true;
      answered = std::exchange(collector_->answered, nullptr);
    }
    while (answered) {
      auto* slot = static_cast<collected_slot<Reply>*>(answered);
      answered = slot->next;
      delete slot;
    }
    collector_->release();
  }

  /// Sends `message` to `to` as call number `kind`, its answer to come here; its id. If the server
  /// had stopped, or `to` is null (an empty handle), the answer, errc::no_server, is here already.
  template <class M>
  std::uint64_t send(server_core* to, std::uint32_t kind, M&& message) {
    const std::uint64_t id = new_id();
    send_call(to, kind, std::forward<M>(message), [&] {
      auto* slot = new collected_slot<Reply>(*collector_, id);
      ++pending_;
      return slot;
    });
    return id;
  }

  /// How many answers are still to be taken.
  std::size_t pending() const noexcept { return pending_; }

  /// The next answer to come (any request's), with its id; errc::timeout if none came in
  /// `timeout`; nullopt if none is pending.
  std::optional<std::pair<std::uint64_t, hotswap::result<Reply>>> take_any(std::chrono::nanoseconds timeout,
                                                                           void (*before_parking)()) {
    return take([](std::uint64_t) { return true; }, timeout, before_parking);
  }
  /// The answer of request `id`; nullopt if it is not pending (other answers stay to be taken).
  std::optional<hotswap::result<Reply>> take_one(std::uint64_t id, std::chrono::nanoseconds timeout,
                                                 void (*before_parking)()) {
    auto taken = take([id](std::uint64_t answered) { return answered == id; }, timeout, before_parking);
    if (!taken) return std::nullopt;
    return std::move(taken->second);
  }

 private:
  template <class Wanted>
  std::optional<std::pair<std::uint64_t, hotswap::result<Reply>>> take(Wanted wanted, std::chrono::nanoseconds timeout,
                                                                       void (*before_parking)()) {
    if (pending_ == 0) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, longest_wait);
    bool parked_once = false;
    for (;;) {
      const std::uint32_t seen = collector_->answers.load(std::memory_order_acquire);
      if (collected_slot<Reply>* slot = unlink(wanted)) {
        --pending_;
        const std::unique_ptr<collected_slot<Reply>> done(slot);
        if (slot->value) return std::pair{slot->id, hotswap::result<Reply>(std::move(*slot->value))};
        return std::pair{slot->id, hotswap::result<Reply>(slot->failure)};
      }
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero())
        return std::pair{std::uint64_t{0},
                         hotswap::result<Reply>(error{
                             errc::timeout, "no reply within " + std::to_string(timeout.count() / 1'000'000) + " ms"})};
      if (!std::exchange(parked_once, true)) before_parking();
      futex_wait(collector_->answers, seen, left);
    }
  }

  /// The oldest answered slot that `wanted` takes, out of the list.
  template <class Wanted>
  collected_slot<Reply>* unlink(Wanted& wanted) {
    const spin_guard hold(collector_->lock);
    reply_slot_base** found_at = nullptr;
    for (reply_slot_base** at = &collector_->answered; *at; at = &static_cast<collected_slot<Reply>*>(*at)->next)
      if (wanted(static_cast<collected_slot<Reply>*>(*at)->id)) found_at = at;  // the last in the list: the oldest
    if (!found_at) return nullptr;
    auto* found = static_cast<collected_slot<Reply>*>(*found_at);
    *found_at = found->next;
    return found;
  }

  request_collector* collector_;
  std::size_t pending_ = 0;
};

// -- answers as infos, to a server --

/// hotswap::response<Reply>: the answer to a request a server sent (hotswap::send_request with a
/// server to answer), as an info to that server.
template <class Reply>
struct response_message {
  std::uint64_t request = 0;  ///< what send_request returned
  hotswap::result<Reply> reply = error{errc::no_reply, {}};
};

/// A request's slot whose answer goes to a server's mailbox as a response info.
template <class Reply>
struct forwarded_slot final : reply_slot<Reply> {
  server_core* requester;  // holding a reference
  std::uint32_t index;     // of response_message<Reply> in its interface
  std::uint64_t id;

  forwarded_slot(server_core& to, std::uint32_t response_index, std::uint64_t request)
      : requester(&to), index(response_index), id(request) {
    this->free = [](reply_slot_base* self) noexcept { static_cast<forwarded_slot*>(self)->forward(); };
    this->state.store(reply_slot_base::abandoned, std::memory_order_relaxed);
    requester->acquire();
  }

 private:
  void forward() noexcept {
    try {
      response_message<Reply> answer{
          id, this->value ? hotswap::result<Reply>(std::move(*this->value)) : hotswap::result<Reply>(this->failure)};
      deliver_info(*requester, index, std::move(answer));
    } catch (...) {  // out of memory: the requester is not told
    }
    requester->release();
    delete this;
  }
};

/// Sends `message` to `to` as call number `kind`, its answer to go to `requester` as its info
/// number `response_index`; the request's id. (A server that had stopped, or none: the answer,
/// errc::no_server, is on its way already.)
template <class Reply, class M>
std::uint64_t send_forwarded(server_core* to, std::uint32_t kind, M&& message, server_core& requester,
                             std::uint32_t response_index) {
  const std::uint64_t id = new_id();
  send_call(to, kind, std::forward<M>(message),
            [&] { return new forwarded_slot<Reply>(requester, response_index, id); });
  return id;
}

}  // namespace hotswap::detail
// ---- hotswap/detail/runtime/runtime.hpp ----
// The runtime of a program: its pool, timers, server ids and registered names, and how a server
// ends. One per program; a module's code reaches the program's (abi/image.hpp).

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

// ---- hotswap/detail/runtime/own_thread.hpp ----
// A thread of its own for a server whose handlers block.

#include <atomic>
#include <cstdint>

// ---- hotswap/detail/runtime/worker_pool.hpp ----
// The shared pool of worker threads that runs servers, and its monitor of slow handlers.

#include <atomic>
#include <cstdint>
#include <vector>


namespace hotswap::detail {

template <class = void>
class basic_worker_pool;

template <class>
class basic_worker_pool final : public executor {
 public:
  explicit basic_worker_pool(unsigned threads) {
    for (unsigned i = 0; i < std::clamp(threads, 1u, unsigned{max_threads / 2}); ++i) add_worker();
    watcher_ = thread([this] { watch_handlers(); });
  }
  // The code a new worker runs is the code that made the pool: the program's, never a module's.
  // (A module's call that blocks may start a worker.)
  ~basic_worker_pool() override { stop(); }

  void schedule(server_core& server) override {
    server.acquire();
    {
      const spin_guard hold(lock_);
      queue_.push_back(&server);
      queued_.fetch_add(1, std::memory_order_seq_cst);
    }
    if (spinners_.load(std::memory_order_seq_cst) == 0 && sleepers_.load(std::memory_order_seq_cst) > 0) wake_one();
  }
  bool others_waiting() const noexcept override { return queued_.load(std::memory_order_relaxed) != 0; }
  /// How many workers it has now (it adds some: for handlers that call or block).
  std::uint32_t workers() const noexcept { return workers_.load(std::memory_order_relaxed); }
  /// How many handlers its monitor has found holding a worker past slow_handler_after.
  std::uint64_t slow_handlers() const noexcept { return watch_.marked(); }

  /// A backlog has drained: its memory goes back to the system once every worker has idled for
  /// `idle_before_giving_back` (not before: a burst that follows at once would fault it all in
  /// again).
  void give_back_memory_when_idle() noexcept { give_back_.store(true, std::memory_order_relaxed); }

  /// The calling worker is about to block: wake or start another. (If no thread can be
  /// started, the pool carries on with those it has.)
  void blocking() noexcept {
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      wake_one();
      return;
    }
    const spin_guard hold(lock_);
    if (stopping_.load() || threads_.size() >= max_threads) return;
    try {
      add_worker();
    } catch (...) {
    }
  }

  /// Joins the workers (once every queued server has run).
  void stop() noexcept {
    std::vector<thread> joining;
    {
      const spin_guard hold(lock_);
      stopping_.store(true, std::memory_order_seq_cst);
      joining.swap(threads_);
    }
    futex_bump(watch_word_, 1);
    watcher_.join();
    futex_bump(wake_word_, 1 << 30);
    for (auto& worker : joining) worker.join();
  }

  static basic_worker_pool*& this_thread_pool() noexcept {
    thread_local basic_worker_pool* pool = nullptr;
    return pool;
  }

 private:
  static constexpr std::size_t max_threads = 512;
  static constexpr std::uint32_t max_compensating = 64;  // workers the monitor may add
  static constexpr std::chrono::milliseconds idle_before_giving_back{20};
  // The monitor looks this often while a handler runs, and backs off to the second when none does.
  static constexpr std::chrono::microseconds watch_busy{500};
  static constexpr std::chrono::milliseconds watch_idle{50};

  void add_worker() {  // under lock_ (or in the constructor)
    start_worker_(*this, threads_.size());
    workers_.fetch_add(1, std::memory_order_release);
  }
  void (*const start_worker_)(basic_worker_pool&, std::size_t) = [](basic_worker_pool& pool, std::size_t index) {
    pool.threads_.emplace_back([&pool, index] { pool.work(pool.activities_[index]); });
  };

  void watch_handlers() {
    handler_watch& watch = watch_;
    std::chrono::nanoseconds interval = watch_idle;
    std::uint32_t added = 0, added_now = 0;
    // A worker for a stuck one only if servers wait and no worker is idle (parked workers it
    // added before are used first), one per waiting server at most.
    const auto compensate = [&] {
      if (queued_.load(std::memory_order_seq_cst) <= added_now || sleepers_.load(std::memory_order_seq_cst) != 0 ||
          spinners_.load(std::memory_order_seq_cst) != 0 || added >= max_compensating)
        return false;
      const spin_guard hold(lock_);
      if (stopping_.load() || threads_.size() >= max_threads) return false;
      try {
        add_worker();
      } catch (...) {  // no thread to be had: the pool carries on with those it has
        return false;
      }
      ++added, ++added_now;
      return true;
    };
    for (;;) {
      const std::uint32_t seen =
          watch_word_.load(std::memory_order_acquire);  // before stopping_: stop() bumps it after
      if (stopping_.load(std::memory_order_acquire)) return;
      futex_wait(watch_word_, seen, interval);
      added_now = 0;
      const bool busy = watch.look(activities_.get(), workers_.load(std::memory_order_acquire),
                                   std::chrono::steady_clock::now(), compensate);
      interval =
          busy ? std::chrono::nanoseconds(watch_busy) : std::min<std::chrono::nanoseconds>(interval * 2, watch_idle);
    }
  }

  server_core* take() {
    if (queued_.load(std::memory_order_acquire) == 0) return nullptr;
    const spin_guard hold(lock_);
    if (queue_head_ == queue_.size()) return nullptr;
    server_core* next = queue_[queue_head_++];
    if (queue_head_ == queue_.size()) {
      queue_.clear();
      queue_head_ = 0;
    } else if (queue_head_ > 1024 && queue_head_ * 2 > queue_.size()) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
      queue_head_ = 0;
    }
    // More waiting and nobody spinning to take them: wake a sleeper rather than leave them
    // behind this worker's batch.
    if (queued_.fetch_sub(1, std::memory_order_seq_cst) > 1 && spinners_.load(std::memory_order_seq_cst) == 0 &&
        sleepers_.load(std::memory_order_seq_cst) > 0)
      wake_one();
    return next;
  }
  void wake_one() noexcept { futex_bump(wake_word_, 1); }

  void work(worker_activity& activity) {
    this_thread_pool() = this;
    current_activity() = &activity;
    for (;;) {
      if (server_core* server = take()) {
        run_server(*server, *this);
        server->release();
        continue;
      }
      if (stopped()) return;
      std::uint32_t none = 0;
      if (spinners_.compare_exchange_strong(none, 1, std::memory_order_seq_cst)) {
        const bool found = spin_until([&] { return others_waiting() || stopped(); });
        spinners_.store(0, std::memory_order_seq_cst);
        if (found) continue;
      }
      const bool last_awake = sleepers_.fetch_add(1, std::memory_order_seq_cst) + 1 == workers_.load();
      const std::uint32_t seen = wake_word_.load(std::memory_order_seq_cst);
      if (queued_.load(std::memory_order_seq_cst) == 0 && !stopped()) {
        if (last_awake && give_back_.load(std::memory_order_relaxed)) {
          // Memory a drained backlog freed goes back once the whole pool has idled a while.
          futex_wait(wake_word_, seen, idle_before_giving_back);
          if (wake_word_.load(std::memory_order_seq_cst) == seen && queued_.load(std::memory_order_seq_cst) == 0 &&
              give_back_.exchange(false, std::memory_order_relaxed))
            give_back_free_memory();
        } else {
          futex_wait(wake_word_, seen);
        }
      }
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  bool stopped() const noexcept { return stopping_.load(std::memory_order_acquire) && !others_waiting(); }

  spin_lock lock_;
  std::vector<server_core*> queue_;  // from queue_head_ on
  std::size_t queue_head_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<thread> threads_;
  alignas(64) std::atomic<std::size_t> queued_{0};
  alignas(64) std::atomic<std::uint32_t> spinners_{0};
  std::atomic<std::uint32_t> sleepers_{0};
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<std::uint32_t> workers_{0};
  std::atomic<bool> give_back_{false};
  std::unique_ptr<worker_activity[]> activities_ = std::make_unique<worker_activity[]>(max_threads);
  std::atomic<std::uint32_t> watch_word_{0};
  handler_watch watch_;  // the monitor's own, but for its count
  thread watcher_;
};

using worker_pool = basic_worker_pool<>;

template <class = void>
worker_pool& shared_pool();

}  // namespace hotswap::detail

namespace hotswap::detail {

/// A thread for one server whose handlers block. It runs the server when scheduled (as a pool
/// worker would), holds a reference to it until it has ended, and then hands whatever still
/// arrives to the pool, which refuses it.
template <class = void>
class basic_own_thread final : public executor {
 public:
  explicit basic_own_thread(server_core& server) : server_(server), thread_((server.acquire(), [this] { work(); })) {}
  ~basic_own_thread() override {
    stopping_.store(true, std::memory_order_seq_cst);
    wake();
    if (!thread_.is_this_thread()) thread_.join();  // else it ends by itself, detached
  }
  void schedule(server_core&) override {
    scheduled_.store(true, std::memory_order_seq_cst);
    if (exited_.load(std::memory_order_seq_cst))
      hand_to_pool();
    else
      wake();
  }
  bool others_waiting() const noexcept override { return false; }
  void wake() noexcept { futex_bump(wake_word_, 1); }

 private:
  void hand_to_pool() {
    if (scheduled_.exchange(false, std::memory_order_seq_cst)) shared_pool().schedule(server_);
  }
  void work() {
    for (;;) {
      const std::uint32_t seen = wake_word_.load(std::memory_order_seq_cst);
      if (scheduled_.exchange(false, std::memory_order_seq_cst)) run_server(server_, *this);
      if (!server_.alive.load(std::memory_order_seq_cst) || stopping_.load(std::memory_order_seq_cst)) break;
      if (!scheduled_.load(std::memory_order_seq_cst)) futex_wait(wake_word_, seen);
    }
    exited_.store(true, std::memory_order_seq_cst);
    hand_to_pool();     // scheduled after the last look: one of us hands it over
    server_.release();  // may destroy this executor: touch nothing after it
  }
  server_core& server_;
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<bool> scheduled_{false};
  std::atomic<bool> exited_{false};
  std::atomic<bool> stopping_{false};
  thread thread_;
};
using own_thread = basic_own_thread<>;

}  // namespace hotswap::detail
// ---- hotswap/detail/runtime/timer_service.hpp ----
// Timers (send_after, send_interval): one thread, asleep until the next deadline.

#include <atomic>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>


namespace hotswap::detail {

/// Timers: one thread, asleep until the next deadline.
template <class = void>
class basic_timer_service {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;
  struct entry {
    std::shared_ptr<const void> code;  // keeps the code of `fire` loaded (a module's); released after it
    std::function<bool()> fire;        // false: the target is gone, stop repeating
    server_core* target = nullptr;     // or a message that travels in place, copied to target
    envelope message{};
    duration period{};
    std::atomic<bool> cancelled{false};
    // The server it sends to (held by `target`'s reference or by `fire`): its timers go when it
    // ends (forget).
    server_core* owner = nullptr;
    entry() = default;
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;
    ~entry();
    /// Once it will never fire again: lets go of what it holds (the server, its message, the
    /// code), though a handle to it may live on.
    void let_go() noexcept;
  };

  /// Runs `fire` after `delay`, then every `period` (if not zero) while it returns true; `code`
  /// keeps its code loaded. `owner`, if any, is the server `fire` sends to: the timer goes when
  /// it ends.
  std::shared_ptr<entry> add(duration delay, duration period, std::function<bool()> fire,
                             std::shared_ptr<const void> code, server_core* owner = nullptr) {
    return add_(*this, delay, period, std::move(fire), std::move(code), owner, nullptr);
  }
  /// Copies `message` (an envelope holding its message in place) into `target`'s mailbox after
  /// `delay`, then every `period`, while the target runs. No code of the caller's is kept: a
  /// module's ticks do not keep the module loaded.
  std::shared_ptr<entry> add(duration delay, duration period, server_core& target, const envelope& message) {
    return add_(*this, delay, period, {}, {}, &target, &message);
  }

  /// Drops the timers sending to `server`, which has ended (alive is false): what they hold (the
  /// server's core, and so its module's lease; a module's code) goes now, not at their next tick,
  /// which may be hours away.
  void forget(server_core& server) noexcept { forget_(*this, server); }

  ~basic_timer_service() { stop(); }

  void stop() noexcept {
    {
      const spin_guard hold(lock_);
      stopping_ = true;
    }
    wake();
    thread_.join();
  }

  // -- a manual clock, for deterministic tests --

  /// Time moves only by advance() from now on (true), or with the steady clock again (false;
  /// timers due by the manual time then fire at once).
  void use_manual_clock(bool manual) {
    {
      const spin_guard hold(lock_);
      if (manual && !manual_) manual_now_ = std::chrono::steady_clock::now();
      manual_ = manual;
    }
    wake();
  }

  /// Moves the manual clock on by `by`, and fires on this thread, in order, every timer due by
  /// then (a repeating one as often as it is due).
  void advance(duration by) {
    time_point until;
    {
      const spin_guard hold(lock_);
      manual_now_ += by;
      until = manual_now_;
    }
    for (;;) {
      std::optional<due> firing;
      auto ignored = std::chrono::nanoseconds(-1);
      {
        const spin_guard hold(lock_);
        firing = take_due(until, ignored);
      }
      if (!firing) return;
      fire(std::move(*firing));
    }
  }

 private:
  struct due {
    time_point at;
    std::shared_ptr<entry> what;
  };
  static bool later(const due& a, const due& b) { return a.at > b.at; }

  void wake() { futex_bump(changed_, 1); }
  static bool copy_to_target(const entry& what) {
    return what.target->deliver([&](envelope& into) noexcept {
      std::memcpy(into.payload, what.message.payload, sizeof into.payload);
      into.kind = what.message.kind;
      into.reply = nullptr;
    });
  }

  void work() {
    for (;;) {
      const std::uint32_t seen = changed_.load(std::memory_order_seq_cst);
      std::optional<due> firing;
      auto sleep = std::chrono::nanoseconds(-1);  // until woken
      {
        const spin_guard hold(lock_);
        if (stopping_) return;
        if (!manual_) firing = take_due(std::chrono::steady_clock::now(), sleep);  // a manual clock fires in advance()
      }
      if (firing)
        fire(std::move(*firing));
      else
        futex_wait(changed_, seen, sleep);
    }
  }

  /// Under lock_: the next timer due by `now`, off the heap; or none, and how long until the
  /// next one is due.
  std::optional<due> take_due(time_point now, std::chrono::nanoseconds& sleep) {
    if (due_.empty()) return std::nullopt;
    if (due_.front().at > now) {
      sleep = due_.front().at - now;
      return std::nullopt;
    }
    std::pop_heap(due_.begin(), due_.end(), later);
    due firing = std::move(due_.back());
    due_.pop_back();
    return firing;
  }

  void fire(due firing) {
    entry& what = *firing.what;
    const bool repeats = what.period.count() > 0;
    // A one-shot is claimed before it fires, so that cancel() after this says it was too late.
    if (repeats ? what.cancelled.load(std::memory_order_acquire) : what.cancelled.exchange(true)) {
      what.let_go();
      return;
    }
    bool again = false;
    try {
      again = (what.target ? copy_to_target(what) : what.fire()) && repeats;
    } catch (...) {  // copying the message threw: the timer ends, the others go on
    }
    if (again) {
      firing.at += what.period;  // no drift: the next tick is due one period after this one
      const spin_guard hold(lock_);
      // Its server ended while it fired: forget() has been, or comes after it was put back.
      if (!what.owner || what.owner->alive.load(std::memory_order_seq_cst)) {
        due_.push_back(std::move(firing));
        std::push_heap(due_.begin(), due_.end(), later);
        return;
      }
    }
    what.cancelled.store(true, std::memory_order_release);  // done: cancel() says so
    what.let_go();
  }

  /// Under lock_: what time it is for the timers.
  time_point now() const { return manual_ ? manual_now_ : std::chrono::steady_clock::now(); }

  spin_lock lock_;
  std::atomic<std::uint32_t> changed_{0};
  std::vector<due> due_;
  bool stopping_ = false;
  bool manual_ = false;  // time moves only by advance()
  time_point manual_now_{};
  thread thread_;
  // The program's code, as for the pool's workers (and entries made by it, whatever adds them).
  std::shared_ptr<entry> (*const add_)(basic_timer_service&, duration, duration, std::function<bool()>,
                                       std::shared_ptr<const void>, server_core*, const envelope*) =
      [](basic_timer_service& timers, duration delay, duration period, std::function<bool()> fire,
         std::shared_ptr<const void> code, server_core* target, const envelope* message) {
        auto made = std::make_shared<entry>();
        made->code = std::move(code);
        made->fire = std::move(fire);
        made->owner = target;  // with no message: the server `fire` sends to
        if (target && message) {
          target->acquire();
          made->target = target;
          made->message = *message;
        }
        made->period = period;
        bool scheduled = false;
        {
          const spin_guard hold(timers.lock_);
          // Unless the program is ending, or the server has ended (forget() has been, or comes
          // after this and finds it).
          scheduled = !timers.stopping_ && (!target || target->alive.load(std::memory_order_seq_cst));
          if (scheduled) {
            if (!timers.thread_.joinable()) timers.thread_ = thread([&timers] { timers.work(); });
            timers.due_.push_back({timers.now() + delay, made});
            std::push_heap(timers.due_.begin(), timers.due_.end(), later);
          }
        }
        if (!scheduled) {  // it never fires
          made->cancelled.store(true, std::memory_order_release);
          made->let_go();
          return made;
        }
        timers.wake();
        return made;
      };
  void (*const forget_)(basic_timer_service&, server_core&) noexcept = [](basic_timer_service& timers,
                                                                          server_core& server) noexcept {
    for (;;) {  // one at a time, each let go outside the lock
      std::shared_ptr<entry> gone;
      {
        const spin_guard hold(timers.lock_);
        const auto at = std::find_if(timers.due_.begin(), timers.due_.end(),
                                     [&](const due& pending) { return pending.what->owner == &server; });
        if (at == timers.due_.end()) return;
        gone = std::move(at->what);
        *at = std::move(timers.due_.back());
        timers.due_.pop_back();
        std::make_heap(timers.due_.begin(), timers.due_.end(), later);
      }
      gone->cancelled.store(true, std::memory_order_release);
      gone->let_go();
    }
  };
};
using timer_service = basic_timer_service<>;

}  // namespace hotswap::detail

namespace hotswap::detail {

/// Frees a server whose last reference is gone: it has ended, and nothing can send any more.
/// What is left is dropped (calls fail), then the core is deleted.
template <class = void>
void free_server(server_core& server) noexcept {
  envelope message;
  while (take_message(server, message)) refuse(server, message, errc::server_died);
  run_controls(server);  // fails each: ended
  delete &server;
}

/// How long the runtime's destruction gives each server still running to stop (Erlang's
/// default call timeout, as hotswap::default_timeout).
inline constexpr std::chrono::milliseconds stop_timeout_at_exit{5000};

template <class Runtime>
result<void> stop_servers(Runtime& runtime, std::chrono::nanoseconds timeout_each);

/// Registered names, and the servers alive.
template <class>
class basic_runtime {
 public:
  basic_runtime() : pool(hardware_threads()) {}
  // At exit: the servers still running are stopped as hotswap::stop_all stops them (a module's
  // code is still loaded: its servers' leases hold it), then no more ticks, then no more
  // handlers (which could set timers).
  ~basic_runtime() {
    try {
      (void)stop_servers(*this, stop_timeout_at_exit);
    } catch (...) {  // out of memory: the servers left are dropped, as before there was a stop
    }
    timers.stop();
    pool.stop();
  }
  basic_runtime(const basic_runtime&) = delete;
  basic_runtime& operator=(const basic_runtime&) = delete;

  worker_pool pool;
  timer_service timers;
  report_log reports;  // crash and supervisor reports: to the program's sink

  // The program's code for what a module's copy of these headers must not do itself: look up
  // the program's thread-locals, make an executor (whose thread and vtable would be the module's).
  server_core*& (*const current_server)() noexcept = &current_server_of_thread<>;
  worker_pool*& (*const this_thread_pool)() noexcept = &worker_pool::this_thread_pool;
  executor* (*const start_own_thread)(server_core&) = [](server_core& server) -> executor* {
    server.own_thread = std::make_unique<own_thread>(server);
    return server.own_thread.get();
  };
  void (*const free_core)(server_core&) noexcept = &free_server<>;
  /// One hold on both (made by the program: a module's control block would outlive its code).
  std::shared_ptr<const void> (*const hold_both)(std::shared_ptr<const void>, std::shared_ptr<const void>) =
      [](std::shared_ptr<const void> first, std::shared_ptr<const void> second) -> std::shared_ptr<const void> {
    return std::make_shared<std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(std::move(first),
                                                                                                 std::move(second));
  };

  std::uint64_t next_id() noexcept { return ids_.fetch_add(1, std::memory_order_relaxed); }

  /// Bumped (and waiters woken) each time a stop of every server ends: what
  /// hotswap::stop_on_signals waits on.
  std::atomic<std::uint32_t> stops_ended{0};

  // -- the live servers, as Erlang's processes(): what observers list --

  /// A server that started (its init returned), until it ends: appended, so the list runs
  /// oldest first.
  void track(server_core& server) noexcept {
    const spin_guard hold(live_lock_);
    server.live_prev = newest_;
    (newest_ ? newest_->live_next : oldest_) = &server;
    newest_ = &server;
  }
  void untrack(server_core& server) noexcept {
    const spin_guard hold(live_lock_);
    if (!server.live_prev && oldest_ != &server) return;  // never tracked (its init failed)
    (server.live_prev ? server.live_prev->live_next : oldest_) = server.live_next;
    (server.live_next ? server.live_next->live_prev : newest_) = server.live_prev;
    server.live_prev = server.live_next = nullptr;
  }
  /// Calls `keep(server)` for every live server, oldest first, with a reference the caller
  /// releases. It runs under the list's lock: it keeps the server and does nothing else. (A
  /// server in the list holds its reference for being alive: acquiring one here is safe.)
  template <class Keep>
  void each_live(Keep keep) {
    const spin_guard hold(live_lock_);
    for (server_core* server = oldest_; server; server = server->live_next) {
      server->acquire();
      keep(server);
    }
  }

  bool register_name(const std::string& name, server_core& server) {
    const spin_guard hold(names_lock_);
    const spin_guard hold_server(server.exit_lock);
    const auto at = find(name);
    if (!server.alive.load() || !server.name.empty() || (at != names_.end() && at->first == name)) return false;
    server.acquire();
    names_.emplace(at, name, &server);
    server.name = name;
    return true;
  }
  /// A reference to the server registered as `name`, or null.
  server_core* whereis(const std::string& name) {
    const spin_guard hold(names_lock_);
    const auto found = find(name);
    if (found == names_.end() || found->first != name) return nullptr;
    found->second->acquire();
    return found->second;
  }
  /// Frees `name` (only if `server` holds it, when given).
  bool unregister_name(const std::string& name, const server_core* server = nullptr) {
    server_core* removed;
    {
      const spin_guard hold(names_lock_);
      const auto found = find(name);
      if (found == names_.end() || found->first != name || (server && found->second != server)) return false;
      removed = found->second;
      names_.erase(found);
      const spin_guard hold_server(removed->exit_lock);
      removed->name.clear();
    }
    removed->release();
    return true;
  }

 private:
  std::atomic<std::uint64_t> ids_{1};
  using name_entry = std::pair<std::string, server_core*>;
  std::vector<name_entry>::iterator find(const std::string& name) {
    return std::lower_bound(names_.begin(), names_.end(), name,
                            [](const name_entry& entry, const std::string& key) { return entry.first < key; });
  }

  spin_lock names_lock_;
  std::vector<name_entry> names_;  // sorted by name
  spin_lock live_lock_;
  server_core* oldest_ = nullptr;  // the live servers, a list through server_core::live_next
  server_core* newest_ = nullptr;
};

/// The program's runtime (a module's code reaches the program's).
template <class>
runtime& the_runtime() {
#ifdef HOTSWAP_MODULE_BUILD
  return *module_host.runtime_of_host;
#else
  static runtime instance;
  return instance;
#endif
}

template <class>
server_core*& current_server() noexcept {
  if constexpr (building_module)
    return the_runtime().current_server();
  else
    return current_server_of_thread();
}

template <class>
worker_pool& shared_pool() {
  return the_runtime().pool;
}

template <class>
void give_back_memory_when_idle() noexcept {
  the_runtime().pool.give_back_memory_when_idle();
}

template <class>
std::uint64_t new_id() noexcept {
  return the_runtime().next_id();
}

template <class>
void write_report(const report& said) noexcept {
  the_runtime().reports.write(said);
}

template <class V>
basic_timer_service<V>::entry::~entry() {
  if (target) target->release();
}

template <class V>
void basic_timer_service<V>::entry::let_go() noexcept {
  fire = nullptr;  // before the hold on its code
  code.reset();
  owner = nullptr;
  if (target) std::exchange(target, nullptr)->release();
}

/// What a server leaves to be told of its end.
struct ended_lists {
  std::vector<exit_monitor> monitors;
  std::vector<server_core*> links;
  std::vector<watched_server> watching;
};

/// Marks `server` ended for everyone else (not alive, its reason kept) and takes what is to be
/// told; then frees its name and drops its timers. Once, by whoever comes first: its own end, or
/// an abandon; false if it had been.
template <class = void>
bool mark_ended(server_core& server, const exit_reason& reason, ended_lists& told) noexcept {
  std::string name;
  {
    const spin_guard hold(server.exit_lock);
    if (!server.alive.load(std::memory_order_seq_cst)) return false;
    server.alive.store(false, std::memory_order_seq_cst);
    try {
      name = server.name;
      server.reason = reason;
    } catch (...) {  // out of memory: the reason's text is lost, not the end
      server.reason = {reason.kind, {}};
    }
    told = {std::move(server.monitors), std::move(server.links), std::move(server.watching)};
  }
  the_runtime().timers.forget(server);  // a timer of an hour would otherwise hold it (and its module) that long
  if (!name.empty()) the_runtime().unregister_name(name, &server);
  the_runtime().untrack(server);
  return true;
}

/// Ends a server on its own thread: terminate, free the state, fail what waits, tell monitors
/// and links. (Also for a server whose init failed: it has no state; and for one abandoned while
/// its handler ran, whose end was told then: its terminate does not run.)
template <class>
void end_server(server_core& server, exit_reason reason) noexcept {
  if (server.ended) return;
  const bool abandoned = server.abandoned.load(std::memory_order_acquire);
  if (server.state) {
    if (!abandoned) server.table->terminate(server.state, reason);
    server.table->destroy(server.state);
    server.state = nullptr;
  }
  server.ended = true;
  server.continuation = nullptr;
  ended_lists told;
  const bool first = mark_ended(server, reason, told);
  server.suspended = false;
  envelope message;
  while (take_message(server, message)) refuse(server, message, errc::server_died);
  run_controls(server);  // fails each: ended
  if (first)
    tell_exit(server, server.reason, std::move(told.monitors), std::move(told.links), std::move(told.watching));
  server.release();  // the reference it held for being alive; whoever runs it holds another
}

/// OTP's brutal_kill, as close as threads allow: `server`, whose handler does not return, is
/// ended for everyone else at once (not alive, its name free, its monitors and links told
/// `reason`); its state is destroyed, without its terminate, when the handler returns, on its own
/// thread (a stop queued for it, here, gets it there even if it is idle by then). False if it
/// had ended already. Any thread but the server's.
template <class = void>
bool abandon(server_core& server, exit_reason reason) noexcept {
  // Before the stop is sent (an idle server runs it at once, elsewhere): its end reads this.
  // (If it is ending by itself meanwhile, its end read the flag before it marked itself ended,
  // and the mark below fails: no harm.)
  server.abandoned.store(true, std::memory_order_release);
  end_later(server, reason);  // before the mark: once marked ended, nothing can be sent to it
  ended_lists told;
  if (!mark_ended(server, reason, told)) return false;
  tell_exit(server, reason, std::move(told.monitors), std::move(told.links), std::move(told.watching));
  return true;
}

// ---- the program's end ----

/// Ends `server` with `reason` on its own thread, always sent (never run on this thread, as an
/// idle server's sys request is), so that `timeout` bounds a terminate that blocks; false if it
/// had not ended by then (its stop may take effect later: the server frees the request).
template <class = void>
bool end_within(server_core& server, exit_reason reason, std::chrono::nanoseconds timeout) {
  auto* request = new ending_request(std::move(reason), true);
  if (!server.deliver_control(*request)) {  // it had ended
    delete request;
    return true;
  }
  if (!request->wait(timeout, [] {})) return false;
  delete request;
  return true;
}

/// Stops every live server as hotswap::stop_all documents: the servers not started by a
/// supervisor, newest first, each within `timeout_each`; then, if any server it has not tried
/// is still running (started meanwhile, or a child its supervisor left), those the same way,
/// until a look at the live servers finds none it has not tried.
template <class Runtime>
result<void> stop_servers(Runtime& program, std::chrono::nanoseconds timeout_each) {
  if (current_server())
    return error{errc::calling_self,
                 "stop_all from a server's handler would wait for that server: call it from another thread, or raise "
                 "a signal hotswap::stop_on_signals takes"};
  struct held {  // the references each_live took, released however this ends
    std::vector<server_core*> servers;
    ~held() {
      for (server_core* server : servers) server->release();
    }
  };
  std::vector<std::uint64_t> tried;  // sorted
  std::vector<std::string> late;
  for (;;) {
    held live;
    program.each_live([&](server_core* server) { live.servers.push_back(server); });
    const auto untried = [&](const server_core* server) {
      return !std::binary_search(tried.begin(), tried.end(), server->id);
    };
    const bool top_left = std::any_of(live.servers.begin(), live.servers.end(), [&](const server_core* server) {
      return untried(server) && !server->supervised;
    });
    const std::size_t tried_before = tried.size();
    for (auto at = live.servers.rbegin(); at != live.servers.rend(); ++at) {
      server_core& server = **at;
      if (!untried(&server) || (top_left && server.supervised)) continue;
      tried.push_back(server.id);
      if (!end_within(server, {exit_kind::shutdown, "the program is stopping"}, timeout_each))
        late.push_back(server.label());
    }
    if (tried.size() == tried_before) break;
    std::sort(tried.begin(), tried.end());
  }
  futex_bump(program.stops_ended, 1 << 30);
  if (late.empty()) return {};
  std::string named;
  for (std::size_t i = 0; i < late.size() && i < 8; ++i) named += (i ? ", " : "") + late[i];
  if (late.size() > 8) named += " and " + std::to_string(late.size() - 8) + " more";
  return error{errc::timeout, named + " did not stop within " + std::to_string(timeout_each.count() / 1'000'000) +
                                  " ms (a handler or terminate that has not returned): the stop may yet take effect"};
}

}  // namespace hotswap::detail
// ---- hotswap/detail/servers/control.hpp ----
// Sys requests (the machinery; hotswap/sys.hpp has the requests): a function run on the server
// between two messages, also while it is suspended, on the calling thread when no thread is inside its handler.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

// ---- hotswap/detail/servers/send.hpp ----
// Sending: a message packed before the mailbox is touched (whatever can throw happens first), a
// cast or an info checked against the interface, and a call that waits for its reply.

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>


namespace hotswap {
template <class Interface>
class server_ref;  // hotswap/servers.hpp
}  // namespace hotswap

namespace hotswap::detail {

/// A message packed for an envelope before the mailbox is touched: whatever can throw
/// (allocating a boxed message) happens here.
template <class M>
class packed {
 public:
  /// Packed as kind word `kind` says (detail/abi/envelope.hpp).
  template <class T>
  packed(std::uint32_t kind, T&& message) : kind_(kind) {
    pack_sent<M>(bytes_, kind, std::forward<T>(message));
  }
  ~packed() {
    if (!sent_) discard_sent<M>(bytes_, kind_);
  }
  packed(const packed&) = delete;
  packed& operator=(const packed&) = delete;
  bool send(server_core& to, void* reply) {
    sent_ = to.deliver([&](envelope& into) noexcept {
      std::memcpy(into.payload, bytes_.payload, sizeof bytes_.payload);
      into.kind = kind_;
      into.reply = reply;
    });
    return sent_;
  }

 private:
  envelope bytes_{};
  std::uint32_t kind_;
  bool sent_ = false;
};

/// Sends a cast or an info; a message the interface does not declare as that kind is a compile
/// error, reported once.
template <message_kind Kind, class Interface, class M>
bool send_kind(const server_ref<Interface>& to, M&& message) {
  using check = sent_check<Interface, M, Kind>;
  if constexpr (!fine<check>) {
    (void)sizeof(error_of<check>);
    __builtin_unreachable();
  } else {
    using T = std::remove_cvref_t<M>;
    if (!to) return false;
    using sent = sent_as<Interface, T>;
    if constexpr (sent::since > 1)  // a server downgraded below the message's version refuses it
      if (!to.core()->takes(sent::since)) return false;
    return packed<T>(sent::kind, std::forward<M>(message)).send(*to.core(), nullptr);
  }
}

template <class = void>
void before_parking() {
  worker_pool* pool = building_module ? the_runtime().this_thread_pool() : worker_pool::this_thread_pool();
  if (pool) pool->blocking();
}

/// Sends `message` as a call (its kind word: `kind`) and waits for its reply of type `R`, at
/// most `timeout`.
template <class R, class M>
result<R> call_server(server_core& to, std::uint32_t kind, M&& message, std::chrono::nanoseconds timeout) {
  using T = std::remove_cvref_t<M>;
  if (&to == current_server()) return error{errc::calling_self, "it would wait for itself"};
  cached_slot<R> slot;
  reply_slot_base* const reply = slot.get();  // what the receiver casts the envelope's pointer back to
  if (!packed<T>(kind, std::forward<M>(message)).send(to, reply)) return error{errc::no_server, {}};
  if (!slot.get()->wait(timeout, before_parking<>)) {
    slot.abandon();
    return error{errc::timeout, "no reply within " + std::to_string(timeout.count() / 1'000'000) + " ms"};
  }
  if (!slot.get()->value) return slot.get()->failure;
  return std::move(*slot.get()->value);
}

}  // namespace hotswap::detail

namespace hotswap::detail {

template <class Result, class Run>
struct control_call final : control_request {
  Run body;
  std::optional<hotswap::result<Result>> answer;
  explicit control_call(Run run)
      : control_request([](reply_slot_base* self) noexcept { delete static_cast<control_call*>(self); }),
        body(std::move(run)) {
    this->run = [](control_request& self, server_core& server) noexcept {
      auto& call = static_cast<control_call&>(self);
      outcome failed;
      report_failure(failed, [&] { call.answer.emplace(call.body(server)); });
      if (failed.failed)
        call.fail(errc::handler_failed, std::move(failed.what));
      else
        call.finish(answered);
    };
  }
  /// Its answer, once it has run (or the failure that kept it from running).
  hotswap::result<Result> take() {
    if (!answer) return failure;
    return std::move(*answer);
  }
};

/// Whether a sys request can be sent to `server` at all, and why not.
template <class Handle>
hotswap::result<void> control_allowed(const Handle& server) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (server.core() == current_server()) return error{errc::calling_self, "a server cannot wait for itself"};
  return {};
}

/// Runs `request` on this thread if no thread is inside the server's handler (it is on the pool,
/// idle or only watched by a worker) and no sys request is ahead of it: no worker has to be woken
/// for it (a wake costs 20-80 us) or reached across cores, whatever waits in the mailbox. False
/// if it must be sent instead.
template <class = void>
bool run_control_here(server_core& server, control_request& request) noexcept {
  // A sys request ahead of it goes first: the one running or watching the server serves both.
  if (server.runs_on != &the_runtime().pool || server.controls.load(std::memory_order_acquire)) return false;
  std::uint32_t expected = server.run_state.load(std::memory_order_relaxed);
  do
    if (expected != server_core::idle && (expected & ~server_core::notified) != server_core::watched) return false;
  while (!server.run_state.compare_exchange_weak(expected, server_core::running, std::memory_order_seq_cst));
  const bool ran = server.controls.load(std::memory_order_acquire) == nullptr;
  if (ran) {
    server_core*& current = current_server();
    server_core* const outer = std::exchange(current, &server);
    if (server.alive.load(std::memory_order_acquire))
      request.run(request, server);
    else
      request.fail(errc::no_server, "the server has stopped");
    current = outer;
  }
  // Messages that were there, came meanwhile, or were held until a resume: the pool takes over.
  // (Those that come to a suspended server wait for its resume: no worker is woken for them.)
  for (;;) {
    if (server.has_input()) {
      server.runs_on->schedule(server);
      break;
    }
    expected = server_core::running;
    if (server.run_state.compare_exchange_strong(expected, server_core::idle, std::memory_order_seq_cst)) break;
    server.run_state.exchange(server_core::running, std::memory_order_seq_cst);  // a message came meanwhile
  }
  return ran;
}

/// Runs `run(server_core&) -> result<Result>` on the server, between its messages (also while
/// suspended), and waits for it at most `timeout`. On an idle server it runs at once on the
/// calling thread; the timeout then bounds nothing (sys requests are short).
template <class Result, class Run>
result<Result> control(const auto& server, std::chrono::nanoseconds timeout, Run run) {
  if (auto allowed = control_allowed(server); !allowed) return allowed.error();
  control_call<Result, Run> here(std::move(run));  // on the stack: nobody else sees it if it runs here
  if (run_control_here(*server.core(), here)) return here.take();
  auto* request = new control_call<Result, Run>(std::move(here.body));
  if (!server.core()->deliver_control(*request)) {
    delete request;
    return error{errc::no_server, {}};
  }
  if (!request->wait(timeout, before_parking<>))
    return error{errc::timeout, "no answer within " + std::to_string(timeout.count() / 1'000'000) +
                                    " ms: the request may yet take effect (sys::get_status shows whether it did)"};
  const std::unique_ptr<control_call<Result, Run>> done(request);
  return done->take();
}

/// control() in two halves: a sys request sent now and waited for later, so that one thread can
/// have many servers serve theirs at once (a release suspends all its servers in parallel, under
/// one deadline). An idle server serves it at once, on this thread.
template <class Result, class Run>
class sent_control {
 public:
  sent_control(const auto& server, Run run) {
    if (auto allowed = control_allowed(server); !allowed) {
      failure_ = allowed.error();
      return;
    }
    request_ = new control_call<Result, Run>(std::move(run));
    if (run_control_here(*server.core(), *request_)) return;
    if (!server.core()->deliver_control(*request_)) {
      delete std::exchange(request_, nullptr);
      failure_ = error{errc::no_server, {}};
    }
  }
  sent_control(sent_control&& other) noexcept
      : request_(std::exchange(other.request_, nullptr)), failure_(std::move(other.failure_)) {}
  sent_control& operator=(sent_control&&) = delete;
  /// Not waited for: the server frees it after serving it.
  ~sent_control() {
    if (request_ && request_->wait(std::chrono::nanoseconds::zero(), [] {})) delete request_;
  }

  /// Its answer, waiting until `deadline` at most (once).
  result<Result> wait_until(std::chrono::steady_clock::time_point deadline) {
    if (!request_) return failure_;
    control_call<Result, Run>* request = std::exchange(request_, nullptr);
    const auto left = std::max<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now(), {});
    if (!request->wait(left, before_parking<>))
      return error{errc::timeout, "no answer in time: the request may yet take effect"};
    const std::unique_ptr<control_call<Result, Run>> done(request);
    return done->take();
  }

 private:
  control_call<Result, Run>* request_ = nullptr;
  hotswap::error failure_{};
};

}  // namespace hotswap::detail
// ---- hotswap/detail/servers/start.hpp ----
// Starting a server: its core, its hold on the code of its table, its thread (the pool's or its
// own), its name, then init, on the calling thread.

#include <cstdint>
#include <string>
#include <utility>


namespace hotswap {
class any_server;  // hotswap/servers.hpp
template <class Interface>
class server_ref;
}  // namespace hotswap

namespace hotswap::detail {

/// A state made already, which a server starts with instead of its init's (a release restarting
/// a server hands it the state made from the one before), and the hold on the code it may point
/// into.
struct made_state {
  void* state;
  std::shared_ptr<const void> owner;
};

/// Starts a server on `table` (whose interface the caller checked): init runs on this thread,
/// where it is the current server (or, given `made`, the server takes that state and init does
/// not run); then it runs on the pool (or `runs_on`: tests give a manual executor). The core,
/// holding a reference for the caller, or why not (a state made is then the caller's still).
template <class = void>
result<server_core*> start_server(const implementation_table& table, const void* argument, const std::string& name,
                                  bool on_own_thread, std::shared_ptr<const void> table_owner,
                                  void (*bind_owner)(const void* table_owner, server_core& server) noexcept,
                                  executor* runs_on = nullptr, made_state* made = nullptr) {
  runtime& runtime = the_runtime();
  struct reference {  // the caller's, released if the start fails (or throws)
    server_core* core;
    ~reference() {
      if (core) core->release();
    }
  } handle{new server_core(runtime.next_id(), table, runtime.free_core)};
  server_core* const core = handle.core;
  core->acquire();  // the reference for being alive
  if (const server_core* starter = current_server()) core->supervised = starter->starting_child;
  if (!table_owner && building_module) {  // a module's server of its own: leased from it
    const lease_maker& leases = module_leases();
    table_owner = leases.make(pin_this_image());
    bind_owner = leases.bind;
  }
  core->table_owner = std::move(table_owner);
  if (bind_owner) bind_owner(core->table_owner.get(), *core);
  // Marked running (owned by this thread) until init returns: what is sent meanwhile, through
  // the name or from init itself, waits.
  core->run_state.store(server_core::running);
  core->runs_on = runs_on ? runs_on : &runtime.pool;  // another executor: a test's
  outcome initialized;
  if (on_own_thread) {
    // It runs only when scheduled.
    report_failure(initialized, [&] { core->runs_on = runtime.start_own_thread(*core); });
  }
  if (!initialized.failed && !name.empty() && !runtime.register_name(name, *core))
    initialized = {true, "the name " + name + " is already registered"};
  if (!initialized.failed && made) {
    core->state = std::exchange(made->state, nullptr);
    core->state_owner = std::move(made->owner);
  } else if (!initialized.failed) {
    server_core*& current = current_server();
    server_core* const outer = std::exchange(current, core);
    core->state = table.init(argument, initialized);
    current = outer;
  }
  if (!initialized.failed) runtime.track(*core);
  if (initialized.failed) {
    // As if it had ended: what was sent meanwhile fails, monitors hear of it, the name is free.
    end_server(*core, {exit_kind::crashed, initialized.what});
    if (core->own_thread) static_cast<detail::own_thread&>(*core->own_thread).wake();  // to see that it has ended
  }
  std::uint32_t quiet = server_core::running;
  if (core->continuation || !core->run_state.compare_exchange_strong(quiet, server_core::idle))
    core->runs_on->schedule(*core);  // what was sent meanwhile, or init's continuation, on its thread
  if (initialized.failed) return error{errc::init_failed, std::move(initialized.what)};
  return std::exchange(handle.core, nullptr);
}

/// hotswap::start: a server of `Interface` on `table`, and the hold on the table's code it keeps
/// (a module's lease, bound to the server by `bind_owner` before its init runs), on the pool or
/// on `runs_on`.
template <class Interface, class Handle = any_server>
result<server_ref<Interface>> start_as(const implementation_table& table, const void* argument, const std::string& name,
                                       bool on_own_thread, std::shared_ptr<const void> table_owner = {},
                                       void (*bind_owner)(const void* table_owner,
                                                          server_core& server) noexcept = nullptr,
                                       executor* runs_on = nullptr) {
  if (!implements(table, Interface::fingerprint, Interface::vsn))
    return error{errc::wrong_interface, std::string(table.name) + " implements " + describe_interface(table) +
                                            ", not " + std::string(Interface::name) +
                                            (Interface::vsn > 1 ? " version " + std::to_string(Interface::vsn) : "") +
                                            (table.interface_name == Interface::name ? " or a later version" : "")};
  auto started = start_server(table, argument, name, on_own_thread, std::move(table_owner), bind_owner, runs_on);
  if (!started) return started.error();
  return *server_ref<Interface>::from(Handle(*started));
}

}  // namespace hotswap::detail
// ---- hotswap/detail/servers/timers.hpp ----
// Timers of servers: a message sent after a delay or every period, by the runtime's timer thread.

#include <type_traits>
#include <utility>


namespace hotswap {
template <class Interface>
class server_ref;  // hotswap/servers.hpp
}  // namespace hotswap

namespace hotswap::detail {

/// A timer sending `message`: as plain bytes when it travels in place (no code of the caller's
/// is kept), else by a copy of it (a module's code then stays loaded while the timer runs).
template <class Interface, class M>
std::shared_ptr<timer_service::entry> add_timer(const server_ref<Interface>& to, M&& message,
                                                std::chrono::steady_clock::duration delay,
                                                std::chrono::steady_clock::duration period) {
  using check = sent_check<Interface, M, message_kind::info>;
  if constexpr (!fine<check>) {
    (void)sizeof(error_of<check>);  // timers send infos: reported once
    __builtin_unreachable();
  }
  using T = std::remove_cvref_t<M>;
  if constexpr (stored_in_place<T>) {
    if (to) {
      envelope bytes{};
      pack(bytes, std::forward<M>(message));
      bytes.kind = sent_as<Interface, T>::kind;  // in place: packed as any message
      return the_runtime().timers.add(delay, period, *to.core(), bytes);
    }
  }
  return the_runtime().timers.add(
      delay, period,
      [to, message = T(std::forward<M>(message)), repeats = period.count() > 0]() mutable {
        return repeats ? send(to, message) : send(to, std::move(message));
      },
      pin_this_image(), to.core());
}

}  // namespace hotswap::detail

namespace hotswap {

/// Erlang's default call timeout.
inline constexpr std::chrono::milliseconds default_timeout{5000};

// -- interfaces --

/// A call: a `Message` answered with a `Reply`.
template <class Message, class Reply>
struct call_msg {
  static_assert(!std::is_void_v<Reply>, "hotswap: a call has a reply; for a message without one, use cast_msg");
  using message = Message;
  using reply = Reply;
  static constexpr detail::message_kind kind = detail::message_kind::call;
};
/// A cast: a `Message` sent without waiting for its handling.
template <class Message>
struct cast_msg {
  using message = Message;
  static constexpr detail::message_kind kind = detail::message_kind::cast;
};
/// An info: a `Message` that is not part of the request protocol (timer ticks, notifications).
template <class Message>
struct info_msg {
  using message = Message;
  static constexpr detail::message_kind kind = detail::message_kind::info;
};

/// Declares, first in an interface's list, that it is the next version of `Previous` (of the
/// same name): a client built against `Previous` keeps calling a server that runs it. Its list
/// then says what changed: a message of `Previous` listed with a later version of its schema (or
/// its call with a later version of its reply's) replaces it; a new message is added; a message
/// of `Previous` not listed is kept; hotswap::removed_msg<M> takes M away.
template <class Previous>
struct follows {
  using message = follows;  // (as a message would say: checked once in the list)
  static_assert(detail::is_interface<Previous>, "hotswap: hotswap::follows names the interface this one follows");
};
/// In a later version of an interface: `Message` of the version before is no longer taken
/// (a client that sends it gets errc::wrong_interface).
template <class Message>
struct removed_msg {
  using message = Message;
};

/// An interface: the calls (each with its reply type), casts and infos a server takes, fixed
/// across the versions of its implementations; a later version of it lists hotswap::follows
/// first (above). Each message has a slot, its number on the wire, the same in every version.
template <detail::fixed_string Name, class... Kinds>
struct interface {
 private:
  using layout = detail::interface_layout<Name, Kinds...>;

 public:
  static constexpr std::string_view name = Name.view();
  /// 1, or one more than the interface it follows.
  static constexpr std::uint32_t vsn = layout::vsn;
  /// The messages' slots (detail::slot: the kind now, since when, and what it was before).
  using slots = typename layout::slots;
  /// The messages an implementation handles (call_msg, cast_msg and info_msg).
  using kinds = typename layout::live_kinds;
  static constexpr std::uint32_t size = layout::size;

  /// The slot of `Message` (size when absent, or removed).
  template <class Message>
  static constexpr std::uint32_t index_of = layout::template index_of<std::remove_cvref_t<Message>>;
  template <std::size_t I>
  using kind_at = typename layout::template slot_at<I>::kind;

  /// A hash of the name, and of each message's kind, name and fields (and reply) in order; for
  /// a later version, of the one before and of each slot's vsn and kind.
  static constexpr std::uint64_t fingerprint = layout::fingerprint;
  /// The fingerprints of its versions, the first first, this one's last.
  static constexpr std::array<std::uint64_t, layout::vsn> lineage = layout::lineage;  // (typed: computed when used)
  static constexpr std::array<std::string_view, layout::size> message_names = layout::message_names;

 private:
  static_assert(sizeof(detail::error_of<decltype(detail::check_interface<interface, Kinds...>(
                           std::index_sequence_for<Kinds...>{}))>) != 0);  // a message listed twice, reported once
  static_assert(sizeof(detail::error_of<decltype(detail::check_versions<interface>(std::type_identity<Kinds>{}...))>) !=
                0);  // a change a later version may not make
};

/// A check that a client built against `Old` may talk to a server that runs `New`: true when
/// `New` is `Old` or a later version of it; otherwise one compile error, naming the first of Old's
/// messages New does not take as Old sends it. `static_assert(hotswap::compatible<V1, V2>);`
template <class Old, class New>
inline constexpr bool compatible = detail::compatibility<Old, New>::value;

/// The reply type of call `Message` in `Interface`.
template <class Interface, class Message>
using reply_of = typename decltype(detail::reply_type<Interface, Message>())::type;

// -- implementations --

/// Names the vsn a hand-written code_change upgrades (or downgrades) from.
template <int Vsn>
struct from_vsn {
  static constexpr int value = Vsn;
};

/// The state type each older (or newer) vsn of an implementation held, as hotswap::version
/// entries: what change_code can start from.
template <class... Versions>
struct state_history {};

/// An implementation of an interface as the runtime sees it: plain data and function pointers, the
/// same in a program and in the modules it loads.
using implementation_table = detail::implementation_table;

/// The implementation table of `Implementation`: what a server runs, and what change_code
/// swaps in. Does not compile (naming the message or the vsn) if a handler is missing, returns
/// the wrong type, or a state in the history cannot migrate.
template <class Implementation>
inline constexpr implementation_table table_of = detail::checked_table<Implementation>::table;

// -- handles --

/// A handle to a server, of any interface. Copies share the server; a handle does not keep a
/// server running (a server runs until it stops), only answerable: requests to a stopped
/// server fail with errc::no_server.
class any_server {
 public:
  any_server() = default;
  any_server(const any_server& other) noexcept : core_(other.core_) {
    if (core_) core_->acquire();
  }
  any_server(any_server&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  any_server& operator=(any_server other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~any_server() {
    if (core_) core_->release();
  }

  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// Unique in the process, never reused.
  std::uint64_t id() const noexcept { return core_ ? core_->id : 0; }
  bool alive() const noexcept { return core_ && core_->alive.load(std::memory_order_acquire); }
  /// How it ended (when it has).
  exit_reason exit() const {
    const detail::spin_guard hold(core_->exit_lock);
    return core_->reason;
  }
  friend bool operator==(const any_server& a, const any_server& b) noexcept { return a.core_ == b.core_; }

  /// Wraps a core, taking over one reference.
  explicit any_server(detail::server_core* adopted) noexcept : core_(adopted) {}
  detail::server_core* core() const noexcept { return core_; }

 protected:
  detail::server_core* core_ = nullptr;
};

/// any_server or a server_ref. (The functions that take one are templates so that a program
/// compiles only the requests it makes.)
template <class T>
concept server_handle = std::derived_from<T, any_server>;

/// A handle to a server of `Interface`, whatever implementation or version it runs.
template <class Interface>
class server_ref : public any_server {
 public:
  using interface = Interface;
  server_ref() = default;
  /// The same server, if its code implements this interface (or a later version of it).
  static std::optional<server_ref> from(any_server server) {
    if (!server || !server.core()->implements(Interface::fingerprint, Interface::vsn)) return std::nullopt;
    return server_ref(std::move(server));
  }
  /// The same, or why not: errc::wrong_interface naming the interface it runs, or no_server.
  static result<server_ref> of(any_server server);

 private:
  explicit server_ref(any_server server) noexcept : any_server(std::move(server)) {}
};

// -- what follows a handler --

/// OTP's {continue, Continue} and handle_continue/2: once the running handler (or init) returns,
/// `Implementation::handle_continue(const Continue&, state&)` runs, before any other message or
/// sys request; after init, on the server's own thread, once hotswap::start has returned (slow
/// setup that should not hold the starter). A throw in it is a handler's. From a handler or the
/// init of a server running `Implementation` (std::logic_error otherwise).
template <class Implementation, class Continue>
void continue_with(Continue continuation);

/// OTP's {noreply, State, Timeout}: if no message comes within `after` of the running handler's
/// return, the server receives the info `message` (a message that comes first, a suspension, or
/// another idle_timeout cancels it). From a handler or the init of `self` (std::logic_error
/// otherwise).
template <class Interface, class M>
void idle_timeout(const server_ref<Interface>& self, std::chrono::nanoseconds after, M message);

// -- deferred replies --

/// The right to answer one call, now or later (OTP's From in handle_call/3, answered by
/// gen_server:reply/2; CAF's response_promise). A call handler that takes one,
/// `static void handle_call(const Message&, state&, hotswap::reply_to<Reply> from)`, answers
/// through it: at once, from another message's handler, from a timer's info, or from another
/// server it hands the handle to. Copies answer the same call: the first answer is the reply,
/// a second is refused (errc::already_replied). When the last copy goes unanswered (dropped, or
/// its server stops with it in its state), the caller gets errc::no_reply at once. It is data of
/// the runtime, not of the code: a server keeps it in its state across an upgrade.
template <class Reply>
using reply_to = detail::deferred<Reply>;

/// OTP's gen_server:reply(From, Reply): `to.reply(value)`.
template <class Reply, class R>
result<void> reply(reply_to<Reply>& to, R&& value) {
  return to.reply(std::forward<R>(value));
}

/// reply_to's canonical name, `hotswap::reply_to<` the reply's `>`: a field of a state's schema.
template <class Reply>
struct type_name<detail::deferred<Reply>> : detail::wrapper_name<"hotswap::reply_to", Reply> {};

// -- starting --

struct start_options {
  std::string name{};       ///< registered as this name (empty: none)
  bool own_thread = false;  ///< a thread of its own instead of the pool (for handlers that block)
};

/// Starts a server running `table`: init runs on the calling thread (where hotswap::self() is
/// the new server), then the server takes messages. Fails if init throws or the name is taken.
template <class Interface>
result<server_ref<Interface>> start(const implementation_table& table, const void* argument,
                                    start_options options = {}) {
  return detail::start_as<Interface>(table, argument, options.name, options.own_thread);
}

/// Starts a server of `Implementation`, whose init takes no argument.
template <class Implementation>
requires(!detail::init_takes_argument<Implementation>) result<server_ref<typename Implementation::interface>> start(
    start_options options = {}) {
  return start<typename Implementation::interface>(table_of<Implementation>, nullptr, std::move(options));
}

/// Starts a server of `Implementation`, passing `argument` to its init.
template <class Implementation>
requires detail::init_takes_argument<Implementation> result<server_ref<typename Implementation::interface>> start(
    const detail::init_argument<Implementation>& argument, start_options options = {}) {
  return start<typename Implementation::interface>(table_of<Implementation>, &argument, std::move(options));
}

// -- requests --

/// Sends a call and waits for its reply, at most `timeout`. Fails with errc::timeout,
/// errc::no_server (the server had stopped), errc::server_died (it stopped, or its handler
/// threw, while the call waited: reported at once), or errc::calling_self (from a handler of
/// the same server, as Erlang's calling_self).
template <class Interface, class M>
result<reply_of<Interface, M>> call(const server_ref<Interface>& to, M&& message,
                                    std::chrono::nanoseconds timeout = default_timeout) {
  using check = detail::sent_check<Interface, M, detail::message_kind::call>;
  if constexpr (!detail::fine<check>) {
    (void)sizeof(detail::error_of<check>);  // a message the interface does not call: reported once
    __builtin_unreachable();
  }
  if (!to) return error{errc::no_server, "an empty server handle"};
  return detail::call_server<reply_of<Interface, M>>(
      *to.core(), detail::sent_as<Interface, std::remove_cvref_t<M>>::kind, std::forward<M>(message), timeout);
}

/// Sends a cast. False if the server had stopped (the message is dropped, as in Erlang).
template <class Interface, class M>
bool cast(const server_ref<Interface>& to, M&& message) {
  return detail::send_kind<detail::message_kind::cast>(to, std::forward<M>(message));
}

/// Sends an info. False if the server had stopped.
template <class Interface, class M>
bool send(const server_ref<Interface>& to, M&& message) {
  return detail::send_kind<detail::message_kind::info>(to, std::forward<M>(message));
}

/// The server whose handler (or init) is running on this thread, as a handle of `Interface`.
/// Throws std::logic_error outside a handler or for another interface.
template <class Interface>
server_ref<Interface> self() {
  detail::server_core* current = detail::current_server();
  if (!current) throw std::logic_error("hotswap::self() called outside a server");
  current->acquire();
  auto typed = server_ref<Interface>::from(any_server(current));
  if (!typed) throw std::logic_error("hotswap::self(): the running server has another interface");
  return *typed;
}

/// Stops a server with `reason` (OTP's gen_server:stop/3): its terminate runs, calls still
/// waiting fail with errc::server_died, its name is freed, its monitors and links are told the
/// reason (a reason other than normal stops the servers linked to it that do not trap exits, and
/// a transient child's supervisor restarts it). From the server's own handler, the stop is
/// queued and happens once the handler returns (this returns at once): a call handler that
/// stops its server this way still replies (OTP's {stop, Reason, Reply, State}).
result<void> stop(const server_handle auto& server, exit_reason reason,
                  std::chrono::nanoseconds timeout = default_timeout) {
  if (server && server.core() == detail::current_server()) {
    detail::end_later(*server.core(), std::move(reason));
    return {};
  }
  return detail::control<void>(server, timeout,
                               [reason = std::move(reason)](detail::server_core& core) -> result<void> {
                                 detail::end_server(core, reason);
                                 return {};
                               });
}

/// Stops a server normally (reason normal), as above.
result<void> stop(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return stop(server, exit_reason{}, timeout);
}

// -- monitors and links --

/// What a monitor tells the server that set it when the server it watches ends (OTP's {'DOWN',
/// Ref, process, Pid, Reason}): its interface declares `info_msg<hotswap::down>`.
using down = detail::down_message;
/// What a server that traps exits receives when a server linked to it ends (OTP's {'EXIT', Pid,
/// Reason}): its interface declares `info_msg<hotswap::exit_signal>`.
using exit_signal = detail::exit_message;

/// A monitor set, for demonitor.
class monitor_ref {
 public:
  monitor_ref() = default;
  /// The id its down carries (hotswap::down::monitor); 0 for none.
  std::uint64_t id() const noexcept { return id_; }
  explicit operator bool() const noexcept { return id_ != 0; }

  /// (What monitor() makes.)
  monitor_ref(std::uint64_t id, any_server watched, any_server watcher) noexcept
      : id_(id), watched_(std::move(watched)), watcher_(std::move(watcher)) {}
  const any_server& watched() const noexcept { return watched_; }
  const any_server& watcher() const noexcept { return watcher_; }

 private:
  std::uint64_t id_ = 0;
  any_server watched_, watcher_;
};

/// Erlang's monitor(process, Server): `watcher` receives one hotswap::down when `watched` ends,
/// with its exit reason; at once if it has ended already. When `watcher` ends first, its
/// monitors are taken off. Several monitors on one server are told each.
template <class Interface>
monitor_ref monitor(const server_ref<Interface>& watcher, const any_server& watched);

/// A monitor whose down is a call of `on_down`, once, on the thread where `watched` ends (at once,
/// on this thread, if it has): for code that is not a server. It must not block.
template <class = void>
monitor_ref monitor(const any_server& watched, std::function<void(const down&)> on_down);

/// Erlang's demonitor(Ref, [flush]): takes the monitor off, and a down already in the watcher's
/// mailbox is dropped unhandled. True if its down is not (and will not be) handled or called;
/// false if it was, or had begun to be.
template <class = void>
bool demonitor(monitor_ref& monitor);

/// Erlang's link/2 (as link/1 from either side): each of `a` and `b` is told when the other
/// ends. An end with a reason other than normal stops the other too, with the same reason, unless
/// it traps exits (then it receives a hotswap::exit_signal). If one has ended already, the other
/// is told at once. False for an empty handle or a server linked to itself.
template <class = void>
bool link(const any_server& a, const any_server& b);

/// Erlang's unlink/1: false if they were not linked.
template <class = void>
bool unlink(const any_server& a, const any_server& b);

/// Erlang's process_flag(trap_exit, On): whether the ends of linked servers reach `server` as
/// hotswap::exit_signal infos instead of stopping it.
template <class Interface>
void trap_exits(const server_ref<Interface>& server, bool on = true);

// -- requests sent without waiting --

/// A call sent without waiting for its reply (OTP's gen_server:send_request/2): `wait` takes the
/// reply (receive_response/2). Dropped unwaited, its reply is freed when it comes (OTP's
/// abandon). Not shared between threads.
template <class Reply>
class request {
 public:
  request() = default;
  /// The reply, waiting at most `timeout`: errc::timeout leaves the request pending (wait again),
  /// errc::no_server, server_died, no_reply as a call's; errc::no_reply too once its reply has
  /// been taken.
  result<Reply> wait(std::chrono::nanoseconds timeout = default_timeout);
  /// Unique in the process; what a `response` carries.
  std::uint64_t id() const noexcept { return id_; }

  /// (What send_request makes.)
  request(detail::request_box<Reply> box, std::uint64_t id) noexcept : box_(std::move(box)), id_(id) {}

 private:
  detail::request_box<Reply> box_;
  std::uint64_t id_ = 0;
};

/// Sends call `message` to `to` without waiting. (From a handler, a request waited on blocks
/// the worker as a call does: pass the server to answer to, below, instead.)
template <class Interface, class M>
request<reply_of<Interface, M>> send_request(const server_ref<Interface>& to, M&& message);

/// Many requests' replies, taken as they come (OTP 25's request id collections, CAF's
/// fan_out_request): send to each, then wait for any or for all. Not shared between threads.
template <class Reply>
class request_set {
 public:
  /// Sends call `message` to `to` (any interface whose call has this reply type); the request's id.
  template <class Interface, class M>
  std::uint64_t send(const server_ref<Interface>& to, M&& message);
  /// Requests whose reply has not been taken.
  std::size_t pending() const noexcept { return sent_.size(); }
  /// The first reply to come, of any pending request, with its request's id (OTP's
  /// wait_response/3 on a collection); nullopt if none is pending; errc::timeout (id 0) if none
  /// came in `timeout`.
  std::optional<std::pair<std::uint64_t, result<Reply>>> wait_any(std::chrono::nanoseconds timeout = default_timeout);
  /// The reply of every pending request, in the order sent, within one `timeout` for all; one
  /// that did not come in time is errc::timeout, and stays pending.
  std::vector<result<Reply>> wait_all(std::chrono::nanoseconds timeout = default_timeout);

 private:
  detail::request_box<Reply> box_;
  std::vector<std::uint64_t> sent_;  // pending, in the order sent
};

/// Sends `message` to each of `to` at once and waits for all their replies, within one `timeout`:
/// the replies in the order of `to` (OTP's multi_call, to servers rather than nodes).
template <class Interface, class M>
std::vector<result<reply_of<Interface, M>>> call_all(const std::vector<server_ref<Interface>>& to, const M& message,
                                                     std::chrono::nanoseconds timeout = default_timeout);

/// The reply to a request a server sent with send_request(to, message, requester): an info to
/// `requester`, whose interface declares `info_msg<hotswap::response<Reply>>`. `request` is the
/// id send_request returned.
template <class Reply>
using response = detail::response_message<Reply>;

/// Sends call `message` to `to`; its reply comes back to `requester` (a server, usually
/// self()) as a hotswap::response<Reply> info, so that no worker waits for it. The request's id.
template <class Interface, class M, class Requester>
std::uint64_t send_request(const server_ref<Interface>& to, M&& message, const server_ref<Requester>& requester);

// -- the program's end --

/// Stops the program's servers, as OTP's init:stop/0 stops its applications, and returns once
/// they have ended: every server not started by a supervisor, the newest first, each by a stop
/// with reason shutdown (its terminate runs; a supervisor stops its children, last started
/// first, each within its shutdown time), each given `timeout_each` (a supervisor: for its whole
/// tree). A supervisor's children are left to it (stopped first, it would restart them). Servers
/// started while it runs are stopped too: it returns once a look at the live servers finds none
/// it has not stopped. Fails with errc::timeout naming the servers that did not end in time (it
/// goes on with the others: each such server ends once its handler or terminate returns), and,
/// from a server's handler (which it would wait for), with errc::calling_self.
template <class = void>
result<void> stop_all(std::chrono::nanoseconds timeout_each = default_timeout) {
  return detail::stop_servers(detail::the_runtime(), timeout_each);
}

// -- names --

/// Registers `server` as `name`; false if the name is taken, the server already has a name, or
/// it has stopped. A name is freed when its server stops.
template <class = void>
bool register_name(const std::string& name, const any_server& server) {
  return server && detail::the_runtime().register_name(name, *server.core());
}

/// The server registered as `name`, if it has `Interface`.
template <class Interface>
std::optional<server_ref<Interface>> whereis(const std::string& name) {
  detail::server_core* found = detail::the_runtime().whereis(name);
  if (!found) return std::nullopt;
  return server_ref<Interface>::from(any_server(found));
}

template <class = void>
bool unregister_name(const std::string& name) {
  return detail::the_runtime().unregister_name(name);
}

/// Every live server (started, not yet ended), oldest first: Erlang's processes(), what
/// observers list.
template <class = void>
std::vector<any_server> all_servers() {
  std::vector<any_server> all;
  detail::the_runtime().each_live([&](detail::server_core* server) { all.emplace_back(server); });
  return all;
}

// -- timers --

/// A pending send_after or send_interval.
class timer {
 public:
  timer() = default;
  explicit timer(std::shared_ptr<detail::timer_service::entry> entry) : entry_(std::move(entry)) {}
  /// Stops it; false if it had already fired (send_after) or been cancelled.
  bool cancel() noexcept { return entry_ && !entry_->cancelled.exchange(true); }

 private:
  std::shared_ptr<detail::timer_service::entry> entry_;
};

/// Sends the info `message` to `to` after `delay`.
template <class Interface, class M>
timer send_after(const server_ref<Interface>& to, M message, std::chrono::steady_clock::duration delay) {
  return timer(detail::add_timer(to, std::move(message), delay, {}));
}

/// Sends a copy of the info `message` to `to` every `period`, until cancelled or the server
/// stops. Ticks are due at whole periods from the start: late ticks do not shift later ones.
template <class Interface, class M>
timer send_interval(const server_ref<Interface>& to, M message, std::chrono::steady_clock::duration period) {
  return timer(detail::add_timer(to, std::move(message), period, period));
}

inline bool cancel(timer& pending) noexcept {
  return pending.cancel();
}

// -- reports --

/// What hotswap says by itself, as OTP's logger hears it, one line each: a crash report when a
/// handler throws (the server, its implementation and vsn, the message, what was thrown, its
/// state as inspect shows it, bounded; and whether it crashed or went back to the code before),
/// a supervisor report when a child starts, ends, is restarted or is given up on. `text` is safe
/// to show on a terminal.
using report = detail::report;
using report_sink = std::function<void(const report&)>;

/// Puts `sink` in place of the program's sink of reports (empty: standard error, the default)
/// and returns the one it replaced. The sink is called on the thread that reports (a server's),
/// must not block for long, and must not set the sink. Set it from the program, not a module.
template <class = void>
report_sink set_report_sink(report_sink sink) {
  return detail::the_runtime().reports.replace(std::move(sink));
}

}  // namespace hotswap

// ---- hotswap/impl/servers.hpp ----
// The bodies of <hotswap/servers.hpp> (its declarations, documented, are there): what follows a
// handler (continue_with, idle timeouts), requests sent without waiting, monitors and links.
// Included by servers.hpp only.

#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>


namespace hotswap {

namespace detail {
/// Sends call `message` of `Interface` to `to` through `box`; its request id.
template <class Interface, class M, class Reply>
std::uint64_t send_into(request_box<Reply>& box, const server_ref<Interface>& to, M&& message) {
  using check = sent_check<Interface, M, message_kind::call>;
  if constexpr (!fine<check>) {
    (void)sizeof(error_of<check>);  // a message the interface does not call: reported once
    __builtin_unreachable();
  } else {
    static_assert(std::is_same_v<reply_of<Interface, M>, Reply>,
                  "hotswap: a request_set takes calls of one reply type: the Reply it is declared with");
    return box.send(to.core(), sent_as<Interface, std::remove_cvref_t<M>>::kind, std::forward<M>(message));
  }
}
/// The idle timeout set `set` of a server: handles `message` if, when its time comes, it is
/// still the last one set and the server has handled nothing since (a sys request: it runs on the
/// server's thread, and is not counted as a message).
template <class M>
struct idle_check final : control_request {
  std::uint64_t set, mark;
  std::uint32_t kind;
  M message;
  idle_check(std::uint64_t which, std::uint64_t handled, std::uint32_t sent_kind, M info)
      : control_request([](reply_slot_base* self) noexcept { delete static_cast<idle_check*>(self); }),
        set(which),
        mark(handled),
        kind(sent_kind),
        message(std::move(info)) {
    state.store(abandoned, std::memory_order_relaxed);  // its server frees it once run
    run = [](control_request& self, server_core& server) noexcept {
      auto& check = static_cast<idle_check&>(self);
      if (server.idle_timeouts == check.set && server.handled == check.mark && !server.suspended) {
        envelope info{};
        try {
          pack_sent<M>(info, check.kind, std::move(check.message));
          info.kind = check.kind;
          dispatch(server, info);
        } catch (...) {  // out of memory boxing it: no timeout
        }
      }
      self.finish(answered);
    };
  }
};

/// The running server, if it is `expected`'s; else std::logic_error naming `what`.
template <class = void>
server_core& running_server(const server_core* expected, const char* what) {
  server_core* const current = current_server();
  if (!current || (expected && current != expected))
    throw std::logic_error(std::string("hotswap::") + what + " called outside a handler or init of the server");
  return *current;
}
}  // namespace detail

// -- what follows a handler --

template <class Implementation, class Continue>
void continue_with(Continue continuation) {
  using S = typename Implementation::state;
  static_assert(
      requires(const Continue& c, S& s) { Implementation::handle_continue(c, s); },
      "hotswap: continue_with<Implementation>(c) runs Implementation::handle_continue(const Continue&, "
      "state&): write it");
  detail::server_core& server = detail::running_server(nullptr, "continue_with");
  if (server.table->state_fingerprint != detail::value_fingerprint<S>)
    throw std::logic_error("hotswap::continue_with: the running server's state is not this implementation's");
  server.continuation = [continuation = std::move(continuation)](void* state, detail::outcome& result) {
    detail::report_failure(result, [&] { Implementation::handle_continue(continuation, *static_cast<S*>(state)); });
  };
}

template <class Interface, class M>
void idle_timeout(const server_ref<Interface>& self, std::chrono::nanoseconds after, M message) {
  using check = detail::sent_check<Interface, M, detail::message_kind::info>;
  if constexpr (!detail::fine<check>) {
    (void)sizeof(detail::error_of<check>);  // an idle timeout sends an info: reported once
    __builtin_unreachable();
  } else {
    detail::server_core& server = detail::running_server(self.core(), "idle_timeout");
    const std::uint64_t set = ++server.idle_timeouts;
    server.idle_mark = server.handled;
    struct pending {  // what the timer holds until it fires, or goes with its server
      detail::server_core* server = nullptr;
      detail::idle_check<M>* request = nullptr;
      ~pending() {
        delete request;
        if (server) server->release();
      }
    };
    std::unique_ptr<detail::idle_check<M>> request(
        new detail::idle_check<M>(set, server.handled, detail::sent_as<Interface, M>::kind, std::move(message)));
    auto held = std::make_shared<pending>();
    held->request = request.release();
    server.acquire();
    held->server = &server;
    detail::the_runtime().timers.add(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(after), {},
        [held] {
          detail::idle_check<M>* request = std::exchange(held->request, nullptr);
          if (request && !held->server->deliver_control(*request)) delete request;
          return false;
        },
        detail::pin_this_image(), &server);
  }
}

// -- request --

template <class Reply>
result<Reply> request<Reply>::wait(std::chrono::nanoseconds timeout) {
  if (!id_) return error{errc::no_reply, "an empty request"};
  auto taken = box_.take_one(id_, timeout, &detail::before_parking<>);
  if (!taken) return error{errc::no_reply, "its reply was taken already"};
  return std::move(*taken);
}

template <class Interface, class M>
request<reply_of<Interface, M>> send_request(const server_ref<Interface>& to, M&& message) {
  detail::request_box<reply_of<Interface, M>> box;
  const std::uint64_t id = detail::send_into(box, to, std::forward<M>(message));
  return {std::move(box), id};
}

// -- request_set --

template <class Reply>
template <class Interface, class M>
std::uint64_t request_set<Reply>::send(const server_ref<Interface>& to, M&& message) {
  sent_.reserve(sent_.size() + 1);  // first: a request sent is always listed
  sent_.push_back(detail::send_into(box_, to, std::forward<M>(message)));
  return sent_.back();
}

template <class Reply>
std::optional<std::pair<std::uint64_t, result<Reply>>> request_set<Reply>::wait_any(std::chrono::nanoseconds timeout) {
  auto taken = box_.take_any(timeout, &detail::before_parking<>);
  if (taken && taken->first) sent_.erase(std::find(sent_.begin(), sent_.end(), taken->first));
  return taken;
}

template <class Reply>
std::vector<result<Reply>> request_set<Reply>::wait_all(std::chrono::nanoseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, detail::longest_wait);
  std::vector<result<Reply>> replies(sent_.size(), error{errc::timeout, "no reply in time"});
  std::vector<std::uint64_t> waited = sent_;
  while (!sent_.empty()) {
    const auto left = std::max<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now(), {});
    auto taken = wait_any(left);
    if (!taken || !taken->first) break;  // the time is up
    replies[std::find(waited.begin(), waited.end(), taken->first) - waited.begin()] = std::move(taken->second);
  }
  return replies;
}

template <class Interface, class M>
std::vector<result<reply_of<Interface, M>>> call_all(const std::vector<server_ref<Interface>>& to, const M& message,
                                                     std::chrono::nanoseconds timeout) {
  request_set<reply_of<Interface, M>> requests;
  for (const auto& server : to) requests.send(server, message);
  return requests.wait_all(timeout);
}

// -- requests answered to a server --

template <class Interface, class M, class Requester>
std::uint64_t send_request(const server_ref<Interface>& to, M&& message, const server_ref<Requester>& requester) {
  using check = detail::sent_check<Interface, M, detail::message_kind::call>;
  if constexpr (!detail::fine<check>) {
    (void)sizeof(detail::error_of<check>);
    __builtin_unreachable();
  } else {
    using Reply = reply_of<Interface, M>;
    constexpr auto index = Requester::template index_of<response<Reply>>;
    static_assert(index != Requester::size,
                  "hotswap: a server that sends requests answered to it declares "
                  "hotswap::info_msg<hotswap::response<Reply>> in its interface, for the Reply of the call it sends");
    if (!requester) throw std::invalid_argument("hotswap: send_request answered to an empty server handle");
    return detail::send_forwarded<Reply>(to.core(), detail::sent_as<Interface, std::remove_cvref_t<M>>::kind,
                                         std::forward<M>(message), *requester.core(), index);
  }
}

// -- handles --

template <class Interface>
result<server_ref<Interface>> server_ref<Interface>::of(any_server server) {
  if (!server) return error{errc::no_server, "an empty server handle"};
  if (auto typed = from(server)) return *std::move(typed);
  return error{errc::wrong_interface, server.core()->label() + " runs " + server.core()->interface_now() + ", not " +
                                          std::string(Interface::name) +
                                          (Interface::vsn > 1 ? " version " + std::to_string(Interface::vsn) : "") +
                                          " or a later version of it"};
}

// -- monitors and links --

template <class Interface>
monitor_ref monitor(const server_ref<Interface>& watcher, const any_server& watched) {
  static_assert(Interface::template index_of<down> != Interface::size,
                "hotswap: a server that monitors another declares hotswap::info_msg<hotswap::down> in its interface");
  if (!watcher || !watched) return {};
  return {detail::add_monitor(*watched.core(), watcher.core(), {}), watched, watcher};
}

template <class Unused>
monitor_ref monitor(const any_server& watched, std::function<void(const down&)> on_down) {
  if (!watched || !on_down) return {};
  const std::uint64_t id = detail::new_id();
  detail::add_monitor(
      *watched.core(), nullptr,
      [on_down = std::move(on_down), id](std::uint64_t server, const exit_reason& reason) {
        on_down(down{id, server, reason});
      },
      id);
  return {id, watched, {}};
}

template <class Unused>
bool demonitor(monitor_ref& monitor) {
  if (!monitor) return false;
  bool taken_off = detail::remove_monitor(*monitor.watched().core(), monitor.id());
  if (!taken_off && monitor.watcher()) taken_off = detail::forget_watching(*monitor.watcher().core(), monitor.id());
  monitor = {};
  return taken_off;
}

template <class Unused>
bool link(const any_server& a, const any_server& b) {
  return a && b && detail::add_link(*a.core(), *b.core());
}

template <class Unused>
bool unlink(const any_server& a, const any_server& b) {
  return a && b && detail::remove_link(*a.core(), *b.core());
}

template <class Interface>
void trap_exits(const server_ref<Interface>& server, bool on) {
  static_assert(Interface::template index_of<exit_signal> != Interface::size,
                "hotswap: a server that traps exits declares hotswap::info_msg<hotswap::exit_signal> in its "
                "interface");
  if (server) server.core()->trapping_exits.store(on, std::memory_order_release);
}

}  // namespace hotswap
// ---- hotswap/supervisors.hpp ----
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

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// ---- hotswap/detail/servers/supervisor.hpp ----
// What a supervisor's own implementation is told by itself (a restart to try again; a child's
// end comes as any monitor's down), named by supervisor_interface and
// dynamic_supervisor_interface; those implementations, declared (impl/supervisors.hpp defines
// them); and how a supervisor starts a child, marked as its own (start_supervised).

#include <cstddef>
#include <cstdint>
#include <string>


namespace hotswap::detail {

/// A restart that failed, tried again (as OTP's try_again_restart): the child, by its id (an
/// index would name another child once one before it is deleted).
struct restart_again {
  std::string id;
};
/// The same for a dynamic supervisor's child, by the server it last ran as.
struct restart_dynamic_again {
  std::uint64_t server;
};

/// The supervisor's own implementation (a template only to be compiled when used).
template <class = void>
struct supervisor_implementation;

/// The dynamic supervisor's.
template <class = void>
struct dynamic_supervisor_implementation;

/// Runs `start` (a child spec's start) from a supervisor's handler: the server it starts is
/// marked supervised before it is tracked, so that hotswap::stop_all leaves it to this
/// supervisor (which would restart it) even if it looks at the live servers meanwhile.
template <class Start>
auto start_supervised(const Start& start) {
  struct marking {
    server_core* supervisor;
    ~marking() {
      if (supervisor) supervisor->starting_child = false;
    }
  } mark{current_server()};
  if (mark.supervisor) mark.supervisor->starting_child = true;
  return start();
}

}  // namespace hotswap::detail

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

// ---- hotswap/impl/supervisors.hpp ----
// The bodies of <hotswap/supervisors.hpp> (its declarations, documented, are there): the
// supervisors' own implementations (their state, their restarts), starting one, and the
// requests about their children. Included by supervisors.hpp only.

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
// ---- hotswap/sys.hpp ----
// Erlang's sys module: control requests a server serves between two messages, ahead of the
// messages waiting (they travel in a lane of their own), and while it is suspended. A hot code
// change is
//
//     hotswap::sys::suspend(server);                                        // messages now wait
//     hotswap::sys::change_code(server, hotswap::table_of<CounterV2>, 1);  // state migrates
//     hotswap::sys::resume(server);                                         // the waiting ones run, in order
//
// Each request waits for its answer at most its timeout and reports failure as a result.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

// ---- hotswap/detail/servers/code_change.hpp ----
// Changing a server's code (sys::change_code): the new table makes its state from the old one,
// keeping the old state and table if it fails; the server's hold on the new table's code.

#include <cstddef>
#include <string>
#include <utility>


namespace hotswap::detail {

/// A copy of code_change's `extra` (the request may outlive the wait), and a reference to it.
template <class Extra>
std::pair<extra_ref, std::shared_ptr<const void>> keep_extra(const Extra& extra) {
  auto kept = std::make_shared<const Extra>(extra);
  return {extra_ref{kept.get(), value_fingerprint<Extra>, type_spelling<Extra>()}, std::move(kept)};
}

/// What a server ran before a change not yet committed: its table and state, alive, and their
/// holds on their code. A change is switched, then committed or reverted, all while the server is
/// suspended, so that a release can put every server back as it was (the same state object) when
/// any of them fails.
/// Whoever lets go of it last ends the change for good.
struct kept_code {
  const implementation_table* table = nullptr;  // null: nothing kept
  void* state = nullptr;
  bool handed_on = false;  // the new table took the state as it is: one object, not two
  std::shared_ptr<const void> table_owner, state_owner;

  kept_code() = default;
  kept_code(const kept_code&) = delete;
  kept_code& operator=(const kept_code&) = delete;
  ~kept_code() { commit(); }
  /// The old state goes (by its own table's code, still held), then the holds on the old code.
  void commit() noexcept {
    if (table && !handed_on) table->destroy(state);
    table = nullptr;
    state_owner.reset();
    table_owner.reset();  // the old code may be unloaded once nothing else holds it
  }
};

/// Whether the server, running vsn `old_vsn`, can take `table`.
template <class = void>
result<void> check_change(const server_core& core, const implementation_table& table, int old_vsn) {
  const implementation_table& old = *core.table;
  if (!same_interface_line(table, old))
    return error{
        errc::wrong_interface,
        std::string(table.name) + " implements " + describe_interface(table) + ", the server " +
            describe_interface(old) +
            (table.interface_name == old.interface_name ? ": neither is a declared later version of the other" : "")};
  if (old_vsn != old.vsn)
    return error{errc::wrong_vsn, "the server runs vsn " + std::to_string(old.vsn) + " (" + std::string(old.name) +
                                      "), not vsn " + std::to_string(old_vsn)};
  return {};
}

/// The state the server would run `table` with, made from its own (left intact): by the server's
/// code going down to an older vsn's state when it can and no extra is given (Erlang's
/// code_change({down, Vsn})), else by `table`'s code_change. The server's own state when it is
/// handed on as it is.
inline void* make_state(server_core& core, const implementation_table& table, int old_vsn, const extra_ref& extra,
                        outcome& changed) noexcept {
  const implementation_table& old = *core.table;
  if (table.vsn < old.vsn && !extra.value)
    if (void* state = old.down(core.state, table.vsn, table.state_fingerprint, changed); state || changed.failed)
      return state;
  return table.code_change(core.state, old.state_fingerprint, old_vsn, extra, changed);
}

/// What a dry run of a change of code found: how long the state took to make, and its bytes.
struct tried_code {
  std::chrono::nanoseconds time;
  std::size_t state_bytes;
};

/// On the server, between its messages: the state `table` would make from the server's, made,
/// timed, measured and thrown away (a release's dry run). Nothing of the server changes.
template <class = void>
result<tried_code> try_code(server_core& core, const implementation_table& table, int old_vsn) {
  if (auto fits = check_change(core, table, old_vsn); !fits) return fits.error();
  outcome changed;
  const auto started = std::chrono::steady_clock::now();
  void* state = make_state(core, table, old_vsn, {}, changed);
  const auto took = std::chrono::steady_clock::now() - started;
  if (changed.failed) return error{errc::code_change_failed, std::move(changed.what)};
  const std::size_t bytes = table.state_bytes(state);
  if (state != core.state) table.destroy(state);  // (one handed on is the server's own)
  return tried_code{took, bytes};
}

/// On the server, between its messages: switches it to `table`, with a state made from the old
/// one (which is kept, with the old table, in `kept`). On failure nothing changed.
template <class = void>
result<void> swap_code(server_core& core, const implementation_table& table, int old_vsn, const extra_ref& extra,
                       std::shared_ptr<const void> owner, kept_code& kept) {
  const implementation_table& old = *core.table;
  if (auto fits = check_change(core, table, old_vsn); !fits) return fits.error();
  outcome changed;
  void* state = make_state(core, table, old_vsn, extra, changed);
  if (changed.failed) return error{errc::code_change_failed, std::move(changed.what)};
  kept.commit();  // (empty: nothing to end)
  kept.table = &old;
  kept.state = core.state;
  kept.handed_on = state == core.state;
  kept.table_owner = core.table_owner;
  kept.state_owner = core.state_owner;
  // A state that is not plain data may point into the code that made or copied it (and so may
  // one made from it): that code stays loaded while the state lives.
  if (old.state_is_plain_data || table.state_is_plain_data)
    core.state_owner.reset();
  else
    core.state_owner = the_runtime().hold_both(core.state_owner, core.table_owner);
  core.state = state;
  core.table = &table;
  core.set_interface(table);
  core.table_owner = std::move(owner);
  return {};
}

/// The same, on a suspended server only (sys::change_code, a release's transaction).
template <class = void>
result<void> switch_code(server_core& core, const implementation_table& table, int old_vsn, const extra_ref& extra,
                         std::shared_ptr<const void> owner, kept_code& kept) {
  if (!core.suspended) return error{errc::not_suspended, "suspend the server first"};
  return swap_code(core, table, old_vsn, extra, std::move(owner), kept);
}

/// On the suspended server: undoes a switch. The new state goes, the old table and state are
/// back, as they were.
inline void revert_code(server_core& core, kept_code& kept) noexcept {
  if (!kept.handed_on) core.table->destroy(core.state);
  core.table = kept.table;
  core.set_interface(*kept.table);
  core.state = kept.state;
  core.table_owner = std::move(kept.table_owner);
  core.state_owner = std::move(kept.state_owner);
  kept.table = nullptr;
}

/// A module's own table: the server gets a lease of it (abi/image.hpp).
template <class = void>
std::shared_ptr<const void> own_table_owner(server_core& server) {
  const lease_maker& leases = module_leases();
  std::shared_ptr<const void> owner = leases.make(pin_this_image());
  leases.bind(owner.get(), server);
  return owner;
}

/// sys::change_code: switch and commit in one request.
template <class Handle>
result<void> change_code_request(const Handle& server, const implementation_table& table, int old_vsn,
                                 std::chrono::nanoseconds timeout, std::shared_ptr<const void> table_owner,
                                 extra_ref extra, std::shared_ptr<const void> extra_owner) {
  if (!table_owner && building_module) table_owner = own_table_owner(*server.core());
  return control<void>(server, timeout,
                       [&table, old_vsn, extra, owner = std::move(table_owner),
                        extra_owner = std::move(extra_owner)](server_core& core) mutable -> result<void> {
                         kept_code kept;
                         auto switched = switch_code(core, table, old_vsn, extra, std::move(owner), kept);
                         if (switched) kept.commit();
                         return switched;
                       });
}

}  // namespace hotswap::detail

namespace hotswap {

/// One message going into or out of a server, as sys::trace reports it.
using trace_event = detail::trace_event;
/// A trace hook as sys::trace replaced it, with what keeps its code loaded: given back to
/// sys::trace, it is in place again.
using trace_hook = detail::trace_hook;

}  // namespace hotswap

namespace hotswap::sys {

// -- suspending --

/// After the message being handled, normal messages wait in the mailbox, in order, until resume;
/// sys requests are still served. (Messages already queued wait too: to have your own casts
/// handled first, make a call before.)
result<void> suspend(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(server, timeout, [](detail::server_core& core) -> result<void> {
    core.suspended = true;
    return {};
  });
}

/// Handles what waited, in order, then carries on.
result<void> resume(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(server, timeout, [](detail::server_core& core) -> result<void> {
    core.suspended = false;
    return {};
  });
}

// -- changing code and state --

/// Switches a suspended server to `table`, which makes its state from the old one (through its
/// code_change or the generated migration). `old_vsn` is the vsn the server runs, as in
/// Erlang. On any failure the server keeps its old state and table, and goes on serving.
result<void> change_code(const server_handle auto& server, const implementation_table& table, int old_vsn,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return detail::change_code_request(server, table, old_vsn, timeout, {}, {}, {});
}

/// change_code passing `extra` to code_change (a copy: the request may outlive the wait). A
/// duration is never an extra: `change_code(server, table, 1, 2s)` is the timeout.
template <class Extra>
requires(!detail::is_instance_of<std::chrono::duration, Extra>) result<void> change_code(
    const server_handle auto& server, const implementation_table& table, int old_vsn, const Extra& extra,
    std::chrono::nanoseconds timeout = default_timeout) {
  auto [reference, kept] = detail::keep_extra(extra);
  return detail::change_code_request(server, table, old_vsn, timeout, {}, reference, std::move(kept));
}

/// A copy of the server's state, if it is a `State`.
template <class State>
result<State> get_state(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<State>(server, timeout, [](detail::server_core& core) -> result<State> {
    if (core.table->state_fingerprint != detail::value_fingerprint<State>)
      return error{errc::wrong_state_type, "the state is a " + std::string(core.table->state_type)};
    return *static_cast<const State*>(core.state);
  });
}

/// Applies `change(State&)` to a copy of the state, which then replaces it: if change throws,
/// the state is as it was.
template <class State, class Change>
result<void> replace_state(const server_handle auto& server, Change change,
                           std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(
      server, timeout, [change = std::move(change)](detail::server_core& core) mutable -> result<void> {
        if (core.table->state_fingerprint != detail::value_fingerprint<State>)
          return error{errc::wrong_state_type, "the state is a " + std::string(core.table->state_type)};
        State& current = *static_cast<State*>(core.state);
        State changed = current;
        try {
          change(changed);
        } catch (const std::exception& thrown) {
          return error{errc::handler_failed, thrown.what()};
        }
        current = std::move(changed);
        return {};
      });
}

// -- observing --

/// What sys::get_status reports.
struct status {
  std::uint64_t id;
  std::string name;            ///< registered name (empty: none)
  std::string interface;       ///< the interface's name
  std::string implementation;  ///< the implementation type running
  int vsn;
  bool suspended;
  std::size_t mailbox_length;  ///< messages waiting, including those held while suspended
  std::uint64_t state_fingerprint;
  std::uint64_t slow_handlers;  ///< handlers that held a pool worker over 4 ms (see statistics)
};

result<status> get_status(const server_handle auto& server, std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<status>(server, timeout, [](detail::server_core& core) -> result<status> {
    std::string name;
    {
      const detail::spin_guard hold(core.exit_lock);
      name = core.name;
    }
    return status{core.id,
                  std::move(name),
                  std::string(core.table->interface_name),
                  std::string(core.table->name),
                  core.table->vsn,
                  core.suspended,
                  core.inbox.size(),
                  core.table->state_fingerprint,
                  core.slow_handlers};
  });
}

/// What sys::statistics reports.
struct statistics_report {
  std::uint64_t messages_handled;             ///< since the server started
  std::chrono::nanoseconds time_in_handlers;  ///< while timing was on
  bool timing;
  /// Handlers that held a pool worker over 4 ms (the pool added a worker for each if other
  /// servers were waiting), and the longest of them: its message, and how long it ran at least.
  std::uint64_t slow_handlers;
  std::string slowest_message;
  std::chrono::nanoseconds slowest_handler;
};

/// Turns the timing of handlers on or off (off at start: it costs two clock reads a message).
result<void> statistics(const server_handle auto& server, bool timing,
                        std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(server, timeout, [timing](detail::server_core& core) -> result<void> {
    core.timing = timing;
    return {};
  });
}

result<statistics_report> statistics(const server_handle auto& server,
                                     std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<statistics_report>(
      server, timeout, [](detail::server_core& core) -> result<statistics_report> {
        return statistics_report{core.handled,       core.time_in_handlers, core.timing,
                                 core.slow_handlers, core.slowest_message,  core.slowest_handler};
      });
}

/// Puts `hook` (with what keeps its code loaded) in place of the server's trace hook, and hands
/// back the one it replaced: what sys::trace returns, to be put back later by this.
result<trace_hook> trace(const server_handle auto& server, trace_hook hook,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<trace_hook>(server, timeout,
                                     [hook = std::move(hook)](detail::server_core& core) mutable -> result<trace_hook> {
                                       trace_hook replaced{std::move(core.trace_code), std::move(core.trace)};
                                       core.trace = std::move(hook.call);
                                       core.trace_code = std::move(hook.code);
                                       return replaced;
                                     });
}

/// Runs `change` on the server, between its messages, with its trace hook, and puts in place the
/// hook it returns: one step, so that a watch puts back the hook it replaced only while its own is
/// still the one in place (a hook the program set meanwhile stays, and the one before never runs
/// again).
result<void> replace_trace(const server_handle auto& server, std::function<trace_hook(trace_hook current)> change,
                           std::chrono::nanoseconds timeout = default_timeout) {
  return detail::control<void>(
      server, timeout, [change = std::move(change)](detail::server_core& core) -> result<void> {
        trace_hook next = change(trace_hook{std::move(core.trace_code), std::move(core.trace)});
        core.trace = std::move(next.call);
        core.trace_code = std::move(next.code);
        return {};
      });
}

/// Calls `hook` for each message the server takes in and each it has handled, on the server's
/// thread; an empty hook turns tracing off. The hook it replaced (empty if none): give it to
/// sys::trace to put it back.
result<trace_hook> trace(const server_handle auto& server, std::function<void(const trace_event&)> hook,
                         std::chrono::nanoseconds timeout = default_timeout) {
  return trace(server, trace_hook{detail::pin_this_image(), std::move(hook)}, timeout);
}

}  // namespace hotswap::sys

// -- making a module --

/// Makes this shared library a module named `name` (a string literal: letters, digits, '.', '_',
/// '-') holding `Implementation`. Once in a library made by hotswap_add_module.
#define HOTSWAP_MODULE(name, Implementation)                                                                          \
  static_assert(::hotswap::detail::building_module,                                                                   \
                "hotswap: HOTSWAP_MODULE makes a module: build this file into a library made by "                     \
                "hotswap_add_module() in CMake (or compile it with -DHOTSWAP_MODULE_BUILD -fvisibility=hidden, "      \
                "link it with hotswap_module.ld and seal it with hotswap-seal)");                                     \
  static_assert(sizeof(::hotswap::detail::module_name_check<name>) != 0); /* a bad name, reported once */             \
  [[gnu::used, gnu::retain, gnu::section("hotswap_module")]] constinit const auto hotswap_module_note =               \
      ::hotswap::detail::module_note<name, Implementation>;                                                           \
  [[gnu::used, gnu::retain,                                                                                           \
    gnu::section("hotswap_seal")]] constinit const ::hotswap::detail::module_seal hotswap_module_seal = {             \
      "hotswap seal 1", {}, {}, {}}; /* written by hotswap-seal after the link */                                     \
  extern "C"                                                                                                          \
      [[gnu::visibility("default")]] constinit const ::hotswap::detail::module_descriptor hotswap_module_descriptor = \
          ::hotswap::detail::make_descriptor<Implementation>(hotswap_module_note.data())

/// Exports `function` (no argument; returning void, or hotswap::result<void>: what it throws or
/// returns is its failure) as the step `name` (a string literal: letters, digits, '.', '_', '-')
/// of this module, which a release manifest's "apply" runs at a named point of the upgrade
/// (OTP's {apply, {M, F, A}}). Anywhere in the module's sources, once a step, beside HOTSWAP_MODULE.
#define HOTSWAP_MODULE_STEP(name, function) HOTSWAP_MODULE_STEP_AT(name, function, __LINE__)
#define HOTSWAP_MODULE_STEP_AT(name, function, line) HOTSWAP_MODULE_STEP_NAMED(name, function, line)
#define HOTSWAP_MODULE_STEP_NAMED(name, function, line)                                                         \
  static_assert(::hotswap::detail::building_module,                                                             \
                "hotswap: HOTSWAP_MODULE_STEP exports a step of a module: build this file into a library made " \
                "by hotswap_add_module() in CMake");                                                            \
  static_assert(sizeof(::hotswap::detail::step_name_check<name>) != 0);                                         \
  static_assert(sizeof(::hotswap::detail::step_function_check<function>) != 0);                                 \
  [[gnu::used, gnu::retain, gnu::section("hotswap_module")]] constinit const auto hotswap_step_note_##line =    \
      ::hotswap::detail::step_note<name>;                                                                       \
  [[gnu::used, gnu::retain,                                                                                     \
    gnu::section("hotswap_steps")]] constinit const ::hotswap::detail::module_step hotswap_step_##line = {      \
      name, &::hotswap::detail::run_step<function>}

namespace hotswap {

/// What a module must share with the program that loads it: the compiler and its version, the
/// standard library and its dual-ABI setting, hotswap's version and the digest of its headers,
/// the pointer size, exceptions and RTTI. A module built otherwise is refused (errc::abi_mismatch).
inline constexpr std::string_view abi_description = detail::abi_description;
inline constexpr std::uint64_t abi_fingerprint = detail::abi_fingerprint;

// -- loaded modules --

/// One loaded version of a module: what its note says, and the servers using it. Shared by the
/// code server, the servers on it (and whatever else holds its code); its library is unmapped
/// after the last of them lets go (at the code server's next load, purge, retire or collect).
class module_version : public std::enable_shared_from_this<module_version> {
 public:
  const std::string& name() const noexcept { return note_.name; }
  int vsn() const noexcept { return note_.vsn; }
  /// Which build of its vsn it is: 16 hex digits of the SHA-256 its seal holds (`hotswap-seal
  /// verify` prints all of it). A rebuild that changes anything has another.
  const std::string& build() const noexcept { return note_.build; }
  /// The file it was loaded from, and the private copy it runs from.
  const std::string& path() const noexcept { return path_; }
  const std::string& copy() const noexcept { return copy_; }
  const std::string& implementation() const noexcept { return note_.implementation; }
  const std::string& interface_name() const noexcept { return note_.interface_name; }
  std::uint64_t interface_fingerprint() const noexcept { return note_.interface; }
  /// The fingerprints of its interface's versions (hotswap::follows), the first first, its own last.
  const std::vector<std::uint64_t>& interface_lineage() const noexcept { return note_.interface_lineage; }
  /// Its interface's messages by slot: each one's slot, the vsn it dates from, fingerprint and name.
  using message_slot = detail::module_note_fields::message_slot;
  const std::vector<message_slot>& messages() const noexcept { return note_.messages; }
  /// Whether it implements `Interface`, or a later version of it.
  template <class Interface>
  bool implements() const noexcept {
    return Interface::vsn <= note_.interface_lineage.size() &&
           note_.interface_lineage[Interface::vsn - 1] == Interface::fingerprint;
  }
  /// The vsns its code_change starts from (its state_history), each with the state that vsn
  /// held, and whether this code makes that state from its own (`down`: a release going down to
  /// that vsn) or why not (`not_down`: the first mistake of the migration down).
  using earlier_state = detail::module_note_fields::earlier_state;
  const std::vector<earlier_state>& history() const noexcept { return note_.history; }
  /// The steps it exports (HOTSWAP_MODULE_STEP), by name, as its note lists them.
  const std::vector<std::string>& steps() const noexcept { return note_.steps; }
  /// Runs its step `name` on the calling thread, as a release's "apply" does: errc::step_failed
  /// with what the step threw or returned (errc::not_found: it exports none of that name).
  result<void> run_step(std::string_view name) const {
    for (std::size_t i = 0; i < step_count_; ++i)
      if (name == steps_[i].name) {
        detail::outcome ran;
        steps_[i].run(ran);
        if (!ran.failed) return {};
        return error{errc::step_failed, ran.thrown.empty() ? ran.what : ran.what + " (" + ran.thrown + " thrown)"};
      }
    return error{errc::not_found,
                 note_.name + " vsn " + std::to_string(note_.vsn) + " exports no step " + std::string(name)};
  }

  /// The servers using this version now: running its table, or holding a state it made that
  /// is not plain data.
  template <class Lease = detail::lease<module_version>>
  std::vector<any_server> servers() const {
    std::vector<any_server> using_it;
    const detail::spin_guard hold(lock_);
    for (const Lease* held : leases_) {
      detail::server_core* server = held->server;  // its table's lease and its state's may both be here
      const auto seen = [&](const any_server& listed) { return listed.core() == server; };
      if (server && std::none_of(using_it.begin(), using_it.end(), seen) &&
          server->alive.load(std::memory_order_acquire) && detail::try_acquire(*server))
        using_it.emplace_back(server);
    }
    return using_it;
  }

  module_version(const module_version&) = delete;
  module_version& operator=(const module_version&) = delete;

  // Made by the code server only: `library` closes the library when the last holder lets go.
  module_version(detail::module_note_fields note, std::string path, std::string copy, const implementation_table* table,
                 std::shared_ptr<void> library, const detail::module_step* steps = nullptr, std::size_t step_count = 0)
      : note_(std::move(note)),
        path_(std::move(path)),
        copy_(std::move(copy)),
        table_(table),
        library_(std::move(library)),
        steps_(steps),
        step_count_(step_count) {}

 private:
  template <class>
  friend struct detail::lease;
  template <class>
  friend struct detail::module_access;
  detail::module_note_fields note_;
  std::string path_, copy_;
  const implementation_table* table_;  // reached only with a lease (detail::module_access)
  std::shared_ptr<void> library_;
  const detail::module_step* steps_;  // in the library, as its note lists them
  std::size_t step_count_;
  mutable detail::spin_lock lock_;
  mutable std::vector<detail::lease<module_version>*> leases_;
};

using module_ptr = std::shared_ptr<const module_version>;

/// A module, as code_server::all_loaded lists it.
struct loaded_module {
  std::string name;
  module_ptr current, old;  ///< either may be null
};

// -- servers on modules --

/// Starts a server running a module's table, passing `argument` to its init. Fails if the
/// module implements another interface or its init takes another argument.
template <class Interface, class Argument>
requires detail::is_interface<Interface> result<server_ref<Interface>> start(const module_ptr& code,
                                                                             const Argument& argument,
                                                                             start_options options = {}) {
  auto leased = detail::lease_to_start<Argument>(code);
  if (!leased) return leased.error();
  return detail::start_as<Interface>(*leased->table, &argument, options.name, options.own_thread,
                                     std::move(leased->lease), &detail::bind_lease<module_version>);
}

/// Starts a server running a module's table whose init takes no argument.
template <class Interface>
requires detail::is_interface<Interface> result<server_ref<Interface>> start(const module_ptr& code,
                                                                             start_options options = {}) {
  auto leased = detail::lease_to_start<void>(code);
  if (!leased) return leased.error();
  return detail::start_as<Interface>(*leased->table, nullptr, options.name, options.own_thread,
                                     std::move(leased->lease), &detail::bind_lease<module_version>);
}

/// A supervisor's child running a module's code (OTP's child spec of a worker whose module
/// releases upgrade): each start, the first and every restart, takes the version of `module`
/// current in `code` then, so a child restarted after an upgrade runs the new code. Its start
/// fails, as an init that throws does, while the module is not loaded. `code` (a code server)
/// must outlive the supervisor.
template <class Interface, class CodeServer>
requires detail::is_interface<Interface> child_spec module_child(std::string id, CodeServer& code, std::string module,
                                                                 start_options options = {},
                                                                 restart restart_type = restart::permanent) {
  return {std::move(id),
          [&code, module = std::move(module), options]() -> result<any_server> {
            const module_ptr current = code.current(module);
            if (!current) return error{errc::no_module, "module " + module + " is not loaded"};
            auto started = start<Interface>(current, options);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

/// The same, passing `argument` (kept in the spec) to its init at each start.
template <class Interface, class CodeServer, class Argument>
requires(detail::is_interface<Interface> && !std::is_same_v<Argument, start_options>) child_spec
    module_child(std::string id, CodeServer& code, std::string module, Argument argument, start_options options = {},
                 restart restart_type = restart::permanent) {
  return {std::move(id),
          [&code, module = std::move(module), argument = std::move(argument), options]() -> result<any_server> {
            const module_ptr current = code.current(module);
            if (!current) return error{errc::no_module, "module " + module + " is not loaded"};
            auto started = start<Interface>(current, argument, options);
            if (!started) return started.error();
            return any_server(std::move(*started));
          },
          restart_type};
}

namespace sys {
/// change_code to a loaded module: the server then keeps that version loaded.
result<void> change_code(const server_handle auto& server, const module_ptr& code, int old_vsn,
                         std::chrono::nanoseconds timeout = default_timeout) {
  auto leased = detail::lease_to_server(code, server.core());
  if (!leased) return leased.error();
  return detail::change_code_request(server, *leased->table, old_vsn, timeout, std::move(leased->lease), {}, {});
}

/// change_code to a loaded module, passing `extra` to its code_change (a duration is the timeout).
template <class Extra>
requires(!detail::is_instance_of<std::chrono::duration, Extra>) result<void> change_code(
    const server_handle auto& server, const module_ptr& code, int old_vsn, const Extra& extra,
    std::chrono::nanoseconds timeout = default_timeout) {
  auto leased = detail::lease_to_server(code, server.core());
  if (!leased) return leased.error();
  auto [reference, kept] = detail::keep_extra(extra);
  return detail::change_code_request(server, *leased->table, old_vsn, timeout, std::move(leased->lease), reference,
                                     std::move(kept));
}
}  // namespace sys

// -- the code server --

/// soft: refuse while servers use the old version; force: stop them first.
enum class purge_mode { soft, force };

/// What a purge did.
struct purge_report {
  int vsn = 0;                      ///< the version purged (0: there was no old version)
  std::size_t servers_stopped = 0;  ///< by a forced purge
  bool unmapped = false;            ///< its library is gone from the process
  std::string note;                 ///< why it is still mapped, when it is
};

/// What a module file says it is (code_server::check).
struct module_info {
  std::string name;
  int vsn;
  std::string build;  ///< as module_version::build says
  std::string implementation, interface_name;
  std::uint64_t interface_fingerprint;
  std::vector<int> from_vsns;  ///< the vsns its code_change starts from (its state_history)
};

/// How a code server is set up.
struct code_server_options {
  /// Where private copies of the libraries go (made, mode 0700); empty: a new directory under
  /// $TMPDIR or /tmp, named for this process (`hotswap-modules-<pid>-...`), where the code
  /// server, as it starts, removes those of this user's processes that died without removing
  /// theirs. It must allow executable mappings (not mounted noexec).
  std::string directory{};
  /// A larger file is refused at once (errc::too_large), before a byte of it is read: a module
  /// is kilobytes to megabytes, and a load holds the code server.
  std::size_t largest_module = std::size_t{64} << 20;
  /// Ed25519 public keys (PEM, as `hotswap-seal keygen` or `openssl pkey -pubout` write them);
  /// given any, a module not signed by one of them is refused (errc::untrusted). None: a module
  /// need only be sealed (its bytes as its build wrote them).
  std::vector<std::string> trusted_keys{};
  /// A development code server (the edit, rebuild, reload loop: hotswap::module_watch) also
  /// takes another build of the current vsn, which a rebuild keeps; production's rule, a newer
  /// vsn, is otherwise the same. The build already loaded is still refused (errc::not_newer).
  bool development = false;
};

/// Loads modules, keeping a current and an old version of each, as Erlang's code server. Its
/// operations run one at a time, in the order they are called. (A template only so that a
/// program compiles it where it uses it: use hotswap::code_server.)
template <class = void>
class basic_code_server {
 public:
  explicit basic_code_server(code_server_options options = {});
  basic_code_server(const basic_code_server&) = delete;
  basic_code_server& operator=(const basic_code_server&) = delete;
  /// Closes what nothing uses; libraries still in use stay mapped, but no copy stays on disk
  /// (nor the directory it made for them).
  ~basic_code_server();

  /// Loads the module in `path`, checking it against the program (ABI, schemas) and against
  /// its loaded versions (interface, a newer vsn), and makes it the current version; the
  /// current one becomes old (an old one nothing uses any more is purged first). On any failure
  /// (errc::no_file, unsafe_path, not_a_library, too_large, truncated, no_descriptor, unsealed,
  /// torn, untrusted, abi_mismatch, wrong_interface, schema_conflict, not_newer, not_purged,
  /// load_failed, initializer_failed) the code server and every server are left as they were.
  result<module_ptr> load(const std::string& path) { return load(path, 0, {}); }

  /// The same, checking too that the module implements `Interface` as this program knows it.
  template <class Interface>
  result<module_ptr> load(const std::string& path);

  /// What the module in `path` is, after every check a load makes before opening the library
  /// (the file, its seal, its note against this program and the loaded versions, a newer vsn);
  /// with load's errors. Nothing is loaded, copied or changed: what a release checks before
  /// anything moves.
  result<module_info> check(const std::string& path);

  /// The current and old versions of a module (null if none).
  module_ptr current(std::string_view name) const { return find(name, &entry::current); }
  module_ptr old(std::string_view name) const { return find(name, &entry::old); }

  /// Every module loaded, in the order first loaded, with its current and old versions (Erlang's
  /// code:all_loaded()): what observers list.
  std::vector<loaded_module> all_loaded() const;

  /// Unloads the old version of `name`. Soft: fails with errc::not_purged, naming the servers
  /// still using it, if any does. Force: stops them first, each within `timeout`; if one cannot
  /// be stopped (a handler that does not return), fails with errc::not_purged naming it, and
  /// keeps the version (its stop may take effect later; purge again then). The library is
  /// unmapped once nothing holds its code (a handle to a stopped server, a pending timer or reply
  /// may, for a while).
  result<purge_report> purge(std::string_view name, purge_mode mode = purge_mode::soft,
                             std::chrono::nanoseconds timeout = default_timeout);

  /// Makes the current version of `name` old, as Erlang's code:delete/1: the servers on it run
  /// on, purge can then unload it, and any vsn may be loaded next. An old version nothing uses is
  /// purged first; one that servers still use makes this fail with errc::not_purged.
  result<void> retire(std::string_view name);

  /// Unmaps the libraries nothing holds any more; how many.
  std::size_t collect();

  /// Whether it takes another build of the current vsn (code_server_options::development).
  bool development() const noexcept { return development_; }

  /// Where the private copies go (empty until the first load, when none was given).
  std::string directory() const;

 private:
  template <class>
  friend struct detail::code_server_access;  // the release handler's: read_note, load (older), undo_load

  struct entry {
    std::string name;
    module_ptr current, old;
  };

  module_ptr find(std::string_view name, module_ptr entry::*which) const;
  entry* find_entry(std::string_view name);

  /// The directory of the copies, made and opened on first use.
  result<void> open_directory(const std::string& path);

  result<module_ptr> load(const std::string& path, std::uint64_t interface, std::string_view interface_name,
                          bool older = false);

  /// What the file says, before any of its code runs: the file (its bytes into `bytes`, its
  /// note's text into `text`), its seal, its note.
  result<detail::module_note_fields> read_note(const std::string& path, std::string& bytes, std::string_view& text);

  /// The same, and the note checked against the program and the loaded versions.
  result<detail::module_note_fields> check_file(const std::string& path, std::uint64_t interface,
                                                std::string_view interface_name, std::string& bytes,
                                                std::string_view& text, bool older = false);

  /// Undoes the load that made `version` current: the version before it is current again (a
  /// release whose load failed part way). Its servers, if any, must have let go.
  void undo_load(module_ptr version);

  result<module_ptr> load_checked(const std::string& path, std::uint64_t interface, std::string_view interface_name,
                                  bool older);

  detail::spin_lock operation_;     // one load, purge, retire or collect at a time
  mutable detail::spin_lock lock_;  // the table below, briefly
  std::string directory_;
  bool made_directory_ = false;
  std::size_t largest_module_;
  bool development_;
  std::vector<detail::evp_key> trusted_;
  std::string bad_key_;  // why trusted_ is unusable (a key that did not parse), if it is
  std::vector<entry> modules_;
  std::shared_ptr<detail::copy_directory> directory_fd_ = std::make_shared<detail::copy_directory>();
  std::shared_ptr<detail::library_closer<>> closer_ = std::make_shared<detail::library_closer<>>(directory_fd_);
};

using code_server = basic_code_server<>;

}  // namespace hotswap

// ---- hotswap/impl/modules.hpp ----
// The bodies of <hotswap/modules.hpp> (its declarations, documented, are there): the code
// server's loads, checks, purges and retirements. Included by modules.hpp only.

#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


namespace hotswap {

template <class Unused>
basic_code_server<Unused>::basic_code_server(code_server_options options)
    : directory_(std::move(options.directory)),
      largest_module_(options.largest_module),
      development_(options.development) {
  // What earlier programs killed by a signal left where this one makes its copies.
  if (directory_.empty()) detail::sweep_dead_copy_directories(detail::temporary_base());
  for (std::size_t i = 0; i < options.trusted_keys.size(); ++i) {
    trusted_.push_back(detail::read_public_key(options.trusted_keys[i]));
    if (!trusted_.back() && bad_key_.empty())
      bad_key_ = "trusted key " + std::to_string(i + 1) +
                 " is not an Ed25519 public key in PEM (hotswap-seal keygen writes one), so no module is taken";
  }
}

template <class Unused>
basic_code_server<Unused>::~basic_code_server() {
  modules_.clear();
  closer_->close_pending();
  closer_->unlink_all();
  if (made_directory_) ::rmdir(directory_.c_str());  // only if empty
}

template <class Unused>
template <class Interface>
result<module_ptr> basic_code_server<Unused>::load(const std::string& path) {
  return load(path, Interface::fingerprint, Interface::name);
}

template <class Unused>
result<module_info> basic_code_server<Unused>::check(const std::string& path) {
  const detail::spin_guard one_at_a_time(operation_);
  std::string bytes;
  std::string_view text;
  try {
    auto note = check_file(path, 0, {}, bytes, text);
    if (!note) return note.error();
    std::vector<int> from_vsns;
    for (const auto& earlier : note->history) from_vsns.push_back(earlier.vsn);
    return module_info{
        std::move(note->name),           note->vsn,       std::move(note->build), std::move(note->implementation),
        std::move(note->interface_name), note->interface, std::move(from_vsns)};
  } catch (const std::exception& failed) {  // out of memory, most likely
    return detail::file_error(errc::load_failed, path, failed.what());
  }
}

template <class Unused>
std::vector<loaded_module> basic_code_server<Unused>::all_loaded() const {
  const detail::spin_guard hold(lock_);
  std::vector<loaded_module> all;
  for (const auto& known : modules_)
    if (known.current || known.old) all.push_back({known.name, known.current, known.old});
  return all;
}

template <class Unused>
result<purge_report> basic_code_server<Unused>::purge(std::string_view name, purge_mode mode,
                                                      std::chrono::nanoseconds timeout) {
  const detail::spin_guard one_at_a_time(operation_);
  module_ptr old_version = old(name);
  if (!old_version && !current(name)) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
  purge_report report;
  if (!old_version) return report;
  report.vsn = old_version->vsn();
  std::vector<any_server> using_it = old_version->servers();
  if (!using_it.empty() && mode == purge_mode::soft)
    return error{errc::not_purged, detail::describe_users(*old_version, using_it) + std::string(detail::purge_advice)};
  std::vector<any_server> running_on;  // what could not be stopped: the version stays
  for (auto& server : using_it) {
    if (stop(server, timeout))
      ++report.servers_stopped;
    else if (server.alive())
      running_on.push_back(server);
  }
  if (!running_on.empty())
    return error{errc::not_purged, detail::describe_users(*old_version, running_on) + ", which did not stop within " +
                                       std::to_string(timeout.count() / 1'000'000) +
                                       " ms (a handler that has not returned); its stop may take effect later: "
                                       "purge again then"};
  using_it.clear();
  {
    const detail::spin_guard hold(lock_);
    if (entry* found = find_entry(name); found && found->old == old_version) found->old.reset();
  }
  const std::weak_ptr<const module_version> watch = old_version;
  const std::string copy = old_version->copy().substr(old_version->copy().rfind('/') + 1);
  old_version.reset();
  const auto closed = closer_->close_pending();
  if (!watch.expired()) {
    report.note = "still held by " + std::to_string(watch.use_count()) +
                  " holder(s) of its code (a stopped server's handle, a timer, a reply); unmapped at a later "
                  "collect() once they are gone";
    return report;
  }
  for (const auto& one : closed)
    if (one.name == copy) report.unmapped = one.unmapped;
  if (!report.unmapped)
    report.note =
        "closed, but the system keeps it mapped (it registered thread-local destructors or has unique "
        "symbols: build it with hotswap_add_module)";
  return report;
}

template <class Unused>
result<void> basic_code_server<Unused>::retire(std::string_view name) {
  const detail::spin_guard one_at_a_time(operation_);
  module_ptr purged;
  {
    const detail::spin_guard hold(lock_);
    entry* found = find_entry(name);
    if (!found || !found->current) return error{errc::no_module, "no module " + std::string(name) + " is loaded"};
    if (found->old)
      if (std::vector<any_server> using_it = found->old->servers(); !using_it.empty())
        return error{errc::not_purged,
                     "the old version must go first: " + detail::describe_users(*found->old, using_it) +
                         std::string(detail::purge_advice)};
    purged = std::exchange(found->old, std::exchange(found->current, nullptr));
  }
  purged.reset();
  closer_->close_pending();
  return {};
}

template <class Unused>
std::size_t basic_code_server<Unused>::collect() {
  const detail::spin_guard one_at_a_time(operation_);
  return closer_->close_pending().size();
}

template <class Unused>
std::string basic_code_server<Unused>::directory() const {
  const detail::spin_guard hold(lock_);
  return directory_;
}

template <class Unused>
module_ptr basic_code_server<Unused>::find(std::string_view name, module_ptr entry::*which) const {
  const detail::spin_guard hold(lock_);
  for (const auto& known : modules_)
    if (known.name == name) return known.*which;
  return nullptr;
}

template <class Unused>
auto basic_code_server<Unused>::find_entry(std::string_view name) -> entry* {
  for (auto& known : modules_)
    if (known.name == name) return &known;
  return nullptr;
}

template <class Unused>
result<void> basic_code_server<Unused>::open_directory(const std::string& path) {
  if (directory_fd_->fd >= 0) return {};
  auto opened = detail::open_copy_directory(directory(), path);
  if (!opened) return opened.error();
  const detail::spin_guard hold(lock_);
  directory_ = std::move(opened->name);
  made_directory_ = opened->made;
  directory_fd_->fd = opened->fd;
  return {};
}

template <class Unused>
result<module_ptr> basic_code_server<Unused>::load(const std::string& path, std::uint64_t interface,
                                                   std::string_view interface_name, bool older) {
  const detail::spin_guard one_at_a_time(operation_);
  closer_->close_pending();
  try {
    return load_checked(path, interface, interface_name, older);
  } catch (const std::exception& failed) {  // out of memory, most likely: what was opened is closed
    closer_->close_pending();
    return detail::file_error(errc::load_failed, path, failed.what());
  }
}

template <class Unused>
result<detail::module_note_fields> basic_code_server<Unused>::read_note(const std::string& path, std::string& bytes,
                                                                        std::string_view& text) {
  const auto resolved = detail::resolve_safe_path(path);
  if (!resolved) return resolved.error();
  auto read = detail::read_module_file(*resolved, path, largest_module_);
  if (!read) return read.error();
  bytes = std::move(*read);
  const auto sections = detail::find_module_sections(bytes, path);
  if (!sections) return sections.error();
  if (!bad_key_.empty()) return detail::file_error(errc::untrusted, path, bad_key_);
  auto sealed = detail::check_seal(bytes, sections->seal, trusted_, path);
  if (!sealed) return sealed.error();
  text = sections->note;
  auto note = detail::parse_module_note(text, path, sections->steps);
  if (note) note->build = std::move(*sealed);
  return note;
}

template <class Unused>
result<detail::module_note_fields> basic_code_server<Unused>::check_file(const std::string& path,
                                                                         std::uint64_t interface,
                                                                         std::string_view interface_name,
                                                                         std::string& bytes, std::string_view& text,
                                                                         bool older) {
  auto note = read_note(path, bytes, text);
  if (!note) return note.error();
  if (auto fits = detail::check_fits(*note, path, interface, interface_name, current(note->name), old(note->name),
                                     registry(), older, development_);
      !fits)
    return fits.error();
  return note;
}

template <class Unused>
void basic_code_server<Unused>::undo_load(module_ptr version) {
  const detail::spin_guard one_at_a_time(operation_);
  module_ptr dropped;
  {
    const detail::spin_guard hold(lock_);
    entry* found = find_entry(version->name());
    if (!found || found->current != version) return;
    dropped = std::exchange(found->current, std::exchange(found->old, nullptr));
    if (!found->current) std::erase_if(modules_, [&](const entry& known) { return !known.current && !known.old; });
  }
  version.reset();
  dropped.reset();
  closer_->close_pending();
}

template <class Unused>
result<module_ptr> basic_code_server<Unused>::load_checked(const std::string& path, std::uint64_t interface,
                                                           std::string_view interface_name, bool older) {
  std::string bytes;
  std::string_view text;
  const auto note = check_file(path, interface, interface_name, bytes, text, older);
  if (!note) return note.error();
  if (auto opened = open_directory(path); !opened) return opened.error();
  const auto copy = detail::write_copy(*directory_fd_, directory(), bytes, *note, path);
  if (!copy) return copy.error();

  // Opened through the copy directory's descriptor: static initializers (deferred by the link
  // script) run in attach.
  void* handle = ::dlopen(directory_fd_->path_of(*copy).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    ::unlinkat(directory_fd_->fd, copy->c_str(), 0);
    return detail::file_error(errc::load_failed, path, ::dlerror());
  }
  std::shared_ptr<void> library(handle, [closer = closer_, copy = *copy](void* opened) { closer->add(opened, copy); });
  closer_->opened(*copy);
  const auto* descriptor = static_cast<const detail::module_descriptor*>(::dlsym(handle, "hotswap_module_descriptor"));
  std::size_t step_count = 0;
  const detail::module_step* steps =
      descriptor && descriptor->magic == detail::descriptor_magic ? descriptor->steps(step_count) : nullptr;
  const auto steps_listed = [&] {  // the steps it exports are those its note lists
    if (step_count != note->steps.size()) return false;
    for (std::size_t i = 0; i < step_count; ++i)
      if (std::find(note->steps.begin(), note->steps.end(), steps[i].name) == note->steps.end()) return false;
    return true;
  };
  if (!descriptor || descriptor->magic != detail::descriptor_magic || std::string_view(descriptor->note) != text ||
      descriptor->table->interface_fingerprint != note->interface || descriptor->table->vsn != note->vsn ||
      !steps_listed()) {
    library.reset();
    closer_->close_pending();
    return detail::file_error(errc::no_descriptor, path, "its descriptor is missing or disagrees with its note");
  }
  auto version = std::make_shared<module_version>(*note, path, directory() + "/" + *copy, descriptor->table,
                                                  std::move(library), steps, step_count);
  std::string failure;
  const detail::host_link host{&detail::the_runtime(), &registry(), version.get(),
                               [](const void* self) noexcept -> std::shared_ptr<const void> {
                                 return static_cast<const module_version*>(self)->weak_from_this().lock();
                               }};
  if (!descriptor->attach(host, detail::leases_of<module_version>, failure)) {
    version.reset();
    closer_->close_pending();
    return detail::file_error(errc::initializer_failed, path, "a static initializer threw: " + failure);
  }
  std::vector<version_info> schemas;
  descriptor->describe_schemas(schemas);
  for (auto& schema : schemas) registry().add(std::move(schema));  // checked against the registry above

  // Loads run one at a time: what check() saw still holds.
  module_ptr purged;
  {
    const detail::spin_guard hold(lock_);
    entry* found = find_entry(note->name);
    if (!found)
      modules_.push_back(entry{note->name, version, nullptr});
    else if (!found->current)  // retired: the old version stays old
      found->current = version;
    else
      purged = std::exchange(found->old, std::exchange(found->current, version));
  }
  purged.reset();
  closer_->close_pending();
  return module_ptr(std::move(version));
}

}  // namespace hotswap
