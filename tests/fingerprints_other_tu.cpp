#include "anemone/account.hpp"
#include "fingerprints.hpp"

std::uint64_t account_fingerprint_other_tu(int vsn) {
  using namespace anemone;
  switch (vsn) {
    case 1: return hotswap::fingerprint<v1::Account>;
    case 2: return hotswap::fingerprint<v2::Account>;
    case 3: return hotswap::fingerprint<v3::Account>;
    default: return 0;
  }
}
