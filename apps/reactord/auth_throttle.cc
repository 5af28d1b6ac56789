#include "apps/reactord/auth_throttle.h"

#include <algorithm>

namespace server {
namespace {

AuthThrottle::Clock::duration penalty_for(unsigned failures) {
  if (failures == 0) return AuthThrottle::Clock::duration::zero();
  AuthThrottle::Clock::duration penalty = AuthThrottle::kFirstPenalty;
  for (unsigned i = 1; i < failures && penalty < AuthThrottle::kMaxPenalty; ++i) penalty *= 2;
  return std::min(penalty, AuthThrottle::kMaxPenalty);
}

}  // namespace

constexpr AuthThrottle::Clock::duration AuthThrottle::kFirstPenalty;
constexpr AuthThrottle::Clock::duration AuthThrottle::kMaxPenalty;
constexpr AuthThrottle::Clock::duration AuthThrottle::kForgetAfter;

std::optional<AuthThrottle::Clock::time_point> AuthThrottle::reserve_verdict(const std::string& address,
                                                                            Clock::time_point now,
                                                                            Clock::time_point latest) {
  auto it = table_.find(address);
  if (it == table_.end() || it->second.failures == 0) return now;
  Entry& entry = it->second;
  Clock::time_point slot = std::max(now, entry.next_slot) + penalty_for(entry.failures);
  if (slot > latest) return std::nullopt;
  entry.next_slot = slot;
  return slot;
}

void AuthThrottle::record_failure(const std::string& address, Clock::time_point now) {
  auto it = table_.find(address);
  if (it == table_.end()) {
    if (table_.size() >= kMaxTracked) prune(now);
    if (table_.size() >= kMaxTracked) return;
    it = table_.emplace(address, Entry{}).first;
  }
  Entry& entry = it->second;
  if (entry.failures < 64) ++entry.failures;
  entry.last_failure = now;
}

void AuthThrottle::record_success(const std::string& address) { table_.erase(address); }

void AuthThrottle::prune(Clock::time_point now) {
  for (auto it = table_.begin(); it != table_.end();) {
    // Reserved slots lie at most one handshake deadline ahead, far less than this.
    if (now - it->second.last_failure >= kForgetAfter)
      it = table_.erase(it);
    else
      ++it;
  }
}

size_t AuthThrottle::failures(const std::string& address) const {
  auto it = table_.find(address);
  return it == table_.end() ? 0 : it->second.failures;
}

}  // namespace server
