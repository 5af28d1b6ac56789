#include "apps/reactord/tree_job.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/common/file_hash.h"
#include "protocol/content_hash.h"

namespace server {

void TreeJob::run() {
  using protocol::ErrorCode;
  protocol::ContentHash hash(protocol::DigestKind::kTree, /*keep_leaves=*/true);
  switch (app::hash_file(fd.get(), static_cast<uint64_t>(opened.st_size), &hash, &cancelled)) {
    case app::ReadOutcome::kOk:
      break;
    case app::ReadOutcome::kCancelled:
      error = {ErrorCode::kInternal, "cancelled"};
      return;
    case app::ReadOutcome::kError:
      error = {ErrorCode::kIoError, std::string("read failed while computing digests: ") + std::strerror(errno)};
      return;
    case app::ReadOutcome::kShrank:
      error = {ErrorCode::kFileChanged, "the file shrank while its digests were computed"};
      return;
  }
  struct stat now {};
  if (fstat(fd.get(), &now) != 0) {
    error = {ErrorCode::kIoError, std::string("stat failed after computing digests: ") + std::strerror(errno)};
    return;
  }
  if (!(FileIdentity::of(now) == FileIdentity::of(opened))) {
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
