// The compile errors of migrations: each names the schema, the step and the field, and says what
// to declare.
#pragma once

#include "../common/verdict.hpp"

namespace hotswap::errors {

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
                "hotswap: a number, bool, char or enum field added in this step has no default member "
                "initializer; give it one (`int stage = 0;`), or declare hotswap::added<\"field\"> (it is then "
                "zero) or hotswap::init<\"field\">(fn) in the rules of hotswap::step<From, To>");
};
template <class Schema, int From, int To, class Field, class HeldField>
struct added_field_must_be_declared {
  static_assert(reported<added_field_must_be_declared>,
                "hotswap: a number, bool, char or enum field added in this step must be declared: declare "
                "hotswap::added<\"field\"> (it takes its default member initializer, zero without one) or "
                "hotswap::init<\"field\">(fn) in the rules of hotswap::step<From, To>. hotswap reads a default "
                "member initializer at compile time only in a struct whose fields are all numbers, enums, "
                "std::array and std::optional of those or schema versions of those, which every compiler can "
                "build in a constant expression; HeldField holds another type (a string, a container...)");
};
template <class Schema, int From, int To, class Field>
struct rule_names_an_unknown_field {
  static_assert(reported<rule_names_an_unknown_field>,
                "hotswap: a rule of this step names a field that does not exist: removed and renamed name a "
                "field of the older struct, renamed's second name and init and convert a field of the newer "
                "(and convert one the older struct has too, under its old name), added a field of the newer "
                "struct that the older lacks");
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
  static_assert(
      reported<no_migration_between>,
      "hotswap: there is no migration between these types: they are not versions of one schema, "
      "matching containers of them, or a widening conversion; if From and To are two versions of one "
      "struct, declare them: `using S = hotswap::schema<\"Name\", hotswap::version<1, From>, "
      "hotswap::version<2, To>>;` and `template <hotswap::listed_in<S> T> struct hotswap::schema_of<T> : S {};`");
};

}  // namespace hotswap::errors
