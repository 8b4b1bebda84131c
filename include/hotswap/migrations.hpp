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
#pragma once

#include <array>
#include <cstddef>
#include <limits>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "schemas.hpp"

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
