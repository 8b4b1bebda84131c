// Schemas: reflection, diffs, fingerprints (compile time) and the registry (run time).
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/pfr/tuple_size.hpp>
#include <catch2/catch.hpp>

#include "anemone/account.hpp"
#include "fingerprints.hpp"

using namespace anemone;
using namespace std::string_view_literals;

// ---- reflection ----
static_assert(hotswap::field_count<v2::Account> == 3);
static_assert(hotswap::field_names<v3::Account> == std::array{"name"sv, "score"sv, "stage"sv, "active"sv});
static_assert(std::is_same_v<hotswap::field_type<v3::Account, 0>, std::optional<std::string>>);
static_assert(std::is_same_v<hotswap::field_type<v3::Account, 3>, bool>);
static_assert(hotswap::field_index<v3::Account>("stage") == 2);
static_assert(hotswap::field_index<v3::Account>("missing") == 4);

namespace other {
struct Empty {};
struct Odd {
  std::map<int, std::vector<long>> _x1;
  char y_2;
  double CamelCase;
};
}  // namespace other
static_assert(hotswap::field_count<other::Empty> == 0);

// Names of structs whose own names hold brackets and commas.
namespace {
struct Hidden {
  int alpha;
  std::pair<int, int> beta;
};
}  // namespace
template <class A, int N>
struct Generic {
  A gamma;
  double delta = N;
};
static_assert(hotswap::field_names<Hidden> == std::array{"alpha"sv, "beta"sv});
static_assert(hotswap::field_names<Generic<std::map<int, int>, 2>>[0] == "gamma");
// A std::wstring is a string, not a vector of its characters.
static_assert(!hotswap::detail::sequence<std::wstring> && hotswap::detail::sequence<std::vector<wchar_t>>);
static_assert(hotswap::field_names<other::Odd> == std::array{"_x1"sv, "y_2"sv, "CamelCase"sv});

// Our field count agrees with Boost.PFR's wherever PFR's works.
static_assert(hotswap::field_count<v3::Account> == boost::pfr::tuple_size_v<v3::Account>);
static_assert(hotswap::field_count<other::Odd> == boost::pfr::tuple_size_v<other::Odd>);
static_assert(hotswap::field_count<other::Empty> == boost::pfr::tuple_size_v<other::Empty>);

#if BOOST_VERSION >= 108400
// Where Boost.PFR reads names itself, hotswap uses them, and ours must agree with them.
static_assert(hotswap::detail::compute_field_names<v3::Account>() == boost::pfr::names_as_array<v3::Account>());
static_assert(hotswap::detail::compute_field_names<other::Odd>() == boost::pfr::names_as_array<other::Odd>());
#endif

// ---- the schema ----
static_assert(hotswap::versioned<v1::Account> && hotswap::versioned<v3::Account>);
static_assert(!hotswap::versioned<other::Odd> && !hotswap::versioned<int>);
static_assert(hotswap::vsn_of<v1::Account> == 1 && hotswap::vsn_of<v3::Account> == 3);
static_assert(AccountSchema::name == "Account");
static_assert(std::is_same_v<AccountSchema::type_of<2>, v2::Account>);
static_assert(std::is_same_v<AccountSchema::latest, v3::Account>);
static_assert(hotswap::same_schema<v1::Account, v3::Account>);
static_assert(!hotswap::same_schema<v1::Account, other::Odd>);

// ---- diffs ----
using v1_to_v2 = hotswap::field_diff<v1::Account, v2::Account>;
static_assert(v1_to_v2::added == std::array{"stage"sv});
static_assert(v1_to_v2::kept == std::array{"name"sv, "score"sv});
static_assert(v1_to_v2::removed.empty() && v1_to_v2::retyped.empty());
using v3_to_v1 = hotswap::field_diff<v3::Account, v1::Account>;
static_assert(v3_to_v1::removed == std::array{"stage"sv, "active"sv} && v3_to_v1::added.empty());

namespace catalog {
namespace v1 {
struct Item {
  int price = 0;
  std::string sku;
  bool legacy = false;
};
}  // namespace v1
namespace v2 {
struct Item {
  long price = 0;
  std::string code;
  std::vector<std::string> tags;
};
}  // namespace v2
}  // namespace catalog
using item_diff = hotswap::field_diff<catalog::v1::Item, catalog::v2::Item>;
static_assert(item_diff::retyped == std::array{"price"sv});
static_assert(item_diff::added == std::array{"code"sv, "tags"sv});
static_assert(item_diff::removed == std::array{"sku"sv, "legacy"sv});
static_assert(item_diff::kept.empty());

