// The one hash of hotswap's fingerprints (schemas, interfaces, messages, states, the ABI).
#pragma once

#include <cstdint>
#include <string_view>

namespace hotswap::detail {

/// FNV-1a, 64 bits: the same on every compiler, which is all a fingerprint needs. Fingerprints
/// of several parts continue one hash: fnv1a(b, fnv1a(a)).
inline constexpr std::uint64_t fnv1a_start = 0xcbf29ce484222325ULL;

constexpr std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = fnv1a_start) {
  for (const char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return hash;
}

}  // namespace hotswap::detail
