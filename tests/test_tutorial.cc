// The socket tutorial's wire format (reactor-tutorial(7)): reactord --tutorial-listen
// against reactorc --tutorial and against raw sockets, reactorc against lying servers
// (small Python ones written here), and the tutorial's own scripts (tests/tutorial/)
// against both programs.

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/address.h"
#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/client.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/process.h"
#include "tests/support/python_peer.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using namespace testsupport;

namespace {

constexpr uint64_t kSize = 3 * 1024 * 1024 + 17;  // "multi-MiB", not a multiple of any buffer

// reactord with a tutorial listener on an ephemeral loopback port, and that port.
struct Tutorial {
  Served s;
  int port = 0;
};

int tutorial_port(const Served& s) {
  cr_assert(s.server.wait_for_stderr("(the socket tutorial's format)", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  std::string log = s.server.stderr_text();
  size_t end = log.find(" (the socket tutorial's format)");
  size_t colon = log.rfind(':', end);
  return std::stoi(log.substr(colon + 1, end - colon - 1));
}

// FILES: more files in the root, beside health.txt. A --tutorial-file must exist at the
// start: unless FILES has it, it is created empty, for the test to fill.
Tutorial serve_tutorial(std::vector<std::string> args,
                        std::vector<std::pair<std::string, std::string>> files = {}) {
  ServeOptions o;
  o.prefix = "tutorial-test";
  o.files = {{"health.txt", kHealthText}};
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] != "--tutorial-file") continue;
    bool given = args[i + 1] == "health.txt";
    for (const auto& f : files) given = given || f.first == args[i + 1];
    if (!given) files.emplace_back(args[i + 1], "");
  }
  o.files.insert(o.files.end(), files.begin(), files.end());
  o.extra_args = {"--tutorial-listen", "127.0.0.1:0"};
  o.extra_args.insert(o.extra_args.end(), args.begin(), args.end());
  Tutorial t{serve(o), 0};
  t.port = tutorial_port(t.s);
  return t;
}

std::string at(int port) { return "127.0.0.1:" + std::to_string(port); }

// A blocking loopback socket with a receive timeout, for speaking the format by hand.
int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0, "%s", std::strerror(errno));
  return fd;
}

