#include "protocol/auth.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "protocol/openssl_error.h"

namespace protocol {
namespace {

// The label includes its terminating NUL: sizeof counts it, and the contract puts a
// 0x00 between the label and the nonces.
constexpr char kClientLabel[] = "reactor-auth-v1 client";
constexpr char kServerLabel[] = "reactor-auth-v1 server";
static_assert(sizeof kClientLabel == sizeof kServerLabel, "labels share one layout");
constexpr size_t kLabelLen = sizeof kClientLabel;

constexpr size_t kTranscriptLen = kLabelLen + 2 * sizeof(Nonce);
constexpr size_t kBoundTranscriptLen = kTranscriptLen + sizeof(ChannelBinding);

struct MacFree {
  void operator()(EVP_MAC* mac) const { EVP_MAC_free(mac); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

// HMAC-SHA256 keyed with `secret`, kept from one proof to the next. Both programs use one
// secret for every handshake, and the one-shot HMAC() would fetch the algorithm from the
// provider and hash the key's pads again on each call: a third of a handshake's user-space
// CPU. EVP_MAC_init with no key restarts a keyed context with the key it already has.
// thread_local: each thread gets its own context, so no locking is needed.
class KeyedHmac {
 public:
  ~KeyedHmac() { OPENSSL_cleanse(key_.data(), key_.size()); }

  bool compute(std::string_view secret, const unsigned char* data, size_t len, Mac* out) {
    if (ctx_ && secret == key_) {
      if (EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) != 1) return false;
    } else if (!rekey(secret)) {
      return false;
    }
    size_t out_len = 0;
    return EVP_MAC_update(ctx_.get(), data, len) == 1 &&
           EVP_MAC_final(ctx_.get(), out->data(), &out_len, out->size()) == 1 && out_len == out->size();
  }

 private:
  bool rekey(std::string_view secret) {
    ctx_.reset();
    OPENSSL_cleanse(key_.data(), key_.size());
    key_.clear();
    std::unique_ptr<EVP_MAC, MacFree> hmac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!hmac) return false;
    MacCtxPtr ctx(EVP_MAC_CTX_new(hmac.get()));
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    // A zero-length key still needs a valid pointer: HMAC treats a null key as "keep".
    static const unsigned char kEmpty[1] = {0};
    const unsigned char* key = secret.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(secret.data());
    if (!ctx || EVP_MAC_init(ctx.get(), key, secret.size(), params) != 1) return false;
    ctx_ = std::move(ctx);
    key_.assign(secret);
    return true;
  }

  MacCtxPtr ctx_;
  std::string key_;  // what ctx_ is keyed with
};

Mac proof(const char (&label)[kLabelLen], std::string_view secret, const Nonce& server_nonce,
          const Nonce& client_nonce, const ChannelBinding* binding) {
  unsigned char transcript[kBoundTranscriptLen];
  std::memcpy(transcript, label, kLabelLen);
  std::memcpy(transcript + kLabelLen, server_nonce.data(), server_nonce.size());
  std::memcpy(transcript + kLabelLen + server_nonce.size(), client_nonce.data(),
              client_nonce.size());
  size_t len = kTranscriptLen;
  if (binding != nullptr) {
    std::memcpy(transcript + kTranscriptLen, binding->data(), binding->size());
    len = kBoundTranscriptLen;
  }
  thread_local KeyedHmac hmac;
  Mac mac{};
  if (hmac.compute(secret, transcript, len, &mac)) return mac;
  ERR_clear_error();
  if (RAND_bytes(mac.data(), static_cast<int>(mac.size())) == 1) return mac;
  // Both the MAC and the CSPRNG failed: libcrypto is unusable. Returning anything would
  // hand the comparison a value an attacker might predict, and this signature has no
  // way to report failure, so this one place stops the process instead.
  std::abort();
}

}  // namespace

bool random_nonce(Nonce* nonce, std::string* err) {
  if (RAND_bytes(nonce->data(), static_cast<int>(nonce->size())) != 1) {
    *err = openssl_error("RAND_bytes");
    return false;
  }
  return true;
}

Mac client_proof(std::string_view secret, const Nonce& server_nonce, const Nonce& client_nonce,
                 const ChannelBinding* binding) {
  return proof(kClientLabel, secret, server_nonce, client_nonce, binding);
}

Mac server_proof(std::string_view secret, const Nonce& server_nonce, const Nonce& client_nonce,
                 const ChannelBinding* binding) {
  return proof(kServerLabel, secret, server_nonce, client_nonce, binding);
}

bool proofs_equal(const Mac& a, const Mac& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace protocol
