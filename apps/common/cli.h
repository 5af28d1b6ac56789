#pragma once
// Small pieces both programs' option parsers share.

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <string_view>

namespace app {

// Exit status for a command-line usage error (both programs).
constexpr int kExitUsage = 2;

// "10", "2.5", "0.1": seconds, > 0 and at most a day (a longer timeout is a typo).
bool parse_seconds(std::string_view text, std::chrono::milliseconds* out);
// A decimal count in [min, max].
bool parse_count(std::string_view text, uint64_t min, uint64_t max, uint64_t* out);

// What an option parser decided: run, exit 0 (after --help/--version), or exit 2.
enum class ParseResult { kRun, kExitOk, kUsageError };

// Prints "PROGRAM: <message>" and the --help hint to stderr and returns kUsageError.
ParseResult fail_usage(const char* program, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Prints "PROGRAM: <message>" and the --help hint to stderr, as getopt-style tools do.
void usage_error(const char* program, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void usage_error_v(const char* program, const char* fmt, va_list args) __attribute__((format(printf, 2, 0)));

// Prints "PROGRAM VERSION" and the library versions it was built against, to stdout.
void print_version(const char* program);

}  // namespace app
