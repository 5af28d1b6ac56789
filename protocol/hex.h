#pragma once
// Hex text for the 32-byte values on the wire (nonces, MACs, digests).
//
// Output is always lowercase, as the contract writes it. Input accepts both cases:
// the contract only says "hex", being lenient here costs nothing, and a peer that
// upper-cases still decodes to the same bytes. Length is exact: a value of N bytes is
// exactly 2N digits, never shorter, never longer, no prefix, no whitespace.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace protocol {

std::string to_hex(const void* data, size_t len);

template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& bytes) {
  return to_hex(bytes.data(), N);
}

// Decodes exactly 2 * out_len hex digits into out[0..out_len). On failure returns false,
// leaves out unspecified and, if err is non-null, says why
// (`expected 64 hex digits, got 63`, `bad hex digit 'g' at position 5`).
bool from_hex(std::string_view text, uint8_t* out, size_t out_len, std::string* err = nullptr);

template <size_t N>
bool from_hex(std::string_view text, std::array<uint8_t, N>* out, std::string* err = nullptr) {
  return from_hex(text, out->data(), N, err);
}

}  // namespace protocol
