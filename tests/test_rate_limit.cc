// --limit-rate, end to end: reactorc's cap on get and put, reactord's cap per
// connection. Only lower bounds on time are asserted: a loaded machine makes a transfer
// slower, never faster, so a cap that holds shows here however noisy the machine is.
// (How even the steps are is test_token_bucket's, on a simulated clock.)

#include <criterion/criterion.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/client.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/server.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using namespace testsupport;

namespace {

// 512 KiB at 192 KiB/s: the first tenth of a second's worth goes at once, the rest in
// (512 - 19.2) / 192 = 2.6 s. Uncapped, it takes milliseconds.
constexpr uint64_t kSize = 512 * 1024;
constexpr const char* kRate = "192K";
constexpr double kAtLeast = 2.0;

ServeOptions writable(std::vector<std::string> more = {}) {
  ServeOptions o;
  o.prefix = "rate-test";
  o.extra_args = {"-w"};
  for (std::string& arg : more) o.extra_args.push_back(std::move(arg));
  return o;
}

void assert_same(const std::string& a, const std::string& b) {
  std::string why;
  cr_assert(files_equal(a, b, &why), "%s vs %s: %s", a.c_str(), b.c_str(), why.c_str());
}

}  // namespace

TestSuite(rate_limit, .timeout = 120);

Test(rate_limit, reactorc_caps_a_download) {
  Served s = serve(writable());
  make_pattern(s.in_root("f.bin"), kSize, 3);
  Clock::time_point start = Clock::now();
  ClientResult r = s.server.run_client({"--limit-rate", kRate, "get", "f.bin", s.in_downloads("f.bin")}, Millis(60000));
  double took = seconds_since(start);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_geq(took, kAtLeast, "512 KiB at 192 KiB/s took %.2f s", took);
  assert_same(s.in_root("f.bin"), s.in_downloads("f.bin"));
  stop_cleanly(s);
}

Test(rate_limit, reactorc_caps_an_upload) {
  Served s = serve(writable());
  make_pattern(s.in_dir("up.bin"), kSize, 4);
  Clock::time_point start = Clock::now();
  ClientResult r = s.server.run_client({"--limit-rate", kRate, "put", s.in_dir("up.bin"), "up.bin"}, Millis(60000));
  double took = seconds_since(start);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_geq(took, kAtLeast, "512 KiB at 192 KiB/s took %.2f s", took);
  assert_same(s.in_dir("up.bin"), s.in_root("up.bin"));
  stop_cleanly(s);
}

// reactord's cap holds for each connection, each way, whatever the client asks: a get,
// then a put -r of two files over one connection.
Test(rate_limit, reactord_caps_every_connection) {
  Served s = serve(writable({"--limit-rate", kRate}));
  cr_assert(s.server.wait_for_stderr("each at most 192.0 KiB/s each way", Millis(5000)));
  make_pattern(s.in_root("f.bin"), kSize, 5);
  Clock::time_point start = Clock::now();
  ClientResult r = s.server.run_client({"get", "f.bin", s.in_downloads("f.bin")}, Millis(60000));
  double took = seconds_since(start);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_geq(took, kAtLeast, "512 KiB from a server capped at 192 KiB/s took %.2f s", took);
  assert_same(s.in_root("f.bin"), s.in_downloads("f.bin"));

  std::string err;
  cr_assert(make_dirs(s.in_dir("tree"), &err), "%s", err.c_str());
  make_pattern(s.in_dir("tree/a.bin"), kSize / 2, 6);
  make_pattern(s.in_dir("tree/b.bin"), kSize / 2, 7);
  start = Clock::now();
  r = s.server.run_client({"-r", "put", s.in_dir("tree"), "tree"}, Millis(60000));
  took = seconds_since(start);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_geq(took, kAtLeast, "put -r of 512 KiB to a server capped at 192 KiB/s took %.2f s", took);
  assert_same(s.in_dir("tree/a.bin"), s.in_root("tree/a.bin"));
  assert_same(s.in_dir("tree/b.bin"), s.in_root("tree/b.bin"));
  stop_cleanly(s);
}

Test(rate_limit, a_rate_that_is_not_one_is_a_usage_error) {
  for (const char* bad : {"0", "fast", "-5", "10Q", ""}) {
    ClientResult r = run_client({"--limit-rate", bad, "get", "x"}, Millis(10000));
    cr_expect(r.exited_with(2), "--limit-rate '%s': %s", bad, r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, "invalid --limit-rate");
  }
  ClientResult r = run_client({"--limit-rate", "1M", "ping"}, Millis(10000));
  cr_expect(r.exited_with(2), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "--limit-rate applies to get and put only, not to ping");
}
