// client::Connection (apps/reactorc/connection.h) driven in-process against a fake
// server that the test itself plays on the other end of a socketpair. No reactord runs.
//
// The test is single-threaded: the Connection runs on an EventLoop that the test drives
// (tests/support/loop_driver.h), and the fake server alternates between writing bytes
// into its end of the socketpair, running the loop until the client has reacted, and
// reading what the client wrote (never blocking: read_available and a tiny frame
// splitter). The fake server frames and authenticates with tests/support only, so that
// it is an implementation of reactor-protocol(7) independent of protocol/.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apps/common/body_sink.h"
#include "apps/common/secret.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/get_command.h"
#include "apps/reactorc/put_command.h"
#include "reactor/event_loop.h"
#include "reactor/transport.h"
#include "reactor/unique_fd.h"
#include "tests/support/assertions.h"
#include "tests/support/deadline.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/loop_driver.h"
#include "tests/support/raw_client.h"
#include "tests/support/scripted_transport.h"
#include "tests/support/temp_dir.h"

using client::Connection;
using client::Failure;
using State = client::Connection::State;
using testsupport::Millis;

TestSuite(connection, .timeout = 60);

namespace {

constexpr char kKey[] = "correct horse battery staple";
constexpr char kWrongKey[] = "not the secret at all, sorry";
const char* const kHelloFeatures = R"(["get","stat","list","ping","msg","resume"])";

const char* failure_name(Failure failure) {
  switch (failure) {
    case Failure::kConnect: return "connect";
    case Failure::kAuth: return "auth";
    case Failure::kCertificate: return "certificate";
    case Failure::kProtocol: return "protocol";
    case Failure::kClosed: return "closed";
    case Failure::kTimeout: return "timeout";
  }
  return "?";
}

// Everything the connection told its listener, in order.
struct Recorder final : client::ConnectionListener {
  int ready = 0;
  int failures = 0;
  Failure failure = Failure::kConnect;
  std::string message;
  std::vector<client::Command*> done;
  std::vector<std::string> log;  // "ready", "done:ping:0", "failure:protocol"
  std::function<void(Connection&)> on_ready_hook;
  std::function<void(Connection&, client::Command&)> on_done_hook;

  void on_ready(Connection& connection) override {
    ++ready;
    log.push_back("ready");
    if (on_ready_hook) on_ready_hook(connection);
  }
  void on_command_done(Connection& connection, client::Command& command) override {
    done.push_back(&command);
    log.push_back(std::string("done:") + command.name() + ":" + std::to_string(command.result().exit_code));
    if (on_done_hook) on_done_hook(connection, command);
  }
  void on_failure(Connection&, Failure why, const std::string& text) override {
    ++failures;
    failure = why;
    message = text;
    log.push_back(std::string("failure:") + failure_name(why));
  }

  std::string joined() const {
    std::string out;
    for (const std::string& entry : log) out += (out.empty() ? "" : " ") + entry;
    return out;
  }
};

struct Options {
  std::optional<testsupport::TransportScript> script;
  std::chrono::milliseconds timeout{10000};
};

// The client under test, and the fake server's end of the wire.
struct Fake {
  std::unique_ptr<reactor::EventLoop> loop;
  app::Secret secret;  // the Connection keeps a reference: declared before it
  Recorder listener;
  testsupport::TransportCounters counters;
  std::unique_ptr<Connection> conn;
  testsupport::Fd peer;       // blocking; only ever used with MSG_DONTWAIT
  std::string server_nonce;   // raw 32 bytes
  std::string client_nonce;   // raw 32 bytes, from the client's auth
  std::string inbox;          // bytes from the client not split into frames yet
  uint64_t received = 0;      // bytes from the client, all told
  bool peer_eof = false;      // the client closed the connection
};

std::unique_ptr<Fake> make_fake(const Options& options = {}) {
  auto fake = std::make_unique<Fake>();
  std::string err;
  fake->loop = reactor::EventLoop::create_from_env(&err);
  cr_assert_not_null(fake->loop.get(), "create_from_env: %s", err.c_str());
  fake->secret.key = kKey;
  fake->conn = std::make_unique<Connection>(*fake->loop, fake->secret, fake->listener);
  cr_assert(fake->conn->state() == State::kConnecting);
  testsupport::Fd ours;
  cr_assert(testsupport::stream_socketpair(&ours, &fake->peer, &err), "%s", err.c_str());
  int raw = ours.release();
  std::unique_ptr<reactor::Transport> transport =
      options.script ? testsupport::scripted_transport(raw, *options.script, &fake->counters)
                     : reactor::make_socket_transport(raw);
  fake->conn->adopt(reactor::UniqueFd(raw), std::move(transport), options.timeout, "fake-peer");
  cr_assert(fake->conn->state() == State::kAwaitHello, "state after adopt: %s", client::to_string(fake->conn->state()));
  ASSERT_STR_EQ(fake->conn->peer(), "fake-peer");
  return fake;
}

// One loop iteration (or a few): whatever is readable now gets handled.
void spin(Fake& fake) { testsupport::run_for(*fake.loop, Millis(0)); }

void settle(Fake& fake, Millis time = Millis(30)) { testsupport::run_for(*fake.loop, time); }

// Writes all of `bytes` into the fake server's end without ever blocking: when the
// socket is full the loop runs so that the client drains it. False if the client closed.
bool try_server_send(Fake& fake, std::string_view bytes, Millis timeout = Millis(20000)) {
  testsupport::Deadline deadline(timeout);
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fake.peer.get(), bytes.data() + sent, bytes.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (deadline.expired()) return false;
      testsupport::run_for(*fake.loop, Millis(1));
      continue;
    }
    return false;
  }
  return true;
}

void server_send(Fake& fake, std::string_view bytes) {
  cr_assert(try_server_send(fake, bytes), "the fake server could not send %zu bytes (client state %s, log: %s)",
            bytes.size(), client::to_string(fake.conn->state()), fake.listener.joined().c_str());
}

// Moves whatever the client wrote into the inbox.
void pull(Fake& fake) {
  bool eof = false;
  std::string got = testsupport::read_available(fake.peer.get(), &eof);
  fake.received += got.size();
  fake.inbox += got;
  if (eof) fake.peer_eof = true;
}

