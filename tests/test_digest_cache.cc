// DigestCache: digests of files already hashed whole (apps/reactord), SHA-256 and chunk trees.
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include "apps/reactord/digest_cache.h"

using server::DigestCache;
using server::FileIdentity;
using server::ChunkTree;
constexpr protocol::DigestKind kSha = protocol::DigestKind::kSha256;
constexpr protocol::DigestKind kTree = protocol::DigestKind::kTree;

TestSuite(digest_cache, .timeout = 10);

namespace {

FileIdentity identity(ino_t ino, off_t size = 100, long mtime_ns = 0) {
  struct stat st {};
  st.st_dev = 7;
  st.st_ino = ino;
  st.st_size = size;
  st.st_mtim.tv_sec = 1700000000;
  st.st_mtim.tv_nsec = mtime_ns;
  st.st_ctim = st.st_mtim;
  return FileIdentity::of(st);
}

protocol::Digest digest(uint8_t fill) {
  protocol::Digest d;
  d.fill(fill);
  return d;
}

}  // namespace

Test(digest_cache, a_hit_needs_the_whole_identity) {
  DigestCache cache;
  cache.insert(identity(1), digest(0xaa));
  cr_assert(cache.find(identity(1), kSha) == digest(0xaa));
  cr_assert_not(cache.find(identity(1, 101), kSha).has_value(), "a different size must miss");
  cr_assert_not(cache.find(identity(1, 100, 1), kSha).has_value(), "a nanosecond of mtime must miss");
  FileIdentity other_ctime = identity(1);
  other_ctime.ctime.tv_sec += 1;
  cr_assert_not(cache.find(other_ctime, kSha).has_value(), "a different ctime must miss");
  cr_assert_not(cache.find(identity(2), kSha).has_value());
  cr_assert_eq(cache.hits(), 1u);
  cr_assert_eq(cache.misses(), 4u);
}

Test(digest_cache, a_newer_identity_replaces_the_entry_for_its_inode) {
  DigestCache cache;
  cache.insert(identity(1), digest(0xaa));
  cache.insert(identity(1, 200), digest(0xbb));
  cr_assert_eq(cache.size(), 1u);
  cr_assert_not(cache.find(identity(1), kSha).has_value());
  cr_assert(cache.find(identity(1, 200), kSha) == digest(0xbb));
}

Test(digest_cache, the_least_recently_used_entry_goes_first) {
  DigestCache cache(3);
  cache.insert(identity(1), digest(1));
  cache.insert(identity(2), digest(2));
  cache.insert(identity(3), digest(3));
  cr_assert(cache.find(identity(1), kSha).has_value());  // 1 is now the most recent
  cache.insert(identity(4), digest(4));            // evicts 2
  cr_assert_eq(cache.size(), 3u);
  cr_assert(cache.find(identity(1), kSha).has_value());
  cr_assert_not(cache.find(identity(2), kSha).has_value());
  cr_assert(cache.find(identity(3), kSha).has_value());
  cr_assert(cache.find(identity(4), kSha).has_value());
}

Test(digest_cache, capacity_zero_caches_nothing) {
  DigestCache cache(0);
  cache.insert(identity(1), digest(1));
  cr_assert_eq(cache.size(), 0u);
  cr_assert_not(cache.find(identity(1), kSha).has_value());
}

namespace {

std::shared_ptr<const ChunkTree> tree(uint8_t fill, size_t leaves) {
  auto t = std::make_shared<ChunkTree>();
  t->root = digest(fill);
  t->leaves.assign(leaves, digest(static_cast<uint8_t>(fill + 1)));
  return t;
}

}  // namespace

Test(digest_cache, the_two_kinds_are_kept_side_by_side_and_miss_apart) {
  DigestCache cache;
  cache.insert(identity(1), digest(0xaa));
  cr_assert_not(cache.find(identity(1), kTree).has_value(), "a SHA-256 is not a tree root");
  cr_assert_null(cache.find_tree(identity(1)).get());
  cache.insert_tree(identity(1), tree(0x10, 3));
  cr_assert(cache.find(identity(1), kTree) == digest(0x10));
  cr_assert(cache.find(identity(1), kSha) == digest(0xaa), "adding the tree keeps the SHA-256");
  std::shared_ptr<const ChunkTree> got = cache.find_tree(identity(1));
  cr_assert_not_null(got.get());
  cr_assert_eq(got->leaves.size(), 3u);
  cr_assert_eq(cache.leaf_bytes(), 3 * sizeof(protocol::Digest));
  cr_assert_eq(cache.hits(), 3u);
  cr_assert_eq(cache.misses(), 2u);
}

Test(digest_cache, a_changed_file_loses_both_kinds) {
  DigestCache cache;
  cache.insert(identity(1), digest(0xaa));
  cache.insert_tree(identity(1), tree(0x10, 2));
  cache.insert(identity(1, 100, 5), digest(0xbb));  // the same inode, written since
  cr_assert(cache.find(identity(1, 100, 5), kSha) == digest(0xbb));
  cr_assert_null(cache.find_tree(identity(1, 100, 5)).get(), "the old tree describes another file");
  cr_assert_eq(cache.leaf_bytes(), 0u);
}

Test(digest_cache, chunk_digests_are_bounded_in_bytes) {
  const size_t leaf = sizeof(protocol::Digest);
  DigestCache cache(100, 10 * leaf);
  cache.insert_tree(identity(1), tree(1, 4));
  cache.insert_tree(identity(2), tree(2, 4));
  cr_assert_eq(cache.leaf_bytes(), 8 * leaf);
  cache.insert_tree(identity(3), tree(3, 4));  // over the budget: the oldest goes
  cr_assert_eq(cache.leaf_bytes(), 8 * leaf);
  cr_assert_null(cache.find_tree(identity(1)).get());
  cr_assert_not_null(cache.find_tree(identity(2)).get());
  cr_assert_not_null(cache.find_tree(identity(3)).get());
  cache.insert_tree(identity(4), tree(4, 11));  // alone over the budget: never cached
  cr_assert_null(cache.find_tree(identity(4)).get());
  cr_assert_eq(cache.leaf_bytes(), 8 * leaf);
}
