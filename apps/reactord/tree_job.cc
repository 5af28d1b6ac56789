#include "apps/reactord/tree_job.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "protocol/content_hash.h"

namespace server {
namespace {

bool same(const struct timespec& a, const struct timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

}  // namespace

void TreeJob::run() {
  using protocol::ErrorCode;
  const uint64_t size = static_cast<uint64_t>(opened.st_size);
  protocol::ContentHash hash(protocol::DigestKind::kTree, /*keep_leaves=*/true);
  std::vector<char> buffer(protocol::kChunkSize);
  uint64_t pos = 0;
  while (pos < size) {
    if (cancelled.load(std::memory_order_relaxed)) {
      error = {ErrorCode::kInternal, "cancelled"};
      return;
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - pos));
    ssize_t n = pread(fd.get(), buffer.data(), want, static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = {ErrorCode::kIoError, std::string("read failed while computing digests: ") + std::strerror(errno)};
      return;
    }
    if (n == 0) {
      error = {ErrorCode::kFileChanged, "the file shrank while its digests were computed"};
      return;
    }
    hash.update(buffer.data(), static_cast<size_t>(n));
    pos += static_cast<uint64_t>(n);
  }
  struct stat now {};
  if (fstat(fd.get(), &now) != 0) {
    error = {ErrorCode::kIoError, std::string("stat failed after computing digests: ") + std::strerror(errno)};
    return;
  }
  if (now.st_size != opened.st_size || !same(now.st_mtim, opened.st_mtim) || !same(now.st_ctim, opened.st_ctim)) {
    error = {ErrorCode::kFileChanged, "the file was modified while its digests were computed"};
    return;
  }
  auto result = std::make_shared<ChunkTree>();
  result->root = hash.finish();
  if (!hash.ok()) {
    error = {ErrorCode::kInternal, "hashing failed: " + hash.error()};
    return;
  }
  result->leaves = hash.leaves();
  tree = std::move(result);
}

}  // namespace server
