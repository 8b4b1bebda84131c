// Migrations: generated steps, declarations, containers, downgrades.
#include <array>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <catch2/catch.hpp>

#include "anemone/account.hpp"
#include "wide_record.hpp"

using namespace anemone;

// ---- what migrates by itself ----
static_assert(hotswap::migrates<int, long> && hotswap::migrates<int, double> && hotswap::migrates<float, double>);
static_assert(hotswap::migrates<std::uint8_t, std::uint32_t> && hotswap::migrates<int, std::optional<long>>);
static_assert(!hotswap::migrates<long, int> && !hotswap::migrates<int, unsigned> && !hotswap::migrates<double, float>);
static_assert(!hotswap::migrates<bool, int> && !hotswap::migrates<int, std::string>);
// Only conversions that keep every value: a float cannot hold every int, nor a double every long.
static_assert(!hotswap::migrates<int, float> && !hotswap::migrates<long, double>);
static_assert(!hotswap::migrates<std::uint64_t, double> && hotswap::migrates<std::uint16_t, float>);
// char's signedness depends on the platform: it converts only to itself.
static_assert(!hotswap::migrates<char, int> && hotswap::migrates<char, char>);
// migrates says exactly whether hotswap::migrate compiles: the Anemone v1 -> v2 step sets the
// stage from the table given as extra, by the key of the map entry, so it needs both.
static_assert(hotswap::migrates<v3::Account, v1::Account> && hotswap::migrates<v2::Account, v3::Account>);
static_assert(!hotswap::migrates<v1::Account, v3::Account> &&
              !hotswap::migrates<v1::Account, v3::Account, InitialStages>);
static_assert(hotswap::migrates<std::map<std::string, v1::Account>, std::map<std::string, v3::Account>, InitialStages>);
static_assert(!hotswap::migrates<std::map<std::string, v1::Account>, std::map<std::string, v3::Account>>);
static_assert(!hotswap::migrates<std::vector<v1::Account>, std::vector<v2::Account>, InitialStages>);
static_assert(hotswap::migrates<std::vector<v2::Account>, std::vector<v3::Account>>);
static_assert(!hotswap::migrates<std::map<std::string, v1::Account>, std::map<int, v3::Account>, InitialStages>);
static_assert(hotswap::migrates<std::array<v2::Account, 2>, std::array<v3::Account, 2>>);
static_assert(!hotswap::migrates<std::array<v2::Account, 2>, std::array<v3::Account, 3>>);
static_assert(hotswap::migrates<std::optional<v2::Account>, std::optional<v3::Account>>);

TEST_CASE("the Anemone accounts migrate v1 -> v3, each stage set by its map key") {
  std::map<std::string, v1::Account> accounts{{"alice", {"Alice", 3}}, {"bob", {"Bob", 6}}, {"carol", {{}, 9}}};
  const auto migrated = hotswap::migrate<std::map<std::string, v3::Account>>(std::move(accounts), initial_stages);
  REQUIRE(migrated.size() == 3);
  const auto& alice = migrated.at("alice");
  const auto& bob = migrated.at("bob");
  CHECK(alice.name == "Alice");
  CHECK(alice.score == 3);
  CHECK(alice.stage == 0);
  CHECK(alice.active);
  CHECK(bob.name == "Bob");
  CHECK(bob.score == 6);
  CHECK(bob.stage == 1);
  CHECK(bob.active);
  CHECK_FALSE(migrated.at("carol").name);  // nil stays nil
  CHECK(migrated.at("carol").stage == 0);  // not in the table
}

TEST_CASE("an unordered_map migrates the same way") {
  std::unordered_map<std::string, v1::Account> accounts{{"alice", {"Alice", 3}}, {"bob", {"Bob", 6}}};
  const auto migrated =
      hotswap::migrate<std::unordered_map<std::string, v2::Account>>(std::move(accounts), initial_stages);
  CHECK(migrated.at("bob").stage == 1);
  CHECK(migrated.at("alice").stage == 0);
  CHECK(migrated.at("alice").score == 3);
}

