// The part of OpenSSL's libcrypto (3.x) the seal check calls, declared here: <openssl/evp.h>
// alone would cost 6% of what including hotswap does, in every file. The declarations are
// OpenSSL's own, to the letter: programs/hotswap_seal.cpp includes both, which compiles only if
// they agree, and checks the two constants against OpenSSL's macros.
#pragma once

#include <cstddef>
#include <utility>

extern "C" {
struct evp_md_st;
struct evp_md_ctx_st;
struct evp_pkey_st;
struct evp_pkey_ctx_st;
struct engine_st;
struct ossl_lib_ctx_st;
struct ossl_decoder_ctx_st;
}

namespace hotswap::detail::libcrypto {

extern "C" {
// <openssl/evp.h>
evp_md_ctx_st* EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(evp_md_ctx_st* ctx);
const evp_md_st* EVP_sha256(void);
int EVP_DigestInit_ex(evp_md_ctx_st* ctx, const evp_md_st* type, engine_st* impl);
int EVP_DigestUpdate(evp_md_ctx_st* ctx, const void* d, std::size_t cnt);
int EVP_DigestFinal_ex(evp_md_ctx_st* ctx, unsigned char* md, unsigned int* s);
int EVP_DigestVerifyInit(evp_md_ctx_st* ctx, evp_pkey_ctx_st** pctx, const evp_md_st* type, engine_st* e,
                         evp_pkey_st* pkey);
int EVP_DigestVerify(evp_md_ctx_st* ctx, const unsigned char* sigret, std::size_t siglen, const unsigned char* tbs,
                     std::size_t tbslen);
void EVP_PKEY_free(evp_pkey_st* pkey);
int EVP_PKEY_get_base_id(const evp_pkey_st* pkey);
int EVP_PKEY_get_raw_public_key(const evp_pkey_st* pkey, unsigned char* pub, std::size_t* len);
// <openssl/err.h>
int ERR_set_mark(void);
int ERR_pop_to_mark(void);
// <openssl/decoder.h>
ossl_decoder_ctx_st* OSSL_DECODER_CTX_new_for_pkey(evp_pkey_st** pkey, const char* input_type, const char* input_struct,
                                                   const char* keytype, int selection, ossl_lib_ctx_st* libctx,
                                                   const char* propquery);
int OSSL_DECODER_from_data(ossl_decoder_ctx_st* ctx, const unsigned char** pdata, std::size_t* pdata_len);
void OSSL_DECODER_CTX_free(ossl_decoder_ctx_st* ctx);
}

/// A libcrypto object, freed by `Free` with its owner. (Not a std::unique_ptr with a deleter:
/// each such specialization costs 13 M compiler instructions in every file including hotswap.)
template <class T, void (*Free)(T*)>
class owned {
 public:
  explicit owned(T* object = nullptr) noexcept : object_(object) {}
  owned(owned&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
  owned& operator=(owned&& other) noexcept {
    std::swap(object_, other.object_);
    return *this;
  }
  ~owned() { reset(); }
  T* get() const noexcept { return object_; }
  explicit operator bool() const noexcept { return object_ != nullptr; }
  void reset() noexcept {
    if (object_) Free(std::exchange(object_, nullptr));
  }

 private:
  T* object_;
};

inline constexpr int ed25519 = 1087;          // EVP_PKEY_ED25519 (NID_ED25519)
inline constexpr int public_key_part = 0x86;  // EVP_PKEY_PUBLIC_KEY

}  // namespace hotswap::detail::libcrypto
