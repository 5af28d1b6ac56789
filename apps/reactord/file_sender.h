#pragma once
// Streams one file for a `get`: reads it once, straight into the connection's output
// buffer, and hashes exactly the bytes it reads, so the SHA-256 in the trailer is of
// what was sent and the file is never read twice.
//
// Size, data and digest all come from the one descriptor opened for the request. A file
// that changes while it is sent is detected and reported, never sent silently corrupt:
// if it shrinks, the promised body is padded with zeros (the frame length cannot be
// taken back) and the trailer is a file_changed error; if it was modified in place, its
// size, mtime or ctime differ at the end, and the trailer says so too.
//
// For a resumed download (offset > 0) the prefix [0, offset) is read and hashed but not
// sent, so the trailer's digest still covers the whole file.

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "protocol/messages.h"
#include "protocol/sha256.h"
#include "reactor/buffer.h"
#include "reactor/unique_fd.h"

namespace server {

class FileSender {
 public:
  // Largest single read: big enough that syscalls and hashing calls amortise, small
  // enough that 1,000 concurrent downloads stay within a few hundred MiB.
  static constexpr size_t kChunk = 128 * 1024;

  FileSender(reactor::UniqueFd fd, const struct stat& opened, uint64_t offset);

  // Processes up to `budget` bytes of the file: body bytes are appended to `out`, prefix
  // bytes only hashed. Returns the number of file bytes processed. After finished()
  // becomes true, trailer() holds the frame that ends the response.
  size_t produce(reactor::Buffer& out, size_t budget);
  bool finished() const { return finished_; }
  protocol::Message trailer() const;

  uint64_t size() const { return size_; }
  uint64_t body_length() const { return size_ - offset_; }
  uint64_t body_sent() const { return body_done_; }

 private:
  void finish();
  void pad(reactor::Buffer& out, size_t* budget);

  reactor::UniqueFd fd_;
  struct stat opened_;
  uint64_t size_;
  uint64_t offset_;
  uint64_t pos_ = 0;        // next file offset to read
  uint64_t body_done_ = 0;  // body bytes appended to the output (data or padding)
  protocol::Sha256 hash_;
  std::vector<char> prefix_scratch_;  // only for resumed downloads
  bool failed_ = false;               // the file changed or could not be read
  protocol::ErrorCode failure_code_ = protocol::ErrorCode::kFileChanged;
  std::string failure_message_;
  bool finished_ = false;
  protocol::Digest digest_{};
};

}  // namespace server
