// Versioned reflected schemas: plain aggregates declared as the versions of one schema, their
// field names and types, per-step field diffs, fingerprints and a run-time registry.
//
//     namespace v1 { struct Account { std::optional<std::string> name; int score = 0; }; }
//     namespace v2 { struct Account { std::optional<std::string> name; int score = 0; int stage = 0; }; }
//
//     using AccountSchema = hotswap::schema<"Account", hotswap::version<1, v1::Account>,
//                                                      hotswap::version<2, v2::Account>>;
//     template <hotswap::listed_in<AccountSchema> T>
//     struct hotswap::schema_of<T> : AccountSchema {};
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/containers.hpp"
#include "detail/fields.hpp"
#include "detail/fixed_string.hpp"
#include "detail/image.hpp"
#include "detail/spin_lock.hpp"
#include "detail/verdict.hpp"

namespace hotswap {

/// Declares that `T` is version `Vsn` of a schema.
template <int Vsn, class T>
struct version {
  static constexpr int vsn = Vsn;
  using type = T;
};

/// Compile errors. Each names what is wrong in its own name and template arguments (which the
/// compiler prints as "in instantiation of ...") and says in its message what to write.
namespace errors {
template <class...>
inline constexpr bool reported = false;

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
template <class T>
struct type_has_no_canonical_name {
  static_assert(reported<type_has_no_canonical_name>,
                "hotswap: this field type has no canonical name for schema fingerprints: declare it as a "
                "schema version, or specialize hotswap::type_name<T> with `static constexpr std::string_view "
                "value = \"...\";`");
};
}  // namespace errors

namespace detail {
template <fixed_string Schema, class... Versions>
constexpr auto check_schema();

/// The type of version `Vsn` among `Versions` (void when none is).
template <int Vsn, class... Versions>
constexpr auto version_type() {
  constexpr bool match[] = {Versions::vsn == Vsn..., false};
  constexpr std::size_t at = [&] {
    std::size_t i = 0;
    while (i < sizeof...(Versions) && !match[i]) ++i;
    return i;
  }();
  if constexpr (at == sizeof...(Versions)) return std::type_identity<void>{};
  else return std::type_identity<std::tuple_element_t<at, std::tuple<typename Versions::type...>>>{};
}
}  // namespace detail

/// Lists the versions of the schema `Name`, oldest first, numbered consecutively.
template <detail::fixed_string Name, class... Versions>
struct schema {
  static_assert(sizeof...(Versions) > 0, "hotswap: a schema lists at least one hotswap::version<N, T>");
  // Reports the first mistake in the list, once (the check is true whatever it found).
  static_assert(sizeof(detail::error_of<decltype(detail::check_schema<Name, Versions...>())>) != 0);

  using schema_type = schema;
  static constexpr std::string_view name = Name.view();
  static constexpr std::array<int, sizeof...(Versions)> vsns{Versions::vsn...};
  static constexpr int oldest_vsn = vsns.front();
  static constexpr int latest_vsn = vsns.back();

  /// Whether `T` is one of the listed versions.
  template <class T>
  static constexpr bool lists = (std::is_same_v<T, typename Versions::type> || ...);

  /// The version number of `T`.
  template <class T>
    requires lists<T>
  static constexpr int vsn_of = ((std::is_same_v<T, typename Versions::type> ? Versions::vsn : 0) + ...);

