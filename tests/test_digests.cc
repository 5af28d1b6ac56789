// Integration tests of the chunk tree on the server (reactor-protocol(7): CHUNK TREE,
// digests, get with a length), through RawClient in version 2: the digests of a file,
// in ranges, computed on the worker or taken from the cache; ranged gets, whose trailer
// still carries the whole file's root; and version 1, which has none of it.

#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <openssl/evp.h>

#include <string>

#include "tests/support/assertions.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"

using namespace testsupport;

namespace {

constexpr uint64_t kChunk = 1 << 20;

ServeOptions options() {
  ServeOptions o;
  o.prefix = "digests-test";
  o.files = {{"health.txt", kHealthText}};
  return o;
}

std::string leaf_of(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  cr_assert(EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr) == 1);
  return std::string(reinterpret_cast<const char*>(md), n);
}

// The raw chunk digests [from, from + count) of the pattern file (size, seed).
std::string leaves_of(uint64_t size, uint64_t seed, uint64_t from, uint64_t count) {
  std::string out;
  for (uint64_t i = from; i < from + count; ++i) {
    uint64_t start = i * kChunk;
    out += leaf_of(pattern_bytes(start, static_cast<size_t>(std::min(kChunk, size - start)), seed));
  }
  return out;
}

std::string digests_frame(const std::string& path, const std::string& extra = "") {
  return "{\"type\":\"digests\",\"path\":" + json_quote(path) + extra + "}";
}

Frame digests(RawClient& c, const std::string& path, const std::string& extra = "") {
  cr_assert(c.send_frame(digests_frame(path, extra)));
  return expect_frame(c, "digests_ok", Millis(30000));
}

}  // namespace

TestSuite(digests, .timeout = 120);

Test(digests, a_file_is_described_by_its_chunk_digests_and_root) {
  Served s = serve(options());
  const uint64_t size = 3 * kChunk + 1;  // four chunks, the last of one byte
  make_pattern(s.in_root("big.bin"), size, 3);
  RawClient c = connect_authenticated(s, 2);
  Frame all = digests(c, "big.bin");
  std::string root = tree_root_file_hex(s.in_root("big.bin")).value_or("?");
  cr_assert(all.string_field("root") == root, "%s, want root %s", all.header.c_str(), root.c_str());
  cr_assert_eq(all.number_field("size").value_or(-1), static_cast<double>(size));
  cr_assert_eq(all.number_field("mtime").value_or(-1), static_cast<double>(kMtime));
  cr_assert_eq(all.number_field("chunk").value_or(-1), static_cast<double>(kChunk));
  cr_assert_eq(all.number_field("from").value_or(-1), 0.0);
  cr_assert_eq(all.number_field("count").value_or(-1), 4.0);
  cr_assert(all.body == leaves_of(size, 3, 0, 4), "the body is not the four chunks' SHA-256s");

  // A range, and the ends of the file.
  Frame middle = digests(c, "big.bin", ",\"from\":1,\"count\":2");
  cr_assert_eq(middle.number_field("count").value_or(-1), 2.0);
  cr_assert(middle.body == leaves_of(size, 3, 1, 2));
  Frame past = digests(c, "big.bin", ",\"from\":3,\"count\":100");
  cr_assert_eq(past.number_field("count").value_or(-1), 1.0, "only one chunk is left from 3");
  Frame none = digests(c, "big.bin", ",\"from\":4");
  cr_assert_eq(none.number_field("count").value_or(-1), 0.0);
  cr_assert(none.body.empty());
  cr_assert(c.send_frame(digests_frame("big.bin", ",\"from\":5")));
  Frame beyond = expect_frame(c, "error");
  ASSERT_STR_EQ(beyond.code(), "bad_offset");

  // Path errors are get's.
  cr_assert(c.send_frame(digests_frame("nope.bin")));
  ASSERT_STR_EQ(expect_frame(c, "error").code(), "not_found");
  cr_assert(c.send_frame(digests_frame("../etc/passwd")));
  ASSERT_STR_EQ(expect_frame(c, "error").code(), "forbidden");
  cr_assert(c.send_frame(digests_frame("")));
  ASSERT_STR_EQ(expect_frame(c, "error").code(), "is_directory");

  // An empty file has no chunks and the root of nothing.
  cr_assert(write_file(s.in_root("empty"), ""));
  Frame empty = digests(c, "empty");
  cr_assert_eq(empty.number_field("count").value_or(-1), 0.0);
  cr_assert(empty.string_field("root") == std::string("af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc"));
  c.close();
  stop_cleanly(s);
}

