#include "tests/support/fixture.h"

#include <cstdlib>

#include "tests/support/binaries.h"

#include <criterion/criterion.h>
// cr_assert expands to C-style casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "tests/support/client.h"

namespace testsupport {

Served serve(const ServeOptions& options) {
  std::string err;
  auto dir = TempDir::create(options.prefix, &err);
  cr_assert(dir.has_value(), "TempDir::create: %s", err.c_str());
  std::string root = dir->path("root");
  std::string downloads = dir->path("dl");
  cr_assert(make_dirs(root, &err), "%s", err.c_str());
  cr_assert(make_dirs(downloads, &err), "%s", err.c_str());
  for (const auto& file : options.files) {
    size_t slash = file.first.rfind('/');
    if (slash != std::string::npos) {
      cr_assert(make_dirs(path_join(root, file.first.substr(0, slash)), &err), "%s", err.c_str());
    }
    cr_assert(write_file(path_join(root, file.first), file.second, &err), "%s", err.c_str());
  }
  auto secret = write_secret(options.secret_in_root ? root : dir->path(), options.secret_text, &err);
  cr_assert(secret.has_value(), "write_secret: %s", err.c_str());
  ServerOptions server_options;
  server_options.root = root;
  server_options.secret_file = secret->path;
  server_options.listen = options.listen;
  server_options.extra_args = options.extra_args;
  server_options.env = options.env;
  auto server = ServerProcess::start(server_options, &err);
  cr_assert(server.has_value(), "reactord did not start: %s", err.c_str());
  return Served{std::move(*dir), root, downloads, *secret, std::move(*server)};
}

void stop_cleanly(Served& s) {
  ExitStatus st = s.server.stop(Millis(30000));
  std::string log = s.server.stderr_text();
  cr_assert(st.exited_with(0), "reactord did not stop cleanly: %s\n%s", st.describe().c_str(), log.c_str());
  cr_assert(log.find("Sanitizer") == std::string::npos && log.find("runtime error") == std::string::npos,
            "%s", log.c_str());
}

void assert_serves(const Served& s, const std::string& local_dir) {
  static int counter = 0;
  std::string local = path_join(local_dir, "health-" + std::to_string(++counter));
  ClientResult r = s.server.run_client({"get", "health.txt", local}, Millis(30000));
  cr_assert(r.exited_with(0), "an honest client was not served: %s\nserver log:\n%s",
            r.describe().c_str(), s.server.stderr_text().c_str());
  auto text = read_file(local);
  cr_assert(text.has_value() && *text == kHealthText, "health.txt came back wrong");
  unlink(local.c_str());
}

RawClient connect_raw(const Served& s) {
  RawClient c;
  std::string err;
  cr_assert(c.connect(s.server.plain_address(), Millis(5000), &err), "connect: %s", err.c_str());
  return c;
}

RawClient connect_authenticated(const Served& s, int proto) {
  RawClient c = connect_raw(s);
  HandshakeResult h = c.handshake(s.secret.key, Millis(10000), proto);
  cr_assert(h.ok, "handshake: %s", h.error.c_str());
  return c;
}

Frame expect_frame(RawClient& c, const std::string& type, Millis timeout) {
  ReadResult r = c.read_frame(timeout);
  cr_assert(r.ok(), "waiting for %s: %s", type.c_str(), r.describe().c_str());
  cr_assert(r.frame.type() == type, "expected %s, got %s", type.c_str(), r.frame.header.c_str());
  return r.frame;
}

void set_mtime(const std::string& path, time_t when) {
  struct timespec times[2] = {{when, 0}, {when, 0}};
  cr_assert_eq(utimensat(AT_FDCWD, path.c_str(), times, 0), 0, "utimensat %s", path.c_str());
}

void make_pattern(const std::string& path, uint64_t size, uint64_t seed) {
  std::string err;
  cr_assert(write_pattern_file(path, size, seed, &err), "%s", err.c_str());
  set_mtime(path, kMtime);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Process spawn_client(const Served& s, const std::vector<std::string>& args) {
  std::string err;
  auto binary = find_binary("reactorc", &err);
  cr_assert(binary.has_value(), "%s", err.c_str());
  SpawnOptions o;
  o.argv = {*binary};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.output_dir = s.dir.path();
  auto p = Process::spawn(o, &err);
  cr_assert(p.has_value(), "%s", err.c_str());
  return std::move(*p);
}

std::vector<std::string> plain_args_via(const Served& s, const std::string& address,
                                        const std::vector<std::string>& args) {
  std::vector<std::string> out = {"--plain", "-s", address, "-k", s.secret.path, "--progress=none"};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

size_t count_in(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

uint64_t body_bytes_sent(const std::string& log, size_t from) {
  uint64_t total = 0;
  for (size_t at = log.find(" get \"", from); at != std::string::npos; at = log.find(" get \"", at + 1)) {
    size_t open = log.find("\" (", at + 6);
    if (open == std::string::npos) break;
    total += std::strtoull(log.c_str() + open + 3, nullptr, 10);
  }
  return total;
}

}  // namespace testsupport
