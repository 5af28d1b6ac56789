#include "apps/reactord/digest_cache.h"

namespace server {
namespace {

bool same(const struct timespec& a, const struct timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

size_t bytes_of(const std::shared_ptr<const ChunkTree>& tree) {
  return tree ? tree->leaves.size() * sizeof(protocol::Digest) : 0;
}

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

DigestCache::Entry* DigestCache::lookup(const FileIdentity& identity) {
  auto it = index_.find(InodeKey{identity.dev, identity.ino});
  if (it == index_.end() || !(it->second->identity == identity)) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &*it->second;
}

void DigestCache::count(bool hit) { ++(hit ? hits_ : misses_); }

std::optional<protocol::Digest> DigestCache::find(const FileIdentity& identity, protocol::DigestKind kind) {
  Entry* entry = lookup(identity);
  // The file known, but not this kind of digest, is a miss too.
  std::optional<protocol::Digest> digest;
  if (entry != nullptr) digest = kind == protocol::DigestKind::kSha256 ? entry->sha256
                                 : entry->tree                         ? std::optional(entry->tree->root)
                                                                       : std::nullopt;
  count(digest.has_value());
  return digest;
}

std::shared_ptr<const ChunkTree> DigestCache::find_tree(const FileIdentity& identity) {
  Entry* entry = lookup(identity);
  std::shared_ptr<const ChunkTree> tree = entry != nullptr ? entry->tree : nullptr;
  count(tree != nullptr);
  return tree;
}

DigestCache::Entry& DigestCache::entry_for(const FileIdentity& identity) {
  InodeKey key{identity.dev, identity.ino};
  auto it = index_.find(key);
  if (it != index_.end()) {
    Entry& entry = *it->second;
    if (!(entry.identity == identity)) {
      // The same inode with a newer identity: what was known of the old one is void.
      entry.identity = identity;
      entry.sha256.reset();
      set_tree(entry, nullptr);
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return entry;
  }
  lru_.push_front(Entry{identity, std::nullopt, nullptr});
  index_.emplace(key, lru_.begin());
  return lru_.front();
}

void DigestCache::set_tree(Entry& entry, std::shared_ptr<const ChunkTree> tree) {
  leaf_bytes_ -= bytes_of(entry.tree);
  entry.tree = std::move(tree);
  leaf_bytes_ += bytes_of(entry.tree);
}

// Drops least recently used entries until both bounds hold; the front entry (the one
// just inserted) stays unless it alone is over the leaf budget.
void DigestCache::evict() {
  while (!lru_.empty() && (index_.size() > capacity_ || leaf_bytes_ > leaf_budget_)) {
    Entry& oldest = lru_.back();
    set_tree(oldest, nullptr);
    index_.erase(InodeKey{oldest.identity.dev, oldest.identity.ino});
    lru_.pop_back();
  }
}

void DigestCache::insert(const FileIdentity& identity, const protocol::Digest& sha256) {
  if (capacity_ == 0) return;
  entry_for(identity).sha256 = sha256;
  evict();
}

void DigestCache::insert_tree(const FileIdentity& identity, std::shared_ptr<const ChunkTree> tree) {
  if (capacity_ == 0 || !tree || bytes_of(tree) > leaf_budget_) return;
  set_tree(entry_for(identity), std::move(tree));
  evict();
}

}  // namespace server
