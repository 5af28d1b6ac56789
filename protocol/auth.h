#pragma once
// The handshake's proofs: each side shows it holds the shared secret by an HMAC over
// both nonces, with a role label so a client proof can never be replayed as a server
// proof (or the reverse):
//
//   client mac = HMAC-SHA256(secret, "reactor-auth-v1 client" 0x00 server_nonce client_nonce)
//   server mac = HMAC-SHA256(secret, "reactor-auth-v1 server" 0x00 server_nonce client_nonce)
//
// The nonces go in as their 32 raw bytes, server nonce first in both proofs. The secret
// is used as given (the loader in apps/common strips whitespace and enforces the
// contract's 16-byte minimum).
//
// Inside TLS the transcript ends with the 32-byte channel binding of the TLS session
// (the keying material exporter, see protocol/tls.h): a proof made inside one TLS
// session is worthless in any other, so a party in the middle that terminates TLS on
// both sides cannot relay the exchange.

#include <string>
#include <string_view>

#include "protocol/types.h"

namespace protocol {

// Fills *nonce from the OpenSSL CSPRNG (RAND_bytes).
bool random_nonce(Nonce* nonce, std::string* err);

// The proofs above. HMAC-SHA256 with a working libcrypto cannot fail except for lack of
// memory, so these return the Mac directly. Should it fail anyway, the result is fresh
// random bytes: a value no peer can match, so authentication fails closed rather than
// comparing against something predictable such as all zeros. (If even the CSPRNG fails,
// the process aborts: see auth.cc. Nonce generation would have failed first.)
// `binding`: the TLS channel binding, or null outside TLS.
Mac client_proof(std::string_view secret, const Nonce& server_nonce, const Nonce& client_nonce,
                 const ChannelBinding* binding = nullptr);
Mac server_proof(std::string_view secret, const Nonce& server_nonce, const Nonce& client_nonce,
                 const ChannelBinding* binding = nullptr);

// Constant-time comparison (CRYPTO_memcmp): the time taken says nothing about where
// the first differing byte is.
bool proofs_equal(const Mac& a, const Mac& b);

}  // namespace protocol
