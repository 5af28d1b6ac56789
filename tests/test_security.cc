// Integration tests of what an attacker can try: wrong secrets, impostor servers, paths
// that try to leave the served root or reach the server's own secret, malformed and
// oversized frames, requests before authentication, unsafe secret files. After each
// attack the server must still serve an honest client.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/address.h"
#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/process.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

namespace {

// root/health.txt for assert_serves; the secret outside the root.
ServeOptions options() {
  ServeOptions o;
  o.prefix = "security-test";
  o.files = {{"health.txt", kHealthText}};
  return o;
}

// The server is alive and serves an honest client: a real download, verified.
void assert_serves(const Served& s) { testsupport::assert_serves(s, s.downloads); }

// A fatal error frame with CODE, then the server closes the connection.
void expect_fatal(RawClient& c, const std::string& code, const std::string& what) {
  ReadResult r = c.read_frame(Millis(10000));
  cr_assert(r.ok(), "%s: expected error %s, got %s", what.c_str(), code.c_str(),
            r.describe().c_str());
  cr_assert(r.frame.type() == "error" && r.frame.code() == code, "%s: expected error %s, got %s",
            what.c_str(), code.c_str(), r.frame.header.c_str());
  cr_assert(r.frame.string_field("message").value_or("") != "", "%s: no message", what.c_str());
  std::string rest;
  cr_assert(c.read_until_closed(Millis(10000), &rest), "%s: the server kept the connection open",
            what.c_str());
  cr_assert(rest.empty(), "%s: %zu bytes after the fatal error", what.c_str(), rest.size());
  c.close();
}

std::string request(const std::string& type, const std::string& path) {
  return "{\"type\":\"" + type + "\",\"path\":" + json_quote(path) + "}";
}

// JSON text of an auth header padded with an unknown field to exactly SIZE bytes.
std::string padded(const std::string& json, size_t size) {
  std::string head = "{\"pad\":\"";
  std::string tail = "\"," + json.substr(1);
  cr_assert_geq(size, head.size() + tail.size());
  return head + std::string(size - head.size() - tail.size(), 'p') + tail;
}

struct Listener {
  Fd fd;
  std::string address;
};

Listener listen_loopback() {
  Listener l;
  auto addr = parse_address("127.0.0.1:0");
  cr_assert(addr.has_value());
  l.fd.reset(socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  cr_assert(l.fd.valid(), "socket: %s", std::strerror(errno));
  cr_assert_eq(bind(l.fd.get(), addr->get(), addr->length), 0, "bind: %s", std::strerror(errno));
  cr_assert_eq(listen(l.fd.get(), 16), 0);
  auto local = local_address(l.fd.get());
  cr_assert(local.has_value());
  l.address = local->to_string();
  return l;
}

Fd accept_within(int lfd, Millis timeout) {
  pollfd pfd{lfd, POLLIN, 0};
  Deadline deadline(timeout);
  if (poll(&pfd, 1, deadline.poll_timeout_ms()) <= 0) return Fd();
  return Fd(accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
}

std::string reactorc_path() {
  std::string err;
  auto path = find_binary("reactorc", &err);
  cr_assert(path.has_value(), "%s", err.c_str());
  return *path;
}

std::string reactord_path() {
  std::string err;
  auto path = find_binary("reactord", &err);
  cr_assert(path.has_value(), "%s", err.c_str());
  return *path;
}

}  // namespace

TestSuite(security, .timeout = 120);

// ------------------------------------------------------------------------ authentication

Test(security, wrong_secret_is_refused_while_others_are_served) {
  Served s = serve(options());
  // An honest client, connected before the attack, stays served through it.
  RawClient honest = connect_authenticated(s);
  std::string err;
  auto wrong = write_secret(s.in_dir(""), {}, &err, "wrong-secret");
  cr_assert(wrong.has_value(), "%s", err.c_str());
  // Over TLS the pre-shared key derived from the secret differs, so the TLS handshake
  // itself fails; over the plain protocol, the HMAC proof. The same exit status.
  for (bool plain : {false, true}) {
    std::vector<std::string> args = {"-s", plain ? s.server.plain_address() : s.server.address(), "-k", wrong->path,
                                     "--progress=none", "get", "health.txt", path_join(s.downloads, "stolen")};
    if (plain) args.insert(args.begin(), "--plain");
    ClientResult r = run_client(args, Millis(30000));
    cr_assert(r.exited_with(4), "%s", r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, plain ? "auth_failed" : "authentication failed: the server does not share this secret");
    cr_assert_not(read_file(path_join(s.downloads, "stolen")).has_value());
  }
  cr_assert(s.server.wait_for_stderr("authentication failed", Millis(5000)), "not logged:\n%s",
            s.server.stderr_text().c_str());

  cr_assert(honest.send_frame("{\"type\":\"ping\",\"token\":\"meanwhile\"}"));
  Frame pong = expect_frame(honest, "pong");
  ASSERT_STR_EQ(pong.string_field("token").value_or(""), "meanwhile");
  cr_assert(honest.send_frame(request("get", "health.txt")));
  Frame file = expect_frame(honest, "file");
  ASSERT_STR_EQ(file.body, kHealthText);
  expect_frame(honest, "end");
  assert_serves(s);
  honest.close();
  stop_cleanly(s);
}

Test(security, repeated_failures_delay_the_verdict) {
  Served s = serve(options());
  const std::string wrong_key = s.secret.key + "-but-wrong";
  double elapsed[3] = {0, 0, 0};
  for (int attempt = 0; attempt < 3; ++attempt) {
    RawClient c = connect_raw(s);
    Frame hello = expect_frame(c, "hello");
    auto nonce = hex_decode(hello.string_field("nonce").value_or(""));
    cr_assert(nonce.has_value() && nonce->size() == kNonceBytes, "%s", hello.header.c_str());
    Clock::time_point sent = Clock::now();
    cr_assert(c.send_frame(make_auth_header(wrong_key, *nonce, random_bytes(kNonceBytes))));
    expect_fatal(c, "auth_failed", "attempt " + std::to_string(attempt + 1));
    elapsed[attempt] = seconds_since(sent);
  }
  // The first failure is answered at once (not asserted: no upper bounds); later ones
  // wait 100 ms, then 200 ms, ... Lower bounds only, with slack for clock granularity.
  cr_assert_geq(elapsed[1], 0.080, "second failure answered after %.3f s", elapsed[1]);
  cr_assert_geq(elapsed[2], 0.160, "third failure answered after %.3f s", elapsed[2]);
  assert_serves(s);
  stop_cleanly(s);
}

Test(security, impostor_server_is_detected_by_the_client) {
  TempDir dir = *TempDir::create("security-test");
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  // mode 0: the impostor echoes a MAC made with another key; 1: all zeros.
  for (int mode = 0; mode < 2; ++mode) {
    Listener l = listen_loopback();
    SpawnOptions o;
    o.argv = {reactorc_path(), "--plain", "-s", l.address, "-k", secret->path, "--progress=none", "-t", "10",
              "get", "some/file", dir.path("must-not-exist")};
    o.output_dir = dir.path();
    std::string err;
    auto client = Process::spawn(o, &err);
    cr_assert(client.has_value(), "%s", err.c_str());
    Fd conn = accept_within(l.fd.get(), Millis(10000));
    cr_assert(conn.valid(), "reactorc did not connect");
    RawClient fake{std::move(conn)};
    std::string server_nonce = random_bytes(kNonceBytes);
    cr_assert(fake.send_frame(
        "{\"type\":\"hello\",\"proto\":1,\"server\":\"reactord/0.1.0\",\"features\":[\"get\","
        "\"stat\",\"list\",\"ping\",\"msg\",\"resume\"],\"nonce\":\"" +
        hex_encode(server_nonce) + "\"}"));
    ReadResult auth = fake.read_frame(Millis(10000));
    cr_assert(auth.ok() && auth.frame.type() == "auth", "%s", auth.describe().c_str());
    auto client_nonce = hex_decode(auth.frame.string_field("nonce").value_or(""));
    cr_assert(client_nonce.has_value() && client_nonce->size() == kNonceBytes);
    // The honest client proves itself correctly (and the impostor learns nothing usable).
    ASSERT_STR_EQ(auth.frame.string_field("mac").value_or(""),
                  client_mac_hex(secret->key, server_nonce, *client_nonce));
    std::string mac = mode == 0 ? server_mac_hex("an-impostor-guess-at-the-key", server_nonce, *client_nonce)
                                : std::string(64, '0');
    cr_assert(fake.send_frame("{\"type\":\"auth_ok\",\"proto\":1,\"mac\":\"" + mac + "\"}"));
    // The client hangs up without sending its request: the path stays private.
    std::string after;
    cr_assert(fake.read_until_closed(Millis(10000), &after), "the client did not hang up");
    cr_assert(after.empty(), "the client sent %zu bytes to an impostor", after.size());
    ExitStatus st = client->wait_exit(Millis(10000));
    cr_assert(st.exited_with(4), "mode %d: %s; stderr: %s", mode, st.describe().c_str(),
              client->stderr_text().c_str());
    ASSERT_CONTAINS(client->stderr_text(), "impostor");
    cr_assert_not(read_file(dir.path("must-not-exist")).has_value());
    auto names = list_dir(dir.path());
    cr_assert(names.has_value());
    for (const std::string& name : *names) {
      cr_assert(name.find(".part") == std::string::npos, "debris: %s", name.c_str());
    }
  }
}

Test(security, auth_is_bound_to_the_connection_and_versions_are_negotiated) {
  Served s = serve(options());
  // Every hello carries a fresh 32-byte nonce.
  std::set<std::string> nonces;
  for (int i = 0; i < 5; ++i) {
    RawClient c = connect_raw(s);
    Frame hello = expect_frame(c, "hello");
    std::string nonce = hello.string_field("nonce").value_or("");
    cr_assert(hex_decode(nonce).has_value() && nonce.size() == 64, "%s", hello.header.c_str());
    ASSERT_STR_EQ(std::to_string(static_cast<int>(hello.number_field("proto").value_or(0))), "2");
    nonces.insert(nonce);
  }
  cr_assert_eq(nonces.size(), 5u, "a server nonce was repeated");

  // A recorded, valid auth replayed on another connection fails: it proves the secret
  // for the first connection's nonce only.
  RawClient first = connect_raw(s);
  Frame hello = expect_frame(first, "hello");
  auto nonce = hex_decode(hello.string_field("nonce").value_or(""));
  cr_assert(nonce.has_value());
  std::string recorded = make_auth_header(s.secret.key, *nonce, random_bytes(kNonceBytes));
  cr_assert(first.send_frame(recorded));
  expect_frame(first, "auth_ok");
  RawClient replay = connect_raw(s);
  expect_frame(replay, "hello");
  cr_assert(replay.send_frame(recorded));
  expect_fatal(replay, "auth_failed", "replayed auth");
  // Nor can an authenticated connection authenticate again.
  cr_assert(first.send_frame(recorded));
  expect_fatal(first, "unexpected_message", "second auth");

  // "proto" is the highest version the client speaks: the smaller of it and the
  // server's 2 is used, and 0 is refused.
  for (int proto : {1, 2, 7}) {
    RawClient c = connect_raw(s);
    Frame h = expect_frame(c, "hello");
    auto n = hex_decode(h.string_field("nonce").value_or(""));
    std::string client_nonce = random_bytes(kNonceBytes);
    cr_assert(c.send_frame(make_auth_header(s.secret.key, *n, client_nonce, proto)));
    Frame ok = expect_frame(c, "auth_ok");
    cr_assert_eq(ok.number_field("proto").value_or(0), proto == 1 ? 1.0 : 2.0, "proto %d: %s", proto, ok.header.c_str());
    ASSERT_STR_EQ(ok.string_field("mac").value_or(""), server_mac_hex(s.secret.key, *n, client_nonce));
  }
  RawClient old = connect_raw(s);
  Frame h = expect_frame(old, "hello");
  auto n = hex_decode(h.string_field("nonce").value_or(""));
  cr_assert(old.send_frame(make_auth_header(s.secret.key, *n, random_bytes(kNonceBytes), 0)));
  expect_fatal(old, "unsupported_version", "proto 0");
  assert_serves(s);
  stop_cleanly(s);
}

// --------------------------------------------------------------------------------- paths

namespace {

// root/file.txt, root/sub/inner.txt, root/fifo, root/secret (the server's own secret) and
// a hard link to it, symlinks in and out, and dir/outside/private.txt beside the root.
Served serve_attack_tree() {
  ServeOptions o = options();
  o.secret_in_root = true;
  Served s = serve(o);
  std::string err;
  cr_assert(write_file(s.in_root("file.txt"), "file\n"));
  cr_assert(make_dirs(s.in_root("sub"), &err));
  cr_assert(write_file(s.in_root("sub/inner.txt"), "inner\n"));
  cr_assert(make_dirs(s.in_dir("outside"), &err));
  cr_assert(write_file(s.in_dir("outside/private.txt"), "private\n"));
  cr_assert_eq(symlink("/etc/passwd", s.in_root("link-passwd").c_str()), 0);
  cr_assert_eq(symlink(s.in_dir("outside").c_str(), s.in_root("link-out").c_str()), 0);
  cr_assert_eq(symlink("../outside", s.in_root("link-out-relative").c_str()), 0);
  cr_assert_eq(symlink("file.txt", s.in_root("link-in").c_str()), 0);
  cr_assert_eq(symlink("secret", s.in_root("link-to-key").c_str()), 0);
  cr_assert_eq(mkfifo(s.in_root("fifo").c_str(), 0644), 0);
  cr_assert_eq(link(s.secret.path.c_str(), s.in_root("sub/secret-link").c_str()), 0);
  return s;
}

struct Attack {
  const char* path;
  const char* code;
};

// What get answers for each path.
const Attack kGetAttacks[] = {
    {"/etc/passwd", "forbidden"},
    {"../outside/private.txt", "forbidden"},
    {"a/../../x", "forbidden"},
    {"sub/../../outside/private.txt", "forbidden"},
    {"sub/..", "forbidden"},
    {"link-passwd", "forbidden"},
    {"link-out/private.txt", "forbidden"},
    {"link-out-relative/private.txt", "forbidden"},
    {"link-to-key", "forbidden"},
    {"secret", "forbidden"},
    {"./secret", "forbidden"},
    {"sub/secret-link", "forbidden"},
    {"fifo", "not_regular"},
    {"sub", "is_directory"},
    {".", "is_directory"},
    {"file.txt/x", "not_directory"},
    {"missing", "not_found"},
    {"sub/missing", "not_found"},
};

// What stat answers (stat reports a symlink itself, so those are not here).
const Attack kStatAttacks[] = {
    {"/etc/passwd", "forbidden"},
    {"../outside", "forbidden"},
    {"a/../../x", "forbidden"},
    {"link-out/private.txt", "forbidden"},
    {"secret", "forbidden"},
    {"sub/secret-link", "forbidden"},
    {"file.txt/x", "not_directory"},
    {"missing", "not_found"},
};

// What list answers.
const Attack kListAttacks[] = {
    {"/etc", "forbidden"},
    {"..", "forbidden"},
    {"sub/../..", "forbidden"},
    {"link-out", "forbidden"},
    {"link-out/", "forbidden"},
    {"link-passwd", "forbidden"},
    {"file.txt", "not_directory"},
    {"missing", "not_found"},
};

}  // namespace

Test(security, path_attacks_through_reactorc) {
  Served s = serve_attack_tree();
  for (const Attack& a : kGetAttacks) {
    std::string local = path_join(s.downloads, "out");
    ClientResult r = s.server.run_client({"get", a.path, local});
    cr_assert(r.exited_with(5), "get %s: %s", a.path, r.describe().c_str());
    cr_assert(r.stderr_text.find(a.code) != std::string::npos, "get %s: expected %s: %s", a.path,
              a.code, r.stderr_text.c_str());
    auto left = list_dir(s.downloads);
    cr_assert(left.has_value() && left->empty(), "get %s left a file behind", a.path);
  }
  for (const Attack& a : kStatAttacks) {
    ClientResult r = s.server.run_client({"stat", a.path});
    cr_assert(r.exited_with(5), "stat %s: %s", a.path, r.describe().c_str());
    cr_assert(r.stderr_text.find(a.code) != std::string::npos, "stat %s: expected %s: %s", a.path,
              a.code, r.stderr_text.c_str());
    cr_assert(r.stdout_text.empty(), "stat %s printed %s", a.path, r.stdout_text.c_str());
  }
  for (const Attack& a : kListAttacks) {
    ClientResult r = s.server.run_client({"ls", a.path});
    if (std::string(a.code) == "not_directory") {  // reactorc describes a file, as ls does
      cr_assert(r.exited_with(0), "ls %s: %s", a.path, r.describe().c_str());
      ASSERT_STR_EQ(r.stdout_text, std::string(a.path) + "\n");
      continue;
    }
    cr_assert(r.exited_with(5), "ls %s: %s", a.path, r.describe().c_str());
    cr_assert(r.stderr_text.find(a.code) != std::string::npos, "ls %s: expected %s: %s", a.path,
              a.code, r.stderr_text.c_str());
  }
  // The secret is not listed, neither by name nor through its hard link.
  ClientResult ls = s.server.run_client({"ls"});
  cr_assert(ls.exited_with(0), "%s", ls.describe().c_str());
  cr_assert(ls.stdout_text.find("secret") == std::string::npos, "%s", ls.stdout_text.c_str());
  cr_assert(ls.stdout_text.find("file.txt") != std::string::npos, "%s", ls.stdout_text.c_str());
  ClientResult lsub = s.server.run_client({"ls", "sub"});
  cr_assert(lsub.exited_with(0), "%s", lsub.describe().c_str());
  cr_assert(lsub.stdout_text.find("secret") == std::string::npos, "%s", lsub.stdout_text.c_str());
  cr_assert(lsub.stdout_text.find("inner.txt") != std::string::npos, "%s", lsub.stdout_text.c_str());
  assert_serves(s);
  stop_cleanly(s);
}

Test(security, path_attacks_through_raw_frames) {
  Served s = serve_attack_tree();
  RawClient c = connect_authenticated(s);
  // Per-request errors: one connection takes every attack and stays usable.
  for (const Attack& a : kGetAttacks) {
    cr_assert(c.send_frame(request("get", a.path)));
    ReadResult r = c.read_frame(Millis(10000));
    cr_assert(r.ok(), "get %s: %s", a.path, r.describe().c_str());
    cr_assert(r.frame.type() == "error" && r.frame.code() == a.code, "get %s: expected %s, got %s",
              a.path, a.code, r.frame.header.c_str());
    cr_assert(r.frame.body.empty());
    if (std::string(a.code) == "not_regular") {
      // The FIFO did not block the server: a ping right after is answered.
      cr_assert(c.send_frame("{\"type\":\"ping\",\"token\":\"after-fifo\"}"));
      Frame pong = expect_frame(c, "pong", Millis(5000));
      ASSERT_STR_EQ(pong.string_field("token").value_or(""), "after-fifo");
    }
  }
  for (const Attack& a : kStatAttacks) {
    cr_assert(c.send_frame(request("stat", a.path)));
    Frame f = expect_frame(c, "error");
    cr_assert(f.code() == a.code, "stat %s: expected %s, got %s", a.path, a.code, f.header.c_str());
  }
  for (const Attack& a : kListAttacks) {
    cr_assert(c.send_frame(request("list", a.path)));
    Frame f = expect_frame(c, "error");
    cr_assert(f.code() == a.code, "list %s: expected %s, got %s", a.path, a.code, f.header.c_str());
  }
  // A symlink is reported as what it is, never followed: stat says "link", and what it
  // says (a listing shows the same), not what lies there.
  cr_assert(c.send_frame(request("stat", "link-passwd")));
  Frame st = expect_frame(c, "stat_ok");
  ASSERT_STR_EQ(st.string_field("kind").value_or(""), "link");
  ASSERT_STR_EQ(st.string_field("target").value_or(""), "/etc/passwd");
  // Listing the root shows neither the secret nor anything of what lies outside.
  cr_assert(c.send_frame(request("list", "")));
  std::set<std::string> names;
  Frame end;
  for (int i = 0; i < 100; ++i) {
    ReadResult r = c.read_frame(Millis(10000));
    cr_assert(r.ok(), "%s", r.describe().c_str());
    if (r.frame.type() != "entries") {
      end = r.frame;
      break;
    }
    JsonPtr json = r.frame.parse();
    const cJSON* e = nullptr;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(json.get(), "entries")) {
      names.insert(cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring);
    }
  }
  ASSERT_STR_EQ(end.type(), "list_end");
  std::set<std::string> want = {"fifo",     "file.txt",          "health.txt",  "link-in",    "link-out",
                                "link-out-relative", "link-passwd", "link-to-key", "sub"};
  std::string got_joined, want_joined;
  for (const auto& n : names) got_joined += n + " ";
  for (const auto& n : want) want_joined += n + " ";
  ASSERT_STR_EQ(got_joined, want_joined);
  cr_assert(c.send_frame("{\"type\":\"ping\"}"));
  expect_frame(c, "pong");
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

// A link that stays inside the root is followed by get and ls, as scp follows it; what
// it leads to is checked as if named (the secret stays refused); stat describes the link.
Test(security, links_inside_the_root_are_followed_and_checked_as_their_target) {
  Served s = serve_attack_tree();
  cr_assert_eq(symlink("sub", s.in_root("link-sub").c_str()), 0);
  ClientResult r = s.server.run_client({"get", "link-in", s.in_downloads("via-link.txt")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(read_file(s.in_downloads("via-link.txt")).value_or(""), "file\n");
  r = s.server.run_client({"ls", "link-sub"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(r.stdout_text, "inner.txt\n");  // the hard link to the secret is hidden
  r = s.server.run_client({"get", "link-to-key", s.in_downloads("stolen")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "secret file");
  r = s.server.run_client({"get", "link-out-relative", s.in_downloads("out")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "forbidden");
  r = s.server.run_client({"stat", "link-in"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stdout_text, "kind:  link\n");
  cr_assert_not(exists(s.in_downloads("stolen")) || exists(s.in_downloads("out")));
  assert_serves(s);
  stop_cleanly(s);
}

Test(security, nul_in_a_path_closes_the_connection) {
  Served s = serve(options());
  RawClient c = connect_authenticated(s);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"health.txt\\u0000.jpg\"}"));
  expect_fatal(c, "nul_in_string", "get with \\u0000");
  RawClient d = connect_authenticated(s);
  cr_assert(d.send_frame("{\"type\":\"stat\",\"path\":\"\\u0000\"}"));
  expect_fatal(d, "nul_in_string", "stat with \\u0000");
  assert_serves(s);
  c.close();
  d.close();
  stop_cleanly(s);
}

// ---------------------------------------------------------------------- malformed frames

Test(security, requests_before_auth_are_refused) {
  Served s = serve(options());
  const std::string requests[] = {
      "{\"type\":\"ping\"}",
      request("get", "health.txt"),
      request("stat", "health.txt"),
      request("list", ""),
      "{\"type\":\"msg\",\"text\":\"hi\"}",
      // A server's message from a client, before auth.
      "{\"type\":\"auth_ok\",\"proto\":1,\"mac\":\"" + std::string(64, '0') + "\"}",
  };
  for (const std::string& req : requests) {
    RawClient c = connect_raw(s);
    expect_frame(c, "hello");
    cr_assert(c.send_frame(req));
    expect_fatal(c, "unexpected_message", req);
  }
  // Nor does a request pipelined right behind a wrong auth get through.
  RawClient c = connect_raw(s);
  Frame hello = expect_frame(c, "hello");
  auto nonce = hex_decode(hello.string_field("nonce").value_or(""));
  cr_assert(nonce.has_value());
  cr_assert(c.send_raw(encode_frame(make_auth_header("not-the-right-secret!", *nonce,
                                                     random_bytes(kNonceBytes))) +
                       encode_frame(request("get", "health.txt"))));
  expect_fatal(c, "auth_failed", "wrong auth + get");
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

Test(security, header_limits_before_and_after_auth) {
  Served s = serve(options());
  // Before auth the limit is 4096 bytes: 4097 and 5000 are refused from the length alone.
  for (size_t size : {size_t{4097}, size_t{5000}}) {
    RawClient c = connect_raw(s);
    Frame hello = expect_frame(c, "hello");
    auto nonce = hex_decode(hello.string_field("nonce").value_or(""));
    cr_assert(nonce.has_value());
    std::string header = padded(make_auth_header(s.secret.key, *nonce, random_bytes(kNonceBytes)), size);
    cr_assert_eq(header.size(), size);
    cr_assert(c.send_frame(header));
    expect_fatal(c, "header_too_large", "pre-auth header of " + std::to_string(size) + " bytes");
  }
  // Exactly 4096 is allowed: a padded but correct auth succeeds.
  {
    RawClient c = connect_raw(s);
    Frame hello = expect_frame(c, "hello");
    auto nonce = hex_decode(hello.string_field("nonce").value_or(""));
    cr_assert(nonce.has_value());
    std::string client_nonce = random_bytes(kNonceBytes);
    std::string header = padded(make_auth_header(s.secret.key, *nonce, client_nonce), 4096);
    cr_assert(c.send_frame(header));
    Frame ok = expect_frame(c, "auth_ok");
    ASSERT_STR_EQ(ok.string_field("mac").value_or(""), server_mac_hex(s.secret.key, *nonce, client_nonce));
  }
  // After auth the limit is 65536: 5000 and exactly 65536 are fine, 65537 is not.
  RawClient c = connect_authenticated(s);
  for (size_t size : {size_t{5000}, size_t{65536}}) {
    std::string header = padded("{\"type\":\"ping\",\"token\":\"big\"}", size);
    cr_assert_eq(header.size(), size);
    cr_assert(c.send_frame(header));
    Frame pong = expect_frame(c, "pong");
    ASSERT_STR_EQ(pong.string_field("token").value_or(""), "big");
  }
  cr_assert(c.send_frame(padded("{\"type\":\"ping\"}", 65537)));
  expect_fatal(c, "header_too_large", "post-auth header of 65537 bytes");
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

Test(security, duplicate_keys_are_fatal) {
  Served s = serve(options());
  const std::string headers[] = {
      "{\"type\":\"ping\",\"token\":\"a\",\"token\":\"b\"}",
      "{\"type\":\"stat\",\"path\":\"health.txt\",\"path\":\"../etc/passwd\"}",
      "{\"type\":\"ping\",\"x\":{\"k\":1,\"k\":2}}",
      "{\"type\":\"ping\",\"type\":\"ping\"}",
  };
  for (const std::string& h : headers) {
    RawClient c = connect_authenticated(s);
    cr_assert(c.send_frame(h));
    expect_fatal(c, "duplicate_key", h);
  }
  // Before auth too.
  RawClient c = connect_raw(s);
  expect_frame(c, "hello");
  cr_assert(c.send_frame("{\"type\":\"auth\",\"type\":\"auth\"}"));
  expect_fatal(c, "duplicate_key", "duplicate key in auth");
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

Test(security, garbage_bytes_get_a_fatal_error) {
  Served s = serve(options());
  struct Garbage {
    std::string bytes;
    const char* code;
  };
  std::string deep = "{\"type\":\"auth\",\"a\":" + std::string(8, '[') + std::string(8, ']') + "}";
  const Garbage cases[] = {
      // (An HTTP request gets an HTTP answer instead: tests/test_tls.cc.)
      {"\x7f\xff garbage that is no frame", "header_too_large"},
      {be32(0), "empty_header"},
      {encode_frame("hello"), "bad_json"},
      {encode_frame("{\"type\":\"auth\"} trailing"), "bad_json"},
      {encode_frame("\xff\xfe{}"), "bad_utf8"},
      {encode_frame("{\"type\":\"\xc0\xaf\"}"), "bad_utf8"},
      {encode_frame("[1,2,3]"), "not_object"},
      {encode_frame(deep), "too_deep"},
      {encode_frame("{\"type\":\"launch_missiles\"}"), "unknown_type"},
      {encode_frame("{\"kind\":\"auth\"}"), "missing_field"},
      {encode_frame("{\"type\":\"auth\"}"), "missing_field"},
      {encode_frame("{\"type\":7}"), "wrong_type"},
      {encode_frame("{\"type\":\"ping\",\"body\":5}", "12345"), "bad_size"},
  };
  for (const Garbage& g : cases) {
    RawClient c = connect_raw(s);
    cr_assert(c.send_raw(g.bytes));
    expect_frame(c, "hello");
    expect_fatal(c, g.code, "garbage for " + std::string(g.code));
  }
  // A megabyte of noise: some fatal error, then the close.
  RawClient c = connect_raw(s);
  std::string noise = pattern_bytes(0, 1 << 20, 99);
  std::string err;
  cr_assert(c.send_raw(noise, &err), "%s", err.c_str());
  expect_frame(c, "hello");
  ReadResult r = c.read_frame(Millis(10000));
  cr_assert(r.ok() && r.frame.type() == "error", "%s", r.describe().c_str());
  cr_assert(c.read_until_closed(Millis(10000)));
  assert_serves(s);
  c.close();
  stop_cleanly(s);
}

// ------------------------------------------------------------------------- secret files

Test(security, unsafe_secret_file_stops_both_programs) {
  TempDir dir = *TempDir::create("security-test");
  std::string err;
  cr_assert(make_dirs(dir.path("root"), &err));
  auto secret = write_secret(dir.path(), {}, &err);
  cr_assert(secret.has_value(), "%s", err.c_str());
  for (mode_t mode : {mode_t{0640}, mode_t{0604}, mode_t{0660}}) {
    cr_assert_eq(chmod(secret->path.c_str(), mode), 0);
    ClientResult d = run_program({reactord_path(), "-r", dir.path("root"), "-l", "127.0.0.1:0", "-k",
                                  secret->path},
                                 Millis(10000));
    cr_assert(d.exited_with(4), "reactord with a %04o secret: %s", static_cast<unsigned>(mode),
              d.describe().c_str());
    ASSERT_CONTAINS(d.stderr_text, "chmod");
    cr_assert(d.stderr_text.rfind("reactord: error: ", 0) == 0, "not prefixed with the program's name: %s",
              d.stderr_text.c_str());
    cr_assert(d.stderr_text.find("listening on") == std::string::npos, "%s", d.stderr_text.c_str());
    ClientResult c = run_client({"-s", "127.0.0.1:9", "-k", secret->path, "ping"}, Millis(10000));
    cr_assert(c.exited_with(9), "reactorc with a %04o secret: %s", static_cast<unsigned>(mode),
              c.describe().c_str());
    ASSERT_CONTAINS(c.stderr_text, "chmod");
  }
  // Too short a secret is refused as well.
  auto short_secret = write_secret(dir.path(), "only15bytes....\n", &err, "short");
  cr_assert(short_secret.has_value(), "%s", err.c_str());
  ClientResult d = run_program({reactord_path(), "-r", dir.path("root"), "-l", "127.0.0.1:0", "-k",
                                short_secret->path},
                               Millis(10000));
  cr_assert(d.exited_with(4), "%s", d.describe().c_str());
  ClientResult c = run_client({"-s", "127.0.0.1:9", "-k", short_secret->path, "ping"}, Millis(10000));
  cr_assert(c.exited_with(9), "%s", c.describe().c_str());
  ASSERT_CONTAINS(c.stderr_text, "at least 16");
}

Test(security, sighup_rotates_the_secret) {
  Served s = serve(options());
  std::string err;
  // Keep a copy of the old key for the client that will be left behind.
  auto old_copy = write_secret(s.in_dir(""), s.secret.key + "\n", &err, "old-secret");
  cr_assert(old_copy.has_value(), "%s", err.c_str());
  RawClient before = connect_authenticated(s);

  auto fresh = write_secret(s.in_dir(""), {}, &err);  // rewrites dir/secret in place
  cr_assert(fresh.has_value(), "%s", err.c_str());
  cr_assert(fresh->key != s.secret.key);
  cr_assert(s.server.send_signal(SIGHUP));
  cr_assert(s.server.wait_for_stderr("reloaded the secret", Millis(10000)), "%s",
            s.server.stderr_text().c_str());

  std::vector<std::string> old_args = {"-s", s.server.address(), "-k", old_copy->path, "ping"};
  ClientResult r = run_client(old_args, Millis(30000));
  cr_assert(r.exited_with(4), "the old secret still works: %s", r.describe().c_str());
  assert_serves(s);  // dir/secret now holds the new key
  // A connection authenticated before the rotation goes on.
  cr_assert(before.send_frame("{\"type\":\"ping\"}"));
  expect_frame(before, "pong");

  // An unsafe replacement is refused and the current secret kept.
  cr_assert(write_file(s.secret.path, "a-new-key-that-is-long-enough\n"));
  cr_assert_eq(chmod(s.secret.path.c_str(), 0644), 0);
  cr_assert(s.server.send_signal(SIGHUP));
  cr_assert(s.server.wait_for_stderr("keeping the current secret", Millis(10000)), "%s",
            s.server.stderr_text().c_str());
  cr_assert(write_secret(s.in_dir(""), fresh->key + "\n", &err, "fresh-copy").has_value());
  r = run_client({"-s", s.server.address(), "-k", s.in_dir("fresh-copy"), "ping"}, Millis(30000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  before.close();
  stop_cleanly(s);
}

// With no -k, reactord creates a secret on first start in $XDG_CONFIG_HOME/reactor/secret
// (mode 0600, directory 0700), says where, and never serves it, not even from inside the
// served tree; reactorc finds it there
// with the same environment. A second start uses the file as it is.
Test(security, first_start_creates_the_default_secret) {
  TempDir dir = *TempDir::create("security-test");
  std::string err;
  cr_assert(make_dirs(dir.path("root"), &err), "%s", err.c_str());
  cr_assert(write_file(dir.path("root/hello.txt"), "hello\n"));
  std::string xdg = dir.path("root/.config");  // inside the served tree, on purpose
  std::string secret_path = xdg + "/reactor/secret";
  ServerOptions o;
  o.root = dir.path("root");
  o.env = {{"XDG_CONFIG_HOME", xdg}};
  std::optional<ServerProcess> server = ServerProcess::start(o, &err);
  cr_assert(server.has_value(), "%s", err.c_str());
  ASSERT_CONTAINS(server->stderr_text(), "created a new secret in \"" + secret_path + "\"");
  struct stat st {};
  cr_assert_eq(stat(secret_path.c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0600u, "secret mode %04o", static_cast<unsigned>(st.st_mode & 07777));
  cr_assert_eq(stat((xdg + "/reactor").c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0700u, "directory mode %04o", static_cast<unsigned>(st.st_mode & 07777));
  std::optional<std::string> first = read_file(secret_path);
  cr_assert(first.has_value() && first->size() >= 32, "a secret of %zu bytes", first ? first->size() : 0);

  RunOptions with_env;
  with_env.env = {{"XDG_CONFIG_HOME", xdg}};
  ClientResult r = server->run_client({"get", "hello.txt", dir.path("hello.txt")}, Millis(30000), with_env);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  r = server->run_client({"get", ".config/reactor/secret", dir.path("stolen")}, Millis(30000), with_env);
  cr_assert(r.exited_with(5), "the secret was served: %s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "forbidden");
  RunOptions elsewhere;
  elsewhere.env = {{"XDG_CONFIG_HOME", dir.path("elsewhere")}};
  r = server->run_client({"ping"}, Millis(30000), elsewhere);
  cr_assert(r.exited_with(9), "no secret in another config home: %s", r.describe().c_str());
  cr_assert(server->stop().exited_with(0));

  std::optional<ServerProcess> again = ServerProcess::start(o, &err);
  cr_assert(again.has_value(), "%s", err.c_str());
  cr_assert(again->stderr_text().find("created a new secret") == std::string::npos, "%s",
            again->stderr_text().c_str());
  std::optional<std::string> second = read_file(secret_path);
  cr_assert(second.has_value() && *second == *first, "the secret was rewritten");
  r = again->run_client({"ping"}, Millis(30000), with_env);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(again->stop().exited_with(0));
}
