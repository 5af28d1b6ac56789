#include "apps/common/cli.h"

#include <cjson/cJSON.h>
#include <openssl/opensslv.h>

#include <cerrno>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

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
  std::fprintf(stderr, "%s: ", program);
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

void print_version(const char* program) {
  std::printf("%s %s (protocol 1; %s; cJSON %s)\n", program, REACTOR_VERSION, OPENSSL_VERSION_TEXT,
              cJSON_Version());
}

}  // namespace app