bool inbox_has_frame(const Fake& fake) {
  if (fake.inbox.size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(fake.inbox.data());
  uint32_t n = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  return fake.inbox.size() >= 4 + size_t{n};
}

// Only an upload's data frame has a body (read with expect_body): any other frame is its
// length and header.
testsupport::Frame pop_frame(Fake& fake) {
  const auto* p = reinterpret_cast<const unsigned char*>(fake.inbox.data());
  uint32_t n = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  testsupport::Frame frame;
  frame.header = fake.inbox.substr(4, n);
  fake.inbox.erase(0, 4 + size_t{n});
  cr_assert(frame.parse() != nullptr, "the client sent a header that is not JSON: %s", frame.header.c_str());
  cr_assert(!frame.has_field("body") || frame.type() == "data", "the client announced a body: %s",
            frame.header.c_str());
  return frame;
}

// The next `n` bytes from the client: a data frame's body.
std::string expect_body(Fake& fake, size_t n, Millis timeout = Millis(10000)) {
  bool got = testsupport::run_until(
      *fake.loop,
      [&] {
        pull(fake);
        return fake.inbox.size() >= n;
      },
      timeout);
  cr_assert(got, "%zu of %zu body bytes from the client", fake.inbox.size(), n);
  std::string body = fake.inbox.substr(0, n);
  fake.inbox.erase(0, n);
  return body;
}

// Runs the loop until the client has written a whole frame, and returns it.
testsupport::Frame expect_frame(Fake& fake, Millis timeout = Millis(5000)) {
  bool got = testsupport::run_until(
      *fake.loop,
      [&] {
        pull(fake);
        return inbox_has_frame(fake);
      },
      timeout);
  cr_assert(got, "no frame from the client (state %s, %zu bytes pending, log: %s)",
            client::to_string(fake.conn->state()), fake.inbox.size(), fake.listener.joined().c_str());
  return pop_frame(fake);
}

testsupport::Frame expect_request(Fake& fake, const std::string& type) {
  testsupport::Frame frame = expect_frame(fake);
  ASSERT_STR_EQ(frame.type(), type);
  return frame;
}

// Nothing more from the client, now.
void expect_client_silent(Fake& fake) {
  pull(fake);
  cr_assert(fake.inbox.empty(), "the client wrote %zu unexpected bytes: %s", fake.inbox.size(), fake.inbox.c_str());
}

// The client closed its end (and wrote nothing else first).
void expect_client_closed(Fake& fake) {
  bool closed = testsupport::run_until(
      *fake.loop,
      [&] {
        pull(fake);
        return fake.peer_eof;
      },
      Millis(2000));
  cr_assert(closed, "the client did not close the connection");
  cr_assert(fake.inbox.empty(), "the client wrote %zu unexpected bytes before closing: %s", fake.inbox.size(),
            fake.inbox.c_str());
}

bool wait_failure(Fake& fake, Millis timeout = Millis(5000)) {
  return testsupport::run_until(*fake.loop, [&] { return fake.listener.failures > 0; }, timeout);
}

void expect_failure(Fake& fake, Failure failure, const std::string& text) {
  cr_assert(wait_failure(fake), "no on_failure (state %s, log: %s)", client::to_string(fake.conn->state()),
            fake.listener.joined().c_str());
  cr_assert_eq(fake.listener.failures, 1, "on_failure ran %d times", fake.listener.failures);
  cr_assert(fake.listener.failure == failure, "failure %s, want %s: %s", failure_name(fake.listener.failure),
            failure_name(failure), fake.listener.message.c_str());
  ASSERT_CONTAINS(fake.listener.message, text);
  cr_assert(fake.conn->state() == State::kClosed, "state %s after on_failure", client::to_string(fake.conn->state()));
  cr_assert_eq(fake.conn->in_flight(), 0u);
}

void wait_done(Fake& fake, const client::Command& command, Millis timeout = Millis(10000)) {
  bool finished = testsupport::run_until(*fake.loop, [&] { return command.finished(); }, timeout);
  cr_assert(finished, "%s did not finish (state %s, log: %s)", command.name(), client::to_string(fake.conn->state()),
            fake.listener.joined().c_str());
}

void expect_succeeded(const client::Command& command) {
  cr_assert(command.succeeded(), "%s failed: %d %s", command.name(), command.result().exit_code,
            command.result().message.c_str());
}

// ---- frames the fake server sends

std::string hello_frame(const std::string& nonce, const std::string& proto = "1",
                        const std::string& server = "fake/1") {
  return testsupport::encode_frame(R"({"type":"hello","proto":)" + proto + R"(,"server":)" +
                                   testsupport::json_quote(server) + R"(,"features":)" + kHelloFeatures +
                                   R"(,"nonce":")" + testsupport::hex_encode(nonce) + R"("})");
}

std::string auth_ok_frame_with_mac(const std::string& mac_hex, const std::string& proto = "1") {
  return testsupport::encode_frame(R"({"type":"auth_ok","proto":)" + proto + R"(,"mac":")" + mac_hex + R"("})");
}

std::string auth_ok_frame(const Fake& fake, const std::string& proto = "1") {
  return auth_ok_frame_with_mac(testsupport::server_mac_hex(kKey, fake.server_nonce, fake.client_nonce), proto);
}

std::string pong_frame() { return testsupport::encode_frame(R"({"type":"pong"})"); }

std::string stat_ok_frame(const std::string& path, uint64_t size) {
  return testsupport::encode_frame(R"({"type":"stat_ok","path":)" + testsupport::json_quote(path) +
                                   R"(,"kind":"file","size":)" + std::to_string(size) +
                                   R"(,"mtime":1764072000,"mode":420})");
}

std::string msg_ok_frame(uint64_t bytes) {
  return testsupport::encode_frame(R"({"type":"msg_ok","bytes":)" + std::to_string(bytes) + "}");
}

std::string error_frame(const std::string& code, const std::string& message) {
  return testsupport::encode_frame(R"({"type":"error","code":")" + code + R"(","message":)" +
                                   testsupport::json_quote(message) + "}");
}

std::string file_frame(const std::string& path, uint64_t size) {
  std::string header = R"({"type":"file","path":)" + testsupport::json_quote(path) + R"(,"size":)" +
                       std::to_string(size) + R"(,"offset":0,"mtime":1764072000,"mode":420)";
  if (size > 0) header += R"(,"body":)" + std::to_string(size);
  return testsupport::encode_frame(header + "}");
}

std::string end_frame(const std::string& digest_hex) {
  return testsupport::encode_frame(R"({"type":"end","sha256":")" + digest_hex + R"("})");
}

// A whole get response: file header, body, end trailer with the body's digest (or `digest_hex`).
std::string get_response(const std::string& path, const std::string& body, const std::string& digest_hex = "") {
  std::string digest = digest_hex.empty() ? testsupport::sha256_hex(body) : digest_hex;
  return file_frame(path, body.size()) + body + end_frame(digest);
}

// ---- the handshake, step by step

void send_hello(Fake& fake, const std::string& proto = "1") {
  fake.server_nonce = testsupport::random_bytes(testsupport::kNonceBytes);
  server_send(fake, hello_frame(fake.server_nonce, proto));
}

// Reads the client's auth and checks every field, the proof above all.
testsupport::Frame expect_auth(Fake& fake) {
  testsupport::Frame auth = expect_request(fake, "auth");
  cr_assert(fake.conn->state() == State::kAwaitAuthOk, "state %s after auth", client::to_string(fake.conn->state()));
  std::optional<double> proto = auth.number_field("proto");
  cr_assert(proto.has_value() && *proto == 2.0, "auth proto (the highest the client speaks): %s", auth.header.c_str());
  std::optional<std::string> name = auth.string_field("client");
  cr_assert(name.has_value() && name->rfind("reactorc/", 0) == 0, "auth client: %s", auth.header.c_str());
  cr_assert(auth.has_field("features"), "auth features: %s", auth.header.c_str());
  std::optional<std::string> nonce_hex = auth.string_field("nonce");
  cr_assert(nonce_hex.has_value(), "auth nonce: %s", auth.header.c_str());
  std::optional<std::string> nonce = testsupport::hex_decode(*nonce_hex);
  cr_assert(nonce.has_value() && nonce->size() == testsupport::kNonceBytes, "auth nonce: %s", nonce_hex->c_str());
  cr_assert(*nonce != fake.server_nonce, "the client echoed the server's nonce");
  fake.client_nonce = *nonce;
  std::optional<std::string> mac = auth.string_field("mac");
  cr_assert(mac.has_value(), "auth mac: %s", auth.header.c_str());
  ASSERT_STR_EQ(*mac, testsupport::client_mac_hex(kKey, fake.server_nonce, fake.client_nonce));
  return auth;
}

void expect_ready(Fake& fake) {
  bool ready = testsupport::run_until(*fake.loop, [&] { return fake.listener.ready > 0 || fake.listener.failures > 0; },
                                      Millis(5000));
  cr_assert(ready, "not ready (state %s)", client::to_string(fake.conn->state()));
  cr_assert_eq(fake.listener.failures, 0, "failed instead: %s", fake.listener.message.c_str());
  cr_assert_eq(fake.listener.ready, 1);
  cr_assert(fake.conn->state() == State::kReady, "state %s", client::to_string(fake.conn->state()));
}

void handshake(Fake& fake) {
  send_hello(fake);
  expect_auth(fake);
  server_send(fake, auth_ok_frame(fake));
  expect_ready(fake);
}

// A ping, answered: the connection still works.
void expect_ping_works(Fake& fake) {
  client::PingCommand ping;
  fake.conn->submit(ping);
  cr_assert_eq(fake.conn->in_flight(), 1u);
  expect_request(fake, "ping");
  server_send(fake, pong_frame());
  wait_done(fake, ping);
  expect_succeeded(ping);
  cr_assert_eq(fake.conn->in_flight(), 0u);
  cr_assert(fake.conn->state() == State::kReady);
}

std::unique_ptr<app::BodySink> hashing_sink() {
  return std::make_unique<app::BodySink>(app::BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
}

// A sink writing `name` in `dir`.
std::unique_ptr<app::BodySink> file_sink(const testsupport::TempDir& dir, const std::string& name,
                                         app::BodySink::Hashing hashing) {
  auto sink = std::make_unique<app::BodySink>(hashing, protocol::DigestKind::kTree);
  int raw = ::open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  cr_assert(raw >= 0, "open %s: %s", dir.path().c_str(), std::strerror(errno));
  std::string err;
  cr_assert(sink->open_file(reactor::UniqueFd(raw), name, name, false, &err), "open_file: %s", err.c_str());
  return sink;
}

// Sends `bytes` in chunks of the sizes in `chunks` (cycled), running the loop once
// between chunks so that the client sees them one by one.
void server_send_chunked(Fake& fake, const std::string& bytes, const std::vector<size_t>& chunks) {
  size_t pos = 0;
  for (size_t i = 0; pos < bytes.size(); ++i) {
    size_t len = std::min(chunks[i % chunks.size()], bytes.size() - pos);
    server_send(fake, std::string_view(bytes).substr(pos, len));
    pos += len;
    spin(fake);
  }
}

std::string digest_hex(const client::GetCommand& get) {
  return testsupport::hex_encode(
      std::string_view(reinterpret_cast<const char*>(get.digest().data()), get.digest().size()));
}

}  // namespace

// ---------------------------------------------------------------- handshake

Test(connection, handshake_reaches_ready) {
  auto fake = make_fake();
  settle(*fake);
  expect_client_silent(*fake);  // the server speaks first
  cr_assert(fake->conn->state() == State::kAwaitHello);

  send_hello(*fake);
  expect_auth(*fake);
  settle(*fake);
  cr_assert_eq(fake->listener.ready, 0, "ready before auth_ok");
  expect_client_silent(*fake);

  server_send(*fake, auth_ok_frame(*fake));
  expect_ready(*fake);
  ASSERT_STR_EQ(fake->conn->server_software(), "fake/1");
  cr_assert(fake->conn->server_offers("get"));
  cr_assert(fake->conn->server_offers("resume"));
  cr_assert(!fake->conn->server_offers("upload"));
  settle(*fake);
  expect_client_silent(*fake);  // no request of its own
  ASSERT_STR_EQ(fake->listener.joined(), "ready");
  expect_ping_works(*fake);
  cr_assert_eq(fake->listener.failures, 0);
}

Test(connection, a_newer_server_is_spoken_to_in_version_2) {
  auto fake = make_fake();
  fake->server_nonce = testsupport::random_bytes(testsupport::kNonceBytes);
  server_send(*fake, hello_frame(fake->server_nonce, "7"));
  expect_auth(*fake);  // checks "proto":2
  server_send(*fake, auth_ok_frame(*fake, "2"));
  expect_ready(*fake);
  cr_assert_eq(fake->conn->protocol_version(), 2u);
}

Test(connection, a_version_1_server_is_spoken_to_in_version_1) {
  auto fake = make_fake();
  send_hello(*fake, "1");
  expect_auth(*fake);
  server_send(*fake, auth_ok_frame(*fake, "1"));
  expect_ready(*fake);
  cr_assert_eq(fake->conn->protocol_version(), 1u);
}

Test(connection, an_auth_ok_with_another_version_is_a_protocol_failure) {
  auto fake = make_fake();
  send_hello(*fake, "2");
  expect_auth(*fake);
  // Version 2 was the smaller of the two; a server that settles on 1 broke the rule.
  server_send(*fake, auth_ok_frame(*fake, "1"));
  expect_failure(*fake, client::Failure::kProtocol, "settled on protocol 1");
}

Test(connection, server_software_is_escaped_for_the_terminal) {
  auto fake = make_fake();
  fake->server_nonce = testsupport::random_bytes(testsupport::kNonceBytes);
  server_send(*fake, hello_frame(fake->server_nonce, "1", "evil\x1b[2J/1"));
  expect_auth(*fake);
  server_send(*fake, auth_ok_frame(*fake));
  expect_ready(*fake);
  const std::string software = fake->conn->server_software();
  cr_assert(software.find('\x1b') == std::string::npos, "raw escape kept in \"%s\"", software.c_str());
}

Test(connection, wrong_server_mac_is_an_auth_failure) {
  auto fake = make_fake();
  send_hello(*fake);
  expect_auth(*fake);
  // Proved with another secret.
  server_send(*fake, auth_ok_frame_with_mac(testsupport::server_mac_hex(kWrongKey, fake->server_nonce,
                                                                        fake->client_nonce)));
  expect_failure(*fake, Failure::kAuth, "impostor");
  cr_assert_eq(fake->listener.ready, 0);
  expect_client_closed(*fake);  // and no request was sent
}

Test(connection, reflected_client_mac_is_an_auth_failure) {
  auto fake = make_fake();
  send_hello(*fake);
  testsupport::Frame auth = expect_auth(*fake);
  // The client's own proof sent back: the role label must make it useless.
  server_send(*fake, auth_ok_frame_with_mac(*auth.string_field("mac")));
  expect_failure(*fake, Failure::kAuth, "impostor");
  cr_assert_eq(fake->listener.ready, 0);
  expect_client_closed(*fake);
}

Test(connection, auth_failed_error_is_an_auth_failure) {
  auto fake = make_fake();
  send_hello(*fake);
  expect_auth(*fake);
  server_send(*fake, error_frame("auth_failed", "wrong proof"));
  expect_failure(*fake, Failure::kAuth, "auth_failed");
  expect_client_closed(*fake);
}

Test(connection, busy_before_hello_is_a_connect_failure) {
  auto fake = make_fake();
  server_send(*fake, error_frame("busy", "connection limit reached"));
  expect_failure(*fake, Failure::kConnect, "busy");
  expect_client_closed(*fake);
}

Test(connection, hello_proto_0_is_a_protocol_failure) {
  auto fake = make_fake();
  fake->server_nonce = testsupport::random_bytes(testsupport::kNonceBytes);
  server_send(*fake, hello_frame(fake->server_nonce, "0"));
  expect_failure(*fake, Failure::kProtocol, "");
  expect_client_closed(*fake);  // no auth
}

Test(connection, first_frame_not_hello_is_a_protocol_failure) {
  auto fake = make_fake();
  server_send(*fake, pong_frame());
  expect_failure(*fake, Failure::kProtocol, "expected hello");
  expect_client_closed(*fake);
}

// Something other than a reactor server answered the port: the failure names what it is.
Test(connection, an_ssh_banner_is_named_not_parsed_as_a_frame) {
  auto fake = make_fake();
  server_send(*fake, "SSH-2.0-OpenSSH_9.2\r\n");
  expect_failure(*fake, Failure::kProtocol, "speaks SSH, not the reactor protocol");
  expect_client_closed(*fake);
}

Test(connection, garbage_before_hello_is_a_malformed_frame) {
  auto fake = make_fake();
  server_send(*fake, std::string("\xff\xff\xff\xff\x00\x01\x02\x03", 8));
  expect_failure(*fake, Failure::kProtocol, "malformed frame from the server");
  expect_client_closed(*fake);
}

Test(connection, auth_ok_before_hello_is_a_protocol_failure) {
  auto fake = make_fake();
  server_send(*fake, auth_ok_frame_with_mac(std::string(64, '0')));
  expect_failure(*fake, Failure::kProtocol, "expected hello");
  expect_client_closed(*fake);
}

Test(connection, second_hello_is_a_protocol_failure) {
  auto fake = make_fake();
  send_hello(*fake);
  expect_auth(*fake);
  server_send(*fake, hello_frame(testsupport::random_bytes(testsupport::kNonceBytes)));
  expect_failure(*fake, Failure::kProtocol, "expected auth_ok");
  expect_client_closed(*fake);
}

Test(connection, eof_before_hello_is_closed_before_greeting) {
  auto fake = make_fake();
  cr_assert_eq(::shutdown(fake->peer.get(), SHUT_WR), 0);
  expect_failure(*fake, Failure::kClosed, "before greeting");
  expect_client_closed(*fake);
}

Test(connection, eof_after_hello_is_closed) {
  auto fake = make_fake();
  send_hello(*fake);
  expect_auth(*fake);
  cr_assert_eq(::shutdown(fake->peer.get(), SHUT_WR), 0);
  expect_failure(*fake, Failure::kClosed, "closed the connection");
  cr_assert(fake->listener.message.find("before greeting") == std::string::npos, "%s",
            fake->listener.message.c_str());
}

Test(connection, eof_mid_frame_is_closed) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand ping;
  fake->conn->submit(ping);
  expect_request(*fake, "ping");
  std::string pong = pong_frame();
  server_send(*fake, pong.substr(0, 7));
  cr_assert_eq(::shutdown(fake->peer.get(), SHUT_WR), 0);
  expect_failure(*fake, Failure::kClosed, "closed the connection");
  cr_assert(ping.finished() && !ping.succeeded());
  cr_assert_eq(ping.result().exit_code, client::kExitProtocol);
  cr_assert(fake->listener.done.empty(), "an abandoned command was reported done");
}

