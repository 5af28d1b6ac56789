#pragma once
// reactorc's command line: global options (which GNU getopt also accepts after the
// command, e.g. `reactorc get -f a.bin`), a command and its operands. `--` ends options.

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "apps/reactorc/progress.h"
#include "apps/reactorc/source_range.h"

#include "apps/common/cli.h"

namespace client {

enum class Verb { kGet, kPut, kStat, kList, kPing, kSend, kBench };

struct Options : app::CommonOptions {
  std::string server;       // empty: $REACTOR_SERVER, else 127.0.0.1:9000
  std::string server_from;  // "FILE:LINE" when a configuration file's server section named it
  std::string config_file;  // -F: empty means the default path, "none" no file at all
  // The configuration file's keys (long option names) the command line gave: the file
  // does not override them.
  std::set<std::string> given;
  std::string secret_file;  // empty: the default path
  bool force = false;
  bool preserve = false;    // -p: keep the mode and mtime (put: send them; get: apply them)
  bool recursive = false;   // -r: copy directories, recursively
  bool links = false;       // --links (with -r): recreate symbolic links that stay inside the tree
  bool resume = false;      // get -c: continue a partial download, verified chunk by chunk
  uint64_t retry = 3;       // get, put: reconnect this many times after a lost connection
  uint64_t limit_rate = 0;  // get, put: bytes a second each way at most; 0: no cap
  bool progress_given = false;
  ProgressStyle progress = ProgressStyle::kBar;
  std::chrono::milliseconds timeout{30'000};
  bool plain = false;      // the plain protocol, no TLS
  std::string tls_ca;      // verify a server certificate against this CA file
  std::string tls_pin;     // or accept the one whose public key hashes to "sha256:HEX"
  bool insecure = false;   // or accept any certificate
  // backend, verbosity (-q: -1; -v: 1, "say more"): see app::CommonOptions
  // bench only (see bench.h): -c, -n, -d, --pipeline, --source, --json
  uint64_t bench_connections = 50;
  uint64_t bench_requests = 0;  // 0: not given
  std::chrono::milliseconds bench_duration{0};  // 0: not given
  uint64_t bench_pipeline = 1;
  SourceRange bench_sources;  // empty: connect from the address the kernel picks
  bool json = false;
  // ls only: -l, the long format; -h, sizes as ls -h prints them
  bool long_listing = false;
  // --tutorial: get from the socket tutorial's server.py (tutorial_get.h); --tutorial-auth
  // answers its HMAC-MD5 challenge first, keyed by the secret file.
  bool tutorial = false;
  bool tutorial_auth = false;
  bool human_sizes = false;
  Verb verb = Verb::kPing;
  std::vector<std::string> operands;
};

using ParseResult = app::ParseResult;

ParseResult parse_options(int argc, char** argv, Options* out);

// "sha256:" and 64 hex digits: a --tls-pin.
bool valid_tls_pin(const char* text);

extern const char kUsage[];

}  // namespace client
