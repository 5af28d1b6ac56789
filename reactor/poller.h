#pragma once
// Poller: the one small interface between the event loop and the kernel's readiness API.
// Two implementations sit behind it (epoll_poller, poll_poller), chosen at run time so that
// every test can run against both (REACTOR_BACKEND=epoll|poll).
//
// A Poller only watches descriptors; it never owns, reads or closes them. Readiness is
// level-triggered in both backends: an fd stays reported for as long as the condition holds.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace reactor {

// Interest and readiness bits, shared by both backends. kHangup and kError are always
// reported when they occur, whatever the interest mask says (the kernel does so too), so a
// watcher with an empty mask still learns that its peer went away.
enum Events : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kHangup = 1u << 2,
  kError = 1u << 3,
};

struct Ready {
  int fd;
  uint32_t events;
};

class Poller {
 public:
  virtual ~Poller() = default;

  // Starts watching `fd` for `events` (kReadable | kWritable; other bits are ignored), or
  // changes the mask of an fd already watched. False + *err on failure.
  virtual bool watch(int fd, uint32_t events, std::string* err) = 0;

  // Stops watching `fd`; a no-op for an fd not watched. Call it before closing the fd: an
  // epoll registration outlives close() when the open file has another descriptor (dup,
  // fork), and the kernel would keep reporting an fd number that no longer means anything.
  virtual void unwatch(int fd) = 0;

  // Stops watching `fd` that the caller is about to close and of whose open file it holds
  // no other descriptor (no dup(), no fork() while it was open): closing the last
  // descriptor ends an epoll registration by itself, so epoll skips the EPOLL_CTL_DEL
  // system call. Otherwise the same as unwatch().
  virtual void forget(int fd) { unwatch(fd); }

  // Waits up to timeout_ms (-1: forever, 0: just look) and replaces `out` with the ready
  // descriptors. Returns their count; an interrupted wait (EINTR) returns 0, not an error.
  // -1 + *err only for failures that retrying cannot fix.
  virtual int wait(int timeout_ms, std::vector<Ready>& out, std::string* err) = 0;

  virtual const char* name() const = 0;
};

enum class Backend { kEpoll, kPoll };

std::unique_ptr<Poller> make_poller(Backend backend, std::string* err);

// "epoll" or "poll", exactly; false for anything else.
bool parse_backend(std::string_view name, Backend* out);

const char* backend_name(Backend backend);

// Reads REACTOR_BACKEND: unset or empty selects epoll, "epoll"/"poll" select that backend,
// and any other value is an error rather than a silent fallback, so a typo in a test run
// cannot quietly test the wrong backend.
bool backend_from_env(Backend* out, std::string* err);

}  // namespace reactor