TEST_CASE("a step that needs no map key migrates a lone value") {
  // v1 -> v2 needs a key: that a lone v1 account does not compile is the compile-fail test
  // `init_needs_key`.
  const auto account = hotswap::migrate<v3::Account>(v2::Account{"Dan", 1, 2});
  CHECK(account.name == "Dan");
  CHECK(account.stage == 2);
  CHECK(account.active);
}

TEST_CASE("a downgrade round trip v3 -> v2 -> v3 keeps every kept field") {
  const v3::Account original{"Alice", 34, 1, false};
  const auto down = hotswap::migrate<v2::Account>(original);
  CHECK(down.name == "Alice");
  CHECK(down.score == 34);
  CHECK(down.stage == 1);
  const auto up = hotswap::migrate<v3::Account>(down);
  CHECK(up.name == original.name);
  CHECK(up.score == original.score);
  CHECK(up.stage == original.stage);
  CHECK(up.active);  // dropped by the declared downgrade, so back to its default

  const auto v1_account = hotswap::migrate<v1::Account>(original);  // v3 -> v2 -> v1
  CHECK(v1_account.name == "Alice");
  CHECK(v1_account.score == 34);
}

// ---- declarations: rename, convert, init from extra, whole-step override ----
namespace shop {
namespace v1 {
struct Item {
  int price = 0;
  std::string sku;
  bool legacy = false;
  int stock = 0;
};
}  // namespace v1
namespace v2 {
struct Item {
  long price = 0;             // widened by itself
  std::string code;           // renamed from sku
  std::string stock;          // retyped with a converter
  std::string currency;       // computed from what the caller passes
  std::optional<int> rating;  // added: empty
};
}  // namespace v2
namespace v3 {
struct Item {
  double price = 0;  // converted: a double does not hold every long
  std::string code;
  std::string stock;
  std::string currency;
  std::optional<int> rating;
};
}  // namespace v3
using ItemSchema = hotswap::schema<"Item", hotswap::version<1, v1::Item>, hotswap::version<2, v2::Item>,
                                   hotswap::version<3, v3::Item>>;
struct Settings {
  std::string currency;
};
}  // namespace shop

template <hotswap::listed_in<shop::ItemSchema> T>
struct hotswap::schema_of<T> : shop::ItemSchema {};

template <>
struct hotswap::step<shop::v1::Item, shop::v2::Item> {
  static constexpr auto rules = hotswap::rules{
      hotswap::renamed<"sku", "code">,
      hotswap::removed<"legacy">,
      hotswap::convert<"stock">([](int stock) { return std::to_string(stock) + " units"; }),
      hotswap::init<"currency">([](const shop::v1::Item&, const hotswap::context<shop::Settings>& context) {
        return context.extra.currency;
      }),
  };
};

template <>
struct hotswap::step<shop::v2::Item, shop::v3::Item> {
  static constexpr auto rules = hotswap::rules{hotswap::convert<"price">([](long cents) { return cents / 100.0; })};
};

// A whole-step override: written by hand, used instead of the generated step.
template <>
struct hotswap::step<shop::v3::Item, shop::v2::Item> {
  static shop::v2::Item migrate(shop::v3::Item&& item, const auto&) {
    return {static_cast<long>(item.price * 100), std::move(item.code), std::move(item.stock), std::move(item.currency),
            item.rating};
  }
};

TEST_CASE("declared renames, removals, converters and initializers") {
  const shop::Settings settings{"EUR"};
  const auto item = hotswap::migrate<shop::v2::Item>(shop::v1::Item{42, "A-1", true, 7}, settings);
  CHECK(item.price == 42);
  CHECK(item.code == "A-1");
  CHECK(item.stock == "7 units");
  CHECK(item.currency == "EUR");
  CHECK_FALSE(item.rating);

  const auto latest = hotswap::migrate<shop::v3::Item>(shop::v1::Item{525, "B-2", false, 0}, settings);
  CHECK(latest.price == 5.25);
  CHECK(latest.code == "B-2");
  CHECK(latest.currency == "EUR");
}