  /// The struct of version `Vsn`.
  template <int Vsn>
  using type_of = typename decltype(detail::version_type<Vsn, Versions...>())::type;
  using latest = type_of<latest_vsn>;
};

/// Maps a struct to its schema. Specialize it once per schema, for the types the schema lists:
///
///     template <hotswap::listed_in<AccountSchema> T>
///     struct hotswap::schema_of<T> : AccountSchema {};
template <class T>
struct schema_of {};

/// `T` is one of the versions `Schema` lists.
template <class T, class Schema>
concept listed_in = Schema::template lists<T>;

/// `T` is a version of some schema.
template <class T>
concept versioned = requires { schema_of<T>::name; } && schema_of<T>::template lists<T>;

/// The version number of a versioned struct.
template <versioned T>
inline constexpr int vsn_of = schema_of<T>::template vsn_of<T>;

/// Two structs are versions of the same schema.
template <class A, class B>
concept same_schema = versioned<A> && versioned<B> &&
                      std::is_same_v<typename schema_of<A>::schema_type, typename schema_of<B>::schema_type>;

/// The field names of a struct, in declaration order.
template <class T>
inline constexpr auto field_names = detail::field_names<T>;

/// The type of field `I` of a struct.
template <class T, std::size_t I>
using field_type = detail::field_type<T, I>;

/// The number of fields of a struct.
template <class T>
inline constexpr std::size_t field_count = detail::field_count<T>;

/// The index of the field called `name`, or field_count<T> when there is none.
template <class T>
constexpr std::size_t field_index(std::string_view name) {
  std::size_t index = 0;
  while (index < field_count<T> && field_names<T>[index] != name) ++index;
  return index;
}

// ---- validation of a schema's list, when the schema is first used ----

namespace detail {

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
using check_numbering = verdict<std::conditional_t<Next == Previous + 1, no_error,
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
  if constexpr (!fine<numbering>) return verdict<error_of<numbering>>{};
  else return verdict<error_of<first_of<decltype(check_version<name, Versions::vsn, typename Versions::type>())...>>>{};
}

/// The verdict on the schema `T` is a version of (its list's first mistake).
template <class Schema>
struct schema_check;
template <fixed_string Name, class... Versions>
struct schema_check<schema<Name, Versions...>> : decltype(check_schema<Name, Versions...>()) {};

}  // namespace detail

// ---- per-step field diffs ----

namespace detail {
// A type's identity as a constant: the compiler's own spelling of it. (Comparing the addresses
// of per-type variables is not a constant expression under -fsanitize=address.)
template <class T>
constexpr std::string_view type_identity() {
  return __PRETTY_FUNCTION__;
}

template <class T>
inline constexpr auto field_type_ids = []<std::size_t... I>(std::index_sequence<I...>) {
  return std::array<std::string_view, sizeof...(I)>{type_identity<field_type<T, I>>()...};
}(std::make_index_sequence<field_count<T>>{});

enum class field_change { added, removed, kept, retyped };

template <class From, class To>
constexpr bool diff_has(std::string_view name, field_change change) {
  const std::size_t in_from = field_index<From>(name), in_to = field_index<To>(name);
  const bool was = in_from < field_count<From>, is = in_to < field_count<To>;
  switch (change) {
    case field_change::added: return !was && is;
    case field_change::removed: return was && !is;
    case field_change::kept: return was && is && field_type_ids<From>[in_from] == field_type_ids<To>[in_to];
    case field_change::retyped: return was && is && field_type_ids<From>[in_from] != field_type_ids<To>[in_to];
  }
  return false;
}

/// The names of one kind of change, in the order of the struct that has them.
template <class From, class To, field_change Change>
constexpr auto diff_names() {
  using Listing = std::conditional_t<Change == field_change::removed, From, To>;
  constexpr auto count = [] {
    std::size_t n = 0;
    for (std::string_view name : field_names<Listing>) n += diff_has<From, To>(name, Change);
    return n;
  }();
  std::array<std::string_view, count> names{};
  std::size_t n = 0;
  for (std::string_view name : field_names<Listing>)
    if (diff_has<From, To>(name, Change)) names[n++] = name;
  return names;
}
}  // namespace detail

/// What changes, field by field and by name, from the struct `From` to the struct `To`.
template <class From, class To>
struct field_diff {
  static constexpr auto added = detail::diff_names<From, To, detail::field_change::added>();
  static constexpr auto removed = detail::diff_names<From, To, detail::field_change::removed>();
  static constexpr auto kept = detail::diff_names<From, To, detail::field_change::kept>();
  static constexpr auto retyped = detail::diff_names<From, To, detail::field_change::retyped>();
};

