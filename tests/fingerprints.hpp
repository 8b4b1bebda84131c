// Account fingerprints computed elsewhere: in another translation unit and in a shared library.
#pragma once

#include <cstdint>

std::uint64_t account_fingerprint_other_tu(int vsn);
extern "C" std::uint64_t account_fingerprint_shared_library(int vsn);
