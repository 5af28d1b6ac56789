#pragma once
// One line per event on stderr, written with a single write(2) so that lines from
// concurrent processes (tests start hundreds of clients) never interleave mid-line.
//
//   2026-11-25T12:00:00.123Z reactord: 127.0.0.1:41234 #7 authenticated
//
// The daemon stamps each line (UTC, milliseconds); the client prints plain
// `reactorc: message` lines, as Unix tools do.

#include <string>

namespace app {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void log_init(const char* program, LogLevel level, bool timestamps);

// For a daemon's event loop: log writes must never wait. A log on a socket (the journal)
// is sent with MSG_DONTWAIT; on a pipe or a terminal, stderr is reopened through
// /proc/self/fd/2 as a description of its own, non-blocking, so the shared one (the
// shell's terminal) keeps its flags. A line that cannot be written at once is dropped
// and counted, and the next line that can be written says how many were lost. (A
// regular file never blocks; a full disk drops lines the same way.) False + *err when
// stderr could not be made so; logging then still works, blocking.
bool log_never_block(std::string* err);
void log_set_timestamps(bool timestamps);
LogLevel log_level();
bool log_enabled(LogLevel level);
const char* program_name();

void log_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// A line about one connection: "PEER #ID" and then fmt, which usually starts with a
// space or a colon ("127.0.0.1:41234 #7 authenticated"). Nothing is formatted when the
// level is off, so callers on hot paths build no strings for it.
void log_connection(LogLevel level, const char* peer, unsigned long long id, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

}  // namespace app