Test(digests, a_ranged_get_sends_only_the_range_and_the_whole_files_root) {
  Served s = serve(options());
  const uint64_t size = 5 * kChunk + 777;
  make_pattern(s.in_root("r.bin"), size, 8);
  std::string root = tree_root_file_hex(s.in_root("r.bin")).value_or("?");
  RawClient c = connect_authenticated(s, 2);
  // Cold cache: the server computes the tree first (on its worker), then sends.
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"r.bin\",\"offset\":2097152,\"length\":1048576}"));
  Frame file = expect_frame(c, "file", Millis(30000));
  cr_assert_eq(file.number_field("offset").value_or(-1), 2.0 * kChunk);
  cr_assert_eq(file.number_field("body").value_or(-1), static_cast<double>(kChunk));
  cr_assert(file.body == pattern_bytes(2 * kChunk, kChunk, 8), "the range's bytes differ");
  Frame end = expect_frame(c, "end");
  cr_assert(end.string_field("root") == root, "%s, want %s", end.header.c_str(), root.c_str());
  cr_assert_not(end.string_field("sha256").has_value(), "version 2 sends no SHA-256");
  ASSERT_CONTAINS(s.server.stderr_text(), "computing the chunk tree");

  // Warm: the same from the cache; a length past the end is cut to the end; offset alone
  // is the rest of the file; a length of 0 is an empty body.
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"r.bin\",\"offset\":5242880,\"length\":99999999}"));
  file = expect_frame(c, "file");
  cr_assert_eq(file.body.size(), 777u);
  cr_assert(expect_frame(c, "end").string_field("root") == root);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"r.bin\",\"offset\":1}"));
  file = expect_frame(c, "file");
  cr_assert(file.body == pattern_bytes(1, size - 1, 8));
  cr_assert(expect_frame(c, "end").string_field("root") == root);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"r.bin\",\"offset\":7,\"length\":0}"));
  file = expect_frame(c, "file");
  cr_assert(file.body.empty());
  cr_assert(expect_frame(c, "end").string_field("root") == root);
  cr_assert_eq(count_in(s.server.stderr_text(), "computing the chunk tree"), 1u, "the tree was computed once");
  c.close();
  stop_cleanly(s);
}

Test(digests, a_whole_download_fills_the_cache_with_the_tree) {
  Served s = serve(options());
  const uint64_t size = 2 * kChunk + 5;
  make_pattern(s.in_root("w.bin"), size, 4);
  RawClient c = connect_authenticated(s, 2);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"w.bin\"}"));
  Frame file = expect_frame(c, "file");
  cr_assert_eq(file.body.size(), size);
  std::string root = tree_root_file_hex(s.in_root("w.bin")).value_or("?");
  cr_assert(expect_frame(c, "end").string_field("root") == root);
  Frame all = digests(c, "w.bin");
  cr_assert(all.body == leaves_of(size, 4, 0, 3));
  cr_assert_eq(count_in(s.server.stderr_text(), "computing the chunk tree"), 0u, "the send's own tree was cached");
  c.close();
  stop_cleanly(s);
}

Test(digests, version_1_has_no_digests_and_ignores_a_length) {
  Served s = serve(options());
  make_pattern(s.in_root("v1.bin"), 3000, 5);
  RawClient c = connect_authenticated(s, 1);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"v1.bin\",\"offset\":1000,\"length\":10}"));
  Frame file = expect_frame(c, "file");
  cr_assert_eq(file.body.size(), 2000u, "version 1 knows no length: the rest of the file");
  Frame end = expect_frame(c, "end");
  cr_assert(end.string_field("sha256") == sha256_file_hex(s.in_root("v1.bin")).value_or("?"), "%s", end.header.c_str());
  cr_assert_not(end.string_field("root").has_value());
  cr_assert(c.send_frame(digests_frame("v1.bin")));
  Frame refused = expect_frame(c, "error");
  ASSERT_STR_EQ(refused.code(), "unexpected_message");
  c.close();
  stop_cleanly(s);
}

Test(digests, a_client_gone_while_the_tree_is_computed_costs_nobody_else) {
  Served s = serve(options());
  make_pattern(s.in_root("huge.bin"), 256 * kChunk, 6);
  for (int i = 0; i < 3; ++i) {
    RawClient c = connect_authenticated(s, 2);
    cr_assert(c.send_frame(digests_frame("huge.bin")));
    c.abort();
  }
  assert_serves(s, s.downloads);
  RawClient c = connect_authenticated(s, 2);
  Frame all = digests(c, "huge.bin");
  cr_assert_eq(all.number_field("count").value_or(-1), 256.0);
  cr_assert(all.string_field("root") == tree_root_file_hex(s.in_root("huge.bin")).value_or("?"));
  c.close();
  stop_cleanly(s);
}
