// Integration tests of everything that goes wrong on the way: silent, slow and vanishing
// clients, corrupted and cut streams (through the fault proxy), a server killed or stopped
// mid-transfer, the connection limit, and files that change while they are being sent.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/process.h"
#include "tests/support/proxy.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

namespace {

// root/health.txt for assert_serves; reactord gets EXTRA_ARGS too.
ServeOptions options(const std::vector<std::string>& extra_args = {}) {
  ServeOptions o;
  o.prefix = "robustness-test";
  o.files = {{"health.txt", kHealthText}};
  o.extra_args = extra_args;
  return o;
}

// reactorc arguments for talking to ADDRESS (a proxy) instead of the server itself.
std::vector<std::string> client_args_via(const Served& s, const std::string& address,
                                         const std::vector<std::string>& args) {
  // One attempt: these tests are about what a single failure leaves (--retry is
  // test_resume's).
  std::vector<std::string> out = {"-s", address, "-k", s.secret.path, "--progress=none", "--retry", "0"};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

// The server is alive and serves an honest client (downloading beside the download
// directory, which the tests expect to stay empty).
void assert_serves(const Served& s) { testsupport::assert_serves(s, s.dir.path()); }

// Nothing at all in the download directory: no final file and no ".*.part" debris.
void assert_no_downloads(const Served& s) {
  auto names = list_dir(s.downloads);
  cr_assert(names.has_value());
  std::string joined;
  for (const auto& n : *names) joined += n + " ";
  cr_assert(names->empty(), "left in the download directory: %s", joined.c_str());
}

// A transfer cut short leaves nothing under the final name of `local`, only its partial
// and note, kept for get -c (reactorc(1)); removed here for what comes next.
void assert_only_the_partial_of(const Served& s, const std::string& local) {
  auto names = list_dir(s.downloads);
  cr_assert(names.has_value());
  std::string joined;
  for (const auto& n : *names) {
    joined += n + " ";
    cr_assert(n == "." + local + ".reactor-partial" || n == "." + local + ".reactor-partial.json",
              "left in the download directory: %s", joined.c_str());
    unlink(s.in_downloads(n).c_str());
  }
}

void expect_fatal(RawClient& c, const std::string& code, Millis timeout = Millis(10000)) {
  ReadResult r = c.read_frame(timeout);
  cr_assert(r.ok(), "expected error %s, got %s", code.c_str(), r.describe().c_str());
  cr_assert(r.frame.type() == "error" && r.frame.code() == code, "expected error %s, got %s",
            code.c_str(), r.frame.header.c_str());
  cr_assert(c.read_until_closed(Millis(10000)), "the server kept the connection open after %s",
            code.c_str());
  c.close();
}

void ping(RawClient& c, const std::string& token) {
  cr_assert(c.send_frame("{\"type\":\"ping\",\"token\":" + json_quote(token) + "}"));
  Frame pong = expect_frame(c, "pong");
  ASSERT_STR_EQ(pong.string_field("token").value_or(""), token);
}

// A sparse file with a few marks, big enough that no test sees its transfer finish.
void make_big_sparse(const std::string& path, uint64_t size) {
  std::string err;
  cr_assert(make_sparse_file(path, size, &err), "%s", err.c_str());
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  for (uint64_t at = 0; at + 4 < size; at += size / 7) {
    cr_assert_eq(pwrite(fd, "mark", 4, static_cast<off_t>(at)), 4);
  }
  close(fd);
}

// A proxy in front of the server's TLS listener, or its plain one.
Proxy start_proxy(const Served& s, const FaultSpec& faults, bool plain = false) {
  std::string err;
  auto proxy = Proxy::start(plain ? s.server.plain_address() : s.server.address(), faults, &err);
  cr_assert(proxy.has_value(), "Proxy::start: %s", err.c_str());
  return std::move(*proxy);
}

// Reads one frame's length and header only, leaving its body unread.
Frame read_header_only(RawClient& c) {
  std::string len;
  cr_assert_eq(c.read_bytes(4, &len, Millis(10000)), ReadStatus::kOk);
  uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(len[0])) << 24 |
               static_cast<uint32_t>(static_cast<unsigned char>(len[1])) << 16 |
               static_cast<uint32_t>(static_cast<unsigned char>(len[2])) << 8 |
               static_cast<uint32_t>(static_cast<unsigned char>(len[3]));
  cr_assert_leq(n, 65536u);
  Frame f;
  cr_assert_eq(c.read_bytes(n, &f.header, Millis(10000)), ReadStatus::kOk);
  return f;
}

// A small receive buffer (it also turns off autotuning), so that the server cannot get far
// ahead of a client that reads slowly.
void shrink_receive_buffer(RawClient& c) {
  int size = 64 * 1024;
  cr_assert_eq(setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
}

}  // namespace

TestSuite(robustness, .timeout = 120);

// ----------------------------------------------------------------------------- deadlines

Test(robustness, silent_client_is_dropped_at_the_handshake_deadline) {
  Served s = serve(options({"--handshake-timeout", "1"}));
  Clock::time_point start = Clock::now();
  RawClient silent = connect_raw(s);
  expect_frame(silent, "hello");
  // Another client is served meanwhile.
  assert_serves(s);
  expect_fatal(silent, "timeout");
  cr_assert_geq(seconds_since(start), 0.9, "dropped before the 1 s deadline");
  cr_assert(s.server.wait_for_stderr("handshake deadline", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  assert_serves(s);
  silent.close();
  stop_cleanly(s);
}

Test(robustness, trickling_client_is_dropped_at_the_absolute_deadline) {
  Served s = serve(options({"--handshake-timeout", "1"}));
  Clock::time_point start = Clock::now();
  RawClient c = connect_raw(s);
  Frame hello = expect_frame(c, "hello");
  auto nonce = hex_decode(hello.string_field("nonce").value_or(""));
  cr_assert(nonce.has_value());
  // A correct auth, one byte every 200 ms: each byte is activity, but the deadline counts
  // from the accept and does not move.
  std::string frame = encode_frame(make_auth_header(s.secret.key, *nonce, random_bytes(kNonceBytes)));
  size_t sent = 0;
  ReadResult r;
  for (; sent < frame.size() && sent < 60; ++sent) {
    cr_assert(c.send_raw(frame.substr(sent, 1)), "send failed after %zu bytes", sent);
    r = c.read_frame(Millis(200));
    if (r.status != ReadStatus::kTimeout) break;
  }
  cr_assert(r.ok(), "after %zu bytes: %s", sent, r.describe().c_str());
  cr_assert(r.frame.type() == "error" && r.frame.code() == "timeout", "%s", r.frame.header.c_str());
  cr_assert_lt(sent, frame.size());
  cr_assert_geq(seconds_since(start), 0.9);
  cr_assert(c.read_until_closed(Millis(10000)));
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

Test(robustness, idle_connection_is_closed_after_the_idle_timeout) {
  Served s = serve(options({"--idle-timeout", "2"}));
  RawClient c = connect_authenticated(s);
  // Activity keeps it open: pings every 250 ms for well over the timeout.
  for (int i = 0; i < 12; ++i) {
    ping(c, "keepalive-" + std::to_string(i));
    sleep_for(Millis(250));
  }
  ping(c, "last");
  Clock::time_point last = Clock::now();
  expect_fatal(c, "timeout");
  cr_assert_geq(seconds_since(last), 1.9, "closed before two idle seconds");
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

// --------------------------------------------------------------------- faults in transit

Test(robustness, flipped_byte_fails_verification_and_keeps_nothing) {
  Served s = serve(options());
  make_pattern(s.in_root("big.bin"), 1 << 20, 5);
  FaultSpec f;
  f.flip_at = 300000;  // well inside the body
  // In the plain protocol the body arrives altered and the digest catches it.
  Proxy plain = start_proxy(s, f, true);
  std::vector<std::string> args = client_args_via(s, plain.address(), {"get", "big.bin", s.in_downloads("big.bin")});
  args.insert(args.begin(), "--plain");
  ClientResult r = run_client(args, Millis(60000));
  cr_assert(r.exited_with(6), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "chunk-tree root mismatch");
  cr_assert_eq(plain.stats().flips, 1u);
  assert_no_downloads(s);
  // Written through to standard output, the bytes cannot be taken back: the same status,
  // and words that say the reader has something that is not the file.
  args = client_args_via(s, plain.address(), {"get", "big.bin", "-"});
  args.insert(args.begin(), "--plain");
  r = run_client(args, Millis(60000));
  cr_assert(r.exited_with(6), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "what was written to standard output is not the file");
  cr_assert_eq(r.stdout_text.size(), size_t{1} << 20, "%zu bytes on stdout", r.stdout_text.size());
  // Over TLS the record's authentication tag no longer matches: the AEAD refuses it and
  // the connection ends before a single altered byte is accepted.
  Proxy tls = start_proxy(s, f);
  r = run_client(client_args_via(s, tls.address(), {"get", "big.bin", s.in_downloads("big.bin")}), Millis(60000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "decryption failed or bad record mac");
  cr_assert_eq(tls.stats().flips, 1u);
  // What arrived before the bad record was authentic, and get -c would check it again.
  assert_only_the_partial_of(s, "big.bin");

  // A flipped byte in the hello (plain) or the ServerHello (TLS): exit 8.
  FaultSpec g;
  g.flip_at = 10;
  for (bool plain_hello : {true, false}) {
    Proxy bad_hello = start_proxy(s, g, plain_hello);
    args = client_args_via(s, bad_hello.address(), {"get", "big.bin", s.in_downloads("big.bin")});
    if (plain_hello) args.insert(args.begin(), "--plain");
    r = run_client(args, Millis(60000));
    cr_assert(r.exited_with(8), "%s", r.describe().c_str());
    assert_no_downloads(s);
  }
  assert_serves(s);
  stop_cleanly(s);
}

Test(robustness, connection_cut_mid_body_keeps_only_the_partial) {
  Served s = serve(options());
  make_pattern(s.in_root("big.bin"), 1 << 20, 6);
  for (bool reset : {false, true}) {
    FaultSpec f;
    f.cut_after = 400000;
    f.cut_with_reset = reset;
    Proxy proxy = start_proxy(s, f);
    ClientResult r = run_client(
        client_args_via(s, proxy.address(), {"get", "big.bin", s.in_downloads("big.bin")}), Millis(60000));
    cr_assert(r.exited_with(8), "reset %d: %s", reset, r.describe().c_str());
    cr_assert(r.stderr_text.find("connection") != std::string::npos, "%s", r.stderr_text.c_str());
    ASSERT_CONTAINS(r.stderr_text, "reactorc get -c resumes it");
    assert_only_the_partial_of(s, "big.bin");
  }
  assert_serves(s);
  stop_cleanly(s);
}

Test(robustness, server_killed_mid_transfer) {
  Served s = serve(options());
  make_big_sparse(s.in_root("huge.bin"), uint64_t{1} << 30);
  FaultSpec f;
  f.max_chunk = 4096;  // a slower path, so the transfer is surely still running
  Proxy proxy = start_proxy(s, f);
  Process client = spawn_client(
      s, client_args_via(s, proxy.address(), {"get", "huge.bin", s.in_downloads("huge.bin")}));
  cr_assert(wait_until([&] { return proxy.stats().s2c_bytes > (1u << 20); }, Millis(30000)),
            "the transfer did not start: %s", client.stderr_text().c_str());
  ExitStatus killed = s.server.kill();
  cr_assert(killed.killed_by(SIGKILL), "%s", killed.describe().c_str());
  ExitStatus st = client.wait_exit(Millis(30000));
  cr_assert(st.exited_with(8), "%s; stderr: %s", st.describe().c_str(), client.stderr_text().c_str());
  ASSERT_CONTAINS(client.stderr_text(), "the server closed the connection");
  assert_only_the_partial_of(s, "huge.bin");
}

// ------------------------------------------------------------------------------ shutdown

Test(robustness, sigterm_lets_a_running_transfer_finish) {
  Served s = serve(options({"--grace", "60"}));
  const uint64_t size = 24u << 20;
  make_pattern(s.in_root("p.bin"), size, 8);
  RawClient c = connect_authenticated(s);
  shrink_receive_buffer(c);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"p.bin\"}"));
  Frame header = read_header_only(c);
  ASSERT_STR_EQ(header.type(), "file");
  std::string body;
  cr_assert_eq(c.read_bytes(100000, &body, Millis(10000)), ReadStatus::kOk);

  // Mid-transfer (most of the file is still on the server's side): SIGTERM.
  cr_assert(s.server.send_signal(SIGTERM));
  cr_assert(s.server.wait_for_stderr("no longer accepting", Millis(10000)), "%s",
            s.server.stderr_text().c_str());
  RawClient late;
  std::string err;
  cr_assert_not(late.connect(s.server.plain_address(), Millis(2000), &err),
                "a new connection was accepted after SIGTERM");
  cr_assert(s.server.running(), "the server did not wait for the transfer");

  cr_assert_eq(c.read_bytes(size - body.size(), &body, Millis(60000)), ReadStatus::kOk);
  cr_assert(body == pattern_bytes(0, size, 8), "the body differs");
  Frame end = expect_frame(c, "end");
  ASSERT_STR_EQ(end.string_field("sha256").value_or(""), *sha256_file_hex(s.in_root("p.bin")));
  // Then the server says goodbye and exits 0, without waiting for the grace period.
  expect_fatal(c, "shutting_down");
  ExitStatus st = s.server.wait_exit(Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  cr_assert(s.server.stderr_text().find("grace period over") == std::string::npos, "%s",
            s.server.stderr_text().c_str());
}

Test(robustness, sigterm_during_a_reactorc_download) {
  Served s = serve(options({"--grace", "60"}));
  const uint64_t size = 256u << 20;
  make_big_sparse(s.in_root("z.bin"), size);
  FaultSpec f;
  f.max_chunk = 4096;
  Proxy proxy = start_proxy(s, f);
  Process client =
      spawn_client(s, client_args_via(s, proxy.address(), {"get", "z.bin", s.in_downloads("z.bin")}));
  cr_assert(wait_until([&] { return proxy.stats().s2c_bytes > (1u << 20); }, Millis(30000)),
            "the transfer did not start: %s", client.stderr_text().c_str());
  cr_assert(s.server.send_signal(SIGTERM));
  // The download was still running when the signal came.
  cr_assert(s.server.wait_for_stderr("finishing 1 connection(s)", Millis(10000)), "%s",
            s.server.stderr_text().c_str());
  ExitStatus cst = client.wait_exit(Millis(90000));
  cr_assert(cst.exited_with(0), "%s; stderr: %s", cst.describe().c_str(), client.stderr_text().c_str());
  std::string why;
  cr_assert(files_equal(s.in_root("z.bin"), s.in_downloads("z.bin"), &why), "%s", why.c_str());
  ExitStatus st = s.server.wait_exit(Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
}

Test(robustness, idle_connections_are_told_on_sigterm) {
  Served s = serve(options());
  RawClient idle = connect_authenticated(s);
  RawClient unauthenticated = connect_raw(s);
  expect_frame(unauthenticated, "hello");
  cr_assert(s.server.send_signal(SIGTERM));
  expect_fatal(idle, "shutting_down");
  expect_fatal(unauthenticated, "shutting_down");
  ExitStatus st = s.server.wait_exit(Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
}

// ------------------------------------------------------------------------------- limits

Test(robustness, connection_limit_turns_the_next_client_away_clearly) {
  Served s = serve(options({"--max-conns", "2"}));
  RawClient a = connect_authenticated(s);
  RawClient b = connect_authenticated(s);
  // A third connection gets "busy" instead of a hello, then the close.
  RawClient c = connect_raw(s);
  expect_fatal(c, "busy");
  ClientResult r = s.server.run_client({"ping"});
  // reactorc reports it as "cannot connect", so scripts retry it like a refusal.
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "busy");
  ASSERT_CONTAINS(r.stderr_text, "connection limit");
  // The two inside are still served; once one leaves, a newcomer is served.
  ping(a, "a");
  ping(b, "b");
  a.close();
  cr_assert(s.server.wait_for_stderr("#1 closed", Millis(10000)), "%s", s.server.stderr_text().c_str());
  assert_serves(s);
  a.close();
  b.close();
  c.close();
  stop_cleanly(s);
}

Test(robustness, low_descriptor_limit_lowers_the_connection_limit) {
  // Inherited by the server: it must fit its connection limit to the descriptors it may
  // open, rather than run into EMFILE on accept.
  struct rlimit limit {48, 48};
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &limit), 0);
  Served s = serve(options());
  cr_assert(s.server.wait_for_stderr("lowering --max-conns", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  std::string log = s.server.stderr_text();
  size_t at = log.find("allows only ");
  cr_assert(at != std::string::npos, "%s", log.c_str());
  long allowed = std::strtol(log.c_str() + at + 12, nullptr, 10);
  cr_assert(allowed >= 1 && allowed < 24, "%s", log.c_str());
  std::vector<RawClient> inside;
  for (long i = 0; i < allowed; ++i) inside.push_back(connect_authenticated(s));
  RawClient over = connect_raw(s);
  expect_fatal(over, "busy");
  for (size_t i = 0; i < inside.size(); ++i) ping(inside[i], "inside-" + std::to_string(i));
  inside.clear();
  cr_assert(wait_until([&] { return s.server.stderr_text().find("#" + std::to_string(allowed) + " closed") !=
                                    std::string::npos; },
                       Millis(10000)));
  assert_serves(s);
  cr_assert(s.server.stderr_text().find("Too many open files") == std::string::npos, "%s",
            s.server.stderr_text().c_str());
  over.close();
  stop_cleanly(s);
}

// -------------------------------------------------------------- files changing under us

Test(robustness, file_shrinking_mid_transfer_is_padded_and_reported) {
  Served s = serve(options());
  const uint64_t size = 24u << 20;
  const uint64_t shrunk = 1u << 20;
  make_pattern(s.in_root("shrinks.bin"), size, 12);
  RawClient c = connect_authenticated(s);
  shrink_receive_buffer(c);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"shrinks.bin\"}"));
  Frame header = read_header_only(c);
  ASSERT_STR_EQ(header.type(), "file");
  cr_assert_eq(static_cast<uint64_t>(header.number_field("body").value_or(0)), size);
  std::string body;
  for (int i = 0; i < 4; ++i) {  // slowly
    cr_assert_eq(c.read_bytes(16384, &body, Millis(10000)), ReadStatus::kOk);
    sleep_for(Millis(20));
  }
  cr_assert_eq(truncate(s.in_root("shrinks.bin").c_str(), static_cast<off_t>(shrunk)), 0);
  // The promised length arrives in full: data up to where the server found the end, then
  // zeros.
  cr_assert_eq(c.read_bytes(size - body.size(), &body, Millis(60000)), ReadStatus::kOk);
  cr_assert_eq(body.size(), size);
  std::string original = pattern_bytes(0, size, 12);
  size_t first_diff = 0;
  while (first_diff < size && body[first_diff] == original[first_diff]) ++first_diff;
  cr_assert_geq(first_diff, shrunk, "the data before the new end was damaged at %zu", first_diff);
  cr_assert_lt(first_diff, size, "the server sent the whole file: the test read too slowly");
  for (size_t i = first_diff; i < size; ++i) {
    if (body[i] != 0) cr_assert_fail("byte %zu after the padding start %zu is not zero", i, first_diff);
  }
  Frame trailer = expect_frame(c, "error");
  ASSERT_STR_EQ(trailer.code(), "file_changed");
  // Per-request error: the connection goes on.
  ping(c, "after-shrink");
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"shrinks.bin\"}"));
  Frame again = expect_frame(c, "file", Millis(30000));
  cr_assert_eq(again.body.size(), shrunk);
  cr_assert(again.body == original.substr(0, shrunk));
  expect_frame(c, "end");
  c.close();
  stop_cleanly(s);
}

Test(robustness, file_modified_in_place_mid_transfer_is_reported) {
  Served s = serve(options());
  const uint64_t size = 24u << 20;
  make_pattern(s.in_root("edited.bin"), size, 13);
  RawClient c = connect_authenticated(s);
  shrink_receive_buffer(c);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"edited.bin\"}"));
  Frame header = read_header_only(c);
  ASSERT_STR_EQ(header.type(), "file");
  std::string body;
  cr_assert_eq(c.read_bytes(65536, &body, Millis(10000)), ReadStatus::kOk);
  // Same size, one byte changed in a part already sent: only the metadata can tell.
  int fd = open(s.in_root("edited.bin").c_str(), O_WRONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(pwrite(fd, "!", 1, 10), 1);
  close(fd);
  cr_assert_eq(c.read_bytes(size - body.size(), &body, Millis(60000)), ReadStatus::kOk);
  Frame trailer = expect_frame(c, "error");
  ASSERT_STR_EQ(trailer.code(), "file_changed");
  ping(c, "after-edit");
  // (reactorc_keeps_nothing_when_the_file_changes: what reactorc makes of the same.)
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

Test(robustness, reactorc_keeps_nothing_when_the_file_changes) {
  Served s = serve(options());
  const uint64_t size = 256u << 20;
  make_big_sparse(s.in_root("moving.bin"), size);
  FaultSpec f;
  f.max_chunk = 4096;
  Proxy proxy = start_proxy(s, f);
  Process client = spawn_client(
      s, client_args_via(s, proxy.address(), {"get", "moving.bin", s.in_downloads("moving.bin")}));
  cr_assert(wait_until([&] { return proxy.stats().s2c_bytes > (1u << 20); }, Millis(30000)),
            "the transfer did not start: %s", client.stderr_text().c_str());
  int fd = open(s.in_root("moving.bin").c_str(), O_WRONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(pwrite(fd, "!", 1, 0), 1);
  close(fd);
  ExitStatus st = client.wait_exit(Millis(90000));
  cr_assert(st.exited_with(5), "%s; stderr: %s", st.describe().c_str(), client.stderr_text().c_str());
  ASSERT_CONTAINS(client.stderr_text(), "file_changed");
  assert_no_downloads(s);
  stop_cleanly(s);
}

// ----------------------------------------------------------------------- vanishing peers

Test(robustness, clients_vanishing_mid_download_do_not_hurt_the_server) {
  Served s = serve(options());
  make_big_sparse(s.in_root("huge.bin"), uint64_t{1} << 31);
  // A reactorc killed outright.
  Process client = spawn_client(s, s.server.client_args({"get", "huge.bin", s.in_downloads("huge.bin")}));
  bool started = wait_until(
      [&] {
        auto names = list_dir(s.downloads);
        if (!names || names->empty()) return false;
        auto size = file_size(s.in_downloads((*names)[0]));
        return size && *size > (1u << 20);
      },
      Millis(30000));
  cr_assert(started, "the download did not start: %s", client.stderr_text().c_str());
  ExitStatus st = client.kill_and_wait();
  cr_assert(st.killed_by(SIGKILL), "%s", st.describe().c_str());
  cr_assert(s.server.wait_for_stderr("#1 closed", Millis(10000)), "%s", s.server.stderr_text().c_str());
  assert_serves(s);

  // A raw client that resets the connection mid-body.
  RawClient c = connect_authenticated(s);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"huge.bin\"}"));
  Frame header = read_header_only(c);
  ASSERT_STR_EQ(header.type(), "file");
  std::string some;
  cr_assert_eq(c.read_bytes(1 << 20, &some, Millis(10000)), ReadStatus::kOk);
  c.abort();
  assert_serves(s);
  cr_assert(s.server.running());
  c.close();
  stop_cleanly(s);
}

// ------------------------------------------------------ defects a hostile run found

// The sendfile path: SIGTERM mid-body lets the body and trailer finish, then the server
// says goodbye and exits at once. (It used to idle until the grace period ran out.)
Test(robustness, sigterm_during_a_zero_copy_body_exits_without_the_grace) {
  Served s = serve(options({"--grace", "60"}));
  const uint64_t size = 24u << 20;
  make_pattern(s.in_root("z.bin"), size, 12);
  // A first download puts the digest in the cache: the next is sent with sendfile.
  ClientResult warm = s.server.run_plain_client({"get", "z.bin", s.in_downloads("z.bin")});
  cr_assert(warm.exited_with(0), "%s", warm.describe().c_str());
  RawClient c = connect_authenticated(s, 2);
  shrink_receive_buffer(c);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"z.bin\"}"));
  Frame header = read_header_only(c);
  ASSERT_STR_EQ(header.type(), "file");
  cr_assert(s.server.wait_for_stderr("digest cached: zero-copy", Millis(10000)), "%s", s.server.stderr_text().c_str());
  std::string body;
  cr_assert_eq(c.read_bytes(100000, &body, Millis(10000)), ReadStatus::kOk);
  Clock::time_point signalled = Clock::now();
  cr_assert(s.server.send_signal(SIGTERM));
  cr_assert_eq(c.read_bytes(size - body.size(), &body, Millis(60000)), ReadStatus::kOk);
  cr_assert(body == pattern_bytes(0, size, 12), "the body differs");
  expect_frame(c, "end");
  expect_fatal(c, "shutting_down");
  ExitStatus st = s.server.wait_exit(Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  cr_assert_lt(seconds_since(signalled), 20.0, "the server waited for the 60 s grace period");
  cr_assert(s.server.stderr_text().find("grace period over") == std::string::npos, "%s",
            s.server.stderr_text().c_str());
}