Test(connection, submit_before_ready_is_refused) {
  auto fake = make_fake();
  client::PingCommand ping;
  fake->conn->submit(ping);
  cr_assert(ping.finished() && !ping.succeeded());
  cr_assert_eq(ping.result().exit_code, client::kExitFailure);
  cr_assert_eq(fake->conn->in_flight(), 0u);
  settle(*fake);
  expect_client_silent(*fake);
  handshake(*fake);  // the connection is unharmed
}

// ---------------------------------------------------------------- awkward splits

Test(connection, every_byte_separately_from_the_server) {
  // A transport that changes nothing, for its counters: they prove that the client did
  // read (and so decode) every byte on its own.
  Options options;
  options.script = testsupport::TransportScript{};
  auto fake = make_fake(options);
  fake->server_nonce = testsupport::random_bytes(testsupport::kNonceBytes);
  std::string hello = hello_frame(fake->server_nonce);
  for (size_t i = 0; i < hello.size(); ++i) {
    server_send(*fake, hello.substr(i, 1));
    spin(*fake);
    if (i + 1 < hello.size()) {
      cr_assert(fake->conn->state() == State::kAwaitHello, "state %s after %zu of %zu hello bytes",
                client::to_string(fake->conn->state()), i + 1, hello.size());
      pull(*fake);
      cr_assert(fake->inbox.empty(), "the client answered a partial hello (%zu of %zu bytes)", i + 1, hello.size());
    }
  }
  expect_auth(*fake);

  std::string auth_ok = auth_ok_frame(*fake);
  for (size_t i = 0; i < auth_ok.size(); ++i) {
    server_send(*fake, auth_ok.substr(i, 1));
    spin(*fake);
    if (i + 1 < auth_ok.size())
      cr_assert(fake->conn->state() == State::kAwaitAuthOk, "state %s after %zu of %zu auth_ok bytes",
                client::to_string(fake->conn->state()), i + 1, auth_ok.size());
  }
  expect_ready(*fake);

  client::PingCommand ping;
  auto get = std::make_unique<client::GetCommand>("small.bin", hashing_sink());
  fake->conn->submit(ping);
  fake->conn->submit(*get);
  expect_request(*fake, "ping");
  ASSERT_STR_EQ(*expect_request(*fake, "get").string_field("path"), "small.bin");
  std::string body = testsupport::pattern_bytes(0, 300, 7);
  std::string replies = pong_frame() + get_response("small.bin", body);
  for (size_t i = 0; i < replies.size(); ++i) {
    server_send(*fake, replies.substr(i, 1));
    spin(*fake);
  }
  wait_done(*fake, *get);
  expect_succeeded(ping);
  expect_succeeded(*get);
  cr_assert_eq(get->received(), body.size());
  ASSERT_STR_EQ(digest_hex(*get), testsupport::sha256_hex(body));
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:ping:0 done:get:0");
  size_t sent = hello.size() + auth_ok.size() + replies.size();
  cr_assert_eq(fake->counters.reads, sent, "%llu reads for %zu bytes sent one by one",
               static_cast<unsigned long long>(fake->counters.reads), sent);
}

