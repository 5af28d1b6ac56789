// protocol/content_hash: the chunk tree of reactor-protocol(7) against values computed
// from the page's definition (by Python's hashlib, and by tests/support's independent
// OpenSSL code), at every chunk edge, however the data is sliced, and resumed.

#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "protocol/content_hash.h"
#include "protocol/hex.h"
#include "tests/support/files.h"

#pragma GCC diagnostic ignored "-Wold-style-cast"

constexpr double kTimeout = 60;

using protocol::ContentHash;
using protocol::Digest;
using protocol::DigestKind;
using protocol::kChunkSize;

namespace {

// python3: sha256(b"".join(sha256(chunk) for chunk) + len(b).to_bytes(8, "big"))
const char kEmptyRoot[] = "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc";
const char kHelloRoot[] = "23f003dc764250bdbe31c13b9b987c0c2d5954fd1d97e5dbd9d7851bc686ac87";  // "hello\n"

std::string pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

std::string tree_hex(const std::string& data, size_t slice) {
  ContentHash hash(DigestKind::kTree);
  for (size_t at = 0; at < data.size(); at += slice) hash.update(data.data() + at, std::min(slice, data.size() - at));
  Digest root = hash.finish();
  cr_assert(hash.ok(), "%s", hash.error().c_str());
  return protocol::to_hex(root);
}

void expect_str(const std::string& got, const std::string& want, const char* what) {
  cr_assert(got == want, "%s: %s, want %s", what, got.c_str(), want.c_str());
}

}  // namespace

Test(content_hash, known_roots, .timeout = kTimeout) {
  expect_str(tree_hex("", 1), kEmptyRoot, "empty file");
  expect_str(tree_hex("hello\n", 1), kHelloRoot, "hello");
  expect_str(testsupport::tree_root_hex("hello\n"), kHelloRoot, "the test support's own");
  cr_assert(tree_hex("hello\n", 6) != protocol::to_hex(protocol::sha256("hello\n", 6)), "a root is not a SHA-256");
}

Test(content_hash, every_chunk_edge_and_any_slicing, .timeout = kTimeout) {
  const std::string data = pattern(3 * kChunkSize + 2);
  for (size_t size : {size_t{1}, size_t{kChunkSize - 1}, size_t{kChunkSize}, size_t{kChunkSize + 1},
                      size_t{2 * kChunkSize}, data.size()}) {
    std::string part = data.substr(0, size);
    std::string want = testsupport::tree_root_hex(part);
    for (size_t slice : {size_t{1} << 20, size_t{4096}, size_t{777777}, size + 1}) {
      if (slice == 1 && size > 4096) continue;
      expect_str(tree_hex(part, slice), want, ("size " + std::to_string(size)).c_str());
    }
  }
}

Test(content_hash, chunk_arithmetic, .timeout = kTimeout) {
  cr_assert_eq(protocol::chunk_count(0), 0u);
  cr_assert_eq(protocol::chunk_count(1), 1u);
  cr_assert_eq(protocol::chunk_count(kChunkSize), 1u);
  cr_assert_eq(protocol::chunk_count(kChunkSize + 1), 2u);
  cr_assert_eq(protocol::chunk_length(kChunkSize + 5, 0), kChunkSize);
  cr_assert_eq(protocol::chunk_length(kChunkSize + 5, 1), 5u);
  cr_assert_eq(protocol::chunk_length(kChunkSize + 5, 2), 0u);
}

Test(content_hash, leaves_resume_and_tree_root_agree, .timeout = kTimeout) {
  const std::string data = pattern(2 * kChunkSize + 12345);
  ContentHash whole(DigestKind::kTree, /*keep_leaves=*/true);
  whole.update(data.data(), data.size());
  Digest root = whole.finish();
  cr_assert_eq(whole.leaves().size(), 3u);
  cr_assert(whole.leaves()[1] == protocol::sha256(data.data() + kChunkSize, kChunkSize));
  cr_assert(protocol::tree_root(whole.leaves(), data.size()) == root);

  // Resumed after the first two chunks: the same root from only the rest of the bytes.
  ContentHash resumed(DigestKind::kTree, true);
  resumed.resume({whole.leaves()[0], whole.leaves()[1]}, 2 * kChunkSize);
  resumed.update(data.data() + 2 * kChunkSize, data.size() - 2 * kChunkSize);
  cr_assert(resumed.finish() == root);
  cr_assert_eq(resumed.bytes(), data.size());
  cr_assert(resumed.leaves() == whole.leaves());

  // All of it held, the short last chunk too: nothing follows, and the root is the same.
  ContentHash complete(DigestKind::kTree);
  complete.resume(whole.leaves(), data.size());
  cr_assert(complete.finish() == root);

  // A wrong leaf given to resume() gives another root: nothing is taken on trust.
  ContentHash lied(DigestKind::kTree);
  lied.resume({whole.leaves()[1], whole.leaves()[0]}, 2 * kChunkSize);
  lied.update(data.data() + 2 * kChunkSize, data.size() - 2 * kChunkSize);
  cr_assert(lied.finish() != root);
}

Test(content_hash, version_1_is_the_plain_sha256, .timeout = kTimeout) {
  const std::string data = pattern(kChunkSize + 3);
  ContentHash hash(DigestKind::kSha256);
  hash.update(data.data(), 100);
  hash.update(data.data() + 100, data.size() - 100);
  cr_assert(hash.finish() == protocol::sha256(data.data(), data.size()));
  cr_assert(protocol::digest_kind_for(1) == DigestKind::kSha256);
  cr_assert(protocol::digest_kind_for(2) == DigestKind::kTree);
  cr_assert(protocol::digest_kind_for(3) == DigestKind::kTree);
}
