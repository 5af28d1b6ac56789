#pragma once
// Digests of files already hashed whole, so a repeated download need not hash the file
// again on the server and can go out with sendfile(2), never copied through user space.
// Two kinds per file, each filled when a connection of that protocol version needed
// it: the SHA-256 (version 1) and the chunk tree, its root with every chunk's digest
// (version 2, protocol/content_hash.h), which also answers digests requests and
// ranged gets.
//
// An entry is keyed by the file's identity as fstat(2) sees it: device, inode, size,
// mtime and ctime, to the nanosecond. Any write through the file system changes ctime,
// which user space cannot set back, so a changed file misses. A stale hit is possible
// only for writes the kernel has not yet stamped (a writer through a shared mmap, before
// writeback), and is still safe: the client hashes what it receives and refuses a
// mismatch. The cache can cause a refused download, never a silently corrupt one.
//
// Filled only by a send (or a tree computation) that hashed the whole file and found it
// unchanged at the end. Bounded in entries and in the bytes of chunk digests held
// (32 per MiB of file): the least recently used entries are dropped.

#include <sys/stat.h>

#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "protocol/content_hash.h"
#include "protocol/types.h"

namespace server {

struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  struct timespec mtime {};
  struct timespec ctime {};

  static FileIdentity of(const struct stat& st);
  bool operator==(const FileIdentity& other) const;
};

// A file's chunk tree: immutable once made, shared by the cache and the requests using it.
struct ChunkTree {
  protocol::Digest root{};
  std::vector<protocol::Digest> leaves;
};

class DigestCache {
 public:
  static constexpr size_t kDefaultCapacity = 4096;
  // Chunk digests held at most: 64 MiB describe 2 TiB of files.
  static constexpr size_t kDefaultLeafBudget = 64u << 20;

  explicit DigestCache(size_t capacity = kDefaultCapacity, size_t leaf_budget = kDefaultLeafBudget)
      : capacity_(capacity), leaf_budget_(leaf_budget) {}

  // The digest of `kind` for exactly this identity.
  std::optional<protocol::Digest> find(const FileIdentity& identity, protocol::DigestKind kind);
  std::shared_ptr<const ChunkTree> find_tree(const FileIdentity& identity);
  void insert(const FileIdentity& identity, const protocol::Digest& sha256);
  void insert_tree(const FileIdentity& identity, std::shared_ptr<const ChunkTree> tree);

  size_t size() const { return index_.size(); }
  size_t leaf_bytes() const { return leaf_bytes_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Entry {
    FileIdentity identity;
    std::optional<protocol::Digest> sha256;
    std::shared_ptr<const ChunkTree> tree;
  };
  struct InodeKey {
    dev_t dev;
    ino_t ino;
    bool operator==(const InodeKey& other) const { return dev == other.dev && ino == other.ino; }
  };
  struct InodeHash {
    size_t operator()(const InodeKey& key) const { return std::hash<ino_t>()(key.ino) * 31 + std::hash<dev_t>()(key.dev); }
  };

  Entry* lookup(const FileIdentity& identity);   // refreshes what it finds
  void count(bool hit);                           // a hit or a miss
  Entry& entry_for(const FileIdentity& identity);  // found, refreshed, or made
  void set_tree(Entry& entry, std::shared_ptr<const ChunkTree> tree);
  void evict();

  size_t capacity_;
  size_t leaf_budget_;
  size_t leaf_bytes_ = 0;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<InodeKey, std::list<Entry>::iterator, InodeHash> index_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace server
