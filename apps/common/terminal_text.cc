#include "apps/common/terminal_text.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cctype>
#include <cstring>

namespace app {
namespace {

struct Range {
  char32_t first;
  char32_t last;
};

// East Asian Wide and Fullwidth blocks, plus the emoji that terminals draw two
// columns wide. Whole blocks are taken where a block is mostly wide: counting a
// narrow character as wide only wastes a column, the reverse overflows the line.
constexpr Range kWide[] = {
    {0x1100, 0x115f},   {0x231a, 0x231b},   {0x2329, 0x232a},   {0x23e9, 0x23ec},
    {0x23f0, 0x23f0},   {0x23f3, 0x23f3},   {0x25fd, 0x25fe},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267f, 0x267f},   {0x2693, 0x2693},   {0x26a1, 0x26a1},
    {0x26aa, 0x26ab},   {0x26bd, 0x26be},   {0x26c4, 0x26c5},   {0x26ce, 0x26ce},
    {0x26d4, 0x26d4},   {0x26ea, 0x26ea},   {0x26f2, 0x26f3},   {0x26f5, 0x26f5},
    {0x26fa, 0x26fa},   {0x26fd, 0x26fd},   {0x2705, 0x2705},   {0x270a, 0x270b},
    {0x2728, 0x2728},   {0x274c, 0x274c},   {0x274e, 0x274e},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27b0, 0x27b0},   {0x27bf, 0x27bf},
    {0x2b1b, 0x2b1c},   {0x2b50, 0x2b50},   {0x2b55, 0x2b55},   {0x2e80, 0x303e},
    {0x3041, 0x33ff},   {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xa000, 0xa4cf},
    {0xa960, 0xa97f},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},   {0xfe10, 0xfe19},
    {0xfe30, 0xfe6f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x16fe0, 0x18cff},
    {0x1b000, 0x1b2ff}, {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf}, {0x1f18e, 0x1f18e},
    {0x1f191, 0x1f19a}, {0x1f200, 0x1f2ff}, {0x1f300, 0x1f64f}, {0x1f680, 0x1f6ff},
    {0x1f7e0, 0x1f7eb}, {0x1f90c, 0x1f9ff}, {0x1fa70, 0x1faff}, {0x20000, 0x2fffd},
    {0x30000, 0x3fffd},
};

// Only marks every terminal draws on top of the previous character. U+FE0F (emoji
// presentation) is deliberately absent: it widens "✈\uFE0F" to two columns.
constexpr Range kZeroWidth[] = {
    {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x0610, 0x061a},
    {0x064b, 0x065f}, {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x200b, 0x200f},
    {0x20d0, 0x20ff}, {0xfe00, 0xfe0e}, {0xfe20, 0xfe2f}, {0xe0100, 0xe01ef},
};

template <std::size_t N>
bool in_ranges(const Range (&ranges)[N], char32_t cp) {
  std::size_t lo = 0;
  std::size_t hi = N;
  while (lo < hi) {
    std::size_t mid = lo + (hi - lo) / 2;
    if (cp < ranges[mid].first) {
      hi = mid;
    } else if (cp > ranges[mid].last) {
      lo = mid + 1;
    } else {
      return true;
    }
  }
  return false;
}

unsigned byte_at(std::string_view s, std::size_t i) {
  return static_cast<unsigned char>(s[i]);
}

bool is_continuation(std::string_view s, std::size_t i, unsigned lo = 0x80, unsigned hi = 0xbf) {
  if (i >= s.size()) return false;
  unsigned b = byte_at(s, i);
  return b >= lo && b <= hi;
}

