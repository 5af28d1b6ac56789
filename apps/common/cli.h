#pragma once
// Small pieces both programs' option parsers share.

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <getopt.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "apps/common/log.h"
#include "reactor/event_loop.h"

namespace app {

// Exit status for a command-line usage error (both programs).
constexpr int kExitUsage = 2;

// "10", "2.5", "0.1": seconds, > 0 and at most a day (a longer timeout is a typo).
bool parse_seconds(std::string_view text, std::chrono::milliseconds* out);
// A decimal count in [min, max].
bool parse_count(std::string_view text, uint64_t min, uint64_t max, uint64_t* out);

// What an option parser decided: run, exit 0 (after --help/--version), or exit 2.
enum class ParseResult { kRun, kExitOk, kUsageError };

// The exit status of a parse that does not run the program: 0 after --help or
// --version, kExitUsage after a usage error.
inline int exit_status_of(ParseResult parsed) { return parsed == ParseResult::kExitOk ? 0 : kExitUsage; }

// GNU coreutils' close_stdout rule: output that never reached its reader is a failure
// (`reactorc ls >/dev/full`, `reactord --help >/dev/full`). Flushes and closes stdout;
// if that or an earlier write failed, says "PROGRAM: error: write standard output: ..."
// and returns FAILURE when STATUS was 0 (an earlier failure keeps its own status).
int close_stdout(const char* program, int status, int failure);

// Prints "PROGRAM: error: <message>" and the --help hint to stderr and returns kUsageError.
ParseResult fail_usage(const char* program, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Prints "PROGRAM: error: <message>" and the --help hint to stderr, as getopt-style tools do.
void usage_error(const char* program, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void usage_error_v(const char* program, const char* fmt, va_list args) __attribute__((format(printf, 2, 0)));

// Prints "PROGRAM VERSION" and the library versions it was built against, to stdout.
void print_version(const char* program);

// The options both programs spell and treat alike: --backend NAME, -q, -v, -h, -V.
struct CommonOptions {
  std::string backend;  // empty means $REACTOR_BACKEND, else epoll
  int verbosity = 0;    // -q: -1 (whatever -v says), each -v: +1 up to the program's most
};

// The long-option code of --backend, above every short option's character.
inline constexpr int kBackendOption = 0x100;
// `own` (not terminated) followed by the common long options and the terminator, as
// getopt_long wants them.
std::vector<struct option> with_common_options(std::initializer_list<struct option> own);

// What getopt_long's `c` means when the program's own switch does not know it: one of the
// common options (kRun: go on parsing), --help or --version (printed: kExitOk), or a
// usage error getopt reported (kUsageError, already printed).
struct CommonParse {
  const char* program;
  const char* usage;
  int max_verbosity;
  const struct option* long_options = nullptr;  // for naming an ambiguous abbreviation's candidates
};
ParseResult parse_common_option(int c, const CommonParse& how, char** argv, CommonOptions* out);

// The log level a verbosity asks for: errors only at -1, then info, then debug (when the
// program's -v means that).
LogLevel log_level_for(int verbosity);

// The event loop the options name: --backend, else $REACTOR_BACKEND, else epoll. Null
// + *err on failure; *config_error says whether the environment was at fault (a
// configuration error) rather than the system.
std::unique_ptr<reactor::EventLoop> create_loop(const CommonOptions& options, bool* config_error, std::string* err);

}  // namespace app
