// protocol/hex: lowercase output, either case accepted, exact lengths only.

#include <criterion/criterion.h>

#include <array>
#include <cstdint>
#include <string>

#include "protocol/hex.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary: with mixed values Criterion 2.4.1's runner
// leaks timer bookkeeping, which fails the ASan build (seen with --jobs=2).
constexpr double kTimeout = 10;

using protocol::from_hex;
using protocol::to_hex;

namespace {
// cr_assert_str_eq keeps only the pointer it is given, so a temporary std::string's
// c_str() would dangle by the time it compares; hold the string here instead.
void expect_str(const std::string& got, const char* expected) {
  cr_assert_str_eq(got.c_str(), expected);
}
}  // namespace

Test(hex, encodes_lowercase, .timeout = kTimeout) {
  const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
  expect_str(to_hex(bytes, sizeof bytes), "00017f80abcdefff");
  expect_str(to_hex(bytes, 0), "");
}

Test(hex, round_trips_every_byte_value, .timeout = kTimeout) {
  std::array<uint8_t, 256> all{};
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i);
  const std::string text = to_hex(all);
  cr_assert_eq(text.size(), 512u);
  std::array<uint8_t, 256> back{};
  cr_assert(from_hex(text, &back));
  cr_assert(back == all);
}

Test(hex, accepts_uppercase_and_mixed_case, .timeout = kTimeout) {
  std::array<uint8_t, 4> out{};
  cr_assert(from_hex("DEADbeef", &out));
  const std::array<uint8_t, 4> expected = {0xde, 0xad, 0xbe, 0xef};
  cr_assert(out == expected);
}

Test(hex, rejects_bad_characters, .timeout = kTimeout) {
  std::array<uint8_t, 2> out{};
  const char* bad[] = {"12g4", "0x12", " 123", "123 ", "12-4", "zzzz", "12\xc3\xa9"};
  for (const char* text : bad) {
    std::string err;
    cr_assert(!from_hex(text, &out, &err), "accepted %s", text);
    cr_assert(!err.empty());
  }
  std::string err;
  cr_assert(!from_hex(std::string("12\0" "4", 4), &out, &err));
  cr_assert(err.find("position 2") != std::string::npos, "%s", err.c_str());
}

Test(hex, rejects_wrong_lengths, .timeout = kTimeout) {
  std::array<uint8_t, 32> out{};
  const std::string good(64, 'a');
  cr_assert(from_hex(good, &out));
  for (size_t len : {0u, 1u, 2u, 62u, 63u, 65u, 66u, 128u}) {
    std::string err;
    cr_assert(!from_hex(std::string(len, 'a'), &out, &err), "accepted length %zu", len);
    cr_assert(err.find("expected 64 hex digits") != std::string::npos, "%s", err.c_str());
  }
}

Test(hex, zero_length_output_needs_empty_text, .timeout = kTimeout) {
  uint8_t dummy = 0;
  cr_assert(from_hex("", &dummy, 0));
  cr_assert(!from_hex("00", &dummy, 0));
}
