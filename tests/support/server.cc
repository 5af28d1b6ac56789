#include "tests/support/server.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/support/binaries.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"

namespace testsupport {
namespace {

std::string tail(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return "..." + text.substr(text.size() - limit);
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // Not expected; fall back to something unpredictable enough for a test secret.
    std::string fallback = std::to_string(getpid()) + ":" + std::to_string(time(nullptr));
    return sha256_hex(fallback).substr(0, bytes * 2);
  }
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses "HOST:PORT" or "[HOST]:PORT" at the start of TEXT; the port must be followed by
// something that is not a digit (a complete line, not a partial write).
std::optional<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint ep;
  size_t pos = 0;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    ep.host = std::string(text.substr(1, close - 1));
    pos = close + 1;
  } else {
    for (; pos < text.size(); ++pos) {
      char c = text[pos];
      if (!(is_digit(c) || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            c == '-')) {
        break;
      }
    }
    ep.host = std::string(text.substr(0, pos));
  }
  if (ep.host.empty() || pos >= text.size() || text[pos] != ':') return std::nullopt;
  ++pos;
  unsigned port = 0;
  size_t digits = 0;
  for (; pos < text.size() && is_digit(text[pos]) && digits < 6; ++pos, ++digits) {
    port = port * 10 + static_cast<unsigned>(text[pos] - '0');
  }
  if (digits == 0 || digits > 5 || port > 65535 || pos >= text.size()) return std::nullopt;
  ep.port = static_cast<uint16_t>(port);
  ep.plain = text.substr(pos).find("(plain)") != std::string_view::npos;
  return ep;
}

}  // namespace

