// server::Session unit tests: a real Server object (not started: no listener) and one
// Session over a socketpair, the test playing the client with the wire contract's own
// handshake (tests/support/hmac_auth.h). The session's transport is the plain one or a
// ScriptedTransport, so every frame both ways is split at every byte and every call
// can find the socket "not ready".

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <sys/socket.h>
#include <sys/stat.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/common/log.h"
#include "apps/reactord/server.h"
#include "apps/reactord/session.h"
#include "protocol/sha256.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "tests/support/files.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/loop_driver.h"
#include "tests/support/raw_client.h"
#include "tests/support/scripted_transport.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;
using server::Session;
using server::SessionState;

namespace {

constexpr char kSecret[] = "session test secret, long enough";

struct Rig {
  std::optional<TempDir> dir;
  std::unique_ptr<reactor::EventLoop> loop;
  std::unique_ptr<server::Server> server;
  std::unique_ptr<Session> session;
  std::optional<LoopPeer> peer;
  TransportCounters counters;
  std::string server_nonce;  // raw, from the hello
};

std::string root_path(const Rig& rig, const std::string& rel) { return rig.dir->path("root/" + rel); }

// A Server on a temporary root and a started Session; `script` null: the plain transport.
void make_rig(Rig& rig, const TransportScript* script, server::Options options = {}) {
  std::string err;
  app::log_init("reactord", app::LogLevel::kError, false);  // the sessions' lines are not under test
  rig.dir = TempDir::create("session-test");
  cr_assert(rig.dir.has_value());
  cr_assert(make_dirs(rig.dir->path("root")));
  rig.loop = reactor::EventLoop::create_from_env(&err);
  cr_assert(rig.loop, "%s", err.c_str());
  std::unique_ptr<server::ServedRoot> root = server::ServedRoot::open(rig.dir->path("root"), &err);
  cr_assert(root, "%s", err.c_str());
  app::Secret secret;
  secret.key = kSecret;
  rig.server = std::make_unique<server::Server>(*rig.loop, options, std::move(root), secret);
  Fd mine, theirs;
  cr_assert(stream_socketpair(&mine, &theirs, &err), "%s", err.c_str());
  reactor::SocketAddress peer;
  cr_assert(reactor::parse_address("127.0.0.1:40000", &peer, &err), "%s", err.c_str());
  int fd = mine.get();
  std::unique_ptr<reactor::Transport> transport =
      script ? scripted_transport(fd, *script, &rig.counters) : nullptr;
  rig.session = std::make_unique<Session>(*rig.server, 1, reactor::UniqueFd(mine.release()), peer, std::move(transport));
  rig.peer.emplace(*rig.loop, std::move(theirs));
  cr_assert(rig.session->start());
}

Frame expect(Rig& rig, const std::string& type) {
  Frame f;
  std::string why;
  cr_assert(rig.peer->next(&f, Millis(10000), &why), "waiting for %s: %s", type.c_str(), why.c_str());
  cr_assert(f.type() == type, "expected %s, got %s", type.c_str(), f.header.c_str());
  return f;
}

// Sends `bytes` one at a time, letting the session run after each.
void send_bytewise(Rig& rig, const std::string& bytes) {
  for (char c : bytes) {
    cr_assert(rig.peer->send(std::string(1, c)));
    run_for(*rig.loop, Millis(0));
  }
}

std::string auth_frame(Rig& rig, const std::string& secret = kSecret) {
  Frame hello = expect(rig, "hello");
  std::optional<std::string> nonce = hello.string_field("nonce");
  cr_assert(nonce.has_value());
  std::optional<std::string> raw = hex_decode(*nonce);
  cr_assert(raw.has_value());
  rig.server_nonce = *raw;
  return encode_frame(make_auth_header(secret, rig.server_nonce, random_bytes(kNonceBytes)));
}

void authenticate(Rig& rig, bool bytewise = false) {
  std::string auth = auth_frame(rig);
  if (bytewise) {
    send_bytewise(rig, auth);
  } else {
    cr_assert(rig.peer->send(auth));
  }
  expect(rig, "auth_ok");
  cr_assert(run_until(*rig.loop, [&] { return rig.session->state() == SessionState::kReady; }));
}

std::string get_frame(const std::string& path) {
  return encode_frame("{\"type\":\"get\",\"path\":" + json_quote(path) + ",\"offset\":0}");
}

void expect_file(Rig& rig, const std::string& name, uint64_t size, uint64_t seed) {
  Frame header = expect(rig, "file");
  cr_assert(header.body == pattern_bytes(0, size, seed), "%s: body of %zu bytes differs", name.c_str(),
            header.body.size());
  Frame end = expect(rig, "end");
  std::string want = pattern_bytes(0, size, seed);
  protocol::Digest digest = protocol::sha256(want.data(), want.size());
  cr_assert(end.string_field("sha256") == hex_encode(std::string(digest.begin(), digest.end())));
}

// The session's error frame, then its end of stream.
void expect_fatal(Rig& rig, const std::string& code, const std::string& text) {
  Frame error = expect(rig, "error");
  cr_assert(error.code() == code, "%s", error.header.c_str());
  cr_assert(error.string_field("message").value_or("").find(text) != std::string::npos, "%s", error.header.c_str());
  cr_assert(rig.peer->wait_eof(), "the session shuts its sending side after a fatal error");
}

const TransportScript kScripts[] = {
    {SIZE_MAX, SIZE_MAX, 0, true},  // the socket as it is
    {1, 1, 0, true},                // a byte per call, both ways
    {3, 5, 2, true},                // and EAGAIN every other call
    {2, 7, 3, false},               // and no zero copy
};

}  // namespace

