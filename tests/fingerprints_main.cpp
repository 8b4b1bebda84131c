// Prints the canonical description and fingerprint of each schema version the tests use, and of
// the Anemone app's interfaces, each version and each message as a module's note says them. The
// test `fingerprints_agree_across_compilers` builds it with the other compiler and compares.
#include <utility>

#include <fmt/format.h>

#include "anemone/account.hpp"
#include "anemone/servers.hpp"

template <class Interface>
void print_interface() {
  fmt::print("{} version {}: {:016x}\n", Interface::name, Interface::vsn, Interface::fingerprint);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    // (not its name: how a compiler spells a standard type differs, and only the fingerprint is checked)
    ((fmt::print("  message {} since {}: {:016x}\n", I, hotswap::detail::slot_at<Interface, I>::since,
                 hotswap::detail::slot_hash<typename hotswap::detail::slot_at<Interface, I>::kind>(
                     hotswap::detail::fnv1a_start))),
     ...);
  }
  (std::make_index_sequence<Interface::size>{});
}

template <class T>
void print() {
  fmt::print("{} {:016x}\n", hotswap::type_description<T>, hotswap::fingerprint<T>);
}

int main() {
  print<anemone::v1::Account>();
  print<anemone::v2::Account>();
  print<anemone::v3::Account>();
  print<std::map<std::string, std::vector<std::optional<anemone::v2::Account>>>>();
  print_interface<anemone::AccountManagerInterface>();
  print_interface<anemone::AccountManagerInterface2>();
  print_interface<anemone::LeaderboardInterface>();
}
