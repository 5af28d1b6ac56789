// Fault injection (issue 13's matrix, for uploads): reactord with tests/faults/inject.c
// preloaded, so that write(2), fsync(2), close(2) or the rename of one upload fails with
// EIO (or ENOSPC, EDQUOT). Each must be answered with its code and a message naming the
// call, leave the target as it was (absent, or its old content), leave no temporary, and
// cost nobody else anything: the next upload and download go through.

#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <cerrno>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/client.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/server.h"

using namespace testsupport;

namespace {

// The shim, or a skip: under ASan the sanitizer's runtime must come first among the
// preloaded libraries, which a shim in LD_PRELOAD breaks.
std::string shim_or_skip() {
  std::string dir = build_dir();
  if (dir.find("asan") != std::string::npos) cr_skip_test("LD_PRELOAD of the fault shim does not mix with ASan's runtime");
  std::string shim = dir + "/libfaultinject.so";
  if (!file_size(shim)) cr_skip_test("%s is missing: make tests builds it", shim.c_str());
  return shim;
}

ServeOptions faulty(const std::string& shim, const std::string& op, const std::string& match, int errnum = EIO) {
  ServeOptions o;
  o.prefix = "faults-test";
  o.extra_args = {"-w"};
  o.files = {{"health.txt", kHealthText}, {"old.bin", "the old content\n"}};
  o.env = {{"LD_PRELOAD", shim},
           {"REACTOR_FAULT_OP", op},
           {"REACTOR_FAULT_MATCH", match},
           {"REACTOR_FAULT_ERRNO", std::to_string(errnum)}};
  return o;
}

// No name of the root but the ones the test put there and `stored`.
void assert_no_debris(const Served& s, const std::vector<std::string>& expected) {
  auto names = list_dir(s.root);
  cr_assert(names.has_value());
  for (const std::string& name : *names) {
    bool known = false;
    for (const std::string& e : expected) known = known || name == e;
    cr_assert(known, "left in the root: %s", name.c_str());
  }
}

void upload_fails(const Served& s, const std::string& local, const std::string& remote, const std::string& code,
                  const std::string& says, bool force = false) {
  std::vector<std::string> args = {"--retry", "0"};
  if (force) args.push_back("-f");
  args.insert(args.end(), {"put", local, remote});
  ClientResult r = s.server.run_plain_client(args);
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, code + ":");
  ASSERT_CONTAINS(r.stderr_text, says);
  ASSERT_CONTAINS(r.stderr_text, "nothing was stored");
}

void still_serves(Served& s, const std::string& local) {
  ClientResult r = s.server.run_plain_client({"put", local, "fine.bin"});
  cr_assert(r.exited_with(0), "an upload the fault does not touch: %s", r.describe().c_str());
  std::string why;
  cr_assert(files_equal(local, s.in_root("fine.bin"), &why), "%s", why.c_str());
  assert_serves(s, s.downloads);
}

}  // namespace

TestSuite(faults, .timeout = 120);

Test(faults, each_failing_call_of_an_upload_is_reported_and_leaves_nothing) {
  std::string shim = shim_or_skip();
  struct Case {
    const char* op;
    int errnum;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {"write", EIO, "io_error", "write"},
      {"write", ENOSPC, "no_space", "No space left on device"},
      {"write", EDQUOT, "no_space", "quota"},
      {"fsync", EIO, "io_error", "fsync"},
      {"close", EIO, "io_error", "close"},
      {"rename", EIO, "io_error", "rename"},
  };
  for (const Case& c : cases) {
    Served s = serve(faulty(shim, c.op, "victim", c.errnum));
    std::string local = s.in_dir("src.bin");
    make_pattern(local, 3 * (1u << 20) + 17, 60);
    // A new name, and an existing file replaced: either way the target keeps what it had.
    upload_fails(s, local, "victim.bin", c.code, c.says);
    cr_assert_not(file_size(s.in_root("victim.bin")).has_value(), "%s: a victim.bin was stored", c.op);
    cr_assert(write_file(s.in_root("victim-old.bin"), "the old content\n"));
    upload_fails(s, local, "victim-old.bin", c.code, c.says, /*force=*/true);
    cr_assert(read_file(s.in_root("victim-old.bin")).value_or("") == "the old content\n", "%s: the old file changed",
              c.op);
    assert_no_debris(s, {"health.txt", "old.bin", "victim-old.bin"});
    still_serves(s, local);
    stop_cleanly(s);
  }
}

Test(faults, a_failing_write_into_a_resumable_upload_keeps_nothing_it_could_not_write) {
  std::string shim = shim_or_skip();
  Served s = serve(faulty(shim, "write", "victim"));
  std::string local = s.in_dir("src.bin");
  make_pattern(local, 2 * (1u << 20), 61);
  ClientResult r = s.server.run_plain_client({"--retry", "0", "-c", "put", local, "victim.bin"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "io_error:");
  assert_no_debris(s, {"health.txt", "old.bin"});
  still_serves(s, local);
  stop_cleanly(s);
}