std::string recv_exactly(int fd, size_t n) {
  std::string out;
  for (int i = 0; i < 100000 && out.size() < n; ++i) {
    char buf[4096];
    ssize_t got = recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// The suite runs from the top of the source tree (scripts/run-tests.sh).
std::string source_dir() {
  char buf[4096];
  cr_assert(getcwd(buf, sizeof buf) != nullptr);
  return buf;
}

// One of the tutorial's own scripts (tests/tutorial/README.md).
std::string script(const std::string& name) { return source_dir() + "/tests/tutorial/" + name; }

// The key the tutorial's legitimacy scripts keep in their source.
const char kTutorialKey[] = "\u8001\u8872\u6d17\u5934\u7528\u98d8\u67d4";

// Whether 127.0.0.1:PORT is in LISTEN state (/proc/net/tcp), without connecting to it:
// the tutorial's servers accept exactly one connection.
bool listening_on(int port) {
  std::string table = read_file("/proc/net/tcp").value_or("");
  char wanted[32];
  snprintf(wanted, sizeof wanted, "0100007F:%04X", static_cast<unsigned>(port));
  for (size_t at = table.find(wanted); at != std::string::npos; at = table.find(wanted, at + 1)) {
    // local_address rem_address st: the state is two fields on.
    size_t st = table.find(' ', table.find(' ', at) + 1);
    if (st != std::string::npos && table.compare(st + 1, 2, "0A") == 0) return true;
  }
  return false;
}

// Runs a tutorial script with python3: unbuffered (a server is killed, not ended), no
// bytecode written into the source tree, UTF-8 whatever the locale.
Process start_script(const std::string& out_dir, const std::string& name, const std::vector<std::string>& args,
                     const std::string& cwd = {}, int stdin_fd = -1) {
  static int serial = 0;
  SpawnOptions spawn;
  spawn.argv = {"python3", script(name)};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.env = {{"PYTHONUNBUFFERED", "1"}, {"PYTHONDONTWRITEBYTECODE", "1"}, {"PYTHONIOENCODING", "utf-8"}};
  spawn.output_dir = out_dir;
  spawn.name = name.substr(0, name.find('.')) + "-" + std::to_string(++serial);
  spawn.working_dir = cwd;
  spawn.stdin_fd = stdin_fd;
  std::string err;
  auto proc = Process::spawn(spawn, &err);
  cr_assert(proc.has_value(), "%s", err.c_str());
  return std::move(*proc);
}

// A tutorial client run to its end (bounded): its exit, stdout and stderr.
struct ScriptRun {
  ExitStatus status;
  std::string out;
  std::string err;
  std::string describe() const { return status.describe() + "; stdout: " + out + "; stderr: " + err; }
};

ScriptRun run_script(const std::string& out_dir, const std::string& name, const std::vector<std::string>& args,
                     const std::string& cwd = {}, int stdin_fd = -1) {
  Process p = start_script(out_dir, name, args, cwd, stdin_fd);
  ExitStatus status = p.wait_exit(Millis(60000));
  if (status.timed_out()) p.kill_and_wait();
  return {status, p.stdout_text(), p.stderr_text()};
}

// A tutorial server on a free loopback port, once it listens; *PORT says which.
Process start_tutorial_server(const std::string& out_dir, const std::string& name,
                              const std::vector<std::string>& args, int* port) {
  *port = unused_loopback_port();
  std::vector<std::string> argv = {"127.0.0.1", std::to_string(*port)};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p = start_script(out_dir, name, argv);
  for (int i = 0; i < 1000 && !listening_on(*port); ++i) {
    cr_assert(p.running(), "%s did not start: %s", name.c_str(), p.stderr_text().c_str());
    usleep(10000);
  }
  cr_assert(listening_on(*port), "%s does not listen on %d", name.c_str(), *port);
  return p;
}

std::string make_dir_in(const Served& s, const std::string& rel) {
  std::string err;
  cr_assert(make_dirs(s.in_dir(rel), &err), "%s", err.c_str());
  return s.in_dir(rel);
}


std::string binary_path(const char* name) {
  std::string err;
  std::optional<std::string> path = find_binary(name, &err);
  cr_assert(path.has_value(), "%s", err.c_str());
  return *path;
}

// A Python server that sends HEADER (a JSON text) and BODY the tutorial's way, once.
Process lying_server(const TempDir& dir, const std::string& header, const std::string& body, int* port) {
  std::string code =
      "import socket, struct, sys\n"
      "sk = socket.socket(); sk.bind(('127.0.0.1', 0)); sk.listen()\n"
      "print(sk.getsockname()[1], flush=True)\n"
      "conn, _ = sk.accept()\n"
      "h = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()\n"
      "conn.sendall(struct.pack('i', len(h)) + h + b); conn.close()\n";
  cr_assert(write_file(dir.path("liar.py"), code));
  cr_assert(write_file(dir.path("header.json"), header));
  cr_assert(write_file(dir.path("body.bin"), body));
  return start_python_peer(dir.path(), dir.path("liar.py"), {dir.path("header.json"), dir.path("body.bin")}, port);
}

}  // namespace

TestSuite(tutorial, .timeout = 120);

Test(tutorial, reactorc_fetches_the_md5_variant_verified) {
  Tutorial t = serve_tutorial({"--tutorial-file", "films/big.bin", "--tutorial-md5"});
  std::string err;
  cr_assert(make_dirs(t.s.in_root("films"), &err), "%s", err.c_str());
  make_pattern(t.s.in_root("films/big.bin"), kSize, 11);
  RunOptions o;
  o.working_dir = t.s.downloads;
  ClientResult r = run_client({"--tutorial", "-s", at(t.port), "get"}, Millis(60000), o);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "md5 verified");
  cr_assert(files_equal(t.s.in_root("films/big.bin"), t.s.in_downloads("big.bin")));
  // The basic variant, into a LOCAL of the user's choosing.
  stop_cleanly(t.s);
}

