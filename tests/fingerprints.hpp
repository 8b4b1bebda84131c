// Account fingerprints computed elsewhere: in another translation unit and in a shared library,
// each from its own instantiation of the same templates.
#pragma once

#include <cstdint>

#include "anemone/account.hpp"

std::uint64_t account_fingerprint_other_tu(int vsn);
extern "C" std::uint64_t account_fingerprint_shared_library(int vsn);

inline std::uint64_t account_fingerprint(int vsn) {
  using namespace anemone;
  switch (vsn) {
    case 1:
      return hotswap::fingerprint<v1::Account>;
    case 2:
      return hotswap::fingerprint<v2::Account>;
    case 3:
      return hotswap::fingerprint<v3::Account>;
    default:
      return 0;
  }
}
