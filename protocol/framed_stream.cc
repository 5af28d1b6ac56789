#include "protocol/framed_stream.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>

namespace protocol {
namespace {

bool would_block(int errnum) { return errnum == EAGAIN || errnum == EWOULDBLOCK || errnum == EINTR; }

// A pass that delivered frames, produced and wrote goes round again only while a
// finished response uncovered queued requests; bounded, so a client with thousands of
// pipelined pings still yields to the other connections.
constexpr int kMaxRounds = 64;

// Finished small responses are written once this much is queued (see pump()).
constexpr size_t kCoalesceBytes = 16 * 1024;

}  // namespace

FramedStream::FramedStream(reactor::EventLoop& loop, StreamHandler& handler, const StreamLimits& limits)
    : loop_(loop),
      handler_(handler),
      limits_(limits),
      in_(limits.input_max),
      out_(),
      decoder_(limits.header_limit) {}

FramedStream::~FramedStream() { close(); }

bool FramedStream::start_handshake(std::string* err) {
  if (handshake_done_) return true;
  switch (transport_->handshake(err)) {
    case reactor::Transport::Handshake::kDone:
      handshake_done_ = true;
      return true;
    case reactor::Transport::Handshake::kAgain:
      return true;
    case reactor::Transport::Handshake::kFailed:
      return false;
  }
  return false;
}

void FramedStream::hold(reactor::UniqueFd fd, std::unique_ptr<reactor::Transport> transport) {
  fd_ = std::move(fd);
  owned_ = std::move(transport);
  plain_.set_fd(fd_.get());
  transport_ = owned_ ? owned_.get() : &plain_;
  closed_ = false;
}

bool FramedStream::attach(std::string* err) {
  last_activity_ = loop_.now();
  if (!loop_.add(fd_.get(), transport_->read_interest(), [this](uint32_t events) { on_events(events); }, err)) {
    close();
    return false;
  }
  registered_ = true;
  interest_ = transport_->read_interest();
  // A transport with a handshake starts it at once (a TLS client speaks first); the
  // plain one is done before it begins. A handshake that fails at once (the peer's
  // first bytes are already there, and wrong) is reported like any other: on_failure.
  std::string why;
  if (!start_handshake(&why)) {
    fail_handshake(std::move(why));
    return true;
  }
  update_interest();
  return true;
}

void FramedStream::attach_registered(reactor::UniqueFd fd, std::unique_ptr<reactor::Transport> transport,
                                     uint32_t interest) {
  hold(std::move(fd), std::move(transport));
  registered_ = true;
  interest_ = interest;
  last_activity_ = loop_.now();
  std::string err;
  if (!start_handshake(&err)) return fail_handshake(std::move(err));
  update_interest();
}

void FramedStream::fail_handshake(std::string text) {
  StreamFailure failure;
  failure.kind = StreamFailure::kHandshake;
  failure.text = std::move(text);
  failure.handshake = transport_->handshake_failure();
  failure.peer_bytes = transport_->peer_bytes();
  fail(std::move(failure));
}

void FramedStream::refuse_in_clear(const std::string& bytes) {
  if (closed_) return;
  // One best-effort send: a fresh socket's buffer takes a short frame whole.
  (void)::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd_.get(), SHUT_WR);
  // Closing with unread input makes the kernel answer with a reset, which can destroy
  // what we just sent before the peer reads it (curl then says "connection reset"
  // instead of showing a 400): take what has arrived first, a bounded amount.
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(fd_.get(), sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
  close();
}

void FramedStream::close() {
  if (closed_ && !fd_) return;
  closed_ = true;
  producer_ = nullptr;
  if (rate_timer_ != 0) {
    loop_.cancel(rate_timer_);
    rate_timer_ = 0;
  }
  if (registered_) {
    // The stream's descriptor is never duplicated and closes right below.
    loop_.remove_before_close(fd_.get());
    registered_ = false;
  }
  owned_.reset();
  transport_ = &plain_;
  fd_.reset();
  plain_.set_fd(-1);
}

void FramedStream::on_events(uint32_t events) {
  if (closed_) return;
  if (!handshake_done_) {
    std::string err;
    if (!start_handshake(&err)) return fail_handshake(std::move(err));
    if (!handshake_done_) {
      update_interest();
      return;
    }
    last_activity_ = loop_.now();
  }
  // Read only when the transport's read can make progress: for a plain socket a
  // writable wakeup (most of them, during a download) then costs no recv that says
  // EAGAIN. Input the transport already holds is read whatever woke us.
  ++depth_;
  if ((events & (transport_->read_interest() | reactor::kHangup | reactor::kError)) ||
      transport_->has_buffered_input())
    read_input();
  --depth_;
  if (!closed_) pump();
}

bool FramedStream::reading() const {
  // While draining, reading waits until the error frame is out and the sending side is
  // shut: from then on only the peer's end of stream is of interest.
  return !closed_ && !input_ended_ && (!draining_ || write_shut_);
}

void FramedStream::read_input() {
  size_t budget = static_cast<size_t>(std::min<uint64_t>(limits_.read_budget, read_rate_.available(loop_.now())));
  while (reading() && budget > 0 && in_.readable() < limits_.input_high_water) {
    // While a body streams in, read it in big slices: at GiB/s the count of system
    // calls is what costs. Handshakes and small replies fit the buffer's default size
    // (plus the read's stack spill).
    if (limits_.body_read_slice > 0 && decoder_.body_remaining() > 0) in_.begin_write(limits_.body_read_slice);
    reactor::IoResult r = transport_->read(in_, budget);
    if (r.bytes > 0) {
      size_t got = static_cast<size_t>(r.bytes);
      budget -= std::min(budget, got);
      bytes_in_ += got;
      read_rate_.spend(got);
      last_activity_ = loop_.now();
      if (draining_) {
        in_.consume_all();  // nothing more is acted on
      } else {
        deliver_input();
      }
      if (!r.more) break;
      continue;
    }
    if (r.bytes == 0) {
      // The peer is done sending, perhaps only half-closed (nc -N, socat) and still
      // reading: what it sent before is still answered. The end is reported once every
      // whole frame has been delivered (deliver_input); while draining, at once.
      input_ended_ = true;
      if (draining_) {
        report_end_of_input();
      } else {
        deliver_input();
      }
      return;
    }
    if (would_block(r.error)) break;
    if (r.error == EMSGSIZE) break;  // the buffer is full: interest drops below
    fail_errno(StreamFailure::kReadFailed, r.error);
    return;
  }
}

bool FramedStream::deliver_input() {
  while (!closed_ && !draining_ && handler_.accepting_input()) {
    // A peer that pipelines requests and never reads the answers is held back by TCP
    // instead of growing our memory.
    if (out_.readable() >= limits_.output_high_water) return true;
    size_t consumed = 0;
    DecodeEvent event = decoder_.next(in_.peek(), in_.readable(), &consumed);
    switch (event.kind) {
      case DecodeEvent::kNeedMore:
        in_.consume(consumed);
        // Every whole frame is delivered: once what they caused is written too, the end
        // is reported (pump), so that a handler may close at once.
        if (input_ended_) end_pending_ = true;
        return false;
      case DecodeEvent::kError: {
        StreamFailure failure;
        // The first frame already broken: the peer's first bytes may say what it speaks.
        if (frames_in_ == 0) failure.peer_bytes.assign(in_.peek(), std::min<size_t>(in_.readable(), 64));
        in_.consume(consumed);
        failure.kind = StreamFailure::kBadFrame;
        failure.error = decoder_.error();
        fail(std::move(failure));
        return false;
      }
      case DecodeEvent::kBody:
        // Deliver before consuming: the chunk points into the input buffer.
        handler_.on_body(event.data, event.size, decoder_.body_remaining());
        in_.consume(consumed);
        break;
      case DecodeEvent::kHeader: {
        in_.consume(consumed);
        ++frames_in_;
        StreamFailure failure;
        std::optional<Message> message = parse_message(decoder_.header(), decoder_.body_length(), &failure.error);
        if (!message) {
          failure.kind = StreamFailure::kBadMessage;
          fail(std::move(failure));
          return false;
        }
        handler_.on_message(*message);
        break;
      }
    }
  }
  return false;
}

void FramedStream::pump() {
  if (closed_) return;
  yielded_ = false;
  ++depth_;
  auto room_for_input = [this] {
    return !draining_ && handler_.accepting_input() && in_.readable() > 0 &&
           out_.readable() < limits_.output_high_water;
  };
  for (int round = 0; round < kMaxRounds && !closed_; ++round) {
    bool held_back = deliver_input();
    if (closed_) break;
    bool was_producing = producer_ != nullptr;
    produce();
    if (closed_) break;
    // Responses that finished in this round wait for a later write while together they
    // are small: pipelined small files go out a few to a write, not one write each. Not
    // many more: the peer works on what it has while we make the rest, and on 2 cores
    // that overlap is worth more than the writes saved (10,000 files of 4 KiB, measured:
    // writing at 128 KiB saved 95% of the sendto calls and lost 20% of the wall time; at
    // 16 KiB, a write per 3-4 files, ~10% faster than a write per file). A body still
    // being produced, or output holding input back, is written now.
    bool must_write = producer_ != nullptr || held_back || out_.readable() >= kCoalesceBytes;
    if (must_write && !flush()) break;
    // Round again only if this one made room for queued input: a response finished, or
    // output that held input back has drained.
    if (room_for_input() && (was_producing || held_back)) continue;
    // The pass ends: small responses still queued go out together. Only when this round
    // has not written already: one write budget per pass, or a stream being produced
    // into the buffer (TLS, a first-time hash) would hold the loop twice as long.
    if (!must_write && !out_.empty()) flush();
    break;
  }
  --depth_;
  if (closed_) return;
  shut_after_drain();
  if (end_pending_ && out_.empty() && producer_ == nullptr) {
    report_end_of_input();
    if (closed_) return;
  }
  update_interest();
}

void FramedStream::shut_after_drain() {
  if (draining_ && out_.empty() && producer_ == nullptr && !write_shut_) {
    std::string ignored;  // the peer may be gone already; its end of stream is what we wait for
    transport_->shutdown_write(&ignored);
    write_shut_ = true;
  }
}

void FramedStream::produce() {
  size_t budget = limits_.write_budget;
  while (producer_ != nullptr && !closed_ && !yielded_ && out_.readable() < limits_.produce_low_water &&
         budget > 0) {
    if (producer_->finished()) {
      finish_producing();
      continue;
    }
    if (producer_->zero_copy()) break;  // flush() sends it straight from the file
    size_t done = producer_->produce(out_, std::min(budget, limits_.produce_low_water));
    budget -= std::min(budget, done);
    // Work done for the peer (hashing a prefix that is not sent) is not its idleness.
    if (done > 0) last_activity_ = loop_.now();
    if (producer_->finished()) {
      finish_producing();
      continue;
    }
    // The output at its limit (wait for the socket), or the producer yielding its turn.
    if (done == 0) yielded_ = true;
  }
}

void FramedStream::report_end_of_input() {
  if (end_reported_) return;
  end_reported_ = true;
  StreamFailure failure;
  failure.kind = StreamFailure::kEndOfInput;
  failure.clean = decoder_.at_frame_boundary() && in_.empty();
  fail(std::move(failure));
}

void FramedStream::finish_producing() {
  producer_ = nullptr;
  handler_.on_produced();
}

bool FramedStream::flush() {
  size_t budget = static_cast<size_t>(std::min<uint64_t>(limits_.write_budget, write_rate_.available(loop_.now())));
  while (budget > 0 && !closed_) {
    reactor::IoResult r;
    if (!out_.empty()) {
      r = transport_->write(out_, budget);
    } else if (producer_ != nullptr && producer_->zero_copy()) {
      // Everything queued before the body (its frame header) is out: the body may go
      // from the page cache to the socket.
      r = producer_->send_file(*transport_, budget);
      if (r.bytes == 0) {  // the producer changed mode (the file shrank, no sendfile)
        produce();
        continue;
      }
    } else {
      break;
    }
    if (r.bytes > 0) {
      size_t sent = static_cast<size_t>(r.bytes);
      budget -= std::min(budget, sent);
      bytes_out_ += sent;
      write_rate_.spend(sent);
      last_activity_ = loop_.now();
      // Keep the socket fed while the producer has more and the budget lasts.
      if (producer_ != nullptr && out_.readable() < limits_.produce_low_water) produce();
      continue;
    }
    if (would_block(r.error)) break;
    fail_errno(StreamFailure::kWriteFailed, r.error);
    return false;
  }
  if (closed_) return false;
  // Idle connections hold no buffer memory.
  if (out_.empty() && producer_ == nullptr) out_.shrink_if_empty();
  if (in_.empty()) in_.shrink_if_empty();
  return true;
}

void FramedStream::update_interest() {
  if (closed_ || !registered_) return;
  uint32_t want = 0;
  if (!handshake_done_) {
    want = transport_->handshake_interest();
  } else {
    // A direction that has used its --limit-rate share waits for the timer instead.
    bool room = reading() && in_.readable() < limits_.input_high_water && !rate_paused(read_rate_);
    if (room) want |= transport_->read_interest();
    if ((!out_.empty() || producer_ != nullptr) && !rate_paused(write_rate_)) want |= transport_->write_interest();
    // Bytes the transport already holds (decrypted TLS records) never make the
    // descriptor readable: ask to be woken at once, by writability, which a connected
    // socket almost always has, and on_events() reads them first thing. (nginx posts
    // such a read event to the next loop pass instead.)
    if (room && transport_->has_buffered_input()) want |= reactor::kWritable;
  }
  if (want != interest_) {
    std::string err;
    if (!loop_.modify(fd_.get(), want, &err)) {
      StreamFailure failure;
      failure.kind = StreamFailure::kLoop;
      failure.text = std::move(err);
      fail(std::move(failure));
      return;
    }
    interest_ = want;
  }
}

void FramedStream::set_rate_limit(uint64_t bytes_per_second) {
  read_rate_ = reactor::TokenBucket(bytes_per_second, loop_.now());
  write_rate_ = reactor::TokenBucket(bytes_per_second, loop_.now());
}

bool FramedStream::rate_paused(reactor::TokenBucket& bucket) {
  if (!bucket.limited()) return false;
  Clock::duration wait = bucket.wait(loop_.now());
  if (wait == Clock::duration::zero()) return false;
  if (rate_timer_ == 0) {
    rate_timer_ = loop_.run_after(wait, [this] {
      rate_timer_ = 0;
      pump();
    });
  }
  return true;
}

// Outside a callback nothing else would write what the handler just queued: write it
// now, the way a blocking program's send() would, and watch for what is needed next.
// Inside one, the running pass writes it.
void FramedStream::write_now() {
  if (depth_ > 0 || closed_ || !handshake_done_) {
    if (depth_ == 0) update_interest();
    return;
  }
  ++depth_;
  bool ok = flush();
  --depth_;
  if (!ok || closed_) return;
  shut_after_drain();
  update_interest();
}

bool FramedStream::send(const Message& message) {
  if (closed_) return false;
  std::string frame = encode(message);
  if (!out_.append(frame.data(), frame.size())) {
    StreamFailure failure;
    failure.kind = StreamFailure::kOutputFull;
    fail(std::move(failure));
    return false;
  }
  write_now();
  return !closed_;
}

void FramedStream::start_producing(Producer& producer) {
  producer_ = &producer;
  producer.allow_zero_copy(transport_->can_send_file());
  // Outside a callback: the loop calls back once writable, and the pass produces.
  if (depth_ == 0) update_interest();
}

void FramedStream::drain() {
  draining_ = true;
  write_now();
}

void FramedStream::fail_errno(StreamFailure::Kind kind, int errnum) {
  StreamFailure failure;
  failure.kind = kind;
  failure.errnum = errnum;
  failure.text = transport_->last_error();
  fail(std::move(failure));
}

void FramedStream::fail(StreamFailure failure) {
  if (closed_) return;
  handler_.on_failure(failure);
}

}  // namespace protocol
