#pragma once
// TreeJob: a file's chunk tree (protocol/content_hash.h), computed on the worker thread
// (reactor/work_queue.h) when a version 2 request needs it and the digest cache does not
// have it: a digests request, or a get of anything but the whole file. Hashing a big
// file takes seconds, which the event loop must not spend.
//
// The job reads the one descriptor opened for the request and checks at the end that
// the file did not change meanwhile (size, mtime and ctime as fstat(2) sees them), so
// the tree it returns is the tree of what `opened` describes, or an error.

#include <sys/stat.h>

#include <atomic>
#include <memory>

#include "apps/reactord/digest_cache.h"
#include "protocol/error_code.h"
#include "reactor/unique_fd.h"

namespace server {

struct TreeJob {
  TreeJob(reactor::UniqueFd file, const struct stat& st) : fd(std::move(file)), opened(st) {}

  reactor::UniqueFd fd;
  struct stat opened;
  // Set from the loop thread when nobody wants the answer any more: the worker stops at
  // the next chunk.
  std::atomic<bool> cancelled{false};
  // Results, read on the loop thread after the job is done: the tree, or the error.
  std::shared_ptr<const ChunkTree> tree;
  protocol::ProtocolError error;

  void run();
};

}  // namespace server
