#pragma once
// A child process with captured output, bounded waits, and no leftovers: the destructor
// SIGKILLs and reaps a child still running (see cleanup.h for tests that abort).

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/deadline.h"

namespace testsupport {

struct ExitStatus {
  enum class Kind { kNotStarted, kExited, kSignaled, kTimedOut };
  Kind kind = Kind::kNotStarted;
  int value = 0;  // the exit code (kExited) or the signal number (kSignaled)

  static ExitStatus from_wait_status(int status);
  static ExitStatus timed_out_status() { return {Kind::kTimedOut, 0}; }

  bool exited() const { return kind == Kind::kExited; }
  bool exited_with(int code) const { return exited() && value == code; }
  bool signaled() const { return kind == Kind::kSignaled; }
  bool killed_by(int sig) const { return signaled() && value == sig; }
  bool timed_out() const { return kind == Kind::kTimedOut; }
  // The exit code, or -1 when the process did not exit normally.
  int exit_code() const { return exited() ? value : -1; }
  // "exit 0", "signal 9 (Killed)", "timed out", "not started".
  std::string describe() const;
};

using EnvVars = std::vector<std::pair<std::string, std::string>>;

struct SpawnOptions {
  // argv[0] is the program: a path, or a bare name looked up in $PATH.
  std::vector<std::string> argv;
  // Set in (or overriding) the inherited environment.
  EnvVars env;
  // Removed from the inherited environment.
  std::vector<std::string> unset_env;
  // Required: stdout and stderr go to OUTPUT_DIR/NAME.stdout and OUTPUT_DIR/NAME.stderr.
  std::string output_dir;
  // Default: "proc-N", N unique within this process.
  std::string name;
  // Empty: inherit the current directory.
  std::string working_dir;
  // stdin: -1 for /dev/null, otherwise this descriptor (the caller keeps ownership).
  int stdin_fd = -1;
  // setpgid(0, 0) in the child; signals and the final SIGKILL then go to the whole group,
  // so that whatever the child itself started dies with it too. On by default; false
  // leaves the child in the test's group and signals only the child.
  bool new_process_group = true;
};

class Process {
 public:
  // fork + execve. Fails (nullopt, *err says why) if the program cannot be executed; the
  // child's exec error is reported through a close-on-exec pipe, so a missing binary is an
  // error here and not a mysterious exit 127 later. All other descriptors are closed in
  // the child; signal dispositions and mask are reset; PR_SET_PDEATHSIG is SIGKILL.
  static std::optional<Process> spawn(const SpawnOptions& options, std::string* err = nullptr);

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  // The argv[0] that was run, resolved to a path.
  const std::string& program() const { return program_; }

  // Non-blocking: the status once the child has exited (it is then reaped), else nullopt.
  std::optional<ExitStatus> try_wait();
  bool running() { return !try_wait().has_value(); }
  // Polls (waitpid WNOHANG, 1..10 ms sleeps) until exit or timeout; on timeout returns
  // kTimedOut and the child keeps running. Once exited, returns the same status again.
  ExitStatus wait_exit(Millis timeout);
  // To the child, or to its group when it leads one. False (and nothing sent) once reaped.
  bool send_signal(int sig);
  // SIGKILL and reap (bounded). Returns the final status (the earlier one if already reaped).
  ExitStatus kill_and_wait(Millis timeout = Millis(5000));

  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }
  // What the child wrote so far (the whole file; empty if unreadable).
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  Process() = default;
  void finish();  // kill + reap + untrack, for the destructor and move assignment

  pid_t pid_ = -1;
  bool group_ = false;
  std::optional<ExitStatus> status_;
  std::string program_;
  std::string stdout_path_;
  std::string stderr_path_;
};

// Waits for all of them with one bounded loop; true if all have exited by the deadline.
// Statuses are then available from each wait_exit(Millis(0)) / try_wait().
bool wait_all(std::vector<Process>& processes, Millis timeout);

// A program name resolved like execvp does ("sh" -> "/usr/bin/sh"); a name with a '/'
// is returned as is. Empty if not found.
std::string find_in_path(const std::string& name);

}  // namespace testsupport
