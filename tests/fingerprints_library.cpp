// Built as a shared library with hidden visibility: the fingerprints it computes must equal the host's.
#include "fingerprints.hpp"

extern "C" __attribute__((visibility("default"))) std::uint64_t account_fingerprint_shared_library(int vsn) {
  return account_fingerprint(vsn);
}
