// libFuzzer target: the frame decoder fed arbitrarily split input, and every header it
// accepts through the message parser, for every message type either side receives.
//
// Input: byte 0 picks the header limit (before or after auth) and byte 1 the split
// pattern; the rest is the stream. Oracles, beyond the sanitizers: the decoder never
// reports more body than it announced; a message that parses re-encodes to a frame that
// parses back to an equal message (what one side sends, the other reads the same).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "protocol/frame.h"
#include "protocol/messages.h"

namespace {

void check_round_trip(const protocol::Message& message, uint64_t body_length) {
  std::string frame = protocol::encode(message);
  protocol::FrameDecoder decoder(protocol::kMaxHeaderLen);
  size_t used = 0;
  protocol::DecodeEvent event = decoder.next(frame.data(), frame.size(), &used);
  if (event.kind != protocol::DecodeEvent::kHeader) std::abort();  // what we send, we must read
  protocol::ProtocolError err;
  std::optional<protocol::Message> again = protocol::parse_message(decoder.header(), body_length, &err);
  if (!again || !(*again == message)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t limit = (data[0] & 1) != 0 ? protocol::kMaxHeaderLen : protocol::kMaxHeaderLenBeforeAuth;
  const unsigned split = data[1];
  const char* stream = reinterpret_cast<const char*>(data + 2);
  size_t left = size - 2;

  protocol::FrameDecoder decoder(limit);
  uint64_t body_seen = 0;
  uint64_t body_announced = 0;
  size_t piece = 1 + split % 7;
  while (left > 0) {
    // Irregular pieces, 1 to 61 bytes, as reads from a socket return them.
    const char* p = stream;
    size_t len = left < piece ? left : piece;
    stream += len;
    left -= len;
    piece = 1 + (piece * 5 + split) % 61;
    while (len > 0) {
      size_t used = 0;
      protocol::DecodeEvent event = decoder.next(p, len, &used);
      if (used > len) std::abort();
      p += used;
      len -= used;
      switch (event.kind) {
        case protocol::DecodeEvent::kError:
          if (used != 0) std::abort();  // an error consumes nothing
          return 0;
        case protocol::DecodeEvent::kNeedMore:
          if (len != 0) std::abort();  // need-more consumes the whole slice
          break;
        case protocol::DecodeEvent::kHeader: {
          if (body_seen != body_announced) std::abort();  // the previous body was cut short
          body_seen = 0;
          body_announced = decoder.body_length();
          protocol::ProtocolError err;
          std::optional<protocol::Message> message =
              protocol::parse_message(decoder.header(), decoder.body_length(), &err);
          if (message) check_round_trip(*message, decoder.body_length());
          break;
        }
        case protocol::DecodeEvent::kBody:
          if (event.size != used || event.size == 0) std::abort();
          body_seen += event.size;
          if (body_seen > body_announced) std::abort();
          break;
      }
    }
  }
  return 0;
}