std::optional<SecretFile> write_secret(const std::string& dir, const std::string& text,
                                       std::string* err, const std::string& name) {
  SecretFile secret;
  secret.path = path_join(dir, name);
  std::string content = text.empty() ? random_hex(32) + "\n" : text;
  Fd fd(open(secret.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) {
    if (err) *err = "open \"" + secret.path + "\": " + std::strerror(errno);
    return std::nullopt;
  }
  if (fchmod(fd.get(), 0600) != 0) {
    if (err) *err = "fchmod \"" + secret.path + "\": " + std::strerror(errno);
    return std::nullopt;
  }
  fd.reset();
  if (!write_file(secret.path, content, err)) return std::nullopt;
  size_t end = content.size();
  while (end > 0 && (content[end - 1] == '\n' || content[end - 1] == '\r' ||
                     content[end - 1] == ' ' || content[end - 1] == '\t')) {
    --end;
  }
  secret.key = content.substr(0, end);
  return secret;
}

const Endpoint& ServerProcess::first(bool plain) const {
  for (const Endpoint& ep : endpoints_)
    if (ep.plain == plain) return ep;
  return endpoints_.front();
}

std::string Endpoint::address() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::vector<Endpoint> parse_listening_lines(std::string_view log) {
  static constexpr std::string_view kMarker = "listening on ";
  std::vector<Endpoint> out;
  size_t pos = 0;
  for (int i = 0; i < 100000; ++i) {
    pos = log.find(kMarker, pos);
    if (pos == std::string_view::npos) break;
    pos += kMarker.size();
    size_t eol = log.find('\n', pos);
    if (eol == std::string_view::npos) break;  // an incomplete line: not yet
    if (auto ep = parse_endpoint(log.substr(pos, eol + 1 - pos))) out.push_back(*ep);
  }
  return out;
}

std::optional<ServerProcess> ServerProcess::start(const ServerOptions& options,
                                                  std::string* err) {
  auto fail = [&](const std::string& why) -> std::optional<ServerProcess> {
    if (err) *err = why;
    return std::nullopt;
  };
  if (options.root.empty()) return fail("ServerProcess::start: root is required");
  if (options.listen.empty()) return fail("ServerProcess::start: no listen address");
  std::string binary = options.binary;
  if (binary.empty()) {
    std::string why;
    auto found = find_binary("reactord", &why);
    if (!found) return fail(why);
    binary = *found;
  }
  std::optional<TempDir> own_dir;
  std::string log_dir = options.log_dir;
  if (log_dir.empty()) {
    std::string why;
    own_dir = TempDir::create("reactord-log", &why);
    if (!own_dir) return fail(why);
    log_dir = own_dir->path();
  }
  SpawnOptions spawn;
  spawn.argv = {binary, "-r", options.root};
  for (const auto& l : options.listen) {
    spawn.argv.push_back("-l");
    spawn.argv.push_back(l);
  }
  size_t expected = options.listen.size();
  if (options.also_plain) {
    for (const auto& l : options.listen) {
      spawn.argv.push_back("--plain-listen");
      spawn.argv.push_back(l);
    }
    expected *= 2;
  }
  if (!options.secret_file.empty()) {
    spawn.argv.push_back("-k");
    spawn.argv.push_back(options.secret_file);
  }
  if (options.verbose) spawn.argv.push_back("-v");
  spawn.argv.insert(spawn.argv.end(), options.extra_args.begin(), options.extra_args.end());
  spawn.env = options.env;
  spawn.output_dir = log_dir;
  spawn.name = "reactord";
  std::string why;
  auto proc = Process::spawn(spawn, &why);
  if (!proc) return fail(why);
  ServerProcess server(std::move(own_dir), std::move(*proc));
  server.secret_file_ = options.secret_file;
  server.root_ = options.root;

  Deadline deadline(options.start_timeout);
  for (int i = 0; i < 1000000; ++i) {
    server.endpoints_ = parse_listening_lines(server.stderr_text());
    if (server.endpoints_.size() >= expected) break;
    if (auto status = server.process_.try_wait()) {
      return fail(binary + " exited before listening (" + status->describe() + "); stderr:\n" +
                  tail(server.stderr_text(), 4000));
    }
    if (deadline.expired()) {
      server.process_.kill_and_wait();
      return fail(binary + " printed " + std::to_string(server.endpoints_.size()) + " of " +
                  std::to_string(expected) + " \"listening on\" lines within " +
                  std::to_string(options.start_timeout.count()) + " ms; stderr:\n" +
                  tail(server.stderr_text(), 4000));
    }
    sleep_for(Millis(10));
  }
  for (const auto& ep : server.endpoints_) {
    if (ep.port == 0) {
      server.process_.kill_and_wait();
      return fail(binary + " reported port 0 in \"listening on " + ep.address() + "\"");
    }
  }
  return server;
}

ExitStatus ServerProcess::stop(Millis timeout) {
  if (auto status = process_.try_wait()) return *status;
  process_.send_signal(SIGTERM);
  ExitStatus status = process_.wait_exit(timeout);
  if (status.timed_out()) process_.kill_and_wait();
  return status;
}

ExitStatus ServerProcess::kill() { return process_.kill_and_wait(); }

bool ServerProcess::wait_for_stderr(std::string_view needle, Millis timeout) const {
  return wait_until(
      [&] { return process_.stderr_text().find(needle) != std::string::npos; }, timeout);
}

std::vector<std::string> ServerProcess::client_args(const std::vector<std::string>& args) const {
  std::vector<std::string> out{"-s", address()};
  if (!secret_file_.empty()) out.insert(out.end(), {"-k", secret_file_});
  out.push_back("--progress=none");
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

ClientResult ServerProcess::run_client(const std::vector<std::string>& args, Millis timeout,
                                       const RunOptions& options) const {
  return testsupport::run_client(client_args(args), timeout, options);
}

std::vector<std::string> ServerProcess::plain_client_args(const std::vector<std::string>& args) const {
  std::vector<std::string> out = client_args(args);
  out[1] = plain_address();
  out.insert(out.begin(), "--plain");
  return out;
}

ClientResult ServerProcess::run_plain_client(const std::vector<std::string>& args, Millis timeout,
                                             const RunOptions& options) const {
  return testsupport::run_client(plain_client_args(args), timeout, options);
}

}  // namespace testsupport