// The client's own reads see one byte at a time, and every few calls a spurious EAGAIN.
Test(connection, scripted_reads_of_one_byte_with_eagain) {
  for (unsigned every = 2; every <= 5; ++every) {
    Options options;
    options.script = testsupport::TransportScript{1, SIZE_MAX, every, true};
    auto fake = make_fake(options);
    handshake(*fake);

    client::PingCommand ping1;
    client::StatCommand stat("docs/a.txt");
    client::PingCommand ping2;
    auto get = std::make_unique<client::GetCommand>("b.bin", hashing_sink());
    fake->conn->submit(ping1);
    fake->conn->submit(stat);
    fake->conn->submit(*get);
    fake->conn->submit(ping2);
    expect_request(*fake, "ping");
    expect_request(*fake, "stat");
    expect_request(*fake, "get");
    expect_request(*fake, "ping");
    std::string body = testsupport::pattern_bytes(0, 1000, every);
    server_send(*fake, pong_frame() + stat_ok_frame("docs/a.txt", 6) + get_response("b.bin", body) + pong_frame());
    wait_done(*fake, ping2);
    expect_succeeded(ping1);
    expect_succeeded(stat);
    expect_succeeded(*get);
    expect_succeeded(ping2);
    ASSERT_STR_EQ(fake->listener.joined(), "ready done:ping:0 done:stat:0 done:get:0 done:ping:0");
    cr_assert_gt(fake->counters.injected_eagain, 0u, "eagain_every=%u injected nothing", every);
    cr_assert_geq(fake->counters.reads, 1000u, "eagain_every=%u: only %llu reads", every,
                  static_cast<unsigned long long>(fake->counters.reads));
    cr_assert(fake->conn->state() == State::kReady);
  }
}

