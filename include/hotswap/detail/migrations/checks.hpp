// Checking a migration: its first mistake, found without reporting anything.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "../common/verdict.hpp"
#include "../reflect/fields.hpp"
#include "../schemas/field_kinds.hpp"
#include "../schemas/schema_checks.hpp"
#include "errors.hpp"
#include "routes.hpp"
#include "step_plan.hpp"

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
