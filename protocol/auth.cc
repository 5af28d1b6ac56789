#include "protocol/auth.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>

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

Mac proof(const char (&label)[kLabelLen], std::string_view secret, const Nonce& server_nonce,
          const Nonce& client_nonce) {
  unsigned char transcript[kTranscriptLen];
  std::memcpy(transcript, label, kLabelLen);
  std::memcpy(transcript + kLabelLen, server_nonce.data(), server_nonce.size());
  std::memcpy(transcript + kLabelLen + server_nonce.size(), client_nonce.data(),
              client_nonce.size());
  Mac mac{};
  // HMAC() is the one-shot form: no context object to own, nothing to free.
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), transcript,
           sizeof transcript, mac.data(), &mac_len) != nullptr &&
      mac_len == mac.size()) {
    return mac;
  }
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

Mac client_proof(std::string_view secret, const Nonce& server_nonce, const Nonce& client_nonce) {
  return proof(kClientLabel, secret, server_nonce, client_nonce);
}

Mac server_proof(std::string_view secret, const Nonce& server_nonce, const Nonce& client_nonce) {
  return proof(kServerLabel, secret, server_nonce, client_nonce);
}

bool proofs_equal(const Mac& a, const Mac& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace protocol