TEST_CASE("a whole-step override replaces the generated step") {
  const auto item = hotswap::migrate<shop::v2::Item>(shop::v3::Item{1.25, "C-3", "2 units", "USD", 4});
  CHECK(item.price == 125);
  CHECK(item.code == "C-3");
  CHECK(item.rating == 4);
}

// ---- nested schemas in containers ----
namespace league {
namespace v1 {
struct Team {
  std::vector<anemone::v2::Account> members;
  std::map<std::string, anemone::v2::Account> by_name;
  std::optional<anemone::v2::Account> captain;
  std::array<anemone::v2::Account, 2> founders;
  std::vector<std::optional<anemone::v2::Account>> seats;
  int wins = 0;
};
}  // namespace v1
namespace v2 {
struct Team {
  std::vector<anemone::v3::Account> members;
  std::map<std::string, anemone::v3::Account> by_name;
  std::optional<anemone::v3::Account> captain;
  std::array<anemone::v3::Account, 2> founders;
  std::vector<std::optional<anemone::v3::Account>> seats;
  std::optional<long> wins;  // int -> optional<long> by itself
};
}  // namespace v2
using TeamSchema = hotswap::schema<"Team", hotswap::version<1, v1::Team>, hotswap::version<2, v2::Team>>;
}  // namespace league

template <hotswap::listed_in<league::TeamSchema> T>
struct hotswap::schema_of<T> : league::TeamSchema {};

TEST_CASE("nested schemas migrate inside vectors, maps, optionals and arrays") {
  league::v1::Team team{
      {{"Alice", 1, 0}, {"Bob", 2, 1}},
      {{"carol", {"Carol", 3, 2}}},
      v2::Account{"Dan", 4, 3},
      {{{"Eve", 5, 4}, {"Fay", 6, 5}}},
      {std::nullopt, v2::Account{"Gus", 7, 6}},
      9,
  };
  const auto migrated = hotswap::migrate<league::v2::Team>(std::move(team));
  REQUIRE(migrated.members.size() == 2);
  CHECK(migrated.members[1].name == "Bob");
  CHECK(migrated.members[1].stage == 1);
  CHECK(migrated.members[1].active);
  CHECK(migrated.by_name.at("carol").score == 3);
  REQUIRE(migrated.captain);
  CHECK(migrated.captain->name == "Dan");
  CHECK(migrated.founders[1].name == "Fay");
  CHECK(migrated.founders[1].stage == 5);
  REQUIRE(migrated.seats.size() == 2);
  CHECK_FALSE(migrated.seats[0]);
  CHECK(migrated.seats[1]->name == "Gus");
  CHECK(migrated.wins == 9L);
}

// ---- a wide struct ----
using RecordSchema =
    hotswap::schema<"Record", hotswap::version<1, wide::v1::Record>, hotswap::version<2, wide::v2::Record>>;
template <hotswap::listed_in<RecordSchema> T>
struct hotswap::schema_of<T> : RecordSchema {};
template <>
struct hotswap::step<wide::v1::Record, wide::v2::Record> {
  static constexpr auto rules =
      hotswap::rules{hotswap::renamed<"f07", "g07">, hotswap::removed<"f59">, hotswap::added<"h60">};
};

static_assert(hotswap::field_count<wide::v1::Record> == 60);
static_assert(hotswap::field_names<wide::v1::Record>[59] == "f59");
static_assert(hotswap::field_diff<wide::v1::Record, wide::v2::Record>::retyped.size() == 1);

