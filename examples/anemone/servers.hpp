// The Anemone app's two servers, AccountManager and Inspector, in their v2 and v3, behind
// interfaces that stay the same across both; and release 4's: AccountManager v4, which takes a
// message more (a later version of its interface), and a new server, the Leaderboard.
//
// AccountManager (registered as "account_manager") holds the accounts by key and on every tick
// adds `stage + 1` to each score and prints `alice: 3, bob: 6`; its terminate prints how it
// ended and the scores it ends with, `account_manager terminate (shutdown): alice: 3, bob: 6`.
// Inspector (registered as "inspector") prints `[2] %Account{name: nil, score: 0, stage: 0}` on
// every tick: its vsn and an empty Account. Each ticks by a timer of its own, started in init.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <hotswap/hotswap.hpp>

#include "account.hpp"

namespace anemone {

struct Tick {};
/// Asks the AccountManager for every score, by key.
struct Scores {};

using AccountManagerInterface =
    hotswap::interface<"Anemone.AccountManager", hotswap::call_msg<Scores, std::map<std::string, int>>,
                       hotswap::info_msg<Tick>>;
using InspectorInterface = hotswap::interface<"Anemone.Inspector", hotswap::info_msg<Tick>>;

/// The tick period, given to init.
using Period = std::chrono::milliseconds;

namespace detail {
template <class Accounts>
void tick(Accounts& accounts) {
  for (auto& entry : accounts) entry.second.score += entry.second.stage + 1;
  fmt::print("alice: {}, bob: {}\n", accounts.at("alice").score, accounts.at("bob").score);
}
/// What the AccountManager's terminate prints: how it ended, and the scores it ends with.
template <class Accounts>
void goodbye(const hotswap::exit_reason& reason, const Accounts& accounts) {
  fmt::print("account_manager terminate ({}): alice: {}, bob: {}\n", hotswap::to_string(reason.kind),
             accounts.at("alice").score, accounts.at("bob").score);
}
template <class Accounts>
std::map<std::string, int> scores(const Accounts& accounts) {
  std::map<std::string, int> out;
  for (const auto& entry : accounts) out.emplace(entry.first, entry.second.score);
  return out;
}
}  // namespace detail

struct AccountManagerV2 {
  using interface = AccountManagerInterface;
  static constexpr int vsn = 2;
  using state = std::map<std::string, v2::Account>;

  static state init(Period period) {
    hotswap::send_interval(hotswap::self<interface>(), Tick{}, period);
    return {{"alice", {"Alice", 0, initial_stages.at("alice")}}, {"bob", {"Bob", 0, initial_stages.at("bob")}}};
  }
  static void handle_info(const Tick&, state& accounts) { detail::tick(accounts); }
  static std::map<std::string, int> handle_call(const Scores&, const state& accounts) {
    return detail::scores(accounts);
  }
  static void terminate(const hotswap::exit_reason& reason, state& accounts) { detail::goodbye(reason, accounts); }
};

/// v3: the accounts are v3 Accounts (`active: true` added). Their migration is generated; from
/// v1 it sets each stage from @initial_stages by key, the one rule written by hand (account.hpp).
struct AccountManagerV3 {
  using interface = AccountManagerInterface;
  static constexpr int vsn = 3;
  using state = std::map<std::string, v3::Account>;
  using extra = InitialStages;
  using state_history = hotswap::state_history<hotswap::version<1, std::map<std::string, v1::Account>>,
                                               hotswap::version<2, std::map<std::string, v2::Account>>>;

  static state init(Period period) {
    hotswap::send_interval(hotswap::self<interface>(), Tick{}, period);
    return {{"alice", {"Alice", 0, initial_stages.at("alice"), true}},
            {"bob", {"Bob", 0, initial_stages.at("bob"), true}}};
  }
  static void handle_info(const Tick&, state& accounts) { detail::tick(accounts); }
  static std::map<std::string, int> handle_call(const Scores&, const state& accounts) {
    return detail::scores(accounts);
  }
  static void terminate(const hotswap::exit_reason& reason, state& accounts) { detail::goodbye(reason, accounts); }
};

/// The Inspector keeps nothing.
struct InspectorState {};

struct InspectorV2 {
  using interface = InspectorInterface;
  static constexpr int vsn = 2;
  using state = InspectorState;