TestSuite(session, .timeout = 120);

Test(session, handshake_and_get_through_every_transport_script) {
  for (const TransportScript& script : kScripts) {
    Rig rig;
    make_rig(rig, &script);
    const uint64_t size = 150 * 1024 + 3;
    cr_assert(write_pattern_file(root_path(rig, "f.bin"), size, 9));
    authenticate(rig, script.read_limit == 1);
    // Twice: the first hashes the file, the second has its digest cached (zero copy
    // where the transport can).
    for (int round = 0; round < 2; ++round) {
      cr_assert(rig.peer->send(get_frame("f.bin")));
      expect_file(rig, "f.bin", size, 9);
    }
    cr_assert_eq(rig.session->state(), SessionState::kReady);
    if (script.can_send_file && script.write_limit == SIZE_MAX) cr_assert_gt(rig.counters.send_files, 0u);
    if (!script.can_send_file) cr_assert_eq(rig.counters.send_files, 0u);
  }
}

Test(session, requests_split_at_every_byte) {
  Rig rig;
  make_rig(rig, nullptr);
  cr_assert(write_file(root_path(rig, "small.txt"), "hello\n"));
  authenticate(rig, true);
  send_bytewise(rig, encode_frame(R"({"type":"ping","token":"a"})") + get_frame("small.txt") +
                         encode_frame(R"({"type":"stat","path":"small.txt"})"));
  cr_assert(expect(rig, "pong").string_field("token") == "a");
  cr_assert(expect(rig, "file").body == "hello\n");
  expect(rig, "end");
  cr_assert(expect(rig, "stat_ok").number_field("size") == 6.0);
}

Test(session, pipelined_requests_are_answered_in_order) {
  Rig rig;
  TransportScript script{4, 9, 3, true};
  make_rig(rig, &script);
  cr_assert(write_pattern_file(root_path(rig, "a.bin"), 70000, 1));
  cr_assert(make_dirs(root_path(rig, "d")));
  // auth and the requests behind it in one write: they wait for the verdict.
  std::string requests = encode_frame(R"({"type":"ping","token":"1"})") + get_frame("a.bin") +
                         encode_frame(R"({"type":"list","path":"d"})") + get_frame("missing") +
                         encode_frame(R"({"type":"ping","token":"2"})");
  cr_assert(rig.peer->send(auth_frame(rig) + requests));
  expect(rig, "auth_ok");
  cr_assert(expect(rig, "pong").string_field("token") == "1");
  expect_file(rig, "a.bin", 70000, 1);
  expect(rig, "list_end");
  cr_assert(expect(rig, "error").code() == "not_found");
  cr_assert(expect(rig, "pong").string_field("token") == "2");
  cr_assert_eq(rig.session->state(), SessionState::kReady, "a per-request error leaves it ready");
}

Test(session, a_listing_streams_in_frames) {
  Rig rig;
  make_rig(rig, nullptr);
  cr_assert(make_dirs(root_path(rig, "many")));
  const int kFiles = 1500;
  for (int i = 0; i < kFiles; ++i)
    cr_assert(write_file(root_path(rig, "many/" + std::string(100, 'n') + std::to_string(i)), ""));
  authenticate(rig);
  cr_assert(rig.peer->send(encode_frame(R"({"type":"list","path":"many"})")));
  size_t frames = 0;
  for (;;) {
    Frame f;
    cr_assert(rig.peer->next(&f));
    if (f.type() == "list_end") {
      cr_assert(f.number_field("count") == static_cast<double>(kFiles));
      break;
    }
    cr_assert(f.type() == "entries", "%s", f.header.c_str());
    cr_assert_leq(f.header.size(), 65536u);
    ++frames;
  }
  cr_assert_gt(frames, 1u, "%d long names do not fit one 64 KiB header", kFiles);
}

