#pragma once
// A running reactord for integration tests, plus the secret file and client helpers that go
// with it.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace testsupport {

struct SecretFile {
  std::string path;  // absolute if DIR was
  std::string key;   // what the HMAC uses: the file's bytes minus trailing whitespace
};

// Writes DIR/NAME with mode 0600 (set with fchmod, whatever the umask). TEXT empty: a
// generated secret, 64 random lowercase hex characters and "\n"; otherwise TEXT verbatim.
std::optional<SecretFile> write_secret(const std::string& dir, const std::string& text = {},
                                       std::string* err = nullptr,
                                       const std::string& name = "secret");

struct Endpoint {
  std::string host;  // "127.0.0.1" or "::1" (no brackets)
  uint16_t port = 0;
  bool plain = false;  // the line ends "(plain)": the unencrypted protocol, not TLS
  // "127.0.0.1:PORT" or "[::1]:PORT", as reactorc -s takes it.
  std::string address() const;
};

// Every complete "listening on HOST:PORT" / "listening on [HOST]:PORT" line in LOG, in order.
std::vector<Endpoint> parse_listening_lines(std::string_view log);

struct ServerOptions {
  std::string root;         // -r (required)
  std::string secret_file;  // -k; empty: none (the server's default path, see `env`)
  std::vector<std::string> listen{"127.0.0.1:0"};  // one -l each (TLS)
  // Also a --plain-listen beside each -l, on the same host: RawClient and the other
  // hand-written peers of the tests speak the plain protocol.
  bool also_plain = true;
  bool verbose = false;                           // -v
  std::vector<std::string> extra_args;            // appended after the above
  EnvVars env;                                    // added to the inherited environment
  std::string binary;   // empty: reactord from build_dir()
  std::string log_dir;  // where its stdout/stderr go; empty: a private TempDir
  Millis start_timeout{10000};
};

class ServerProcess {
 public:
  // Starts the server and waits (bounded by start_timeout, polling its stderr every 10 ms)
  // for one "listening on" line per listen address. Fails with the exit status and the
  // server's stderr in *err if it exits or stays silent (it is then killed).
  static std::optional<ServerProcess> start(const ServerOptions& options,
                                            std::string* err = nullptr);

  ServerProcess(ServerProcess&&) noexcept = default;
  ServerProcess& operator=(ServerProcess&&) noexcept = default;
  // SIGKILLs and reaps a server still running.
  ~ServerProcess() = default;

  // The first TLS listen address (or the first of all, when every one is plain).
  uint16_t port() const { return first(false).port; }
  std::string address() const { return first(false).address(); }
  // The first plain listen address (or the first of all).
  uint16_t plain_port() const { return first(true).port; }
  std::string plain_address() const { return first(true).address(); }
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  pid_t pid() const { return process_.pid(); }
  const std::string& secret_file() const { return secret_file_; }
  const std::string& root() const { return root_; }

  bool running() { return process_.running(); }
  // SIGTERM, then wait. On timeout: SIGKILL, reap, and return kTimedOut.
  ExitStatus stop(Millis timeout = Millis(10000));
  // SIGKILL and reap.
  ExitStatus kill();
  bool send_signal(int sig) { return process_.send_signal(sig); }
  ExitStatus wait_exit(Millis timeout) { return process_.wait_exit(timeout); }

  std::string stderr_text() const { return process_.stderr_text(); }
  std::string stdout_text() const { return process_.stdout_text(); }
  // Polls stderr every 10 ms until NEEDLE appears; false after timeout.
  bool wait_for_stderr(std::string_view needle, Millis timeout) const;

  // {"-s", address(), "-k", secret_file(), "--progress=none", args...}; no -k when the
  // server was started without one.
  std::vector<std::string> client_args(const std::vector<std::string>& args) const;
  // The same for the plain listener: {"--plain", "-s", plain_address(), ...}.
  std::vector<std::string> plain_client_args(const std::vector<std::string>& args) const;
  ClientResult run_plain_client(const std::vector<std::string>& args, Millis timeout = Millis(30000),
                                const RunOptions& options = {}) const;
  // run_client(client_args(args), timeout, options).
  ClientResult run_client(const std::vector<std::string>& args, Millis timeout = Millis(30000),
                          const RunOptions& options = {}) const;

  Process& process() { return process_; }

 private:
  ServerProcess(std::optional<TempDir> log_dir, Process process)
      : log_dir_(std::move(log_dir)), process_(std::move(process)) {}

  std::optional<TempDir> log_dir_;  // declared first: destroyed after the process is dead
  Process process_;
  const Endpoint& first(bool plain) const;
  std::vector<Endpoint> endpoints_;
  std::string secret_file_;
  std::string root_;
};

}  // namespace testsupport
