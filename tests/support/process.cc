#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "tests/support/cleanup.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"

extern char** environ;

namespace testsupport {
namespace {

std::atomic<unsigned> g_spawn_counter{0};

// What the child reports through the exec-error pipe before it gives up.
struct ChildFailure {
  int stage;
  int error;
};
enum Stage { kStageDup = 1, kStageChdir, kStageExec, kStageParent };

const char* stage_name(int stage) {
  switch (stage) {
    case kStageDup: return "redirect stdio";
    case kStageChdir: return "chdir";
    case kStageExec: return "execve";
    case kStageParent: return "parent died";
    default: return "child setup";
  }
}

// Only async-signal-safe calls from here to execve: the test process has other threads.
[[noreturn]] void child_fail(int pipe_fd, int stage, int error) {
  ChildFailure f{stage, error};
  ssize_t ignored = ::write(pipe_fd, &f, sizeof f);
  (void)ignored;
  _exit(127);
}

[[noreturn]] void run_child(const char* path, char* const* argv, char* const* envp,
                            const char* working_dir, int in_fd, int out_fd, int err_fd,
                            bool new_group, pid_t parent, int pipe_fd) {
  if (new_group) setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) child_fail(pipe_fd, kStageParent, 0);

  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // Move the sources above 2 first so that no dup2 below can overwrite another source.
  int src[3] = {in_fd, out_fd, err_fd};
  for (int& fd : src) {
    fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) child_fail(pipe_fd, kStageDup, errno);
  }
  for (int target = 0; target < 3; ++target) {
    if (dup2(src[target], target) < 0) child_fail(pipe_fd, kStageDup, errno);
  }
  // Everything else (Criterion's pipes, the test's sockets) must not reach the child; the
  // error pipe stays open until execve succeeds.
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 65536; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (working_dir && chdir(working_dir) != 0) child_fail(pipe_fd, kStageChdir, errno);
  execve(path, argv, envp);
  child_fail(pipe_fd, kStageExec, errno);
}

std::string current_dir() {
  char buf[4096];
  if (!getcwd(buf, sizeof buf)) return ".";
  return buf;
}

std::string read_text(const std::string& path) {
  if (path.empty()) return {};
  auto text = read_file(path);
  return text ? *text : std::string();
}

}  // namespace

std::string ExitStatus::describe() const {
  switch (kind) {
    case Kind::kExited: return "exit " + std::to_string(value);
    case Kind::kSignaled: {
      const char* name = strsignal(value);
      return "signal " + std::to_string(value) + " (" + (name ? name : "?") + ")";
    }
    case Kind::kTimedOut: return "timed out";
    case Kind::kNotStarted: break;
  }
  return "not started";
}

ExitStatus ExitStatus::from_wait_status(int status) {
  if (WIFEXITED(status)) return {Kind::kExited, WEXITSTATUS(status)};
  if (WIFSIGNALED(status)) return {Kind::kSignaled, WTERMSIG(status)};
  return {Kind::kNotStarted, 0};
}

std::string find_in_path(const std::string& name) {
  if (name.empty()) return {};
  if (name.find('/') != std::string::npos) {
    return name[0] == '/' ? name : path_join(current_dir(), name);
  }
  const char* env = std::getenv("PATH");
  std::string path = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  for (int i = 0; i < 1000 && start <= path.size(); ++i) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = path_join(dir, name);
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate[0] == '/' ? candidate : path_join(current_dir(), candidate);
    }
    start = end + 1;
  }
  return {};
}

