#pragma once
// reactorc's exit statuses, one per kind of failure, so scripts can tell them apart.
// Documented in reactorc(1), EXIT STATUS; tests check each.

namespace client {

enum class Failure;  // apps/reactorc/connection.h

enum ExitCode {
  kExitOk = 0,
  kExitFailure = 1,       // anything not covered below (an internal error)
  kExitUsage = 2,         // bad command line
  kExitConnect = 3,       // cannot connect: refused, unreachable, timed out, name not found
  kExitAuth = 4,          // authentication failed, either way round
  kExitRemote = 5,        // the server refused the request: not_found, forbidden, file_changed, ...
  kExitVerify = 6,        // the download's SHA-256 did not match: nothing was kept
  kExitLocal = 7,         // local file error: exists (no --force), cannot create, disk full
  kExitProtocol = 8,      // connection lost or malformed data from the server, or it went silent
  kExitConfig = 9,        // the secret file is missing, unreadable or unsafe; a TLS file unusable
  kExitCertificate = 10,  // the server's TLS certificate was refused (untrusted, expired, wrong name or pin)
  kExitPartial = 11,      // get -r, several sources: some files failed, the others were copied
  kExitInterrupted = 130  // SIGINT or SIGTERM: a partial download is kept for get -c
};

// The exit status for a connection that ended badly.
int exit_code_for(Failure failure);

}  // namespace client
