// A module's seal: a digest of its file, and optionally a signature of that digest, which
// hotswap-seal writes after the link (hotswap_add_module runs it) into a section HOTSWAP_MODULE
// reserves. The code server recomputes the digest over exactly the bytes it read, so a file torn
// by a rebuild or a copy that was not atomic, or modified since it was built, is refused before
// any of its code runs (checks of shape cannot see a torn file: each half is well formed). Given
// trusted keys, it also refuses a module not signed by one of them. SHA-256 and Ed25519 are
// OpenSSL's (libcrypto); functions are templates only so that a program that loads no module
// does not compile them.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../common/sinks.hpp"
#include "../common/std_algorithm.hpp"
#include "libcrypto.hpp"
#include "module_file.hpp"

namespace hotswap::detail {

/// The `hotswap_seal` section. All but the marker is zero until hotswap-seal writes it, and is
/// read as zeros while hashing (the digest cannot cover itself).
struct module_seal {
  char marker[16];
  unsigned char digest[32];     ///< SHA-256 of the file, this payload read as zeros
  unsigned char signature[64];  ///< Ed25519 signature of seal_message(digest); zeros: unsigned
  unsigned char signer[32];     ///< the signer's public key (raw); zeros: unsigned
};
static_assert(sizeof(module_seal) == 144 && offsetof(module_seal, digest) == 16);
// (An array, not a string_view of 16 chars: that constructor alone would cost 1.5% of what
// including hotswap does, checking the iterator concepts of its overloads.)
inline constexpr char seal_marker[sizeof(module_seal::marker)] = "hotswap seal 1";
inline constexpr std::size_t seal_payload = sizeof(module_seal) - sizeof seal_marker;

using seal_digest = std::array<unsigned char, 32>;
using md_context = libcrypto::owned<evp_md_ctx_st, libcrypto::EVP_MD_CTX_free>;

/// What is signed: the digest, under a label of its own (a signature made for anything else
/// never verifies as a seal).
template <class = void>
std::string seal_message(const seal_digest& digest) {
  return std::string("hotswap module seal 1\n") +
         std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

/// The digest of `file` whose seal starts at `seal_at`, its payload read as zeros.
template <class = void>
seal_digest digest_of_module(std::string_view file, std::size_t seal_at) {
  const md_context hashing(libcrypto::EVP_MD_CTX_new());
  static constexpr unsigned char zeros[seal_payload] = {};
  const std::size_t payload_at = seal_at + sizeof seal_marker;
  seal_digest digest{};
  unsigned int size = 0;
  if (!hashing || !libcrypto::EVP_DigestInit_ex(hashing.get(), libcrypto::EVP_sha256(), nullptr) ||
      !libcrypto::EVP_DigestUpdate(hashing.get(), file.data(), payload_at) ||
      !libcrypto::EVP_DigestUpdate(hashing.get(), zeros, seal_payload) ||
      !libcrypto::EVP_DigestUpdate(hashing.get(), file.data() + payload_at + seal_payload,
                                   file.size() - payload_at - seal_payload) ||
      !libcrypto::EVP_DigestFinal_ex(hashing.get(), digest.data(), &size))
    throw std::bad_alloc();  // libcrypto fails only to allocate
  return digest;
}

/// The seal in `section` (found by find_module_note; no data: there is none), checked for its
/// size and marker.
template <class = void>
result<module_seal> read_seal(std::string_view section, const std::string& path) {
  if (section.data() == nullptr)
    return file_error(errc::unsealed, path, "not sealed (no hotswap_seal section): build it with hotswap_add_module");
  module_seal seal;
  if (section.size() != sizeof seal || std::memcmp(section.data(), seal_marker, sizeof seal_marker) != 0)
    return file_error(errc::unsealed, path, "its hotswap_seal section is not a seal of this hotswap");
  std::memcpy(&seal, section.data(), sizeof seal);
  return seal;
}

// -- keys --

using evp_key = libcrypto::owned<evp_pkey_st, libcrypto::EVP_PKEY_free>;  // a public or private key

/// The Ed25519 public key in `pem` (as `openssl pkey -pubout` or `hotswap-seal keygen` write it).
/// (Read by OpenSSL's decoders: <openssl/pem.h> would cost a third of what including hotswap does.)
template <class = void>
evp_key read_public_key(std::string_view pem) {
  libcrypto::ERR_set_mark();  // what fails is said by the caller, not left in this thread's error queue
  evp_pkey_st* read = nullptr;
  const libcrypto::owned<ossl_decoder_ctx_st, libcrypto::OSSL_DECODER_CTX_free> decoder(
      libcrypto::OSSL_DECODER_CTX_new_for_pkey(&read, "PEM", nullptr, "ED25519", libcrypto::public_key_part, nullptr,
                                               nullptr));
  const auto* data = reinterpret_cast<const unsigned char*>(pem.data());
  std::size_t size = pem.size();
  if (decoder) libcrypto::OSSL_DECODER_from_data(decoder.get(), &data, &size);
  evp_key key(read);
  if (key && libcrypto::EVP_PKEY_get_base_id(key.get()) != libcrypto::ed25519) key.reset();
  libcrypto::ERR_pop_to_mark();
  return key;
}

/// A raw Ed25519 public key, and how it is shown: hex.
using raw_key = std::array<unsigned char, 32>;
template <class = void>
raw_key raw_public_key(const evp_pkey_st* key) {
  raw_key raw{};
  std::size_t size = raw.size();
  libcrypto::EVP_PKEY_get_raw_public_key(key, raw.data(), &size);
  return raw;
}
template <class = void>
std::string hex(const unsigned char* bytes, std::size_t size) {
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    text += hex_digits[bytes[i] >> 4];
    text += hex_digits[bytes[i] & 0xF];
  }
  return text;
}

// -- the check --

/// The seal of `file` matches its bytes and, when `trusted` is not empty, is signed by one of
/// those keys. Returns the module's build: its digest's first 8 bytes in hex, which tell two
/// builds of one vsn apart (the digest covers every byte of the file, so a build that differs in
/// anything, code or note, has another).
template <class = void>
result<std::string> check_seal(std::string_view file, std::string_view section, const std::vector<evp_key>& trusted,
                               const std::string& path) {
  const auto seal = read_seal(section, path);
  if (!seal) return seal.error();
  auto zero = [](const auto& bytes) {
    return std::all_of(std::begin(bytes), std::end(bytes), [](auto b) { return b == 0; });
  };
  if (zero(seal->digest))
    return file_error(errc::unsealed, path,
                      "not sealed: hotswap_add_module's post-link step (hotswap-seal) did not run");
  const seal_digest digest = digest_of_module(file, static_cast<std::size_t>(section.data() - file.data()));
  if (!std::equal(digest.begin(), digest.end(), seal->digest))
    return file_error(errc::torn, path,
                      "torn or modified since it was built: its bytes do not match its seal (a rebuild or a copy "
                      "that was not atomic, caught half-way?)");
  std::string build = hex(digest.data(), 8);
  if (trusted.empty()) return build;
  if (zero(seal->signer))
    return file_error(errc::untrusted, path,
                      "not signed, and this code server takes only modules signed by a trusted key "
                      "(code_server_options::trusted_keys; sign with HOTSWAP_SIGNING_KEY)");
  const std::string signer = hex(seal->signer, sizeof seal->signer);
  const auto key = std::find_if(trusted.begin(), trusted.end(), [&](const evp_key& candidate) {
    const raw_key raw = raw_public_key(candidate.get());
    return std::equal(raw.begin(), raw.end(), seal->signer);
  });
  if (key == trusted.end())
    return file_error(errc::untrusted, path, "signed by key " + signer + ", which this code server does not trust");
  const std::string message = seal_message(digest);
  const md_context verifying(libcrypto::EVP_MD_CTX_new());
  libcrypto::ERR_set_mark();
  const bool verified =
      verifying && libcrypto::EVP_DigestVerifyInit(verifying.get(), nullptr, nullptr, nullptr, key->get()) == 1 &&
      libcrypto::EVP_DigestVerify(verifying.get(), seal->signature, sizeof seal->signature,
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  libcrypto::ERR_pop_to_mark();
  if (!verified) return file_error(errc::untrusted, path, "its signature by key " + signer + " does not verify");
  return build;
}

}  // namespace hotswap::detail
