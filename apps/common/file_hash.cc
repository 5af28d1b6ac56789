#include "apps/common/file_hash.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace app {

ReadOutcome pread_full(int fd, char* buf, size_t len, uint64_t offset) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ReadOutcome::kError;
    if (n == 0) return ReadOutcome::kShrank;
    got += static_cast<size_t>(n);
  }
  return ReadOutcome::kOk;
}

ReadOutcome hash_file(int fd, uint64_t size, protocol::ContentHash* hash, const std::atomic<bool>* cancelled) {
  std::vector<char> buffer(protocol::kChunkSize);
  for (uint64_t pos = 0; pos < size;) {
    if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) return ReadOutcome::kCancelled;
    size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - pos));
    ReadOutcome outcome = pread_full(fd, buffer.data(), want, pos);
    if (outcome != ReadOutcome::kOk) return outcome;
    hash->update(buffer.data(), want);
    pos += want;
  }
  return ReadOutcome::kOk;
}

bool tree_root_at(int dir, const std::string& name, uint64_t size, protocol::Digest* root) {
  int fd = openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  protocol::ContentHash hash(protocol::DigestKind::kTree);
  bool ok = hash_file(fd, size, &hash) == ReadOutcome::kOk && hash.ok();
  close(fd);
  if (ok) *root = hash.finish();
  return ok;
}

}  // namespace app
