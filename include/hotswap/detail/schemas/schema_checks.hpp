// Checking a schema's list of versions when the schema is first used: numbered 1, 2, 3... and each
// version a plain aggregate of at most max_fields fields. Cost: one verdict per version, no
// recursion into the fields (describing them, describe.hpp, checks those).
#pragma once

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../common/fixed_string.hpp"
#include "../common/verdict.hpp"
#include "../reflect/fields.hpp"

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
