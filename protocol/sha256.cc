#include "protocol/sha256.h"

#include "protocol/openssl_error.h"

namespace protocol {
namespace {

// With EVP_sha256() every EVP_DigestInit_ex looks the algorithm up in the provider again
// (OpenSSL 3): measurable when a server sends thousands of small files a second. A
// fetched EVP_MD is OpenSSL's way to look it up once; it lives as long as the process.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) {
    error_ = openssl_error("EVP_MD_CTX_new");
    return;
  }
  reset();
}

void Sha256::reset() {
  if (!ctx_) return;
  error_.clear();
  if (EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr) != 1) {
    error_ = openssl_error("EVP_DigestInit_ex");
  }
}

void Sha256::update(const void* data, size_t len) {
  if (!ok() || len == 0) return;
  if (EVP_DigestUpdate(ctx_.get(), data, len) != 1) error_ = openssl_error("EVP_DigestUpdate");
}

Digest Sha256::finish() {
  Digest digest{};
  if (!ok()) return digest;
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest.data(), &n) != 1 || n != digest.size()) {
    error_ = openssl_error("EVP_DigestFinal_ex");
    digest.fill(0);
    return digest;  // stays failed until reset(), so the caller can still see ok() == false
  }
  reset();
  return digest;
}

Digest sha256(const void* data, size_t len) {
  Digest digest{};
  unsigned int n = 0;
  if (EVP_Digest(data, len, digest.data(), &n, sha256_md(), nullptr) != 1 || n != digest.size()) {
    digest.fill(0);
  }
  return digest;
}

}  // namespace protocol