// ---- canonical type names and fingerprints ----

/// The canonical name of a field type that is neither standard nor a schema version. Specialize
/// with `static constexpr std::string_view value = "...";`: it enters the fingerprint of every
/// schema that uses the type, so it must not depend on the compiler.
template <class T>
struct type_name {};

namespace detail {

struct length_sink {
  std::size_t size = 0;
  constexpr void put(std::string_view text) { size += text.size(); }
};

template <std::size_t N>
struct chars_sink {
  std::array<char, N> chars{};
  std::size_t size = 0;
  constexpr void put(std::string_view text) {
    for (char c : text) chars[size++] = c;
  }
};

template <class Sink>
constexpr void put_number(Sink& sink, std::size_t value) {
  char digits[20]{};
  std::size_t n = 0;
  do digits[n++] = static_cast<char>('0' + value % 10);
  while ((value /= 10) != 0);
  while (n > 0) sink.put(std::string_view(&digits[--n], 1));
}

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
template <versioned T, class Sink>
constexpr auto describe_struct(Sink& sink) {
  using schema_verdict = schema_check<typename schema_of<T>::schema_type>;
  if constexpr (!fine<schema_verdict>) {
    return verdict<error_of<schema_verdict>>{};  // reported by the schema itself
  } else {
    sink.put(schema_of<T>::name);
    sink.put("@");
    put_number(sink, static_cast<std::size_t>(vsn_of<T>));
    sink.put("{");
    const auto found = [&]<std::size_t... I>(std::index_sequence<I...>) {
      (static_cast<void>(describe_after<field_type<T, I>>(sink, I == 0 ? "" : ",", field_names<T>[I])), ...);
      return verdict<error_of<first_of<decltype(describe_type<field_type<T, I>>(sink))...>>>{};
    }(std::make_index_sequence<field_count<T>>{});
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
  if constexpr (requires { type_name<T>::value; }) {
    return sink.put(type_name<T>::value), described;
  } else if constexpr (versioned<T>) {
    return describe_struct<T>(sink);
  } else if constexpr (std::is_same_v<T, bool>) {
    return sink.put("bool"), described;
  } else if constexpr (std::is_same_v<T, char>) {
    return sink.put("char"), described;
  } else if constexpr (std::is_integral_v<T>) {
    sink.put(std::is_signed_v<T> ? "i" : "u");
    return put_number(sink, sizeof(T) * 8), described;
  } else if constexpr (std::is_floating_point_v<T>) {
    sink.put("f");
    return put_number(sink, sizeof(T) * 8), described;
  } else if constexpr (std::is_enum_v<T>) {
    sink.put("enum:");
    return describe_type<std::underlying_type_t<T>>(sink);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return sink.put("string"), described;
  } else if constexpr (optional<T>) {
    return describe_arguments(sink, "optional", type_list<typename T::value_type>{});
  } else if constexpr (sequence<T>) {
    return describe_arguments(sink, "vector", type_list<typename T::value_type>{});
  } else if constexpr (ordered_map<T>) {
    return describe_arguments(sink, "map", type_list<typename T::key_type, typename T::mapped_type>{});
  } else if constexpr (hashed_map<T>) {
    return describe_arguments(sink, "unordered_map", type_list<typename T::key_type, typename T::mapped_type>{});
  } else if constexpr (fixed_array<T>) {
    const auto found = describe_arguments(sink, "array", type_list<typename T::value_type>{});
    sink.put("[");
    put_number(sink, std::tuple_size_v<T>);
    sink.put("]");
    return found;
  } else {
    return verdict<errors::type_has_no_canonical_name<T>>{};
  }
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

/// FNV-1a, 64 bits: the same on every compiler, which is all a fingerprint needs.
constexpr std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 14695981039346656037ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return hash;
}

}  // namespace detail

/// The canonical spelling of a type, the same on every compiler: `optional<string>`, `i32`,
/// `Account@2{name:optional<string>,score:i32,stage:i32}`.
template <class T>
inline constexpr std::string_view type_description{detail::type_description_of<T>::chars.data(),
                                                   detail::type_description_of<T>::chars.size()};

/// The fingerprint of a schema version (or any describable type): a hash of its schema name,
/// vsn, field names and canonical field types, recursively.
template <class T>
inline constexpr std::uint64_t fingerprint = detail::fnv1a(type_description<T>);

// ---- run-time registry ----

/// One version of a schema as the registry holds it: what type-erased code can know of a value.
struct version_info {
  std::string schema;
  int vsn = 0;
  std::uint64_t fingerprint = 0;
  std::vector<std::string> field_names;
  std::vector<std::string> field_types;
  friend bool operator==(const version_info&, const version_info&) = default;
};

/// The description of version `T` of its schema.
template <versioned T>
version_info describe() {
  version_info info{std::string(schema_of<T>::name), vsn_of<T>, fingerprint<T>, {}, {}};
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (info.field_names.emplace_back(field_names<T>[I]), ...);
    (info.field_types.emplace_back(type_description<field_type<T, I>>), ...);
  }(std::make_index_sequence<field_count<T>>{});
  return info;
}

