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
template <class Schema, int From, int To, class Field, class Returned, class FieldType>
struct declared_function_returns_the_wrong_type {
  static_assert(reported<declared_function_returns_the_wrong_type>,
                "hotswap: a declared init or convert function returns a type (Returned) that does not convert to "
                "the type of the field it makes (FieldType); return FieldType");
};
template <class From, class To>
struct no_migration_between {
  static_assert(reported<no_migration_between>,
                "hotswap: there is no migration between these types: they are not versions of one schema, "
                "matching containers of them, or a widening conversion; if From and To are two versions of one "
                "struct, declare them: `using S = hotswap::schema<\"Name\", hotswap::version<1, From>, "
                "hotswap::version<2, To>>;` and `template <hotswap::listed_in<S> T> struct hotswap::schema_of<T> : S {};`");
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

/// How a value of From becomes a To: the one decision that checking and migrating share.
enum class route { same, versions, widening, sequence, map, optional, into_optional, array, none };

template <class From, class To>
constexpr route route_of() {
  if constexpr (std::is_same_v<From, To>)
    return route::same;
  else if constexpr (same_schema<From, To>)
    return route::versions;
  else if constexpr (widens<From, To>())
    return route::widening;
  else if constexpr (sequence<From> && sequence<To>)
    return route::sequence;
  else if constexpr ((ordered_map<From> && ordered_map<To>) || (hashed_map<From> && hashed_map<To>))
    return std::is_same_v<typename From::key_type, typename To::key_type> ? route::map : route::none;
  else if constexpr (optional<From> && optional<To>)
    return route::optional;
  else if constexpr (optional<To>)
    return route::into_optional;
  else if constexpr (fixed_array<From> && fixed_array<To>)
    return std::tuple_size_v<From> == std::tuple_size_v<To> ? route::array : route::none;
  else
    return route::none;
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

}  // namespace detail

// ---- one step's plan ----

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
    if (Rules::has(rule_kind::init, name)) plan[j] = {source_kind::init, old_index};
    else if (Rules::has(rule_kind::convert, name)) plan[j] = {source_kind::convert, old_index};
    else if (old_index < field_count<From>) plan[j] = {source_kind::moved, old_index};
    else plan[j] = {source_kind::added, old_index};
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

}  // namespace detail

// ---- checks: the first mistake of a migration, found without reporting anything ----
//
// check_migration mirrors migrate_value route by route, and each step's check mirrors run_step
// field by field: `migrate` compiles exactly when it finds nothing, and hotswap::migrates asks
// it. Cost: one instantiation per field per step per context (the key type of an enclosing map
// is part of it), the same fields run_step instantiates anyway.

