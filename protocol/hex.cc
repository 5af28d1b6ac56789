#include "protocol/hex.h"

#include <cstdio>

namespace protocol {
namespace {

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string to_hex(const void* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* bytes = static_cast<const uint8_t*>(data);
  std::string out(len * 2, '\0');
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return out;
}

bool from_hex(std::string_view text, uint8_t* out, size_t out_len, std::string* err) {
  if (text.size() != out_len * 2) {
    if (err) {
      *err = "expected " + std::to_string(out_len * 2) + " hex digits, got " +
             std::to_string(text.size());
    }
    return false;
  }
  for (size_t i = 0; i < out_len; ++i) {
    const int hi = digit_value(text[2 * i]);
    const int lo = digit_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      if (err) {
        const size_t pos = hi < 0 ? 2 * i : 2 * i + 1;
        char msg[64];
        std::snprintf(msg, sizeof msg, "bad hex digit 0x%02x at position %zu",
                      static_cast<unsigned char>(text[pos]), pos);
        *err = msg;
      }
      return false;
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace protocol
