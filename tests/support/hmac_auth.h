#pragma once
// An independent implementation of the handshake transcript of the wire contract
// (protocol.md, "Handshake"), for tests that speak the protocol by hand.
//
//   client mac = HMAC-SHA256(secret, "reactor-auth-v1 client" 0x00 server_nonce client_nonce)
//   server mac = HMAC-SHA256(secret, "reactor-auth-v1 server" 0x00 server_nonce client_nonce)
//
// Nonces here are the 32 raw bytes (the wire carries them as 64 lowercase hex characters).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace testsupport {

inline constexpr std::string_view kClientAuthLabel = "reactor-auth-v1 client";
inline constexpr std::string_view kServerAuthLabel = "reactor-auth-v1 server";
inline constexpr size_t kNonceBytes = 32;

std::string hex_encode(std::string_view bytes);  // lowercase
// Strict: even length, [0-9a-f] only (the contract's hex is lowercase).
std::optional<std::string> hex_decode(std::string_view hex);
std::string random_bytes(size_t n);  // RAND_bytes

// LABEL || 0x00 || server_nonce || client_nonce.
std::string auth_transcript(std::string_view label, std::string_view server_nonce,
                            std::string_view client_nonce);
// Raw 32-byte HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view message);
// Lowercase hex MACs as they appear in "auth" / "auth_ok".
std::string client_mac_hex(std::string_view secret, std::string_view server_nonce,
                           std::string_view client_nonce);
std::string server_mac_hex(std::string_view secret, std::string_view server_nonce,
                           std::string_view client_nonce);

// The key a secret file's TEXT yields: trailing '\n', '\r', ' ', '\t' stripped.
std::string secret_key_from_text(std::string_view text);

// JSON text of an "auth" header for the given nonces (raw), with a correct mac.
std::string make_auth_header(std::string_view secret, std::string_view server_nonce,
                             std::string_view client_nonce, int proto = 1,
                             const std::vector<std::string>& features = {
                                 "get", "stat", "list", "ping", "msg", "resume"});

// A JSON string literal for TEXT (quotes included), escaping '"', '\\' and control
// characters; other bytes are copied as they are.
std::string json_quote(std::string_view text);

}  // namespace testsupport
