#include "apps/common/cli.h"

#include <cjson/cJSON.h>
#include <openssl/opensslv.h>

#include <cerrno>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "protocol/messages.h"

#ifndef REACTOR_VERSION
#define REACTOR_VERSION "0.0.0"
#endif

namespace app {

bool parse_seconds(std::string_view text, std::chrono::milliseconds* out) {
  if (text.empty() || text.size() > 32) return false;
  std::string copy(text);
  char* end = nullptr;
  errno = 0;
  double seconds = std::strtod(copy.c_str(), &end);
  if (errno != 0 || end != copy.c_str() + copy.size() || !std::isfinite(seconds)) return false;
  if (seconds <= 0 || seconds > 86400) return false;
  *out = std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000)));
  return out->count() > 0;
}

bool parse_count(std::string_view text, uint64_t min, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;
    value = value * 10 + digit;
  }
  if (value < min || value > max) return false;
  *out = value;
  return true;
}

void usage_error_v(const char* program, const char* fmt, va_list args) {
  // The same "PROGRAM: error: " as every other error of the programs.
  std::fprintf(stderr, "%s: error: ", program);
  std::vfprintf(stderr, fmt, args);
  std::fprintf(stderr, "\nTry '%s --help' for more information.\n", program);
}

ParseResult fail_usage(const char* program, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  usage_error_v(program, fmt, args);
  va_end(args);
  return ParseResult::kUsageError;
}

void usage_error(const char* program, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  usage_error_v(program, fmt, args);
  va_end(args);
}

int close_stdout(const char* program, int status, int failure) {
  bool failed = std::ferror(stdout) != 0;
  int errnum = errno;
  if (std::fclose(stdout) != 0) {
    failed = true;
    errnum = errno;
  }
  if (!failed) return status;
  std::fprintf(stderr, "%s: error: write standard output: %s\n", program, std::strerror(errnum != 0 ? errnum : EIO));
  return status == 0 ? failure : status;
}

void print_version(const char* program) {
  std::printf("%s %s (protocol %llu; %s; cJSON %s)\n", program, REACTOR_VERSION,
              static_cast<unsigned long long>(protocol::kProtocolVersion), OPENSSL_VERSION_TEXT, cJSON_Version());
}

std::vector<struct option> with_common_options(std::initializer_list<struct option> own) {
  std::vector<struct option> all(own);
  all.push_back({"backend", required_argument, nullptr, kBackendOption});
  all.push_back({"quiet", no_argument, nullptr, 'q'});
  all.push_back({"verbose", no_argument, nullptr, 'v'});
  all.push_back({"help", no_argument, nullptr, 'h'});
  all.push_back({"version", no_argument, nullptr, 'V'});
  all.push_back({nullptr, 0, nullptr, 0});
  return all;
}

ParseResult parse_common_option(int c, const CommonParse& how, char** argv, CommonOptions* out) {
  switch (c) {
    case kBackendOption:
      if (std::strcmp(optarg, "epoll") != 0 && std::strcmp(optarg, "poll") != 0)
        return fail_usage(how.program, "invalid --backend '%s': expected epoll or poll", optarg);
      out->backend = optarg;
      return ParseResult::kRun;
    case 'q':
      out->verbosity = -1;
      return ParseResult::kRun;
    case 'v':
      if (out->verbosity >= 0 && out->verbosity < how.max_verbosity) ++out->verbosity;  // -q wins, in any order
      return ParseResult::kRun;
    case 'h':
      std::fputs(how.usage, stdout);
      return ParseResult::kExitOk;
    case 'V':
      print_version(how.program);
      return ParseResult::kExitOk;
    case ':':
      return fail_usage(how.program, "option '%s' needs an argument", argv[optind - 1]);
    default: {
      // getopt says '?' for an abbreviation of several long options too: name them.
      const char* arg = argv[optind - 1];
      if (how.long_options != nullptr && std::strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
        std::string given(arg + 2);
        given = given.substr(0, given.find('='));
        std::string matches;
        size_t count = 0;
        for (const struct option* o = how.long_options; o->name != nullptr; ++o) {
          if (std::strncmp(o->name, given.c_str(), given.size()) == 0) {
            matches += std::string(matches.empty() ? "" : " ") + "--" + o->name;
            ++count;
          }
        }
        if (count > 1)
          return fail_usage(how.program, "option '%s' is ambiguous: it could be %s", arg, matches.c_str());
      }
      return fail_usage(how.program, "unknown option '%s'", arg);
    }
  }
}

LogLevel log_level_for(int verbosity) {
  return verbosity < 0 ? LogLevel::kError : verbosity == 0 ? LogLevel::kInfo : LogLevel::kDebug;
}

std::unique_ptr<reactor::EventLoop> create_loop(const CommonOptions& options, bool* config_error, std::string* err) {
  *config_error = false;
  reactor::Backend backend = reactor::Backend::kEpoll;
  if (!options.backend.empty()) {
    reactor::parse_backend(options.backend, &backend);
  } else if (!reactor::backend_from_env(&backend, err)) {
    *config_error = true;
    return nullptr;
  }
  return reactor::EventLoop::create(backend, err);
}

}  // namespace app
