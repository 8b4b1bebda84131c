// hotswap single header, generated from include/ by tools/amalgamate.py; do not edit.
#pragma once
// ---- hotswap/hotswap.hpp ----
// hotswap: Erlang/OTP-style hot code upgrades for C++20. Include this, or only the headers you use.

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
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// ---- hotswap/detail/containers.hpp ----
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
                   requires(T& c, typename T::value_type&& v) {
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
concept ordered_map = unique_key_map<T> && requires { typename T::key_compare; };

/// std::unordered_map and its kin.
template <class T>
concept hashed_map = unique_key_map<T> && requires { typename T::hasher; };

}  // namespace hotswap::detail
// ---- hotswap/detail/fields.hpp ----
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

namespace hotswap::detail {

template <class... T>
struct type_list {
  static constexpr std::size_t size = sizeof...(T);
};

// ---- references to every field, indexable without std::tuple ----

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

// ---- hotswap/detail/bindings.hpp ----
// Generated by tools/generate_bindings.py; do not edit.

#include <cstddef>

namespace hotswap::detail {

/// The most fields a versioned struct may have.
inline constexpr std::size_t max_fields = 64;

/// Binds the N members of `object` and passes them to `tie_members`.
template <std::size_t N, class T>
constexpr auto bind_members(T& object) {
  if constexpr (N == 0) {
    (void)object;
    return tie_members();
  }
  else if constexpr (N == 1) {
    auto& [a0] = object;
    return tie_members(a0);
  }
  else if constexpr (N == 2) {
    auto& [a0, a1] = object;
    return tie_members(a0, a1);
  }
  else if constexpr (N == 3) {
    auto& [a0, a1, a2] = object;
    return tie_members(a0, a1, a2);
  }
  else if constexpr (N == 4) {
    auto& [a0, a1, a2, a3] = object;
    return tie_members(a0, a1, a2, a3);
  }
  else if constexpr (N == 5) {
    auto& [a0, a1, a2, a3, a4] = object;
    return tie_members(a0, a1, a2, a3, a4);
  }
  else if constexpr (N == 6) {
    auto& [a0, a1, a2, a3, a4, a5] = object;
    return tie_members(a0, a1, a2, a3, a4, a5);
  }
  else if constexpr (N == 7) {
    auto& [a0, a1, a2, a3, a4, a5, a6] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6);
  }
  else if constexpr (N == 8) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7);
  }
  else if constexpr (N == 9) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8);
  }
  else if constexpr (N == 10) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9);
  }
  else if constexpr (N == 11) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
  }
  else if constexpr (N == 12) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
  }
  else if constexpr (N == 13) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
  }
  else if constexpr (N == 14) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13);
  }
  else if constexpr (N == 15) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14);
  }
  else if constexpr (N == 16) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
  }
  else if constexpr (N == 17) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16);
  }
  else if constexpr (N == 18) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17);
  }
  else if constexpr (N == 19) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18);
  }
  else if constexpr (N == 20) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19);
  }
  else if constexpr (N == 21) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20);
  }
  else if constexpr (N == 22) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21);
  }
  else if constexpr (N == 23) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22);
  }
  else if constexpr (N == 24) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23);
  }
  else if constexpr (N == 25) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24);
  }
  else if constexpr (N == 26) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25);
  }
  else if constexpr (N == 27) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26);
  }
  else if constexpr (N == 28) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27);
  }
  else if constexpr (N == 29) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28);
  }
  else if constexpr (N == 30) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29);
  }
  else if constexpr (N == 31) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30);
  }
  else if constexpr (N == 32) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31);
  }
  else if constexpr (N == 33) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32);
  }
  else if constexpr (N == 34) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33);
  }
  else if constexpr (N == 35) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34);
  }
  else if constexpr (N == 36) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35);
  }
  else if constexpr (N == 37) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36);
  }
  else if constexpr (N == 38) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37);
  }
  else if constexpr (N == 39) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38);
  }
  else if constexpr (N == 40) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39);
  }
  else if constexpr (N == 41) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40);
  }
  else if constexpr (N == 42) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41);
  }
  else if constexpr (N == 43) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42);
  }
  else if constexpr (N == 44) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43);
  }
  else if constexpr (N == 45) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44);
  }
  else if constexpr (N == 46) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45);
  }
  else if constexpr (N == 47) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46);
  }
  else if constexpr (N == 48) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47);
  }
  else if constexpr (N == 49) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48);
  }
  else if constexpr (N == 50) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49);
  }
  else if constexpr (N == 51) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50);
  }
  else if constexpr (N == 52) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51);
  }
  else if constexpr (N == 53) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52);
  }
  else if constexpr (N == 54) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53);
  }
  else if constexpr (N == 55) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54);
  }
  else if constexpr (N == 56) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55);
  }
  else if constexpr (N == 57) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56);
  }
  else if constexpr (N == 58) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57);
  }
  else if constexpr (N == 59) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58);
  }
  else if constexpr (N == 60) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59);
  }
  else if constexpr (N == 61) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60);
  }
  else if constexpr (N == 62) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61);
  }
  else if constexpr (N == 63) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61, a62] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61, a62);
  }
  else if constexpr (N == 64) {
    auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61, a62, a63] = object;
    return tie_members(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26, a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38, a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50, a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61, a62, a63);
  }
}

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
  return requires { T{any_field{I}...}; };
}

