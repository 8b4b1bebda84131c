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
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/abi/image.hpp"
#include "detail/common/fixed_string.hpp"
#include "detail/common/hash.hpp"
#include "detail/common/spin_lock.hpp"
#include "detail/common/verdict.hpp"
#include "detail/reflect/fields.hpp"
#include "detail/schemas/describe.hpp"
#include "detail/schemas/field_diff.hpp"
#include "detail/schemas/field_kinds.hpp"
#include "detail/schemas/schema_checks.hpp"
#include "detail/schemas/version_info.hpp"

namespace hotswap {

// -- declaring a schema --

/// Declares that `T` is version `Vsn` of a schema.
template <int Vsn, class T>
struct version {
  static constexpr int vsn = Vsn;
  using type = T;
};

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

// -- the customization points --

/// Maps a struct to its schema. Specialize it once per schema, for the types the schema lists:
///
///     template <hotswap::listed_in<AccountSchema> T>
///     struct hotswap::schema_of<T> : AccountSchema {};
template <class T>
struct schema_of {};

/// The canonical name of a field type that is neither standard nor a schema version. Specialize
/// with `static constexpr std::string_view value = "...";`: it enters the fingerprint of every
/// schema that uses the type, so it must not depend on the compiler.
template <class T>
struct type_name {};

/// A field whose value never leaves the process: inspect prints it as `#secret`, and so do crash
/// reports, sys views and the control socket's `state` (a password, a key). It migrates as its
/// `T` does not: a `secret<T>` stays a `secret<T>`.
template <class T>
struct secret {
  static constexpr std::string_view inspect_label = "#secret";
  T value{};
  friend bool operator==(const secret&, const secret&) = default;
};
template <class T>
struct type_name<secret<T>> : detail::wrapper_name<"hotswap::secret", T> {};

/// `T` is one of the versions `Schema` lists.
template <class T, class Schema>
concept listed_in = Schema::template lists<T>;

/// `T` is a version of some schema.
template <class T>
concept versioned = detail::versioned_type<T>;

/// The version number of a versioned struct.
template <versioned T>
inline constexpr int vsn_of = schema_of<T>::template vsn_of<T>;

/// Two structs are versions of the same schema.
template <class A, class B>
concept same_schema = detail::same_schema_types<A, B>;

// -- reflection --

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
  return detail::field_index<T>(name);
}

/// What changes, field by field and by name, from the struct `From` to the struct `To`.
template <class From, class To>
struct field_diff {
  static constexpr auto added = detail::diff_names<From, To, detail::field_change::added>();
  static constexpr auto removed = detail::diff_names<From, To, detail::field_change::removed>();
  static constexpr auto kept = detail::diff_names<From, To, detail::field_change::kept>();
  static constexpr auto retyped = detail::diff_names<From, To, detail::field_change::retyped>();
};

// -- canonical type names and fingerprints --

/// The canonical spelling of a type, the same on every compiler: `optional<string>`, `i32`,
/// `Account@2{name:optional<string>,score:i32,stage:i32}`.
template <class T>
inline constexpr std::string_view type_description = detail::description<T>;

/// The fingerprint of a schema version (or any describable type): a hash of its schema name,
/// vsn, field names and canonical field types, recursively.
template <class T>
inline constexpr std::uint64_t fingerprint = detail::fnv1a(detail::description<T>);

// -- run-time registry --

/// One version of a schema as the registry holds it: what type-erased code can know of a value.
using version_info = detail::version_info;

/// The description of version `T` of its schema.
template <versioned T>
version_info describe() {
  return detail::describe_version<T>();
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
    }
    (std::make_integer_sequence<int, static_cast<int>(Schema::vsns.size())>{});
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