Test(tutorial, the_basic_variant_says_there_was_nothing_to_check) {
  Tutorial t = serve_tutorial({"--tutorial-file", "a.bin"});
  make_pattern(t.s.in_root("a.bin"), kSize, 12);
  ClientResult r = run_client({"--tutorial", "-s", at(t.port), "get", t.s.in_downloads("mine.bin")}, Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "the server sent no MD5 to check");
  cr_assert(files_equal(t.s.in_root("a.bin"), t.s.in_downloads("mine.bin")));
  // A file of that name is not replaced without -f.
  r = run_client({"--tutorial", "-s", at(t.port), "get", t.s.in_downloads("mine.bin")}, Millis(60000));
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  stop_cleanly(t.s);
}

Test(tutorial, the_legitimacy_check_takes_the_right_key_only) {
  Tutorial t = serve_tutorial({"--tutorial-file", "a.txt", "--tutorial-auth"});
  cr_assert(write_file(t.s.in_root("a.txt"), "for legitimate clients\n"));
  ClientResult r = run_client({"--tutorial", "--tutorial-auth", "-k", t.s.secret.path, "-s", at(t.port), "get",
                               t.s.in_downloads("a.txt")},
                              Millis(30000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(read_file(t.s.in_downloads("a.txt")).value_or(""), "for legitimate clients\n");
  cr_assert(t.s.server.wait_for_stderr("(tutorial): a legitimate client", Millis(5000)));

  // Without answering: reactorc says what it is talking to.
  r = run_client({"--tutorial", "-s", at(t.port), "-t", "3", "get", t.s.in_downloads("b.txt")}, Millis(30000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "needs --tutorial-auth");
  cr_assert_not(exists(t.s.in_downloads("b.txt")));

  // A wrong answer (32 hex digits, a wrong key): logged, closed, nothing sent.
  int fd = connect_to(t.port);
  cr_assert_eq(recv_exactly(fd, 32).size(), 32u);
  const std::string wrong(32, 'a');
  cr_assert_eq(send(fd, wrong.data(), wrong.size(), MSG_NOSIGNAL), 32);
  ASSERT_STR_EQ(recv_exactly(fd, 1), "");
  close(fd);
  cr_assert(t.s.server.wait_for_stderr("not a legitimate client", Millis(5000)));
  assert_serves(t.s, t.s.downloads);
  stop_cleanly(t.s);
}

Test(tutorial, the_chat_answers_every_message) {
  Tutorial t = serve_tutorial({});
  int fd = connect_to(t.port);
  ASSERT_STR_EQ(recv_exactly(fd, 5), "hello");
  for (int i = 0; i < 3; ++i) {
    cr_assert_eq(send(fd, "hahaha", 6, MSG_NOSIGNAL), 6);
    ASSERT_STR_EQ(recv_exactly(fd, 5), "hello");
  }
  const std::string evil = "\x1b[31mred";
  cr_assert_eq(send(fd, evil.data(), evil.size(), MSG_NOSIGNAL), static_cast<ssize_t>(evil.size()));
  ASSERT_STR_EQ(recv_exactly(fd, 5), "hello");
  close(fd);
  cr_assert(t.s.server.wait_for_stderr("says \"hahaha\"", Millis(5000)));
  cr_assert(t.s.server.wait_for_stderr("says \"\\x1b[31mred\"", Millis(5000)), "%s", t.s.server.stderr_text().c_str());
  // reactorc asked to download from the chat says what it found.
  ClientResult r = run_client({"--tutorial", "-s", at(t.port), "get", t.s.in_downloads("x")}, Millis(30000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "the socketserver lesson's chat");
  stop_cleanly(t.s);
}

// Many tutorial clients at once, on one thread: the ThreadingTCPServer lesson without
// the threads.
Test(tutorial, many_clients_at_once) {
  Tutorial t = serve_tutorial({"--tutorial-file", "shared.bin", "--tutorial-md5"});
  make_pattern(t.s.in_root("shared.bin"), 512 * 1024 + 5, 13);
  std::string err;
  auto batch = ClientBatch::create({}, &err);
  cr_assert(batch.has_value(), "%s", err.c_str());
  const size_t n = 40;
  for (size_t i = 0; i < n; ++i) {
    auto index = batch->start({"--tutorial", "-s", at(t.port), "--progress=none", "get",
                               t.s.in_downloads("copy-" + std::to_string(i))},
                              &err);
    cr_assert(index.has_value(), "%s", err.c_str());
  }
  std::vector<ClientResult> results = batch->wait_all(Millis(100000));
  for (size_t i = 0; i < n; ++i) {
    cr_assert(results[i].exited_with(0), "client %zu: %s", i, results[i].describe().c_str());
    cr_assert(files_equal(t.s.in_root("shared.bin"), t.s.in_downloads("copy-" + std::to_string(i))));
  }
  stop_cleanly(t.s);
}

// At start-up (exit 4, with why) and again per client: the file may go after the start.
Test(tutorial, the_listener_keeps_every_rule_of_the_served_root) {
  ServeOptions o;
  o.prefix = "tutorial-test";
  Served s = serve(o);
  cr_assert(write_file(s.in_dir("outside.txt"), "not to be served\n"));
  cr_assert_eq(symlink("../outside.txt", s.in_root("link.txt").c_str()), 0);
  std::string err;
  cr_assert(make_dirs(s.in_root("dir"), &err), "%s", err.c_str());
  struct Case {
    const char* file;
    const char* says;
  };
  for (const Case& c : {Case{"../outside.txt", "path \"../outside.txt\" refused"}, Case{"link.txt", "leads outside the served root"},
                        Case{"dir", "is a directory"}, Case{"missing.bin", "missing.bin"}}) {
    ClientResult r = run_program({binary_path("reactord"), "-r", s.root, "-k", s.secret.path, "-l", "127.0.0.1:0",
                                  "--tutorial-listen", "127.0.0.1:0", "--tutorial-file", c.file},
                                 Millis(10000));
    cr_assert(r.exited_with(4), "%s: %s", c.file, r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, "--tutorial-file: ");
    ASSERT_CONTAINS(r.stderr_text, c.says);
  }
  stop_cleanly(s);

  Tutorial t = serve_tutorial({"--tutorial-file", "going.txt"}, {{"going.txt", "soon gone\n"}});
  cr_assert_eq(unlink(t.s.in_root("going.txt").c_str()), 0);
  ClientResult r = run_client({"--tutorial", "-s", at(t.port), "-t", "3", "get", t.s.in_downloads("x")}, Millis(30000));
  cr_assert(!r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(t.s.server.wait_for_stderr("--tutorial-file: ", Millis(5000)), "%s", t.s.server.stderr_text().c_str());
  cr_assert_not(exists(t.s.in_downloads("x")));
  assert_serves(t.s, t.s.downloads);
  stop_cleanly(t.s);
}

Test(tutorial, a_listener_off_loopback_needs_tutorial_insecure) {
  ServeOptions o;
  o.prefix = "tutorial-test";
  Served s = serve(o);
  ClientResult r = run_program({binary_path("reactord"), "-r", s.root, "-k", s.secret.path, "-l", "127.0.0.1:0",
                                "--tutorial-listen", "0.0.0.0:0"},
                               Millis(10000));
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "is not a loopback address");
  r = run_program({binary_path("reactord"), "--tutorial-md5"}, Millis(10000));
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "need --tutorial-listen");
  stop_cleanly(s);
}

// reactorc against servers that lie: a wrong MD5, a short body, a path for a name, a
// header length in the other byte order. Nothing is ever left under a final name.
Test(tutorial, reactorc_keeps_nothing_a_lying_server_sent) {
  std::string err;
  std::optional<TempDir> dir = TempDir::create("tutorial-liar", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  const std::string body(100000, 'x');
  struct Case {
    std::string header;
    std::string body;
    int status;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"{\"filename\": \"f.bin\", \"filesize\": 100000, \"filename_md5\": \"00000000000000000000000000000000\", "
       "\"buffer_size\": 1024}",
       body, 6, "MD5 mismatch"},
      {"{\"filename\": \"f.bin\", \"filesize\": 200000}", body, 8, "after 100000 of 200000 bytes"},
      {"{\"filename\": \"f.bin\", \"filesize\": 10}", body, 8, "more than the 10 bytes"},
      {"{\"filename\": \"..\", \"filesize\": 5}", "12345", 7, "no plain file name"},
      {"{\"name\": \"f.bin\"}", "", 8, "not the tutorial's dict"},
  };
  for (const Case& c : cases) {
    int port = 0;
    Process liar = lying_server(*dir, c.header, c.body, &port);
    RunOptions o;
    o.working_dir = dir->path();
    ClientResult r = run_client({"--tutorial", "-s", at(port), "-t", "5", "get"}, Millis(30000), o);
    cr_expect(r.exited_with(c.status), "%s: %s", c.header.c_str(), r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, c.says);
    cr_expect_not(exists(dir->path("f.bin")), "%s left f.bin", c.header.c_str());
    liar.kill_and_wait();
  }
  // A path for a name: only its last component is used, here in LOCAL's directory.
  int port = 0;
  Process liar = lying_server(*dir, "{\"filename\": \"../../etc/evil\", \"filesize\": 5}", "12345", &port);
  RunOptions o;
  o.working_dir = dir->path();
  ClientResult r = run_client({"--tutorial", "-s", at(port), "get"}, Millis(30000), o);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(read_file(dir->path("evil")).value_or(""), "12345");
  liar.kill_and_wait();
}

// ---- The tutorial's own scripts (tests/tutorial/), unchanged but for host, port, path ----

// Every download client of the tutorial against reactord: the plain one, the progress
// bar in all four of its versions, and the MD5 check. The file's name is not ASCII, as
// the tutorial's film's was not, so the dict carries it as JSON escapes or UTF-8.
Test(tutorial, the_tutorials_clients_download_from_reactord) {
  const std::string film = "films/\u79fb\u52a8\u8ff7\u5bab3.mp4";
  const std::string base = "\u79fb\u52a8\u8ff7\u5bab3.mp4";
  Tutorial t = serve_tutorial({"--tutorial-file", film});
  std::string err;
  cr_assert(make_dirs(t.s.in_root("films"), &err), "%s", err.c_str());
  make_pattern(t.s.in_root(film), kSize, 21);

  std::string dir = make_dir_in(t.s, "plain");
  ScriptRun r = run_script(dir, "client_download.py", {"127.0.0.1", std::to_string(t.port)}, dir);
  cr_assert(r.status.exited_with(0), "%s", r.describe().c_str());
  cr_assert(files_equal(t.s.in_root(film), path_join(dir, base)));

  for (const char* style : {"equals", "third", "plane", "colour"}) {
    dir = make_dir_in(t.s, std::string("bar-") + style);
    r = run_script(dir, "client_progress.py", {"127.0.0.1", std::to_string(t.port), style}, dir);
    cr_assert(r.status.exited_with(0), "%s: %s", style, r.describe().c_str());
    ASSERT_CONTAINS(r.out, "100%\n");
    ASSERT_CONTAINS(r.out, "\u672c\u6b21\u4e0b\u8f7d\u82b1\u8d39\u4e86");  // "this download took"
    cr_assert(files_equal(t.s.in_root(film), path_join(dir, base)), "%s", style);
  }
  stop_cleanly(t.s);

  Tutorial m = serve_tutorial({"--tutorial-file", "big.bin", "--tutorial-md5"});
  make_pattern(m.s.in_root("big.bin"), kSize, 22);
  dir = make_dir_in(m.s, "md5");
  r = run_script(dir, "client_md5.py", {"127.0.0.1", std::to_string(m.port)}, dir);
  cr_assert(r.status.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.out, "md5\u6821\u9a8c\u6b63\u786e--\u4e0b\u8f7d\u6210\u529f");  // "md5 check right -- downloaded"
  cr_assert(files_equal(m.s.in_root("big.bin"), path_join(dir, "big.bin")));
  cr_assert(m.s.server.wait_for_stderr("sending \"big.bin\"", Millis(5000)), "%s", m.s.server.stderr_text().c_str());
  stop_cleanly(m.s);
}

// reactorc against the tutorial's two servers: the plain one (nothing to check, and it
// says so) and the MD5 one (checked). Each serves one client and exits, as written.
Test(tutorial, reactorc_fetches_from_the_tutorials_servers) {
  ServeOptions o;
  o.prefix = "tutorial-test";
  Served s = serve(o);
  make_pattern(s.in_dir("a film.bin"), kSize, 23);

  int port = 0;
  Process server = start_tutorial_server(s.in_dir(""), "server_download.py", {s.in_dir("a film.bin")}, &port);
  RunOptions in_downloads;
  in_downloads.working_dir = s.downloads;
  ClientResult r = run_client({"--tutorial", "-s", at(port), "get"}, Millis(60000), in_downloads);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "the server sent no MD5 to check");
  cr_assert(files_equal(s.in_dir("a film.bin"), s.in_downloads("a film.bin")));
  ExitStatus st = server.wait_exit(Millis(10000));
  cr_assert(st.exited_with(0), "%s: %s", st.describe().c_str(), server.stderr_text().c_str());

  server = start_tutorial_server(s.in_dir(""), "server_md5.py", {s.in_dir("a film.bin")}, &port);
  r = run_client({"--tutorial", "-s", at(port), "get", s.in_downloads("checked.bin")}, Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "md5 verified");
  cr_assert(files_equal(s.in_dir("a film.bin"), s.in_downloads("checked.bin")));
  st = server.wait_exit(Millis(10000));
  cr_assert(st.exited_with(0), "%s: %s", st.describe().c_str(), server.stderr_text().c_str());
  stop_cleanly(s);
}

// The hmac lesson's scripts, with the key in their source: reactord holding that key in
// its secret file takes the tutorial's client, reactord holding another refuses it; the
// tutorial's server takes reactorc's answer under that key and not under another.
Test(tutorial, the_legitimacy_scripts_and_reactor_agree_on_the_key) {
  ServeOptions o;
  o.prefix = "tutorial-test";
  o.files = {{"health.txt", kHealthText}, {"a.txt", "for legitimate clients\n"}};
  o.secret_text = kTutorialKey;
  o.extra_args = {"--tutorial-listen", "127.0.0.1:0", "--tutorial-file", "a.txt", "--tutorial-auth"};
  Tutorial right{serve(o), 0};
  right.port = tutorial_port(right.s);
  ScriptRun r = run_script(right.s.in_dir(""), "legit_hmac_client.py", {"127.0.0.1", std::to_string(right.port)});
  cr_assert(r.status.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.out, "-----");
  cr_assert(right.s.server.wait_for_stderr("(tutorial): a legitimate client", Millis(5000)), "%s",
            right.s.server.stderr_text().c_str());

  Tutorial wrong = serve_tutorial({"--tutorial-file", "health.txt", "--tutorial-auth"});
  r = run_script(wrong.s.in_dir(""), "legit_hmac_client.py", {"127.0.0.1", std::to_string(wrong.port)});
  cr_assert(r.status.exited_with(0), "%s", r.describe().c_str());
  cr_assert(wrong.s.server.wait_for_stderr("not a legitimate client", Millis(5000)), "%s",
            wrong.s.server.stderr_text().c_str());
  assert_serves(wrong.s, wrong.s.downloads);

  // The tutorial's server prints its verdict and exits; it never sends a file, so
  // reactorc fails after the check either way, and leaves nothing behind.
  const std::string legitimate = "\u662f\u5408\u6cd5\u7684\u5ba2\u6237\u7aef";  // "a legitimate client"
  for (const SecretFile* key : {&right.s.secret, &wrong.s.secret}) {
    int port = 0;
    Process server = start_tutorial_server(right.s.in_dir(""), "legit_hmac_server.py", {}, &port);
    ClientResult c = run_client({"--tutorial", "--tutorial-auth", "-k", key->path, "-s", at(port), "-t", "5", "get",
                                 right.s.in_downloads("x")},
                                Millis(30000));
    cr_assert(!c.exited_with(0), "%s", c.describe().c_str());
    cr_assert_not(exists(right.s.in_downloads("x")));
    ExitStatus st = server.wait_exit(Millis(10000));
    cr_assert(st.exited_with(0), "%s: %s", st.describe().c_str(), server.stderr_text().c_str());
    if (key == &right.s.secret) {
      ASSERT_CONTAINS(server.stdout_text(), legitimate);
    } else {
      cr_assert(server.stdout_text().find(legitimate) == std::string::npos, "%s", server.stdout_text().c_str());
    }
  }
  stop_cleanly(wrong.s);
  stop_cleanly(right.s);
}

// The socketserver lesson's clients against reactord's chat, and many of them at once on
// one thread: the ThreadingTCPServer point without a thread per client.
Test(tutorial, the_socketserver_clients_chat_with_reactord) {
  Tutorial t = serve_tutorial({});
  const std::string port = std::to_string(t.port);
  const std::string out = t.s.in_dir("");

  ScriptRun r = run_script(out, "socketserver_client.py", {"127.0.0.1", port, "connect"});
  cr_assert(r.status.exited_with(0), "%s", r.describe().c_str());

  cr_assert(write_file(t.s.in_dir("line.txt"), "hi\n"));
  Fd line(open(t.s.in_dir("line.txt").c_str(), O_RDONLY | O_CLOEXEC));
  cr_assert(line.valid());
  r = run_script(out, "socketserver_client.py", {"127.0.0.1", port, "input"}, {}, line.get());
  cr_assert(r.status.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.out, "b'hello'\n>>>");
  cr_assert(t.s.server.wait_for_stderr("says \"hi\"", Millis(5000)), "%s", t.s.server.stderr_text().c_str());

  const size_t clients = 30;
  const int rounds = 20;
  std::vector<Process> chats;
  for (size_t i = 0; i < clients; ++i) {
    chats.push_back(start_script(out, "socketserver_chat_client.py", {"127.0.0.1", port, std::to_string(rounds)}));
  }
  cr_assert(wait_all(chats, Millis(60000)), "the chat clients did not finish");
  std::string expected;
  for (int i = 0; i < rounds; ++i) expected += "b'hello'\n";
  for (Process& chat : chats) {
    ExitStatus st = chat.wait_exit(Millis(0));
    cr_assert(st.exited_with(0), "%s: %s", st.describe().c_str(), chat.stderr_text().c_str());
    ASSERT_STR_EQ(chat.stdout_text(), expected);
  }
  assert_serves(t.s, t.s.downloads);
  stop_cleanly(t.s);
}

// Asked to download from the socketserver lesson's servers, reactorc says what it found.
Test(tutorial, reactorc_recognises_the_socketserver_servers) {
  ServeOptions o;
  o.prefix = "tutorial-test";
  Served s = serve(o);
  for (const char* variant : {"dictation", "hello", "loop"}) {
    int port = 0;
    Process server = start_tutorial_server(s.in_dir(""), "socketserver_server.py", {variant}, &port);
    ClientResult r = run_client({"--tutorial", "-s", at(port), "-t", "5", "get", s.in_downloads("x")}, Millis(30000));
    cr_assert(r.exited_with(8), "%s: %s", variant, r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, "the socketserver lesson's chat");
    cr_assert_not(exists(s.in_downloads("x")));
    server.kill_and_wait();
  }
  stop_cleanly(s);
}

// Many copies of the tutorial's MD5 client at once, each in a directory of its own (it
// writes under the server's name), all verified.
Test(tutorial, many_tutorial_md5_clients_at_once) {
  Tutorial t = serve_tutorial({"--tutorial-file", "shared.bin", "--tutorial-md5"});
  make_pattern(t.s.in_root("shared.bin"), 1024 * 1024 + 3, 24);
  const size_t n = 24;
  std::vector<Process> clients;
  for (size_t i = 0; i < n; ++i) {
    std::string dir = make_dir_in(t.s, "c" + std::to_string(i));
    clients.push_back(start_script(dir, "client_md5.py", {"127.0.0.1", std::to_string(t.port)}, dir));
  }
  cr_assert(wait_all(clients, Millis(100000)), "the tutorial's clients did not finish");
  for (size_t i = 0; i < n; ++i) {
    ExitStatus st = clients[i].wait_exit(Millis(0));
    cr_assert(st.exited_with(0), "client %zu: %s: %s", i, st.describe().c_str(), clients[i].stderr_text().c_str());
    ASSERT_CONTAINS(clients[i].stdout_text(), "md5\u6821\u9a8c\u6b63\u786e");
    cr_assert(files_equal(t.s.in_root("shared.bin"), t.s.in_dir("c" + std::to_string(i) + "/shared.bin")));
  }
  stop_cleanly(t.s);
}

// Clients that send garbage: a megabyte for an answer, bytes that are no UTF-8, a client
// that talks while the file is sent. Each is closed or ignored, logged, and the next
// client (and the main protocol) is served.
Test(tutorial, garbage_from_clients_harms_no_one_else) {
  Tutorial t = serve_tutorial({"--tutorial-file", "f.bin", "--tutorial-auth"});
  make_pattern(t.s.in_root("f.bin"), kSize, 25);
  const std::string megabyte(1024 * 1024, '\xff');
  int fd = connect_to(t.port);
  cr_assert_eq(recv_exactly(fd, 32).size(), 32u);
  send(fd, megabyte.data(), megabyte.size(), MSG_NOSIGNAL);  // may stop short: the server closes
  ASSERT_STR_EQ(recv_exactly(fd, 1), "");
  close(fd);
  fd = connect_to(t.port);
  cr_assert_eq(recv_exactly(fd, 32).size(), 32u);
  const std::string binary = std::string("\x00\x01\xc3\x28", 4) + std::string(28, '\x80');
  cr_assert_eq(send(fd, binary.data(), binary.size(), MSG_NOSIGNAL), 32);
  ASSERT_STR_EQ(recv_exactly(fd, 1), "");
  close(fd);
  cr_assert(t.s.server.wait_for_stderr("not a legitimate client", Millis(5000)), "%s",
            t.s.server.stderr_text().c_str());

  Tutorial d = serve_tutorial({"--tutorial-file", "f.bin"});
  make_pattern(d.s.in_root("f.bin"), kSize, 26);
  fd = connect_to(d.port);
  const std::string chatter(64 * 1024, 'g');
  cr_assert_eq(send(fd, chatter.data(), chatter.size(), MSG_NOSIGNAL), static_cast<ssize_t>(chatter.size()));
  std::string got = recv_exactly(fd, kSize + 4 + 200);
  cr_assert_geq(got.size(), kSize, "got %zu bytes", got.size());
  close(fd);

  for (Tutorial* each : {&t, &d}) {
    std::vector<std::string> args = {"--tutorial", "-s", at(each->port), "get", each->s.in_downloads("ok.bin")};
    if (each == &t) args.insert(args.begin() + 1, {"--tutorial-auth", "-k", each->s.secret.path});
    ClientResult r = run_client(args, Millis(60000));
    cr_assert(r.exited_with(0), "%s", r.describe().c_str());
    cr_assert(files_equal(each->s.in_root("f.bin"), each->s.in_downloads("ok.bin")));
    assert_serves(each->s, each->s.downloads);
  }
  stop_cleanly(d.s);
  stop_cleanly(t.s);
}