std::optional<Process> Process::spawn(const SpawnOptions& options, std::string* err) {
  auto fail = [&](const std::string& why) -> std::optional<Process> {
    if (err) *err = why;
    return std::nullopt;
  };
  if (options.argv.empty()) return fail("spawn: empty argv");
  if (options.output_dir.empty()) return fail("spawn: no output_dir for stdout/stderr");
  std::string program = find_in_path(options.argv[0]);
  if (program.empty()) return fail("spawn: \"" + options.argv[0] + "\" not found in $PATH");

  // Everything the child needs is built before fork: it may not allocate.
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const auto& kv : options.env) drop = drop || kv.first == key;
    for (const auto& name : options.unset_env) drop = drop || name == key;
    if (!drop) env_strings.push_back(std::move(entry));
  }
  for (const auto& kv : options.env) env_strings.push_back(kv.first + "=" + kv.second);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::string name = options.name;
  if (name.empty()) name = "proc-" + std::to_string(g_spawn_counter.fetch_add(1));
  Process proc;
  proc.program_ = program;
  proc.stdout_path_ = path_join(options.output_dir, name + ".stdout");
  proc.stderr_path_ = path_join(options.output_dir, name + ".stderr");
  Fd out(open(proc.stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return fail("open \"" + proc.stdout_path_ + "\": " + std::strerror(errno));
  Fd errf(open(proc.stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!errf) return fail("open \"" + proc.stderr_path_ + "\": " + std::strerror(errno));
  Fd devnull;
  int in_fd = options.stdin_fd;
  if (in_fd < 0) {
    devnull.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!devnull) return fail(std::string("open \"/dev/null\": ") + std::strerror(errno));
    in_fd = devnull.get();
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(std::string("pipe2: ") + std::strerror(errno));
  Fd pipe_read(pipe_fds[0]);
  Fd pipe_write(pipe_fds[1]);
  const char* working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    run_child(program.c_str(), argv.data(), envp.data(), working_dir, in_fd, out.get(),
              errf.get(), options.new_process_group, parent, pipe_write.get());
  }
  // Also set from this side, so that the group exists before anyone signals it.
  if (options.new_process_group) setpgid(pid, pid);
  track_child(pid, options.new_process_group);
  proc.pid_ = pid;
  proc.group_ = options.new_process_group;
  pipe_write.reset();

  // EOF on the pipe means execve succeeded (close-on-exec); a record means it failed.
  ChildFailure failure{};
  ssize_t n = -1;
  Deadline exec_deadline(Millis(10000));
  for (int i = 0; i < 1000 && !exec_deadline.expired(); ++i) {
    pollfd pfd{pipe_read.get(), POLLIN, 0};
    int ready = poll(&pfd, 1, exec_deadline.poll_timeout_ms());
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    n = ::read(pipe_read.get(), &failure, sizeof failure);
    if (!(n < 0 && errno == EINTR)) break;
  }
  if (n < 0) {
    proc.kill_and_wait();
    return fail("spawn \"" + program + "\": the child neither ran execve nor failed within 10 s");
  }
  if (n == static_cast<ssize_t>(sizeof failure)) {
    proc.kill_and_wait();
    std::string what = stage_name(failure.stage);
    if (failure.stage == kStageExec) what += " \"" + program + "\"";
    if (failure.stage == kStageChdir) what += " \"" + options.working_dir + "\"";
    return fail("spawn: " + what + ": " + std::strerror(failure.error));
  }
  return proc;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      group_(other.group_),
      status_(std::move(other.status_)),
      program_(std::move(other.program_)),
      stdout_path_(std::move(other.stdout_path_)),
      stderr_path_(std::move(other.stderr_path_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    finish();
    pid_ = std::exchange(other.pid_, -1);
    group_ = other.group_;
    status_ = std::move(other.status_);
    program_ = std::move(other.program_);
    stdout_path_ = std::move(other.stdout_path_);
    stderr_path_ = std::move(other.stderr_path_);
  }
  return *this;
}

Process::~Process() { finish(); }

void Process::finish() {
  if (pid_ <= 0) return;
  if (!status_) {
    kill_and_wait();
  } else if (group_) {
    // The leader is gone but the members it started may not be.
    ::kill(-pid_, SIGKILL);
  }
  untrack_child(pid_);
  pid_ = -1;
}

std::optional<ExitStatus> Process::try_wait() {
  if (status_) return status_;
  if (pid_ <= 0) return ExitStatus{};
  int status = 0;
  pid_t r = -1;
  for (int i = 0; i < 100; ++i) {
    r = waitpid(pid_, &status, WNOHANG);
    if (!(r < 0 && errno == EINTR)) break;
  }
  if (r == 0) return std::nullopt;
  if (r == pid_) {
    status_ = ExitStatus::from_wait_status(status);
  } else {
    // ECHILD: someone else reaped it (SIGCHLD ignored?). Report it as gone.
    status_ = ExitStatus{ExitStatus::Kind::kNotStarted, 0};
  }
  if (!group_) untrack_child(pid_);
  return status_;
}

ExitStatus Process::wait_exit(Millis timeout) {
  Deadline deadline(timeout);
  Millis nap(1);
  for (int i = 0; i < 10000000; ++i) {
    if (auto status = try_wait()) return *status;
    if (deadline.expired()) break;
    Millis left = deadline.remaining();
    sleep_for(left < nap ? left : nap);
    if (nap < Millis(10)) nap *= 2;
  }
  if (auto status = try_wait()) return *status;
  return ExitStatus::timed_out_status();
}

bool Process::send_signal(int sig) {
  if (pid_ <= 0 || status_) return false;
  return ::kill(group_ ? -pid_ : pid_, sig) == 0;
}

ExitStatus Process::kill_and_wait(Millis timeout) {
  if (pid_ <= 0) return ExitStatus{};
  if (!status_) {
    if (group_) ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
  }
  return wait_exit(timeout);
}

std::string Process::stdout_text() const { return read_text(stdout_path_); }
std::string Process::stderr_text() const { return read_text(stderr_path_); }

bool wait_all(std::vector<Process>& processes, Millis timeout) {
  Deadline deadline(timeout);
  for (int i = 0; i < 10000000; ++i) {
    bool all = true;
    for (auto& p : processes) all = !p.running() && all;
    if (all) return true;
    if (deadline.expired()) return false;
    sleep_for(Millis(2));
  }
  return false;
}

}  // namespace testsupport
