// The auth slow-down must not keep connections past the handshake deadline: verdicts
// for a throttled address are queued, and a verdict that would land after the
// deadline is replaced by an immediate timeout error (apps/reactord/session.cc).
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/hmac_auth.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

TestSuite(auth_queue, .timeout = 60);

namespace {

// Reads the hello and sends an auth with a MAC made from the wrong secret.
void send_wrong_auth(RawClient& c) {
  ReadResult hello = c.read_frame(Millis(5000));
  cr_assert(hello.ok(), "hello: %s", hello.describe().c_str());
  std::optional<std::string> nonce_hex = hello.frame.string_field("nonce");
  cr_assert(nonce_hex.has_value());
  std::optional<std::string> server_nonce = hex_decode(*nonce_hex);
  cr_assert(server_nonce.has_value());
  std::string err;
  cr_assert(c.send_frame(make_auth_header("not the secret at all!!", *server_nonce, random_bytes(kNonceBytes)), {},
                         &err),
            "%s", err.c_str());
}

}  // namespace

Test(auth_queue, queued_verdicts_never_outlive_the_handshake_deadline) {
  std::optional<TempDir> dir = TempDir::create("auth-queue");
  cr_assert(dir.has_value());
  std::string err;
  std::optional<SecretFile> secret = write_secret(dir->path(), {}, &err);
  cr_assert(secret.has_value(), "%s", err.c_str());
  cr_assert(make_dirs(dir->path("root"), &err), "%s", err.c_str());
  ServerOptions options;
  options.root = dir->path("root");
  options.secret_file = secret->path;
  options.extra_args = {"--handshake-timeout", "1"};
  std::optional<ServerProcess> server = ServerProcess::start(options, &err);
  cr_assert(server.has_value(), "%s", err.c_str());

  // Three failures one after another: the penalty is now 400 ms a verdict.
  for (int i = 0; i < 3; ++i) {
    RawClient c;
    cr_assert(c.connect(server->plain_address(), Millis(5000), &err), "%s", err.c_str());
    send_wrong_auth(c);
    ReadResult verdict = c.read_frame(Millis(10000));
    cr_assert(verdict.ok(), "verdict %d: %s", i, verdict.describe().c_str());
    cr_assert(verdict.frame.code() == "auth_failed", "verdict %d: %s", i, verdict.frame.header.c_str());
  }

  // Four at once queue at +400, +800, +1200 and +1600 ms: the last two would land after
  // their 1 s deadline, so they are refused at once with timeout instead of waiting.
  std::vector<RawClient> clients(4);
  for (RawClient& c : clients) {
    cr_assert(c.connect(server->plain_address(), Millis(5000), &err), "%s", err.c_str());
    send_wrong_auth(c);
  }
  int timeouts = 0;
  int failures = 0;
  for (RawClient& c : clients) {
    ReadResult verdict = c.read_frame(Millis(10000));
    cr_assert(verdict.ok(), "%s", verdict.describe().c_str());
    std::string code = verdict.frame.code();
    if (code == "timeout") ++timeouts;
    else if (code == "auth_failed") ++failures;
    else cr_assert_fail("unexpected verdict %s", verdict.frame.header.c_str());
    cr_assert(c.read_until_closed(Millis(5000)), "the server kept a refused connection open");
  }
  cr_assert_geq(timeouts, 1, "no queued verdict was cut at the deadline");
  cr_assert_geq(failures, 1, "the first queued verdict should still be a normal auth_failed");

  // Five failures make the penalty (1.6 s) longer than this server's 1 s deadline: the
  // address is turned away, even with the right secret, clearly and at once, until its
  // failures are forgotten. (With the defaults, 10 s and at most 5 s, a lone attempt
  // always gets its verdict.) The server itself carries on.
  ClientResult turned_away = server->run_client({"ping"});
  cr_assert(turned_away.exited_with(8), "%s", turned_away.describe().c_str());
  cr_assert(turned_away.stderr_text.find("try again later") != std::string::npos, "%s",
            turned_away.stderr_text.c_str());
  cr_assert(server->running());
  cr_assert(server->stop().exited_with(0));
}

// The lockout a hostile run found: two failures, then a burst of parallel wrong attempts
// from the same address. Those that would wait past their deadline are turned away at
// once; they must not push the queue back for everyone after them, so the right secret
// a deadline later still gets through (after at most one 5 s penalty), with the
// defaults of 10 s and 5 s.
Test(auth_queue, a_burst_turned_away_does_not_lock_out_the_next_client) {
  std::optional<TempDir> dir = TempDir::create("auth-burst");
  cr_assert(dir.has_value());
  std::string err;
  std::optional<SecretFile> secret = write_secret(dir->path(), {}, &err);
  cr_assert(secret.has_value(), "%s", err.c_str());
  cr_assert(make_dirs(dir->path("root"), &err), "%s", err.c_str());
  ServerOptions options;
  options.root = dir->path("root");
  options.secret_file = secret->path;
  options.extra_args = {"--max-conns", "1000"};
  std::optional<ServerProcess> server = ServerProcess::start(options, &err);
  cr_assert(server.has_value(), "%s", err.c_str());
  for (int i = 0; i < 2; ++i) {
    RawClient c;
    cr_assert(c.connect(server->plain_address(), Millis(5000), &err), "%s", err.c_str());
    send_wrong_auth(c);
    cr_assert(c.read_frame(Millis(10000)).frame.code() == "auth_failed");
  }
  std::vector<RawClient> burst(150);
  for (RawClient& c : burst) {
    cr_assert(c.connect(server->plain_address(), Millis(5000), &err), "%s", err.c_str());
    send_wrong_auth(c);
  }
  int turned_away = 0;
  for (RawClient& c : burst) {
    ReadResult verdict = c.read_frame(Millis(20000));
    cr_assert(verdict.ok(), "%s", verdict.describe().c_str());
    if (verdict.frame.code() == "timeout") ++turned_away;
  }
  // 200 ms apart within the 10 s deadline: 50 verdicts fit, the other 100 cannot.
  cr_assert_geq(turned_away, 90, "most of the burst is turned away at once (%d)", turned_away);
  // Every verdict is out: the queue is empty again, whatever the burst was.
  ClientResult ok = server->run_client({"ping"}, Millis(30000));
  cr_assert(ok.exited_with(0), "the right secret after the burst: %s", ok.describe().c_str());
  cr_assert(server->stop().exited_with(0));
}