Test(session, messages_out_of_place_are_fatal) {
  struct Case {
    bool authenticated;
    std::string frame;
    std::string text;
  };
  const Case cases[] = {
      {false, R"({"type":"ping"})", "expected auth, got ping: authenticate first"},
      {false, R"({"type":"pong"})", "expected auth, got pong"},
      {true, R"({"type":"hello","proto":1,"server":"x","features":[],"nonce":")" + std::string(64, '0') + "\"}",
       "hello is not a request a client may send"},
      {true, R"({"type":"pong"})", "pong is not a request a client may send"},
  };
  for (const Case& c : cases) {
    Rig rig;
    make_rig(rig, nullptr);
    if (c.authenticated) {
      authenticate(rig);
    } else {
      expect(rig, "hello");
    }
    cr_assert(rig.peer->send(encode_frame(c.frame)));
    expect_fatal(rig, "unexpected_message", c.text);
    rig.peer->close();
    cr_assert(run_until(*rig.loop, [&] { return rig.session->state() == SessionState::kClosed; }));
  }
}

Test(session, a_second_auth_is_refused) {
  Rig rig;
  make_rig(rig, nullptr);
  std::string auth = auth_frame(rig);
  cr_assert(rig.peer->send(auth));
  expect(rig, "auth_ok");
  cr_assert(rig.peer->send(auth));
  expect_fatal(rig, "unexpected_message", "auth is not a request a client may send");
}

Test(session, a_wrong_proof_is_refused) {
  Rig rig;
  make_rig(rig, nullptr);
  cr_assert(rig.peer->send(auth_frame(rig, "not the secret, but as long")));
  expect_fatal(rig, "auth_failed", "does not know the shared secret");
}

Test(session, a_malformed_frame_is_fatal_with_its_code) {
  Rig rig;
  make_rig(rig, nullptr);
  expect(rig, "hello");
  // Before authentication the header limit is 4096.
  cr_assert(rig.peer->send(be32(5000)));
  expect_fatal(rig, "header_too_large", "5000");
}

Test(session, timeouts_are_checked_by_the_caller) {
  server::Options options;
  options.handshake_timeout = std::chrono::milliseconds(100);
  options.idle_timeout = std::chrono::milliseconds(100);
  {
    Rig rig;
    make_rig(rig, nullptr, options);
    expect(rig, "hello");
    rig.session->check_timeouts(rig.loop->now() + std::chrono::seconds(1));
    expect_fatal(rig, "timeout", "handshake deadline");
  }
  {
    Rig rig;
    make_rig(rig, nullptr, options);
    authenticate(rig);
    rig.session->check_timeouts(rig.loop->now());
    cr_assert_eq(rig.session->state(), SessionState::kReady, "not idle yet");
    rig.session->check_timeouts(rig.loop->now() + std::chrono::seconds(1));
    expect_fatal(rig, "timeout", "idle");
  }
}

Test(session, shutdown_finishes_the_response_in_progress_first) {
  for (bool zero_copy : {false, true}) {
    Rig rig;
    make_rig(rig, nullptr);
    const uint64_t size = 4 * 1024 * 1024;
    cr_assert(write_pattern_file(root_path(rig, "big.bin"), size, 4));
    authenticate(rig);
    if (zero_copy) {  // a first get puts the digest in the cache
      cr_assert(rig.peer->send(get_frame("big.bin")));
      expect_file(rig, "big.bin", size, 4);
    }
    cr_assert(rig.peer->send(get_frame("big.bin") + encode_frame(R"({"type":"ping"})")));
    cr_assert(run_until(*rig.loop, [&] { return rig.session->state() == SessionState::kSending; }));
    rig.session->begin_shutdown();
    expect_file(rig, "big.bin", size, 4);
    // The ping queued behind it is not answered: the server is stopping.
    expect_fatal(rig, "shutting_down", "shutting down");
  }
}

Test(session, an_idle_session_stops_at_once_on_shutdown) {
  Rig rig;
  make_rig(rig, nullptr);
  authenticate(rig);
  rig.session->begin_shutdown();
  expect_fatal(rig, "shutting_down", "shutting down");
}

Test(session, a_client_that_goes_away_mid_response_closes_the_session) {
  Rig rig;
  make_rig(rig, nullptr);
  cr_assert(write_pattern_file(root_path(rig, "big.bin"), 8 * 1024 * 1024, 2));
  authenticate(rig);
  cr_assert(rig.peer->send(get_frame("big.bin")));
  cr_assert(run_until(*rig.loop, [&] { return rig.session->state() == SessionState::kSending; }));
  rig.peer->close();
  cr_assert(run_until(*rig.loop, [&] { return rig.session->state() == SessionState::kClosed; }));
}