/// Binary search: T accepts Low initializers and not High.
template <class T, std::size_t Low, std::size_t High>
constexpr std::size_t count_fields() {
  if constexpr (High - Low <= 1) {
    return Low;
  } else {
    constexpr std::size_t middle = (Low + High) / 2;
    if constexpr (accepts_initializers<T>(std::make_index_sequence<middle>{})) return count_fields<T, middle, High>();
    else return count_fields<T, Low, middle>();
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
    }(std::make_index_sequence<n>{});
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
    if (c == '<' || c == '(' || c == '{' || c == '[') ++depth;
    else if (c == '>' || c == ')' || c == '}' || c == ']') { if (depth-- == 0) break; }
    else if (c == ',' && depth == 0) break;
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
  }(std::make_index_sequence<(field_count<T> + names_per_spelling - 1) / names_per_spelling>{});
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
// ---- hotswap/detail/fixed_string.hpp ----
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
}  // namespace hotswap::errors

namespace hotswap::detail {
template <template <char...> class Spelling, fixed_string Text, std::size_t... I>
Spelling<Text.chars[I]...> spell(std::index_sequence<I...>);

/// `spelled<errors::field_named, "stage">` is `errors::field_named<'s', 't', 'a', 'g', 'e'>`.
template <template <char...> class Spelling, fixed_string Text>
using spelled = decltype(spell<Spelling, Text>(std::make_index_sequence<Text.view().size()>{}));
}  // namespace hotswap::detail

namespace hotswap {

/// Declares that `T` is version `Vsn` of a schema.
template <int Vsn, class T>
struct version {
  static constexpr int vsn = Vsn;
  using type = T;
};

/// Compile errors. Each names what is wrong in its own name and template arguments (which the
/// compiler prints as "in instantiation of ...") and says in its message what to write.
namespace errors {
template <class...>
inline constexpr bool reported = false;

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
template <class T>
struct type_has_no_canonical_name {
  static_assert(reported<type_has_no_canonical_name>,
                "hotswap: this field type has no canonical name for schema fingerprints: declare it as a "
                "schema version, or specialize hotswap::type_name<T> with `static constexpr std::string_view "
                "value = \"...\";`");
};
}  // namespace errors

namespace detail {
template <fixed_string Schema, class... Versions>
constexpr bool check_schema();
}

/// Lists the versions of the schema `Name`, oldest first, numbered consecutively.
template <detail::fixed_string Name, class... Versions>
struct schema {
  static_assert(sizeof...(Versions) > 0, "hotswap: a schema lists at least one hotswap::version<N, T>");
  static_assert(detail::check_schema<Name, Versions...>());

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
  using type_of = std::tuple_element_t<Vsn - oldest_vsn, std::tuple<typename Versions::type...>>;
  using latest = type_of<latest_vsn>;
};

/// Maps a struct to its schema. Specialize it once per schema, for the types the schema lists:
///
///     template <hotswap::listed_in<AccountSchema> T>
///     struct hotswap::schema_of<T> : AccountSchema {};
template <class T>
struct schema_of {};

/// `T` is one of the versions `Schema` lists.
template <class T, class Schema>
concept listed_in = Schema::template lists<T>;

/// `T` is a version of some schema.
template <class T>
concept versioned = requires { schema_of<T>::name; } && schema_of<T>::template lists<T>;

/// The version number of a versioned struct.
template <versioned T>
inline constexpr int vsn_of = schema_of<T>::template vsn_of<T>;

/// Two structs are versions of the same schema.
template <class A, class B>
concept same_schema = versioned<A> && versioned<B> &&
                      std::is_same_v<typename schema_of<A>::schema_type, typename schema_of<B>::schema_type>;

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
  std::size_t index = 0;
  while (index < field_count<T> && field_names<T>[index] != name) ++index;
  return index;
}

// ---- validation of a schema's list, when the schema is first used ----

namespace detail {

template <class Schema, int Vsn, class T>
constexpr bool check_version() {
  if constexpr (!std::is_aggregate_v<T> || std::is_polymorphic_v<T>) {
    return (void)errors::version_is_not_an_aggregate<Schema, Vsn, T>{}, false;
  } else if constexpr (!std::is_default_constructible_v<T>) {
    return (void)errors::version_is_not_default_constructible<Schema, Vsn, T>{}, false;
  } else if constexpr (field_count<T> > max_fields) {
    return (void)errors::version_has_too_many_fields<Schema, Vsn, T, field_count<T>>{}, false;
  } else if constexpr (!std::is_move_assignable_v<T>) {
    return (void)errors::version_has_a_reference_or_const_member<Schema, Vsn, T>{}, false;
  } else if constexpr (plain_layout_size(field_types<T>{}) != sizeof(T)) {
    return (void)errors::version_has_a_bit_field<Schema, Vsn, T>{}, false;
  } else {
    return true;
  }
}

template <class Schema, int Previous, int Next>
constexpr bool check_numbering() {
  if constexpr (Next != Previous + 1) return (void)errors::version_numbers_must_count_up_by_one<Schema, Previous, Next>{}, false;
  return true;
}

template <fixed_string Schema, class... Versions>
constexpr bool check_schema() {
  constexpr std::array<int, sizeof...(Versions)> vsns{Versions::vsn...};
  const bool numbered = [&]<std::size_t... I>(std::index_sequence<I...>) {
    return (check_numbering<spelled<errors::schema_named, Schema>, vsns[I], vsns[I + 1]>() && ...);
  }(std::make_index_sequence<sizeof...(Versions) - 1>{});
  return numbered && (check_version<spelled<errors::schema_named, Schema>, Versions::vsn, typename Versions::type>() && ...);
}

}  // namespace detail

