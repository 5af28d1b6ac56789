// The socket tutorial's wire format (reactor-tutorial(7)): reactord --tutorial-listen
// against reactorc --tutorial and against raw sockets, reactorc against lying servers
// (small Python ones written here), and the tutorial's own scripts (tests/tutorial/)
// against both programs.

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/client.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/process.h"
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

Tutorial serve_tutorial(std::vector<std::string> args) {
  ServeOptions o;
  o.prefix = "tutorial-test";
  o.files = {{"health.txt", kHealthText}};
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
  SpawnOptions spawn;
  spawn.argv = {"python3", dir.path("liar.py"), dir.path("header.json"), dir.path("body.bin")};
  spawn.output_dir = dir.path();
  spawn.name = "liar";
  std::string err;
  auto proc = Process::spawn(spawn, &err);
  cr_assert(proc.has_value(), "%s", err.c_str());
  for (int i = 0; i < 500; ++i) {
    std::string out = proc->stdout_text();
    if (!out.empty() && out.back() == '\n') {
      *port = std::stoi(out);
      return std::move(*proc);
    }
    usleep(10000);
  }
  cr_assert_fail("the lying server did not start: %s", proc->stderr_text().c_str());
  return std::move(*proc);
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

Test(tutorial, the_listener_keeps_every_rule_of_the_served_root) {
  Tutorial t = serve_tutorial({"--tutorial-file", "../outside.txt"});
  ClientResult r = run_client({"--tutorial", "-s", at(t.port), "-t", "3", "get", t.s.in_downloads("x")}, Millis(30000));
  cr_assert(!r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(t.s.server.wait_for_stderr("--tutorial-file: path \"../outside.txt\" refused", Millis(5000)), "%s",
            t.s.server.stderr_text().c_str());
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