// auth_ok and the answer to the request on_ready sends, in one write.
Test(connection, two_frames_in_one_write) {
  auto fake = make_fake();
  client::PingCommand ping;
  fake->listener.on_ready_hook = [&](Connection& connection) { connection.submit(ping); };
  send_hello(*fake);
  expect_auth(*fake);
  // Sending the pong before the ping was even written is fine: the ping is sent from
  // on_ready, before the stream decodes the next frame.
  server_send(*fake, auth_ok_frame(*fake) + pong_frame());
  wait_done(*fake, ping);
  expect_succeeded(ping);
  expect_request(*fake, "ping");
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:ping:0");
  cr_assert(fake->conn->state() == State::kReady);
}

Test(connection, pipelined_requests_answered_in_one_write) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand p1, p2, p3;
  client::StatCommand stat("some/file");
  fake->conn->submit(p1);
  fake->conn->submit(p2);
  fake->conn->submit(p3);
  fake->conn->submit(stat);
  cr_assert_eq(fake->conn->in_flight(), 4u);
  expect_request(*fake, "ping");
  expect_request(*fake, "ping");
  expect_request(*fake, "ping");
  ASSERT_STR_EQ(*expect_request(*fake, "stat").string_field("path"), "some/file");
  settle(*fake);
  cr_assert_eq(fake->listener.done.size(), 0u);

  server_send(*fake, pong_frame() + pong_frame() + pong_frame() + stat_ok_frame("some/file", 12345));
  wait_done(*fake, stat);
  cr_assert_eq(fake->listener.done.size(), 4u);
  cr_assert_eq(fake->listener.done[0], &p1);
  cr_assert_eq(fake->listener.done[1], &p2);
  cr_assert_eq(fake->listener.done[2], &p3);
  cr_assert_eq(fake->listener.done[3], &stat);
  expect_succeeded(p1);
  expect_succeeded(p2);
  expect_succeeded(p3);
  expect_succeeded(stat);
  ASSERT_STR_EQ(stat.reply().path, "some/file");
  cr_assert_eq(stat.reply().size, 12345u);
  cr_assert(stat.reply().kind == protocol::EntryKind::kFile);
  cr_assert_eq(stat.reply().mode, 0644u);
  cr_assert_eq(fake->conn->in_flight(), 0u);
  cr_assert_eq(fake->listener.failures, 0);
}

Test(connection, list_and_msg) {
  auto fake = make_fake();
  handshake(*fake);
  client::ListCommand list("");
  client::MsgCommand msg("hello, log");
  fake->conn->submit(list);
  fake->conn->submit(msg);
  expect_request(*fake, "list");
  ASSERT_STR_EQ(*expect_request(*fake, "msg").string_field("text"), "hello, log");
  server_send(*fake,
              testsupport::encode_frame(
                  R"({"type":"entries","entries":[{"name":"a.txt","kind":"file","size":6,"mtime":1764072000}]})") +
                  testsupport::encode_frame(
                      R"({"type":"entries","entries":[{"name":"docs","kind":"dir","size":4096,"mtime":1}]})") +
                  testsupport::encode_frame(R"({"type":"list_end","count":2,"skipped":3})") + msg_ok_frame(10));
  wait_done(*fake, msg);
  expect_succeeded(list);
  expect_succeeded(msg);
  cr_assert_eq(list.entries().size(), 2u);
  ASSERT_STR_EQ(list.entries()[0].name, "a.txt");
  ASSERT_STR_EQ(list.entries()[1].name, "docs");
  cr_assert(list.entries()[1].kind == protocol::EntryKind::kDir);
  cr_assert_eq(list.skipped(), 3u);
  cr_assert_eq(msg.bytes(), 10u);
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:list:0 done:msg:0");
}

// Requests submitted from on_command_done, as reactorc bench does.
Test(connection, submit_from_on_command_done) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand pings[5];
  size_t next = 1;
  fake->listener.on_done_hook = [&](Connection& connection, client::Command&) {
    if (next < 5) connection.submit(pings[next++]);
  };
  fake->conn->submit(pings[0]);
  for (int i = 0; i < 5; ++i) {
    expect_request(*fake, "ping");
    server_send(*fake, pong_frame());
  }
  wait_done(*fake, pings[4]);
  for (auto& ping : pings) expect_succeeded(ping);
  cr_assert_eq(fake->listener.done.size(), 5u);
}

// ---------------------------------------------------------------- get

Test(connection, get_large_body_in_odd_chunks) {
  auto fake = make_fake();
  handshake(*fake);
  const size_t size = 300 * 1024 + 123;
  std::string body = testsupport::pattern_bytes(0, size, 42);
  auto get = std::make_unique<client::GetCommand>("big.bin", hashing_sink());
  client::PingCommand ping;
  fake->conn->submit(*get);
  fake->conn->submit(ping);
  ASSERT_STR_EQ(*expect_request(*fake, "get").string_field("path"), "big.bin");
  expect_request(*fake, "ping");
  server_send_chunked(*fake, get_response("big.bin", body) + pong_frame(), {1, 3, 4093, 65537, 7, 131071, 2, 9999, 5});
  wait_done(*fake, ping);
  expect_succeeded(*get);
  expect_succeeded(ping);
  cr_assert(get->started());
  cr_assert_eq(get->received(), size);
  ASSERT_STR_EQ(digest_hex(*get), testsupport::sha256_hex(body));
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:get:0 done:ping:0");
}

Test(connection, get_large_body_through_scripted_reads) {
  Options options;
  options.script = testsupport::TransportScript{997, SIZE_MAX, 7, true};
  auto fake = make_fake(options);
  handshake(*fake);
  const size_t size = 400 * 1024 + 1;
  std::string body = testsupport::pattern_bytes(0, size, 43);
  auto get = std::make_unique<client::GetCommand>("big.bin", hashing_sink());
  fake->conn->submit(*get);
  expect_request(*fake, "get");
  server_send(*fake, get_response("big.bin", body));
  wait_done(*fake, *get);
  expect_succeeded(*get);
  cr_assert_eq(get->received(), size);
  ASSERT_STR_EQ(digest_hex(*get), testsupport::sha256_hex(body));
  expect_ping_works(*fake);
}

