#pragma once
// FramedStream: one connection's I/O, the same for the server's sessions and the
// client's connections. It owns the descriptor, the Transport that moves its bytes, the
// input and output Buffers and the FrameDecoder, and it is the only code that touches
// them. Above it sit pure protocol state machines (server::Session, client::Connection):
// they see typed messages and body chunks arrive, queue messages and bodies to send, and
// never read, write or watch a descriptor themselves.
//
// One wakeup, in on_events():
//   1. read until the transport would block, the read budget is spent, or the input
//      buffer holds its high-water mark; decode as it goes (a body streams through the
//      handler chunk by chunk, so the input buffer never holds more than a slice);
//   2. pump(): deliver frames while the handler accepts input and the output is below
//      its high-water mark; fill the output from the current Producer while it is
//      below the low-water mark; write within the write budget (zero copy where both
//      the producer and the transport can); repeat, bounded, while a finished response
//      uncovered queued requests;
//   3. watch for what is needed next: readable while input may come and there is room,
//      writable while output is queued or a producer is active, each in the form the
//      transport asks for (a TLS read can wait for writability).
//
// The errno policy lives here, once: EINTR is retried (by the transport), EAGAIN waits
// for readiness, anything else ends the connection and is reported to the handler with
// its direction and errno; the handler chooses the words and whether to close.
//
// Handler callbacks run from inside the stream's own processing (events, pump). A
// frame queued from outside a callback (a timer, start-up) is written at once, as a
// blocking program's send would be; the one callback that can then run inside the
// handler's own call is on_failure, for a connection that has already failed.
//
// Not thread-safe, like the loop it runs on.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/frame.h"
#include "protocol/messages.h"
#include "reactor/buffer.h"
#include "reactor/event_loop.h"
#include "reactor/token_bucket.h"
#include "reactor/transport.h"
#include "reactor/unique_fd.h"

namespace protocol {

// Produces the rest of a response (a file body, a listing) into the stream's output as
// room appears, so a response of any size never sits in memory whole.
class Producer {
 public:
  virtual ~Producer() = default;
  // Adds up to about `budget` bytes to `out`, or does that much work without output
  // (hashing a prefix that is not sent). Returns the bytes processed; 0 when `out`
  // has no room left, or to yield: the producer has done a pass's worth of work (a
  // listing's frame costs a stat per entry), and the stream calls it again on its next
  // pass, after the loop has served the other connections.
  virtual size_t produce(reactor::Buffer& out, size_t budget) = 0;
  virtual bool finished() const = 0;
  // Zero copy. The stream calls allow_zero_copy() once, with whether its transport can
  // send files; while zero_copy() is then true and nothing else is queued, it calls
  // send_file() instead of produce(). send_file returns bytes sent; 0 when the producer
  // switched to produce() (the file shrank, or cannot be sent this way); -1 with the
  // transport's error.
  virtual void allow_zero_copy(bool /*possible*/) {}
  virtual bool zero_copy() const { return false; }
  virtual reactor::IoResult send_file(reactor::Transport& /*transport*/, size_t /*budget*/) { return {}; }
};

// Why a stream cannot go on. The handler decides the words and closes (or, for a
// server, answers an error first where the protocol says so).
struct StreamFailure {
  enum Kind {
    kBadFrame,     // the framing broke a rule: `error` has the code and text
    kBadMessage,   // a well-framed header is not a valid message: `error`
    kEndOfInput,   // the peer closed its sending side, every whole frame it sent has
                   // been delivered and what they caused written; `clean`: nothing of a
                   // frame was left over
    kReadFailed,   // `errnum`
    kWriteFailed,  // `errnum`
    kOutputFull,   // send() found the output buffer at its limit
    kHandshake,    // the transport's handshake failed: `text`
    kLoop,         // the event loop refused the descriptor: `text`
  };
  Kind kind = kLoop;
  ProtocolError error;
  int errnum = 0;
  bool clean = false;
  std::string text;  // kHandshake, kLoop; for kReadFailed/kWriteFailed the transport's words, if any
  reactor::HandshakeFailure handshake = reactor::HandshakeFailure::kOther;  // kHandshake
  // kHandshake with kWrongProtocol, and kBadFrame on the very first frame: the first
  // bytes the peer sent, for saying what it speaks instead (see protocol/peer_sniff.h).
  std::string peer_bytes;
};

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Whether the next frame may be delivered now. While false, input waits in the
  // buffer (then in the kernel, once the buffer reaches its high-water mark).
  virtual bool accepting_input() const = 0;
  // A header, validated and typed. Its body, if any, follows through on_body().
  virtual void on_message(Message& message) = 0;
  // The next chunk of the current frame's body; `remaining` bytes of it follow. The
  // chunk points into the input buffer and is valid during the call only.
  virtual void on_body(const char* data, size_t len, uint64_t remaining) = 0;
  // The producer given to start_producing() has finished; the stream has forgotten it.
  virtual void on_produced() = 0;
  virtual void on_failure(const StreamFailure& failure) = 0;
};

struct StreamLimits {
  size_t header_limit = kMaxHeaderLen;       // the decoder's, see FrameDecoder
  size_t input_max = 512 * 1024;             // the input buffer's hard maximum
  size_t input_high_water = 512 * 1024;      // stop reading while this much waits
  size_t output_high_water = SIZE_MAX;       // stop delivering frames while this much is queued
  size_t read_budget = 1024 * 1024;          // bytes read per wakeup
  size_t body_read_slice = 0;                // room made for each read while a body streams in
  size_t write_budget = 256 * 1024;          // bytes written per wakeup, sendfile included
  size_t produce_low_water = 128 * 1024;     // ask the producer for more below this
};

class FramedStream {
 public:
  using Clock = reactor::EventLoop::Clock;

