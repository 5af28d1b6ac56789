#pragma once
// Driving an in-process reactor::EventLoop from a test: run it until a condition holds
// (bounded in time), and the peer side of a socketpair without blocking the loop.

#include <functional>
#include <memory>
#include <string>

#include "reactor/event_loop.h"
#include "tests/support/deadline.h"
#include "tests/support/fd.h"

namespace testsupport {

// A loop with the backend REACTOR_BACKEND names (the suite runs once per backend).
// Asserts with Criterion that it could be made: call it from a test only.
std::unique_ptr<reactor::EventLoop> make_loop();

// Runs `loop` until `done()` is true (checked after every iteration's timers, at least
// every millisecond) or `timeout` passes. True if done() became true.
bool run_until(reactor::EventLoop& loop, const std::function<bool()>& done, Millis timeout = Millis(5000));

// Runs `loop` for `time`, whatever happens.
void run_for(reactor::EventLoop& loop, Millis time);

// A connected AF_UNIX stream socketpair: `a` non-blocking and close-on-exec (for the
// code under test), `b` blocking (the test's side). False + *err on failure.
bool stream_socketpair(Fd* a, Fd* b, std::string* err);

// Everything that can be read from `fd` right now, without waiting (`fd` may be blocking).
// *eof (optional) is set when the peer has closed its sending side.
std::string read_available(int fd, bool* eof = nullptr);

}  // namespace testsupport

#include <deque>
#include <optional>

#include "tests/support/raw_client.h"

namespace testsupport {

// The test's side of a socketpair whose other end an in-process loop serves: frames are
// read without blocking, while the loop runs, so the code under test can keep producing.
class LoopPeer {
 public:
  LoopPeer(reactor::EventLoop& loop, Fd fd) : loop_(loop), fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }
  // All of `bytes` (the socket is blocking; a few hundred KiB fit its buffer).
  bool send(const std::string& bytes);
  // The next whole frame, running the loop until it has arrived (false on timeout,
  // end of stream or a malformed frame; *why says which).
  bool next(Frame* frame, Millis timeout = Millis(10000), std::string* why = nullptr);
  // Runs the loop until the peer reads end of stream; bytes before it are kept in
  // *rest (or must be none when rest is null). False on timeout.
  bool wait_eof(Millis timeout = Millis(10000), std::string* rest = nullptr);
  size_t buffered() const { return pending_.size(); }

 private:
  bool try_split(Frame* frame, std::string* why);

  reactor::EventLoop& loop_;
  Fd fd_;
  std::string pending_;
  bool eof_ = false;
};

}  // namespace testsupport
