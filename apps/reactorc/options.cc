#include "apps/reactorc/options.h"

#include <getopt.h>

#include <cctype>
#include <cstdint>
#include <string_view>
#include <cstdio>
#include <cstring>

#include "apps/common/cli.h"
#include "apps/common/human_units.h"
#include "protocol/messages.h"

namespace client {

const char kUsage[] =
    "usage: reactorc [-cfpqrv] [-s HOST[:PORT]|NAME] [-k FILE] [-F FILE] [-t SECS] [--retry N] [--limit-rate RATE]\n"
    "                [--links] [--progress STYLE]\n"
    "                [--plain | --tls-ca FILE | --tls-pin sha256:HEX | --insecure]\n"
    "                [--backend epoll|poll] COMMAND [ARG]...\n"
    "       reactorc ls [-lh] [PATH]\n"
    "       reactorc bench [-c CONNS] [-n REQUESTS] [-d SECS] [--pipeline K] [--source PREFIX]\n"
    "                [--json] [ping | get PATH | stat PATH | handshake | idle]\n"
    "Fetch files from a reactord server and send files to it, authenticated and verified.\n"
    "\n"
    "Commands:\n"
    "  get REMOTE [LOCAL]   download REMOTE to LOCAL (default: its last component)\n"
    "  get [-r] REMOTE... DIR  download several files, or with -r directories, into DIR\n"
    "  put [-r] LOCAL... DIR   upload several files, or with -r directories, into DIR\n"
    "  put LOCAL [REMOTE]   upload LOCAL to REMOTE (default: its last component in the\n"
    "                       served root; a REMOTE ending in / is a directory)\n"
    "  stat PATH            show what PATH is on the server\n"
    "  ls [-lh] [PATH]      list a directory on the server (default: the root), or name a file\n"
    "  ping                 check the server answers, and how fast\n"
    "  send MESSAGE         send a text message for the server's log\n"
    "  bench [REQUEST]      load test: many connections from one thread (see below)\n"
    "\n"
    "Options:\n"
    "  -s, --server HOST[:PORT]  server address, port 9000 if not given\n"
    "                          (default: $REACTOR_SERVER, else 127.0.0.1:9000)\n"
    "  -k, --secret-file FILE  shared secret (default: $XDG_CONFIG_HOME/reactor/secret,\n"
    "                          else ~/.config/reactor/secret)\n"
    "  -F, --config FILE       settings and named servers (default: $XDG_CONFIG_HOME/reactor/config,\n"
    "                          else ~/.config/reactor/config; none: no file); -s NAME picks one\n"
    "  -c, --continue          get: resume the partial download of an earlier, interrupted\n"
    "                          get, keeping only the chunks that verify; put: resume what\n"
    "                          the server kept of an interrupted put -c of the same file\n"
    "  -f, --force             get: overwrite an existing LOCAL; put: an existing REMOTE\n"
    "      --retry N           get, put: after a lost connection, reconnect up to N times,\n"
    "                          1 s, 2 s, 4 s... apart, and resume (default: 3; 0: never)\n"
    "      --limit-rate RATE   get, put: move at most RATE bytes a second, e.g. 500K, 10M\n"
    "  -p, --preserve          get, put: keep the files' mode and modification time\n"
    "  -r, --recursive         get, put: copy directories and everything beneath them\n"
    "      --tutorial          get [LOCAL] from the socket tutorial's server.py (plain, MD5)\n"
    "      --tutorial-auth     (with --tutorial) answer its HMAC-MD5 challenge with the secret\n"
    "      --links             get, put (with -r): recreate symbolic links, never followed, whose\n"
    "                          relative target stays inside the copied tree; others are skipped\n"
    "  -t, --timeout SECS      connect timeout, and longest silence from the server (default: 30)\n"
    "      --plain             the plain protocol: no TLS, nothing encrypted\n"
    "      --tls-ca FILE       trust a server certificate signed by the CAs in FILE\n"
    "      --tls-pin sha256:HEX  trust the server certificate with this public-key hash\n"
    "      --insecure          accept any server certificate (the secret still authenticates)\n"
    "      --progress STYLE    bar, plane, rainbow, none, or json (get -r: one JSON object\n"
    "                          per line on stdout, for scripts; default: bar)\n"
    "      --backend NAME      event loop backend: epoll or poll (default: epoll)\n"
    "  -c, --connections N     bench: connections at once (default: 50)\n"
    "  -n, --requests N        bench: requests in all (default: 10000 unless -d)\n"
    "  -d, --duration SECS     bench: run for SECS; idle: hold the connections for SECS\n"
    "      --pipeline K        bench: requests in flight per connection (default: 1)\n"
    "      --source PREFIX     bench: connect from each address of an IPv4 PREFIX in turn\n"
    "      --json              bench: print the results as one JSON object\n"
    "  -l, --long              ls: type and mode, size, time (UTC) and name; a link's target\n"
    "  -h, --human-readable    ls: sizes as 1.5K, 23M, 4.0G (-h is --help elsewhere)\n"
    "                          (options marked get:, put:, ls: or bench: are refused elsewhere)\n"
    "  -q, --quiet             print errors only\n"
    "  -v, --verbose           say more about the connection\n"
    "  -h, --help              show this help and exit\n"
    "  -V, --version           show the version and exit\n"
    "\n"
    "See reactorc(1) and reactor-protocol(7).\n";

namespace {

enum LongOnly {
  kProgress = app::kBackendOption + 1, kPipeline, kSource, kJson, kPlain, kTlsCa, kTlsPin, kInsecure, kContinue, kConnections, kRetry, kLinks,
  kHuman, kLimitRate, kTutorial, kTutorialAuth,
};

// The configuration file's key for an option, if it has one (config_file.h).
const char* config_key(int c) {
  switch (c) {
    case 's': return "server";
    case 'k': return "secret-file";
    case 't': return "timeout";
    case kRetry: return "retry";
    case kLimitRate: return "limit-rate";
    case kProgress: return "progress";
    case app::kBackendOption: return "backend";
    case kPlain: return "plain";
    case kTlsCa: return "tls-ca";
    case kTlsPin: return "tls-pin";
    case kInsecure: return "insecure";
    default: return nullptr;
  }
}


struct CommandSpec {
  const char* name;
  Verb verb;
  size_t min_operands;
  size_t max_operands;
  const char* synopsis;
};

const CommandSpec kCommands[] = {
    {"get", Verb::kGet, 1, SIZE_MAX, "get [-r] REMOTE... [LOCAL]"},
    {"put", Verb::kPut, 1, SIZE_MAX, "put [-r] LOCAL... [REMOTE]"},
    {"stat", Verb::kStat, 1, 1, "stat PATH"},
    {"ls", Verb::kList, 0, 1, "ls [-lh] [PATH]"},
    {"ping", Verb::kPing, 0, 0, "ping"},
    {"send", Verb::kSend, 1, 1, "send MESSAGE"},
    {"bench", Verb::kBench, 0, 2, "bench [ping | get PATH | stat PATH | handshake | idle]"},
};


// The command, found before the real parse, for the letters whose meaning depends on
// it: -c is --connections N for bench and --continue everywhere else; -h is ls's
// --human-readable (as in ls -lh) and --help everywhere else. An option argument is
// skipped; a -c counts as bench's only when a number follows it.
struct PreScan {
  bool bench = false;
  bool ls = false;
  bool c_with_number = false;  // "-c N" seen
};

PreScan pre_scan(int argc, char** argv) {
  PreScan scan;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      scan.bench = i + 1 < argc && std::string_view(argv[i + 1]) == "bench";
      scan.ls = i + 1 < argc && std::string_view(argv[i + 1]) == "ls";
      return scan;
    }
    if (arg.size() > 1 && arg[0] == '-' && arg[1] != '-') {
      char last = arg.back();
      bool c_number = last == 'c' && i + 1 < argc && std::isdigit(static_cast<unsigned char>(argv[i + 1][0]));
      scan.c_with_number = scan.c_with_number || c_number;
      bool wants_value = std::string_view("sktndF").find(last) != std::string_view::npos || c_number;
      // "-s" alone takes the next word; "-shost" has its value attached.
      if (wants_value && arg.find_first_of("sktndFc") == arg.size() - 1) ++i;
      continue;
    }
    if (arg.size() > 2 && arg[0] == '-') {
      static const char* const kWithValue[] = {"--server", "--secret-file", "--timeout", "--progress", "--requests",
                                               "--duration", "--pipeline", "--source", "--tls-ca", "--tls-pin",
                                               "--backend", "--connections", "--limit-rate", "--config", "--retry"};
      for (const char* name : kWithValue)
        if (arg == name) ++i;
      continue;
    }
    scan.bench = arg == "bench";
    scan.ls = arg == "ls";
    return scan;
  }
  return scan;
}

}  // namespace

