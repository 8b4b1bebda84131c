// examples/quickstart.cpp: the README's first example (the tests build it, run it and check what it prints).
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>

#include <hotswap/hotswap.hpp>

namespace v1 {
struct Account {
  std::optional<std::string> name;
  int score = 0;
};
}  // namespace v1
namespace v2 {
struct Account {
  std::optional<std::string> name;
  int score = 0;
  int stage = 0;
};
}  // namespace v2
namespace v3 {
struct Account {
  std::optional<std::string> name;
  int score = 0;
  int stage = 0;
  bool active = true;
};
}  // namespace v3

// Once, outside the structs: these are versions 1, 2, 3 of the schema "Account".
using AccountSchema = hotswap::schema<"Account", hotswap::version<1, v1::Account>, hotswap::version<2, v2::Account>,
                                      hotswap::version<3, v3::Account>>;
template <hotswap::listed_in<AccountSchema> T>
struct hotswap::schema_of<T> : AccountSchema {};

// What the generated migration cannot know: v1 -> v2 sets stage from a table, by map key.
using Stages = std::map<std::string, int>;
template <>
struct hotswap::step<v1::Account, v2::Account> {
  static constexpr auto rules = hotswap::rules{
      hotswap::init<"stage">(
          [](const v1::Account&, const Stages& stages, const std::string& key) { return stages.at(key); }),
  };
};
// v2 -> v3 adds `active`, which takes its default member initializer. Declared: Account holds a
// string, and hotswap reads default member initializers at compile time only in structs of numbers.
template <>
struct hotswap::step<v2::Account, v3::Account> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"active">};
};

// Print as Elixir's inspect does (opt in per schema).
template <>
inline constexpr bool hotswap::enable_inspect<AccountSchema> = true;

int main() {
  std::map<std::string, v1::Account> accounts{{"alice", {"Alice", 3}}, {"bob", {"Bob", 6}}};
  auto upgraded =
      hotswap::migrate<std::map<std::string, v3::Account>>(std::move(accounts), Stages{{"alice", 0}, {"bob", 1}});
  fmt::print("{}\n", upgraded.at("bob"));  // %Account{name: "Bob", score: 6, stage: 1, active: true}
}
