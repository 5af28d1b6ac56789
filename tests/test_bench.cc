// Integration tests of `reactorc bench`: a real reactord on loopback, the load generator
// against it, and the counts in its --json line. No assertion on speed: that is `make bench`.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/support/client.h"
#include "tests/support/files.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

namespace {

struct Bench {
  TempDir dir;
  ServerProcess server;
};

// A root holding small.bin (10,000 bytes) and a generated secret, served on 127.0.0.1:0.
Bench serve() {
  std::string err;
  std::optional<TempDir> dir = TempDir::create("bench-test", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  cr_assert_eq(mkdir(dir->path("root").c_str(), 0700), 0);
  std::string body;
  for (int i = 0; i < 10000; ++i) body += static_cast<char>('a' + i % 26);
  cr_assert(write_file(dir->path("root/small.bin"), body, &err), "%s", err.c_str());
  std::optional<SecretFile> secret = write_secret(dir->path(), {}, &err);
  cr_assert(secret.has_value(), "%s", err.c_str());
  ServerOptions options;
  options.root = dir->path("root");
  options.secret_file = secret->path;
  std::optional<ServerProcess> server = ServerProcess::start(options, &err);
  cr_assert(server.has_value(), "%s", err.c_str());
  return Bench{std::move(*dir), std::move(*server)};
}

// The number after "KEY": in a one-line JSON object; -1 when absent.
long long json_number(const std::string& json, const std::string& key) {
  std::string needle = "\"" + key + "\":";
  size_t at = json.find(needle);
  if (at == std::string::npos) return -1;
  return std::stoll(json.substr(at + needle.size()));
}

ClientResult run_bench(const Bench& b, const std::vector<std::string>& args) {
  std::vector<std::string> all = {"bench", "--json"};
  all.insert(all.end(), args.begin(), args.end());
  return b.server.run_client(all, Millis(60000));
}

}  // namespace

// Every test in this binary has the same timeout (see HACKING.md).
TestSuite(bench, .timeout = 90);

Test(bench, ping_counts_every_request) {
  Bench b = serve();
  ClientResult r = run_bench(b, {"-c", "4", "-n", "200"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string out = r.stdout_text;
  cr_assert_eq(json_number(out, "requests"), 200, "%s", out.c_str());
  cr_assert_eq(json_number(out, "errors"), 0, "%s", out.c_str());
  cr_assert_eq(json_number(out, "connections"), 4, "%s", out.c_str());
  cr_assert(out.find("\"mode\":\"ping\"") != std::string::npos, "%s", out.c_str());
}

Test(bench, get_verifies_and_counts_bytes) {
  Bench b = serve();
  ClientResult r = run_bench(b, {"-c", "4", "-n", "200", "--pipeline", "2", "get", "small.bin"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string out = r.stdout_text;
  cr_assert_eq(json_number(out, "requests"), 200, "%s", out.c_str());
  cr_assert_eq(json_number(out, "errors"), 0, "%s", out.c_str());
  cr_assert_eq(json_number(out, "bytes"), 200LL * 10000, "%s", out.c_str());
}

Test(bench, handshake_and_idle_complete) {
  Bench b = serve();
  ClientResult h = run_bench(b, {"-c", "4", "-n", "40", "handshake"});
  cr_assert(h.exited_with(0), "%s", h.describe().c_str());
  std::string out = h.stdout_text;
  cr_assert_eq(json_number(out, "requests"), 40, "%s", out.c_str());
  ClientResult i = run_bench(b, {"-c", "20", "-d", "0.2", "idle"});
  cr_assert(i.exited_with(0), "%s", i.describe().c_str());
  std::string idle = i.stdout_text;
  cr_assert_eq(json_number(idle, "ready"), 20, "%s", idle.c_str());
  cr_assert_eq(json_number(idle, "requests"), 20, "%s", idle.c_str());
}

Test(bench, a_failed_request_fails_the_run) {
  Bench b = serve();
  ClientResult r = run_bench(b, {"-c", "2", "-n", "4", "get", "missing.bin"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  std::string out = r.stdout_text;
  cr_assert_eq(json_number(out, "errors"), 4, "%s", out.c_str());
}

Test(bench, bad_request_kind_is_a_usage_error) {
  Bench b = serve();
  ClientResult r = run_bench(b, {"frobnicate"});
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
}

// Failed connects in handshake mode are retried up to -n, each counted, and the run fails
// as "cannot connect" (under ASan this also guards the replacement of dead connections).
Test(bench, refused_handshakes_are_counted) {
  Bench b = serve();
  b.server.stop();
  ClientResult r = run_bench(b, {"-c", "3", "-n", "30", "handshake"});
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  std::string out = r.stdout_text;
  cr_assert_eq(json_number(out, "connect_errors"), 30, "%s", out.c_str());
  cr_assert_eq(json_number(out, "requests"), 0, "%s", out.c_str());
}

// --source spreads the connections over the prefix's addresses (127.0.0.0/30: .1 and .2),
// as the server's log of peers shows; a bad prefix is a usage error before any connect.
Test(bench, source_prefix_spreads_connections) {
  Bench b = serve();
  ClientResult r = run_bench(b, {"-c", "2", "-n", "8", "--source", "127.0.0.0/30", "handshake"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_eq(json_number(r.stdout_text, "requests"), 8, "%s", r.stdout_text.c_str());
  cr_assert(b.server.wait_for_stderr("127.0.0.2:", Millis(5000)), "%s", b.server.stderr_text().c_str());
  cr_assert(b.server.wait_for_stderr("127.0.0.1:", Millis(5000)), "%s", b.server.stderr_text().c_str());
  for (const char* bad : {"127.0.0.0", "127.0.0.0/7", "127.0.0.0/33", "localhost/24", "::1/128", "127.0.0.0/24x"}) {
    ClientResult u = run_bench(b, {"--source", bad, "handshake"});
    cr_assert(u.exited_with(2), "--source %s: %s", bad, u.describe().c_str());
    cr_assert(u.stderr_text.find("invalid --source") != std::string::npos, "%s", u.stderr_text.c_str());
  }
}

// An address no interface holds cannot be bound: every connect fails, each counted, and
// the run says why (cannot connect, exit 3).
Test(bench, unbindable_source_is_a_connect_error) {
  Bench b = serve();
  ClientResult r = run_bench(b, {"-c", "1", "-n", "2", "--source", "192.0.2.1/32", "handshake"});
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  cr_assert(r.stderr_text.find("bind 192.0.2.1") != std::string::npos, "%s", r.stderr_text.c_str());
}
