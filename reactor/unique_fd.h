#pragma once
// UniqueFd: sole owner of one file descriptor. Every descriptor in the project lives in one,
// so a forgotten close() on an error path is impossible and there is no naked close()
// anywhere else.

#include <unistd.h>

#include <cerrno>

namespace reactor {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  // Gives up ownership without closing; the caller now owns the descriptor.
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the current descriptor (if any) and takes ownership of `fd`.
  //
  // close() is deliberately not retried on EINTR: on Linux the descriptor is released
  // before the call can be interrupted, so a retry could close a descriptor another part of
  // the program has just been given the same number for. The result of close() is ignored
  // for the same reason: there is nothing safe to do about it here. Code that must know
  // whether buffered data reached the disk calls fsync() before letting go.
  //
  // errno is preserved so that an error path can build its message (sys_error) after a
  // UniqueFd on the stack has already been reset.
  void reset(int fd = -1) noexcept {
    int old = fd_;
    fd_ = fd;
    if (old >= 0) {
      int saved_errno = errno;
      ::close(old);
      errno = saved_errno;
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace reactor
