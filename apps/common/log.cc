#include "apps/common/log.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <ctime>

namespace app {
namespace {

const char* g_program = "reactor";
LogLevel g_level = LogLevel::kInfo;
bool g_timestamps = false;
int g_fd = STDERR_FILENO;
bool g_socket = false;          // send with MSG_DONTWAIT
unsigned long long g_dropped = 0;  // lines lost since the last one written

// One whole line, or nothing: false if it was not written entirely.
bool write_line(const char* line, size_t used) {
  for (size_t done = 0; done < used;) {
    ssize_t n = g_socket ? send(g_fd, line + done, used - done, MSG_DONTWAIT | MSG_NOSIGNAL)
                         : write(g_fd, line + done, used - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // a closed, full or unread stderr must never stop the server
    done += static_cast<size_t>(n);
  }
  return true;
}

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
  if (g_dropped > 0) {
    char note[160];
    int n = snprintf(note, sizeof note, "%s: warning: %llu log line%s dropped: the log was not being read fast enough\n",
                     g_program, g_dropped, g_dropped == 1 ? "" : "s");
    if (n > 0 && write_line(note, static_cast<size_t>(n))) g_dropped = 0;
  }
  // Lines are under PIPE_BUF, so a pipe takes each whole or not at all.
  // While the note itself cannot go, neither can this line: it would come before it.
  if (g_dropped > 0 || !write_line(line, used)) ++g_dropped;
  errno = saved_errno;
}

}  // namespace

void log_init(const char* program, LogLevel level, bool timestamps) {
  g_program = program;
  g_level = level;
  g_timestamps = timestamps;
}

void log_set_timestamps(bool timestamps) { g_timestamps = timestamps; }

bool log_never_block(std::string* err) {
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return true;  // no stderr: writes fail at once
  if (S_ISSOCK(st.st_mode)) {
    g_socket = true;
    return true;
  }
  if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) return true;  // files and /dev/null never wait
  int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_APPEND);
  if (fd < 0) {
    *err = std::string("reopen stderr non-blocking through /proc/self/fd/2: ") + strerror(errno) +
           "; a log that is not read can stall the server";
    return false;
  }
  g_fd = fd;
  return true;
}

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
