#include "apps/reactord/digest_cache.h"

namespace server {
namespace {

bool same(const struct timespec& a, const struct timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

}  // namespace

FileIdentity FileIdentity::of(const struct stat& st) {
  FileIdentity identity;
  identity.dev = st.st_dev;
  identity.ino = st.st_ino;
  identity.size = st.st_size;
  identity.mtime = st.st_mtim;
  identity.ctime = st.st_ctim;
  return identity;
}

bool FileIdentity::operator==(const FileIdentity& other) const {
  return dev == other.dev && ino == other.ino && size == other.size && same(mtime, other.mtime) &&
         same(ctime, other.ctime);
}

std::optional<protocol::Digest> DigestCache::find(const FileIdentity& identity) {
  auto it = index_.find(InodeKey{identity.dev, identity.ino});
  if (it == index_.end() || !(it->second->identity == identity)) {
    ++misses_;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++hits_;
  return it->second->digest;
}

void DigestCache::insert(const FileIdentity& identity, const protocol::Digest& digest) {
  if (capacity_ == 0) return;
  InodeKey key{identity.dev, identity.ino};
  auto it = index_.find(key);
  if (it != index_.end()) {
    // The same inode with a newer identity replaces the old entry.
    it->second->identity = identity;
    it->second->digest = digest;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {
    const Entry& oldest = lru_.back();
    index_.erase(InodeKey{oldest.identity.dev, oldest.identity.ino});
    lru_.pop_back();
  }
  lru_.push_front(Entry{identity, digest});
  index_.emplace(key, lru_.begin());
}

}  // namespace server
