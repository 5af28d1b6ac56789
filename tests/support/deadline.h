#pragma once
// Bounded waiting: every wait in a test has a deadline on the monotonic clock.

#include <chrono>
#include <functional>

namespace testsupport {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

class Deadline {
 public:
  explicit Deadline(Millis timeout) : end_(Clock::now() + timeout) {}
  bool expired() const { return Clock::now() >= end_; }
  // Time left, never negative.
  Millis remaining() const;
  // remaining() for poll(2): rounded up to whole milliseconds, clamped to [0, INT_MAX].
  int poll_timeout_ms() const;

 private:
  Clock::time_point end_;
};

void sleep_for(Millis duration);

// Calls pred() until it returns true (-> true) or timeout has passed (-> false), sleeping
// `interval` between calls. pred() is always called at least once, and once more at the end.
bool wait_until(const std::function<bool()>& pred, Millis timeout, Millis interval = Millis(10));

}  // namespace testsupport
