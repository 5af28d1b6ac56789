// DigestCache: digests of files already sent whole (apps/reactord).
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include "apps/reactord/digest_cache.h"

using server::DigestCache;
using server::FileIdentity;

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
  cr_assert(cache.find(identity(1)) == digest(0xaa));
  cr_assert_not(cache.find(identity(1, 101)).has_value(), "a different size must miss");
  cr_assert_not(cache.find(identity(1, 100, 1)).has_value(), "a nanosecond of mtime must miss");
  FileIdentity other_ctime = identity(1);
  other_ctime.ctime.tv_sec += 1;
  cr_assert_not(cache.find(other_ctime).has_value(), "a different ctime must miss");
  cr_assert_not(cache.find(identity(2)).has_value());
  cr_assert_eq(cache.hits(), 1u);
  cr_assert_eq(cache.misses(), 4u);
}

Test(digest_cache, a_newer_identity_replaces_the_entry_for_its_inode) {
  DigestCache cache;
  cache.insert(identity(1), digest(0xaa));
  cache.insert(identity(1, 200), digest(0xbb));
  cr_assert_eq(cache.size(), 1u);
  cr_assert_not(cache.find(identity(1)).has_value());
  cr_assert(cache.find(identity(1, 200)) == digest(0xbb));
}

Test(digest_cache, the_least_recently_used_entry_goes_first) {
  DigestCache cache(3);
  cache.insert(identity(1), digest(1));
  cache.insert(identity(2), digest(2));
  cache.insert(identity(3), digest(3));
  cr_assert(cache.find(identity(1)).has_value());  // 1 is now the most recent
  cache.insert(identity(4), digest(4));            // evicts 2
  cr_assert_eq(cache.size(), 3u);
  cr_assert(cache.find(identity(1)).has_value());
  cr_assert_not(cache.find(identity(2)).has_value());
  cr_assert(cache.find(identity(3)).has_value());
  cr_assert(cache.find(identity(4)).has_value());
}

Test(digest_cache, capacity_zero_caches_nothing) {
  DigestCache cache(0);
  cache.insert(identity(1), digest(1));
  cr_assert_eq(cache.size(), 0u);
  cr_assert_not(cache.find(identity(1)).has_value());
}