// ---- per-step field diffs ----

namespace detail {
// A type's identity as a constant: the compiler's own spelling of it. (Comparing the addresses
// of per-type variables is not a constant expression under -fsanitize=address.)
template <class T>
constexpr std::string_view type_identity() {
  return __PRETTY_FUNCTION__;
}

template <class T>
inline constexpr auto field_type_ids = []<std::size_t... I>(std::index_sequence<I...>) {
  return std::array<std::string_view, sizeof...(I)>{type_identity<field_type<T, I>>()...};
}(std::make_index_sequence<field_count<T>>{});

enum class field_change { added, removed, kept, retyped };

template <class From, class To>
constexpr bool diff_has(std::string_view name, field_change change) {
  const std::size_t in_from = field_index<From>(name), in_to = field_index<To>(name);
  const bool was = in_from < field_count<From>, is = in_to < field_count<To>;
  switch (change) {
    case field_change::added: return !was && is;
    case field_change::removed: return was && !is;
    case field_change::kept: return was && is && field_type_ids<From>[in_from] == field_type_ids<To>[in_to];
    case field_change::retyped: return was && is && field_type_ids<From>[in_from] != field_type_ids<To>[in_to];
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
}  // namespace detail

/// What changes, field by field and by name, from the struct `From` to the struct `To`.
template <class From, class To>
struct field_diff {
  static constexpr auto added = detail::diff_names<From, To, detail::field_change::added>();
  static constexpr auto removed = detail::diff_names<From, To, detail::field_change::removed>();
  static constexpr auto kept = detail::diff_names<From, To, detail::field_change::kept>();
  static constexpr auto retyped = detail::diff_names<From, To, detail::field_change::retyped>();
};

// ---- canonical type names and fingerprints ----

/// The canonical name of a field type that is neither standard nor a schema version. Specialize
/// with `static constexpr std::string_view value = "...";`: it enters the fingerprint of every
/// schema that uses the type, so it must not depend on the compiler.
template <class T>
struct type_name {};

namespace detail {

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

template <class T, class Sink>
constexpr void describe_type(Sink& sink);

/// `Account@2{name:optional<string>,score:i32,stage:i32}`.
template <versioned T, class Sink>
constexpr void describe_struct(Sink& sink) {
  sink.put(schema_of<T>::name);
  sink.put("@");
  put_number(sink, static_cast<std::size_t>(vsn_of<T>));
  sink.put("{");
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((sink.put(I == 0 ? "" : ","), sink.put(field_names<T>[I]), sink.put(":"), describe_type<field_type<T, I>>(sink)),
     ...);
  }(std::make_index_sequence<field_count<T>>{});
  sink.put("}");
}

template <class Sink, class... Args>
constexpr void describe_arguments(Sink& sink, std::string_view template_name, type_list<Args...>) {
  sink.put(template_name);
  sink.put("<");
  std::size_t i = 0;
  ((sink.put(i++ == 0 ? "" : ","), describe_type<Args>(sink)), ...);
  sink.put(">");
}

template <class T, class Sink>
constexpr void describe_type(Sink& sink) {
  if constexpr (requires { type_name<T>::value; }) {
    sink.put(type_name<T>::value);
  } else if constexpr (versioned<T>) {
    describe_struct<T>(sink);
  } else if constexpr (std::is_same_v<T, bool>) {
    sink.put("bool");
  } else if constexpr (std::is_same_v<T, char>) {
    sink.put("char");
  } else if constexpr (std::is_integral_v<T>) {
    sink.put(std::is_signed_v<T> ? "i" : "u");
    put_number(sink, sizeof(T) * 8);
  } else if constexpr (std::is_floating_point_v<T>) {
    sink.put("f");
    put_number(sink, sizeof(T) * 8);
  } else if constexpr (std::is_enum_v<T>) {
    sink.put("enum:");
    describe_type<std::underlying_type_t<T>>(sink);
  } else if constexpr (std::is_same_v<T, std::string>) {
    sink.put("string");
  } else if constexpr (optional<T>) {
    describe_arguments(sink, "optional", type_list<typename T::value_type>{});
  } else if constexpr (sequence<T>) {
    describe_arguments(sink, "vector", type_list<typename T::value_type>{});
  } else if constexpr (ordered_map<T>) {
    describe_arguments(sink, "map", type_list<typename T::key_type, typename T::mapped_type>{});
  } else if constexpr (hashed_map<T>) {
    describe_arguments(sink, "unordered_map", type_list<typename T::key_type, typename T::mapped_type>{});
  } else if constexpr (fixed_array<T>) {
    describe_arguments(sink, "array", type_list<typename T::value_type>{});
    sink.put("[");
    put_number(sink, std::tuple_size_v<T>);
    sink.put("]");
  } else {
    (void)errors::type_has_no_canonical_name<T>{};
  }
}

template <class T>
constexpr auto make_type_description() {
  constexpr std::size_t size = [] {
    length_sink counter;
    describe_type<T>(counter);
    return counter.size;
  }();
  chars_sink<size> text;
  describe_type<T>(text);
  return text.chars;
}

template <class T>
inline constexpr auto type_description_chars = make_type_description<T>();

/// FNV-1a, 64 bits: the same on every compiler, which is all a fingerprint needs.
constexpr std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 14695981039346656037ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return hash;
}

}  // namespace detail

