#pragma once
// reactord's command line. Every option here is documented in reactord(8) and listed
// by --help; tests/test_docs.cc fails when the three drift apart.

#include <chrono>
#include <string>
#include <vector>

#include "apps/common/cli.h"

namespace server {

struct Options : app::CommonOptions {
  std::string root = ".";
  std::vector<std::string> listen;        // TLS (plain with --plain); empty: 127.0.0.1:9000
  std::vector<std::string> plain_listen;  // plain, whatever --plain says
  bool plain = false;                     // -l listeners speak the plain protocol too
  std::string tls_cert;                   // certificate mode for TLS listeners (with tls_key)
  std::string tls_key;
  std::string secret_file;          // empty means the default path, created if missing
  uint64_t max_connections = 1024;
  std::chrono::milliseconds idle_timeout{300'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds grace{10'000};
  bool writable = false;        // accept put; read-only by default, as rsyncd is
  uint64_t max_upload = 0;      // largest file a put may declare; 0: no limit
  bool keep_free_given = false;
  uint64_t keep_free = 0;       // free space a put must leave; default 1% of the file system, at most 1 GiB
  // How long what a put -c received is kept after its connection ends (0: not at all).
  std::chrono::milliseconds partial_ttl{3'600'000};
  uint64_t limit_rate = 0;      // bytes a second each way per connection; 0: no cap
  // The socket tutorial's wire format (tutorial_session.h), off unless listened for.
  std::vector<std::string> tutorial_listen;
  std::string tutorial_file;    // inside the root; empty: the socketserver lesson's chat
  bool tutorial_md5 = false;    // the MD5-checking variant's header
  bool tutorial_auth = false;   // the HMAC legitimacy check first
  bool tutorial_insecure = false;  // allow a tutorial listener on a non-loopback address
  // backend, verbosity (-q: -1 whatever -v says, -v: 1): see app::CommonOptions
};

using ParseResult = app::ParseResult;

// Parses argv; on --help/--version prints to stdout and returns kExitOk; on a usage
// error prints "reactord: ..." and a hint to stderr and returns kUsageError.
ParseResult parse_options(int argc, char** argv, Options* out);

extern const char kUsage[];

}  // namespace server
