#pragma once
// Fixed-size binary values that travel as 64 lowercase hex digits on the wire.
// Distinct aliases (not one Bytes32) document intent at each use; they are the same
// type to the compiler, so nothing stops a Mac being passed as a Digest.

#include <array>
#include <cstdint>

namespace protocol {

using Nonce = std::array<uint8_t, 32>;   // 32 random bytes from RAND_bytes
using Mac = std::array<uint8_t, 32>;     // HMAC-SHA256 output
using Digest = std::array<uint8_t, 32>;  // SHA-256 output
using ChannelBinding = std::array<uint8_t, 32>;  // TLS keying material for the auth transcript

}  // namespace protocol
