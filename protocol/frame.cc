#include "protocol/frame.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace protocol {
namespace {

// A partial-header string that grew past this is released after use instead of kept,
// so thousands of idle connections do not each pin a 64 KiB buffer.
constexpr size_t kKeepPartialCapacity = 4096;

}  // namespace

FrameDecoder::FrameDecoder(size_t header_limit) : limit_(header_limit) {}

const ProtocolError& FrameDecoder::error() const {
  static const ProtocolError kNone{ErrorCode::kInternal, "no error"};
  return error_ ? *error_ : kNone;
}

DecodeEvent FrameDecoder::fail(ErrorCode code, std::string message) {
  state_ = State::kError;
  error_ = std::make_unique<ProtocolError>(ProtocolError{code, std::move(message)});
  partial_.reset();
  return DecodeEvent{DecodeEvent::kError, nullptr, 0};
}

DecodeEvent FrameDecoder::finish_header(const char* header, size_t len) {
  ProtocolError err;
  JsonPtr parsed = parse_header(header, len, &err);
  if (!parsed) return fail(err.code, std::move(err.message));
  uint64_t body = 0;
  FieldReader fields(*parsed, &err);
  if (!fields.read_optional_size("body", &body)) return fail(err.code, std::move(err.message));
  header_ = std::move(parsed);
  body_length_ = body;
  body_remaining_ = body;
  state_ = body > 0 ? State::kBody : State::kPrefix;
  return DecodeEvent{DecodeEvent::kHeader, nullptr, 0};
}

DecodeEvent FrameDecoder::next(const char* data, size_t len, size_t* consumed) {
  // The previous header has been handled by now: a parsed tree is several hundred bytes,
  // and ten thousand idle connections would otherwise each keep their last one.
  header_.reset();
  size_t used = 0;
  DecodeEvent ev = step(data, len, &used);
  *consumed = ev.kind == DecodeEvent::kError ? 0 : used;
  return ev;
}

DecodeEvent FrameDecoder::step(const char* data, size_t len, size_t* used) {
  size_t pos = 0;
  for (;;) {
    switch (state_) {
      case State::kError:
        return DecodeEvent{DecodeEvent::kError, nullptr, 0};

      case State::kPrefix: {
        const size_t take = std::min(len - pos, kFramePrefixLen - prefix_have_);
        if (take > 0) std::memcpy(prefix_ + prefix_have_, data + pos, take);
        prefix_have_ += take;
        pos += take;
        *used = pos;
        if (prefix_have_ < kFramePrefixLen) return DecodeEvent{};
        const uint32_t n = static_cast<uint32_t>(prefix_[0]) << 24 |
                           static_cast<uint32_t>(prefix_[1]) << 16 |
                           static_cast<uint32_t>(prefix_[2]) << 8 |
                           static_cast<uint32_t>(prefix_[3]);
        prefix_have_ = 0;
        // Judged from the four bytes alone: nothing of an oversized header is buffered.
        if (n == 0) return fail(ErrorCode::kEmptyHeader, "header length is 0");
        if (n > limit_) {
          return fail(ErrorCode::kHeaderTooLarge, "header length " + std::to_string(n) +
                                                      " exceeds the limit of " +
                                                      std::to_string(limit_));
        }
        header_len_ = n;
        state_ = State::kHeader;
        continue;
      }

      case State::kHeader: {
        const size_t avail = len - pos;
        if ((!partial_ || partial_->empty()) && avail >= header_len_) {
          // The common case: the whole header is in this slice; parse it in place.
          *used = pos + header_len_;
          return finish_header(data + pos, header_len_);
        }
        // Made on first need: most connections never see a header split across reads,
        // and an idle one should not carry an empty string for it.
        if (!partial_) partial_ = std::make_unique<std::string>();
        const size_t take = std::min(avail, header_len_ - partial_->size());
        partial_->append(data + pos, take);
        *used = pos + take;
        if (partial_->size() < header_len_) return DecodeEvent{};
        DecodeEvent ev = finish_header(partial_->data(), partial_->size());
        if (!partial_) return ev;  // failed: fail() released it
        if (partial_->capacity() > kKeepPartialCapacity) {
          partial_.reset();
        } else {
          partial_->clear();
        }
        return ev;
      }

      case State::kBody: {
        const size_t avail = len - pos;
        *used = pos;
        if (avail == 0) return DecodeEvent{};
        const size_t chunk =
            body_remaining_ < avail ? static_cast<size_t>(body_remaining_) : avail;
        body_remaining_ -= chunk;
        if (body_remaining_ == 0) state_ = State::kPrefix;
        *used = pos + chunk;
        return DecodeEvent{DecodeEvent::kBody, data + pos, chunk};
      }
    }
  }
}

void append_frame(std::string& out, const cJSON& header) {
  // Printed into one reusable buffer per thread: cJSON_PrintUnformatted would allocate and
  // grow a fresh one for every frame. cJSON wants 5 bytes of slack beyond the text; a
  // header too big for the buffer (over the protocol's limit anyway) takes the slow path.
  thread_local std::unique_ptr<char[]> scratch(new char[kMaxHeaderLen + 64]);
  std::unique_ptr<char, decltype(&cJSON_free)> allocated(nullptr, &cJSON_free);
  const char* text = scratch.get();
  if (!cJSON_PrintPreallocated(const_cast<cJSON*>(&header), scratch.get(), static_cast<int>(kMaxHeaderLen + 64), 0)) {
    allocated.reset(cJSON_PrintUnformatted(&header));
    if (!allocated) throw std::bad_alloc();
    text = allocated.get();
  }
  const size_t n = std::strlen(text);
  const auto n32 = static_cast<uint32_t>(n);
  const char prefix[kFramePrefixLen] = {
      static_cast<char>(n32 >> 24), static_cast<char>(n32 >> 16 & 0xff),
      static_cast<char>(n32 >> 8 & 0xff), static_cast<char>(n32 & 0xff)};
  out.append(prefix, kFramePrefixLen);
  out.append(text, n);
}

std::string encode_frame(const cJSON& header) {
  std::string out;
  append_frame(out, header);
  return out;
}

}  // namespace protocol
