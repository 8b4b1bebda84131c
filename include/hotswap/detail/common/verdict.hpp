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
#pragma once

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