  static state init(Period period) {
    hotswap::send_interval(hotswap::self<interface>(), Tick{}, period);
    return {};
  }
  static void handle_info(const Tick&, state&) { fmt::print("[{}] {}\n", vsn, v2::Account{}); }
};

struct InspectorV3 {
  using interface = InspectorInterface;
  static constexpr int vsn = 3;
  using state = InspectorState;
  using state_history = hotswap::state_history<hotswap::version<2, InspectorState>>;

  static state init(Period period) {
    hotswap::send_interval(hotswap::self<interface>(), Tick{}, period);
    return {};
  }
  static void handle_info(const Tick&, state&) { fmt::print("[{}] {}\n", vsn, v3::Account{}); }
  static state code_change(hotswap::from_vsn<2>, InspectorState&& old) {
    fmt::print("[code_change] {}\n", v3::Account{});
    return old;
  }
};

// -- release 4 --

/// Release 4 adds a message to the AccountManager, which the article's v3 `active` field invites:
/// version 2 of its interface. A client built against version 1 keeps calling Scores.
struct Deactivate {
  std::string key;
};
using AccountManagerInterface2 = hotswap::interface<"Anemone.AccountManager", hotswap::follows<AccountManagerInterface>,
                                                    hotswap::call_msg<Deactivate, bool>>;

/// The Leaderboard (registered as "leaderboard"), new in release 4, which starts it: fed the
/// scores by the AccountManager on every tick, it prints them best first,
/// `leaderboard: bob 68, alice 34`.
using LeaderboardInterface = hotswap::interface<"Anemone.Leaderboard", hotswap::cast_msg<std::map<std::string, int>>>;

struct LeaderboardV1 {
  using interface = LeaderboardInterface;
  static constexpr int vsn = 1;
  struct state {};
  static state init() { return {}; }
  static void handle_cast(const std::map<std::string, int>& scores, state&) {
    std::vector<std::pair<std::string, int>> best(scores.begin(), scores.end());
    std::stable_sort(best.begin(), best.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string line = "leaderboard:";
    for (const auto& [key, score] : best) line += fmt::format("{} {} {}", line.back() == ':' ? "" : ",", key, score);
    fmt::print("{}\n", line);
  }
};

/// v4: an account deactivated (Deactivate) scores no more; each tick feeds the Leaderboard, if
/// one runs. Its state is v3's.
struct AccountManagerV4 {
  using interface = AccountManagerInterface2;
  static constexpr int vsn = 4;
  using state = std::map<std::string, v3::Account>;
  using extra = InitialStages;
  using state_history = hotswap::state_history<hotswap::version<1, std::map<std::string, v1::Account>>,
                                               hotswap::version<2, std::map<std::string, v2::Account>>,
                                               hotswap::version<3, std::map<std::string, v3::Account>>>;

  static state init(Period period) { return AccountManagerV3::init(period); }
  static void handle_info(const Tick&, state& accounts) {
    for (auto& entry : accounts)
      if (entry.second.active) entry.second.score += entry.second.stage + 1;
    fmt::print("alice: {}, bob: {}\n", accounts.at("alice").score, accounts.at("bob").score);
    if (const auto leaderboard = hotswap::whereis<LeaderboardInterface>("leaderboard"))
      hotswap::cast(*leaderboard, detail::scores(accounts));
  }
  static std::map<std::string, int> handle_call(const Scores&, const state& accounts) {
    return detail::scores(accounts);
  }
  static bool handle_call(const Deactivate& deactivate, state& accounts) {
    const auto account = accounts.find(deactivate.key);
    return account != accounts.end() && std::exchange(account->second.active, false);
  }
  static void terminate(const hotswap::exit_reason& reason, state& accounts) { detail::goodbye(reason, accounts); }
};

}  // namespace anemone
