#pragma once
// Frames: a 4-byte big-endian header length N, N bytes of JSON header, then the body
// the header's "body" field announces. FrameDecoder turns an arbitrary byte stream into
// header and body events; it owns no socket and no reactor::Buffer, so the same code
// serves the server, the client and the tests.

#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/error_code.h"
#include "protocol/json_header.h"

namespace protocol {

inline constexpr size_t kFramePrefixLen = 4;
inline constexpr size_t kMaxHeaderLen = 65536;
// Before authentication succeeds a server reads headers of at most this size, so an
// unauthenticated peer can make it hold little memory.
inline constexpr size_t kMaxHeaderLenBeforeAuth = 4096;
inline constexpr uint64_t kMaxBodyLen = uint64_t{1} << 53;

struct DecodeEvent {
  enum Kind {
    kNeedMore,  // everything given was consumed (and any partial frame kept); feed more
    kHeader,    // a complete, validated header: see FrameDecoder::header()
    kBody,      // data[0..size) is the next chunk of the current body
    kError,     // the stream is invalid: see FrameDecoder::error()
  };
  Kind kind = kNeedMore;
  // kBody only: points into the slice passed to next(); valid as long as that slice is.
  const char* data = nullptr;
  size_t size = 0;
};

// Incremental decoder. Typical use, per readable slice:
//
//   while (len > 0) {
//     size_t used = 0;
//     DecodeEvent ev = decoder.next(data, len, &used);
//     data += used; len -= used;
//     if (ev.kind == DecodeEvent::kNeedMore) break;
//     ... handle kHeader / kBody / kError (kError: send the error, close) ...
//   }
//
// next() reports at most one event per call. The length prefix is checked before a
// single header byte is buffered: 0 gives empty_header and more than header_limit()
// gives header_too_large. A header that arrives whole inside one slice is parsed in
// place; only a header split across slices is copied into a private string, which grows
// with the bytes actually received (never reserved from the declared length). Bodies
// are never buffered: each kBody event points into the caller's slice, so a body of any
// size streams through in O(1) decoder memory.
// After kError the decoder stays failed: every later next() returns kError again and
// consumes nothing.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t header_limit = kMaxHeaderLen);

  // Applies from the next length prefix on (a header already being read keeps the limit
  // it was admitted under). The server raises it from kMaxHeaderLenBeforeAuth after auth.
  void set_header_limit(size_t limit) { limit_ = limit; }
  size_t header_limit() const { return limit_; }

  // Looks at data[0..len) and sets *consumed to the bytes used. kNeedMore always
  // consumes all of len; kBody consumes exactly the chunk it reports; kHeader consumes
  // through the end of the header; kError consumes nothing.
  DecodeEvent next(const char* data, size_t len, size_t* consumed);

  // The header a kHeader event announced: valid until the next call to next(), which
  // frees it. Precondition: has_header(). body_length() stays valid while the body streams.
  const cJSON& header() const { return *header_; }
  bool has_header() const { return header_ != nullptr; }
  // The body size the current header announced ("body", absent = 0).
  uint64_t body_length() const { return body_length_; }
  // Body bytes of the current frame not yet reported; 0 after the last kBody event.
  uint64_t body_remaining() const { return body_remaining_; }

  bool failed() const { return state_ == State::kError; }
  const ProtocolError& error() const;

  // True between frames: an end of stream here is clean, anywhere else it truncated a frame.
  bool at_frame_boundary() const { return state_ == State::kPrefix && prefix_have_ == 0; }
  // Bytes held inside the decoder (a partial length prefix or partial header).
  size_t buffered() const { return prefix_have_ + (partial_ ? partial_->size() : 0); }

 private:
  enum class State { kPrefix, kHeader, kBody, kError };

  DecodeEvent step(const char* data, size_t len, size_t* used);
  DecodeEvent fail(ErrorCode code, std::string message);
  DecodeEvent finish_header(const char* header, size_t len);

  State state_ = State::kPrefix;
  size_t limit_;
  unsigned char prefix_[kFramePrefixLen] = {};
  size_t prefix_have_ = 0;
  size_t header_len_ = 0;
  std::unique_ptr<std::string> partial_;
  JsonPtr header_;
  uint64_t body_length_ = 0;
  uint64_t body_remaining_ = 0;
  std::unique_ptr<ProtocolError> error_;  // once failed
};

// Length prefix + compact JSON (cJSON_PrintUnformatted). The caller sends the body, if
// any, after it. The caller keeps the header within the peer's limit (kMaxHeaderLen);
// nothing here truncates. Allocation failure inside cJSON throws std::bad_alloc, the
// same as a failing std::string append would.
std::string encode_frame(const cJSON& header);
void append_frame(std::string& out, const cJSON& header);

}  // namespace protocol
