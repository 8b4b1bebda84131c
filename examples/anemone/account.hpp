// The Account of the Anemone app, in the three versions of the article series:
// `defstruct name: nil, score: 0` (v1), `+ stage: 0` (v2), `+ active: true` (v3).
#pragma once

#include <map>
#include <optional>
#include <string>

#include <hotswap/hotswap.hpp>

namespace anemone {

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

using AccountSchema = hotswap::schema<"Account",  //
                                      hotswap::version<1, v1::Account>, hotswap::version<2, v2::Account>,
                                      hotswap::version<3, v3::Account>>;

/// `@initial_stages` of the v2 AccountManager: the stage each account starts v2 at, by map key.
using InitialStages = std::map<std::string, int>;
inline const InitialStages initial_stages{{"alice", 0}, {"bob", 1}};

}  // namespace anemone

template <hotswap::listed_in<anemone::AccountSchema> T>
struct hotswap::schema_of<T> : anemone::AccountSchema {};

template <>
inline constexpr bool hotswap::enable_inspect<anemone::AccountSchema> = true;

// v1 -> v2 sets `stage` from the table, by the key the account has in the manager's map (an
// account the table does not know starts at stage 0).
template <>
struct hotswap::step<anemone::v1::Account, anemone::v2::Account> {
  static constexpr auto rules = hotswap::rules{
      hotswap::init<"stage">(
          [](const anemone::v1::Account&, const anemone::InitialStages& stages, const std::string& key) {
            const auto found = stages.find(key);
            return found == stages.end() ? 0 : found->second;
          }),
  };
};

// v2 -> v3 adds `active`, which takes its default member initializer (true). Account holds a
// string, so hotswap cannot read that initializer at compile time: the step declares it.
template <>
struct hotswap::step<anemone::v2::Account, anemone::v3::Account> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"active">};
};

// Downgrades drop what the upgrades added; the loss is declared.
template <>
struct hotswap::step<anemone::v2::Account, anemone::v1::Account> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"stage">};
};
template <>
struct hotswap::step<anemone::v3::Account, anemone::v2::Account> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"active">};
};