Test(connection, get_into_a_file) {
  std::string err;
  std::optional<testsupport::TempDir> dir = testsupport::TempDir::create("test-connection", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  auto fake = make_fake();
  handshake(*fake);
  const size_t size = 256 * 1024 + 77;
  std::string body = testsupport::pattern_bytes(0, size, 44);
  auto get = std::make_unique<client::GetCommand>("remote/f.bin",
                                                  file_sink(*dir, "f.bin", app::BodySink::Hashing::kBackground));
  fake->conn->submit(*get);
  expect_request(*fake, "get");
  server_send_chunked(*fake, get_response("remote/f.bin", body), {65535, 11, 100003});
  wait_done(*fake, *get);
  expect_succeeded(*get);
  std::optional<std::string> written = testsupport::read_file(dir->path("f.bin"), &err);
  cr_assert(written.has_value(), "%s", err.c_str());
  cr_assert(*written == body, "the file differs from the body (%zu vs %zu bytes)", written->size(), body.size());
  std::optional<std::vector<std::string>> names = testsupport::list_dir(dir->path(), &err);
  cr_assert(names.has_value() && names->size() == 1, "leftovers beside the file");
}

Test(connection, get_empty_file) {
  auto fake = make_fake();
  handshake(*fake);
  auto get = std::make_unique<client::GetCommand>("empty", hashing_sink());
  fake->conn->submit(*get);
  expect_request(*fake, "get");
  server_send(*fake, get_response("empty", ""));
  wait_done(*fake, *get);
  expect_succeeded(*get);
  cr_assert_eq(get->received(), 0u);
  expect_ping_works(*fake);
}

Test(connection, get_wrong_digest_fails_verify_and_connection_stays_ready) {
  std::string err;
  std::optional<testsupport::TempDir> dir = testsupport::TempDir::create("test-connection", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  auto fake = make_fake();
  handshake(*fake);
  std::string body = testsupport::pattern_bytes(0, 100 * 1024 + 3, 45);
  std::string wrong = testsupport::sha256_hex(body + "x");
  auto hashed = std::make_unique<client::GetCommand>("a.bin", hashing_sink());
  auto filed = std::make_unique<client::GetCommand>("b.bin", file_sink(*dir, "b.bin", app::BodySink::Hashing::kInline));
  fake->conn->submit(*hashed);
  fake->conn->submit(*filed);
  expect_request(*fake, "get");
  expect_request(*fake, "get");
  server_send_chunked(*fake, get_response("a.bin", body, wrong) + get_response("b.bin", body, wrong),
                      {8191, 13, 77777});
  wait_done(*fake, *filed);
  for (client::GetCommand* get : {hashed.get(), filed.get()}) {
    cr_assert(get->finished() && !get->succeeded(), "a get with a wrong digest succeeded");
    cr_assert_eq(get->result().exit_code, client::kExitVerify, "exit %d: %s", get->result().exit_code,
                 get->result().message.c_str());
    ASSERT_CONTAINS(get->result().message, "SHA-256 mismatch");
  }
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:get:6 done:get:6");
  cr_assert(fake->conn->state() == State::kReady);
  cr_assert_eq(fake->conn->in_flight(), 0u);
  std::optional<std::vector<std::string>> names = testsupport::list_dir(dir->path(), &err);
  cr_assert(names.has_value(), "%s", err.c_str());
  cr_assert(names->empty(), "a failed get left %zu file(s), the first %s", names->size(),
            names->empty() ? "" : names->front().c_str());
  expect_ping_works(*fake);
  cr_assert_eq(fake->listener.failures, 0);
}

Test(connection, get_error_trailer_fails_remote_and_connection_stays_ready) {
  auto fake = make_fake();
  handshake(*fake);
  std::string body = testsupport::pattern_bytes(0, 5000, 46);
  auto get = std::make_unique<client::GetCommand>("changing", hashing_sink());
  fake->conn->submit(*get);
  expect_request(*fake, "get");
  server_send(*fake, file_frame("changing", body.size()) + body + error_frame("file_changed", "it changed"));
  wait_done(*fake, *get);
  cr_assert(!get->succeeded());
  cr_assert_eq(get->result().exit_code, client::kExitRemote);
  ASSERT_CONTAINS(get->result().message, "file_changed");
  cr_assert(fake->conn->state() == State::kReady);
  expect_ping_works(*fake);
}

Test(connection, get_with_an_offset_is_a_protocol_failure) {
  auto fake = make_fake();
  handshake(*fake);
  auto get = std::make_unique<client::GetCommand>("x", hashing_sink());
  fake->conn->submit(*get);
  expect_request(*fake, "get");
  server_send(*fake,
              testsupport::encode_frame(
                  R"({"type":"file","path":"x","size":10,"offset":4,"mtime":0,"mode":420,"body":6})") +
                  "abcdef");
  expect_failure(*fake, Failure::kProtocol, "unexpected file header");
  cr_assert_eq(get->result().exit_code, client::kExitProtocol);
}

// ---------------------------------------------------------------- errors

Test(connection, per_request_error_fails_that_command_only) {
  auto fake = make_fake();
  handshake(*fake);
  auto get = std::make_unique<client::GetCommand>("missing", hashing_sink());
  client::StatCommand stat("gone");
  client::PingCommand ping;
  fake->conn->submit(*get);
  fake->conn->submit(stat);
  fake->conn->submit(ping);
  expect_request(*fake, "get");
  expect_request(*fake, "stat");
  expect_request(*fake, "ping");
  server_send(*fake, error_frame("not_found", "\"missing\" does not exist") +
                         error_frame("not_found", "\"gone\" does not exist") + pong_frame());
  wait_done(*fake, ping);
  cr_assert(!get->succeeded());
  cr_assert(!get->started());
  cr_assert_eq(get->result().exit_code, client::kExitRemote);
  ASSERT_CONTAINS(get->result().message, "not_found");
  ASSERT_CONTAINS(get->result().message, "missing");
  cr_assert_eq(stat.result().exit_code, client::kExitRemote);
  expect_succeeded(ping);
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:get:5 done:stat:5 done:ping:0");
  cr_assert(fake->conn->state() == State::kReady);
  expect_ping_works(*fake);
}

Test(connection, fatal_error_in_flight_fails_the_command_then_the_connection) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand first;
  client::StatCommand second("x");
  fake->conn->submit(first);
  fake->conn->submit(second);
  expect_request(*fake, "ping");
  expect_request(*fake, "stat");
  server_send(*fake, error_frame("shutting_down", "the server is stopping"));
  expect_failure(*fake, Failure::kProtocol, "shutting_down");
  cr_assert(first.finished() && !first.succeeded());
  cr_assert_eq(first.result().exit_code, client::kExitRemote, "exit %d: %s", first.result().exit_code,
               first.result().message.c_str());
  ASSERT_CONTAINS(first.result().message, "shutting_down");
  // The one behind it is abandoned with the connection's status, not reported done.
  cr_assert(second.finished() && !second.succeeded());
  cr_assert_eq(second.result().exit_code, client::kExitProtocol);
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:ping:5 failure:protocol");
  expect_client_closed(*fake);
}

Test(connection, fatal_error_while_idle_is_a_protocol_failure) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, error_frame("shutting_down", "bye"));
  expect_failure(*fake, Failure::kProtocol, "shutting_down");
  ASSERT_STR_EQ(fake->listener.joined(), "ready failure:protocol");
}

Test(connection, timeout_error_is_a_timeout_failure) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, error_frame("timeout", "idle for too long"));
  expect_failure(*fake, Failure::kTimeout, "timeout");
}

Test(connection, unknown_error_code_is_fatal) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand ping;
  fake->conn->submit(ping);
  expect_request(*fake, "ping");
  server_send(*fake, error_frame("quota_exceeded", "a newer server's code") + pong_frame());
  expect_failure(*fake, Failure::kProtocol, "quota_exceeded");
  cr_assert(!ping.succeeded());
}

Test(connection, unexpected_reply_with_nothing_in_flight) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, pong_frame());
  expect_failure(*fake, Failure::kProtocol, "unexpected reply");
  ASSERT_CONTAINS(fake->listener.message, "pong");
  expect_client_closed(*fake);
}

Test(connection, unexpected_body_with_nothing_in_flight) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, get_response("unasked", "some bytes"));
  expect_failure(*fake, Failure::kProtocol, "unexpected reply");
}

Test(connection, wrong_reply_type_fails_command_and_connection) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand ping;
  client::PingCommand behind;
  fake->conn->submit(ping);
  fake->conn->submit(behind);
  expect_request(*fake, "ping");
  expect_request(*fake, "ping");
  server_send(*fake, stat_ok_frame("x", 1) + pong_frame());
  expect_failure(*fake, Failure::kProtocol, "unexpected reply");
  cr_assert_eq(ping.result().exit_code, client::kExitProtocol);
  cr_assert_eq(behind.result().exit_code, client::kExitProtocol);
  cr_assert(fake->listener.done.empty());
}

Test(connection, hello_while_ready_is_a_protocol_failure) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, hello_frame(testsupport::random_bytes(testsupport::kNonceBytes)));
  expect_failure(*fake, Failure::kProtocol, "unexpected reply");
}

