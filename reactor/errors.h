#pragma once
// Error messages with context, the one format the whole project uses:
//   open "/srv/x": Permission denied
//   bind 127.0.0.1:9000: Address already in use   (callers that want no quotes build it so)
// Library code reports failures through a `std::string* err` out-parameter instead of
// exiting or throwing; these helpers make that one line at each call site.

#include <string>
#include <string_view>

namespace reactor {

// `what "object": strerror(errno)`, or `what: strerror(errno)` when object is empty.
// Reads errno first thing, so it is safe to call right after the failing system call.
std::string sys_error(std::string_view what, std::string_view object = {});

// The same with an explicit error number (SO_ERROR, a saved errno, getaddrinfo's EAI_SYSTEM).
std::string sys_error(int errnum, std::string_view what, std::string_view object = {});

// The text for one errno value, thread-safe (strerror() is not).
std::string errno_string(int errnum);

// Stores `message` in *err when the caller asked for it (err may be null) and returns false,
// so that a failing path reads `return set_error(err, sys_error("open", path));`.
bool set_error(std::string* err, std::string message);

}  // namespace reactor