// A resume near the end of a big file makes the server hash the whole prefix before it
// sends a byte; that time is work for the client, not the client's idleness. (With
// --idle-timeout 0.5 the connection used to be closed: "client stopped reading".)
Test(robustness, hashing_a_long_prefix_is_not_idleness) {
  Served s = serve(options({"--idle-timeout", "0.5"}));
  const uint64_t size = uint64_t{3} << 30;
  make_big_sparse(s.in_root("big.bin"), size);
  RawClient c = connect_authenticated(s);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"big.bin\",\"offset\":" + std::to_string(size - 10) + "}"));
  ReadResult file = c.read_frame(Millis(90000));
  cr_assert(file.ok() && file.frame.type() == "file", "%s", file.describe().c_str());
  cr_assert_eq(file.frame.body.size(), 10u);
  ReadResult end = c.read_frame(Millis(90000));
  cr_assert(end.ok() && end.frame.type() == "end", "%s\n%s", end.describe().c_str(), s.server.stderr_text().c_str());
  cr_assert(s.server.stderr_text().find("stopped reading") == std::string::npos, "%s", s.server.stderr_text().c_str());
  stop_cleanly(s);
}

// A client that half-closes right after its request (nc -N, socat) still receives the
// whole response; the server closes once it has answered. (It used to stop after 1-2 MiB
// with "client went away mid-response".)
Test(robustness, a_half_closed_client_still_gets_the_whole_response) {
  Served s = serve(options());
  const uint64_t size = 64u << 20;
  make_pattern(s.in_root("h.bin"), size, 13);
  RawClient c = connect_authenticated(s);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"h.bin\"}") &&
            c.send_frame("{\"type\":\"ping\",\"token\":\"after\"}"));
  cr_assert(c.shutdown_write());
  ReadResult file = c.read_frame(Millis(60000), size);
  cr_assert(file.ok() && file.frame.type() == "file", "%s\n%s", file.describe().c_str(), s.server.stderr_text().c_str());
  cr_assert(file.frame.body == pattern_bytes(0, size, 13), "the body differs (%zu bytes)", file.frame.body.size());
  expect_frame(c, "end");
  // The request pipelined before the half-close is answered too, then the close.
  Frame pong = expect_frame(c, "pong");
  ASSERT_STR_EQ(pong.string_field("token").value_or(""), "after");
  cr_assert(c.read_until_closed(Millis(10000)), "the server did not close after answering");
  cr_assert(s.server.wait_for_stderr("client closed", Millis(5000)), "%s", s.server.stderr_text().c_str());
  stop_cleanly(s);
}

