#include "fingerprints.hpp"

std::uint64_t account_fingerprint_other_tu(int vsn) {
  return account_fingerprint(vsn);
}
