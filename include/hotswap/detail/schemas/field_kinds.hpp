// The field types hotswap supports, listed once. Every place that treats a field type by what it
// is switches on field_kind_of<T>: describing it canonically (schemas/describe.hpp), whether it
// can be described, whether it is plain data (servers' tables), how it migrates
// (migrations/routes.hpp), which schemas it holds (modules' notes) and how inspect prints it.
// Supporting another standard container is one concept in containers.hpp, one kind here, and a
// case in each switch (the compiler's -Wswitch names the switches that lack it).
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "../common/type_list.hpp"
#include "../reflect/containers.hpp"
#include "../reflect/fields.hpp"

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
