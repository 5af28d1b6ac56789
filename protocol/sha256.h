#pragma once
// Streaming SHA-256 for the "end" trailer: the server hashes the file as it sends it,
// the client as it receives it, and neither holds more than one chunk.

#include <openssl/evp.h>

#include <cstddef>
#include <memory>
#include <string>

#include "protocol/types.h"

namespace protocol {

// Errors: an OpenSSL failure (in practice only allocation) makes ok() false and
// error() say why; finish() then returns all zeros. Such a digest matches no real
// file's, so a verification built on it fails closed. Check ok() where it matters.
class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&&) noexcept = default;
  Sha256& operator=(Sha256&&) noexcept = default;

  void update(const void* data, size_t len);
  // The digest of everything since construction or the last reset(). On success it
  // also resets, so the object is ready for the next input.
  Digest finish();
  void reset();

  // False after any OpenSSL failure until reset() (and for a moved-from object).
  bool ok() const { return ctx_ && error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx_;
  std::string error_;
};

// One shot; all zeros on an OpenSSL failure (see above).
Digest sha256(const void* data, size_t len);

}  // namespace protocol
