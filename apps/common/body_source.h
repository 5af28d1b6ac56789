#pragma once
// BodySource: streams one file as a frame body, for whichever side sends it (the
// server's answer to a get; an upload, from the client). It is a protocol::Producer: the
// FramedStream asks it for bytes as the output drains, and never sees the file.
//
// It works in one of two ways.
//
// Hashing (the first send of a file): reads it once, straight into the connection's
// output buffer, and hashes exactly the bytes it reads, so the digest in the trailer
// (SHA-256 in version 1, the chunk-tree root in version 2: protocol/content_hash.h) is of
// what was sent and the file is never read twice. For a resumed version 1 download
// (offset > 0) the prefix [0, offset) is read and hashed but not sent, so the digest
// still covers the whole file. A ranged body (shorter than the rest of the file) is
// only ever sent with a known digest: reactord computes the tree first.
//
// Zero-copy (the digest is already known, see DigestCache, the body is at least
// kZeroCopyMin bytes, and the stream's transport can send files): nothing is hashed or
// read into user space; the body goes from the page cache to the socket through
// Transport::send_file (sendfile(2) on a plain socket). If the file cannot be sent that
// way, it falls back to reading without hashing. A smaller body with a known digest is read
// into the output buffer unhashed: header, body and trailer then leave in one send(),
// where sendfile would need a send of its own for each, and as many TCP segments.
//
// Either way, size, data and digest come from the one descriptor opened for the request,
// and a file that changes while it is sent is detected and reported, never sent silently
// corrupt: if it shrinks, the promised body is padded with zeros (the frame length cannot
// be taken back) and the trailer is a file_changed error; if it was modified in place,
// its size, mtime or ctime differ at the end, and the trailer says so too.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/content_hash.h"
#include "protocol/framed_stream.h"
#include "protocol/messages.h"
#include "protocol/sha256.h"
#include "reactor/buffer.h"
#include "reactor/unique_fd.h"

namespace app {

class BodySource final : public protocol::Producer {
 public:
  // Largest single read: big enough that syscalls and hashing calls amortise, small
  // enough that 1,000 concurrent downloads stay within a few hundred MiB.
  static constexpr size_t kChunk = 128 * 1024;
  // Smallest body worth sendfile(2); see above.
  static constexpr uint64_t kZeroCopyMin = 64 * 1024;

  // `cached`: the file's digest of `kind` if already known for exactly this identity.
  // `length`: at most this many bytes from `offset` (needs `cached`).
  BodySource(reactor::UniqueFd fd, const struct stat& opened, uint64_t offset, protocol::DigestKind kind,
             std::optional<protocol::Digest> cached = std::nullopt, std::optional<uint64_t> length = std::nullopt);

  // Hashing mode, and padding after a failure: processes up to `budget` bytes, appending
  // body bytes to `out` (prefix bytes are only hashed). Returns the bytes processed.
  size_t produce(reactor::Buffer& out, size_t budget) override;

  // Zero copy is used only if the transport can (see protocol::Producer).
  void allow_zero_copy(bool possible) override { zero_copy_ = zero_copy_ && possible; }
  // True while the body should go straight from the file to the socket with
  // send_file(); the stream has flushed everything queued before it (the frame header).
  bool zero_copy() const override { return zero_copy_ && !failed_ && !finished_; }
  // Zero-copy mode: sends up to `budget` body bytes. Returns the bytes sent, 0 if
  // nothing could be sent for a reason this object handled (the file shrank; or the
  // file cannot be sent this way and produce() takes over), or -1 with the transport's
  // error (EAGAIN: wait for writability).
  reactor::IoResult send_file(reactor::Transport& transport, size_t budget) override;
  // Whether zero copy was planned (a cached digest and a body worth it), for logs.
  bool planned_zero_copy() const { return planned_zero_copy_; }

  bool finished() const override { return finished_; }
  protocol::Message trailer() const;
  // After a successful finish in hashing mode: the digest just computed, for the cache,
  // and (tree) every chunk's digest.
  std::optional<protocol::Digest> computed_digest() const;
  const std::vector<protocol::Digest>& computed_leaves() const;
  protocol::DigestKind kind() const { return kind_; }
  const struct stat& opened() const { return opened_; }

  uint64_t size() const { return size_; }
  uint64_t body_length() const { return end_ - offset_; }
  uint64_t body_sent() const { return body_done_; }

 private:
  void finish();
  void fail(protocol::ErrorCode code, std::string message);
  void pad(reactor::Buffer& out, size_t* budget);

  reactor::UniqueFd fd_;
  struct stat opened_;
  uint64_t size_;
  uint64_t offset_;
  uint64_t end_;            // one past the last body byte: size_, or less for a range
  protocol::DigestKind kind_;
  uint64_t pos_ = 0;        // next file offset to read
  uint64_t body_done_ = 0;  // body bytes appended to the output or sent (data or padding)
  bool hashing_;            // false when the digest came from the cache
  bool zero_copy_;          // send_file()
  bool planned_zero_copy_;
  std::optional<protocol::ContentHash> hash_;  // only while hashing_
  std::vector<char> prefix_scratch_;  // only for resumed downloads
  bool failed_ = false;               // the file changed or could not be read
  protocol::ErrorCode failure_code_ = protocol::ErrorCode::kFileChanged;
  std::string failure_message_;
  bool finished_ = false;
  protocol::Digest digest_{};
};

}  // namespace app
