// The ABI a module must share with the program that loads it, described in text that enters its
// note and hashed into the fingerprint both compare.
#pragma once

#include <cstdint>
#include <string_view>

#include "../../version.hpp"
#include "../common/hash.hpp"
#include "headers_digest.hpp"

#define HOTSWAP_DETAIL_TEXT(x) #x
#define HOTSWAP_DETAIL_STRING(x) HOTSWAP_DETAIL_TEXT(x)

#if defined(__clang__)
#define HOTSWAP_DETAIL_COMPILER                                              \
  "clang " HOTSWAP_DETAIL_STRING(__clang_major__) "." HOTSWAP_DETAIL_STRING( \
      __clang_minor__) "." HOTSWAP_DETAIL_STRING(__clang_patchlevel__)
#elif defined(__GNUC__)
#define HOTSWAP_DETAIL_COMPILER                                                                               \
  "g++ " HOTSWAP_DETAIL_STRING(__GNUC__) "." HOTSWAP_DETAIL_STRING(__GNUC_MINOR__) "." HOTSWAP_DETAIL_STRING( \
      __GNUC_PATCHLEVEL__)
#else
#define HOTSWAP_DETAIL_COMPILER "unknown compiler"
#endif

#if defined(__GLIBCXX__)
#define HOTSWAP_DETAIL_STDLIB \
  "libstdc++ " HOTSWAP_DETAIL_STRING(__GLIBCXX__) ", cxx11 abi " HOTSWAP_DETAIL_STRING(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define HOTSWAP_DETAIL_STDLIB \
  "libc++ " HOTSWAP_DETAIL_STRING(_LIBCPP_VERSION) ", abi " HOTSWAP_DETAIL_STRING(_LIBCPP_ABI_VERSION)
#else
#define HOTSWAP_DETAIL_STDLIB "unknown standard library"
#endif

#if defined(_GLIBCXX_DEBUG)  // debug containers have other layouts
#define HOTSWAP_DETAIL_DEBUG_CONTAINERS ", debug containers"
#else
#define HOTSWAP_DETAIL_DEBUG_CONTAINERS ""
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define HOTSWAP_DETAIL_EXCEPTIONS "exceptions on"
#else
#define HOTSWAP_DETAIL_EXCEPTIONS "exceptions off"
#endif

#if defined(__GXX_RTTI) || defined(__cpp_rtti)
#define HOTSWAP_DETAIL_RTTI "rtti on"
#else
#define HOTSWAP_DETAIL_RTTI "rtti off"
#endif

namespace hotswap::detail {

/// What a module must share with the program that loads it (hotswap::abi_description): the compiler and its version,
/// the standard library and its dual-ABI setting, hotswap's version and the digest of its headers (the layouts of what
/// program and module share, and the code that works on them), the pointer size, exceptions and RTTI. (Types cross
/// between them as they are, so any of these changing is a refusal.)
inline constexpr std::string_view abi_description =
    HOTSWAP_DETAIL_COMPILER "; " HOTSWAP_DETAIL_STDLIB HOTSWAP_DETAIL_DEBUG_CONTAINERS
                            "; hotswap " HOTSWAP_VERSION_STRING " headers " HOTSWAP_DETAIL_HEADERS_DIGEST
                            "; " HOTSWAP_DETAIL_STRING(__SIZEOF_POINTER__) "-byte pointers; " HOTSWAP_DETAIL_EXCEPTIONS
                                                                           "; " HOTSWAP_DETAIL_RTTI;
inline constexpr std::uint64_t abi_fingerprint = fnv1a(abi_description);

}  // namespace hotswap::detail
