#include "tests/support/deadline.h"

#include <cerrno>
#include <climits>
#include <ctime>

namespace testsupport {

Millis Deadline::remaining() const {
  auto left = end_ - Clock::now();
  if (left <= Clock::duration::zero()) return Millis(0);
  return std::chrono::ceil<Millis>(left);
}

int Deadline::poll_timeout_ms() const {
  auto ms = remaining().count();
  if (ms > INT_MAX) return INT_MAX;
  return static_cast<int>(ms);
}

void sleep_for(Millis duration) {
  if (duration <= Millis(0)) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(duration.count() / 1000);
  ts.tv_nsec = static_cast<long>((duration.count() % 1000) * 1000000);
  // Bounded: nanosleep leaves the remainder in ts, so EINTR only resumes the same sleep.
  for (int i = 0; i < 1000 && nanosleep(&ts, &ts) != 0 && errno == EINTR; ++i) {
  }
}

bool wait_until(const std::function<bool()>& pred, Millis timeout, Millis interval) {
  Deadline deadline(timeout);
  if (interval <= Millis(0)) interval = Millis(1);
  for (;;) {
    if (pred()) return true;
    if (deadline.expired()) return false;
    auto left = deadline.remaining();
    sleep_for(left < interval ? left : interval);
    if (deadline.expired()) return pred();
  }
}

}  // namespace testsupport