namespace detail {

template <class From, class To, class Context>
constexpr auto check_migration();

template <class From, class To, std::size_t I>
constexpr auto check_rule() {
  using Rules = step_rules<From, To>;
  constexpr rule_entry rule = Rules::own[I];
  constexpr bool old_side = rule.kind == rule_kind::removed || rule.kind == rule_kind::renamed;
  constexpr bool known =
      (old_side ? field_index<From>(rule.field) < field_count<From> : field_index<To>(rule.field) < field_count<To>) &&
      (rule.kind != rule_kind::renamed || field_index<To>(rule.renamed_to) < field_count<To>) &&
      (rule.kind != rule_kind::convert || field_index<From>(Rules::old_name(rule.field)) < field_count<From>);
  if constexpr (known)
    return verdict<no_error>{};
  else
    return verdict<errors::rule_names_an_unknown_field<schema_name_arg<To>, vsn_of<From>, vsn_of<To>,
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
    return verdict<errors::field_dropped_without_declaration<schema_name_arg<To>, vsn_of<From>, vsn_of<To>,
                                                             field_name_arg<From, Old>>>{};
}

template <class From, class To, class Context, std::size_t New, class Function, class Value>
constexpr auto check_declared() {
  using Extra = typename Context::extra_type;
  using Key = typename Context::key_type;
  if constexpr (call_form_of<Function, Value, Context>() == call_form::none) {
    return verdict<errors::declared_function_does_not_fit<Function, std::remove_reference_t<Value>, Extra, Key>>{};
  } else {
    using Returned = decltype(call_declared(std::declval<const Function&>(), std::declval<Value>(),
                                            std::declval<const Context&>()));
    if constexpr (!std::is_convertible_v<Returned, field_type<To, New>>)
      return verdict<errors::declared_function_returns_the_wrong_type<schema_name_arg<To>, vsn_of<From>, vsn_of<To>,
                                                                      field_name_arg<To, New>, Returned,
                                                                      field_type<To, New>>>{};
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
      return verdict<errors::field_type_changed_without_converter<schema_name_arg<To>, vsn_of<From>, vsn_of<To>,
                                                                  field_name_arg<To, New>, Old, Field>>{};
    else
      return check_migration<Old, Field, Context>();
  } else if constexpr (lacks_default<To, New>()) {
    return verdict<errors::added_field_has_no_default<schema_name_arg<To>, vsn_of<From>, vsn_of<To>,
                                                      field_name_arg<To, New>>>{};
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
  if constexpr (requires(From&& from, const Context& context) { step<From, To>::migrate(std::move(from), context); })
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
    constexpr int from = vsn_of<From>, to = vsn_of<To>;
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

}  // namespace detail

/// `hotswap::migrate<To>(from, extra)` compiles: From reaches To, and every step on the way has
/// what it needs (declarations, defaults, declared functions that take `extra`'s type).
template <class From, class To, class Extra = no_extra>
concept migrates =
    detail::fine<detail::migration_check<std::remove_cvref_t<From>, To, context<std::remove_cvref_t<Extra>>>>;

// ---- migrating (after check_migration found nothing) ----

namespace detail {

template <class To, class From, class Context>
To migrate_value(From&& from, const Context& context);

template <class Field, class Value>
Field implicitly(Value&& value) {
  return std::forward<Value>(value);
}

template <class From, class To, class Context>
To run_step(From&& from, const Context& context) {
  using Step = step<From, To>;
  if constexpr (requires { Step::migrate(std::move(from), context); }) {
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
    }(std::make_index_sequence<init_fields.second>{});

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
        return implicitly<Field>(call_declared(declared_function.template operator()<rule_kind::convert, New>(),
                                               std::move(member<source.old_index>(old_fields)), context));
      } else {
        static_assert(source.kind == source_kind::moved);
        if constexpr (std::is_same_v<field_type<From, source.old_index>, Field>)
          return std::move(member<source.old_index>(old_fields));
        else
          return migrate_value<Field>(std::move(member<source.old_index>(old_fields)), context);
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
      }(std::make_index_sequence<plan.size()>{});
      return made;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    } else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // trailing added fields: on purpose
      return [&]<std::size_t... J>(std::index_sequence<J...>) {
        return To{field_value(std::integral_constant<std::size_t, J>{})...};
      }(std::make_index_sequence<initialized_prefix<plan>()>{});
#pragma GCC diagnostic pop
    }
  }
}

/// Migrates a schema version to another version of the same schema, one step at a time.
template <class To, class From, class Context>
To migrate_versions(From&& from, const Context& context) {
  constexpr int from_vsn = vsn_of<From>, to_vsn = vsn_of<To>;
  using Next = typename schema_of<From>::template type_of<(from_vsn < to_vsn ? from_vsn + 1 : from_vsn - 1)>;
  if constexpr (std::is_same_v<Next, To>)
    return run_step<From, To>(std::move(from), context);  // built in place, not moved once more
  else
    return migrate_versions<To>(run_step<From, Next>(std::move(from), context), context);
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
  constexpr route way = route_of<From, To>();
  if constexpr (way == route::same) {
    return std::move(from);
  } else if constexpr (way == route::versions) {
    return migrate_versions<To>(std::move(from), context);
  } else if constexpr (way == route::widening) {
    return static_cast<To>(from);
  } else if constexpr (way == route::sequence) {
    To out;
    out.reserve(from.size());
    for (auto& element : from)
      out.emplace_back(in_place<typename To::value_type>(
          [&] { return migrate_value<typename To::value_type>(std::move(element), context); }));
    return out;
  } else if constexpr (way == route::map && ordered_map<To>) {
    To out;
    for (auto& entry : from)  // not a structured binding: clang 14 cannot capture one
      out.emplace_hint(out.end(), entry.first, in_place<typename To::mapped_type>([&] {
                         return migrate_value<typename To::mapped_type>(std::move(entry.second),
                                                                        context.with_key(entry.first));
                       }));
    return out;
  } else if constexpr (way == route::map) {
    To out;
    out.reserve(from.size());
    for (auto& entry : from)
      out.emplace(entry.first, in_place<typename To::mapped_type>([&] {
                    return migrate_value<typename To::mapped_type>(std::move(entry.second),
                                                                   context.with_key(entry.first));
                  }));
    return out;
  } else if constexpr (way == route::optional) {
    if (!from) return To{};
    return To{migrate_value<typename To::value_type>(std::move(*from), context)};
  } else if constexpr (way == route::into_optional) {
    return To{migrate_value<typename To::value_type>(std::move(from), context)};
  } else {
    static_assert(way == route::array);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return To{migrate_value<typename To::value_type>(std::move(from[I]), context)...};
    }(std::make_index_sequence<std::tuple_size_v<To>>{});
  }
}

}  // namespace detail

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
    static constexpr no_key top_level{};
    return detail::migrate_value<To>(std::move(value), context<Extra>{extra, top_level});
  }
}

}  // namespace hotswap
