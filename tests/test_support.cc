// Tests of the integration-test support library (tests/support/) itself. None of them
// needs reactord or reactorc: programs are /bin/sh and friends, servers are sockets the
// test holds, and the fake reactord is a shell script.

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/address.h"
#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/cleanup.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/process.h"
#include "tests/support/proxy.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

// Criterion's Test() macro expands to a C-style function-pointer cast at each test; the
// code below has none of its own.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using namespace testsupport;

namespace {

TempDir make_temp() {
  std::string err;
  auto dir = TempDir::create("support-test", &err);
  cr_assert(dir.has_value(), "TempDir::create: %s", err.c_str());
  return std::move(*dir);
}

Process spawn_ok(SpawnOptions options) {
  std::string err;
  auto proc = Process::spawn(options, &err);
  cr_assert(proc.has_value(), "spawn %s: %s", options.argv[0].c_str(), err.c_str());
  return std::move(*proc);
}

SpawnOptions sh(const TempDir& dir, const std::string& script) {
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.output_dir = dir.path();
  return options;
}

// Gone, or a zombie of someone else (in a container, init may not reap).
bool process_dead(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  auto close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z';
}

pid_t parse_pid(const std::string& text) { return static_cast<pid_t>(std::atol(text.c_str())); }

// A listening loopback socket for the test to play the server.
struct Listener {
  Fd fd;
  uint16_t port = 0;
  std::string address;
};

Listener listen_loopback(bool v6 = false) {
  Listener l;
  auto addr = parse_address(v6 ? "[::1]:0" : "127.0.0.1:0");
  cr_assert(addr.has_value());
  l.fd.reset(socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  cr_assert(l.fd.valid(), "socket: %s", std::strerror(errno));
  cr_assert_eq(bind(l.fd.get(), addr->get(), addr->length), 0, "bind: %s", std::strerror(errno));
  cr_assert_eq(listen(l.fd.get(), 64), 0);
  auto local = local_address(l.fd.get());
  cr_assert(local.has_value());
  l.port = local->port();
  l.address = local->to_string();
  return l;
}

Fd accept_within(int lfd, Millis timeout) {
  pollfd pfd{lfd, POLLIN, 0};
  Deadline deadline(timeout);
  if (poll(&pfd, 1, deadline.poll_timeout_ms()) <= 0) return Fd();
  return Fd(accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
}

bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  for (int i = 0; done < data.size() && i < 100000; ++i) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return done == data.size();
}

// Reads exactly n bytes (or until EOF/timeout) from a plain socket.
std::string recv_exact(int fd, size_t n, Millis timeout) {
  std::string out;
  Deadline deadline(timeout);
  char buf[65536];
  for (int i = 0; out.size() < n && i < 100000 && !deadline.expired(); ++i) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, deadline.poll_timeout_ms()) <= 0) break;
    ssize_t got = recv(fd, buf, std::min(sizeof buf, n - out.size()), MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// Proxy + client + the accepted server side of the proxied connection.
struct ProxiedPair {
  Listener listener;
  Proxy proxy;
  RawClient client;
  Fd server;
};

ProxiedPair proxied_pair(const FaultSpec& faults) {
  Listener listener = listen_loopback();
  std::string err;
  auto proxy = Proxy::start(listener.address, faults, &err);
  cr_assert(proxy.has_value(), "Proxy::start: %s", err.c_str());
  RawClient client;
  cr_assert(client.connect(proxy->address(), Millis(5000), &err), "connect: %s", err.c_str());
  Fd server = accept_within(listener.fd.get(), Millis(5000));
  cr_assert(server.valid(), "the proxy did not connect to the target");
  return ProxiedPair{std::move(listener), std::move(*proxy), std::move(client), std::move(server)};
}

// Sends DATA from the server side while the client reads; returns what the client got.
std::string pump_to_client(int server_fd, RawClient& client, const std::string& data,
                           Millis timeout) {
  int flags = fcntl(server_fd, F_GETFL);
  fcntl(server_fd, F_SETFL, flags | O_NONBLOCK);
  std::string got;
  size_t sent = 0;
  Deadline deadline(timeout);
  for (int i = 0; got.size() < data.size() && i < 1000000 && !deadline.expired(); ++i) {
    if (sent < data.size()) {
      ssize_t n = send(server_fd, data.data() + sent, std::min<size_t>(data.size() - sent, 65536),
                       MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    ReadStatus st = client.read_bytes(data.size() - got.size(), &got, Millis(5));
    if (st != ReadStatus::kOk && st != ReadStatus::kTimeout) break;
  }
  fcntl(server_fd, F_SETFL, flags);
  return got;
}

}  // namespace

// ---------------------------------------------------------------------------- process

// Every suite has the same timeout: with --jobs=2, suites of different timeouts made
// Criterion's runner (not the tests) leak under LeakSanitizer and exit 1.
TestSuite(process, .timeout = 120);

Test(process, exit_code_and_captured_output) {
  TempDir dir = make_temp();
  Process p = spawn_ok(sh(dir, "echo out; echo err >&2; printf 'no newline'; exit 3"));
  ExitStatus st = p.wait_exit(Millis(10000));
  cr_assert(st.exited_with(3), "%s", st.describe().c_str());
  cr_assert_eq(st.exit_code(), 3);
  ASSERT_STR_EQ(p.stdout_text().c_str(), "out\nno newline");
  ASSERT_STR_EQ(p.stderr_text().c_str(), "err\n");
  // Waiting again returns the same status.
  cr_assert(p.wait_exit(Millis(0)).exited_with(3));
  cr_assert_not(p.running());
}

Test(process, environment_added_overridden_and_unset) {
  TempDir dir = make_temp();
  setenv("SUPPORT_TEST_INHERITED", "yes", 1);
  setenv("SUPPORT_TEST_DROPPED", "present", 1);
  SpawnOptions o = sh(dir,
                      "echo \"$SUPPORT_TEST_INHERITED,$SUPPORT_TEST_NEW,${SUPPORT_TEST_DROPPED-unset},"
                      "$HOME_OVERRIDE\"");
  o.env = {{"SUPPORT_TEST_NEW", "a b=c"}, {"HOME_OVERRIDE", "1"}, {"HOME_OVERRIDE", "2"}};
  o.unset_env = {"SUPPORT_TEST_DROPPED"};
  Process p = spawn_ok(o);
  cr_assert(p.wait_exit(Millis(10000)).exited_with(0));
  ASSERT_STR_EQ(p.stdout_text().c_str(), "yes,a b=c,unset,2\n");
}

Test(process, stdin_is_dev_null_or_the_given_fd) {
  TempDir dir = make_temp();
  Process p = spawn_ok(sh(dir, "cat; echo end"));
  cr_assert(p.wait_exit(Millis(10000)).exited_with(0));
  ASSERT_STR_EQ(p.stdout_text().c_str(), "end\n");

  cr_assert(write_file(dir.path("input"), std::string("line\0binary\n", 12)));
  Fd in(open(dir.path("input").c_str(), O_RDONLY | O_CLOEXEC));
  SpawnOptions o = sh(dir, "cat");
  o.stdin_fd = in.get();
  o.name = "cat";
  Process c = spawn_ok(o);
  cr_assert(c.wait_exit(Millis(10000)).exited_with(0));
  cr_assert(c.stdout_text() == std::string("line\0binary\n", 12));
  ASSERT_STR_EQ(c.stdout_path().c_str(), dir.path("cat.stdout").c_str());
}

Test(process, working_dir_and_path_lookup) {
  TempDir dir = make_temp();
  cr_assert(make_dirs(dir.path("sub/dir")));
  SpawnOptions o;
  o.argv = {"pwd"};  // looked up in $PATH
  o.output_dir = dir.path();
  o.working_dir = dir.path("sub/dir");
  Process p = spawn_ok(o);
  cr_assert(p.wait_exit(Millis(10000)).exited_with(0));
  ASSERT_STR_EQ(p.stdout_text().c_str(), (dir.path("sub/dir") + "\n").c_str());
  cr_assert_eq(p.program()[0], '/');
}

Test(process, spawn_errors_are_reported_at_spawn) {
  TempDir dir = make_temp();
  std::string err;
  SpawnOptions o;
  o.output_dir = dir.path();
  o.argv = {"/nonexistent/reactord"};
  cr_assert_not(Process::spawn(o, &err).has_value());
  cr_assert(err.find("/nonexistent/reactord") != std::string::npos, "%s", err.c_str());
  cr_assert(err.find("No such file") != std::string::npos, "%s", err.c_str());

  o.argv = {"/bin/true"};
  o.working_dir = dir.path("missing");
  err.clear();
  cr_assert_not(Process::spawn(o, &err).has_value());
  cr_assert(err.find("chdir") != std::string::npos, "%s", err.c_str());

  o.working_dir.clear();
  o.output_dir = dir.path("missing");
  err.clear();
  cr_assert_not(Process::spawn(o, &err).has_value());
  cr_assert(err.find("missing") != std::string::npos, "%s", err.c_str());

  o.argv = {"no-such-program-anywhere"};
  o.output_dir = dir.path();
  err.clear();
  cr_assert_not(Process::spawn(o, &err).has_value());
  cr_assert(err.find("not found") != std::string::npos, "%s", err.c_str());
}

Test(process, timeout_then_kill) {
  TempDir dir = make_temp();
  Process p = spawn_ok(sh(dir, "exec sleep 30"));
  ExitStatus st = p.wait_exit(Millis(100));
  cr_assert(st.timed_out(), "%s", st.describe().c_str());
  cr_assert(p.running());
  st = p.kill_and_wait();
  cr_assert(st.killed_by(SIGKILL), "%s", st.describe().c_str());
  cr_assert_eq(st.exit_code(), -1);
  cr_assert_not(p.send_signal(SIGTERM), "no signal to a reaped child");
}

Test(process, send_signal) {
  TempDir dir = make_temp();
  Process p = spawn_ok(sh(dir, "exec sleep 30"));
  cr_assert(p.send_signal(SIGTERM));
  ExitStatus st = p.wait_exit(Millis(10000));
  cr_assert(st.killed_by(SIGTERM), "%s", st.describe().c_str());
  cr_assert(st.describe().find("signal 15") == 0, "%s", st.describe().c_str());

  // A trap set by the child works: the test's own dispositions are not inherited.
  signal(SIGUSR1, SIG_IGN);
  Process q = spawn_ok(sh(dir, "trap 'exit 7' USR1; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done"));
  cr_assert(wait_until([&] { return q.stdout_text() == "ready\n"; }, Millis(10000)));
  cr_assert(q.send_signal(SIGUSR1));
  st = q.wait_exit(Millis(10000));
  cr_assert(st.exited_with(7), "%s", st.describe().c_str());
  signal(SIGUSR1, SIG_DFL);
}

Test(process, destructor_kills_and_reaps) {
  TempDir dir = make_temp();
  pid_t pid = -1;
  {
    Process p = spawn_ok(sh(dir, "exec sleep 30"));
    pid = p.pid();
    cr_assert(p.running());
  }
  // Reaped by the destructor: not even a zombie is left.
  cr_assert_eq(::kill(pid, 0), -1);
  cr_assert_eq(errno, ESRCH);
  cr_assert_eq(waitpid(pid, nullptr, WNOHANG), -1);
}

Test(process, moved_process_is_owned_once) {
  TempDir dir = make_temp();
  std::vector<Process> procs;
  for (int i = 0; i < 5; ++i) procs.push_back(spawn_ok(sh(dir, "exit " + std::to_string(i))));
  Process moved = std::move(procs[4]);
  procs.pop_back();
  cr_assert_eq(procs[3].pid() > 0, true);
  cr_assert(moved.wait_exit(Millis(10000)).exited_with(4));
  cr_assert(wait_all(procs, Millis(10000)));
  for (int i = 0; i < 4; ++i) {
    cr_assert(procs[static_cast<size_t>(i)].wait_exit(Millis(0)).exited_with(i));
  }
}

Test(process, group_kill_reaches_grandchildren) {
  TempDir dir = make_temp();
  pid_t grandchild = -1;
  {
    SpawnOptions o = sh(dir, "sleep 30 & echo $!; wait");
    o.new_process_group = true;
    Process p = spawn_ok(o);
    cr_assert(wait_until([&] { return p.stdout_text().find('\n') != std::string::npos; },
                         Millis(10000)));
    grandchild = parse_pid(p.stdout_text());
    cr_assert_gt(grandchild, 0);
    cr_assert_eq(getpgid(grandchild), p.pid());
  }
  cr_assert(wait_until([&] { return process_dead(grandchild); }, Millis(10000)),
            "grandchild %d survived its group's SIGKILL", static_cast<int>(grandchild));
}

Test(process, process_group_is_optional) {
  TempDir dir = make_temp();
  Process own = spawn_ok(sh(dir, "exec sleep 30"));
  cr_assert_eq(getpgid(own.pid()), own.pid(), "a group of its own by default");
  SpawnOptions o = sh(dir, "exec sleep 30");
  o.new_process_group = false;
  Process shared = spawn_ok(o);
  cr_assert(wait_until([&] { return getpgid(shared.pid()) == getpgrp(); }, Millis(5000)));
  cr_assert(shared.send_signal(SIGKILL));
  cr_assert(shared.wait_exit(Millis(10000)).killed_by(SIGKILL));
  cr_assert(own.running(), "only the child was signalled");
}

Test(process, descriptors_are_not_inherited) {
  TempDir dir = make_temp();
  // A descriptor of the test without close-on-exec, as Criterion's own pipes are.
  Fd leaky(open("/dev/null", O_RDONLY));
  cr_assert(leaky.valid());
  Fd high(dup2(leaky.get(), 100));
  cr_assert_eq(high.get(), 100);
  Process p = spawn_ok(sh(dir, "for fd in 3 4 5 6 7 8 9 " + std::to_string(leaky.get()) +
                                   " 100; do [ -e /proc/$$/fd/$fd ] && echo \"leaked $fd\"; done; "
                                   "echo done"));
  cr_assert(p.wait_exit(Millis(10000)).exited_with(0));
  ASSERT_STR_EQ(p.stdout_text().c_str(), "done\n");
}

Test(process, leftovers_are_killed_when_the_test_aborts) {
  // A failing cr_assert skips destructors; cleanup_leftovers() (run at exit) must still
  // kill and reap what was spawned.
  TempDir dir = make_temp();
  auto* leaked = new Process(spawn_ok(sh(dir, "exec sleep 30")));
  pid_t pid = leaked->pid();
  cleanup_leftovers();
  cr_assert_eq(::kill(pid, 0), -1, "the leftover child is still there");
  cr_assert_eq(errno, ESRCH);
  delete leaked;
}

Test(process, children_die_with_the_test_process) {
  // The test process is killed outright (a Criterion timeout): no destructor, no atexit.
  TempDir dir = make_temp();
  int fds[2];
  cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
  Fd rd(fds[0]), wr(fds[1]);
  pid_t middle = fork();
  cr_assert_geq(middle, 0);
  if (middle == 0) {
    auto p = Process::spawn(sh(dir, "exec sleep 30"));
    pid_t pid = p ? p->pid() : -1;
    ssize_t ignored = write(wr.get(), &pid, sizeof pid);
    (void)ignored;
    _exit(0);
  }
  wr.reset();
  pid_t grandchild = -1;
  cr_assert_eq(read(rd.get(), &grandchild, sizeof grandchild),
               static_cast<ssize_t>(sizeof grandchild));
  cr_assert_gt(grandchild, 0);
  cr_assert_eq(waitpid(middle, nullptr, 0), middle);
  cr_assert(wait_until([&] { return process_dead(grandchild); }, Millis(10000)),
            "child %d outlived its parent", static_cast<int>(grandchild));
}

// ---------------------------------------------------------------------------- temp_dir

TestSuite(temp_dir, .timeout = 120);

Test(temp_dir, created_private_and_removed) {
  std::string path;
  {
    TempDir dir = make_temp();
    path = dir.path();
    struct stat st {};
    cr_assert_eq(stat(path.c_str(), &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700u);
    cr_assert_eq(path[0], '/');
    ASSERT_STR_EQ(dir.path("a/b").c_str(), (path + "/a/b").c_str());
    cr_assert(write_file(dir.path("f"), "x"));
  }
  cr_assert_neq(access(path.c_str(), F_OK), 0, "%s survived", path.c_str());
}

Test(temp_dir, honours_tmpdir) {
  TempDir outer = make_temp();
  setenv("TMPDIR", (outer.path() + "/").c_str(), 1);
  std::string err;
  auto inner = TempDir::create("inner", &err);
  unsetenv("TMPDIR");
  cr_assert(inner.has_value(), "%s", err.c_str());
  cr_assert(inner->path().rfind(outer.path() + "/inner.", 0) == 0, "%s", inner->path().c_str());

  setenv("TMPDIR", (outer.path() + "/missing").c_str(), 1);
  auto bad = TempDir::create("x", &err);
  unsetenv("TMPDIR");
  cr_assert_not(bad.has_value());
  cr_assert(err.find("mkdtemp") != std::string::npos, "%s", err.c_str());
}

Test(temp_dir, removes_read_only_and_unreadable_dirs_without_following_links) {
  TempDir outside = make_temp();
  cr_assert(write_file(outside.path("keep"), "precious"));
  std::string path;
  {
    TempDir dir = make_temp();
    path = dir.path();
    cr_assert(make_dirs(dir.path("a/b/c")));
    cr_assert(write_file(dir.path("a/b/c/f"), "1"));
    cr_assert(make_dirs(dir.path("ro/inner")));
    cr_assert(write_file(dir.path("ro/inner/f"), "2"));
    cr_assert_eq(chmod(dir.path("ro/inner").c_str(), 0500), 0);
    cr_assert_eq(chmod(dir.path("ro").c_str(), 0500), 0);
    cr_assert(make_dirs(dir.path("locked")));
    cr_assert(write_file(dir.path("locked/f"), "3"));
    cr_assert_eq(chmod(dir.path("locked").c_str(), 0), 0);
    cr_assert_eq(symlink(outside.path().c_str(), dir.path("link").c_str()), 0);
    cr_assert_eq(symlink(outside.path("keep").c_str(), dir.path("a/filelink").c_str()), 0);
    cr_assert_eq(mkfifo(dir.path("fifo").c_str(), 0600), 0);
    std::string err;
    cr_assert(dir.remove(&err), "%s", err.c_str());
    cr_assert(dir.path().empty());
    cr_assert(dir.remove(), "idempotent");
  }
  cr_assert_neq(access(path.c_str(), F_OK), 0);
  auto kept = read_file(outside.path("keep"));
  cr_assert(kept && *kept == "precious", "remove followed a symlink");
}

Test(temp_dir, move_release_and_leftovers) {
  TempDir a = make_temp();
  std::string path = a.path();
  TempDir b = std::move(a);
  cr_assert(a.path().empty());
  ASSERT_STR_EQ(b.path().c_str(), path.c_str());
  std::string kept = b.release();
  cr_assert(b.path().empty());
  cr_assert_eq(access(kept.c_str(), F_OK), 0, "release() keeps the directory");
  cr_assert(remove_tree(kept));
  cr_assert_neq(access(kept.c_str(), F_OK), 0);
  cr_assert(remove_tree(kept), "removing a missing tree succeeds");

  // What a test left behind when it aborted goes at exit.
  auto* leaked = new TempDir(make_temp());
  std::string leaked_path = leaked->path();
  cleanup_leftovers();
  cr_assert_neq(access(leaked_path.c_str(), F_OK), 0);
  delete leaked;
}

// ---------------------------------------------------------------------------- files

TestSuite(files, .timeout = 120);

Test(files, write_read_roundtrip_binary) {
  TempDir dir = make_temp();
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  bytes += std::string(100000, '\0');
  cr_assert(write_file(dir.path("bin"), bytes));
  auto back = read_file(dir.path("bin"));
  cr_assert(back.has_value());
  cr_assert(*back == bytes);
  cr_assert_eq(*file_size(dir.path("bin")), bytes.size());
  cr_assert(write_file(dir.path("bin"), "short"));
  ASSERT_STR_EQ(read_file(dir.path("bin"))->c_str(), "short");
  cr_assert(write_file(dir.path("empty"), ""));
  cr_assert(read_file(dir.path("empty"))->empty());
  cr_assert(write_file_with_mode(dir.path("ro"), "r", 0400));
  struct stat st {};
  cr_assert_eq(stat(dir.path("ro").c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0400u);

  std::string err;
  cr_assert_not(read_file(dir.path("missing"), &err).has_value());
  cr_assert(err.find("missing") != std::string::npos && err.find("No such file") != std::string::npos,
            "%s", err.c_str());
  cr_assert_not(write_file(dir.path("no/such/dir"), "x", &err));
}

Test(files, pattern_is_deterministic_and_random_access) {
  TempDir dir = make_temp();
  const uint64_t size = 3 * 1024 * 1024 + 5;  // not a multiple of the 1 MiB chunk or of 8
  cr_assert(write_pattern_file(dir.path("a"), size, 42));
  cr_assert(write_pattern_file(dir.path("b"), size, 42));
  cr_assert(write_pattern_file(dir.path("c"), size, 43));
  cr_assert_eq(*file_size(dir.path("a")), size);
  cr_assert(files_equal(dir.path("a"), dir.path("b")));
  cr_assert_not(files_equal(dir.path("a"), dir.path("c")));
  auto content = read_file(dir.path("a"));
  cr_assert(content.has_value());
  cr_assert(*content == pattern_bytes(0, size, 42));
  const uint64_t offsets[] = {0, 1, 7, 8, 9, 1048575, 1048576, 1048577, size - 3};
  for (uint64_t off : offsets) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(1000, size - off));
    cr_assert(content->compare(off, len, pattern_bytes(off, len, 42)) == 0,
              "slice at %llu", static_cast<unsigned long long>(off));
  }
  // Not trivially repetitive: every byte value shows up, and seeds differ.
  std::vector<int> seen(256);
  for (size_t i = 0; i < 65536; ++i) seen[static_cast<unsigned char>((*content)[i])] = 1;
  for (int i = 0; i < 256; ++i) cr_assert(seen[static_cast<size_t>(i)], "byte %d never occurs", i);
  cr_assert(pattern_bytes(0, 64, 1) != pattern_bytes(0, 64, 2));
  cr_assert(pattern_bytes(0, 64, 1) != pattern_bytes(64, 64, 1));
}

Test(files, pattern_64_mib_compare_and_hash) {
  TempDir dir = make_temp();
  const uint64_t size = 64ull << 20;
  cr_assert(write_pattern_file(dir.path("a"), size, 7));
  cr_assert(write_pattern_file(dir.path("b"), size, 7));
  std::string why;
  cr_assert(files_equal(dir.path("a"), dir.path("b"), &why), "%s", why.c_str());
  auto ha = sha256_file_hex(dir.path("a"));
  auto hb = sha256_file_hex(dir.path("b"));
  cr_assert(ha && hb && *ha == *hb);
  // One flipped bit far in: found, at the right offset.
  const uint64_t at = 50'000'123;
  Fd fd(open(dir.path("b").c_str(), O_WRONLY | O_CLOEXEC));
  char byte = static_cast<char>(pattern_bytes(at, 1, 7)[0] ^ 0x01);
  cr_assert_eq(pwrite(fd.get(), &byte, 1, static_cast<off_t>(at)), 1);
  fd.reset();
  cr_assert_not(files_equal(dir.path("a"), dir.path("b"), &why));
  ASSERT_STR_EQ(why.c_str(), "files differ at byte 50000123");
  cr_assert(*sha256_file_hex(dir.path("b")) != *ha);
}

Test(files, sparse_3_gib_costs_no_disk) {
  TempDir dir = make_temp();
  const uint64_t size = 3ull << 30;
  cr_assert(make_sparse_file(dir.path("big"), size));
  cr_assert(make_sparse_file(dir.path("big2"), size));
  struct stat st {};
  cr_assert_eq(stat(dir.path("big").c_str(), &st), 0);
  cr_assert_eq(static_cast<uint64_t>(st.st_size), size);
  cr_assert_lt(st.st_blocks, 64, "%lld blocks", static_cast<long long>(st.st_blocks));
  // Compared hole against hole without reading 6 GiB.
  std::string why;
  cr_assert(files_equal(dir.path("big"), dir.path("big2"), &why), "%s", why.c_str());
  // A byte past 2^32 differs: found, and the offset is 64-bit clean.
  Fd fd(open(dir.path("big2").c_str(), O_WRONLY | O_CLOEXEC));
  const uint64_t at = (1ull << 31) + 12345;
  cr_assert_eq(pwrite(fd.get(), "x", 1, static_cast<off_t>(at)), 1);
  fd.reset();
  cr_assert_not(files_equal(dir.path("big"), dir.path("big2"), &why));
  ASSERT_STR_EQ(why.c_str(), ("files differ at byte " + std::to_string(at)).c_str());
  cr_assert_not(files_equal(dir.path("big2"), dir.path("big"), &why));
  ASSERT_STR_EQ(why.c_str(), ("files differ at byte " + std::to_string(at)).c_str());
}

Test(files, sparse_and_dense_compare_equal_when_all_zero) {
  TempDir dir = make_temp();
  const uint64_t size = 5 * 1024 * 1024 + 17;
  cr_assert(make_sparse_file(dir.path("sparse"), size));
  cr_assert(write_file(dir.path("dense"), std::string(size, '\0')));
  std::string why;
  cr_assert(files_equal(dir.path("sparse"), dir.path("dense"), &why), "%s", why.c_str());
  cr_assert(files_equal(dir.path("dense"), dir.path("sparse"), &why), "%s", why.c_str());
  ASSERT_STR_EQ(sha256_file_hex(dir.path("sparse"))->c_str(),
                   sha256_file_hex(dir.path("dense"))->c_str());
  // Data in the middle of a sparse file hashes like the same bytes written densely.
  Fd fd(open(dir.path("sparse").c_str(), O_WRONLY | O_CLOEXEC));
  cr_assert_eq(pwrite(fd.get(), "data", 4, 3 * 1024 * 1024), 4);
  fd.reset();
  std::string dense(size, '\0');
  dense.replace(3 * 1024 * 1024, 4, "data");
  cr_assert(write_file(dir.path("dense"), dense));
  cr_assert(files_equal(dir.path("sparse"), dir.path("dense"), &why), "%s", why.c_str());
  ASSERT_STR_EQ(sha256_file_hex(dir.path("sparse"))->c_str(), sha256_hex(dense).c_str());
}

Test(files, files_equal_reports_sizes_and_errors) {
  TempDir dir = make_temp();
  cr_assert(write_file(dir.path("a"), "hello"));
  cr_assert(write_file(dir.path("b"), "hello!"));
  cr_assert(write_file(dir.path("c"), "help!"));
  std::string why;
  cr_assert_not(files_equal(dir.path("a"), dir.path("b"), &why));
  cr_assert(why.find("sizes differ") != std::string::npos, "%s", why.c_str());
  cr_assert_not(files_equal(dir.path("a"), dir.path("c"), &why));
  ASSERT_STR_EQ(why.c_str(), "files differ at byte 3");
  cr_assert_not(files_equal(dir.path("a"), dir.path("missing"), &why));
  cr_assert(why.find("missing") != std::string::npos, "%s", why.c_str());
  cr_assert(write_file(dir.path("e1"), ""));
  cr_assert(write_file(dir.path("e2"), ""));
  cr_assert(files_equal(dir.path("e1"), dir.path("e2")));
}

Test(files, sha256_known_vectors_and_sha256sum) {
  TempDir dir = make_temp();
  ASSERT_STR_EQ(sha256_hex("").c_str(),
                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  ASSERT_STR_EQ(sha256_hex("abc").c_str(),
                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  cr_assert(write_file(dir.path("empty"), ""));
  ASSERT_STR_EQ(sha256_file_hex(dir.path("empty"))->c_str(),
                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  cr_assert(write_file(dir.path("abc"), "abc"));
  ASSERT_STR_EQ(sha256_file_hex(dir.path("abc"))->c_str(),
                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // FIPS 180-2's long vector: one million 'a'.
  cr_assert(write_file(dir.path("million"), std::string(1000000, 'a')));
  ASSERT_STR_EQ(sha256_file_hex(dir.path("million"))->c_str(),
                   "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Across chunk boundaries, against the coreutils tool.
  cr_assert(write_pattern_file(dir.path("p"), 2 * 1024 * 1024 + 333, 99));
  ClientResult r = run_program({"sha256sum", dir.path("p")}, Millis(30000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(r.stdout_text.substr(0, 64).c_str(), sha256_file_hex(dir.path("p"))->c_str());
  std::string err;
  cr_assert_not(sha256_file_hex(dir.path("missing"), &err).has_value());
  cr_assert(!err.empty());
}

Test(files, list_dir_and_make_dirs) {
  TempDir dir = make_temp();
  auto empty = list_dir(dir.path());
  cr_assert(empty && empty->empty());
  cr_assert(make_dirs(dir.path("z/y/x")));
  cr_assert(make_dirs(dir.path("z/y/x")), "existing is fine");
  cr_assert(write_file(dir.path("b"), ""));
  cr_assert(write_file(dir.path("a.part"), ""));
  cr_assert(write_file(dir.path(".hidden"), ""));
  auto names = list_dir(dir.path());
  cr_assert(names.has_value());
  std::vector<std::string> want{".hidden", "a.part", "b", "z"};
  cr_assert(*names == want);
  std::string err;
  cr_assert_not(list_dir(dir.path("nope"), &err).has_value());
  cr_assert(err.find("nope") != std::string::npos);
  cr_assert_not(make_dirs(dir.path("b/under_a_file"), &err));
  ASSERT_STR_EQ(path_join("a", "b").c_str(), "a/b");
  ASSERT_STR_EQ(path_join("a/", "b").c_str(), "a/b");
  ASSERT_STR_EQ(path_join("a", "/abs").c_str(), "/abs");
  ASSERT_STR_EQ(path_join("", "b").c_str(), "b");
}

// ---------------------------------------------------------------------------- address

TestSuite(address, .timeout = 120);

Test(address, parse_and_format) {
  auto v4 = parse_address("127.0.0.1:8080");
  cr_assert(v4 && v4->family() == AF_INET && v4->port() == 8080);
  ASSERT_STR_EQ(v4->to_string().c_str(), "127.0.0.1:8080");
  auto v6 = parse_address("[::1]:0");
  cr_assert(v6 && v6->family() == AF_INET6 && v6->port() == 0);
  ASSERT_STR_EQ(v6->to_string().c_str(), "[::1]:0");
  std::string err;
  const char* bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", ":80", "::1:80",
                       "[::1]80", "[::1]:x", "localhost:80", "1.2.3:4"};
  for (const char* text : bad) {
    cr_assert_not(parse_address(text, &err).has_value(), "%s accepted", text);
    cr_assert(err.find(text) != std::string::npos, "%s", err.c_str());
  }
  ASSERT_STR_EQ(loopback_address(5).c_str(), "127.0.0.1:5");
}

// ---------------------------------------------------------------------------- auth

TestSuite(auth, .timeout = 120);

Test(auth, hex) {
  ASSERT_STR_EQ(hex_encode(std::string("\x00\x01\xab\xff", 4)).c_str(), "0001abff");
  auto raw = hex_decode("0001abff");
  cr_assert(raw && *raw == std::string("\x00\x01\xab\xff", 4));
  cr_assert_not(hex_decode("0").has_value());
  cr_assert_not(hex_decode("AB").has_value(), "the contract's hex is lowercase");
  cr_assert_not(hex_decode("zz").has_value());
  cr_assert_eq(random_bytes(32).size(), 32u);
  cr_assert(random_bytes(32) != random_bytes(32));
}

Test(auth, hmac_rfc4231_vector) {
  ASSERT_STR_EQ(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")).c_str(),
                   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Test(auth, transcript_layout) {
  std::string sn(32, '\x11'), cn(32, '\x22');
  std::string t = auth_transcript(kClientAuthLabel, sn, cn);
  cr_assert_eq(t.size(), 22u + 1 + 32 + 32);
  cr_assert(t.compare(0, 23, std::string("reactor-auth-v1 client\0", 23)) == 0);
  cr_assert(t.compare(23, 32, sn) == 0 && t.compare(55, 32, cn) == 0);

  // Built by hand and MACed by OpenSSL directly.
  std::string secret = "0123456789abcdef0123456789abcdef";
  for (int role = 0; role < 2; ++role) {
    std::string msg = role == 0 ? "reactor-auth-v1 client" : "reactor-auth-v1 server";
    msg.push_back('\0');
    msg += sn + cn;
    unsigned char md[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len);
    std::string want = hex_encode(std::string(reinterpret_cast<char*>(md), len));
    std::string got = role == 0 ? client_mac_hex(secret, sn, cn) : server_mac_hex(secret, sn, cn);
    ASSERT_STR_EQ(got.c_str(), want.c_str());
  }
  cr_assert(client_mac_hex(secret, sn, cn) != server_mac_hex(secret, sn, cn));
  cr_assert(client_mac_hex(secret, sn, cn) != client_mac_hex(secret, cn, sn));
}

Test(auth, secret_text_and_auth_header) {
  ASSERT_STR_EQ(secret_key_from_text("abc \t\r\n\n").c_str(), "abc");
  ASSERT_STR_EQ(secret_key_from_text(" lead").c_str(), " lead");
  ASSERT_STR_EQ(secret_key_from_text("\n").c_str(), "");
  std::string sn = random_bytes(32), cn = random_bytes(32);
  Frame f{make_auth_header("k3y-k3y-k3y-k3y-", sn, cn, 1, {"get", "ping"}), ""};
  ASSERT_STR_EQ(f.type().c_str(), "auth");
  cr_assert_eq(*f.number_field("proto"), 1.0);
  ASSERT_STR_EQ(f.string_field("nonce")->c_str(), hex_encode(cn).c_str());
  ASSERT_STR_EQ(f.string_field("mac")->c_str(), client_mac_hex("k3y-k3y-k3y-k3y-", sn, cn).c_str());
  ASSERT_STR_EQ(json_quote("a\"b\\c\n\x01").c_str(), "\"a\\\"b\\\\c\\n\\u0001\"");
}

// ---------------------------------------------------------------------------- raw_client

TestSuite(raw_client, .timeout = 120);

namespace {

struct Pair {
  RawClient client;
  Fd peer;
};

Pair socket_pair() {
  int fds[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return Pair{RawClient(Fd(fds[0])), Fd(fds[1])};
}

}  // namespace

Test(raw_client, send_frame_encoding) {
  Pair p = socket_pair();
  std::string header = "{\"type\":\"ping\"}";
  cr_assert(p.client.send_frame(header));
  cr_assert(p.client.send_frame("{\"type\":\"file\",\"body\":3}", "xyz"));
  std::string want = std::string("\0\0\0\x0f", 4) + header +
                     std::string("\0\0\0\x18", 4) + "{\"type\":\"file\",\"body\":3}xyz";
  std::string got = recv_exact(p.peer.get(), want.size(), Millis(2000));
  cr_assert(got == want, "got %zu bytes", got.size());
  cr_assert(encode_frame(std::string(300, 'x')).compare(0, 4, std::string("\0\0\x01\x2c", 4)) == 0);
  cr_assert(be32(0x01020304) == "\x01\x02\x03\x04");
}

Test(raw_client, read_frames_with_and_without_body) {
  Pair p = socket_pair();
  std::string body(100000, 'b');
  std::string stream = encode_frame("{\"type\":\"pong\",\"token\":\"t\"}") +
                       encode_frame("{\"type\":\"file\",\"size\":100000,\"body\":100000}", body) +
                       encode_frame("{\"type\":\"end\",\"sha256\":\"00\"}");
  // Written in odd pieces from a helper thread so that reads see partial frames.
  std::thread writer([&] {
    for (size_t off = 0; off < stream.size(); off += 777) {
      send_all(p.peer.get(), stream.substr(off, 777));
    }
  });
  ReadResult a = p.client.read_frame(Millis(5000));
  ReadResult b = p.client.read_frame(Millis(5000));
  ReadResult c = p.client.read_frame(Millis(5000));
  writer.join();
  cr_assert(a.ok(), "%s", a.describe().c_str());
  ASSERT_STR_EQ(a.frame.type().c_str(), "pong");
  ASSERT_STR_EQ(a.frame.string_field("token")->c_str(), "t");
  cr_assert(a.frame.body.empty());
  cr_assert(b.ok(), "%s", b.describe().c_str());
  ASSERT_STR_EQ(b.frame.type().c_str(), "file");
  cr_assert_eq(*b.frame.number_field("size"), 100000.0);
  cr_assert(b.frame.body == body);
  cr_assert(c.ok() && c.frame.type() == "end" && c.frame.has_field("sha256"));
  cr_assert_not(c.frame.has_field("body"));
  cr_assert_not(c.frame.number_field("sha256").has_value(), "a string is not a number");
  cr_assert_eq(p.client.buffered(), 0u);
}

Test(raw_client, timeout_keeps_partial_frame_then_eof) {
  Pair p = socket_pair();
  std::string frame = encode_frame("{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"m\"}");
  cr_assert(send_all(p.peer.get(), frame.substr(0, 3)));
  ReadResult r = p.client.read_frame(Millis(100));
  cr_assert_eq(r.status, ReadStatus::kTimeout, "%s", r.describe().c_str());
  cr_assert(send_all(p.peer.get(), frame.substr(3, 10)));
  r = p.client.read_frame(Millis(100));
  cr_assert_eq(r.status, ReadStatus::kTimeout, "%s", r.describe().c_str());
  cr_assert(send_all(p.peer.get(), frame.substr(13)));
  r = p.client.read_frame(Millis(2000));
  cr_assert(r.ok(), "%s", r.describe().c_str());
  ASSERT_STR_EQ(r.frame.code().c_str(), "bad_json");
  p.peer.reset();
  r = p.client.read_frame(Millis(2000));
  cr_assert_eq(r.status, ReadStatus::kEof, "%s", r.describe().c_str());
  cr_assert(r.closed());
}

Test(raw_client, eof_mid_frame_and_bad_frames) {
  {
    Pair p = socket_pair();
    cr_assert(send_all(p.peer.get(), std::string("\0\0\0\x10{\"ty", 8)));
    p.peer.reset();
    ReadResult r = p.client.read_frame(Millis(2000));
    cr_assert_eq(r.status, ReadStatus::kError, "%s", r.describe().c_str());
    cr_assert(r.error.find("middle") != std::string::npos, "%s", r.error.c_str());
  }
  {
    Pair p = socket_pair();
    cr_assert(send_all(p.peer.get(), encode_frame("not json") + encode_frame("[1]") +
                                         encode_frame("{\"type\":\"file\",\"body\":-1}") +
                                         encode_frame("{\"type\":\"file\",\"body\":1.5}") +
                                         encode_frame("{\"type\":\"file\",\"body\":\"3\"}") +
                                         encode_frame("{\"type\":\"ok\"}")));
    for (int i = 0; i < 5; ++i) {
      ReadResult r = p.client.read_frame(Millis(2000));
      cr_assert_eq(r.status, ReadStatus::kBadFrame, "frame %d: %s", i, r.describe().c_str());
    }
    ReadResult r = p.client.read_frame(Millis(2000));
    cr_assert(r.ok() && r.frame.type() == "ok", "%s", r.describe().c_str());
  }
  {
    Pair p = socket_pair();
    cr_assert(send_all(p.peer.get(), encode_frame("{\"type\":\"file\",\"body\":1000}", "x")));
    ReadResult r = p.client.read_frame(Millis(2000), 100);
    cr_assert_eq(r.status, ReadStatus::kBadFrame, "body over max_body: %s", r.describe().c_str());
  }
}

Test(raw_client, read_bytes_and_until_closed) {
  Pair p = socket_pair();
  cr_assert(send_all(p.peer.get(), "hello world"));
  std::string got;
  cr_assert_eq(p.client.read_bytes(5, &got, Millis(2000)), ReadStatus::kOk);
  ASSERT_STR_EQ(got.c_str(), "hello");
  cr_assert_not(p.client.read_until_closed(Millis(100), &got), "peer still open");
  ASSERT_STR_EQ(got.c_str(), "hello world");
  cr_assert(send_all(p.peer.get(), "tail"));
  p.peer.reset();
  std::string rest;
  cr_assert(p.client.read_until_closed(Millis(2000), &rest));
  ASSERT_STR_EQ(rest.c_str(), "tail");
  got.clear();
  cr_assert_eq(p.client.read_bytes(1, &got, Millis(100)), ReadStatus::kEof);
}

Test(raw_client, connect_send_and_reset_over_tcp) {
  for (bool v6 : {false, true}) {
    Listener l = listen_loopback(v6);
    RawClient c;
    std::string err;
    cr_assert(c.connect(l.address, Millis(5000), &err), "%s", err.c_str());
    Fd s = accept_within(l.fd.get(), Millis(5000));
    cr_assert(s.valid());
    cr_assert(c.send_frame("{\"type\":\"ping\"}"));
    cr_assert(recv_exact(s.get(), 19, Millis(2000)) == encode_frame("{\"type\":\"ping\"}"));
    // A server that closes with unread input resets the connection.
    cr_assert(c.send_raw("unread"));
    sleep_for(Millis(50));
    s.reset();
    cr_assert(c.read_until_closed(Millis(2000)));
    std::string send_err;
    bool sent = true;
    for (int i = 0; i < 50 && sent; ++i) sent = c.send_raw(std::string(65536, 'x'), &send_err);
    cr_assert_not(sent, "sending into a reset connection must fail");
    cr_assert(send_err.find("send") == 0, "%s", send_err.c_str());
  }
  // Nobody listening: refused, with the address in the message.
  Listener gone = listen_loopback();
  std::string address = gone.address;
  gone.fd.reset();
  RawClient c;
  std::string err;
  cr_assert_not(c.connect(address, Millis(2000), &err));
  cr_assert(err.find(address) != std::string::npos && err.find("refused") != std::string::npos,
            "%s", err.c_str());
  cr_assert_not(c.connected());
  cr_assert_not(c.connect("bogus", Millis(100), &err));
}

namespace {

// Plays the server side of the handshake on FD. mode 0: honest; 1: wrong server mac;
// 2: refuse with auth_failed. *client_ok: the client's mac checked out.
void fake_server(int fd, const std::string& secret, int mode, bool* client_ok) {
  RawClient server{Fd(fcntl(fd, F_DUPFD_CLOEXEC, 0))};
  std::string sn = random_bytes(32);
  server.send_frame(
      "{\"type\":\"hello\",\"proto\":1,\"server\":\"fake/0\",\"features\":[\"get\"],\"nonce\":\"" +
      hex_encode(sn) + "\"}");
  ReadResult auth = server.read_frame(Millis(5000));
  if (!auth.ok()) return;
  auto cn = hex_decode(auth.frame.string_field("nonce").value_or(""));
  std::string want = client_mac_hex(secret, sn, cn.value_or(""));
  *client_ok = auth.frame.type() == "auth" && cn && cn->size() == 32 &&
               auth.frame.string_field("mac") == want;
  if (mode == 2) {
    server.send_frame("{\"type\":\"error\",\"code\":\"auth_failed\",\"message\":\"no\"}");
    return;
  }
  std::string mac = server_mac_hex(mode == 1 ? secret + "x" : secret, sn, *cn);
  server.send_frame("{\"type\":\"auth_ok\",\"proto\":1,\"mac\":\"" + mac + "\"}");
}

}  // namespace

Test(raw_client, handshake) {
  const std::string secret = "a-secret-of-at-least-16-bytes";
  for (int mode = 0; mode < 3; ++mode) {
    Pair p = socket_pair();
    bool client_ok = false;
    std::thread server([&] { fake_server(p.peer.get(), secret, mode, &client_ok); });
    HandshakeResult h = p.client.handshake(secret, Millis(5000));
    server.join();
    cr_assert(client_ok, "mode %d: the client's auth frame or mac was wrong", mode);
    ASSERT_STR_EQ(h.hello.type().c_str(), "hello");
    if (mode == 0) {
      cr_assert(h.ok, "%s", h.error.c_str());
      ASSERT_STR_EQ(h.reply.type().c_str(), "auth_ok");
    } else if (mode == 1) {
      cr_assert_not(h.ok);
      cr_assert(h.error.find("wrong server mac") != std::string::npos, "%s", h.error.c_str());
    } else {
      cr_assert_not(h.ok);
      ASSERT_STR_EQ(h.reply.code().c_str(), "auth_failed");
      cr_assert(h.error.find("auth_failed") != std::string::npos, "%s", h.error.c_str());
    }
  }
  Pair silent = socket_pair();
  HandshakeResult h = silent.client.handshake(secret, Millis(100));
  cr_assert_not(h.ok);
  cr_assert(h.error.find("no hello") != std::string::npos, "%s", h.error.c_str());
}

// ---------------------------------------------------------------------------- proxy

TestSuite(proxy, .timeout = 120);

Test(proxy, forwards_both_ways_and_half_close) {
  ProxiedPair p = proxied_pair({});
  cr_assert(p.client.send_raw("ping from client"));
  ASSERT_STR_EQ(recv_exact(p.server.get(), 16, Millis(5000)).c_str(), "ping from client");
  std::string reply = pattern_bytes(0, 300000, 5);
  std::string got = pump_to_client(p.server.get(), p.client, reply, Millis(10000));
  cr_assert(got == reply, "got %zu of %zu bytes", got.size(), reply.size());
  // The server's FIN reaches the client; the client can still send after it.
  cr_assert_eq(shutdown(p.server.get(), SHUT_WR), 0);
  std::string rest;
  cr_assert(p.client.read_until_closed(Millis(5000), &rest));
  cr_assert(rest.empty());
  cr_assert(p.client.send_raw("late"));
  ASSERT_STR_EQ(recv_exact(p.server.get(), 4, Millis(5000)).c_str(), "late");
  p.client.shutdown_write();
  cr_assert(recv_exact(p.server.get(), 1, Millis(5000)).empty());
  ProxyStats st = p.proxy.stats();
  cr_assert_eq(st.accepted, 1u);
  cr_assert_eq(st.s2c_bytes, reply.size());
  cr_assert_eq(st.c2s_bytes, 20u);
  cr_assert(wait_until([&] { return p.proxy.stats().closed == 1; }, Millis(5000)));
}

Test(proxy, ipv6_target) {
  Listener l = listen_loopback(true);
  auto proxy = Proxy::start(l.address);
  cr_assert(proxy.has_value());
  cr_assert(proxy->address().rfind("[::1]:", 0) == 0, "%s", proxy->address().c_str());
  RawClient c;
  cr_assert(c.connect(proxy->address()));
  Fd s = accept_within(l.fd.get(), Millis(5000));
  cr_assert(s.valid());
  cr_assert(send_all(s.get(), "v6"));
  std::string got;
  cr_assert_eq(c.read_bytes(2, &got, Millis(5000)), ReadStatus::kOk);
  ASSERT_STR_EQ(got.c_str(), "v6");
}

Test(proxy, flips_one_byte_at_an_absolute_offset) {
  FaultSpec f;
  f.flip_at = 700001;  // beyond the proxy's 64 KiB buffer: offsets are absolute
  ProxiedPair p = proxied_pair(f);
  std::string data = pattern_bytes(0, 1000000, 11);
  std::string got = pump_to_client(p.server.get(), p.client, data, Millis(10000));
  cr_assert_eq(got.size(), data.size());
  std::string want = data;
  want[700001] = static_cast<char>(want[700001] ^ 0x01);
  cr_assert(got == want);
  size_t diffs = 0;
  for (size_t i = 0; i < got.size(); ++i) diffs += got[i] != data[i];
  cr_assert_eq(diffs, 1u);
  cr_assert_eq(p.proxy.stats().flips, 1u);
  // The client->server direction is untouched.
  std::string up = pattern_bytes(0, 800000, 12);
  cr_assert(p.client.send_raw(up.substr(0, 100000)));
  cr_assert(recv_exact(p.server.get(), 100000, Millis(5000)) == up.substr(0, 100000));
}

Test(proxy, cuts_after_n_bytes) {
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{1000}, uint64_t{100000}}) {
    FaultSpec f;
    f.cut_after = n;
    ProxiedPair p = proxied_pair(f);
    int flags = fcntl(p.server.get(), F_GETFL);
    fcntl(p.server.get(), F_SETFL, flags | O_NONBLOCK);
    std::string data = pattern_bytes(0, 200000, 3);
    send(p.server.get(), data.data(), data.size(), MSG_NOSIGNAL);
    std::string got;
    cr_assert(p.client.read_until_closed(Millis(10000), &got), "cut_after %llu: not closed",
              static_cast<unsigned long long>(n));
    cr_assert_eq(got.size(), n);
    cr_assert(got == data.substr(0, n));
    cr_assert_eq(p.proxy.stats().cuts, 1u);
  }
}

Test(proxy, cut_with_reset) {
  FaultSpec f;
  f.cut_after = 10;
  f.cut_with_reset = true;
  ProxiedPair p = proxied_pair(f);
  cr_assert(send_all(p.server.get(), "0123456789abcdef"));
  std::string got;
  // The 10 bytes may or may not arrive before the RST destroys them; the close must.
  cr_assert(p.client.read_until_closed(Millis(5000), &got));
  cr_assert_leq(got.size(), 10u);
  cr_assert(wait_until([&] { return p.proxy.stats().cuts == 1; }, Millis(5000)));
}

Test(proxy, stall_is_a_black_hole) {
  FaultSpec f;
  f.stall_after = 10;
  ProxiedPair p = proxied_pair(f);
  cr_assert(send_all(p.server.get(), "0123456789abcdef"));
  std::string got;
  cr_assert_eq(p.client.read_bytes(10, &got, Millis(5000)), ReadStatus::kOk);
  ASSERT_STR_EQ(got.c_str(), "0123456789");
  cr_assert_eq(p.client.read_bytes(1, &got, Millis(200)), ReadStatus::kTimeout);
  cr_assert(wait_until([&] { return p.proxy.stats().stalls == 1; }, Millis(5000)));
  // Nothing passes the other way either, and the server's close is not propagated.
  cr_assert(p.client.send_raw("hello?"));
  cr_assert(recv_exact(p.server.get(), 1, Millis(200)).empty());
  p.server.reset();
  cr_assert_not(p.client.read_until_closed(Millis(200)));
  // The client giving up ends it.
  p.client.close();
  cr_assert(wait_until([&] { return p.proxy.stats().closed == 1; }, Millis(5000)));
}

Test(proxy, faults_on_one_connection_only_and_small_chunks) {
  Listener l = listen_loopback();
  FaultSpec f;
  f.flip_at = 0;
  f.flip_mask = 0x80;
  f.only_connection = 1;
  f.max_chunk = 7;
  auto proxy = Proxy::start(l.address, f);
  cr_assert(proxy.has_value());
  for (int i = 0; i < 3; ++i) {
    RawClient c;
    cr_assert(c.connect(proxy->address()));
    Fd s = accept_within(l.fd.get(), Millis(5000));
    cr_assert(s.valid());
    std::string frame = encode_frame("{\"type\":\"pong\"}");
    cr_assert(send_all(s.get(), frame));
    std::string got;
    cr_assert_eq(c.read_bytes(frame.size(), &got, Millis(5000)), ReadStatus::kOk);
    std::string want = frame;
    if (i == 1) want[0] = static_cast<char>(want[0] ^ 0x80);
    cr_assert(got == want, "connection %d", i);
  }
  cr_assert_eq(proxy->stats().accepted, 3u);
  cr_assert_eq(proxy->stats().flips, 1u);
}

Test(proxy, unreachable_target_and_stop) {
  Listener gone = listen_loopback();
  std::string target = gone.address;
  gone.fd.reset();
  auto proxy = Proxy::start(target);
  cr_assert(proxy.has_value());
  RawClient c;
  std::string why;
  // The proxy accepts, fails to reach the target and closes at once: the close may even
  // reach the client before its own connect() has reported success, as a reset.
  if (c.connect(proxy->address(), Millis(5000), &why)) {
    cr_assert(c.read_until_closed(Millis(5000)));
  } else {
    cr_assert(why.find("reset") != std::string::npos, "%s", why.c_str());
  }
  cr_assert(wait_until([&] { return proxy->stats().connect_failures == 1; }, Millis(5000)),
            "connect failures: %llu", static_cast<unsigned long long>(proxy->stats().connect_failures));

  pid_t pid = proxy->pid();
  std::string address = proxy->address();
  proxy->stop();
  cr_assert_eq(::kill(pid, 0), -1, "proxy child left behind");
  RawClient after;
  cr_assert_not(after.connect(address, Millis(1000)));
  cr_assert_eq(proxy->stats().accepted, 1u, "stats survive stop()");
  std::string err;
  cr_assert_not(Proxy::start("nonsense", {}, &err).has_value());
  cr_assert(!err.empty());
}

// ---------------------------------------------------------------------------- server

TestSuite(server, .timeout = 120);

namespace {

// A stand-in for reactord: prints its argv on stdout and the listening lines on stderr,
// exits 0 on SIGTERM, and 7 if nobody stops it within ~30 s.
const char* kFakeServer = R"(#!/bin/sh
echo "$@"
echo "reactord: starting" >&2
printf 'reactord: listening on 127.0.0.1:4242\n' >&2
printf 'reactord: listening on [::1]:4343 (extra words)\n' >&2
trap 'echo "reactord: stopping" >&2; exit 0' TERM
i=0
while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
exit 7
)";

std::string write_script(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.path(name);
  cr_assert(write_file_with_mode(path, text, 0755));
  return path;
}

}  // namespace

Test(server, parse_listening_lines) {
  auto eps = parse_listening_lines(
      "x\nreactord[1]: listening on 127.0.0.1:1234\n"
      "info listening on [::1]:5678 (v6)\n"
      "listening on 127.0.0.1:99999\n"      // not a port
      "listening on nothing\n"
      "listening on 127.0.0.1:4321");       // incomplete line: not yet
  cr_assert_eq(eps.size(), 2u);
  ASSERT_STR_EQ(eps[0].host.c_str(), "127.0.0.1");
  cr_assert_eq(eps[0].port, 1234);
  ASSERT_STR_EQ(eps[0].address().c_str(), "127.0.0.1:1234");
  ASSERT_STR_EQ(eps[1].host.c_str(), "::1");
  ASSERT_STR_EQ(eps[1].address().c_str(), "[::1]:5678");
  cr_assert(parse_listening_lines("listening on 127.0.0.1:1\r\n").size() == 1);
  // What the listener speaks, from the end of reactord's line.
  auto modes = parse_listening_lines("listening on 127.0.0.1:1 (TLS, pre-shared key)\nlistening on 127.0.0.1:2 (plain)\n");
  cr_assert_eq(modes.size(), 2u);
  cr_assert(!modes[0].plain && modes[1].plain);
}

Test(server, start_parses_ports_passes_args_and_stops) {
  TempDir dir = make_temp();
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  ServerOptions o;
  o.binary = write_script(dir, "fake-reactord", kFakeServer);
  o.root = dir.path("root");
  o.secret_file = secret->path;
  o.listen = {"127.0.0.1:0", "[::1]:0"};
  o.also_plain = false;  // the fake server prints one line per -l
  o.verbose = true;
  o.extra_args = {"--max-connections", "5"};
  std::string err;
  auto server = ServerProcess::start(o, &err);
  cr_assert(server.has_value(), "%s", err.c_str());
  cr_assert_eq(server->port(), 4242);
  ASSERT_STR_EQ(server->address().c_str(), "127.0.0.1:4242");
  cr_assert_eq(server->endpoints().size(), 2u);
  ASSERT_STR_EQ(server->endpoints()[1].address().c_str(), "[::1]:4343");
  cr_assert(server->wait_for_stderr("starting", Millis(5000)));
  cr_assert(wait_until([&] { return !server->stdout_text().empty(); }, Millis(5000)));
  std::string want = "-r " + o.root + " -l 127.0.0.1:0 -l [::1]:0 -k " + secret->path +
                     " -v --max-connections 5\n";
  ASSERT_STR_EQ(server->stdout_text().c_str(), want.c_str());
  std::vector<std::string> args = server->client_args({"ping"});
  std::vector<std::string> want_args{"-s", "127.0.0.1:4242", "-k", secret->path, "--progress=none",
                                     "ping"};
  cr_assert(args == want_args);
  cr_assert(server->running());
  ExitStatus st = server->stop(Millis(10000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  cr_assert(server->stderr_text().find("stopping") != std::string::npos);
  cr_assert(server->stop().exited_with(0), "stop() again returns the same status");
}

Test(server, start_failures_are_explained) {
  TempDir dir = make_temp();
  ServerOptions o;
  o.root = dir.path();
  o.secret_file = dir.path("secret");
  o.also_plain = false;
  std::string err;

  o.binary = write_script(dir, "dies", "#!/bin/sh\necho 'reactord: secret file is group-readable' >&2\nexit 2\n");
  cr_assert_not(ServerProcess::start(o, &err).has_value());
  cr_assert(err.find("exited before listening (exit 2)") != std::string::npos, "%s", err.c_str());
  cr_assert(err.find("group-readable") != std::string::npos, "%s", err.c_str());

  o.binary = write_script(dir, "silent", "#!/bin/sh\nprintf 'listening on 127.0.0.1:12' >&2\nexec sleep 30\n");
  o.start_timeout = Millis(300);
  err.clear();
  cr_assert_not(ServerProcess::start(o, &err).has_value());
  cr_assert(err.find("0 of 1") != std::string::npos, "%s", err.c_str());

  o.binary = write_script(dir, "zero", "#!/bin/sh\necho 'listening on 127.0.0.1:0' >&2\nexec sleep 30\n");
  err.clear();
  cr_assert_not(ServerProcess::start(o, &err).has_value());
  cr_assert(err.find("port 0") != std::string::npos, "%s", err.c_str());

  o.binary = dir.path("nonexistent");
  err.clear();
  cr_assert_not(ServerProcess::start(o, &err).has_value());
  cr_assert(err.find("nonexistent") != std::string::npos, "%s", err.c_str());

  o.root.clear();
  err.clear();
  cr_assert_not(ServerProcess::start(o, &err).has_value());
  cr_assert(err.find("required") != std::string::npos, "%s", err.c_str());
}

Test(server, kill_and_destructor) {
  TempDir dir = make_temp();
  ServerOptions o;
  o.binary = write_script(dir, "fake", kFakeServer);
  o.root = dir.path();
  o.secret_file = dir.path("s");
  o.log_dir = dir.path();
  pid_t pid = -1;
  {
    auto server = ServerProcess::start(o);
    cr_assert(server.has_value());
    ASSERT_STR_EQ(server->process().stderr_path().c_str(), dir.path("reactord.stderr").c_str());
    pid = server->pid();
    ServerProcess moved = std::move(*server);
    cr_assert(moved.running());
  }
  cr_assert_eq(::kill(pid, 0), -1, "server left running");
  auto server = ServerProcess::start(o);
  cr_assert(server.has_value());
  cr_assert(server->kill().killed_by(SIGKILL));
}

Test(server, write_secret) {
  TempDir dir = make_temp();
  umask(0);
  auto s = write_secret(dir.path());
  umask(022);
  cr_assert(s.has_value());
  struct stat st {};
  cr_assert_eq(stat(s->path.c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0600u);
  auto text = read_file(s->path);
  cr_assert_eq(text->size(), 65u);
  cr_assert_eq(text->back(), '\n');
  cr_assert_eq(s->key.size(), 64u);
  cr_assert(hex_decode(s->key).has_value(), "lowercase hex: %s", s->key.c_str());
  cr_assert(s->key == secret_key_from_text(*text));
  auto other = write_secret(dir.path(), {}, nullptr, "other");
  cr_assert(other && other->key != s->key);

  auto given = write_secret(dir.path(), "short\r\n \t", nullptr, "given");
  cr_assert(given.has_value());
  ASSERT_STR_EQ(read_file(given->path)->c_str(), "short\r\n \t");
  ASSERT_STR_EQ(given->key.c_str(), "short");
  // Rewriting a looser file tightens it.
  cr_assert_eq(chmod(given->path.c_str(), 0644), 0);
  given = write_secret(dir.path(), "0123456789abcdef", nullptr, "given");
  cr_assert_eq(stat(given->path.c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0600u);
  std::string err;
  cr_assert_not(write_secret(dir.path("missing")).has_value());
  cr_assert_not(write_secret(dir.path("missing"), "x", &err).has_value());
  cr_assert(err.find("missing") != std::string::npos);
}

Test(server, find_binary_explains_what_is_missing) {
  TempDir dir = make_temp();
  setenv("REACTOR_BUILD_DIR", dir.path().c_str(), 1);
  std::string err;
  cr_assert_not(find_binary("reactorc", &err).has_value());
  cr_assert(err.find(dir.path() + "/reactorc") != std::string::npos, "%s", err.c_str());
  cr_assert(err.find("REACTOR_BUILD_DIR=" + dir.path()) != std::string::npos, "%s", err.c_str());
  ClientResult r = run_client({"ping"}, Millis(1000));
  cr_assert(r.status.kind == ExitStatus::Kind::kNotStarted);
  cr_assert(r.spawn_error.find("reactorc") != std::string::npos, "%s", r.describe().c_str());
  cr_assert(write_file_with_mode(dir.path("reactorc"), "#!/bin/sh\necho \"client $*\"\nexit 4\n", 0755));
  auto found = find_binary("reactorc");
  cr_assert(found && *found == dir.path("reactorc"));
  r = run_client({"-s", "x", "ping"}, Millis(10000));
  cr_assert(r.exited_with(4), "%s", r.describe().c_str());
  ASSERT_STR_EQ(r.stdout_text.c_str(), "client -s x ping\n");
  unsetenv("REACTOR_BUILD_DIR");
  char cwd[4096];
  cr_assert(getcwd(cwd, sizeof cwd));
  ASSERT_STR_EQ(build_dir().c_str(), (std::string(cwd) + "/build").c_str());
  setenv("REACTOR_BUILD_DIR", "/abs/dir", 1);
  ASSERT_STR_EQ(build_dir().c_str(), "/abs/dir");
  unsetenv("REACTOR_BUILD_DIR");
}

Test(server, run_client_timeout_and_options) {
  TempDir dir = make_temp();
  RunOptions o;
  o.binary = "/bin/sh";
  o.working_dir = dir.path();
  o.env = {{"GREETING", "hi"}};
  ClientResult r = run_client({"-c", "echo $GREETING; pwd; echo oops >&2; exit 9"}, Millis(10000), o);
  cr_assert(r.exited_with(9), "%s", r.describe().c_str());
  ASSERT_STR_EQ(r.stdout_text.c_str(), ("hi\n" + dir.path() + "\n").c_str());
  ASSERT_STR_EQ(r.stderr_text.c_str(), "oops\n");
  cr_assert(r.describe().find("exit 9; stderr: oops") == 0, "%s", r.describe().c_str());

  r = run_client({"-c", "echo started; exec sleep 30"}, Millis(200), o);
  cr_assert(r.status.timed_out(), "%s", r.describe().c_str());
  ASSERT_STR_EQ(r.stdout_text.c_str(), "started\n");
}

Test(server, client_batch_of_200) {
  RunOptions o;
  o.binary = "/bin/sh";
  std::string err;
  auto batch = ClientBatch::create(o, &err);
  cr_assert(batch.has_value(), "%s", err.c_str());
  const size_t n = 200;
  for (size_t i = 0; i < n; ++i) {
    auto index = batch->start({"-c", "echo client " + std::to_string(i) + "; exit " +
                                          std::to_string(i % 5)},
                              &err);
    cr_assert(index && *index == i, "start %zu: %s", i, err.c_str());
  }
  cr_assert_eq(batch->size(), n);
  std::vector<ClientResult> results = batch->wait_all(Millis(60000));
  cr_assert_eq(results.size(), n);
  for (size_t i = 0; i < n; ++i) {
    cr_assert(results[i].exited_with(static_cast<int>(i % 5)), "client %zu: %s", i,
              results[i].describe().c_str());
    ASSERT_STR_EQ(results[i].stdout_text.c_str(), ("client " + std::to_string(i) + "\n").c_str());
  }
  // One that hangs is killed at the deadline; the others still report.
  auto mixed = ClientBatch::create(o);
  cr_assert(mixed.has_value());
  cr_assert(mixed->start({"-c", "exit 0"}).has_value());
  cr_assert(mixed->start({"-c", "exec sleep 30"}).has_value());
  std::vector<ClientResult> r = mixed->wait_all(Millis(500));
  cr_assert(r[0].exited_with(0), "%s", r[0].describe().c_str());
  cr_assert(r[1].status.timed_out(), "%s", r[1].describe().c_str());
  auto third = mixed->start({"-c", "exit 0"});
  cr_assert(third && *third == 2);
}