/// Thrown when two descriptions of the same schema version disagree.
class schema_conflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The schema versions known to this process, by schema name and vsn. Few and rarely added to,
/// so a list under a spin lock serves (and keeps <map> and <mutex> out of every includer).
class schema_registry {
 public:
  /// Adds one version; adding the same description again is harmless, a different one for the
  /// same name and vsn throws schema_conflict and changes nothing.
  void add(version_info info) {
    const detail::spin_guard hold(busy_);
    if (const version_info* known = find_locked(info.schema, info.vsn)) {
      if (known->fingerprint != info.fingerprint)
        throw schema_conflict("hotswap: schema " + info.schema + " version " + std::to_string(info.vsn) +
                              " is already registered with a different fingerprint (its fields or their types differ)");
      return;
    }
    entries_.push_back(std::move(info));
  }

  /// Adds every version a schema lists.
  template <class Schema>
  void add() {
    [&]<int... Offset>(std::integer_sequence<int, Offset...>) {
      (add(describe<typename Schema::template type_of<Schema::oldest_vsn + Offset>>()), ...);
    }(std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
  }

  std::optional<version_info> find(std::string_view schema, int vsn) const {
    const detail::spin_guard hold(busy_);
    const version_info* known = find_locked(schema, vsn);
    return known ? std::optional(*known) : std::nullopt;
  }

  /// The versions of one schema, oldest first.
  std::vector<version_info> versions(std::string_view schema) const {
    const detail::spin_guard hold(busy_);
    std::vector<version_info> out;
    for (const auto& info : entries_)
      if (info.schema == schema) out.insert(find_insertion(out, info.vsn), info);
    return out;
  }

 private:
  const version_info* find_locked(std::string_view schema, int vsn) const {
    for (const auto& info : entries_)
      if (info.schema == schema && info.vsn == vsn) return &info;
    return nullptr;
  }
  static std::vector<version_info>::iterator find_insertion(std::vector<version_info>& sorted, int vsn) {
    auto at = sorted.begin();
    while (at != sorted.end() && at->vsn < vsn) ++at;
    return at;
  }

  mutable detail::spin_lock busy_;
  std::vector<version_info> entries_;
};

/// The registry of this program (a module's code reaches the program's).
inline schema_registry& registry() {
#ifdef HOTSWAP_MODULE_BUILD
  return *detail::module_host.registry_of_host;
#else
  static schema_registry instance;
  return instance;
#endif
}

}  // namespace hotswap
