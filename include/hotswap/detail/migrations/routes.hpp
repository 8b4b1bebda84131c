// What migrates by itself: how a value of one field type becomes another (the same type, versions
// of one schema, a widening, or a container of those), decided once for checking and migrating.
#pragma once

#include <limits>
#include <tuple>
#include <type_traits>

#include "../schemas/field_kinds.hpp"

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
