#include "apps/reactord/file_sender.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace server {
namespace {

bool same_timespec(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

}  // namespace

FileSender::FileSender(reactor::UniqueFd fd, const struct stat& opened, uint64_t offset)
    : fd_(std::move(fd)), opened_(opened), size_(static_cast<uint64_t>(opened.st_size)), offset_(offset) {
  if (size_ == 0) finish();
}

size_t FileSender::produce(reactor::Buffer& out, size_t budget) {
  size_t processed = 0;
  while (!finished_ && budget > 0) {
    if (failed_) {
      pad(out, &budget);
      if (body_done_ == body_length()) finish();
      continue;
    }
    bool in_prefix = pos_ < offset_;
    uint64_t limit = in_prefix ? offset_ : size_;
    size_t want = static_cast<size_t>(std::min<uint64_t>({kChunk, limit - pos_, budget}));
    char* dst;
    if (in_prefix) {
      prefix_scratch_.resize(kChunk);
      dst = prefix_scratch_.data();
    } else {
      dst = out.begin_write(want);
      if (dst == nullptr) break;  // output buffer at its limit: wait for the socket to drain
    }
    ssize_t n = pread(fd_.get(), dst, want, static_cast<off_t>(pos_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed_ = true;
      if (n == 0) {
        failure_message_ = "the file shrank while it was being sent (to " + std::to_string(pos_) + " bytes)";
      } else {
        failure_code_ = protocol::ErrorCode::kIoError;
        failure_message_ = std::string("read failed while sending: ") + std::strerror(errno);
      }
      continue;
    }
    size_t got = static_cast<size_t>(n);
    hash_.update(dst, got);
    if (!in_prefix) {
      out.commit(got);
      body_done_ += got;
    }
    pos_ += got;
    processed += got;
    budget -= got;
    if (pos_ == size_) finish();
  }
  if (pos_ >= offset_ && !prefix_scratch_.empty()) prefix_scratch_ = std::vector<char>();
  return processed;
}

void FileSender::pad(reactor::Buffer& out, size_t* budget) {
  size_t want = static_cast<size_t>(std::min<uint64_t>({kChunk, body_length() - body_done_, *budget}));
  char* dst = want == 0 ? nullptr : out.begin_write(want);
  if (dst == nullptr) {
    *budget = 0;  // nothing to pad, or no room until the socket drains
    return;
  }
  std::memset(dst, 0, want);
  out.commit(want);
  body_done_ += want;
  *budget -= want;
}

void FileSender::finish() {
  finished_ = true;
  if (!failed_) {
    // Modified in place (same size) is caught by mtime; ctime catches even a writer
    // that restored mtime with utimensat, since ctime cannot be set from user space.
    struct stat now {};
    if (fstat(fd_.get(), &now) != 0) {
      failed_ = true;
      failure_code_ = protocol::ErrorCode::kIoError;
      failure_message_ = std::string("stat failed after sending: ") + std::strerror(errno);
    } else if (now.st_size != opened_.st_size || !same_timespec(now.st_mtim, opened_.st_mtim) ||
               !same_timespec(now.st_ctim, opened_.st_ctim)) {
      failed_ = true;
      failure_message_ = "the file was modified while it was being sent";
    }
  }
  fd_.reset();  // release the descriptor as soon as the data is read, not when sent
  if (!failed_) digest_ = hash_.finish();
}

protocol::Message FileSender::trailer() const {
  if (failed_) return protocol::ErrorMessage{failure_code_, failure_message_};
  return protocol::End{digest_};
}

}  // namespace server
