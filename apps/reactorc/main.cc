// reactorc: fetches files from reactord, authenticated and verified.

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/cli.h"
#include "apps/common/log.h"
#include "apps/common/secret.h"
#include "apps/reactorc/bench.h"
#include "apps/reactorc/command_runner.h"
#include "apps/reactorc/config_file.h"
#include "apps/reactorc/tutorial_get.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/options.h"
#include "apps/reactorc/tree_get.h"
#include "apps/reactorc/tree_put.h"
#include "protocol/tls.h"
#include "reactor/event_loop.h"
#include "reactor/poller.h"
#include "reactor/socket_address.h"

namespace {

constexpr char kDefaultServer[] = "127.0.0.1:9000";
constexpr char kDefaultPort[] = "9000";

// HOST or [IPV6] alone means the default port, as ssh and curl fill in theirs.
std::string with_default_port(const std::string& text) {
  if (text.empty()) return text;
  if (text.front() == '[') return text.back() == ']' ? text + ":" + kDefaultPort : text;
  return text.find(':') == std::string::npos ? text + ":" + kDefaultPort : text;
}

// HOST:PORT or [IPV6]:PORT with a port from 1 to 65535. Checked before resolving, so a
// typo is a usage error (exit 2) and only a name that does not resolve is exit 3.
bool well_formed_server(const std::string& text) {
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close < 2 || close + 1 >= text.size() || text[close + 1] != ':') return false;
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || text.find(':') != colon) return false;
  }
  std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  long value = std::strtol(port.c_str(), nullptr, 10);
  return value >= 1 && value <= 65535;
}

// "host" of "host:port" and of "[v6]:port" (already checked by well_formed_server).
std::string host_of(const std::string& server) {
  if (!server.empty() && server.front() == '[') return server.substr(1, server.find(']') - 1);
  return server.substr(0, server.rfind(':'));
}

int fail(int code, const std::string& message) {
  app::log_error("%s", message.c_str());
  return code;
}

// Prepares `job` (a Bench or a CommandRunner), runs it on the loop until it stops it, and
// returns its exit status. SIGINT and SIGTERM interrupt it through the loop.
template <typename Job>
int run(reactor::EventLoop& loop, Job& job, std::vector<reactor::SocketAddress> addresses) {
  if (!job.prepare()) return job.exit_code();
  std::string err;
  if (!loop.on_signal(SIGINT, [&job] { job.interrupt("SIGINT"); }, &err) ||
      !loop.on_signal(SIGTERM, [&job] { job.interrupt("SIGTERM"); }, &err))
    return fail(client::kExitFailure, err);
  job.start(std::move(addresses));
  if (!loop.run(&err)) return fail(client::kExitFailure, "event loop failed: " + err);
  return job.exit_code();
}

// Results that never reached their reader are a failure (app::close_stdout).
int close_stdout(int status) { return app::close_stdout("reactorc", status, client::kExitLocal); }

}  // namespace

int main(int argc, char** argv) {
  client::Options options;
  app::ParseResult parsed = client::parse_options(argc, argv, &options);
  if (parsed == app::ParseResult::kExitOk) return close_stdout(client::kExitOk);  // --help, --version
  if (parsed != app::ParseResult::kRun) return app::exit_status_of(parsed);
  // -v says more about the connection, but no debug lines: those are the daemon's.
  app::log_init("reactorc", options.verbosity < 0 ? app::LogLevel::kError : app::LogLevel::kInfo, false);
  reactor::ignore_sigpipe();

  std::string err;
  if (!client::load_and_apply_config(&options, &err)) return fail(client::kExitConfig, err);
  std::string server = options.server;
  if (server.empty()) {
    const char* env = std::getenv("REACTOR_SERVER");
    server = env != nullptr && env[0] != '\0' ? env : kDefaultServer;
  }
  server = with_default_port(server);
  if (!well_formed_server(server)) {
    std::string from = !options.server_from.empty() ? " (from " + options.server_from + ")"
                       : options.server.empty()     ? std::string(" (from REACTOR_SERVER)")
                                                    : std::string();
    app::usage_error("reactorc", "invalid server address '%s'%s: expected HOST[:PORT] or [IPV6][:PORT]", server.c_str(),
                     from.c_str());
    return client::kExitUsage;
  }
  options.server = server;  // as used: a partial download notes it (partial_download.h)
  std::vector<reactor::SocketAddress> addresses;
  if (!reactor::resolve(server, &addresses, &err)) return fail(client::kExitConnect, err);

  // The tutorial's format needs the secret only to answer its challenge.
  const bool needs_secret = !options.tutorial || options.tutorial_auth;
  std::string secret_path = options.secret_file;
  if (secret_path.empty() && needs_secret) {
    secret_path = app::default_secret_path(&err);
    if (secret_path.empty()) return fail(client::kExitConfig, err);
  }
  app::Secret secret;
  if (needs_secret && !app::load_secret(secret_path, &secret, &err)) {
    struct stat st {};
    if (lstat(secret_path.c_str(), &st) != 0 && errno == ENOENT) {
      // The first thing a new user meets: say where to get one.
      err += "; copy the server's secret here, e.g. scp server:.config/reactor/secret \"" + secret_path +
             "\" (mode 0600), or name one with -k FILE";
    }
    return fail(client::kExitConfig, err);
  }

  bool config_error = false;
  std::unique_ptr<reactor::EventLoop> loop = app::create_loop(options, &config_error, &err);
  if (!loop) return fail(config_error ? client::kExitConfig : client::kExitFailure, err);

  std::shared_ptr<protocol::TlsContext> tls;
  if (!options.plain && !options.tutorial) {
    protocol::TlsClientConfig config;
    config.secret = secret.key;
    config.host = host_of(server);
    config.ca_file = options.tls_ca;
    config.pin = options.tls_pin;
    config.insecure = options.insecure;
    tls = protocol::TlsContext::client(config, &err);
    if (!tls) return fail(client::kExitConfig, err);
  }

  int status;
  if (options.tutorial) {
    client::TutorialGet tutorial(*loop, options, needs_secret ? &secret : nullptr);
    status = run(*loop, tutorial, std::move(addresses));
  } else if (options.verb == client::Verb::kBench) {
    client::Bench bench(*loop, options, secret, tls);
    status = run(*loop, bench, std::move(addresses));
  } else if (client::TreePut::handles(options)) {
    client::TreePut tree(*loop, options, secret, tls);
    status = run(*loop, tree, std::move(addresses));
  } else if (client::TreeGet::handles(options)) {
    client::TreeGet tree(*loop, options, secret, tls);
    status = run(*loop, tree, std::move(addresses));
  } else {
    client::CommandRunner runner(*loop, options, secret, tls);
    status = run(*loop, runner, std::move(addresses));
  }
  return close_stdout(status);
}
