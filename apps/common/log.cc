#include "apps/common/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace app {
namespace {

const char* g_program = "reactor";
LogLevel g_level = LogLevel::kInfo;
bool g_timestamps = false;

// `peer` non-null: the line is about connection `id` from `peer`, written before fmt.
void emit(LogLevel level, const char* peer, unsigned long long id, const char* fmt, va_list args) {
  if (level > g_level) return;
  int saved_errno = errno;  // callers often log and then inspect errno
  char line[2048];
  size_t used = 0;
  if (g_timestamps) {
    struct timeval tv {};
    gettimeofday(&tv, nullptr);
    struct tm tm {};
    gmtime_r(&tv.tv_sec, &tm);
    used = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    used += static_cast<size_t>(snprintf(line + used, sizeof line - used, ".%03dZ ",
                                         static_cast<int>(tv.tv_usec / 1000)));
  }
  const char* tag = level == LogLevel::kError ? "error: " : level == LogLevel::kWarn ? "warning: " : "";
  used += static_cast<size_t>(snprintf(line + used, sizeof line - used, "%s: %s", g_program, tag));
  if (peer != nullptr && used < sizeof line)
    used += static_cast<size_t>(snprintf(line + used, sizeof line - used, "%s #%llu", peer, id));
  if (used < sizeof line) {
    int n = vsnprintf(line + used, sizeof line - used, fmt, args);
    if (n > 0) used += static_cast<size_t>(n);
  }
  // Overlong lines are cut, never split: one event, one line.
  if (used > sizeof line - 2) used = sizeof line - 2;
  line[used++] = '\n';
  for (size_t done = 0; done < used;) {
    ssize_t n = write(STDERR_FILENO, line + done, used - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a closed or full stderr must never stop the server
    done += static_cast<size_t>(n);
  }
  errno = saved_errno;
}

}  // namespace

void log_init(const char* program, LogLevel level, bool timestamps) {
  g_program = program;
  g_level = level;
  g_timestamps = timestamps;
}

void log_set_timestamps(bool timestamps) { g_timestamps = timestamps; }

LogLevel log_level() { return g_level; }
bool log_enabled(LogLevel level) { return level <= g_level; }
const char* program_name() { return g_program; }

#define REACTOR_DEFINE_LOG(name, level) \
  void name(const char* fmt, ...) {     \
    va_list args;                       \
    va_start(args, fmt);                \
    emit(level, nullptr, 0, fmt, args); \
    va_end(args);                       \
  }
REACTOR_DEFINE_LOG(log_error, LogLevel::kError)
REACTOR_DEFINE_LOG(log_warn, LogLevel::kWarn)
REACTOR_DEFINE_LOG(log_info, LogLevel::kInfo)
REACTOR_DEFINE_LOG(log_debug, LogLevel::kDebug)
#undef REACTOR_DEFINE_LOG

void log_connection(LogLevel level, const char* peer, unsigned long long id, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  emit(level, peer, id, fmt, args);
  va_end(args);
}

}  // namespace app
