// protocol/auth: the handshake proofs against a worked example computed independently
// with the openssl command line (the same example appears in the man page):
//
//   sn=$(printf '%02x' $(seq 0 31)); cn=$(printf '%02x' $(seq 32 63))
//   { printf 'reactor-auth-v1 client\0'; printf '%s%s' "$sn" "$cn" | xxd -r -p; } |
//     openssl dgst -sha256 -mac HMAC -macopt 'key:correct horse battery staple'
//
// and the same with "server" for the server proof.

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <set>
#include <string>

#include "protocol/auth.h"
#include "protocol/hex.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary: with mixed values Criterion 2.4.1's runner
// leaks timer bookkeeping, which fails the ASan build (seen with --jobs=2).
constexpr double kTimeout = 10;

using protocol::Mac;
using protocol::Nonce;

namespace {

const char kSecret[] = "correct horse battery staple";
const char kClientMac[] = "67952799f5a0e841627ab600dc21595c351357513fab86c28ff9b13fd83beabf";
const char kServerMac[] = "2926e73c470cababd1688f5da49a5414350651bf388637b362b0732cc4a59f57";

Nonce counting_nonce(uint8_t first) {
  Nonce n{};
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(first + i);
  return n;
}

const Nonce kServerNonce = counting_nonce(0x00);
const Nonce kClientNonce = counting_nonce(0x20);

void expect_hex(const Mac& mac, const char* expected) {
  const std::string got = protocol::to_hex(mac);
  cr_assert_str_eq(got.c_str(), expected);
}

}  // namespace

Test(auth, worked_example_client_proof, .timeout = kTimeout) {
  expect_hex(protocol::client_proof(kSecret, kServerNonce, kClientNonce), kClientMac);
}

Test(auth, worked_example_server_proof, .timeout = kTimeout) {
  expect_hex(protocol::server_proof(kSecret, kServerNonce, kClientNonce), kServerMac);
}

// The proofs reuse one keyed HMAC context while the secret stays the same: changing the
// secret must rekey it, and going back must give the first answers again. Checked against
// OpenSSL's one-shot HMAC(), which keys afresh every call, for several secrets in turn
// (the empty one included).
Test(auth, keyed_context_follows_the_secret, .timeout = kTimeout) {
  const std::string secrets[] = {kSecret, "another secret, also long", "", kSecret, std::string(200, 'k'), ""};
  for (int round = 0; round < 2; ++round) {
    for (const std::string& secret : secrets) {
      unsigned char transcript[23 + 64];
      std::memcpy(transcript, "reactor-auth-v1 client", 23);
      std::memcpy(transcript + 23, kServerNonce.data(), 32);
      std::memcpy(transcript + 55, kClientNonce.data(), 32);
      Mac want{};
      unsigned int len = 0;
      cr_assert_not_null(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), transcript,
                              sizeof transcript, want.data(), &len));
      Mac got = protocol::client_proof(secret, kServerNonce, kClientNonce);
      cr_assert(got == want, "secret of %zu bytes, round %d", secret.size(), round);
    }
  }
  expect_hex(protocol::client_proof(kSecret, kServerNonce, kClientNonce), kClientMac);
  expect_hex(protocol::server_proof(kSecret, kServerNonce, kClientNonce), kServerMac);
}

Test(auth, every_input_changes_the_proof, .timeout = kTimeout) {
  const Mac client = protocol::client_proof(kSecret, kServerNonce, kClientNonce);
  const Mac server = protocol::server_proof(kSecret, kServerNonce, kClientNonce);
  Nonce flipped = kClientNonce;
  flipped[31] ^= 1;
  const Mac variants[] = {
      client,
      server,  // swapped roles
      protocol::client_proof("correct horse battery stapler", kServerNonce, kClientNonce),
      protocol::client_proof("correct horse battery stapl", kServerNonce, kClientNonce),
      protocol::client_proof(kSecret, kClientNonce, kServerNonce),  // swapped nonces
      protocol::server_proof(kSecret, kClientNonce, kServerNonce),
      protocol::client_proof(kSecret, kServerNonce, flipped),
  };
  std::set<Mac> distinct(std::begin(variants), std::end(variants));
  cr_assert_eq(distinct.size(), std::size(variants));
}

Test(auth, secret_is_used_verbatim, .timeout = kTimeout) {
  // Whitespace stripping is the loader's job; here a trailing newline is part of the key.
  const Mac plain = protocol::client_proof(kSecret, kServerNonce, kClientNonce);
  const Mac newline =
      protocol::client_proof(std::string(kSecret) + "\n", kServerNonce, kClientNonce);
  cr_assert(plain != newline);
  // Bytes after an embedded NUL count too.
  const std::string with_nul("0123456789abcdef\0x", 18);
  const std::string with_nul2("0123456789abcdef\0y", 18);
  cr_assert(protocol::client_proof(with_nul, kServerNonce, kClientNonce) !=
            protocol::client_proof(with_nul2, kServerNonce, kClientNonce));
}

Test(auth, proofs_equal, .timeout = kTimeout) {
  const Mac a = protocol::client_proof(kSecret, kServerNonce, kClientNonce);
  Mac b = a;
  cr_assert(protocol::proofs_equal(a, b));
  for (size_t i : {0u, 15u, 31u}) {
    b = a;
    b[i] ^= 0x80;
    cr_assert(!protocol::proofs_equal(a, b), "difference at byte %zu not seen", i);
  }
  cr_assert(!protocol::proofs_equal(Mac{}, a));
}

Test(auth, random_nonces_differ, .timeout = kTimeout) {
  std::set<Nonce> seen;
  for (int i = 0; i < 64; ++i) {
    Nonce n{};
    std::string err;
    cr_assert(protocol::random_nonce(&n, &err), "%s", err.c_str());
    seen.insert(n);
  }
  cr_assert_eq(seen.size(), 64u);
}