// Length of the well-formed UTF-8 sequence (Unicode table 3-7) starting at s[i], with
// its code point in *cp; 0 when s[i] does not start one. The second byte's narrowed
// ranges exclude overlong forms, surrogates and code points above U+10FFFF.
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t* cp) {
  unsigned b0 = byte_at(s, i);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    if (!is_continuation(s, i + 1)) return 0;
    *cp = ((b0 & 0x1fU) << 6) | (byte_at(s, i + 1) & 0x3fU);
    return 2;
  }
  if (b0 >= 0xe0 && b0 <= 0xef) {
    unsigned lo = b0 == 0xe0 ? 0xa0 : 0x80;
    unsigned hi = b0 == 0xed ? 0x9f : 0xbf;
    if (!is_continuation(s, i + 1, lo, hi) || !is_continuation(s, i + 2)) return 0;
    *cp = ((b0 & 0x0fU) << 12) | ((byte_at(s, i + 1) & 0x3fU) << 6) | (byte_at(s, i + 2) & 0x3fU);
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    unsigned lo = b0 == 0xf0 ? 0x90 : 0x80;
    unsigned hi = b0 == 0xf4 ? 0x8f : 0xbf;
    if (!is_continuation(s, i + 1, lo, hi) || !is_continuation(s, i + 2) ||
        !is_continuation(s, i + 3)) {
      return 0;
    }
    *cp = ((b0 & 0x07U) << 18) | ((byte_at(s, i + 1) & 0x3fU) << 12) |
          ((byte_at(s, i + 2) & 0x3fU) << 6) | (byte_at(s, i + 3) & 0x3fU);
    return 4;
  }
  return 0;
}

// C0, DEL and C1 controls, and the bidirectional embedding, override and isolate
// controls (U+202A..U+202E, U+2066..U+2069): invisible, they make a terminal show text
// in an order other than its bytes', which can hide what a file name or message really
// says (Trojan Source, CVE-2021-42574).
bool is_control(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void append_hex(std::string* out, unsigned byte) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('\\');
  out->push_back('x');
  out->push_back(kHex[(byte >> 4) & 0xfU]);
  out->push_back(kHex[byte & 0xfU]);
}

std::size_t char_width(char32_t cp) {
  if (in_ranges(kZeroWidth, cp)) return 0;
  return in_ranges(kWide, cp) ? 2 : 1;
}

}  // namespace

std::string escape_for_terminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    std::size_t len = decode_utf8(text, i, &cp);
    if (len == 0) {
      // Only the lead byte: a following byte may start a valid sequence of its own,
      // and stray continuation bytes are escaped one by one on later rounds.
      append_hex(&out, byte_at(text, i));
      ++i;
      continue;
    }
    if (is_control(cp)) {
      for (std::size_t k = 0; k < len; ++k) append_hex(&out, byte_at(text, i + k));
    } else if (cp == '\\') {
      out += "\\\\";
    } else {
      out.append(text, i, len);
    }
    i += len;
  }
  return out;
}

bool is_terminal_safe(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    std::size_t len = decode_utf8(text, i, &cp);
    if (len == 0 || is_control(cp)) return false;
    i += len;
  }
  return true;
}

std::size_t display_width(std::string_view text) {
  std::size_t columns = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    std::size_t len = decode_utf8(text, i, &cp);
    if (len == 0) {
      columns += 1;
      i += 1;
    } else {
      columns += char_width(cp);
      i += len;
    }
  }
  return columns;
}

std::string_view truncate_to_width(std::string_view text, std::size_t columns) {
  std::size_t used = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    std::size_t len = decode_utf8(text, i, &cp);
    std::size_t width = 1;
    if (len == 0) {
      len = 1;
    } else {
      width = char_width(cp);
    }
    if (used + width > columns) break;
    used += width;
    i += len;
  }
  return text.substr(0, i);
}

bool terminal_is_dumb() {
  // As GNU grep's --color=auto: a terminal that does not say what it is (TERM unset or
  // empty) is not sent escape sequences either.
  const char* term = std::getenv("TERM");
  return term == nullptr || term[0] == '\0' || std::strcmp(term, "dumb") == 0;
}

bool stream_wants_color(int fd) {
  if (isatty(fd) != 1) return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && no_color[0] != '\0') return false;
  return !terminal_is_dumb();
}

bool locale_is_utf8() {
  const char* value = nullptr;
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    value = std::getenv(name);
    if (value != nullptr && value[0] != '\0') break;
    value = nullptr;
  }
  if (value == nullptr) return false;
  // The codeset is what follows '.', up to a '@' modifier: "en_US.UTF-8", "de_DE.utf8@euro";
  // "C.UTF-8" included.
  const char* dot = std::strchr(value, '.');
  if (dot == nullptr) return false;
  std::string codeset;
  for (const char* c = dot + 1; *c != '\0' && *c != '@'; ++c) {
    if (*c != '-' && *c != '_') codeset += static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
  }
  return codeset == "utf8";
}

}  // namespace app