bool valid_tls_pin(const char* text) {
  std::string_view pin(text);
  if (pin.size() != 7 + 64 || pin.substr(0, 7) != "sha256:") return false;
  for (char c : pin.substr(7))
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

ParseResult parse_options(int argc, char** argv, Options* out) {
  const PreScan scan = pre_scan(argc, argv);
  const bool bench = scan.bench;
  const bool ls = scan.ls;
  if (!bench && scan.c_with_number)
    return app::fail_usage("reactorc", "%s", "-c N is bench's --connections; -c (--continue) of get and put takes no value");
  static const std::vector<struct option> kLong = app::with_common_options({
      {"server", required_argument, nullptr, 's'},
      {"secret-file", required_argument, nullptr, 'k'},
      {"force", no_argument, nullptr, 'f'},
      {"preserve", no_argument, nullptr, 'p'},
      {"recursive", no_argument, nullptr, 'r'},
      {"links", no_argument, nullptr, kLinks},
      {"timeout", required_argument, nullptr, 't'},
      {"progress", required_argument, nullptr, kProgress},
      {"connections", required_argument, nullptr, kConnections},
      {"continue", no_argument, nullptr, kContinue},
      {"retry", required_argument, nullptr, kRetry},
      {"limit-rate", required_argument, nullptr, kLimitRate},
      {"config", required_argument, nullptr, 'F'},
      {"tutorial", no_argument, nullptr, kTutorial},
      {"tutorial-auth", no_argument, nullptr, kTutorialAuth},
      {"requests", required_argument, nullptr, 'n'},
      {"duration", required_argument, nullptr, 'd'},
      {"pipeline", required_argument, nullptr, kPipeline},
      {"source", required_argument, nullptr, kSource},
      {"json", no_argument, nullptr, kJson},
      {"plain", no_argument, nullptr, kPlain},
      {"tls-ca", required_argument, nullptr, kTlsCa},
      {"tls-pin", required_argument, nullptr, kTlsPin},
      {"insecure", no_argument, nullptr, kInsecure},
      {"long", no_argument, nullptr, 'l'},
      {"human-readable", no_argument, nullptr, kHuman},
  });
  static const app::CommonParse kCommon{"reactorc", kUsage, 1, kLong.data()};
  opterr = 0;
  optind = 0;  // 0, not 1: glibc then also resets its scanning state, so a parser can run twice
  // The first option given that only one command uses: refused for the others, not
  // silently ignored (a wget user's -c, bench's --json on ls). --progress is a display
  // preference, accepted everywhere so that an alias or a script can always pass it.
  const char* bench_only = nullptr;
  const char* transfer_only = nullptr;  // get and put
  const char* ls_only = nullptr;
  int c;
  const char* short_options = bench ? ":s:k:F:fprt:c:n:d:lqvhV" : ":s:k:F:fprt:cn:d:lqvhV";
  int long_index = -1;
  while ((c = getopt_long(argc, argv, short_options, kLong.data(), &long_index)) != -1) {
    if (c == 'c') c = bench ? kConnections : kContinue;
    if (c == 'h' && ls && long_index < 0) c = kHuman;  // -h, not --help
    long_index = -1;
    if (const char* key = config_key(c)) out->given.insert(key);
    switch (c) {
      case kConnections: bench_only = bench_only ? bench_only : "-c/--connections"; break;
      case 'n': bench_only = bench_only ? bench_only : "-n/--requests"; break;
      case 'd': bench_only = bench_only ? bench_only : "-d/--duration"; break;
      case kPipeline: bench_only = bench_only ? bench_only : "--pipeline"; break;
      case kSource: bench_only = bench_only ? bench_only : "--source"; break;
      case kJson: bench_only = bench_only ? bench_only : "--json"; break;
      case 'f': transfer_only = transfer_only ? transfer_only : "-f/--force"; break;
      case kContinue: transfer_only = transfer_only ? transfer_only : "-c/--continue"; break;
      case kRetry: transfer_only = transfer_only ? transfer_only : "--retry"; break;
      case kLimitRate: transfer_only = transfer_only ? transfer_only : "--limit-rate"; break;
      case 'p': transfer_only = transfer_only ? transfer_only : "-p/--preserve"; break;
      case 'r': transfer_only = transfer_only ? transfer_only : "-r/--recursive"; break;
      case kLinks: transfer_only = transfer_only ? transfer_only : "--links"; break;
      case 'l': ls_only = ls_only ? ls_only : "-l/--long"; break;
      case kHuman: ls_only = ls_only ? ls_only : "--human-readable"; break;
      default: break;
    }
    switch (c) {
      case 's': out->server = optarg; break;
      case 'k': out->secret_file = optarg; break;
      case 'F': out->config_file = optarg; break;
      case 'f': out->force = true; break;
      case 'p': out->preserve = true; break;
      case 'r': out->recursive = true; break;
      case kLinks: out->links = true; break;
      case kContinue: out->resume = true; break;
      case kRetry:
        if (!app::parse_count(optarg, 0, 100, &out->retry))
          return app::fail_usage("reactorc", "invalid --retry '%s': expected 0 to 100", optarg);
        break;
      case kLimitRate:
        if (!app::parse_size(optarg, &out->limit_rate) || out->limit_rate == 0)
          return app::fail_usage("reactorc", "invalid --limit-rate '%s': expected bytes a second, e.g. 500K or 10M",
                                 optarg);
        break;
      case 't':
        if (!app::parse_seconds(optarg, &out->timeout))
          return app::fail_usage("reactorc", "invalid --timeout '%s': expected seconds, e.g. 30", optarg);
        break;
      case kProgress:
        if (!parse_progress_style(optarg, &out->progress))
          return app::fail_usage("reactorc", "invalid --progress '%s': expected bar, plane, rainbow, none or json", optarg);
        out->progress_given = true;
        break;
      case kConnections:
        if (!app::parse_count(optarg, 1, 1'000'000, &out->bench_connections))
          return app::fail_usage("reactorc", "invalid --connections '%s': expected 1 to 1000000", optarg);
        break;
      case 'n':
        if (!app::parse_count(optarg, 1, UINT64_MAX / 2, &out->bench_requests))
          return app::fail_usage("reactorc", "invalid --requests '%s': expected a positive count", optarg);
        break;
      case 'd':
        if (!app::parse_seconds(optarg, &out->bench_duration))
          return app::fail_usage("reactorc", "invalid --duration '%s': expected seconds, e.g. 10", optarg);
        break;
      case kPipeline:
        if (!app::parse_count(optarg, 1, 1024, &out->bench_pipeline))
          return app::fail_usage("reactorc", "invalid --pipeline '%s': expected 1 to 1024", optarg);
        break;
      case kSource: {
        std::string why;
        if (!SourceRange::parse(optarg, &out->bench_sources, &why))
          return app::fail_usage("reactorc", "invalid --source '%s': %s", optarg, why.c_str());
        break;
      }
      case kJson: out->json = true; break;
      case kPlain: out->plain = true; break;
      case kTlsCa: out->tls_ca = optarg; break;
      case kTlsPin:
        if (!valid_tls_pin(optarg))
          return app::fail_usage("reactorc", "invalid --tls-pin '%s': expected sha256: and 64 hex digits", optarg);
        out->tls_pin = optarg;
        break;
      case kInsecure: out->insecure = true; break;
      case 'l': out->long_listing = true; break;
      case kTutorial: out->tutorial = true; break;
      case kTutorialAuth: out->tutorial_auth = true; break;
      case kHuman: out->human_sizes = true; break;
      default: {
        ParseResult common = app::parse_common_option(c, kCommon, argv, out);
        if (common != ParseResult::kRun) return common;
        break;
      }
    }
  }
  if (out->plain && (!out->tls_ca.empty() || !out->tls_pin.empty() || out->insecure))
    return app::fail_usage("reactorc", "%s", "--plain speaks no TLS: --tls-ca, --tls-pin and --insecure do not apply");
  if (optind >= argc) return app::fail_usage("reactorc", "%s", "no command given (get, put, stat, ls, ping, send or bench)");
  const char* name = argv[optind++];
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& candidate : kCommands)
    if (std::strcmp(candidate.name, name) == 0) spec = &candidate;
  if (spec == nullptr)
    return app::fail_usage("reactorc", "unknown command '%s' (get, put, stat, ls, ping, send or bench)", name);
  out->verb = spec->verb;
  if (bench_only != nullptr && out->verb != Verb::kBench)
    return app::fail_usage("reactorc", "%s applies to bench only, not to %s", bench_only, name);
  if (transfer_only != nullptr && out->verb != Verb::kGet && out->verb != Verb::kPut)
    return app::fail_usage("reactorc", "%s applies to get and put only, not to %s", transfer_only, name);
  if (ls_only != nullptr && out->verb != Verb::kList)
    return app::fail_usage("reactorc", "%s applies to ls only, not to %s", ls_only, name);
  if (out->links && !out->recursive)
    return app::fail_usage("reactorc", "%s", "--links recreates the links inside a tree: use it with -r");
  if (out->tutorial_auth && !out->tutorial)
    return app::fail_usage("reactorc", "%s", "--tutorial-auth answers the tutorial server's challenge: use it with --tutorial");
  if (out->tutorial) {
    // The tutorial's server sends one file to whoever connects: get, and where to put it.
    if (out->verb != Verb::kGet) return app::fail_usage("reactorc", "--tutorial supports get only, not %s", name);
    out->operands.assign(argv + optind, argv + argc);
    if (out->operands.size() > 1) return app::fail_usage("reactorc", "%s", "usage: reactorc --tutorial get [LOCAL]");
    if (out->resume || out->recursive || out->links || out->preserve || out->limit_rate > 0)
      return app::fail_usage("reactorc", "%s", "--tutorial get takes -f, -t, -s and --progress; the tutorial's format "
                                               "has no resume, trees, modes or rate caps");
    if (!out->tls_ca.empty() || !out->tls_pin.empty() || out->insecure)
      return app::fail_usage("reactorc", "%s", "the tutorial's format is plain text: --tls-ca, --tls-pin and --insecure do not apply");
    return ParseResult::kRun;
  }
  out->operands.assign(argv + optind, argv + argc);
  if (out->operands.size() < spec->min_operands || out->operands.size() > spec->max_operands)
    return app::fail_usage("reactorc", "usage: reactorc %s", spec->synopsis);
  if (out->verb == Verb::kSend && out->operands[0].size() > protocol::kMaxTextLen)
    return app::fail_usage("reactorc", "the message is %zu bytes; the protocol allows at most %zu", out->operands[0].size(),
                      protocol::kMaxTextLen);
  // The remote path: get's, stat's and ls's first operand; put's second (or LOCAL's
  // name, checked once known).
  size_t remote = out->verb == Verb::kPut ? 1 : 0;
  if (out->verb != Verb::kSend && out->verb != Verb::kPing && out->verb != Verb::kBench &&
      out->operands.size() > remote && out->operands[remote].size() > protocol::kMaxPathLen)
    return app::fail_usage("reactorc", "the path is %zu bytes; the protocol allows at most %zu", out->operands[remote].size(),
                      protocol::kMaxPathLen);
  return ParseResult::kRun;
}

}  // namespace client
