#pragma once
// SHA-256 digests of files already sent whole, so a repeated download need not hash
// the file again on the server and can go out with sendfile(2), never copied through
// user space.
//
// An entry is keyed by the file's identity as fstat(2) sees it: device, inode, size,
// mtime and ctime, to the nanosecond. Any write through the file system changes ctime,
// which user space cannot set back, so a changed file misses. A stale hit is possible
// only for writes the kernel has not yet stamped (a writer through a shared mmap, before
// writeback), and is still safe: the client hashes what it receives and refuses a
// mismatch. The cache can cause a refused download, never a silently corrupt one.
//
// Filled only by a send that hashed the whole file and found it unchanged at the end.
// Bounded: the least recently used entry is dropped.

#include <sys/stat.h>

#include <cstddef>
#include <list>
#include <optional>
#include <unordered_map>

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

class DigestCache {
 public:
  static constexpr size_t kDefaultCapacity = 4096;

  explicit DigestCache(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  std::optional<protocol::Digest> find(const FileIdentity& identity);
  void insert(const FileIdentity& identity, const protocol::Digest& digest);

  size_t size() const { return index_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Entry {
    FileIdentity identity;
    protocol::Digest digest;
  };
  struct InodeKey {
    dev_t dev;
    ino_t ino;
    bool operator==(const InodeKey& other) const { return dev == other.dev && ino == other.ino; }
  };
  struct InodeHash {
    size_t operator()(const InodeKey& key) const { return std::hash<ino_t>()(key.ino) * 31 + std::hash<dev_t>()(key.dev); }
  };

  size_t capacity_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<InodeKey, std::list<Entry>::iterator, InodeHash> index_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace server
