#include "reactor/buffer.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace reactor {

namespace {
// What peek() points at while there is no storage: memcpy and friends require a valid
// pointer even for zero bytes.
const char kNoData[1] = {0};
}  // namespace

Buffer::Buffer(size_t max_size) : max_size_(max_size) {}

Buffer::Buffer(Buffer&& other) noexcept
    : storage_(std::move(other.storage_)),
      capacity_(std::exchange(other.capacity_, 0)),
      read_(std::exchange(other.read_, 0)),
      write_(std::exchange(other.write_, 0)),
      max_size_(other.max_size_),
      not_socket_fd_(other.not_socket_fd_) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    storage_ = std::move(other.storage_);
    capacity_ = std::exchange(other.capacity_, 0);
    read_ = std::exchange(other.read_, 0);
    write_ = std::exchange(other.write_, 0);
    max_size_ = other.max_size_;
    not_socket_fd_ = other.not_socket_fd_;
  }
  return *this;
}

const char* Buffer::peek() const {
  return storage_ ? storage_.get() + read_ : kNoData;
}

void Buffer::consume(size_t n) {
  if (n >= readable()) {
    consume_all();
    return;
  }
  read_ += n;
}

void Buffer::consume_all() {
  // Back to the start: the next append needs no compaction and prepend room is restored.
  if (storage_) read_ = write_ = kPrepend;
}

// Makes writable() >= n, compacting before growing; false if readable() + n > max_size().
bool Buffer::ensure_writable(size_t n) {
  size_t used = readable();
  if (n > max_size_ - used) return false;
  if (!storage_) {
    capacity_ = kPrepend + std::min(std::max(n, kInitialSize), max_size_);
    storage_.reset(new char[capacity_]);  // default-initialised: no zero fill
    read_ = write_ = kPrepend;
    return true;
  }
  if (writable() >= n) return true;
  // Consumed space at the front plus the free tail is enough: slide the data down instead
  // of allocating.
  if (read_ - kPrepend + writable() >= n) {
    std::memmove(storage_.get() + kPrepend, storage_.get() + read_, used);
    read_ = kPrepend;
    write_ = kPrepend + used;
    return true;
  }
  // Grow geometrically so a stream of appends costs amortised O(1), but never beyond what
  // max_size() can ever need.
  size_t want = std::max(capacity_ * 2, kPrepend + used + n);
  want = std::min(want, kPrepend + max_size_);
  std::unique_ptr<char[]> bigger(new char[want]);
  std::memcpy(bigger.get() + kPrepend, storage_.get() + read_, used);
  storage_ = std::move(bigger);
  capacity_ = want;
  read_ = kPrepend;
  write_ = kPrepend + used;
  return true;
}

bool Buffer::append(const void* data, size_t n) {
  if (n == 0) return true;
  if (!ensure_writable(n)) return false;
  std::memcpy(storage_.get() + write_, data, n);
  write_ += n;
  return true;
}

char* Buffer::begin_write(size_t at_least) {
  if (!ensure_writable(std::max<size_t>(at_least, 1))) return nullptr;
  return storage_.get() + write_;
}

void Buffer::commit(size_t n) { write_ += std::min(n, writable()); }

bool Buffer::prepend(const void* data, size_t n) {
  if (n == 0) return true;
  size_t used = readable();
  if (n > max_size_ - used) return false;
  if (n > prependable()) {
    if (!ensure_writable(n)) return false;
    // Slide the readable bytes right by just enough to open n bytes in front of them.
    size_t shift = n - std::min(n, prependable());
    if (shift > 0) {
      std::memmove(storage_.get() + read_ + shift, storage_.get() + read_, used);
      read_ += shift;
      write_ += shift;
    }
  }
  read_ -= n;
  std::memcpy(storage_.get() + read_, data, n);
  return true;
}

ssize_t Buffer::read_from(int fd, int* saved_errno, size_t max_bytes, size_t* offered) {
  size_t room = std::min(max_size_ - readable(), max_bytes);
  if (offered != nullptr) *offered = 0;
  if (max_size_ == readable()) {
    *saved_errno = EMSGSIZE;
    return -1;
  }
  char spill[kSpillSize];
  size_t direct = std::min(writable(), room);
  iovec iov[2];
  int count = 0;
  if (direct > 0) {
    iov[count].iov_base = storage_.get() + write_;
    iov[count].iov_len = direct;
    ++count;
  }
  size_t extra = std::min(sizeof spill, room - direct);
  if (extra > 0) {
    iov[count].iov_base = spill;
    iov[count].iov_len = extra;
    ++count;
  }
  if (offered != nullptr) *offered = direct + extra;
  if (count == 0) {  // max_bytes == 0: nothing asked; 0 would read as end of file
    *saved_errno = EAGAIN;
    return -1;
  }
  ssize_t n;
  do {
    n = ::readv(fd, iov, count);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    *saved_errno = errno;
    return -1;
  }
  size_t got = static_cast<size_t>(n);
  if (got <= direct) {
    write_ += got;
  } else {
    write_ += direct;
    append(spill, got - direct);  // fits: extra was capped by the room left
  }
  return n;
}

ssize_t Buffer::write_to(int fd, size_t max_bytes, int* saved_errno) {
  size_t n = std::min(readable(), max_bytes);
  if (n == 0) return 0;
  ssize_t written;
  for (;;) {
    if (fd == not_socket_fd_) {
      written = ::write(fd, peek(), n);
    } else {
      written = ::send(fd, peek(), n, MSG_NOSIGNAL);
      if (written < 0 && errno == ENOTSOCK) {
        not_socket_fd_ = fd;
        continue;
      }
    }
    if (written >= 0 || errno != EINTR) break;
  }
  if (written < 0) {
    *saved_errno = errno;
    return -1;
  }
  consume(static_cast<size_t>(written));
  return written;
}

void Buffer::shrink_if_empty() {
  if (!empty()) return;
  storage_.reset();
  capacity_ = 0;
  read_ = write_ = 0;
}

}  // namespace reactor
