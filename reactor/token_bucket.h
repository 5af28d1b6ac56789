#pragma once
// A rate cap for one direction of one connection (--limit-rate): a token bucket that
// fills at `rate` bytes a second up to a tenth of a second's worth, so that a transfer
// moves in small, even steps rather than a second's burst followed by a second's wait.

#include <chrono>
#include <cstdint>

namespace reactor {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket() = default;  // no limit
  // `rate` bytes a second; 0 means no limit. Starts full.
  TokenBucket(uint64_t rate, Clock::time_point now);

  bool limited() const { return rate_ > 0; }
  uint64_t rate() const { return rate_; }
  // Bytes that may move at `now` (UINT64_MAX without a limit).
  uint64_t available(Clock::time_point now);
  // Records `bytes` moved; more than available() is allowed and repaid by waiting.
  void spend(uint64_t bytes);
  // From `now`, how long until a step worth waking for may move: a hundredth of a
  // second's worth of bytes (at least one), so a slow rate costs at most a hundred
  // wakeups a second. Zero when that much is there already.
  Clock::duration wait(Clock::time_point now) const;

 private:
  void refill(Clock::time_point now);

  uint64_t rate_ = 0;
  double capacity_ = 0;  // a tenth of a second's worth, at least one byte
  double tokens_ = 0;    // negative after an overdraft
  Clock::time_point last_{};
};

}  // namespace reactor
