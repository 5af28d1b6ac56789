// get -r resuming what an earlier run left half done (reactorc(1), get -r): a file of
// more than one chunk is fetched into a partial download, kept when the run is cut
// short, and the next run keeps only the chunks whose digests match the server's
// before fetching the rest. Bytes the server sends are counted from its log.

#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/process.h"
#include "tests/support/proxy.h"
#include "tests/support/server.h"

using namespace testsupport;

namespace {

constexpr uint64_t kChunk = 1 << 20;

// docs/: two small files and one of `big` bytes.
Served serve_docs(uint64_t big) {
  ServeOptions o;
  o.prefix = "tree-resume-test";
  Served s = serve(o);
  cr_assert(make_dirs(s.in_root("docs/sub")));
  cr_assert(write_file(s.in_root("docs/a.txt"), "alpha\n"));
  cr_assert(write_file(s.in_root("docs/sub/b.txt"), "bravo\n"));
  make_pattern(s.in_root("docs/sub/big.bin"), big, 33);
  return s;
}

std::string partial_of(const Served& s) { return s.in_downloads("docs/sub/.big.bin.reactor-partial"); }

void assert_complete(const Served& s) {
  for (const char* f : {"docs/a.txt", "docs/sub/b.txt", "docs/sub/big.bin"}) {
    std::string why;
    cr_assert(files_equal(s.in_root(f), s.in_downloads(f), &why), "%s: %s", f, why.c_str());
  }
  cr_assert_not(exists(partial_of(s)), "the partial is left");
  cr_assert_not(exists(partial_of(s) + ".json"), "the note is left");
}

ClientResult get_r(const Served& s, const std::vector<std::string>& more = {}) {
  std::vector<std::string> args = more;
  for (const char* a : {"get", "-r", "docs"}) args.push_back(a);
  args.push_back(s.downloads);
  return s.server.run_plain_client(args, Millis(60000));
}

}  // namespace

TestSuite(tree_resume, .timeout = 120);

Test(tree_resume, an_interrupted_get_r_resumes_the_file_it_was_fetching) {
  const uint64_t size = 40 * kChunk;
  Served s = serve_docs(size);
  // The proxy stops forwarding half way through the big file: the run hangs there
  // until interrupted, as on a link that died.
  FaultSpec f;
  f.stall_after = size / 2;
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  Process client = spawn_client(s, plain_args_via(s, proxy->address(), {"get", "-r", "docs", s.downloads}));
  bool reached = wait_until(
      [&] {
        std::optional<uint64_t> held = file_size(partial_of(s));
        return held && *held >= size / 2 - 4 * kChunk;
      },
      Millis(30000));
  cr_assert(reached, "the partial never grew: %s", client.stderr_text().c_str());
  cr_assert(client.send_signal(SIGINT));
  ExitStatus st = client.wait_exit(Millis(10000));
  cr_assert(st.exited_with(130), "%s: %s", st.describe().c_str(), client.stderr_text().c_str());
  cr_assert_not(exists(s.in_downloads("docs/sub/big.bin")), "nothing unverified under the final name");
  uint64_t held = file_size(partial_of(s)).value_or(0);
  cr_assert_gt(held, 0u, "the partial was not kept");

  size_t mark = s.server.stderr_text().size();
  ClientResult r = get_r(s, {"-v"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "resuming");
  assert_complete(s);
  uint64_t sent = body_bytes_sent(s.server.stderr_text(), mark);
  uint64_t missing = size - held;
  // The small files may have been fetched again (they arrived after the stall), at most 12 bytes.
  cr_assert(sent >= missing && sent <= missing + kChunk + 12, "sent %llu for %llu missing",
            static_cast<unsigned long long>(sent), static_cast<unsigned long long>(missing));
  stop_cleanly(s);
}

Test(tree_resume, a_damaged_chunk_in_a_partial_is_fetched_again_from_there) {
  const uint64_t size = 6 * kChunk + 777;
  Served s = serve_docs(size);
  cr_assert(make_dirs(s.in_downloads("docs/sub")));
  // Five chunks held, the third with a byte flipped: chunks 0 and 1 are kept.
  std::string held = pattern_bytes(0, 5 * kChunk, 33);
  held[2 * kChunk + 100] ^= 0x40;
  cr_assert(write_file(partial_of(s), held));
  size_t mark = s.server.stderr_text().size();
  ClientResult r = get_r(s, {"--progress=json"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stdout_text, "\"event\":\"file_resumed\"");
  ASSERT_CONTAINS(r.stdout_text, "\"kept\":2097152");
  assert_complete(s);
  uint64_t sent = body_bytes_sent(s.server.stderr_text(), mark);
  cr_assert_eq(sent, size - 2 * kChunk + 12, "sent %llu", static_cast<unsigned long long>(sent));
  stop_cleanly(s);
}

Test(tree_resume, a_partial_of_another_file_is_not_used) {
  const uint64_t size = 3 * kChunk;
  Served s = serve_docs(size);
  cr_assert(make_dirs(s.in_downloads("docs/sub")));
  // Bytes of another file: no chunk matches, everything is fetched.
  cr_assert(write_file(partial_of(s), pattern_bytes(0, 2 * kChunk, 99)));
  size_t mark = s.server.stderr_text().size();
  ClientResult r = get_r(s);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_complete(s);
  cr_assert_eq(body_bytes_sent(s.server.stderr_text(), mark), size + 12);
  stop_cleanly(s);
}
