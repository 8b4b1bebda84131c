// The generated v2 -> v3 migration beside the hand-written one, for an instruction count that
// the host's noise cannot move (run it under callgrind; the benchmark measures time):
//
//   valgrind --tool=callgrind --callgrind-out-file=cg.out build/gcc/benchmarks/migration_instructions
//   callgrind_annotate --inclusive=yes cg.out | grep -E 'generated_|by_hand_'
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "anemone/account.hpp"

using anemone::v2::Account;
using NewAccount = anemone::v3::Account;
using AccountMap = std::unordered_map<std::string, Account>;
using NewAccountMap = std::unordered_map<std::string, NewAccount>;

__attribute__((noinline)) std::vector<NewAccount> generated_vector(std::vector<Account> accounts) {
  return hotswap::migrate<std::vector<NewAccount>>(std::move(accounts));
}
// A by-value parameter is destroyed by the caller; hotswap::migrate destroys the value moved
// into it inside. So that both functions count freeing their input, the hand-written ones move
// it into a local first.
__attribute__((noinline)) std::vector<NewAccount> by_hand_vector(std::vector<Account> input) {
  std::vector<Account> accounts = std::move(input);
  std::vector<NewAccount> out;
  out.reserve(accounts.size());
  for (auto& account : accounts) out.push_back(NewAccount{std::move(account.name), account.score, account.stage, true});
  return out;
}
__attribute__((noinline)) NewAccountMap generated_map(AccountMap accounts) {
  return hotswap::migrate<NewAccountMap>(std::move(accounts));
}
__attribute__((noinline)) NewAccountMap by_hand_map(AccountMap input) {
  AccountMap accounts = std::move(input);
  NewAccountMap out;
  out.reserve(accounts.size());
  for (auto& [key, account] : accounts)
    out.emplace(key, NewAccount{std::move(account.name), account.score, account.stage, true});
  return out;
}

int main() {
  constexpr int size = 100'000;
  std::vector<Account> vector;
  AccountMap map;
  for (int i = 0; i < size; ++i) {
    Account account{"Player " + std::to_string(i), i % 1000, i % 7};
    vector.push_back(account);
    map.emplace("account-" + std::to_string(i), account);
  }
  // The by-value arguments are copied before each call, outside the functions measured.
  const auto a = generated_vector(vector);
  const auto b = by_hand_vector(vector);
  const auto c = generated_map(map);
  const auto d = by_hand_map(map);
  fmt::print("{} {} {} {}\n", a.size(), b.size(), c.size(), d.size());
  return a.size() == b.size() && c.size() == d.size() ? 0 : 1;
}
