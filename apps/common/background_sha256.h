#pragma once
// The digest of a download (SHA-256, or the chunk-tree root of protocol/content_hash.h:
// the same pass of SHA-256 over the data), computed on a second thread while the event loop goes on
// receiving and writing. On one core a verified download costs receive + hash + write
// one after the other (SHA-256 alone is ~0.6 CPU s per GiB here, `openssl speed`); with
// the hash beside the loop, the slower of the two bounds it instead of their sum.
//
// The loop thread copies each body slice into one of kChunks chunks of kChunk bytes and
// hands full chunks to the worker, which hashes them in order. Memory is bounded: when
// every chunk is waiting to be hashed, update() waits for the worker to free one, which
// takes at most the time to hash one chunk (well under a millisecond) and holds the
// sender back through TCP meanwhile, as a slow disk would.
//
// The worker is started by the first full chunk, so a download smaller than kChunk is
// hashed on the calling thread and starts no thread at all. The worker blocks every
// signal: they belong to the event loop's signalfd.
//
// Not copyable or movable; one stream per object (finish() once).

#include <array>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "protocol/content_hash.h"
#include "protocol/types.h"

namespace app {

class BackgroundSha256 {
 public:
  static constexpr size_t kChunk = 1 << 20;
  static constexpr size_t kChunks = 4;

  explicit BackgroundSha256(protocol::DigestKind kind = protocol::DigestKind::kSha256);
  // Tree only, before any update(): see protocol::ContentHash::resume.
  void resume(const std::vector<protocol::Digest>& leaves, uint64_t bytes) { hash_.resume(leaves, bytes); }
  // Stops the worker, dropping what it has not hashed yet, and joins it.
  ~BackgroundSha256();
  BackgroundSha256(const BackgroundSha256&) = delete;
  BackgroundSha256& operator=(const BackgroundSha256&) = delete;

  void update(const void* data, size_t len);
  // The digest of everything given to update(); all zeros if OpenSSL failed (see
  // protocol::Sha256: a digest no file has, so a verification fails closed).
  protocol::Digest finish();

  // Whether a worker thread was started (for tests: small inputs never start one).
  bool threaded() const { return worker_.joinable(); }

 private:
  struct Filled {
    size_t chunk;
    size_t size;
  };

  void hand_over();  // queues the current chunk and takes a free one, waiting if need be
  bool start_worker();
  void work();

  // A fixed array, each buffer allocated when first needed: the caller may allocate
  // chunk i while the worker reads chunk j, and no element ever moves.
  std::array<std::unique_ptr<char[]>, kChunks> chunks_;
  size_t allocated_ = 1;  // chunks_[0, allocated_) have buffers
  size_t current_ = 0;    // the chunk the caller fills
  size_t used_ = 0;       // bytes in it

  std::mutex mutex_;
  std::condition_variable work_ready_;  // the worker waits for filled_ or stop_/closing_
  std::condition_variable chunk_free_;  // the caller waits for free_
  std::deque<Filled> filled_;
  std::vector<size_t> free_;
  bool closing_ = false;  // finish(): hash what is queued, then exit
  bool stop_ = false;     // destructor: exit now
  bool inline_ = false;   // no thread could be started: hash on the caller's thread

  protocol::ContentHash hash_;  // the worker's while it runs, the caller's before and after
  std::thread worker_;
};

}  // namespace app