/// The canonical spelling of a type, the same on every compiler: `optional<string>`, `i32`,
/// `Account@2{name:optional<string>,score:i32,stage:i32}`.
template <class T>
inline constexpr std::string_view type_description{detail::type_description_chars<T>.data(),
                                                   detail::type_description_chars<T>.size()};

/// The fingerprint of a schema version (or any describable type): a hash of its schema name,
/// vsn, field names and canonical field types, recursively.
template <class T>
inline constexpr std::uint64_t fingerprint = detail::fnv1a(type_description<T>);

// ---- run-time registry ----

/// One version of a schema as the registry holds it: what type-erased code can know of a value.
struct version_info {
  std::string schema;
  int vsn = 0;
  std::uint64_t fingerprint = 0;
  std::vector<std::string> field_names;
  std::vector<std::string> field_types;
  friend bool operator==(const version_info&, const version_info&) = default;
};

/// The description of version `T` of its schema.
template <versioned T>
version_info describe() {
  version_info info{std::string(schema_of<T>::name), vsn_of<T>, fingerprint<T>, {}, {}};
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (info.field_names.emplace_back(field_names<T>[I]), ...);
    (info.field_types.emplace_back(type_description<field_type<T, I>>), ...);
  }(std::make_index_sequence<field_count<T>>{});
  return info;
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
    const lock hold(busy_);
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
    }(std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
  }

  std::optional<version_info> find(std::string_view schema, int vsn) const {
    const lock hold(busy_);
    const version_info* known = find_locked(schema, vsn);
    return known ? std::optional(*known) : std::nullopt;
  }

  /// The versions of one schema, oldest first.
  std::vector<version_info> versions(std::string_view schema) const {
    const lock hold(busy_);
    std::vector<version_info> out;
    for (const auto& info : entries_)
      if (info.schema == schema) out.insert(find_insertion(out, info.vsn), info);
    return out;
  }

 private:
  struct lock {
    std::atomic_flag& flag;
    explicit lock(std::atomic_flag& f) : flag(f) {
      while (flag.test_and_set(std::memory_order_acquire)) flag.wait(true, std::memory_order_relaxed);
    }
    ~lock() {
      flag.clear(std::memory_order_release);
      flag.notify_one();
    }
  };
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

  mutable std::atomic_flag busy_;
  std::vector<version_info> entries_;
};

/// The registry of this program image. (A shared library built with hidden visibility has its
/// own; the modules layer reconciles them.)
inline schema_registry& registry() {
  static schema_registry instance;
  return instance;
}

}  // namespace hotswap
// ---- hotswap/migrations.hpp ----
// Migrations between the versions of a schema, generated field by field at compile time.
//
// Fields are matched by name. A kept field is moved; an added field takes the new struct's
// default member initializer; a field whose type is a schema version, or a standard container
// or optional of one, migrates recursively; widening conversions apply by themselves. What
// cannot be inferred is declared once per step:
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


namespace hotswap {

// ---- declarations ----

namespace detail {
enum class rule_kind { removed, renamed, convert, init };

struct rule_entry {
  rule_kind kind;
  std::string_view field;       // the old field (removed, renamed) or the new one (convert, init)
  std::string_view renamed_to;  // renamed only
};
}  // namespace detail

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
  const Extra& extra;
  const Key& key;

  static constexpr bool has_key = !std::is_same_v<Key, no_key>;

  template <class NewKey>
  constexpr context<Extra, NewKey> with_key(const NewKey& new_key) const {
    return {extra, new_key};
  }
};

// ---- errors ----

namespace errors {
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
                "hotswap: a field added in this step has no default member initializer; give it one "
                "(`int stage = 0;`) or declare hotswap::init<\"field\">(fn) in the rules of "
                "hotswap::step<From, To>");
};
template <class Schema, int From, int To, class Field>
struct rule_names_an_unknown_field {
  static_assert(reported<rule_names_an_unknown_field>,
                "hotswap: a rule of this step names a field that does not exist: removed and renamed name a "
                "field of the older struct, renamed's second name and init and convert a field of the newer "
                "(and convert one the older struct has too, under its old name)");
};
template <class Function, class Value, class Extra, class Key>
struct declared_function_does_not_fit {
  static_assert(reported<declared_function_does_not_fit>,
                "hotswap: a declared init or convert function cannot be called here; it must take (old) or "
                "(old, context), or (old, extra, key) when the value is migrated inside a map (Key is "
                "hotswap::no_key outside one), with Extra the type of the value given to hotswap::migrate");
};
template <class From, class To>
struct no_migration_between {
  static_assert(reported<no_migration_between>,
                "hotswap: there is no migration between these types: they are not versions of one schema, "
                "matching containers of them, or a widening conversion");
};
}  // namespace errors

