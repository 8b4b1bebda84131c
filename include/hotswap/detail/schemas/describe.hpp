// Canonical descriptions of types, the same on every compiler (`Account@2{name:optional<string>,
// score:i32}`), from which fingerprints are hashed. Describing a type also checks it.
// Cost: one instantiation of describe_type per distinct field type, twice (a counting pass sizes
// the array the second pass writes); descriptions of nested versions are not shared between
// the structs that hold them, so a deeply nested schema is described once per holder.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../common/fixed_string.hpp"
#include "../common/sinks.hpp"
#include "../common/type_name.hpp"
#include "../common/verdict.hpp"
#include "../reflect/fields.hpp"
#include "field_kinds.hpp"
#include "schema_checks.hpp"

namespace hotswap::errors {
template <class T>
struct type_has_no_canonical_name {
  static_assert(reported<type_has_no_canonical_name>,
                "hotswap: this field type has no canonical name for schema fingerprints: declare it as a "
                "schema version, or specialize hotswap::type_name<T> with `static constexpr std::string_view "
                "value = \"...\";`");
};
}  // namespace hotswap::errors

namespace hotswap::detail {

// Describing a type also checks it: each function returns the verdict on what it described
// (a type without a canonical name), so that the list of describable types is written once.
// (Verdicts are never operands of `,`: its overload lookup would instantiate the error.)

template <class T, class Sink>
constexpr auto describe_type(Sink& sink);

template <class T, class Sink>
constexpr auto describe_after(Sink& sink, std::string_view separator, std::string_view name = {}) {
  sink.put(separator);
  sink.put(name);
  if (!name.empty()) sink.put(":");
  return describe_type<T>(sink);
}

/// `Account@2{name:optional<string>,score:i32,stage:i32}`.
template <versioned_type T, class Sink>
constexpr auto describe_struct(Sink& sink) {
  using schema_verdict = schema_check<typename schema_of<T>::schema_type>;
  if constexpr (!fine<schema_verdict>) {
    return verdict<error_of<schema_verdict>>{};  // reported by the schema itself
  } else {
    sink.put(schema_of<T>::name);
    sink.put("@");
    put_number(sink, static_cast<std::size_t>(schema_of<T>::template vsn_of<T>));
    sink.put("{");
    const auto found = [&]<std::size_t... I>(std::index_sequence<I...>) {
      (static_cast<void>(describe_after<field_type<T, I>>(sink, I == 0 ? "" : ",", field_names<T>[I])), ...);
      return verdict<error_of<first_of<decltype(describe_type<field_type<T, I>>(sink))...>>>{};
    }
    (std::make_index_sequence<field_count<T>>{});
    sink.put("}");
    return found;
  }
}

template <class Sink, class... Args>
constexpr auto describe_arguments(Sink& sink, std::string_view template_name, type_list<Args...>) {
  sink.put(template_name);
  sink.put("<");
  std::size_t i = 0;
  (static_cast<void>(describe_after<Args>(sink, i++ == 0 ? "" : ",")), ...);
  sink.put(">");
  return verdict<error_of<first_of<decltype(describe_type<Args>(sink))...>>>{};
}

template <class T, class Sink>
constexpr auto describe_type(Sink& sink) {
  constexpr verdict<no_error> described{};
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (named_type<T>) {
    return sink.put(type_name<T>::value), described;
  } else if constexpr (kind == field_kind::version) {
    return describe_struct<T>(sink);
  } else if constexpr (kind == field_kind::boolean) {
    return sink.put("bool"), described;
  } else if constexpr (kind == field_kind::character) {
    return sink.put("char"), described;
  } else if constexpr (kind == field_kind::integer) {
    sink.put(std::is_signed_v<T> ? "i" : "u");
    return put_number(sink, sizeof(T) * 8), described;
  } else if constexpr (kind == field_kind::floating) {
    sink.put("f");
    return put_number(sink, sizeof(T) * 8), described;
  } else if constexpr (kind == field_kind::enumeration) {
    sink.put("enum:");
    return describe_type<std::underlying_type_t<T>>(sink);
  } else if constexpr (kind == field_kind::string) {
    return sink.put("string"), described;
  } else if constexpr (kind == field_kind::optional) {
    return describe_arguments(sink, "optional", held_types<T>{});
  } else if constexpr (kind == field_kind::sequence) {
    return describe_arguments(sink, "vector", held_types<T>{});
  } else if constexpr (kind == field_kind::ordered_map) {
    return describe_arguments(sink, "map", held_types<T>{});
  } else if constexpr (kind == field_kind::hashed_map) {
    return describe_arguments(sink, "unordered_map", held_types<T>{});
  } else if constexpr (kind == field_kind::fixed_array) {
    const auto found = describe_arguments(sink, "array", held_types<T>{});
    sink.put("[");
    put_number(sink, std::tuple_size_v<T>);
    sink.put("]");
    return found;
  } else {
    static_assert(kind == field_kind::other, "hotswap: a field kind without a canonical description");
    return verdict<errors::type_has_no_canonical_name<T>>{};
  }
}

/// A type the schemas layer can describe canonically (without reporting anything).
template <class T>
constexpr bool describable() {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (named_type<T> || kind == field_kind::version || is_scalar(kind))
    return true;
  else if constexpr (kind == field_kind::other)
    return false;
  else
    return all_held<T>([]<class H>(std::type_identity<H>) { return describable<H>(); });
}

/// The verdict on describing T: a field type without a canonical name, or a broken schema.
template <class T>
using description_check = decltype(describe_type<T>(std::declval<length_sink&>()));

template <class T>
constexpr auto make_type_description() {
  if constexpr (!fine<description_check<T>>) {
    return std::array<char, 0>{};
  } else {
    constexpr std::size_t size = [] {
      length_sink counter;
      describe_type<T>(counter);
      return counter.size;
    }();
    chars_sink<size> text;
    describe_type<T>(text);
    return text.chars;
  }
}

// A class, not a function, reports the error: clang takes a function whose instantiation failed
// for one that cannot be evaluated, and would report every constant computed from it too.
template <class T>
struct type_description_of {
  static_assert(sizeof(error_of<description_check<T>>) != 0);  // the first mistake, reported once
  static constexpr auto chars = make_type_description<T>();
};

/// The canonical description of `T` (hotswap::type_description).
template <class T>
inline constexpr std::string_view description{type_description_of<T>::chars.data(),
                                              type_description_of<T>::chars.size()};

/// The canonical name of a wrapper hotswap defines around `T` (`Name<` T's description `>`,
/// or its spelling when it has none): what its hotswap::type_name says, so that a state holding
/// one is described, and migrated, with it.
template <fixed_string Name, class T>
struct wrapper_name {
  static constexpr std::string_view held = [] {
    if constexpr (describable<T>())
      return description<T>;
    else
      return type_spelling<T>();
  }();
  static constexpr auto chars = [] {
    std::array<char, Name.view().size() + held.size() + 2> text{};
    auto at = text.begin();
    for (const char c : Name.view()) *at++ = c;
    *at++ = '<';
    for (const char c : held) *at++ = c;
    *at = '>';
    return text;
  }();
  static constexpr std::string_view value{chars.data(), chars.size()};
};

// ---- names for people: a server's state in status, state and tree, and in refusals ----

template <class T, class Sink>
constexpr void put_short_name(Sink& sink);

template <class Sink, class... Held>
constexpr void put_short_names(Sink& sink, std::string_view template_name, type_list<Held...>) {
  sink.put(template_name);
  sink.put("<");
  std::size_t i = 0;
  ((sink.put(i++ == 0 ? "" : ","), put_short_name<Held>(sink)), ...);
  sink.put(">");
}

/// The canonical description with each schema version as `Name@vsn` only (`map<string,Account@3>`).
template <class T, class Sink>
constexpr void put_short_name(Sink& sink) {
  constexpr field_kind kind = field_kind_of<T>;
  if constexpr (kind == field_kind::version && !named_type<T>) {
    sink.put(schema_of<T>::name);
    sink.put("@");
    put_number(sink, static_cast<std::size_t>(schema_of<T>::template vsn_of<T>));
  } else if constexpr (kind == field_kind::optional) {
    put_short_names(sink, "optional", held_types<T>{});
  } else if constexpr (kind == field_kind::sequence) {
    put_short_names(sink, "vector", held_types<T>{});
  } else if constexpr (kind == field_kind::ordered_map) {
    put_short_names(sink, "map", held_types<T>{});
  } else if constexpr (kind == field_kind::hashed_map) {
    put_short_names(sink, "unordered_map", held_types<T>{});
  } else if constexpr (kind == field_kind::fixed_array) {
    put_short_names(sink, "array", held_types<T>{});
    sink.put("[");
    put_number(sink, std::tuple_size_v<T>);
    sink.put("]");
  } else {
    static_cast<void>(describe_type<T>(sink));  // a scalar, a string or a named type
  }
}

/// This compiler's spelling without libstdc++'s inner names, and with `>>` as clang writes it:
/// `std::pair<std::string, int>` on g++ and clang alike.
template <class Sink>
constexpr void put_spelling(Sink& sink, std::string_view text) {
  constexpr std::string_view strings[] = {"std::__cxx11::basic_string<char>", "std::basic_string<char>"};
  constexpr std::string_view inner = "std::__cxx11::";
  for (std::size_t i = 0; i < text.size();) {
    std::size_t skipped = 0;
    for (const std::string_view string : strings)
      if (text.substr(i).starts_with(string)) sink.put("std::string"), skipped = string.size();
    if (skipped == 0 && text.substr(i).starts_with(inner)) sink.put("std::"), skipped = inner.size();
    if (skipped == 0 && !text.substr(i).starts_with(" >")) sink.put(text.substr(i, 1));
    i += skipped == 0 ? 1 : skipped;
  }
}

template <class T, class Sink>
constexpr void put_readable_name(Sink& sink) {
  if constexpr (describable<T>())
    put_short_name<T>(sink);
  else
    put_spelling(sink, type_spelling<T>());
}

template <class T>
constexpr auto make_readable_name() {
  constexpr std::size_t size = [] {
    length_sink counter;
    put_readable_name<T>(counter);
    return counter.size;
  }();
  chars_sink<size> text;
  put_readable_name<T>(text);
  return text.chars;
}
template <class T>
inline constexpr auto readable_name_chars = make_readable_name<T>();

/// `T` as views name it: its canonical description with versions as `Name@vsn`
/// (`map<string,Account@3>`), the same on every compiler; a type without one as this compiler
/// spells it, libstdc++'s inner names taken out (`std::pair<std::string, int>`).
template <class T>
inline constexpr std::string_view readable_name{readable_name_chars<T>.data(), readable_name_chars<T>.size()};

}  // namespace hotswap::detail
