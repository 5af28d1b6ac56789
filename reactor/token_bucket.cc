#include "reactor/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace reactor {

TokenBucket::TokenBucket(uint64_t rate, Clock::time_point now)
    : rate_(rate),
      capacity_(std::max(1.0, static_cast<double>(rate) / 10.0)),
      tokens_(capacity_),
      last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
  if (now <= last_) return;
  double seconds = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(capacity_, tokens_ + seconds * static_cast<double>(rate_));
  last_ = now;
}

uint64_t TokenBucket::available(Clock::time_point now) {
  if (rate_ == 0) return UINT64_MAX;
  refill(now);
  return tokens_ >= 1.0 ? static_cast<uint64_t>(tokens_) : 0;
}

void TokenBucket::spend(uint64_t bytes) {
  if (rate_ == 0) return;
  tokens_ -= static_cast<double>(bytes);
}

TokenBucket::Clock::duration TokenBucket::wait(Clock::time_point now) const {
  if (rate_ == 0) return Clock::duration::zero();
  double step = std::min(capacity_, std::max(1.0, static_cast<double>(rate_) / 100.0));
  double tokens = tokens_;
  if (now > last_) tokens = std::min(capacity_, tokens + std::chrono::duration<double>(now - last_).count() * static_cast<double>(rate_));
  if (tokens >= step) return Clock::duration::zero();
  double seconds = (step - tokens) / static_cast<double>(rate_);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)) +
         std::chrono::microseconds(1);  // never a zero wait that finds the step not quite there
}

}  // namespace reactor
