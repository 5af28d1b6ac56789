#pragma once
// Running reactorc (or any program) to completion, one at a time or many at once.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/deadline.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace testsupport {

struct ClientResult {
  ExitStatus status;        // kTimedOut: it was still running at the deadline (then killed)
  std::string stdout_text;  // what it wrote
  std::string stderr_text;
  std::string spawn_error;  // non-empty: it never ran (status kNotStarted)

  int exit_code() const { return status.exit_code(); }
  bool exited_with(int code) const { return status.exited_with(code); }
  // One line for an assertion message: "exit 3; stderr: ...; stdout: ..." (truncated).
  std::string describe() const;
};

struct RunOptions {
  EnvVars env;              // added to the inherited environment
  std::string working_dir;  // empty: the test's current directory
  int stdin_fd = -1;        // -1: /dev/null
  std::string binary;       // empty: reactorc from build_dir()
  std::string output_dir;   // where stdout/stderr are captured; empty: a private TempDir
};

// Runs argv (argv[0] = program) to completion, bounded by timeout.
ClientResult run_program(const std::vector<std::string>& argv, Millis timeout,
                         const RunOptions& options = {});

// Runs reactorc (or options.binary) with ARGS, bounded by timeout.
ClientResult run_client(const std::vector<std::string>& args, Millis timeout = Millis(30000),
                        const RunOptions& options = {});

// Many clients at once: start() them all, then wait_all() with one bounded loop. Each
// client costs one fork+exec and two small files; nothing else is held per client.
class ClientBatch {
 public:
  static std::optional<ClientBatch> create(const RunOptions& options = {},
                                           std::string* err = nullptr);

  // Starts the binary with ARGS (output in OUTPUT_DIR/client-N.*). Returns its index.
  std::optional<size_t> start(const std::vector<std::string>& args, std::string* err = nullptr);
  size_t size() const { return clients_.size(); }
  // Results in start order. Clients still running at the deadline are killed and reported
  // as timed out.
  std::vector<ClientResult> wait_all(Millis timeout);
  const Process& process(size_t index) const { return clients_[index]; }

 private:
  ClientBatch() = default;
  RunOptions options_;
  std::optional<TempDir> own_dir_;  // before clients_: the processes die first
  std::vector<Process> clients_;
};

}  // namespace testsupport
