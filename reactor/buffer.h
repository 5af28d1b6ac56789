#pragma once
// Buffer: a byte queue for socket I/O, after muduo's Buffer.
//
//   | prependable | readable (peek()..) | writable (begin_write()..) |
//   0          read_            write_                      capacity()
//
// Bytes are appended at the write index and consumed from the read index; consumed space is
// reclaimed by moving the readable bytes to the front (compaction) before the storage is
// grown. A few bytes of prepend room let a length header be written in front of a body that
// is already in place, without a copy.
//
// The readable size never exceeds max_size() (constructor argument): a peer that sends
// faster than we consume, or announces a huge frame, cannot make the buffer grow without
// bound. Storage is allocated on first use and freed by shrink_if_empty(), so an idle
// connection holds no buffer memory at all.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace reactor {

class Buffer {
 public:
  static constexpr size_t kPrepend = 8;
  // A first allocation that stays within glibc's per-thread cache (chunks up to 1032
  // bytes): a 4 KiB one is a large-bin request, which consolidates the fast bins every
  // time, and most frames (requests, pongs, handshakes) are a few hundred bytes.
  static constexpr size_t kInitialSize = 1024 - kPrepend - 16;
  static constexpr size_t kDefaultMaxSize = 64u << 20;  // 64 MiB
  static constexpr size_t kSpillSize = 64u << 10;       // read_from's stack buffer

  explicit Buffer(size_t max_size = kDefaultMaxSize);
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  // A moved-from buffer is empty and unallocated, with the same max_size().
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;

  size_t readable() const { return write_ - read_; }
  bool empty() const { return write_ == read_; }
  // The first readable byte. Always a valid pointer, even for an empty buffer.
  const char* peek() const;
  std::string_view view() const { return std::string_view(peek(), readable()); }
  // Drops n readable bytes (all of them if n > readable()).
  void consume(size_t n);
  void consume_all();

  // Appends n bytes; false (and nothing appended) if that would exceed max_size().
  bool append(const void* data, size_t n);
  bool append(std::string_view s) { return append(s.data(), s.size()); }

  // Zero-copy filling (e.g. read() or pread() straight into the buffer): makes room for at
  // least `at_least` bytes and returns where they go, or nullptr if readable() + at_least
  // would exceed max_size(). writable() may then be larger than asked; commit(n) makes n
  // of those bytes readable.
  char* begin_write(size_t at_least);
  size_t writable() const { return capacity_ - write_; }
  void commit(size_t n);

  // Puts n bytes in front of the readable ones (a length header for a body already here).
  // Cheap when n <= prependable(); otherwise the bytes are moved. False if readable() + n
  // would exceed max_size().
  bool prepend(const void* data, size_t n);
  size_t prependable() const { return read_; }

  // Reads from `fd` once, into the writable space and then a 64 KiB stack buffer that is
  // appended, so one call can take more than the current capacity without first growing
  // it. Never reads more than max_size() - readable() bytes. Returns the byte count, 0 at
  // end of file, or -1 with *saved_errno (EAGAIN: nothing to read now). EINTR is retried.
  //
  // When the buffer is full (readable() == max_size()) it does not read at all and returns
  // -1 with EMSGSIZE. A level-triggered caller must then either stop watching kReadable
  // until it has consumed something (backpressure) or treat it as a protocol violation;
  // calling again without consuming just returns EMSGSIZE again.
  //
  // `max_bytes` caps the read further (a per-wakeup budget); `*offered`, if given, is set
  // to the room the read offered, so a caller can tell a read that filled it (more may be
  // waiting) from one that emptied the kernel's queue.
  ssize_t read_from(int fd, int* saved_errno, size_t max_bytes = SIZE_MAX, size_t* offered = nullptr);

  // Writes up to max_bytes of the readable bytes to `fd` and consumes what was written.
  // Returns the count (possibly less than asked), 0 if the buffer is empty, or -1 with
  // *saved_errno (EAGAIN: wait for kWritable; EPIPE/ECONNRESET: the peer is gone). Uses
  // send(MSG_NOSIGNAL) so a closed peer cannot raise SIGPIPE; for a non-socket (a pipe, a
  // terminal) it falls back to write() and remembers that for the fd. EINTR is retried.
  ssize_t write_to(int fd, size_t max_bytes, int* saved_errno);

  // Frees the storage if nothing is readable, so idle connections hold almost nothing.
  void shrink_if_empty();

  size_t capacity() const { return capacity_; }
  size_t max_size() const { return max_size_; }

 private:
  bool ensure_writable(size_t n);

  // Not a std::vector: resizing one zero-fills every byte, and a 256 KiB read slice then
  // costs a memset and a page fault per page before a single byte arrives.
  std::unique_ptr<char[]> storage_;
  size_t capacity_ = 0;
  size_t read_ = 0;   // both indices are 0 while nothing is allocated,
  size_t write_ = 0;  // kPrepend or more once it is
  size_t max_size_;
  int not_socket_fd_ = -1;  // the last fd send() called ENOTSOCK: write() it directly
};

}  // namespace reactor
