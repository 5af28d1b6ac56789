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
//
// A resumable upload (put with resume, reactorc put -c) writes instead into a partial
// named after the file it receives (app::resume_name_for: the name, size and root), kept
// when the connection ends before the end, for --partial-ttl. begin() opens it, locked
// (a second resume of the same file is refused with in_progress), and says how much it
// holds in whole chunks (held()); the session has their digests computed on the worker
// and sends them with put_ready; start_body() cuts it where the client's data starts.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <chrono>
#include <map>
#include <utility>
#include <vector>

#include "apps/common/body_sink.h"
#include "reactor/unique_fd.h"
#include "protocol/error_code.h"
#include "protocol/messages.h"
#include "protocol/types.h"

namespace server {

class ServedRoot;
struct Options;

// Whoever holds a resumable partial open (a session), as the upload registry sees it.
class PartialHolder {
 public:
  // Whether its client has sent nothing for a while: a connection the network dropped
  // without a word, which the idle timeout would take minutes to notice.
  virtual bool stalled() const = 0;
  // Ends its connection (keeping what it received): a newer resume of the same file
  // takes over.
  virtual void give_up(const char* why) = 0;

 protected:
  ~PartialHolder() = default;
};

// What the uploads in progress share, across the server; the loop thread only: the
// bytes they have declared and not yet written, and which session holds which
// resumable partial (by device and inode).
class UploadSpace {
 public:
  uint64_t outstanding() const { return outstanding_; }
  void hold(uint64_t bytes) { outstanding_ += bytes; }
  void release(uint64_t bytes) { outstanding_ -= bytes < outstanding_ ? bytes : outstanding_; }

  void claim(dev_t dev, ino_t ino, PartialHolder* holder) { holders_[key(dev, ino)] = holder; }
  void unclaim(dev_t dev, ino_t ino) { holders_.erase(key(dev, ino)); }
  PartialHolder* holder_of(dev_t dev, ino_t ino) const {
    auto it = holders_.find(key(dev, ino));
    return it == holders_.end() ? nullptr : it->second;
  }

 private:
  static std::pair<dev_t, ino_t> key(dev_t dev, ino_t ino) { return {dev, ino}; }

  uint64_t outstanding_ = 0;
  std::map<std::pair<dev_t, ino_t>, PartialHolder*> holders_;
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
  uint64_t size = 0;  // the file's, a resumed upload's kept bytes included
  // Results, read on the loop thread after the job is done.
  bool ok = false;
  protocol::Digest actual{};
  protocol::ProtocolError error;

  // A small upload into a file system without a disk (tmpfs, ramfs): run() waits for
  // nothing, so the loop runs it itself instead of paying the worker's two thread
  // hand-offs per file (10,000 files of 4 KiB: 0.7 s instead of 2.5 s, measured).
  bool cannot_block = false;

  // The worker's part: verify, then make durable and rename into place.
  void run();
};

// The largest upload that cannot_block may describe: one chunk of the tree hash.
inline constexpr uint64_t kCommitOnLoopMax = 1024 * 1024;

class Upload {
 public:
  // Checks `request` against the root, the options and the free space, and creates the
  // temporary. nullptr and *err on refusal; nothing is then left on disk.
  // `holder`: the session, for a resumable upload's claim on its partial.
  static std::unique_ptr<Upload> begin(const protocol::PutRequest& request, const ServedRoot& root,
                                       const Options& options, UploadSpace& space, PartialHolder* holder,
                                       protocol::ProtocolError* err);
  ~Upload();
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  // Resumable: the bytes already held (whole chunks, or the whole file), and the
  // partial's descriptor, for the worker to hash them. 0 and -1 otherwise.
  uint64_t held() const { return held_bytes_; }
  bool resumable() const { return resumable_; }
  int partial_fd() const { return partial_.get(); }
  // The data starts at `offset` (put_ready's held() or an earlier chunk boundary):
  // the partial is cut there and the digest goes on after `leaves`, the digests of
  // the chunks before it. A fresh upload starts at 0 and needs no leaves.
  bool start_body(uint64_t offset, const std::vector<protocol::Digest>& leaves, protocol::ProtocolError* err);
  // A body chunk. False and *err when it cannot be written: the upload is then over
  // and its temporary removed (no_space, io_error).
  bool write(const char* data, size_t len, protocol::ProtocolError* err);
  // The client's end: hands the sink to a job for the worker. The upload is empty after.
  std::shared_ptr<CommitJob> finish(const protocol::Digest& expected);
  // Drops the temporary (the body was refused).
  void abandon();
  // The connection ended before the end: a resumable upload keeps what it received for a
  // later put -c; any other is dropped.
  void cut_short();

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  uint64_t received() const { return received_; }

 private:
  Upload(const protocol::PutRequest& request, UploadSpace& space);
  bool open_partial(reactor::UniqueFd dir, const std::string& name, const protocol::PutRequest& request,
                    std::chrono::milliseconds ttl, PartialHolder* holder, protocol::ProtocolError* err);

  std::unique_ptr<app::BodySink> sink_;
  bool resumable_ = false;
  bool force_ = false;
  reactor::UniqueFd dir_;      // resumable: the target's directory, until the body starts
  std::string name_;           // the target's name in it
  std::string partial_name_;
  reactor::UniqueFd partial_;  // locked with flock(2) for as long as this upload lives
  bool in_memory_ = false;     // the target's file system has no disk (see CommitJob)
  uint64_t held_bytes_ = 0;
  uint64_t start_ = 0;         // resumable: where the data started
  bool claimed_ = false;       // registered in space_ as the partial's holder
  dev_t partial_dev_ = 0;
  ino_t partial_ino_ = 0;
  UploadSpace& space_;
  std::string path_;
  uint64_t size_;
  uint64_t received_ = 0;
  uint64_t held_ = 0;  // of space_, released as bytes are written
  app::BodySink::CommitOptions options_;
};

}  // namespace server
