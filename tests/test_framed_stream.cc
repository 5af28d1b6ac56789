// FramedStream: one connection's I/O, driven in-process through a socketpair whose far end
// the test holds. The stream's transport is the plain one or a ScriptedTransport that
// moves a few bytes per call and reports EAGAIN on a schedule, so every frame arrives
// split at every byte and every call can find the socket "not ready".

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/body_source.h"
#include "protocol/framed_stream.h"
#include "protocol/messages.h"
#include "protocol/sha256.h"
#include "reactor/event_loop.h"
#include "reactor/transport.h"
#include "tests/support/files.h"
#include "tests/support/loop_driver.h"
#include "tests/support/raw_client.h"
#include "tests/support/scripted_transport.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;
using protocol::FramedStream;
using protocol::StreamFailure;

namespace {

// Records everything the stream reports; closes it on a failure, as a real handler does.
struct Recorder : protocol::StreamHandler {
  bool accepting = true;
  std::vector<protocol::Message> messages;
  std::string body;
  std::vector<uint64_t> remaining;
  int produced = 0;
  std::vector<StreamFailure> failures;
  FramedStream* stream = nullptr;
  bool close_on_failure = true;
  // Each message received is answered with this many bytes of a msg text frame.
  size_t reply_bytes = 0;

  bool accepting_input() const override { return accepting; }
  void on_message(protocol::Message& message) override {
    messages.push_back(message);
    if (reply_bytes > 0) {
      protocol::MsgRequest reply;
      reply.text = std::string(reply_bytes, 'r');
      stream->send(reply);
    }
  }
  void on_body(const char* data, size_t len, uint64_t left) override {
    body.append(data, len);
    remaining.push_back(left);
  }
  void on_produced() override { ++produced; }
  void on_failure(const StreamFailure& failure) override {
    failures.push_back(failure);
    if (close_on_failure) stream->close();
  }
};

struct Rig {
  protocol::StreamLimits limits;  // the stream keeps a reference
  std::unique_ptr<reactor::EventLoop> loop;
  Recorder handler;
  std::unique_ptr<FramedStream> stream;
  Fd peer;  // the test's end, blocking
  TransportCounters counters;
};

// A stream over a fresh socketpair; `script` null means the plain socket transport.
void make_rig(Rig& rig, const TransportScript* script, protocol::StreamLimits limits = {}) {
  std::string err;
  rig.loop = reactor::EventLoop::create_from_env(&err);
  cr_assert(rig.loop, "%s", err.c_str());
  Fd mine;
  cr_assert(stream_socketpair(&mine, &rig.peer, &err), "%s", err.c_str());
  rig.limits = limits;
  rig.stream = std::make_unique<FramedStream>(*rig.loop, rig.handler, rig.limits);
  rig.handler.stream = rig.stream.get();
  int fd = mine.get();
  std::unique_ptr<reactor::Transport> transport =
      script ? scripted_transport(fd, *script, &rig.counters) : reactor::make_socket_transport(fd);
  cr_assert(rig.stream->attach(reactor::UniqueFd(mine.release()), std::move(transport), &err), "%s", err.c_str());
}

void peer_send(Rig& rig, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(rig.peer.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    cr_assert_gt(n, 0, "send: %s", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

// Every byte the stream has written so far, read off the peer while the loop runs, until
// `want` bytes have arrived.
std::string peer_receive(Rig& rig, size_t want, Millis timeout = Millis(10000)) {
  std::string got;
  bool ok = run_until(*rig.loop, [&] {
    got += read_available(rig.peer.get());
    return got.size() >= want;
  }, timeout);
  cr_assert(ok, "received %zu of %zu bytes", got.size(), want);
  return got;
}

std::string file_header(uint64_t size) {
  return "{\"type\":\"file\",\"path\":\"x\",\"size\":" + std::to_string(size) +
         ",\"offset\":0,\"mtime\":0,\"mode\":420,\"body\":" + std::to_string(size) + "}";
}

// A mixed stream: requests without bodies and a file frame with one.
struct Script {
  std::string bytes;
  std::string body;
};

Script mixed_stream() {
  Script s;
  s.body = pattern_bytes(0, 300, 7);
  s.bytes = encode_frame(R"({"type":"ping"})") + encode_frame(R"({"type":"ping","token":"t1"})") +
            encode_frame(R"({"type":"get","path":"a/b","offset":5})") + encode_frame(file_header(300), s.body) +
            encode_frame(R"({"type":"msg","text":"done"})");
  return s;
}

void assert_mixed_stream_delivered(const Recorder& h, const Script& s) {
  cr_assert_eq(h.messages.size(), 5u, "%zu messages", h.messages.size());
  cr_assert_eq(protocol::type_of(h.messages[0]), protocol::MessageType::kPing);
  const auto& token = std::get<protocol::PingRequest>(h.messages[1]).token;
  cr_assert(token.has_value() && *token == "t1");
  const auto& get = std::get<protocol::GetRequest>(h.messages[2]);
  cr_assert(get.path == "a/b" && get.offset == 5);
  cr_assert_eq(std::get<protocol::FileHeader>(h.messages[3]).size, 300u);
  cr_assert(std::get<protocol::MsgRequest>(h.messages[4]).text == "done");
  cr_assert(h.body == s.body, "body differs (%zu bytes)", h.body.size());
  cr_assert(!h.remaining.empty() && h.remaining.back() == 0, "the last chunk leaves nothing");
  for (size_t i = 1; i < h.remaining.size(); ++i) cr_assert_lt(h.remaining[i], h.remaining[i - 1]);
  cr_assert(h.failures.empty(), "unexpected failure kind %d", h.failures.empty() ? -1 : h.failures[0].kind);
}

// A producer of `total` pattern bytes in pieces of at most `piece`.
struct PatternProducer : protocol::Producer {
  size_t total;
  size_t piece;
  size_t done = 0;
  PatternProducer(size_t t, size_t p) : total(t), piece(p) {}
  size_t produce(reactor::Buffer& out, size_t budget) override {
    size_t n = std::min({piece, budget, total - done});
    std::string bytes = pattern_bytes(done, n, 3);
    if (!out.append(bytes)) return 0;
    done += n;
    return n;
  }
  bool finished() const override { return done == total; }
};

}  // namespace

TestSuite(framed_stream, .timeout = 60);

Test(framed_stream, frames_split_at_every_byte) {
  Rig rig;
  make_rig(rig, nullptr);
  Script s = mixed_stream();
  for (size_t i = 0; i < s.bytes.size(); ++i) {
    peer_send(rig, s.bytes.substr(i, 1));
    cr_assert(run_until(*rig.loop, [&] { return rig.stream->bytes_in() == i + 1; }), "byte %zu not read", i);
  }
  assert_mixed_stream_delivered(rig.handler, s);
}

Test(framed_stream, two_frames_in_one_read) {
  Rig rig;
  TransportScript script;
  make_rig(rig, &script);
  peer_send(rig, encode_frame(R"({"type":"ping"})") + encode_frame(R"({"type":"stat","path":"x"})"));
  cr_assert(run_until(*rig.loop, [&] { return rig.handler.messages.size() == 2; }));
  cr_assert_eq(rig.counters.reads, 1u, "both frames came with one read (%llu)",
               static_cast<unsigned long long>(rig.counters.reads));
  cr_assert_eq(protocol::type_of(rig.handler.messages[1]), protocol::MessageType::kStat);
}

Test(framed_stream, few_bytes_per_read_and_eagain_at_every_point) {
  Script s = mixed_stream();
  for (size_t limit : {1u, 2u, 3u, 7u}) {
    for (unsigned every : {2u, 3u, 5u}) {
      Rig rig;
      TransportScript script;
      script.read_limit = limit;
      script.eagain_every = every;
      make_rig(rig, &script);
      peer_send(rig, s.bytes);
      cr_assert(run_until(*rig.loop, [&] { return rig.handler.messages.size() == 5; }),
                "limit %zu, EAGAIN every %u: %zu messages", limit, every, rig.handler.messages.size());
      assert_mixed_stream_delivered(rig.handler, s);
      cr_assert_gt(rig.counters.injected_eagain, 0u);
    }
  }
}

Test(framed_stream, output_survives_short_writes_and_eagain) {
  std::string expected;
  std::vector<protocol::Message> frames;
  for (int i = 0; i < 40; ++i) {
    protocol::MsgRequest m;
    m.text = "frame " + std::to_string(i) + std::string(static_cast<size_t>(i * 37), 'x');
    frames.push_back(m);
    expected += protocol::encode(m);
  }
  for (size_t limit : {1u, 5u, 1000u}) {
    Rig rig;
    TransportScript script;
    script.write_limit = limit;
    script.eagain_every = 3;
    make_rig(rig, &script);
    for (const protocol::Message& m : frames) cr_assert(rig.stream->send(m));
    std::string got = peer_receive(rig, expected.size());
    cr_assert(got == expected, "write limit %zu: %zu bytes differ from the %zu sent", limit, got.size(),
              expected.size());
  }
}

Test(framed_stream, send_outside_a_callback_writes_at_once) {
  Rig rig;
  make_rig(rig, nullptr);
  protocol::PingRequest ping;
  cr_assert(rig.stream->send(ping));
  // No loop iteration in between: the frame is already in the socket.
  cr_assert(read_available(rig.peer.get()) == protocol::encode(ping));
  cr_assert_eq(rig.stream->interest() & reactor::kWritable, 0u, "nothing left to write");
}

Test(framed_stream, producer_fills_the_output_as_it_drains) {
  Rig rig;
  TransportScript script;
  script.write_limit = 4000;
  make_rig(rig, &script);
  PatternProducer producer(3 * 1024 * 1024 + 17, 10000);
  rig.stream->start_producing(producer);
  cr_assert(rig.stream->producing());
  std::string got = peer_receive(rig, producer.total);
  cr_assert(got == pattern_bytes(0, producer.total, 3));
  cr_assert(run_until(*rig.loop, [&] { return rig.handler.produced == 1; }));
  cr_assert(!rig.stream->producing());
  cr_assert_eq(rig.stream->interest() & reactor::kWritable, 0u);
}

Test(framed_stream, zero_copy_where_the_transport_can_and_a_copy_where_not) {
  std::optional<TempDir> dir = TempDir::create("framed-stream");
  cr_assert(dir.has_value());
  std::string path = dir->path("f.bin");
  const uint64_t size = 1024 * 1024 + 3;
  cr_assert(write_pattern_file(path, size, 11));
  std::string want = pattern_bytes(0, size, 11);
  protocol::Digest digest = protocol::sha256(want.data(), want.size());
  for (bool can : {true, false}) {
    Rig rig;
    TransportScript script;
    script.can_send_file = can;
    script.write_limit = 100000;
    script.eagain_every = 4;
    make_rig(rig, &script);
    reactor::UniqueFd file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    cr_assert(file);
    struct stat st {};
    cr_assert_eq(fstat(file.get(), &st), 0);
    app::BodySource source(std::move(file), st, 0, protocol::DigestKind::kSha256, digest);
    rig.stream->start_producing(source);
    std::string got = peer_receive(rig, size);
    cr_assert(got == want, "can_send_file %d: body differs", can);
    cr_assert(run_until(*rig.loop, [&] { return rig.handler.produced == 1; }));
    if (can) {
      cr_assert_gt(rig.counters.send_files, 0u, "sendfile was used");
    } else {
      cr_assert_eq(rig.counters.send_files, 0u, "a transport without it is never asked");
    }
    auto trailer = source.trailer();
    cr_assert(std::holds_alternative<protocol::End>(trailer));
  }
}

Test(framed_stream, not_accepting_holds_input_then_delivers_it) {
  Rig rig;
  protocol::StreamLimits limits;
  limits.input_max = 8 * 1024;
  limits.input_high_water = 4 * 1024;
  make_rig(rig, nullptr, limits);
  rig.handler.accepting = false;
  std::string many;
  for (int i = 0; i < 2000; ++i) many += encode_frame(R"({"type":"ping"})");
  peer_send(rig, many);
  run_for(*rig.loop, Millis(50));
  cr_assert(rig.handler.messages.empty(), "nothing is delivered while the handler refuses input");
  cr_assert_leq(rig.stream->input_queued(), limits.input_max);
  cr_assert_geq(rig.stream->input_queued(), limits.input_high_water, "it reads up to its high-water mark");
  cr_assert_eq(rig.stream->interest() & reactor::kReadable, 0u, "then stops reading: TCP holds the rest back");
  rig.handler.accepting = true;
  rig.stream->pump();
  cr_assert(run_until(*rig.loop, [&] { return rig.handler.messages.size() == 2000; }), "%zu delivered",
            rig.handler.messages.size());
}

Test(framed_stream, queued_output_holds_back_delivery) {
  Rig rig;
  protocol::StreamLimits limits;
  limits.output_high_water = 64 * 1024;
  make_rig(rig, nullptr, limits);
  rig.handler.reply_bytes = 4000;  // each request answered with about 4 KiB
  std::string many;
  for (int i = 0; i < 500; ++i) many += encode_frame(R"({"type":"ping"})");
  peer_send(rig, many);
  run_for(*rig.loop, Millis(50));
  size_t delivered = rig.handler.messages.size();
  cr_assert_lt(delivered, 500u, "a peer that does not read is held back (%zu delivered)", delivered);
  cr_assert_gt(delivered, 0u);
  // Reading the answers lets the rest through.
  size_t reply = protocol::encode(protocol::MsgRequest{std::string(4000, 'r')}).size();
  std::string got = peer_receive(rig, 500 * reply, Millis(20000));
  cr_assert_eq(rig.handler.messages.size(), 500u);
  cr_assert_eq(got.size(), 500 * reply);
}

Test(framed_stream, end_of_input_between_and_inside_frames) {
  for (bool clean : {true, false}) {
    Rig rig;
    make_rig(rig, nullptr);
    std::string frame = encode_frame(R"({"type":"ping"})");
    peer_send(rig, clean ? frame : frame + frame.substr(0, 6));
    cr_assert_eq(shutdown(rig.peer.get(), SHUT_WR), 0);
    cr_assert(run_until(*rig.loop, [&] { return !rig.handler.failures.empty(); }));
    cr_assert_eq(rig.handler.messages.size(), 1u);
    cr_assert_eq(rig.handler.failures[0].kind, StreamFailure::kEndOfInput);
    cr_assert_eq(rig.handler.failures[0].clean, clean);
    cr_assert(rig.stream->closed());
  }
}

Test(framed_stream, malformed_frames_are_reported_with_their_code) {
  struct Case {
    std::string bytes;
    StreamFailure::Kind kind;
    protocol::ErrorCode code;
  };
  const Case cases[] = {
      {be32(0), StreamFailure::kBadFrame, protocol::ErrorCode::kEmptyHeader},
      {be32(70000), StreamFailure::kBadFrame, protocol::ErrorCode::kHeaderTooLarge},
      {encode_frame("{not json"), StreamFailure::kBadFrame, protocol::ErrorCode::kBadJson},
      {encode_frame(R"({"type":"teleport"})"), StreamFailure::kBadMessage, protocol::ErrorCode::kUnknownType},
      {encode_frame(R"({"type":"get"})"), StreamFailure::kBadMessage, protocol::ErrorCode::kMissingField},
  };
  for (const Case& c : cases) {
    Rig rig;
    make_rig(rig, nullptr);
    peer_send(rig, encode_frame(R"({"type":"ping"})") + c.bytes);
    cr_assert(run_until(*rig.loop, [&] { return !rig.handler.failures.empty(); }));
    cr_assert_eq(rig.handler.messages.size(), 1u, "the frame before is delivered, nothing after");
    cr_assert_eq(rig.handler.failures[0].kind, c.kind);
    cr_assert_eq(rig.handler.failures[0].error.code, c.code, "%s", rig.handler.failures[0].error.message.c_str());
  }
}

Test(framed_stream, drain_flushes_shuts_down_and_discards_input) {
  Rig rig;
  TransportScript script;
  script.write_limit = 3;
  make_rig(rig, &script);
  rig.handler.accepting = false;
  protocol::ErrorMessage error{protocol::ErrorCode::kTimeout, "idle for too long"};
  std::string frame = protocol::encode(error);
  cr_assert(rig.stream->send(error));
  rig.stream->drain();
  cr_assert(rig.stream->draining());
  std::string got;
  bool eof = false;
  cr_assert(run_until(*rig.loop, [&] {
    got += read_available(rig.peer.get(), &eof);
    return eof;
  }));
  cr_assert(got == frame, "the error frame arrives whole, then end of stream");
  rig.handler.accepting = true;
  peer_send(rig, encode_frame(R"({"type":"ping"})"));
  run_for(*rig.loop, Millis(20));
  cr_assert(rig.handler.messages.empty(), "nothing is acted on while draining");
  rig.peer.reset();
  cr_assert(run_until(*rig.loop, [&] { return !rig.handler.failures.empty(); }));
  cr_assert_eq(rig.handler.failures[0].kind, StreamFailure::kEndOfInput);
}

Test(framed_stream, write_to_a_closed_peer_is_a_write_failure) {
  Rig rig;
  make_rig(rig, nullptr);
  rig.peer.reset();
  protocol::MsgRequest m;
  m.text = std::string(4000, 'z');
  bool ok = rig.stream->send(m);
  cr_assert(!ok, "send reports the failure");
  cr_assert_eq(rig.handler.failures.size(), 1u);
  cr_assert_eq(rig.handler.failures[0].kind, StreamFailure::kWriteFailed);
  cr_assert(rig.handler.failures[0].errnum == EPIPE || rig.handler.failures[0].errnum == ECONNRESET, "errno %d",
            rig.handler.failures[0].errnum);
}

Test(framed_stream, a_full_output_buffer_is_reported) {
  Rig rig;
  make_rig(rig, nullptr);
  rig.handler.close_on_failure = false;
  // The peer never reads: the socket fills, then the 64 MiB output buffer.
  protocol::MsgRequest m;
  m.text = std::string(4000, 'q');
  bool refused = false;
  for (int i = 0; i < 20000 && !refused; ++i) refused = !rig.stream->send(m);
  cr_assert(refused, "the output buffer has a limit");
  cr_assert_eq(rig.handler.failures.back().kind, StreamFailure::kOutputFull);
}

Test(framed_stream, body_chunks_count_down_to_zero) {
  Rig rig;
  TransportScript script;
  script.read_limit = 7;
  make_rig(rig, &script);
  std::string body = pattern_bytes(0, 100, 5);
  peer_send(rig, encode_frame(file_header(100), body));
  cr_assert(run_until(*rig.loop, [&] { return !rig.handler.remaining.empty() && rig.handler.remaining.back() == 0; }));
  cr_assert(rig.handler.body == body);
  cr_assert_gt(rig.handler.remaining.size(), 10u, "7 bytes per read: many chunks");
  uint64_t left = 100;
  size_t consumed = 0;
  for (uint64_t r : rig.handler.remaining) {
    cr_assert_lt(r, left);
    left = r;
    ++consumed;
  }
  cr_assert_eq(consumed, rig.handler.remaining.size());
}

// Pipelined requests each answered with a small body (a get of a 4 KiB file): the
// answers go out a few to a write, not one write each, and a body finished by the
// pass's last write still lets the queued requests through (no request waits for the
// peer's next bytes).
Test(framed_stream, small_bodies_for_pipelined_requests_share_writes) {
  struct Answerer : Recorder {
    std::unique_ptr<PatternProducer> body;
    void on_message(protocol::Message& message) override {
      messages.push_back(message);
      stream->send(protocol::MsgRequest{"header"});
      body = std::make_unique<PatternProducer>(4096, 4096);
      accepting = false;
      stream->start_producing(*body);
    }
    void on_produced() override {
      ++produced;
      accepting = true;
    }
  };
  protocol::StreamLimits limits;
  Rig rig;
  std::string err;
  rig.loop = reactor::EventLoop::create_from_env(&err);
  cr_assert(rig.loop, "%s", err.c_str());
  Fd mine;
  cr_assert(stream_socketpair(&mine, &rig.peer, &err), "%s", err.c_str());
  Answerer answerer;
  rig.limits = limits;
  rig.stream = std::make_unique<FramedStream>(*rig.loop, answerer, rig.limits);
  answerer.stream = rig.stream.get();
  int fd = mine.get();
  cr_assert(rig.stream->attach(reactor::UniqueFd(mine.release()), scripted_transport(fd, {}, &rig.counters), &err),
            "%s", err.c_str());
  const size_t n = 200;
  std::string many;
  for (size_t i = 0; i < n; ++i) many += encode_frame(R"({"type":"ping"})");
  peer_send(rig, many);
  size_t each = protocol::encode(protocol::MsgRequest{"header"}).size() + 4096;
  std::string got = peer_receive(rig, n * each, Millis(20000));
  cr_assert_eq(got.size(), n * each);
  cr_assert_eq(answerer.produced, static_cast<int>(n));
  cr_assert_lt(rig.counters.writes, n / 2, "%llu writes for %zu answers",
               static_cast<unsigned long long>(rig.counters.writes), n);
}
