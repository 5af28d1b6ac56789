// TLS end to end: real reactord and reactorc processes over loopback. The pre-shared key
// mode (the default), the peers of the wrong kind, hostile TLS input, and the
// certificate mode with every way a certificate can be wrong.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/auth.h"
#include "protocol/hex.h"
#include "protocol/tls.h"
#include "tests/support/assertions.h"
#include "tests/support/certs.h"
#include "tests/support/client.h"
#include "tests/support/fixture.h"
#include "tests/support/proxy.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"

using namespace testsupport;

namespace {

ServeOptions options(const std::vector<std::string>& extra_args = {}) {
  ServeOptions o;
  o.prefix = "tls-test";
  o.files = {{"health.txt", kHealthText}};
  o.extra_args = extra_args;
  return o;
}

// A TLS client connection by hand, for sending raw records: a TCP socket to the TLS port.
RawClient connect_tls_port(const Served& s) {
  RawClient c;
  std::string err;
  cr_assert(c.connect(s.server.address(), Millis(5000), &err), "connect: %s", err.c_str());
  return c;
}

// The server stays up and serves an honest TLS client.
void assert_tls_serves(const Served& s) {
  ClientResult r = s.server.run_client({"ping"});
  cr_assert(r.exited_with(0), "after the attack: %s", r.describe().c_str());
}

}  // namespace

TestSuite(tls, .timeout = 120);

// The worked example of reactor-protocol(7), TRANSPORT.
Test(tls, psk_derivation_matches_the_specification) {
  uint8_t psk[32];
  std::string err;
  cr_assert(protocol::derive_tls_psk("correct horse battery staple", psk, &err), "%s", err.c_str());
  protocol::Digest as_array;
  std::memcpy(as_array.data(), psk, 32);
  const std::string hex = protocol::to_hex(as_array);  // cr_assert_str_eq keeps the pointer only
  cr_assert_str_eq(hex.c_str(), "de220ed535997cb924ecf4550f544e4d6548c18439cb58ed5b09c50b30c1c1f5");
}

// Inside TLS the proofs cover the channel binding: the same nonces give other proofs.
Test(tls, proofs_inside_tls_are_bound_to_the_session) {
  protocol::Nonce sn{}, cn{};
  sn[0] = 1;
  cn[0] = 2;
  protocol::ChannelBinding a{}, b{};
  b[31] = 1;
  protocol::Mac plain = protocol::client_proof("a secret of some length", sn, cn);
  protocol::Mac bound_a = protocol::client_proof("a secret of some length", sn, cn, &a);
  protocol::Mac bound_b = protocol::client_proof("a secret of some length", sn, cn, &b);
  cr_assert(!protocol::proofs_equal(plain, bound_a));
  cr_assert(!protocol::proofs_equal(bound_a, bound_b));
  cr_assert(!protocol::proofs_equal(bound_a, protocol::server_proof("a secret of some length", sn, cn, &a)));
}

