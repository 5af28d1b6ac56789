#pragma once
// The integration tests' fixture: a temporary directory holding a served root, a download
// directory and a secret, with a reactord serving the root; and the assertions built on it.
// Every function here asserts with Criterion, so call them from a test only. A failing
// cr_assert leaves the test with longjmp and no destructor runs: the server process and
// the directory are cleaned up by cleanup.h.

#include <ctime>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/deadline.h"
#include "tests/support/files.h"
#include "tests/support/process.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

namespace testsupport {

// A fixed, distinctive modification time (2009-02-13 23:31:30 UTC): a download that kept
// its own "now" instead of the server's mtime cannot match it by accident.
inline constexpr time_t kMtime = 1234567890;

// What assert_serves expects in root/health.txt (put it there with ServeOptions::files).
inline constexpr char kHealthText[] = "still serving\n";

struct ServeOptions {
  std::string prefix = "reactor-test";              // of the temporary directory's name
  std::vector<std::string> listen{"127.0.0.1:0"};   // reactord -l, one each
  std::vector<std::string> extra_args;              // more reactord arguments
  bool secret_in_root = false;                      // root/secret instead of dir/secret
  std::string secret_text;                          // the secret file's content; empty: random
  // Written into the root before the server starts: {path relative to the root, content}.
  std::vector<std::pair<std::string, std::string>> files;
  EnvVars env;  // added to reactord's environment (LD_PRELOAD of a fault shim, ...)
};

struct Served {
  TempDir dir;
  std::string root;       // dir/root: what the server serves
  std::string downloads;  // dir/dl: where clients write
  SecretFile secret;      // dir/secret (outside the root), or root/secret
  ServerProcess server;

  std::string in_root(const std::string& rel) const { return path_join(root, rel); }
  std::string in_downloads(const std::string& rel) const { return path_join(downloads, rel); }
  std::string in_dir(const std::string& rel) const { return dir.path(rel); }
};

// Creates the directories, the files and the secret, and starts reactord on them.
Served serve(const ServeOptions& options);

// A graceful stop at the end of a test: exit 0 and not a word from the sanitizers (under
// ASan, leaks are only reported when the server exits).
void stop_cleanly(Served& s);

// The server is alive and serves an honest client: reactorc downloads health.txt into
// LOCAL_DIR (under a name of its own), it must hold kHealthText, and it is removed again.
void assert_serves(const Served& s, const std::string& local_dir);

// Connected to the server (bounded by 5 s), and for the second also authenticated.
RawClient connect_raw(const Served& s);
RawClient connect_authenticated(const Served& s, int proto = 1);

// The next frame, which must arrive within TIMEOUT and be of TYPE.
Frame expect_frame(RawClient& c, const std::string& type, Millis timeout = Millis(10000));

// Sets both the access and the modification time of PATH.
void set_mtime(const std::string& path, time_t when);
// write_pattern_file(PATH, SIZE, SEED), with mtime kMtime.
void make_pattern(const std::string& path, uint64_t size, uint64_t seed);

// reactorc with ARGS, started and left running (its output in the test's directory),
// for a test that signals or kills it mid-transfer.
Process spawn_client(const Served& s, const std::vector<std::string>& args);
// {"--plain", "-s", ADDRESS, "-k", the secret, "--progress=none", ARGS...}: a client of the
// plain protocol through ADDRESS (a proxy in front of the server).
std::vector<std::string> plain_args_via(const Served& s, const std::string& address,
                                        const std::vector<std::string>& args);
// How many times NEEDLE occurs in TEXT (overlaps counted).
size_t count_in(const std::string& text, const std::string& needle);

// The body bytes reactord's log says it sent for get requests, in LOG after byte FROM:
// each get line reads ` get "NAME" (N of S bytes from offset O...`.
uint64_t body_bytes_sent(const std::string& log, size_t from);

// TEXT split at '\n'; a final line without '\n' counts, an empty last one does not.
std::vector<std::string> lines_of(const std::string& text);

double seconds_since(Clock::time_point start);

}  // namespace testsupport