// When the grace period runs out the server says "stopped" once, not once more for the
// sessions it aborts. (Issue 12: it used to log it twice.)
Test(robustness, the_grace_period_running_out_is_logged_once) {
  Served s = serve(options({"--grace", "0.5"}));
  make_pattern(s.in_root("slow.bin"), 16u << 20, 14);
  RawClient c = connect_authenticated(s);
  shrink_receive_buffer(c);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"slow.bin\"}"));
  Frame header = read_header_only(c);
  ASSERT_STR_EQ(header.type(), "file");
  cr_assert(s.server.send_signal(SIGTERM));
  ExitStatus st = s.server.wait_exit(Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  const std::string log = s.server.stderr_text();
  cr_assert(log.find("grace period over") != std::string::npos, "%s", log.c_str());
  size_t stopped = 0;
  for (size_t at = log.find("reactord: stopped"); at != std::string::npos; at = log.find("reactord: stopped", at + 1))
    ++stopped;
  cr_assert_eq(stopped, 1u, "%s", log.c_str());
}

namespace {

// reactord -v in a temporary root, behind a /bin/sh wrapper that runs it as
// `reactord ARGS 2>&1 >/dev/null | TAIL`, with the wrapper's stderr as fd 3: TAIL passes
// the start-up lines on to fd 3 (the fixture reads the ports there), then does to the
// log what the test is about.
struct LoggedServer {
  TempDir dir;
  ServerProcess server;
};

LoggedServer serve_with_log_tail(const char* prefix, const std::string& tail) {
  std::string err;
  auto dir = TempDir::create(prefix, &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  cr_assert(make_dirs(dir->path("root"), &err), "%s", err.c_str());
  auto secret = write_secret(dir->path(), {}, &err);
  cr_assert(secret.has_value(), "%s", err.c_str());
  auto reactord = find_binary("reactord", &err);
  cr_assert(reactord.has_value(), "%s", err.c_str());
  std::string wrapper = dir->path("reactord-wrapper");
  cr_assert(write_file(wrapper, "#!/bin/sh\nexec 3>&2\n\"" + *reactord + "\" \"$@\" 2>&1 >/dev/null | " + tail + "\n", &err),
            "%s", err.c_str());
  cr_assert_eq(chmod(wrapper.c_str(), 0755), 0);
  ServerOptions options;
  options.root = dir->path("root");
  options.secret_file = secret->path;
  options.verbose = true;
  options.binary = wrapper;
  auto server = ServerProcess::start(options, &err);
  cr_assert(server.has_value(), "%s", err.c_str());
  return LoggedServer{std::move(*dir), std::move(*server)};
}

}  // namespace

// reactord's log on a pipe that nobody reads any more (a wedged log forwarder, a pager
// left stopped): log lines are dropped and counted, the loop never waits on them. The
// old server stalled after about 130 handshakes at -v, once the pipe's 64 KiB filled.
Test(robustness, an_unread_log_pipe_never_stalls_the_server) {
  // The start-up lines, then a pipe nobody reads.
  LoggedServer s = serve_with_log_tail("reactor-unread-log", "{ sed '/serving/q' >&3; exec sleep 120; }");
  // Each handshake logs a few lines at -v: 2,000 of them are several times the pipe.
  ClientResult r = s.server.run_plain_client({"bench", "-c", "10", "-n", "2000", "handshake"}, Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  r = s.server.run_plain_client({"ping"}, Millis(10000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
}

// A log that can no longer be written: after the start-up lines its reader is gone, and
// every log write fails (EPIPE; ENOSPC on a full disk takes the same path). The server
// neither dies nor stalls, and serves.
Test(robustness, a_log_that_cannot_be_written_costs_nothing_but_the_log) {
  LoggedServer s = serve_with_log_tail("reactor-lost-log", "sed '/serving/q' >&3");
  make_pattern(s.dir.path("root/big.bin"), 3 * 1024 * 1024, 9);
  ClientResult r = s.server.run_plain_client({"bench", "-c", "10", "-n", "500", "handshake"}, Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  r = s.server.run_plain_client({"get", "big.bin", s.dir.path("copy.bin")}, Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(files_equal(s.dir.path("root/big.bin"), s.dir.path("copy.bin")));
}