TEST_CASE("a 60-field struct migrates field by field") {
  const auto old = wide::v1::sample();
  const auto record = hotswap::migrate<wide::v2::Record>(old);
  CHECK(record.f00 == 0);
  CHECK(record.g07 == old.f07);  // renamed
  CHECK(record.f12 == 12L);      // int -> long
  CHECK(record.f33 == old.f33);
  CHECK(record.f57 == old.f57);
  CHECK(record.f58 == old.f58);
  CHECK(record.h60 == -1);  // added, from its default member initializer
  // Every field both versions share by name.
  int compared = 0;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    auto compare = [&]<std::size_t N>(std::integral_constant<std::size_t, N>) {
      constexpr std::size_t in_old = hotswap::field_index<wide::v1::Record>(hotswap::field_names<wide::v2::Record>[N]);
      if constexpr (in_old < 60) {
        using Old = hotswap::field_type<wide::v1::Record, in_old>;
        using New = hotswap::field_type<wide::v2::Record, N>;
        if constexpr (std::is_same_v<Old, New>) {
          CHECK(hotswap::detail::member<N>(hotswap::detail::fields(record)) ==
                hotswap::detail::member<in_old>(hotswap::detail::fields(old)));
          ++compared;
        }
      }
    };
    (compare(std::integral_constant<std::size_t, I>{}), ...);
  }
  (std::make_index_sequence<60>{});
  CHECK(compared == 57);  // 60 - renamed - retyped - added
}

// ---- failure ----
namespace risky {
namespace v1 {
struct Counter {
  std::string name;
  int value = 0;
};
}  // namespace v1
namespace v2 {
struct Counter {
  std::string name;
  int value = 0;
  int doubled = 0;
};
}  // namespace v2
using CounterSchema = hotswap::schema<"Counter", hotswap::version<1, v1::Counter>, hotswap::version<2, v2::Counter>>;
}  // namespace risky

template <hotswap::listed_in<risky::CounterSchema> T>
struct hotswap::schema_of<T> : risky::CounterSchema {};
template <>
struct hotswap::step<risky::v1::Counter, risky::v2::Counter> {
  static constexpr auto rules = hotswap::rules{hotswap::init<"doubled">([](const risky::v1::Counter& counter) {
    if (counter.value < 0) throw std::domain_error("negative counter " + counter.name);
    return counter.value * 2;
  })};
};

TEST_CASE("a migration that throws passes the error on and leaves a source it was given as an lvalue intact") {
  const std::vector<risky::v1::Counter> before{{"first", 1}, {"second", -1}, {"third", 3}};
  std::vector<risky::v1::Counter> counters = before;
  CHECK_THROWS_WITH(hotswap::migrate<std::vector<risky::v2::Counter>>(counters), "negative counter second");
  REQUIRE(counters.size() == before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    CHECK(counters[i].name == before[i].name);
    CHECK(counters[i].value == before[i].value);
  }
  counters[1].value = 2;
  const auto migrated = hotswap::migrate<std::vector<risky::v2::Counter>>(std::move(counters));
  CHECK(migrated[1].doubled == 4);
  CHECK(migrated[2].name == "third");
}

// ---- renames: reversed on the way down, and a renamed-away name free for a new field ----
namespace profile {
namespace v1 {
struct User {
  std::string nick;
  int karma = 0;
};
}  // namespace v1
namespace v2 {
struct User {
  std::string handle;  // was nick
  int karma = 0;
  std::string nick = "(unset)";  // a new field that reuses the old name
};
}  // namespace v2
using UserSchema = hotswap::schema<"User", hotswap::version<1, v1::User>, hotswap::version<2, v2::User>>;
}  // namespace profile

template <hotswap::listed_in<profile::UserSchema> T>
struct hotswap::schema_of<T> : profile::UserSchema {};
template <>
struct hotswap::step<profile::v1::User, profile::v2::User> {
  static constexpr auto rules = hotswap::rules{hotswap::renamed<"nick", "handle">};
};
template <>
struct hotswap::step<profile::v2::User, profile::v1::User> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"nick">};  // the new one; handle goes back to nick
};

TEST_CASE("a rename moves the old field once, and a new field may take the old name") {
  const auto user =
      hotswap::migrate<profile::v2::User>(profile::v1::User{"a name too long for small-string storage", 3});
  CHECK(user.handle == "a name too long for small-string storage");
  CHECK(user.nick == "(unset)");
  CHECK(user.karma == 3);
}

TEST_CASE("a downgrade renames back what the upgrade renamed") {
  const auto user = hotswap::migrate<profile::v1::User>(profile::v2::User{"old-handle", 7, "new nick"});
  CHECK(user.nick == "old-handle");
  CHECK(user.karma == 7);
}
