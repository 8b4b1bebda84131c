// One step's plan: where each field of the newer (or older) struct comes from, by name, given the
// step's declarations (removed, renamed, convert, init).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../common/fixed_string.hpp"
#include "../reflect/fields.hpp"
#include "../schemas/field_kinds.hpp"
#include "errors.hpp"

namespace hotswap {
template <class From, class To>
struct step;  // the customization point, hotswap/migrations.hpp
}  // namespace hotswap

namespace hotswap::detail {

enum class rule_kind { removed, renamed, convert, init, added };

/// One declaration of a step, as the plan reads it.
struct rule_entry {
  rule_kind kind;
  std::string_view field;       // the old field (removed, renamed) or the new one (convert, init, added)
  std::string_view renamed_to;  // renamed only
};

/// The declarations of a step that declares none.
struct no_rules {
  static constexpr std::array<rule_entry, 0> entries{};
  template <std::size_t I>
  using rule_type = std::tuple_element_t<I, std::tuple<>>;  // never named: no field has a rule
};

template <class T, std::size_t I>
using field_name_arg = spelled<errors::field_named, fixed_string<field_names<T>[I].size() + 1>(field_names<T>[I])>;

template <class T>
using schema_name_arg = spelled<errors::schema_named, fixed_string<schema_of<T>::name.size() + 1>(schema_of<T>::name)>;

template <class Step>
constexpr auto rules_of() {
  if constexpr (requires { Step::rules; })
    return Step::rules;
  else
    return no_rules{};
}

template <class Step>
using rules_type = decltype(rules_of<Step>());

template <class From, class To>
struct step_rules {
  static constexpr auto own = rules_type<step<From, To>>::entries;
  // A downgrade renames back what the upgrade renamed.
  static constexpr auto reverse = version_number<From> > version_number<To>
                                      ? rules_type<step<To, From>>::entries
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
    if (Rules::has(rule_kind::init, name))
      plan[j] = {source_kind::init, old_index};
    else if (Rules::has(rule_kind::convert, name))
      plan[j] = {source_kind::convert, old_index};
    else if (old_index < field_count<From>)
      plan[j] = {source_kind::moved, old_index};
    else
      plan[j] = {source_kind::added, old_index};
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

/// Whether g++ and clang can both build T in a constant expression, judged by its field types
/// alone, never by trying: trying gives each compiler's own verdict (clang 14 cannot build
/// libstdc++'s std::string there, g++ 12 can; neither can build a std::map). Numbers, enums,
/// std::array and std::optional of those, and schema versions made of those.
template <class T>
constexpr bool built_at_compile_time() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (kind == field_kind::version) return []<std::size_t... I>(std::index_sequence<I...>) {
      return (built_at_compile_time<field_type<T, I>>() && ...);
    }
  (std::make_index_sequence<field_count<T>>{});
  else if constexpr (kind == field_kind::optional ||
                     kind == field_kind::fixed_array) return built_at_compile_time<typename T::value_type>();
  else return kind == field_kind::boolean || kind == field_kind::character || kind == field_kind::integer ||
      kind == field_kind::floating || kind == field_kind::enumeration;
}

/// The first field of T that keeps it from being built at compile time (field_count<T> if none).
template <class T>
constexpr std::size_t first_field_not_built() {
  return []<std::size_t... I>(std::index_sequence<I...>) {
    constexpr bool built[] = {built_at_compile_time<field_type<T, I>>()..., false};
    std::size_t i = 0;
    while (i < sizeof...(I) && built[i]) ++i;
    return i;
  }
  (std::make_index_sequence<field_count<T>>{});
}

// Reading a field after default initialization is a constant expression exactly when it has a
// default member initializer.
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

/// What the check knows of an added field's default member initializer.
enum class added_default { given, missing, unknown };

/// Only a number, bool, char or enum needs one: the other types' value-initialization is their
/// empty value. It is read only where built_at_compile_time says both compilers can, so that the
/// same source gets the same verdict on both; elsewhere it is unknown, and the step declares it.
template <class T, std::size_t J>
constexpr added_default default_of() {
  if constexpr (!std::is_scalar_v<field_type<T, J>>)
    return added_default::given;
  else if constexpr (!built_at_compile_time<T>())
    return added_default::unknown;
  else if constexpr (std::is_trivially_default_constructible_v<T>)
    return added_default::missing;  // no field has a default member initializer
  else if constexpr (!requires { typename std::bool_constant<build_default<T>()>; })
    return added_default::unknown;  // a default member initializer that is no constant expression
  else if constexpr (requires { typename std::bool_constant<read_default_member<T, J>()>; })
    return added_default::given;
  else
    return added_default::missing;
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

}  // namespace hotswap::detail
