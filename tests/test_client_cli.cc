// Integration tests of reactorc's command line as scripts see it: exit codes, what goes to
// stdout and stderr, option parsing, the environment, and what is left on disk.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/address.h"
#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/black_hole.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/fd.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/process.h"
#include "tests/support/proxy.h"
#include "tests/support/python_peer.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

namespace {

const std::string kFileText = "the served file\n";

// root/file.txt holds kFileText.
ServeOptions options() {
  ServeOptions o;
  o.prefix = "client-cli-test";
  o.files = {{"file.txt", kFileText}};
  return o;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

void assert_no_debris(const std::string& dir) {
  auto names = list_dir(dir);
  cr_assert(names.has_value());
  for (const auto& name : *names) {
    cr_assert(name.find(".part") == std::string::npos, "debris in %s: %s", dir.c_str(), name.c_str());
  }
}

}  // namespace

TestSuite(client_cli, .timeout = 120);

Test(client_cli, usage_errors_exit_2_with_the_program_name) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"--bogus", "ping"},
      {"-Z", "ping"},
      {"ping", "extra"},
      {"get"},
      {"-r", "ls"},  // -r is get's and put's
      {"-r", "stat", "x"},
      {"stat"},
      {"send"},
      {"send", "one", "two"},
      {"-t"},
      {"-t", "soon", "ping"},
      {"-t", "0", "ping"},
      {"--progress=sparkles", "ping"},
      {"--retry", "many", "get", "x"},
      {"--retry", "-1", "get", "x"},
      {"--retry", "101", "get", "x"},
      {"--retry", "1", "ping"},
      {"--backend", "kqueue", "ping"},
      // Malformed server addresses are caught before any connection is tried.
      // (A host alone means port 9000: see a_server_without_a_port_means_port_9000.)
      {"-s", "127.0.0.1:", "ping"},
      {"-s", "[::1", "ping"},
      {"-s", "127.0.0.1:0", "ping"},
      {"-s", "127.0.0.1:65536", "ping"},
      {"-s", "::1:9000", "ping"},
      // So are operands the protocol cannot carry.
      {"send", std::string(4097, 'm')},
      {"get", std::string(4097, 'p')},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    ClientResult r = run_client(args, Millis(10000));
    cr_assert(r.exited_with(2), "reactorc %s: %s", shown.c_str(), r.describe().c_str());
    cr_assert(starts_with(r.stderr_text, "reactorc: "), "reactorc %s: stderr: %s", shown.c_str(),
              r.stderr_text.c_str());
    cr_assert(r.stdout_text.empty(), "reactorc %s: stdout: %s", shown.c_str(), r.stdout_text.c_str());
  }
  ClientResult none = run_client({}, Millis(10000));
  ASSERT_CONTAINS(none.stderr_text, "no command");
  ClientResult unknown = run_client({"frobnicate"}, Millis(10000));
  ASSERT_CONTAINS(unknown.stderr_text, "frobnicate");
  ClientResult bad = run_client({"--bogus", "ping"}, Millis(10000));
  ASSERT_CONTAINS(bad.stderr_text, "--bogus");

  RunOptions env;
  env.env = {{"REACTOR_SERVER", "host:not-a-port"}};
  ClientResult from_env = run_client({"ping"}, Millis(10000), env);
  cr_assert(from_env.exited_with(2), "%s", from_env.describe().c_str());
  ASSERT_CONTAINS(from_env.stderr_text, "REACTOR_SERVER");

  ClientResult help = run_client({"--help"}, Millis(10000));
  cr_assert(help.exited_with(0), "%s", help.describe().c_str());
  cr_assert(starts_with(help.stdout_text, "usage: reactorc"), "%s", help.stdout_text.c_str());
  ClientResult version = run_client({"-V"}, Millis(10000));
  cr_assert(version.exited_with(0), "%s", version.describe().c_str());
  cr_assert(starts_with(version.stdout_text, "reactorc "), "%s", version.stdout_text.c_str());
}

