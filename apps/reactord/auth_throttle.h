#pragma once
// Slows down repeated authentication failures from one address.
//
// A verdict (success or failure alike, so the delay reveals nothing) for an address with
// recent failures is held back, and verdicts for that address are serialised: each one
// is scheduled after the previous. Opening many connections in parallel therefore buys
// an attacker nothing: guesses from one address proceed at one per penalty, where the
// penalty starts at 100 ms and doubles with each failure up to 5 s. A success clears
// the address; failures are forgotten after ten quiet minutes.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>

namespace server {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  static constexpr Clock::duration kFirstPenalty = std::chrono::milliseconds(100);
  static constexpr Clock::duration kMaxPenalty = std::chrono::seconds(5);
  static constexpr Clock::duration kForgetAfter = std::chrono::minutes(10);
  // Bounds the table: a flood of addresses (IPv6 makes them cheap) must not grow memory
  // without limit. Past it, new addresses are simply not tracked until a prune.
  static constexpr size_t kMaxTracked = 65536;

  // When the verdict for a handshake from `address` that completed at `now` may be sent,
  // if that is no later than `latest` (the connection's handshake deadline): the slot is
  // then reserved, and the next verdict for the address queues behind it. Later than
  // `latest`, nothing is reserved and std::nullopt says so: a connection turned away at
  // once must not push everyone else's verdict further back, or one cheap burst of
  // attempts would lock out every client behind the same address.
  std::optional<Clock::time_point> reserve_verdict(const std::string& address, Clock::time_point now,
                                                   Clock::time_point latest);
  // reserve_verdict with no limit.
  Clock::time_point verdict_time(const std::string& address, Clock::time_point now) {
    return *reserve_verdict(address, now, Clock::time_point::max());
  }
  void record_failure(const std::string& address, Clock::time_point now);
  void record_success(const std::string& address);
  // Drops entries without a failure for kForgetAfter; call periodically.
  void prune(Clock::time_point now);

  size_t failures(const std::string& address) const;
  size_t tracked() const { return table_.size(); }

 private:
  struct Entry {
    unsigned failures = 0;
    Clock::time_point last_failure{};
    Clock::time_point next_slot{};  // the earliest time the next verdict may go out
  };
  std::unordered_map<std::string, Entry> table_;
};

}  // namespace server