// ---- what migrates by itself ----

namespace detail {

/// A conversion that keeps every value: to a larger integer of the same signedness, to a larger
/// floating type, or from an integer to a floating type whose mantissa holds all its values
/// (int -> double, not int -> float or long -> double). bool and char (whose signedness depends
/// on the platform) convert only to themselves.
template <class From, class To>
constexpr bool widens() {
  constexpr bool plain_number = [] {
    using F = std::remove_cv_t<From>;
    using T = std::remove_cv_t<To>;
    return std::is_arithmetic_v<F> && std::is_arithmetic_v<T> && !std::is_same_v<F, bool> &&
           !std::is_same_v<T, bool> && !std::is_same_v<F, char> && !std::is_same_v<T, char>;
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

template <class From, class To>
constexpr bool migrates_by_itself();

template <class From, class To>
constexpr bool container_migrates() {
  if constexpr (sequence<From> && sequence<To>) {
    return migrates_by_itself<typename From::value_type, typename To::value_type>();
  } else if constexpr ((ordered_map<From> && ordered_map<To>) || (hashed_map<From> && hashed_map<To>)) {
    return std::is_same_v<typename From::key_type, typename To::key_type> &&
           migrates_by_itself<typename From::mapped_type, typename To::mapped_type>();
  } else if constexpr (optional<From> && optional<To>) {
    return migrates_by_itself<typename From::value_type, typename To::value_type>();
  } else if constexpr (optional<To>) {
    return migrates_by_itself<From, typename To::value_type>();
  } else if constexpr (fixed_array<From> && fixed_array<To>) {
    return std::tuple_size_v<From> == std::tuple_size_v<To> &&
           migrates_by_itself<typename From::value_type, typename To::value_type>();
  } else {
    return false;
  }
}

template <class From, class To>
constexpr bool migrates_by_itself() {
  if constexpr (std::is_same_v<From, To> || same_schema<From, To>) return true;
  else return widens<From, To>() || container_migrates<From, To>();
}

}  // namespace detail

/// A value of `From` migrates to `To` with nothing declared outside the schemas' steps.
template <class From, class To>
concept migrates = detail::migrates_by_itself<std::remove_cvref_t<From>, To>();

// ---- one step, generated ----

namespace detail {

template <class T, std::size_t I>
using field_name_arg = spelled<errors::field_named, fixed_string<field_names<T>[I].size() + 1>(field_names<T>[I])>;

template <class T>
using schema_name_arg = spelled<errors::schema_named, fixed_string<schema_of<T>::name.size() + 1>(schema_of<T>::name)>;

template <class Step>
constexpr auto rules_of() {
  if constexpr (requires { Step::rules; }) return Step::rules;
  else return rules<>{};
}

template <class Step>
using rules_type = decltype(rules_of<Step>());

template <class From, class To>
struct step_rules {
  static constexpr auto own = rules_type<step<From, To>>::entries;
  // A downgrade renames back what the upgrade renamed.
  static constexpr auto reverse = vsn_of<From> > vsn_of<To> ? rules_type<step<To, From>>::entries
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

enum class source_kind { init, convert, moved, added };

struct field_source {
  source_kind kind;
  std::size_t old_index;
};

/// Where each field of `To` comes from.
template <class From, class To>
constexpr auto plan_step() {
  using Rules = step_rules<From, To>;
  std::array<field_source, field_count<To>> plan{};
  for (std::size_t j = 0; j < plan.size(); ++j) {
    const std::string_view name = field_names<To>[j];
    const std::size_t old_index = field_index<From>(Rules::old_name(name));
    if (Rules::has(rule_kind::init, name)) plan[j] = {source_kind::init, old_index};
    else if (Rules::has(rule_kind::convert, name)) plan[j] = {source_kind::convert, old_index};
    else if (old_index < field_count<From>) plan[j] = {source_kind::moved, old_index};
    else plan[j] = {source_kind::added, old_index};
  }
  return plan;
}

template <class From, class To>
inline constexpr auto step_plan = plan_step<From, To>();

// Whether an added scalar field has a default member initializer. Reading it after default
// initialization is a constant expression exactly when it has one; this can only be asked of
// structs that can be built in a constant expression (clang 14 cannot build a std::string
// there), and of the others hotswap value-initializes the field.
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
template <class T, std::size_t J>
constexpr bool lacks_default() {
  if constexpr (!std::is_scalar_v<field_type<T, J>>) return false;
  else if constexpr (std::is_trivially_default_constructible_v<T>) return true;
  else if constexpr (requires { typename std::bool_constant<build_default<T>()>; })
    return !requires { typename std::bool_constant<read_default_member<T, J>()>; };
  else return false;
}

/// Reports the first mistake in a step's declarations, as a compile error that names it.
template <class From, class To>
constexpr bool check_step() {
  using Rules = step_rules<From, To>;
  constexpr auto plan = step_plan<From, To>;
  using schema = schema_name_arg<To>;
  constexpr int from = vsn_of<From>, to = vsn_of<To>;
  bool ok = true;
  [&]<std::size_t... R>(std::index_sequence<R...>) {
    auto check_rule = [&]<std::size_t I>(std::integral_constant<std::size_t, I>) {
      constexpr rule_entry rule = Rules::own[I];
      constexpr bool old_side = rule.kind == rule_kind::removed || rule.kind == rule_kind::renamed;
      constexpr bool known = (old_side ? field_index<From>(rule.field) < field_count<From>
                                       : field_index<To>(rule.field) < field_count<To>) &&
                             (rule.kind != rule_kind::renamed || field_index<To>(rule.renamed_to) < field_count<To>) &&
                             (rule.kind != rule_kind::convert ||
                              field_index<From>(Rules::old_name(rule.field)) < field_count<From>);
      if constexpr (!known) {
        (void)errors::rule_names_an_unknown_field<schema, from, to, spelled<errors::field_named, fixed_string<rule.field.size() + 1>(rule.field)>>{};
        ok = false;
      }
    };
    (check_rule(std::integral_constant<std::size_t, R>{}), ...);
    (void)check_rule;
  }(std::make_index_sequence<Rules::own.size()>{});
  if (!ok) return false;

  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto check_old = [&]<std::size_t Old>(std::integral_constant<std::size_t, Old>) {
      constexpr bool used = [&] {
        for (const auto& source : plan)
          if (source.kind != source_kind::added && source.old_index == Old) return true;
        return Rules::has(rule_kind::removed, field_names<From>[Old]);
      }();
      if constexpr (!used) {
        (void)errors::field_dropped_without_declaration<schema, from, to, field_name_arg<From, Old>>{};
        ok = false;
      }
    };
    (check_old(std::integral_constant<std::size_t, I>{}), ...);
  }(std::make_index_sequence<field_count<From>>{});

  [&]<std::size_t... J>(std::index_sequence<J...>) {
    auto check_new = [&]<std::size_t New>(std::integral_constant<std::size_t, New>) {
      constexpr field_source source = plan[New];
      if constexpr (source.kind == source_kind::moved) {
        using Old = field_type<From, source.old_index>;
        using Now = field_type<To, New>;
        if constexpr (!migrates_by_itself<Old, Now>()) {
          (void)errors::field_type_changed_without_converter<schema, from, to, field_name_arg<To, New>, Old, Now>{};
          ok = false;
        }
      } else if constexpr (source.kind == source_kind::added && lacks_default<To, New>()) {
        (void)errors::added_field_has_no_default<schema, from, to, field_name_arg<To, New>>{};
        ok = false;
      }
    };
    (check_new(std::integral_constant<std::size_t, J>{}), ...);
  }(std::make_index_sequence<field_count<To>>{});
  return ok;
}

template <class To, class From, class Context>
To migrate_value(From&& from, const Context& context);

template <class Function, class Value, class Extra, class Key>
decltype(auto) call_declared(const Function& function, Value&& value, const context<Extra, Key>& context) {
  if constexpr (hotswap::context<Extra, Key>::has_key &&
                std::is_invocable_v<const Function&, Value&&, const Extra&, const Key&>)
    return function(std::forward<Value>(value), context.extra, context.key);
  else if constexpr (std::is_invocable_v<const Function&, Value&&, const hotswap::context<Extra, Key>&>)
    return function(std::forward<Value>(value), context);
  else if constexpr (std::is_invocable_v<const Function&, Value&&>)
    return function(std::forward<Value>(value));
  else
    return (void)errors::declared_function_does_not_fit<Function, Value, Extra, Key>{}, 0;
}

/// The fields of a plan whose source is `kind`, in order.
template <auto Plan, source_kind Kind>
constexpr auto fields_of_kind() {
  constexpr std::size_t count = [] {
    std::size_t n = 0;
    for (const auto& source : Plan) n += source.kind == Kind;
    return n;
  }();
  std::array<std::size_t, count> indices{};
  std::size_t n = 0;
  for (std::size_t j = 0; j < Plan.size(); ++j)
    if (Plan[j].kind == Kind) indices[n++] = j;
  return indices;
}

/// How many leading fields need an initializer: trailing added fields are left to their default
/// member initializers by aggregate initialization itself.
template <auto Plan>
constexpr std::size_t initialized_prefix() {
  std::size_t prefix = Plan.size();
  while (prefix > 0 && Plan[prefix - 1].kind == source_kind::added) --prefix;
  return prefix;
}

template <class Field, class Value>
Field implicitly(Value&& value) {
  return std::forward<Value>(value);
}

/// An added field that is followed by initialized fields: its default member initializer,
/// taken from a default-built struct.
template <class T, std::size_t I>
field_type<T, I> default_member() {
  T defaults{};
  return std::move(member<I>(fields(defaults)));
}

template <class From, class To, class Context>
To run_step(From&& from, const Context& context) {
  using Step = step<From, To>;
  if constexpr (requires { Step::migrate(std::move(from), context); }) {
    return Step::migrate(std::move(from), context);
  } else if constexpr (!check_step<From, To>()) {
    return To{};  // unreachable: check_step reported a compile error
  } else {
    constexpr auto plan = step_plan<From, To>;
    constexpr auto declared = rules_of<Step>();
    using Rules = step_rules<From, To>;
    auto old_fields = fields(from);
    auto declared_function = [&]<rule_kind Kind, std::size_t New>() -> const auto& {
      using Rule = typename rules_type<Step>::template rule_type<Rules::find(Kind, field_names<To>[New])>;
      return static_cast<const Rule&>(declared).function;
    };

    // Initializers read the whole old value, so they all run before anything is moved out of it.
    constexpr auto init_fields = fields_of_kind<plan, source_kind::init>();
    auto initialized = [&]<std::size_t... K>(std::index_sequence<K...>) {
      return std::tuple<field_type<To, init_fields[K]>...>{implicitly<field_type<To, init_fields[K]>>(
          call_declared(declared_function.template operator()<rule_kind::init, init_fields[K]>(), std::as_const(from),
                        context))...};
    }(std::make_index_sequence<init_fields.size()>{});

    // Each field's initializer: a moved field is moved straight into place, as a hand-written
    // `To{std::move(old.name), ...}` does.
    auto field_value = [&]<std::size_t New>(std::integral_constant<std::size_t, New>) -> decltype(auto) {
      constexpr field_source source = plan[New];
      using Field = field_type<To, New>;
      if constexpr (source.kind == source_kind::init) {
        constexpr std::size_t position = [&] {
          std::size_t k = 0;
          while (init_fields[k] != New) ++k;
          return k;
        }();
        return std::move(std::get<position>(initialized));
      } else if constexpr (source.kind == source_kind::convert) {
        return implicitly<Field>(call_declared(declared_function.template operator()<rule_kind::convert, New>(),
                                               std::move(member<source.old_index>(old_fields)), context));
      } else if constexpr (source.kind == source_kind::moved &&
                           std::is_same_v<field_type<From, source.old_index>, Field>) {
        return std::move(member<source.old_index>(old_fields));
      } else if constexpr (source.kind == source_kind::moved) {
        return migrate_value<Field>(std::move(member<source.old_index>(old_fields)), context);
      } else {
        return default_member<To, New>();
      }
    };
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // trailing added fields: on purpose
    return [&]<std::size_t... J>(std::index_sequence<J...>) {
      return To{field_value(std::integral_constant<std::size_t, J>{})...};
    }(std::make_index_sequence<initialized_prefix<plan>()>{});
#pragma GCC diagnostic pop
  }
}

/// Migrates a schema version to another version of the same schema, one step at a time.
template <class To, class From, class Context>
To migrate_versions(From&& from, const Context& context) {
  constexpr int from_vsn = vsn_of<From>, to_vsn = vsn_of<To>;
  if constexpr (from_vsn == to_vsn) {
    return std::move(from);
  } else {
    using Next = typename schema_of<From>::template type_of<(from_vsn < to_vsn ? from_vsn + 1 : from_vsn - 1)>;
    if constexpr (std::is_same_v<Next, To>)
      return run_step<From, To>(std::move(from), context);  // built in place, not moved once more
    else
      return migrate_versions<To>(run_step<From, Next>(std::move(from), context), context);
  }
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

template <class To, class From, class Context>
To migrate_value(From&& from, const Context& context) {
  if constexpr (std::is_same_v<From, To>) {
    return std::move(from);
  } else if constexpr (same_schema<From, To>) {
    return migrate_versions<To>(std::move(from), context);
  } else if constexpr (widens<From, To>()) {
    return static_cast<To>(from);
  } else if constexpr (sequence<From> && sequence<To>) {
    To out;
    out.reserve(from.size());
    for (auto& element : from)
      out.emplace_back(in_place<typename To::value_type>(
          [&] { return migrate_value<typename To::value_type>(std::move(element), context); }));
    return out;
  } else if constexpr (ordered_map<From> && ordered_map<To>) {
    To out;
    for (auto& entry : from)  // not a structured binding: clang 14 cannot capture one
      out.emplace_hint(out.end(), entry.first, in_place<typename To::mapped_type>([&] {
                         return migrate_value<typename To::mapped_type>(std::move(entry.second),
                                                                        context.with_key(entry.first));
                       }));
    return out;
  } else if constexpr (hashed_map<From> && hashed_map<To>) {
    To out;
    out.reserve(from.size());
    for (auto& entry : from)
      out.emplace(entry.first, in_place<typename To::mapped_type>([&] {
                    return migrate_value<typename To::mapped_type>(std::move(entry.second),
                                                                   context.with_key(entry.first));
                  }));
    return out;
  } else if constexpr (optional<From> && optional<To>) {
    if (!from) return To{};
    return To{migrate_value<typename To::value_type>(std::move(*from), context)};
  } else if constexpr (optional<To>) {
    return To{migrate_value<typename To::value_type>(std::move(from), context)};
  } else if constexpr (fixed_array<From> && fixed_array<To> && std::tuple_size_v<From> == std::tuple_size_v<To>) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return To{migrate_value<typename To::value_type>(std::move(from[I]), context)...};
    }(std::make_index_sequence<std::tuple_size_v<To>>{});
  } else {
    return (void)errors::no_migration_between<From, To>{}, To{};
  }
}

}  // namespace detail

/// Migrates `value` to `To`: a schema version to another (up or down, step by step), or a
/// container or optional of versions to the same container of others. `extra` reaches every
/// declared function as `context.extra`.
template <class To, class From, class Extra = no_extra>
To migrate(From value, const Extra& extra = {}) {
  static constexpr no_key top_level{};
  return detail::migrate_value<To>(std::move(value), context<Extra>{extra, top_level});
}

}  // namespace hotswap
// ---- hotswap/inspect.hpp ----
// Values printed as Elixir's `inspect` prints them: `%Account{name: "Alice", score: 3, stage: 1}`.
//
// Opt in per schema, so that the formatter never competes with fmt's own for other aggregates:
//
//     template <> inline constexpr bool hotswap::enable_inspect<AccountSchema> = true;
//     fmt::print("{}\n", account);   // %Account{name: nil, score: 0, stage: 0}

