// The AccountManager's state through the Anemone article's versions, without servers: v1 ticks
// add 1, the v1 -> v2 migration sets each stage from @initial_stages by key, v2 ticks add
// stage + 1, and v2 -> v3 adds `active: true`. Prints what the article prints.
//
//     anemone_accounts [ticks per version]
#include <cstdlib>
#include <map>
#include <string>

#include <fmt/format.h>

#include "anemone/account.hpp"

namespace {

template <class Accounts>
void print_scores(const Accounts& accounts) {
  fmt::print("alice: {}, bob: {}\n", accounts.at("alice").score, accounts.at("bob").score);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace anemone;
  const int ticks = argc > 1 ? std::atoi(argv[1]) : 3;

  std::map<std::string, v1::Account> accounts_v1{{"alice", {"Alice", 0}}, {"bob", {"Bob", 0}}};
  fmt::print("[1] {}\n", v1::Account{});
  for (int i = 0; i < ticks; ++i) {
    for (auto& [key, account] : accounts_v1) account.score += 1;
    print_scores(accounts_v1);
  }

  auto accounts_v2 = hotswap::migrate<std::map<std::string, v2::Account>>(std::move(accounts_v1), initial_stages);
  fmt::print("[code_change] {}\n", v2::Account{});
  for (int i = 0; i < ticks; ++i) {
    for (auto& [key, account] : accounts_v2) account.score += account.stage + 1;
    print_scores(accounts_v2);
  }
  fmt::print("[2] {}\n", v2::Account{});

  auto accounts_v3 = hotswap::migrate<std::map<std::string, v3::Account>>(std::move(accounts_v2));
  fmt::print("[code_change] {}\n", v3::Account{});
  for (int i = 0; i < ticks; ++i) {
    for (auto& [key, account] : accounts_v3) account.score += account.stage + 1;
    print_scores(accounts_v3);
  }
  fmt::print("[3] {}\n", v3::Account{});
  fmt::print("{}\n", hotswap::inspect(accounts_v3));
}
