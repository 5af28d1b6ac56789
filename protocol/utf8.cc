#include "protocol/utf8.h"

namespace protocol {
namespace {

bool continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

}  // namespace

size_t utf8_sequence_length(const unsigned char* p, size_t avail) {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  // The ranges of the second byte are where overlongs (E0, F0), surrogates (ED) and
  // values above U+10FFFF (F4) are excluded; see RFC 3629 section 4.
  unsigned char lo = 0x80, hi = 0xbf;
  size_t len;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;  // continuation byte, C0/C1 (always overlong), F5..FF
  }
  if (avail < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    if (!continuation(p[i])) return 0;
  }
  return len;
}

bool valid_utf8(std::string_view text, size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_sequence_length(p + i, text.size() - i);
    if (n == 0) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace protocol
