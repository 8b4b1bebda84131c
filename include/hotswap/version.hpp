// hotswap's version. It enters the ABI fingerprint of every module built against it.
#pragma once

#define HOTSWAP_VERSION_MAJOR 0
#define HOTSWAP_VERSION_MINOR 1
#define HOTSWAP_VERSION_PATCH 0
#define HOTSWAP_VERSION_STRING "0.1.0"

namespace hotswap {
inline constexpr int version_major = HOTSWAP_VERSION_MAJOR;
inline constexpr int version_minor = HOTSWAP_VERSION_MINOR;
inline constexpr int version_patch = HOTSWAP_VERSION_PATCH;
}  // namespace hotswap