Test(client_cli, connection_refused_exits_3) {
  TempDir dir = *TempDir::create("client-cli-test");
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  std::string address = refused_address();
  ClientResult r = run_client({"-s", address, "-k", secret->path, "ping"}, Millis(30000));
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  cr_assert(starts_with(r.stderr_text, "reactorc: "), "%s", r.stderr_text.c_str());
  ASSERT_CONTAINS(r.stderr_text, "refused");
  ASSERT_CONTAINS(r.stderr_text, address);
  // A get that cannot connect leaves nothing behind.
  r = run_client({"-s", address, "-k", secret->path, "get", "x.bin", dir.path("x.bin")}, Millis(30000));
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  cr_assert_not(read_file(dir.path("x.bin")).has_value());
  assert_no_debris(dir.path());
}

// A server that never answers the SYN: the connect gives up after -t and it is "cannot
// connect" (3), saying it timed out.
Test(client_cli, connect_timeout_exits_3) {
  TempDir dir = *TempDir::create("client-cli-test");
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  BlackHole hole;
  std::string err;
  cr_assert(BlackHole::open(&hole, &err), "%s", err.c_str());
  ClientResult r = run_client({"-s", hole.address(), "-k", secret->path, "-t", "0.5", "ping"}, Millis(30000));
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "connect " + hole.address() + ": timed out after 500 ms");
}

// In a network namespace of its own, loopback is down: connecting to 127.0.0.1 fails at
// once with "Network is unreachable", and that too is "cannot connect" (3). Needs the
// right to create a namespace (root, as CI runs); skipped, and said so, without it.
Test(client_cli, unreachable_network_exits_3) {
  TempDir dir = *TempDir::create("client-cli-test");
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  ClientResult probe = run_program({"unshare", "-n", "true"}, Millis(10000));
  if (!probe.exited_with(0)) cr_skip_test("cannot create a network namespace here: %s", probe.describe().c_str());
  std::string reactorc = *find_binary("reactorc");
  ClientResult r = run_program({"unshare", "-n", reactorc, "-s", "127.0.0.1:9000", "-k", secret->path, "ping"},
                               Millis(30000));
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "Network is unreachable");
}

Test(client_cli, secret_problems_exit_9) {
  Served s = serve(options());
  // Missing.
  std::string missing = s.dir.path("no-such-secret");
  ClientResult r = run_client({"-s", s.server.address(), "-k", missing, "ping"}, Millis(30000));
  cr_assert(r.exited_with(9), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, missing);
  // The default location, $XDG_CONFIG_HOME/reactor/secret: missing, then present.
  std::string xdg = s.dir.path("xdg");
  cr_assert(make_dirs(xdg + "/reactor"));
  RunOptions o;
  o.env = {{"XDG_CONFIG_HOME", xdg}};
  r = run_client({"-s", s.server.address(), "ping"}, Millis(30000), o);
  cr_assert(r.exited_with(9), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, xdg + "/reactor/secret");
  cr_assert(write_secret(xdg + "/reactor", s.secret.key + "\n").has_value());
  r = run_client({"-s", s.server.address(), "ping"}, Millis(30000), o);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  // A directory is not a secret file.
  r = run_client({"-s", s.server.address(), "-k", xdg, "ping"}, Millis(30000));
  cr_assert(r.exited_with(9), "%s", r.describe().c_str());
  // Nor is a symbolic link to one: whoever can change the link chooses the secret.
  std::string link = s.dir.path("secret-link");
  cr_assert_eq(symlink(s.secret.path.c_str(), link.c_str()), 0);
  r = run_client({"-s", s.server.address(), "-k", link, "ping"}, Millis(30000));
  cr_assert(r.exited_with(9), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "is a symbolic link");
  // Nor one that belongs to another user (possible to arrange only as root).
  if (geteuid() == 0) {
    auto other = write_secret(s.dir.path(""), s.secret.key + "\n", nullptr, "others-secret");
    cr_assert(other.has_value());
    cr_assert_eq(chown(other->path.c_str(), 65534, 65534), 0);
    r = run_client({"-s", s.server.address(), "-k", other->path, "ping"}, Millis(30000));
    cr_assert(r.exited_with(9), "%s", r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, "belongs to uid 65534");
  }
  stop_cleanly(s);
}

