// reactord: serves a directory tree to authenticated reactorc clients.
// Start-up only; everything after loop.run() is in Server and Session.

#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/log.h"
#include "apps/common/secret.h"
#include "apps/reactord/options.h"
#include "apps/reactord/served_root.h"
#include "apps/reactord/server.h"
#include "reactor/event_loop.h"
#include "reactor/poller.h"
#include "reactor/socket_address.h"

namespace {

constexpr char kDefaultListen[] = "127.0.0.1:9000";
// Descriptors the process needs besides connections: listeners, the loop, the signalfd,
// open files being served, directory streams, the spare for EMFILE.
constexpr rlim_t kSpareDescriptors = 64;

// The last words of a reactord that cannot start (or go on) read like any Unix tool's:
// "reactord: error: ...", no timestamp in front of the program's name.
int fail(int code, const std::string& message) {
  app::log_set_timestamps(false);
  app::log_error("%s", message.c_str());
  return code;
}

// Raises the soft descriptor limit to the hard one, as Redis and httpd do, and lowers
// --max-conns if even that is too small, saying so, rather than failing on accept.
void fit_descriptor_limit(server::Options* options) {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur == RLIM_INFINITY) return;
  rlim_t usable = limit.rlim_cur > kSpareDescriptors * 2 ? limit.rlim_cur - kSpareDescriptors : limit.rlim_cur / 2;
  // Each connection may hold its socket plus the file or directory it is sending.
  rlim_t fit = usable / 2;
  if (options->max_connections > fit) {
    app::log_warn("descriptor limit %llu allows only %llu connections; lowering --max-conns from %llu",
                  static_cast<unsigned long long>(limit.rlim_cur), static_cast<unsigned long long>(fit),
                  static_cast<unsigned long long>(options->max_connections));
    options->max_connections = fit > 0 ? fit : 1;
  }
}

bool obtain_secret(const server::Options& options, app::Secret* secret, std::string* err) {
  if (!options.secret_file.empty()) return app::load_secret(options.secret_file, secret, err);
  std::string path = app::default_secret_path(err);
  if (path.empty()) return false;
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    if (!app::create_secret(path, err)) return false;
    app::log_info("created a new secret in \"%s\" (mode 0600); give clients a copy of it", path.c_str());
  }
  return app::load_secret(path, secret, err);
}

}  // namespace

int main(int argc, char** argv) {
  server::Options options;
  app::ParseResult parsed = server::parse_options(argc, argv, &options);
  if (parsed == app::ParseResult::kExitOk)  // --help, --version: and they reached their reader
    return app::close_stdout("reactord", server::kExitOk, server::kExitFailure);
  if (parsed != app::ParseResult::kRun) return app::exit_status_of(parsed);
  // Stamped from the first "listening on" line on; start-up messages are plain.
  app::log_init("reactord", app::log_level_for(options.verbosity), false);
  reactor::ignore_sigpipe();
  {
    std::string err;
    if (!app::log_never_block(&err)) app::log_warn("%s", err.c_str());
  }

  std::vector<server::Server::Endpoint> endpoints;
  // The default only when no listener at all is named: `reactord --tutorial-listen
  // 127.0.0.1:9000`, the tutorial's own port, serves the tutorial alone.
  if (options.listen.empty() && options.plain_listen.empty() && options.tutorial_listen.empty())
    options.listen.emplace_back(kDefaultListen);
  auto add_endpoints = [&](const std::vector<std::string>& texts, const char* option, bool tls, bool tutorial = false) {
    for (const std::string& text : texts) {
      server::Server::Endpoint endpoint;
      std::string err;
      if (!reactor::parse_address(text, &endpoint.address, &err)) {
        std::fprintf(stderr, "reactord: invalid %s '%s': %s\nTry 'reactord --help' for more information.\n", option,
                     text.c_str(), err.c_str());
        return false;
      }
      endpoint.tls = tls;
      endpoint.tutorial = tutorial;
      // Plain text and MD5 are for a lesson on one machine, not for a network.
      if (tutorial && !options.tutorial_insecure && !endpoint.address.is_loopback()) {
        std::fprintf(stderr,
                     "reactord: --tutorial-listen '%s' is not a loopback address: the tutorial's format is plain "
                     "text and MD5 (--tutorial-insecure allows it)\nTry 'reactord --help' for more information.\n",
                     text.c_str());
        return false;
      }
      endpoints.push_back(endpoint);
    }
    return true;
  };
  if (!add_endpoints(options.listen, "--listen", !options.plain) ||
      !add_endpoints(options.plain_listen, "--plain-listen", false) ||
      !add_endpoints(options.tutorial_listen, "--tutorial-listen", false, true))
    return server::kExitUsage;

  std::string err;
  app::Secret secret;
  if (!obtain_secret(options, &secret, &err)) return fail(server::kExitConfig, err);
  std::unique_ptr<server::ServedRoot> root = server::ServedRoot::open(options.root, &err);
  if (!root) return fail(server::kExitConfig, err);

  bool config_error = false;
  std::unique_ptr<reactor::EventLoop> loop = app::create_loop(options, &config_error, &err);
  if (!loop) return fail(config_error ? server::kExitConfig : server::kExitFailure, err);

  fit_descriptor_limit(&options);
  server::Server server(*loop, options, std::move(root), std::move(secret));
  app::log_set_timestamps(true);
  bool any_tls = false;
  for (const server::Server::Endpoint& endpoint : endpoints) any_tls = any_tls || endpoint.tls;
  if (any_tls && !server.make_tls(&err)) return fail(server::kExitConfig, err);
  if (!server.check_tutorial_file(&err)) return fail(server::kExitConfig, err);
  if (!server.start(endpoints, &err)) return fail(server::kExitListen, err);
  if (!loop->run(&err)) return fail(server::kExitFailure, "event loop failed: " + err);
  return server::kExitOk;
}
