#include "apps/reactord/options.h"

#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "apps/common/cli.h"
#include "apps/common/human_units.h"

namespace server {

const char kUsage[] =
    "usage: reactord [-qvw] [-r DIR] [-l ADDR:PORT]... [--plain-listen ADDR:PORT]...\n"
    "                [--plain] [--tls-cert FILE --tls-key FILE] [-k FILE] [-m N]\n"
    "                [--idle-timeout SECS] [--handshake-timeout SECS] [--grace SECS]\n"
    "                [--max-upload SIZE] [--keep-free SIZE] [--partial-ttl SECS]\n"
    "                [--limit-rate RATE] [--backend epoll|poll]\n"
    "                [--tutorial-listen ADDR:PORT [--tutorial-file PATH] [--tutorial-md5]\n"
    "                 [--tutorial-auth] [--tutorial-insecure]]\n"
    "Serve DIR to authenticated reactorc clients.\n"
    "\n"
    "  -r, --root DIR               directory to serve (default: the current directory)\n"
    "  -w, --writable               accept uploads (reactorc put); read-only otherwise\n"
    "      --max-upload SIZE        refuse uploads larger than SIZE, e.g. 4G (default: no limit)\n"
    "      --keep-free SIZE         refuse uploads that would leave less free space\n"
    "                               (default: 1% of the file system, at most 1G)\n"
    "      --partial-ttl SECS       keep what an interrupted resumable upload received\n"
    "                               for SECS, to be continued (default: 3600; 0: not at all)\n"
    "  -l, --listen ADDR:PORT       TLS listen address, IPv4 or [IPv6]; repeatable\n"
    "                               (default: 127.0.0.1:9000)\n"
    "      --plain-listen ADDR:PORT a listener for the plain, unencrypted protocol;\n"
    "                               repeatable\n"
    "      --plain                  the -l listeners speak the plain protocol too\n"
    "      --tls-cert FILE          TLS with this certificate chain (PEM) instead of\n"
    "                               the key derived from the secret; needs --tls-key\n"
    "      --tls-key FILE           the certificate's private key (PEM)\n"
    "  -k, --secret-file FILE       shared secret (default: $XDG_CONFIG_HOME/reactor/secret,\n"
    "                               else ~/.config/reactor/secret; created on first start\n"
    "                               if missing)\n"
    "  -m, --max-conns N            most connections at once (default: 1024)\n"
    "      --idle-timeout SECS      close idle connections after SECS (default: 300)\n"
    "      --limit-rate RATE        each connection moves at most RATE bytes a second\n"
    "                               each way, e.g. 500K or 10M (default: no limit)\n"
    "      --handshake-timeout SECS absolute deadline to authenticate (default: 10)\n"
    "      --grace SECS             on SIGINT/SIGTERM, time to finish transfers (default: 10)\n"
    "      --backend NAME           event loop backend: epoll or poll (default: epoll)\n"
    "      --tutorial-listen ADDR:PORT  speak the socket tutorial's own wire format there\n"
    "                               (plain text, MD5; loopback only; see reactor-tutorial(7))\n"
    "      --tutorial-file PATH     what it sends, inside the root (default: the hello chat)\n"
    "      --tutorial-md5           send the MD5-checking variant's header\n"
    "      --tutorial-auth          the HMAC-MD5 legitimacy check first, keyed by the secret\n"
    "      --tutorial-insecure      allow a --tutorial-listen address that is not loopback\n"
    "  -q, --quiet                  log errors only\n"
    "  -v, --verbose                log more: every connection state change\n"
    "  -h, --help                   show this help and exit\n"
    "  -V, --version                show the version and exit\n"
    "\n"
    "See reactord(8) and reactor-protocol(7).\n";

namespace {

enum LongOnly {
  kIdleTimeout = app::kBackendOption + 1, kHandshakeTimeout, kGrace, kPlainListen, kPlain, kTlsCert, kTlsKey,
  kMaxUpload, kKeepFree, kPartialTtl, kLimitRate, kTutorialListen, kTutorialFile, kTutorialMd5, kTutorialAuth,
  kTutorialInsecure,
};


}  // namespace

ParseResult parse_options(int argc, char** argv, Options* out) {
  static const std::vector<struct option> kLong = app::with_common_options({
      {"root", required_argument, nullptr, 'r'},
      {"listen", required_argument, nullptr, 'l'},
      {"secret-file", required_argument, nullptr, 'k'},
      {"max-conns", required_argument, nullptr, 'm'},
      {"idle-timeout", required_argument, nullptr, kIdleTimeout},
      {"handshake-timeout", required_argument, nullptr, kHandshakeTimeout},
      {"grace", required_argument, nullptr, kGrace},
      {"plain-listen", required_argument, nullptr, kPlainListen},
      {"plain", no_argument, nullptr, kPlain},
      {"tls-cert", required_argument, nullptr, kTlsCert},
      {"tls-key", required_argument, nullptr, kTlsKey},
      {"writable", no_argument, nullptr, 'w'},
      {"max-upload", required_argument, nullptr, kMaxUpload},
      {"partial-ttl", required_argument, nullptr, kPartialTtl},
      {"keep-free", required_argument, nullptr, kKeepFree},
      {"limit-rate", required_argument, nullptr, kLimitRate},
      {"tutorial-listen", required_argument, nullptr, kTutorialListen},
      {"tutorial-file", required_argument, nullptr, kTutorialFile},
      {"tutorial-md5", no_argument, nullptr, kTutorialMd5},
      {"tutorial-auth", no_argument, nullptr, kTutorialAuth},
      {"tutorial-insecure", no_argument, nullptr, kTutorialInsecure},
  });
  static const app::CommonParse kCommon{"reactord", kUsage, 1, kLong.data()};
  opterr = 0;  // our own messages, with the program name and a hint
  optind = 0;  // 0, not 1: glibc then also resets its scanning state, so a parser can run twice
  int c;
  while ((c = getopt_long(argc, argv, ":r:l:k:m:wqvhV", kLong.data(), nullptr)) != -1) {
    switch (c) {
      case 'r': out->root = optarg; break;
      case 'l': out->listen.emplace_back(optarg); break;
      case kPlainListen: out->plain_listen.emplace_back(optarg); break;
      case kPlain: out->plain = true; break;
      case kTlsCert: out->tls_cert = optarg; break;
      case kTlsKey: out->tls_key = optarg; break;
      case 'k': out->secret_file = optarg; break;
      case 'w': out->writable = true; break;
      case kMaxUpload:
        if (!app::parse_size(optarg, &out->max_upload) || out->max_upload == 0)
          return app::fail_usage("reactord", "invalid --max-upload '%s': expected a size above 0, e.g. 4G", optarg);
        break;
      case kPartialTtl: {
        uint64_t seconds = 0;
        if (!app::parse_count(optarg, 0, 30 * 86400, &seconds))
          return app::fail_usage("reactord", "invalid --partial-ttl '%s': expected whole seconds up to 30 days, or 0",
                                 optarg);
        out->partial_ttl = std::chrono::seconds(seconds);
        break;
      }
      case kKeepFree:
        if (!app::parse_size(optarg, &out->keep_free))
          return app::fail_usage("reactord", "invalid --keep-free '%s': expected a size, e.g. 512M or 0", optarg);
        out->keep_free_given = true;
        break;
      case kTutorialListen: out->tutorial_listen.emplace_back(optarg); break;
      case kTutorialFile: out->tutorial_file = optarg; break;
      case kTutorialMd5: out->tutorial_md5 = true; break;
      case kTutorialAuth: out->tutorial_auth = true; break;
      case kTutorialInsecure: out->tutorial_insecure = true; break;
      case kLimitRate:
        if (!app::parse_size(optarg, &out->limit_rate) || out->limit_rate == 0)
          return app::fail_usage("reactord", "invalid --limit-rate '%s': expected bytes a second, e.g. 500K or 10M",
                                 optarg);
        break;
      case 'm':
        if (!app::parse_count(optarg, 1, 1'000'000, &out->max_connections))
          return app::fail_usage("reactord", "invalid --max-conns '%s': expected a number from 1 to 1000000", optarg);
        break;
      case kIdleTimeout:
        if (!app::parse_seconds(optarg, &out->idle_timeout))
          return app::fail_usage("reactord", "invalid --idle-timeout '%s': expected seconds, e.g. 300", optarg);
        break;
      case kHandshakeTimeout:
        if (!app::parse_seconds(optarg, &out->handshake_timeout))
          return app::fail_usage("reactord", "invalid --handshake-timeout '%s': expected seconds, e.g. 10", optarg);
        break;
      case kGrace:
        if (!app::parse_seconds(optarg, &out->grace))
          return app::fail_usage("reactord", "invalid --grace '%s': expected seconds, e.g. 10", optarg);
        break;
      default: {
        ParseResult common = app::parse_common_option(c, kCommon, argv, out);
        if (common != ParseResult::kRun) return common;
        break;
      }
    }
  }
  if (optind < argc) return app::fail_usage("reactord", "unexpected argument '%s'", argv[optind]);
  if (out->tls_cert.empty() != out->tls_key.empty())
    return app::fail_usage("reactord", "%s", "--tls-cert and --tls-key go together");
  if (out->tutorial_listen.empty() &&
      (!out->tutorial_file.empty() || out->tutorial_md5 || out->tutorial_auth || out->tutorial_insecure))
    return app::fail_usage("reactord", "%s", "--tutorial-file, --tutorial-md5, --tutorial-auth and --tutorial-insecure need --tutorial-listen");
  if (out->tutorial_md5 && out->tutorial_file.empty())
    return app::fail_usage("reactord", "%s", "--tutorial-md5 describes a file: it needs --tutorial-file");
  if (!out->tls_cert.empty() && out->plain)
    return app::fail_usage("reactord", "%s", "--tls-cert is for TLS listeners; --plain makes every -l plain");
  return ParseResult::kRun;
}

}  // namespace server