Test(client_cli, remote_refusal_exits_5) {
  Served s = serve(options());
  ClientResult r = s.server.run_client({"get", "missing.txt", s.in_downloads("missing.txt")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  cr_assert(starts_with(r.stderr_text, "reactorc: "), "%s", r.stderr_text.c_str());
  ASSERT_CONTAINS(r.stderr_text, "not_found");
  ASSERT_CONTAINS(r.stderr_text, "missing.txt");
  cr_assert_not(read_file(s.in_downloads("missing.txt")).has_value());
  assert_no_debris(s.downloads);
  r = s.server.run_client({"stat", "missing.txt"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  r = s.server.run_client({"ls", "missing"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  stop_cleanly(s);
}

Test(client_cli, existing_local_file_needs_force) {
  Served s = serve(options());
  std::string local = s.in_downloads("file.txt");
  cr_assert(write_file(local, "precious local data\n"));
  ClientResult r = s.server.run_client({"get", "file.txt", local});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "--force");
  ASSERT_STR_EQ(*read_file(local), "precious local data\n");
  assert_no_debris(s.downloads);

  for (const char* force : {"-f", "--force"}) {
    cr_assert(write_file(local, "precious local data\n"));
    r = s.server.run_client({force, "get", "file.txt", local});
    cr_assert(r.exited_with(0), "%s: %s", force, r.describe().c_str());
    ASSERT_STR_EQ(*read_file(local), kFileText);
  }
  auto names = list_dir(s.downloads);
  cr_assert(names.has_value() && names->size() == 1, "debris left next to the file");
  // LOCAL a directory: the file goes inside it. --force never replaces a directory there.
  cr_assert(make_dirs(s.in_downloads("d/file.txt")));
  r = s.server.run_client({"-f", "get", "file.txt", s.in_downloads("d")});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "is a directory");
  struct stat st {};
  cr_assert(stat(s.in_downloads("d/file.txt").c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  assert_no_debris(s.in_downloads("d"));
  stop_cleanly(s);
}

// LOCAL "-" is standard output: the file, and nothing else, on stdout.
Test(client_cli, local_dash_is_standard_output) {
  Served s = serve(options());
  ClientResult r = s.server.run_client({"get", "file.txt", "-"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(r.stdout_text, kFileText);
  ASSERT_CONTAINS(r.stderr_text, "standard output");
  assert_no_debris(s.downloads);
  stop_cleanly(s);
}

// A character device is written through, with or without -f, never replaced by a file
// (the issue: `reactorc -f get x /dev/stdout` as root replaced the device). A private
// copy of /dev/null and /dev/full, so that a regression cannot break the machine's own.
Test(client_cli, a_character_device_is_written_through_not_replaced) {
  Served s = serve(options());
  std::string null_copy = s.in_downloads("null");
  std::string full_copy = s.in_downloads("full");
  if (mknod(null_copy.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0 ||
      mknod(full_copy.c_str(), S_IFCHR | 0666, makedev(1, 7)) != 0) {
    cr_skip_test("mknod: %s (needs CAP_MKNOD)", std::strerror(errno));
  }
  for (const char* force : {"", "-f"}) {
    std::vector<std::string> args;
    if (*force != '\0') args.push_back(force);
    args.insert(args.end(), {"get", "file.txt", null_copy});
    ClientResult r = s.server.run_client(args);
    cr_assert(r.exited_with(0), "%s: %s", force, r.describe().c_str());
    struct stat st {};
    cr_assert(lstat(null_copy.c_str(), &st) == 0 && S_ISCHR(st.st_mode), "%s: the device was replaced", force);
  }
  ClientResult r = s.server.run_client({"-f", "get", "file.txt", full_copy});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "No space left on device");
  struct stat st {};
  cr_assert(lstat(full_copy.c_str(), &st) == 0 && S_ISCHR(st.st_mode));
  stop_cleanly(s);
}

Test(client_cli, a_fifo_is_written_through) {
  Served s = serve(options());
  std::string fifo = s.in_downloads("fifo");
  cr_assert_eq(mkfifo(fifo.c_str(), 0600), 0, "mkfifo: %s", std::strerror(errno));
  // The reader: cat into a file, started first so that reactorc's open does not wait.
  std::string copy = s.in_downloads("copy");
  RunOptions cat;
  cat.binary = "/bin/sh";
  std::optional<ClientBatch> readers = ClientBatch::create(cat);
  cr_assert(readers.has_value());
  std::optional<size_t> reader = readers->start({"-c", "exec cat < '" + fifo + "' > '" + copy + "'"});
  cr_assert(reader.has_value());
  ClientResult r = s.server.run_client({"get", "file.txt", fifo});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::vector<ClientResult> done = readers->wait_all(Millis(10000));
  cr_assert(done.at(*reader).exited_with(0), "%s", done.at(*reader).describe().c_str());
  ASSERT_STR_EQ(*read_file(copy), kFileText);
  struct stat st {};
  cr_assert(lstat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
  stop_cleanly(s);
}

// A symbolic link is never replaced. Without -f it is an existing name; with -f the link
// is followed to its regular file, which is replaced while the link stays.
Test(client_cli, a_symbolic_link_is_followed_with_force_never_replaced) {
  Served s = serve(options());
  std::string target = s.in_downloads("target.txt");
  std::string link = s.in_downloads("link.txt");
  cr_assert(write_file(target, "precious local data\n"));
  cr_assert_eq(symlink("target.txt", link.c_str()), 0);
  ClientResult r = s.server.run_client({"get", "file.txt", link});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "--force");
  ASSERT_STR_EQ(*read_file(target), "precious local data\n");

  r = s.server.run_client({"-f", "get", "file.txt", link});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  struct stat st {};
  cr_assert(lstat(link.c_str(), &st) == 0 && S_ISLNK(st.st_mode), "the link was replaced");
  ASSERT_STR_EQ(*read_file(target), kFileText);

  std::string dangling = s.in_downloads("dangling.txt");
  cr_assert_eq(symlink("nowhere.txt", dangling.c_str()), 0);
  r = s.server.run_client({"-f", "get", "file.txt", dangling});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "symbolic link to nothing");
  cr_assert(lstat(dangling.c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  cr_assert(lstat(s.in_downloads("nowhere.txt").c_str(), &st) != 0, "the dangling link's target was created");

  // A link into a directory another user owns (a link planted in /tmp aiming root's
  // download at /etc): refused. Needs root to give the directory away.
  if (geteuid() == 0) {
    std::string theirs = s.in_downloads("theirs");
    cr_assert(make_dirs(theirs + "/x"));
    cr_assert(write_file(theirs + "/victim.txt", "theirs\n"));
    cr_assert_eq(chown(theirs.c_str(), 65534, 65534), 0);
    std::string planted = s.in_downloads("planted.txt");
    cr_assert_eq(symlink((theirs + "/victim.txt").c_str(), planted.c_str()), 0);
    r = s.server.run_client({"-f", "get", "file.txt", planted});
    cr_assert(r.exited_with(7), "%s", r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, "another user owns");
    ASSERT_STR_EQ(*read_file(theirs + "/victim.txt"), "theirs\n");
  }
  stop_cleanly(s);
}

Test(client_cli, local_path_in_a_missing_directory_exits_7) {
  Served s = serve(options());
  std::string local = s.in_downloads("no/such/dir/file.txt");
  ClientResult r = s.server.run_client({"get", "file.txt", local});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  cr_assert(starts_with(r.stderr_text, "reactorc: "), "%s", r.stderr_text.c_str());
  ASSERT_CONTAINS(r.stderr_text, s.in_downloads("no/such/dir"));
  auto names = list_dir(s.downloads);
  cr_assert(names.has_value() && names->empty());
  stop_cleanly(s);
}

Test(client_cli, no_escape_sequences_when_stderr_is_not_a_terminal) {
  Served s = serve(options());
  cr_assert(write_pattern_file(s.in_root("big.bin"), 3u << 20, 4));
  const std::vector<std::vector<std::string>> styles = {
      {"--progress=none"}, {}, {"--progress", "rainbow"}, {"--progress=plane"}, {"--progress=bar"}};
  int n = 0;
  for (const auto& style : styles) {
    std::string local = s.in_downloads("big-" + std::to_string(n++));
    std::vector<std::string> args = {"-s", s.server.address(), "-k", s.secret.path};
    args.insert(args.end(), style.begin(), style.end());
    args.insert(args.end(), {"get", "big.bin", local});
    RunOptions o;
    o.env = {{"TERM", "xterm-256color"}};  // a terminal that could take colour, were it one
    ClientResult r = run_client(args, Millis(30000), o);
    cr_assert(r.exited_with(0), "%s", r.describe().c_str());
    cr_assert(r.stderr_text.find('\x1b') == std::string::npos, "ESC on stderr: %s", r.stderr_text.c_str());
    cr_assert(r.stderr_text.find('\r') == std::string::npos, "CR on stderr: %s", r.stderr_text.c_str());
    std::vector<std::string> lines = lines_of(r.stderr_text);
    cr_assert_eq(lines.size(), 1u, "expected one summary line, got: %s", r.stderr_text.c_str());
    ASSERT_CONTAINS(lines[0], "sha256 verified");
    cr_assert_eq(r.stderr_text.back(), '\n');
    cr_assert(r.stdout_text.empty(), "%s", r.stdout_text.c_str());
    std::string why;
    cr_assert(files_equal(s.in_root("big.bin"), local, &why), "%s", why.c_str());
  }
  // -q: nothing at all on success.
  ClientResult q = s.server.run_client({"-q", "get", "big.bin", s.in_downloads("quiet")});
  cr_assert(q.exited_with(0), "%s", q.describe().c_str());
  cr_assert(q.stderr_text.empty() && q.stdout_text.empty(), "%s", q.describe().c_str());
  stop_cleanly(s);
}

Test(client_cli, server_from_the_environment) {
  Served s = serve(options());
  RunOptions o;
  o.env = {{"REACTOR_SERVER", s.server.address()}};
  ClientResult r = run_client({"-k", s.secret.path, "ping"}, Millis(30000), o);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stdout_text, "pong from " + s.server.address());
  // Used when -s is absent, and only then.
  o.env = {{"REACTOR_SERVER", refused_address()}};
  r = run_client({"-k", s.secret.path, "ping"}, Millis(30000), o);
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  r = run_client({"-s", s.server.address(), "-k", s.secret.path, "ping"}, Millis(30000), o);
  cr_assert(r.exited_with(0), "-s must win over REACTOR_SERVER: %s", r.describe().c_str());
  r = run_client({"--server=" + s.server.address(), "-k", s.secret.path, "ping"}, Millis(30000), o);
  cr_assert(r.exited_with(0), "--server= must win over REACTOR_SERVER: %s", r.describe().c_str());
  stop_cleanly(s);
}

Test(client_cli, double_dash_ends_the_options) {
  Served s = serve(options());
  ClientResult r = s.server.run_client({"send", "--", "-dash-message"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stdout_text, "(13 bytes)");
  cr_assert(s.server.wait_for_stderr("says: -dash-message", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  // Without "--" it is an (unknown) option.
  r = s.server.run_client({"send", "-dash-message"});
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
  // A remote file whose name starts with a dash.
  cr_assert(write_file(s.in_root("-v"), "dash file\n"));
  r = s.server.run_client({"get", "--", "-v", s.in_downloads("dash.txt")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(*read_file(s.in_downloads("dash.txt")), "dash file\n");
  stop_cleanly(s);
}

Test(client_cli, ipv6_server) {
  ServeOptions o = options();
  o.listen = {"[::1]:0"};
  Served s = serve(o);
  cr_assert(s.server.address().rfind("[::1]:", 0) == 0, "%s", s.server.address().c_str());
  ClientResult r = s.server.run_client({"get", "file.txt", s.in_downloads("v6.txt")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(*read_file(s.in_downloads("v6.txt")), kFileText);
  stop_cleanly(s);
}

Test(client_cli, silent_server_times_out_with_exit_8) {
  TempDir dir = *TempDir::create("client-cli-test");
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  // A listening socket that never accepts: the connect succeeds, then nothing comes.
  auto addr = parse_address("127.0.0.1:0");
  Fd l(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  cr_assert_eq(bind(l.get(), addr->get(), addr->length), 0);
  cr_assert_eq(listen(l.get(), 4), 0);
  std::string address = local_address(l.get())->to_string();
  ClientResult r = run_client({"-s", address, "-k", secret->path, "-t", "1", "ping"}, Millis(30000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "sent nothing for 1.0 s");
}

// Interrupted, a download keeps only its partial file and note, for get -c; nothing
// under the final name.
Test(client_cli, interrupted_download_exits_130_and_keeps_only_the_partial) {
  Served s = serve(options());
  std::string err;
  cr_assert(make_sparse_file(s.in_root("huge.bin"), uint64_t{1} << 30, &err), "%s", err.c_str());
  FaultSpec f;
  f.max_chunk = 4096;  // slow enough that the signal lands mid-transfer
  auto proxy = Proxy::start(s.server.address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  auto binary = find_binary("reactorc", &err);
  cr_assert(binary.has_value(), "%s", err.c_str());
  for (int sig : {SIGINT, SIGTERM}) {
    SpawnOptions o;
    o.argv = {*binary, "-s", proxy->address(), "-k", s.secret.path, "--progress=none", "get",
              "huge.bin", s.in_downloads("huge.bin")};
    o.output_dir = s.dir.path();
    auto client = Process::spawn(o, &err);
    cr_assert(client.has_value(), "%s", err.c_str());
    // This download's own partial holding a MiB: the proxy's byte count alone can still
    // be rising with the previous round's connection, which the server keeps feeding
    // until the proxy sees it closed, and a signal then lands before this one began.
    const std::string partial = s.in_downloads(".huge.bin.reactor-partial");
    cr_assert(wait_until([&] { return file_size(partial).value_or(0) > (1u << 20); }, Millis(30000)),
              "the download did not start: %s", client->stderr_text().c_str());
    cr_assert(client->send_signal(sig));
    ExitStatus st = client->wait_exit(Millis(30000));
    cr_assert(st.exited_with(130), "signal %d: %s; stderr: %s", sig, st.describe().c_str(),
              client->stderr_text().c_str());
    ASSERT_CONTAINS(client->stderr_text(), "interrupted");
    ASSERT_CONTAINS(client->stderr_text(), "the partial download is kept: reactorc get -c resumes it");
    auto names = list_dir(s.downloads);
    cr_assert(names.has_value());
    std::sort(names->begin(), names->end());
    cr_assert(*names == (std::vector<std::string>{".huge.bin.reactor-partial", ".huge.bin.reactor-partial.json"}),
              "%zu names in the download directory", names->size());
    for (const std::string& name : *names) unlink(s.in_downloads(name).c_str());
  }
  stop_cleanly(s);
}

Test(client_cli, missing_feature_exits_5_before_any_request) {
  TempDir dir = *TempDir::create("client-cli-test");
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  auto addr = parse_address("127.0.0.1:0");
  Fd l(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  cr_assert_eq(bind(l.get(), addr->get(), addr->length), 0);
  cr_assert_eq(listen(l.get(), 4), 0);
  std::string address = local_address(l.get())->to_string();
  std::string err;
  auto binary = find_binary("reactorc", &err);
  cr_assert(binary.has_value(), "%s", err.c_str());
  SpawnOptions o;
  o.argv = {*binary, "--plain", "-s", address, "-k", secret->path, "ls"};
  o.output_dir = dir.path();
  auto client = Process::spawn(o, &err);
  cr_assert(client.has_value(), "%s", err.c_str());
  // An honest server that offers downloads only.
  pollfd pfd{l.get(), POLLIN, 0};
  cr_assert_eq(poll(&pfd, 1, 10000), 1, "reactorc did not connect");
  RawClient server{Fd(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC))};
  std::string sn = random_bytes(kNonceBytes);
  cr_assert(server.send_frame("{\"type\":\"hello\",\"proto\":1,\"server\":\"getonly/1\",\"features\":[\"get\"],"
                              "\"nonce\":\"" + hex_encode(sn) + "\"}"));
  ReadResult auth = server.read_frame(Millis(10000));
  cr_assert(auth.ok() && auth.frame.type() == "auth", "%s", auth.describe().c_str());
  auto cn = hex_decode(auth.frame.string_field("nonce").value_or(""));
  cr_assert(cn.has_value());
  cr_assert(server.send_frame("{\"type\":\"auth_ok\",\"proto\":1,\"mac\":\"" +
                              server_mac_hex(secret->key, sn, *cn) + "\"}"));
  std::string sent;
  cr_assert(server.read_until_closed(Millis(10000), &sent), "reactorc did not hang up");
  cr_assert(sent.empty(), "reactorc sent a request the server does not offer");
  ExitStatus st = client->wait_exit(Millis(10000));
  cr_assert(st.exited_with(5), "%s; stderr: %s", st.describe().c_str(), client->stderr_text().c_str());
  ASSERT_CONTAINS(client->stderr_text(), "does not offer");
}

// Unix conventions a scp/curl user expects (issue 12's first items).
Test(client_cli, output_that_cannot_be_written_is_an_error) {
  Served s = serve(options());
  auto binary = find_binary("reactorc");
  cr_assert(binary.has_value());
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" >/dev/full", *binary};
  for (const std::string& a : s.server.client_args({"ls"})) argv.push_back(a);
  ClientResult r = run_program(argv, Millis(30000));
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "write standard output: No space left on device");
  stop_cleanly(s);
}

// A peer of another kind, in Python, on an ephemeral loopback port: "http" is Python's
// own http.server, which waits for the client to speak; anything else is a banner that
// the peer sends at once, as SSH, SMTP and POP3 servers do.
Process wrong_peer(const TempDir& dir, const std::string& kind, int* port) {
  std::string code =
      "import socket, sys, time, http.server\n"
      "if sys.argv[1] == 'http':\n"
      "    s = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n"
      "    print(s.server_address[1], flush=True); s.serve_forever()\n"
      "s = socket.create_server(('127.0.0.1', 0)); print(s.getsockname()[1], flush=True)\n"
      "while True:\n"
      "    c, _ = s.accept(); c.sendall(sys.argv[1].encode() + b'\\r\\n'); time.sleep(0.2)\n";
  cr_assert(write_file(dir.path("peer.py"), code));
  return start_python_peer(dir.path(), dir.path("peer.py"), {kind}, port);
}

// Pointed at the wrong port, reactorc says at once what is there (status 8), in TLS mode
// and in plain mode; a silent peer in plain mode is hinted at when the timeout ends.
Test(client_cli, the_wrong_peer_is_named) {
  Served s = serve(options());
  struct Case {
    const char* peer;
    bool plain;
    const char* says;
  };
  const Case cases[] = {
      {"http", false, "speaks HTTP, not TLS"},
      {"http", true, "not even a greeting: is this a reactor server?"},
      {"SSH-2.0-OpenSSH_9.2p1", false, "speaks SSH, not TLS"},
      {"SSH-2.0-OpenSSH_9.2p1", true, "speaks SSH, not the reactor protocol"},
      {"220 mail.example.org ESMTP", true, "speaks SMTP or FTP, not the reactor protocol"},
      {"+OK POP3 ready", true, "speaks POP3 or IMAP, not the reactor protocol"},
  };
  for (const Case& c : cases) {
    int port = 0;
    Process peer = wrong_peer(s.dir, c.peer, &port);
    std::vector<std::string> args = {"-s", "127.0.0.1:" + std::to_string(port), "-k", s.secret.path, "-t", "2"};
    if (c.plain) args.push_back("--plain");
    args.push_back("ping");
    ClientResult r = run_client(args, Millis(20000));
    cr_expect(r.exited_with(8), "%s%s: %s", c.peer, c.plain ? " (plain)" : "", r.describe().c_str());
    ASSERT_CONTAINS(r.stderr_text, c.says);
    peer.kill_and_wait();
  }
  stop_cleanly(s);
}

// --help and --version too, in both programs: 7 (local I/O) for reactorc, 1 for reactord.
Test(client_cli, help_and_version_that_cannot_be_written_fail) {
  for (const char* program : {"reactorc", "reactord"}) {
    auto binary = find_binary(program);
    cr_assert(binary.has_value());
    for (const char* option : {"--help", "-V"}) {
      ClientResult r = run_program({"/bin/sh", "-c", "exec \"$0\" \"$@\" >/dev/full", *binary, option}, Millis(10000));
      int expected = std::string(program) == "reactorc" ? 7 : 1;
      cr_assert(r.exited_with(expected), "%s %s: %s", program, option, r.describe().c_str());
      ASSERT_CONTAINS(r.stderr_text, std::string(program) + ": error: write standard output: No space left on device");
      r = run_program({*binary, option}, Millis(10000));
      cr_assert(r.exited_with(0), "%s %s: %s", program, option, r.describe().c_str());
    }
  }
}

Test(client_cli, a_server_without_a_port_means_port_9000) {
  Served s = serve(options());
  // Nothing listens on 127.0.0.1:9000 in the tests: the refusal names the port filled in.
  ClientResult r = run_client({"-s", "127.0.0.1", "-k", s.secret.path, "ping"}, Millis(30000));
  cr_assert(r.exited_with(3) || r.exited_with(0), "%s", r.describe().c_str());
  if (r.exited_with(3)) ASSERT_CONTAINS(r.stderr_text, "127.0.0.1:9000");
  // localhost is the loopback addresses, whatever /etc/hosts says.
  std::string port = std::to_string(s.server.port());
  r = run_client({"-s", "localhost:" + port, "-k", s.secret.path, "ping"}, Millis(30000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  r = run_client({"-s", "files.localhost:" + port, "-k", s.secret.path, "ping"}, Millis(30000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  stop_cleanly(s);
}

Test(client_cli, a_missing_secret_says_how_to_get_one) {
  Served s = serve(options());
  RunOptions o;
  o.env = {{"XDG_CONFIG_HOME", s.dir.path("empty-config")}};
  ClientResult r = run_client({"-s", s.server.address(), "ping"}, Millis(30000), o);
  cr_assert(r.exited_with(9), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "copy the server's secret here");
  ASSERT_CONTAINS(r.stderr_text, "mode 0600");
  stop_cleanly(s);
}

// Usage errors read like every other error, and an ambiguous abbreviation names what it
// could mean.
Test(client_cli, usage_errors_say_error_and_name_ambiguities) {
  ClientResult r = run_client({"--tls", "ping"}, Millis(10000));
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
  cr_assert(starts_with(r.stderr_text, "reactorc: error: option '--tls' is ambiguous: it could be --tls-ca --tls-pin"),
            "%s", r.stderr_text.c_str());
  r = run_client({"--bogus", "ping"}, Millis(10000));
  cr_assert(starts_with(r.stderr_text, "reactorc: error: unknown option '--bogus'"), "%s", r.stderr_text.c_str());
}

// An option of another command is refused before connecting, never ignored.
Test(client_cli, options_of_another_command_are_refused) {
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  const Case cases[] = {
      {{"--json", "ls"}, "--json applies to bench only, not to ls"},
      {{"-c", "1", "get", "x"}, "-c N is bench's --connections; -c (--continue) of get and put takes no value"},
      {{"--connections", "1", "get", "x"}, "-c/--connections applies to bench only, not to get"},
      {{"-c", "ls"}, "-c/--continue applies to get and put only, not to ls"},
      {{"--continue", "stat", "a"}, "-c/--continue applies to get and put only, not to stat"},
      {{"-n", "5", "ping"}, "-n/--requests applies to bench only"},
      {{"--pipeline", "2", "stat", "x"}, "--pipeline applies to bench only"},
      {{"-f", "ls"}, "-f/--force applies to get and put only, not to ls"},
      {{"--force", "bench", "ping"}, "-f/--force applies to get and put only, not to bench"},
      {{"-l", "stat", "a"}, "-l/--long applies to ls only, not to stat"},
      {{"get", "--human-readable", "a"}, "--human-readable applies to ls only, not to get"},
      {{"--long", "put", "a"}, "-l/--long applies to ls only, not to put"},
  };
  for (const Case& c : cases) {
    ClientResult r = run_client(c.args, Millis(10000));
    cr_expect(r.exited_with(2), "%s", r.describe().c_str());
    cr_expect(starts_with(r.stderr_text, std::string("reactorc: error: ") + c.says), "%s", r.stderr_text.c_str());
  }
}

// -h is ls's --human-readable, as in ls -lh, and --help everywhere else; --help is
// --help everywhere.
Test(client_cli, h_is_human_readable_for_ls_and_help_elsewhere) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"-h"}, {"get", "-h"}, {"ls", "--help"}, {"--help", "ls"}}) {
    ClientResult r = run_client(args, Millis(10000));
    cr_expect(r.exited_with(0), "%s", r.describe().c_str());
    cr_expect(starts_with(r.stdout_text, "usage: reactorc"), "%s: %s", args[0].c_str(), r.stdout_text.c_str());
  }
  // An option's value is no command: after --retry 3, ls is still the command.
  ClientResult after_value = run_client({"-s", "127.0.0.1:1", "-t", "2", "--retry", "3", "ls", "-h"}, Millis(10000));
  cr_expect(after_value.stdout_text.empty(), "%s", after_value.stdout_text.c_str());
  // ls -h against no server: an attempt to list, so a connection error, not the help.
  ClientResult r = run_client({"-s", "127.0.0.1:1", "-t", "2", "ls", "-h"}, Millis(10000));
  cr_expect(r.stdout_text.empty(), "%s", r.stdout_text.c_str());
  cr_expect(!r.exited_with(0) && !r.exited_with(2), "%s", r.describe().c_str());
  ASSERT_NOT_CONTAINS(r.stderr_text, "usage");
}