Test(connection, zero_length_frame_is_a_protocol_failure) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand ping;
  fake->conn->submit(ping);
  expect_request(*fake, "ping");
  server_send(*fake, testsupport::be32(0) + pong_frame());
  expect_failure(*fake, Failure::kProtocol, "malformed frame");
  cr_assert_eq(ping.result().exit_code, client::kExitProtocol);
  cr_assert(fake->listener.done.empty());
  expect_client_closed(*fake);
}

Test(connection, header_not_json_is_a_protocol_failure) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand ping;
  fake->conn->submit(ping);
  expect_request(*fake, "ping");
  server_send(*fake, testsupport::encode_frame("{\"type\":\"pong\"") + pong_frame());
  expect_failure(*fake, Failure::kProtocol, "malformed frame");
  cr_assert(!ping.succeeded());
}

Test(connection, header_not_json_during_handshake_is_a_protocol_failure) {
  auto fake = make_fake();
  server_send(*fake, testsupport::encode_frame("hello there"));
  expect_failure(*fake, Failure::kProtocol, "malformed frame");
  expect_client_closed(*fake);
}

Test(connection, header_too_large_is_refused_from_the_length_alone) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, testsupport::be32(65537));  // not a single header byte follows
  expect_failure(*fake, Failure::kProtocol, "malformed frame");
}

Test(connection, unknown_message_type_is_a_protocol_failure) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, testsupport::encode_frame(R"({"type":"surprise"})"));
  expect_failure(*fake, Failure::kProtocol, "bad message");
}

// ---------------------------------------------------------------- silence

Test(connection, silence_while_a_reply_is_due_times_out) {
  Options options;
  options.timeout = std::chrono::milliseconds(200);
  auto fake = make_fake(options);
  handshake(*fake);
  client::PingCommand ping;
  fake->conn->submit(ping);
  auto submitted = testsupport::Clock::now();
  expect_request(*fake, "ping");
  expect_failure(*fake, Failure::kTimeout, "sent nothing");
  auto waited = testsupport::Clock::now() - submitted;
  cr_assert(waited >= std::chrono::milliseconds(200), "timed out after %lld ms, before its timeout",
            static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()));
  cr_assert(!ping.succeeded());
  cr_assert_eq(ping.result().exit_code, client::kExitProtocol);
  expect_client_closed(*fake);
}

Test(connection, idle_ready_connection_is_not_timed_out) {
  Options options;
  options.timeout = std::chrono::milliseconds(200);
  auto fake = make_fake(options);
  handshake(*fake);
  settle(*fake, Millis(1200));  // six timeouts' worth
  cr_assert_eq(fake->listener.failures, 0, "an idle connection failed: %s", fake->listener.message.c_str());
  cr_assert(fake->conn->state() == State::kReady);
  // The silence clock starts at the request, not at the last traffic long ago.
  client::PingCommand ping;
  fake->conn->submit(ping);
  expect_request(*fake, "ping");
  settle(*fake, Millis(60));
  server_send(*fake, pong_frame());
  wait_done(*fake, ping);
  expect_succeeded(ping);
  settle(*fake, Millis(700));
  cr_assert_eq(fake->listener.failures, 0, "failed after the pong: %s", fake->listener.message.c_str());
  expect_ping_works(*fake);
}

Test(connection, silence_before_hello_times_out) {
  Options options;
  options.timeout = std::chrono::milliseconds(200);
  auto fake = make_fake(options);
  expect_failure(*fake, Failure::kTimeout, "sent nothing");
  expect_client_closed(*fake);
}

Test(connection, silence_after_auth_times_out) {
  Options options;
  options.timeout = std::chrono::milliseconds(200);
  auto fake = make_fake(options);
  send_hello(*fake);
  expect_auth(*fake);
  expect_failure(*fake, Failure::kTimeout, "sent nothing");
}

// A slow trickle is traffic: each byte restarts the silence clock.
Test(connection, a_slow_reply_is_not_silence) {
  Options options;
  options.timeout = std::chrono::milliseconds(300);
  auto fake = make_fake(options);
  handshake(*fake);
  client::PingCommand ping;
  fake->conn->submit(ping);
  expect_request(*fake, "ping");
  std::string pong = pong_frame();
  for (size_t i = 0; i < pong.size(); ++i) {
    server_send(*fake, pong.substr(i, 1));
    settle(*fake, Millis(40));  // 19 bytes: well over the timeout in all, never 300 ms at once
  }
  wait_done(*fake, ping);
  expect_succeeded(ping);
  cr_assert_eq(fake->listener.failures, 0, "%s", fake->listener.message.c_str());
}

// ---------------------------------------------------------------- the client's writes

Test(connection, scripted_writes_of_one_byte) {
  for (unsigned every : {0u, 3u}) {
    Options options;
    options.script = testsupport::TransportScript{SIZE_MAX, 1, every, true};
    auto fake = make_fake(options);
    handshake(*fake);  // checks the auth frame's every field and its mac
    client::PingCommand p1, p2;
    client::StatCommand stat("a/b/c");
    client::MsgCommand msg(std::string(3000, 'm'));
    fake->conn->submit(p1);
    fake->conn->submit(stat);
    fake->conn->submit(msg);
    fake->conn->submit(p2);
    expect_request(*fake, "ping");
    ASSERT_STR_EQ(*expect_request(*fake, "stat").string_field("path"), "a/b/c");
    ASSERT_STR_EQ(*expect_request(*fake, "msg").string_field("text"), std::string(3000, 'm'));
    expect_request(*fake, "ping");
    cr_assert_eq(fake->counters.writes, fake->received, "eagain_every=%u: %llu bytes in %llu writes", every,
                 static_cast<unsigned long long>(fake->received),
                 static_cast<unsigned long long>(fake->counters.writes));
    server_send(*fake, pong_frame() + stat_ok_frame("a/b/c", 1) + msg_ok_frame(3000) + pong_frame());
    wait_done(*fake, p2);
    ASSERT_STR_EQ(fake->listener.joined(), "ready done:ping:0 done:stat:0 done:msg:0 done:ping:0");
  }
}

// ---------------------------------------------------------------- closing

Test(connection, close_from_on_command_done_stops_delivery) {
  auto fake = make_fake();
  handshake(*fake);
  client::PingCommand p1, p2;
  fake->listener.on_done_hook = [](Connection& connection, client::Command&) { connection.close(); };
  fake->conn->submit(p1);
  fake->conn->submit(p2);
  expect_request(*fake, "ping");
  expect_request(*fake, "ping");
  server_send(*fake, pong_frame() + pong_frame());
  wait_done(*fake, p1);
  settle(*fake, Millis(50));
  cr_assert(fake->conn->state() == State::kClosed);
  ASSERT_STR_EQ(fake->listener.joined(), "ready done:ping:0");
  cr_assert(!p2.succeeded(), "a reply was delivered after close()");
  expect_client_closed(*fake);
}

Test(connection, submit_after_failure_is_refused) {
  auto fake = make_fake();
  handshake(*fake);
  server_send(*fake, pong_frame());
  expect_failure(*fake, Failure::kProtocol, "unexpected reply");
  client::PingCommand ping;
  fake->conn->submit(ping);
  cr_assert(ping.finished() && !ping.succeeded());
  cr_assert_eq(ping.result().exit_code, client::kExitFailure);
  cr_assert_eq(fake->conn->in_flight(), 0u);
  cr_assert_eq(fake->listener.failures, 1);
}

