#pragma once
// One put in progress on a session (reactor-protocol(7), "put"): everything checked
// before the client sends a byte, the body written into a temporary beside the target
// as it arrives, and the commit (verify, fsync, rename, fsync the directory) packaged
// as a job for the worker thread, so that a slow disk never stalls the event loop.
//
//   begin()  -- refused: read_only is the session's; here bad paths, exists, is_directory,
//               too_large, no_space, and a temporary that cannot be created
//   write()  -- every body chunk; ENOSPC/EIO end the upload (the temporary is removed)
//   finish() -- the client's end: a CommitJob, run on the worker, read back on the loop
//
// While an upload runs it holds back the bytes it has yet to write from the free space
// every other upload sees (UploadSpace), so ten concurrent puts cannot each count on
// the same free gigabyte.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "apps/common/body_sink.h"
#include "protocol/error_code.h"
#include "protocol/messages.h"
#include "protocol/types.h"

namespace server {

class ServedRoot;
struct Options;

// Bytes that the uploads in progress have declared and not yet written, across the
// server. The loop thread only.
class UploadSpace {
 public:
  uint64_t outstanding() const { return outstanding_; }
  void hold(uint64_t bytes) { outstanding_ += bytes; }
  void release(uint64_t bytes) { outstanding_ -= bytes < outstanding_ ? bytes : outstanding_; }

 private:
  uint64_t outstanding_ = 0;
};

// The reserve a put must leave free on a file system of `total` bytes when reactord
// was not given --keep-free: 1% of it, at most 1 GiB.
uint64_t default_keep_free(uint64_t total);

// What the worker does with a verified-or-not upload, and what it found.
struct CommitJob {
  std::unique_ptr<app::BodySink> sink;
  protocol::Digest expected{};
  app::BodySink::CommitOptions options;
  std::string path;  // as requested, for messages
  // Results, read on the loop thread after the job is done.
  bool ok = false;
  protocol::Digest actual{};
  protocol::ProtocolError error;

  // The worker's part: verify, then make durable and rename into place.
  void run();
};

class Upload {
 public:
  // Checks `request` against the root, the options and the free space, and creates the
  // temporary. nullptr and *err on refusal; nothing is then left on disk.
  static std::unique_ptr<Upload> begin(const protocol::PutRequest& request, const ServedRoot& root,
                                       const Options& options, UploadSpace& space, protocol::ProtocolError* err);
  ~Upload();
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  // A body chunk. False and *err when it cannot be written: the upload is then over
  // and its temporary removed (no_space, io_error).
  bool write(const char* data, size_t len, protocol::ProtocolError* err);
  // The client's end: hands the sink to a job for the worker. The upload is empty after.
  std::shared_ptr<CommitJob> finish(const protocol::Digest& expected);
  // Drops the temporary (the connection ended, or the body was refused).
  void abandon();

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  uint64_t received() const { return received_; }

 private:
  Upload(const protocol::PutRequest& request, UploadSpace& space);

  std::unique_ptr<app::BodySink> sink_;
  UploadSpace& space_;
  std::string path_;
  uint64_t size_;
  uint64_t received_ = 0;
  uint64_t held_ = 0;  // of space_, released as bytes are written
  app::BodySink::CommitOptions options_;
};

}  // namespace server
