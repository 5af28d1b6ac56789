#include "protocol/sha256.h"

#include "protocol/openssl_error.h"

namespace protocol {

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
  if (EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
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
  if (EVP_Digest(data, len, digest.data(), &n, EVP_sha256(), nullptr) != 1 || n != digest.size()) {
    digest.fill(0);
  }
  return digest;
}

}  // namespace protocol