Test(tls, a_download_is_encrypted_and_says_so) {
  Served s = serve(options());
  make_pattern(s.in_root("f.bin"), 3 * 1024 * 1024 + 11, 3);
  ClientResult r = s.server.run_client({"-v", "get", "f.bin", s.in_downloads("f.bin")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "authenticated; TLSv1.3 TLS_AES_128_GCM_SHA256");
  ASSERT_CONTAINS(r.stderr_text, "pre-shared key");
  std::string why;
  cr_assert(files_equal(s.in_root("f.bin"), s.in_downloads("f.bin"), &why), "%s", why.c_str());
  cr_assert(s.server.wait_for_stderr("authenticated (TLSv1.3 TLS_AES_128_GCM_SHA256", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  cr_assert(s.server.stderr_text().find("(TLS, pre-shared key)") != std::string::npos);
  stop_cleanly(s);
}

// Several connections of one reactorc run: the later ones resume the first's session
// with its ticket, still with a fresh key exchange.
Test(tls, reconnects_resume_the_session) {
  Served s = serve(options({"-v"}));
  ClientResult r = s.server.run_client({"bench", "-c", "1", "-n", "4", "handshake"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(s.server.wait_for_stderr(", resumed,", Millis(5000)), "no resumed session:\n%s",
            s.server.stderr_text().c_str());
  stop_cleanly(s);
}

Test(tls, a_plain_client_at_a_tls_listener_is_told_at_once) {
  Served s = serve(options());
  Clock::time_point start = Clock::now();
  std::vector<std::string> args = s.server.client_args({"ping"});
  args.insert(args.begin(), "--plain");
  ClientResult r = run_client(args, Millis(30000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "tls_required");
  ASSERT_CONTAINS(r.stderr_text, "without --plain");
  cr_assert_lt(seconds_since(start), 8.0, "told within a few seconds, not the 30 s timeout");
  cr_assert(s.server.wait_for_stderr("a plain client at a TLS listener", Millis(5000)));
  assert_tls_serves(s);
  stop_cleanly(s);
}

Test(tls, a_tls_client_at_a_plain_listener_is_told_what_it_is) {
  Served s = serve(options());
  std::vector<std::string> args = {"-s", s.server.plain_address(), "-k", s.secret.path, "ping"};
  ClientResult r = run_client(args, Millis(30000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, s.server.plain_address() + " speaks the plain reactor protocol, not TLS; connect with --plain");
  assert_tls_serves(s);
  stop_cleanly(s);
}

// At its connection limit the server sends busy in the clear on a TLS listener too; the
// client reads the plain frame and reports it as a refusal (exit 3).
Test(tls, busy_is_reported_over_tls) {
  Served s = serve(options({"--max-conns", "1"}));
  RawClient holder = connect_authenticated(s);  // plain listener: the one allowed connection
  ClientResult r = s.server.run_client({"ping"});
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "busy");
  holder.close();
  stop_cleanly(s);
}

Test(tls, a_different_secret_fails_the_tls_handshake) {
  Served s = serve(options());
  std::string err;
  auto wrong = write_secret(s.in_dir(""), {}, &err, "other-secret");
  cr_assert(wrong.has_value(), "%s", err.c_str());
  ClientResult r = run_client({"-s", s.server.address(), "-k", wrong->path, "get", "health.txt",
                               s.in_downloads("health.txt")},
                              Millis(30000));
  cr_assert(r.exited_with(4), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "does not share this secret");
  cr_assert_not(read_file(s.in_downloads("health.txt")).has_value());
  cr_assert(s.server.wait_for_stderr("authentication failed in the TLS handshake", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  assert_tls_serves(s);
  stop_cleanly(s);
}

// Garbage, a truncated ClientHello, an oversized record, and a ClientHello trickled in
// past the handshake deadline: each connection ends, the server serves on.
Test(tls, hostile_records_end_their_connection_only) {
  Served s = serve(options({"--handshake-timeout", "1"}));
  {
    RawClient c = connect_tls_port(s);
    cr_assert(c.send_raw(std::string(300, '\x7f')));
    cr_assert(c.read_until_closed(Millis(10000)), "garbage: the server kept the connection");
  }
  {
    // A handshake record header announcing 512 bytes, then only 20, then close.
    RawClient c = connect_tls_port(s);
    cr_assert(c.send_raw(std::string("\x16\x03\x01\x02\x00", 5) + std::string(20, '\x01')));
    c.shutdown_write();
    cr_assert(c.read_until_closed(Millis(10000)), "truncated: the server kept the connection");
  }
  {
    // A record longer than TLS allows (2^14 + 2048 is the most for ciphertext).
    RawClient c = connect_tls_port(s);
    cr_assert(c.send_raw(std::string("\x16\x03\x03\x48\x01", 5) + std::string(4096, '\0')));
    cr_assert(c.read_until_closed(Millis(10000)), "oversized: the server kept the connection");
  }
  {
    // One byte of a ClientHello, then silence: dropped at the absolute deadline.
    RawClient c = connect_tls_port(s);
    cr_assert(c.send_raw(std::string("\x16", 1)));
    Clock::time_point start = Clock::now();
    cr_assert(c.read_until_closed(Millis(10000)));
    cr_assert_lt(seconds_since(start), 4.0);
  }
  assert_tls_serves(s);
  stop_cleanly(s);
}

// TLS records cut into 1-byte pieces on their way to the client still make a file.
Test(tls, records_in_one_byte_pieces) {
  Served s = serve(options());
  make_pattern(s.in_root("f.bin"), 40000, 9);
  FaultSpec f;
  f.max_chunk = 1;
  std::string err;
  auto proxy = Proxy::start(s.server.address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  ClientResult r = run_client({"-s", proxy->address(), "-k", s.secret.path, "--progress=none", "get", "f.bin",
                               s.in_downloads("f.bin")},
                              Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string why;
  cr_assert(files_equal(s.in_root("f.bin"), s.in_downloads("f.bin"), &why), "%s", why.c_str());
  stop_cleanly(s);
}

// A connection cut mid-body with no close_notify: the body is short of what its header
// announced, so the download fails and nothing is kept.
Test(tls, a_cut_without_close_notify_keeps_nothing) {
  Served s = serve(options());
  make_pattern(s.in_root("big.bin"), 2 * 1024 * 1024, 8);
  for (bool reset : {false, true}) {
    FaultSpec f;
    f.cut_after = 500000;
    f.cut_with_reset = reset;
    std::string err;
    auto proxy = Proxy::start(s.server.address(), f, &err);
    cr_assert(proxy.has_value(), "%s", err.c_str());
    ClientResult r = run_client({"-s", proxy->address(), "-k", s.secret.path, "--progress=none", "get", "big.bin",
                                 s.in_downloads("big.bin")},
                                Millis(60000));
    cr_assert(r.exited_with(8), "reset %d: %s", reset, r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, "connection");
    cr_assert_not(read_file(s.in_downloads("big.bin")).has_value());
  }
  assert_tls_serves(s);
  stop_cleanly(s);
}

// ----------------------------------------------------------------------- certificates

namespace {

struct CertServer {
  Served s;
  CertFiles files;
};

CertFiles make_certs(const Served& s, const std::string& prefix, const CertSpec& spec) {
  CertFiles files;
  std::string err;
  cr_assert(make_certificates(s.in_dir(""), prefix, spec, &files, &err), "%s", err.c_str());
  return files;
}

// A server in certificate mode with `files` (restarted for each certificate).
Served serve_with_cert(const CertFiles& files, const std::string& dir_prefix) {
  ServeOptions o = options({"--tls-cert", files.cert, "--tls-key", files.key});
  o.prefix = dir_prefix;
  return serve(o);
}

ClientResult ping(const Served& s, std::vector<std::string> extra) {
  std::vector<std::string> args = {"-s", s.server.address(), "-k", s.secret.path};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("ping");
  return run_client(args, Millis(30000));
}

}  // namespace

Test(tls, certificate_mode_verifies_the_server) {
  // The certificates must exist before the server starts: make them in a scratch fixture.
  Served scratch = serve(options());
  CertFiles good = make_certs(scratch, "good", CertSpec{});
  Served s = serve_with_cert(good, "tls-cert-test");
  cr_assert(s.server.stderr_text().find("(TLS, certificate)") != std::string::npos, "%s",
            s.server.stderr_text().c_str());
  // Trusted through its CA, the name (127.0.0.1) in its subjectAltName.
  ClientResult r = ping(s, {"--tls-ca", good.ca_cert, "-v"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "certificate");
  // Without --tls-ca the system store does not know this CA: refused, exit 10.
  r = ping(s, {});
  cr_assert(r.exited_with(10), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "certificate verify failed");
  // Pinned: chain and name do not matter.
  r = ping(s, {"--tls-pin", good.pin});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string wrong_pin = "sha256:" + std::string(64, 'a');
  r = ping(s, {"--tls-pin", wrong_pin});
  cr_assert(r.exited_with(10), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "does not match the pin");
  // --insecure accepts it; the secret still authenticates both ends.
  r = ping(s, {"--insecure"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  // ...and a client with another secret is still refused, inside the tunnel.
  std::string err;
  auto other = write_secret(s.in_dir(""), {}, &err, "other-secret");
  cr_assert(other.has_value());
  r = run_client({"-s", s.server.address(), "-k", other->path, "--tls-ca", good.ca_cert, "ping"}, Millis(30000));
  cr_assert(r.exited_with(4), "%s", r.describe().c_str());
  stop_cleanly(s);
  stop_cleanly(scratch);
}

Test(tls, bad_certificates_are_refused_and_say_why) {
  Served scratch = serve(options());
  struct Case {
    const char* name;
    CertSpec spec;
    const char* reason;
  };
  CertSpec self_signed;
  self_signed.self_signed = true;
  CertSpec expired;
  expired.valid_from_days = -30;
  expired.valid_to_days = -1;
  CertSpec not_yet;
  not_yet.valid_from_days = 2;
  not_yet.valid_to_days = 30;
  CertSpec wrong_host;
  wrong_host.dns_names = {"elsewhere.example"};
  wrong_host.ips = {"10.9.9.9"};
  const Case cases[] = {
      {"self-signed", self_signed, "self-signed certificate"},
      {"expired", expired, "certificate has expired"},
      {"not-yet", not_yet, "certificate is not yet valid"},
      {"wrong-host", wrong_host, "IP address mismatch"},
  };
  for (const Case& c : cases) {
    CertFiles files = make_certs(scratch, c.name, c.spec);
    Served s = serve_with_cert(files, std::string("tls-") + c.name);
    std::vector<std::string> trust;
    if (!files.ca_cert.empty()) trust = {"--tls-ca", files.ca_cert};
    ClientResult r = ping(s, trust);
    cr_assert(r.exited_with(10), "%s: %s", c.name, r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, c.reason);
    // --insecure takes it, as the user asked.
    r = ping(s, {"--insecure"});
    cr_assert(r.exited_with(0), "%s with --insecure: %s", c.name, r.describe().c_str());
    // A pin of its key takes it too, whatever else is wrong with it.
    r = ping(s, {"--tls-pin", files.pin});
    cr_assert(r.exited_with(0), "%s pinned: %s", c.name, r.describe().c_str());
    stop_cleanly(s);
  }
  stop_cleanly(scratch);
}

Test(tls, certificate_files_that_do_not_work_are_a_configuration_error) {
  Served scratch = serve(options());
  CertFiles a = make_certs(scratch, "a", CertSpec{});
  CertFiles b = make_certs(scratch, "b", CertSpec{});
  std::string err;
  ServerOptions o;
  o.root = scratch.root;
  o.secret_file = scratch.secret.path;
  o.extra_args = {"--tls-cert", a.cert, "--tls-key", b.key};  // a key of another certificate
  cr_assert_not(ServerProcess::start(o, &err).has_value());
  cr_assert(err.find("exit 4") != std::string::npos, "%s", err.c_str());
  cr_assert(err.find("is not the key of") != std::string::npos || err.find("key values mismatch") != std::string::npos,
            "%s", err.c_str());
  o.extra_args = {"--tls-cert", scratch.in_dir("missing.pem"), "--tls-key", b.key};
  cr_assert_not(ServerProcess::start(o, &err).has_value());
  cr_assert(err.find("missing.pem") != std::string::npos, "%s", err.c_str());
  stop_cleanly(scratch);
}

// A web browser at a TLS listener: nothing has been sent to it yet, so its answer is the
// 400 alone, starting the stream, which curl or a browser shows as it is.
Test(tls, an_http_client_at_a_tls_listener_gets_a_400_and_nothing_else) {
  Served s = serve(options());
  RawClient raw = connect_tls_port(s);
  cr_assert(raw.send_raw("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n"));
  std::string answer;
  cr_assert(raw.read_until_closed(Millis(10000), &answer), "the server kept the connection");
  cr_assert(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0, "%s", answer.c_str());
  ASSERT_CONTAINS(answer, "not HTTP");
  cr_assert(s.server.wait_for_stderr("speaks HTTP, not TLS", Millis(5000)), "%s", s.server.stderr_text().c_str());
  assert_tls_serves(s);
  stop_cleanly(s);
}

// The plain listener's side of a peer of the wrong kind: a TLS ClientHello, an SSH
// banner and an HTTP request are named in the log; the HTTP client gets a 400 that says
// what this port is.
Test(tls, a_plain_listener_names_tls_ssh_and_http_clients) {
  Served s = serve(options());
  struct Case {
    std::string bytes;
    const char* logged;
  };
  const Case cases[] = {
      {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(500, 'x'),
       "speaks TLS, not the plain reactor protocol"},
      {"SSH-2.0-OpenSSH_9.2\r\n", "speaks SSH, not the plain reactor protocol"},
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "speaks HTTP, not the reactor protocol"},
  };
  for (const Case& c : cases) {
    RawClient raw = connect_raw(s);
    expect_frame(raw, "hello");
    cr_assert(raw.send_raw(c.bytes));
    std::string rest;
    cr_assert(raw.read_until_closed(Millis(10000), &rest), "%s: the server kept the connection", c.logged);
    cr_assert(s.server.wait_for_stderr(c.logged, Millis(5000)), "%s", s.server.stderr_text().c_str());
    if (c.bytes.rfind("GET ", 0) == 0) {
      ASSERT_CONTAINS(rest, "HTTP/1.1 400 Bad Request");
      ASSERT_CONTAINS(rest, "not HTTP");
    }
  }
  assert_tls_serves(s);
  stop_cleanly(s);
}
