// Prints the canonical description and fingerprint of each schema version the tests use. The
// test `fingerprints_agree_across_compilers` builds it with the other compiler and compares.
#include <fmt/format.h>

#include "anemone/account.hpp"

template <class T>
void print() {
  fmt::print("{} {:016x}\n", hotswap::type_description<T>, hotswap::fingerprint<T>);
}

int main() {
  print<anemone::v1::Account>();
  print<anemone::v2::Account>();
  print<anemone::v3::Account>();
  print<std::map<std::string, std::vector<std::optional<anemone::v2::Account>>>>();
}