  // `limits` is kept by reference: one static object per kind of stream, so an idle
  // connection does not carry a copy.
  FramedStream(reactor::EventLoop& loop, StreamHandler& handler, const StreamLimits& limits);
  // Unregisters and closes whatever it still holds; no callback runs.
  ~FramedStream();
  FramedStream(const FramedStream&) = delete;
  FramedStream& operator=(const FramedStream&) = delete;

  // Takes the connection: `transport` null means the plain socket transport, which the
  // stream embeds. hold() only keeps it; attach() also starts watching it, false + *err
  // if the loop refuses it (the descriptor is then closed). attach_registered(): the loop
  // already watches `fd` with `interest` and routes its events to on_events()
  // (reactor::Connector::hand_over).
  void hold(reactor::UniqueFd fd, std::unique_ptr<reactor::Transport> transport);
  bool attach(std::string* err);
  bool attach(reactor::UniqueFd fd, std::unique_ptr<reactor::Transport> transport, std::string* err) {
    hold(std::move(fd), std::move(transport));
    return attach(err);
  }
  void attach_registered(reactor::UniqueFd fd, std::unique_ptr<reactor::Transport> transport, uint32_t interest);
  // The loop's callback for the descriptor.
  void on_events(uint32_t events);

  // Queues one frame, and outside a stream callback also writes it. False if the stream
  // failed meanwhile: on_failure (kOutputFull when the output buffer is at its limit, or
  // a write error) has run before this returns.
  bool send(const Message& message);
  // Hands the rest of the current response to `producer`, which must stay alive until
  // on_produced() or stop_producing(); the frame that announces it is queued first.
  void start_producing(Producer& producer);
  void stop_producing() { producer_ = nullptr; }
  bool producing() const { return producer_ != nullptr; }

  // After a fatal error frame: no more frames are delivered and input is discarded;
  // once the output is through, the sending side is shut down, and the peer's end of
  // stream arrives as on_failure(kEndOfInput). Closing with unread input would make
  // the kernel send a reset, which can destroy the error frame before it is read.
  void drain();
  bool draining() const { return draining_; }

  // Delivers, produces and writes now, then updates the loop's interest: for a handler
  // whose state changed outside a stream callback (a timer) so that queued input can be
  // delivered now.
  void pump();

  // Unregisters and closes the descriptor; no callback runs after this. Idempotent.
  void close();
  bool closed() const { return closed_; }

  void set_header_limit(size_t limit) { decoder_.set_header_limit(limit); }
  // Caps each direction at `bytes_per_second` (0: no cap), handshake excluded: a
  // direction that has used its share stops asking the loop for readiness, and a timer
  // brings it back when the next step may move (reactor::TokenBucket).
  void set_rate_limit(uint64_t bytes_per_second);
  // Whether the transport's handshake is over (at once for the plain transport).
  bool secured() const { return handshake_done_; }
  // Before the transport's handshake has begun on the wire: writes `bytes` straight to
  // the socket, past the transport, then closes. For telling a peer that speaks the wrong
  // thing (a plain client at a TLS listener) what is wrong, in words it can read.
  void refuse_in_clear(const std::string& bytes);
  // Last time bytes moved in either direction, or the stream was attached.
  Clock::time_point last_activity() const { return last_activity_; }
  // Marks the connection active although no byte moved: work done for the peer, such
  // as hashing a prefix that is not sent, is not the peer's idleness.
  void touch() { last_activity_ = loop_.now(); }
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }
  size_t output_queued() const { return out_.readable(); }
  size_t input_queued() const { return in_.readable(); }
  uint32_t interest() const { return interest_; }
  int fd() const { return fd_.get(); }
  reactor::Transport* transport() { return transport_; }
  const reactor::Transport* transport() const { return transport_; }

 private:
  void read_input();
  bool deliver_input();  // true: stopped because the output is at its high-water mark
  void produce();
  bool flush();
  void finish_producing();
  void update_interest();
  bool reading() const;
  void write_now();
  void shut_after_drain();
  bool start_handshake(std::string* err);
  void fail(StreamFailure failure);
  void fail_errno(StreamFailure::Kind kind, int errnum);
  void fail_handshake(std::string text);
  void report_end_of_input();
  // Whether a rate-capped direction must wait before its next step; if so, arms the
  // timer that pumps the stream again once it may move.
  bool rate_paused(reactor::TokenBucket& bucket);

  reactor::EventLoop& loop_;
  StreamHandler& handler_;
  const StreamLimits& limits_;
  reactor::UniqueFd fd_;
  // The transport in use: plain_, or owned_ (TLS). Both use fd_, so they are declared
  // after it and destroyed first.
  reactor::SocketTransport plain_;
  std::unique_ptr<reactor::Transport> owned_;
  reactor::Transport* transport_ = &plain_;
  reactor::Buffer in_;
  reactor::Buffer out_;
  FrameDecoder decoder_;
  Producer* producer_ = nullptr;
  uint32_t interest_ = 0;
  bool registered_ = false;
  bool handshake_done_ = false;
  bool closed_ = true;  // until attached
  bool draining_ = false;
  bool write_shut_ = false;
  bool input_ended_ = false;
  bool end_pending_ = false;  // input ended and all of it delivered; output still to go
  bool end_reported_ = false;
  int depth_ = 0;  // > 0 while inside on_events() or pump(): callbacks may be running
  bool yielded_ = false;  // the producer returned 0 this pass: not called again until the next
  Clock::time_point last_activity_{};
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint32_t frames_in_ = 0;  // headers delivered (saturating is fine: only 0 matters)
  reactor::TokenBucket read_rate_;
  reactor::TokenBucket write_rate_;
  reactor::EventLoop::TimerId rate_timer_ = 0;
};

}  // namespace protocol
