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
#pragma once

#include <array>
#include <cstddef>
#include <limits>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "detail/common/fixed_string.hpp"
#include "detail/migrations/apply.hpp"
#include "detail/migrations/checks.hpp"
#include "detail/migrations/context.hpp"
#include "detail/migrations/step_plan.hpp"
#include "schemas.hpp"

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