// A get that fails mid-body (a local write error) leaves the rest of its response on the
// stream: the body and a trailer (end, or an error such as file_changed). The connection
// skips both, so the ping behind the get gets its own pong and the connection stays
// ready. (Found by this test: only the body used to be skipped, and the stray `end` went
// to the ping.) The local write error is made real with RLIMIT_FSIZE (SIGXFSZ ignored:
// write(2) then fails with EFBIG); the limit applies to this test's own process only.
Test(connection, local_write_error_mid_body_keeps_the_connection_usable) {
  std::string err;
  std::optional<testsupport::TempDir> dir = testsupport::TempDir::create("test-connection", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  auto fake = make_fake();
  handshake(*fake);
  const size_t size = 300 * 1024;
  std::string body = testsupport::pattern_bytes(0, size, 47);
  auto get =
      std::make_unique<client::GetCommand>("big.bin", file_sink(*dir, "big.bin", app::BodySink::Hashing::kInline));
  client::PingCommand ping;
  fake->conn->submit(*get);
  fake->conn->submit(ping);
  expect_request(*fake, "get");
  expect_request(*fake, "ping");

  struct rlimit saved {};
  cr_assert_eq(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  std::signal(SIGXFSZ, SIG_IGN);
  cr_assert_eq(::setrlimit(RLIMIT_FSIZE, &small), 0, "setrlimit: %s", std::strerror(errno));
  server_send_chunked(*fake, get_response("big.bin", body) + pong_frame(), {16 * 1024});
  wait_done(*fake, ping);
  ::setrlimit(RLIMIT_FSIZE, &saved);

  cr_assert(!get->succeeded());
  cr_assert_eq(get->result().exit_code, client::kExitLocal, "exit %d: %s", get->result().exit_code,
               get->result().message.c_str());
  // What the comment in finish_front_if_done promises:
  cr_assert_eq(fake->listener.failures, 0, "the connection failed: %s (%s)", fake->listener.message.c_str(),
               fake->listener.joined().c_str());
  expect_succeeded(ping);
  cr_assert(fake->conn->state() == State::kReady);
  expect_ping_works(*fake);
}

// ---- put

namespace {

// A PutCommand for a file of `content`, written into `dir`.
std::unique_ptr<client::PutCommand> make_put(const testsupport::TempDir& dir, const std::string& content,
                                             const std::string& remote) {
  std::string path = dir.path("upload.bin");
  cr_assert(testsupport::write_file(path, content));
  reactor::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  cr_assert(static_cast<bool>(fd));
  struct stat st {};
  cr_assert_eq(fstat(fd.get(), &st), 0);
  return std::make_unique<client::PutCommand>(std::move(fd), st, remote, false, false);
}

std::string put_ready_frame(const std::string& path, uint64_t offset = 0) {
  return testsupport::encode_frame(R"({"type":"put_ready","path":)" + testsupport::json_quote(path) +
                                   R"(,"offset":)" + std::to_string(offset) + "}");
}

std::string put_done_frame(const std::string& path, uint64_t size, const std::string& digest_hex) {
  return testsupport::encode_frame(R"({"type":"put_done","path":)" + testsupport::json_quote(path) + R"(,"size":)" +
                                   std::to_string(size) + R"(,"root":")" + digest_hex + R"("})");
}

}  // namespace

Test(connection, an_upload_holds_back_the_requests_behind_it_until_its_end_is_out) {
  auto fake = make_fake();
  handshake(*fake);
  auto dir = testsupport::TempDir::create("conn-put");
  cr_assert(dir.has_value());
  const std::string content = testsupport::pattern_bytes(0, 300000, 5);
  auto put = make_put(*dir, content, "in/u.bin");
  client::PingCommand ping;
  fake->conn->submit(*put);
  fake->conn->submit(ping);
  cr_assert_eq(fake->conn->in_flight(), 2u);
  testsupport::Frame request = expect_request(*fake, "put");
  ASSERT_STR_EQ(request.string_field("path").value_or(""), "in/u.bin");
  cr_assert_eq(request.number_field("size").value_or(-1), 300000.0);
  cr_assert(!request.has_field("mode") && !request.has_field("mtime"), "%s", request.header.c_str());
  settle(*fake);
  pull(*fake);
  cr_assert(fake->inbox.empty(), "the ping went out behind the put: %zu bytes", fake->inbox.size());
  server_send(*fake, put_ready_frame("in/u.bin"));
  testsupport::Frame data = expect_request(*fake, "data");
  cr_assert_eq(data.number_field("body").value_or(-1), 300000.0);
  cr_assert(expect_body(*fake, content.size()) == content, "the body is not the file");
  testsupport::Frame end = expect_request(*fake, "end");
  ASSERT_STR_EQ(end.string_field("root").value_or(""), testsupport::tree_root_hex(content));
  // Once the end is out the stream is free again: the ping goes without waiting for the
  // verdict (reactor-protocol(7), put), and its answer comes after it.
  expect_request(*fake, "ping");
  cr_assert_not(put->finished());
  server_send(*fake, put_done_frame("in/u.bin", content.size(), testsupport::tree_root_hex(content)));
  wait_done(*fake, *put);
  expect_succeeded(*put);
  server_send(*fake, pong_frame());
  wait_done(*fake, ping);
  expect_succeeded(ping);
}

Test(connection, a_put_done_with_another_digest_fails_the_upload) {
  auto fake = make_fake();
  handshake(*fake);
  auto dir = testsupport::TempDir::create("conn-put");
  cr_assert(dir.has_value());
  auto put = make_put(*dir, "abc", "u");
  fake->conn->submit(*put);
  expect_request(*fake, "put");
  server_send(*fake, put_ready_frame("u"));
  expect_request(*fake, "data");
  expect_body(*fake, 3);
  expect_request(*fake, "end");
  server_send(*fake, put_done_frame("u", 3, testsupport::tree_root_hex("abd")));
  wait_done(*fake, *put);
  cr_assert_eq(put->result().exit_code, client::kExitVerify, "%s", put->result().message.c_str());
  ASSERT_CONTAINS(put->result().message, "stored something else");
}

Test(connection, an_error_in_the_middle_of_an_upload_closes_the_connection) {
  auto fake = make_fake();
  handshake(*fake);
  auto dir = testsupport::TempDir::create("conn-put");
  cr_assert(dir.has_value());
  // Big enough that the body is still going out when the error arrives.
  auto put = make_put(*dir, testsupport::pattern_bytes(0, 64 << 20, 9), "u");
  client::PingCommand ping;
  fake->conn->submit(*put);
  fake->conn->submit(ping);
  expect_request(*fake, "put");
  server_send(*fake, put_ready_frame("u"));
  expect_request(*fake, "data");
  server_send(*fake, error_frame("no_space", "disk full"));
  wait_done(*fake, *put);
  cr_assert_eq(put->result().exit_code, client::kExitRemote, "%s", put->result().message.c_str());
  ASSERT_CONTAINS(put->result().message, "no_space: disk full");
  wait_done(*fake, ping);
  cr_assert_not(ping.succeeded());
  cr_assert(fake->conn->state() == State::kClosed, "state %s", client::to_string(fake->conn->state()));
}

Test(connection, a_put_ready_for_another_offset_is_a_protocol_failure) {
  auto fake = make_fake();
  handshake(*fake);
  auto dir = testsupport::TempDir::create("conn-put");
  cr_assert(dir.has_value());
  auto put = make_put(*dir, "abc", "u");
  fake->conn->submit(*put);
  expect_request(*fake, "put");
  server_send(*fake, put_ready_frame("u", 1));
  wait_done(*fake, *put);
  cr_assert_eq(put->result().exit_code, client::kExitProtocol, "%s", put->result().message.c_str());
  expect_failure(*fake, Failure::kProtocol, "put_ready");
}