#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>


namespace hotswap {

/// Set to true for a schema to make fmt print its versions as Elixir's inspect does.
template <class Schema>
inline constexpr bool enable_inspect = false;

/// A version of a schema that opted in to inspect formatting.
template <class T>
concept inspectable = versioned<T> && enable_inspect<typename schema_of<T>::schema_type>;

namespace detail {

template <class Out>
Out inspect_string(Out out, std::string_view text) {
  *out++ = '"';
  for (char c : text) {
    switch (c) {
      case '"': out = fmt::format_to(out, "\\\""); break;
      case '\\': out = fmt::format_to(out, "\\\\"); break;
      case '\n': out = fmt::format_to(out, "\\n"); break;
      case '\t': out = fmt::format_to(out, "\\t"); break;
      case '\r': out = fmt::format_to(out, "\\r"); break;
      default: *out++ = c;
    }
  }
  *out++ = '"';
  return out;
}

/// Elixir writes floats with a fraction and a bare exponent: 1.0, 0.1, 1.0e20, 1.5e-7.
template <class Out>
Out inspect_float(Out out, double value) {
  const std::string text = fmt::format("{}", value);
  if (text.find_first_of("in") != std::string::npos) return fmt::format_to(out, "{}", text);  // inf, nan
  const std::size_t e = text.find('e') == std::string::npos ? text.size() : text.find('e');
  std::string_view mantissa(text.data(), e), exponent(text.data() + e, text.size() - e);
  const bool negative = exponent.size() > 1 && exponent[1] == '-';
  const std::size_t digits = exponent.find_first_not_of("e+-0");
  exponent = digits == std::string_view::npos ? std::string_view() : exponent.substr(digits);
  return fmt::format_to(out, "{}{}{}{}{}", mantissa, mantissa.find('.') == std::string_view::npos ? ".0" : "",
                        e < text.size() ? "e" : "", negative ? "-" : "", exponent);
}

template <class Out, class T>
Out inspect_to(Out out, const T& value);

template <class Out, class Range>
Out inspect_list(Out out, const Range& range) {
  *out++ = '[';
  bool first = true;
  for (const auto& element : range) {
    if (!first) out = fmt::format_to(out, ", ");
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
  out = fmt::format_to(out, "%{{");
  for (std::size_t i = 0; i < size; ++i) {
    const auto* entry = entries[i];
    if (i > 0) out = fmt::format_to(out, ", ");
    out = inspect_to(out, entry->first);
    out = fmt::format_to(out, " => ");
    out = inspect_to(out, entry->second);
  }
  *out++ = '}';
  return out;
}

template <class Out, class T>
Out inspect_to(Out out, const T& value) {
  if constexpr (versioned<T>) {
    out = fmt::format_to(out, "%{}{{", schema_of<T>::name);
    auto members = fields(value);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((out = fmt::format_to(out, "{}{}: ", I == 0 ? "" : ", ", field_names<T>[I]), out = inspect_to(out, member<I>(members))),
       ...);
    }(std::make_index_sequence<field_count<T>>{});
    *out++ = '}';
    return out;
  } else if constexpr (std::is_same_v<T, bool>) {
    return fmt::format_to(out, "{}", value ? "true" : "false");
  } else if constexpr (std::is_floating_point_v<T>) {
    return inspect_float(out, static_cast<double>(value));
  } else if constexpr (std::is_arithmetic_v<T>) {
    return fmt::format_to(out, "{}", +value);  // a char is a number in Elixir
  } else if constexpr (std::is_enum_v<T>) {
    return fmt::format_to(out, "{}", static_cast<std::underlying_type_t<T>>(value));
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return inspect_string(out, value);
  } else if constexpr (optional<T>) {
    return value ? inspect_to(out, *value) : fmt::format_to(out, "nil");
  } else if constexpr (ordered_map<T> || hashed_map<T>) {
    return inspect_map(out, value);
  } else if constexpr (requires { std::begin(value); std::end(value); }) {
    return inspect_list(out, value);
  } else {
    return fmt::format_to(out, "{}", value);
  }
}

}  // namespace detail

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
