// protocol/sha256 against the FIPS 180-2 test vectors, and streaming == one shot.

#include <criterion/criterion.h>

#include <string>

#include "protocol/hex.h"
#include "protocol/sha256.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary: with mixed values Criterion 2.4.1's runner
// leaks timer bookkeeping, which fails the ASan build (seen with --jobs=2).
constexpr double kTimeout = 30;

using protocol::Digest;
using protocol::Sha256;
using protocol::to_hex;

namespace {
const char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const char kMillionA[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
// cr_assert_str_eq keeps only the pointer it is given, so a temporary std::string's
// c_str() would dangle by the time it compares; hold the string here instead.
void expect_str(const std::string& got, const char* expected) {
  cr_assert_str_eq(got.c_str(), expected);
}
}  // namespace

Test(digest, empty_input, .timeout = kTimeout) {
  expect_str(to_hex(protocol::sha256("", 0)), kEmpty);
  Sha256 h;
  cr_assert(h.ok());
  expect_str(to_hex(h.finish()), kEmpty);
}

Test(digest, abc, .timeout = kTimeout) {
  expect_str(to_hex(protocol::sha256("abc", 3)), kAbc);
  Sha256 h;
  h.update("a", 1);
  h.update("bc", 2);
  expect_str(to_hex(h.finish()), kAbc);
  cr_assert(h.ok(), "%s", h.error().c_str());
}

Test(digest, million_a, .timeout = kTimeout) {
  const std::string a(1000000, 'a');
  expect_str(to_hex(protocol::sha256(a.data(), a.size())), kMillionA);
  Sha256 h;
  for (size_t i = 0; i < 1000; ++i) h.update(a.data(), 1000);
  expect_str(to_hex(h.finish()), kMillionA);
}

Test(digest, odd_sized_pieces_equal_one_shot, .timeout = kTimeout) {
  std::string data(100003, '\0');
  uint32_t x = 12345;
  for (char& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  const Digest expected = protocol::sha256(data.data(), data.size());
  const size_t pieces[] = {1, 2, 3, 7, 63, 64, 65, 127, 1000, 4099};
  for (size_t piece : pieces) {
    Sha256 h;
    for (size_t off = 0; off < data.size(); off += piece) {
      const size_t n = data.size() - off < piece ? data.size() - off : piece;
      h.update(data.data() + off, n);
    }
    cr_assert(h.finish() == expected, "piece size %zu", piece);
  }
}

Test(digest, finish_resets_and_reset_discards, .timeout = kTimeout) {
  Sha256 h;
  h.update("abc", 3);
  expect_str(to_hex(h.finish()), kAbc);
  // finish() left it fresh: the next digest covers only what follows.
  h.update("abc", 3);
  expect_str(to_hex(h.finish()), kAbc);
  h.update("garbage", 7);
  h.reset();
  expect_str(to_hex(h.finish()), kEmpty);
}

Test(digest, moved_object_keeps_state, .timeout = kTimeout) {
  Sha256 a;
  a.update("ab", 2);
  Sha256 b = std::move(a);
  b.update("c", 1);
  expect_str(to_hex(b.finish()), kAbc);
}
