// The standard containers a schema field may be, recognised by their shape as fmt recognises
// ranges, so that hotswap does not include <map>, <unordered_map> or <vector> for its users.
#pragma once

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