// ---- canonical descriptions and fingerprints ----
static_assert(hotswap::type_description<v1::Account> == "Account@1{name:optional<string>,score:i32}");
static_assert(hotswap::type_description<v3::Account> ==
              "Account@3{name:optional<string>,score:i32,stage:i32,active:bool}");
static_assert(hotswap::type_description<std::unordered_map<std::string, std::vector<std::array<v1::Account, 2>>>> ==
              "unordered_map<string,vector<array<Account@1{name:optional<string>,score:i32}>[2]>>");
static_assert(hotswap::type_description<std::map<std::uint8_t, double>> == "map<u8,f64>");
static_assert(hotswap::fingerprint<v3::Account> == hotswap::detail::fnv1a(hotswap::type_description<v3::Account>));
static_assert(hotswap::fingerprint<v1::Account> != hotswap::fingerprint<v2::Account>);
static_assert(hotswap::fingerprint<v2::Account> != hotswap::fingerprint<v3::Account>);
// FNV-1a's published test vectors: the hash is the one every compiler computes.
static_assert(hotswap::detail::fnv1a("") == 0xcbf29ce484222325ull);
static_assert(hotswap::detail::fnv1a("a") == 0xaf63dc4c8601ec8cull);

enum class Colour : std::uint8_t { red, green };
template <>
struct hotswap::type_name<other::Odd> {
  static constexpr std::string_view value = "Odd";
};
static_assert(hotswap::type_description<Colour> == "enum:u8");
static_assert(hotswap::type_description<std::vector<other::Odd>> == "vector<Odd>");

TEST_CASE("fingerprints agree across translation units and shared libraries") {
  for (int vsn = 1; vsn <= 3; ++vsn) {
    CAPTURE(vsn);
    REQUIRE(account_fingerprint_other_tu(vsn) != 0);
    CHECK(account_fingerprint_other_tu(vsn) == account_fingerprint_shared_library(vsn));
  }
  CHECK(account_fingerprint_other_tu(1) == hotswap::fingerprint<v1::Account>);
  CHECK(account_fingerprint_other_tu(2) == hotswap::fingerprint<v2::Account>);
  CHECK(account_fingerprint_other_tu(3) == hotswap::fingerprint<v3::Account>);
}

// ---- the registry ----
TEST_CASE("the registry describes every version of a schema") {
  hotswap::schema_registry registry;
  registry.add<AccountSchema>();
  const auto versions = registry.versions("Account");
  REQUIRE(versions.size() == 3);
  CHECK(versions[0].vsn == 1);
  CHECK(versions[2].vsn == 3);
  CHECK(versions[2].fingerprint == hotswap::fingerprint<v3::Account>);
  CHECK(versions[2].field_names == std::vector<std::string>{"name", "score", "stage", "active"});
  CHECK(versions[2].field_types == std::vector<std::string>{"optional<string>", "i32", "i32", "bool"});
  REQUIRE(registry.find("Account", 2));
  CHECK(*registry.find("Account", 2) == hotswap::describe<v2::Account>());
  CHECK_FALSE(registry.find("Account", 4));
  CHECK_FALSE(registry.find("Team", 1));
}

TEST_CASE("a conflicting description is refused and changes nothing") {
  hotswap::schema_registry registry;
  registry.add<AccountSchema>();
  registry.add(hotswap::describe<v2::Account>());  // the same again is harmless
  auto impostor = hotswap::describe<v2::Account>();
  impostor.fingerprint ^= 1;
  impostor.field_names.back() = "level";
  CHECK_THROWS_AS(registry.add(impostor), hotswap::schema_conflict);
  CHECK_THROWS_WITH(registry.add(impostor), Catch::Contains("Account version 2"));
  CHECK(registry.versions("Account").size() == 3);
  CHECK(registry.find("Account", 2)->field_names.back() == "stage");
}

TEST_CASE("versions are listed oldest first whatever the order they were added in") {
  hotswap::schema_registry registry;
  registry.add(hotswap::describe<v3::Account>());
  registry.add(hotswap::describe<v1::Account>());
  registry.add(hotswap::describe<v2::Account>());
  const auto versions = registry.versions("Account");
  REQUIRE(versions.size() == 3);
  CHECK((versions[0].vsn == 1 && versions[1].vsn == 2 && versions[2].vsn == 3));
}

TEST_CASE("the process registry is shared") {
  hotswap::registry().add<AccountSchema>();
  CHECK(hotswap::registry().find("Account", 3)->fingerprint == hotswap::fingerprint<v3::Account>);
}
