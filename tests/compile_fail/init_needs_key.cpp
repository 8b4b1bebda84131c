// The Anemone v1 -> v2 step sets stage by map key: a lone account has no key to give it.
// expect: declared_function_does_not_fit
// expect: when the value is migrated inside a map
#include <map>
#include "anemone/account.hpp"

int main() {
#ifndef HOTSWAP_FIXED
  auto account = hotswap::migrate<anemone::v2::Account>(anemone::v1::Account{"Alice", 3}, anemone::initial_stages);
  return account.stage;
#else
  std::map<std::string, anemone::v1::Account> accounts{{"alice", {"Alice", 3}}};
  auto migrated = hotswap::migrate<std::map<std::string, anemone::v2::Account>>(accounts, anemone::initial_stages);
  return migrated.at("alice").stage;
#endif
}
