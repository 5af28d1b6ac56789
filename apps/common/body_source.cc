#include "apps/common/body_source.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace app {
namespace {

bool same_timespec(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

}  // namespace

BodySource::BodySource(reactor::UniqueFd fd, const struct stat& opened, uint64_t offset, protocol::DigestKind kind,
                       std::optional<protocol::Digest> cached, std::optional<uint64_t> length)
    : fd_(std::move(fd)),
      opened_(opened),
      size_(static_cast<uint64_t>(opened.st_size)),
      offset_(offset),
      // Hashing must see the whole file: a range is honoured only with a known digest.
      end_(cached && length ? offset + std::min(*length, size_ - offset) : size_),
      kind_(kind),
      hashing_(!cached),
      zero_copy_(cached.has_value() && end_ - offset_ >= kZeroCopyMin),
      planned_zero_copy_(zero_copy_) {
  if (hashing_) hash_.emplace(kind, /*keep_leaves=*/true);
  if (cached) {
    digest_ = *cached;
    pos_ = offset_;  // nothing to hash: the prefix is not read at all
  }
  if (pos_ == end_) finish();
}

void BodySource::fail(protocol::ErrorCode code, std::string message) {
  failed_ = true;
  failure_code_ = code;
  failure_message_ = std::move(message);
}

size_t BodySource::produce(reactor::Buffer& out, size_t budget) {
  size_t processed = 0;
  while (!finished_ && budget > 0) {
    if (failed_) {
      size_t before = budget;
      pad(out, &budget);
      processed += before - budget;
      if (body_done_ == body_length()) finish();
      if (before == budget) break;  // no room until the socket drains
      continue;
    }
    if (zero_copy_) break;  // send_file() moves the body
    bool in_prefix = pos_ < offset_;
    uint64_t limit = in_prefix ? offset_ : end_;
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
      if (n == 0)
        fail(protocol::ErrorCode::kFileChanged,
             "the file shrank while it was being sent (to " + std::to_string(pos_) + " bytes)");
      else
        fail(protocol::ErrorCode::kIoError, std::string("read failed while sending: ") + std::strerror(errno));
      continue;
    }
    size_t got = static_cast<size_t>(n);
    if (hashing_) hash_->update(dst, got);
    if (!in_prefix) {
      out.commit(got);
      body_done_ += got;
    }
    pos_ += got;
    processed += got;
    budget -= got;
    if (pos_ == end_) finish();
  }
  if (pos_ >= offset_ && !prefix_scratch_.empty()) prefix_scratch_ = std::vector<char>();
  return processed;
}

reactor::IoResult BodySource::send_file(reactor::Transport& transport, size_t budget) {
  reactor::IoResult r;
  if (!zero_copy() || budget == 0) return r;
  size_t want = static_cast<size_t>(std::min<uint64_t>(end_ - pos_, budget));
  uint64_t offset = pos_;
  r = transport.send_file(fd_.get(), &offset, want);
  if (r.bytes > 0) {
    pos_ += static_cast<uint64_t>(r.bytes);
    body_done_ += static_cast<uint64_t>(r.bytes);
    if (pos_ == end_) finish();
    return r;
  }
  if (r.bytes == 0) {
    fail(protocol::ErrorCode::kFileChanged,
         "the file shrank while it was being sent (to " + std::to_string(pos_) + " bytes)");
    return r;
  }
  if (r.error == EINVAL || r.error == ENOSYS || r.error == EOPNOTSUPP) {
    // A file system without sendfile support: read it instead (still unhashed: the
    // digest is known).
    zero_copy_ = false;
    return reactor::IoResult{};
  }
  if (r.error == EIO) {
    fail(protocol::ErrorCode::kIoError, std::string("read failed while sending: ") + std::strerror(r.error));
    return reactor::IoResult{};
  }
  return r;  // the connection's problem: EAGAIN, EPIPE, ECONNRESET, ...
}

void BodySource::pad(reactor::Buffer& out, size_t* budget) {
  size_t want = static_cast<size_t>(std::min<uint64_t>({kChunk, body_length() - body_done_, *budget}));
  char* dst = want == 0 ? nullptr : out.begin_write(want);
  if (dst == nullptr) return;
  std::memset(dst, 0, want);
  out.commit(want);
  body_done_ += want;
  *budget -= want;
}

void BodySource::finish() {
  finished_ = true;
  if (!failed_) {
    // Modified in place (same size) is caught by mtime; ctime catches even a writer
    // that restored mtime with utimensat, since ctime cannot be set from user space.
    struct stat now {};
    if (fstat(fd_.get(), &now) != 0) {
      fail(protocol::ErrorCode::kIoError, std::string("stat failed after sending: ") + std::strerror(errno));
    } else if (now.st_size != opened_.st_size || !same_timespec(now.st_mtim, opened_.st_mtim) ||
               !same_timespec(now.st_ctim, opened_.st_ctim)) {
      fail(protocol::ErrorCode::kFileChanged, "the file was modified while it was being sent");
    }
  }
  fd_.reset();  // release the descriptor as soon as the data is read, not when sent
  if (!failed_ && hashing_) digest_ = hash_->finish();
}

protocol::Message BodySource::trailer() const {
  if (failed_) return protocol::ErrorMessage{failure_code_, failure_message_};
  return protocol::End::of(kind_, digest_);
}

const std::vector<protocol::Digest>& BodySource::computed_leaves() const {
  static const std::vector<protocol::Digest> kNone;
  return hash_ ? hash_->leaves() : kNone;
}

std::optional<protocol::Digest> BodySource::computed_digest() const {
  if (!finished_ || failed_ || !hashing_) return std::nullopt;
  return digest_;
}

}  // namespace app
