// AuthThrottle: the slow-down of repeated authentication failures (apps/reactord).
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <chrono>
#include <optional>
#include <string>

#include "apps/reactord/auth_throttle.h"

using server::AuthThrottle;
using Clock = AuthThrottle::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);
}

TestSuite(auth_throttle, .timeout = 10);

Test(auth_throttle, an_address_without_failures_is_never_delayed) {
  AuthThrottle t;
  cr_assert(t.verdict_time("10.0.0.1", kStart) == kStart);
  cr_assert(t.verdict_time("10.0.0.1", kStart) == kStart);
  cr_assert_eq(t.tracked(), 0u);
}

Test(auth_throttle, penalty_starts_at_100ms_and_doubles_up_to_5s) {
  AuthThrottle t;
  Clock::time_point now = kStart;
  const milliseconds expected[] = {milliseconds(100), milliseconds(200), milliseconds(400), milliseconds(800),
                                   milliseconds(1600), milliseconds(3200), milliseconds(5000), milliseconds(5000)};
  for (milliseconds want : expected) {
    t.record_failure("::1", now);
    // Far apart in time, so only the penalty (not the queue) sets the delay.
    now += std::chrono::minutes(1);
    cr_assert(t.verdict_time("::1", now) - now == want, "after %zu failures: got %lld ms, want %lld ms",
              t.failures("::1"),
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(t.verdict_time("::1", now) - now).count()),
              static_cast<long long>(want.count()));
    now += std::chrono::minutes(1);
  }
}

Test(auth_throttle, parallel_attempts_from_one_address_are_serialised) {
  AuthThrottle t;
  t.record_failure("10.0.0.2", kStart);
  // Three handshakes complete at the same instant: one verdict per penalty, in turn.
  cr_assert(t.verdict_time("10.0.0.2", kStart) == kStart + milliseconds(100));
  cr_assert(t.verdict_time("10.0.0.2", kStart) == kStart + milliseconds(200));
  cr_assert(t.verdict_time("10.0.0.2", kStart) == kStart + milliseconds(300));
  // Another address is not affected.
  cr_assert(t.verdict_time("10.0.0.3", kStart) == kStart);
}

Test(auth_throttle, success_clears_the_address) {
  AuthThrottle t;
  t.record_failure("10.0.0.4", kStart);
  t.record_failure("10.0.0.4", kStart);
  cr_assert_eq(t.failures("10.0.0.4"), 2u);
  t.record_success("10.0.0.4");
  cr_assert_eq(t.failures("10.0.0.4"), 0u);
  cr_assert(t.verdict_time("10.0.0.4", kStart) == kStart);
}

Test(auth_throttle, failures_are_forgotten_after_ten_quiet_minutes) {
  AuthThrottle t;
  t.record_failure("10.0.0.5", kStart);
  t.prune(kStart + std::chrono::minutes(9));
  cr_assert_eq(t.failures("10.0.0.5"), 1u);
  t.prune(kStart + std::chrono::minutes(10));
  cr_assert_eq(t.failures("10.0.0.5"), 0u);
  cr_assert_eq(t.tracked(), 0u);
}

Test(auth_throttle, the_table_is_bounded) {
  AuthThrottle t;
  for (size_t i = 0; i < AuthThrottle::kMaxTracked + 100; ++i) t.record_failure("a" + std::to_string(i), kStart);
  cr_assert_eq(t.tracked(), AuthThrottle::kMaxTracked);
  // Once old entries expire, room is made for new addresses.
  t.record_failure("late", kStart + std::chrono::minutes(11));
  cr_assert_eq(t.failures("late"), 1u);
}

// A burst turned away at once must not push the queue back: 150 attempts that would all
// land after their deadlines reserve nothing, so an attempt after the burst waits one
// penalty, not 150 (the lockout amplification a hostile run found).
Test(auth_throttle, attempts_turned_away_reserve_nothing) {
  AuthThrottle t;
  t.record_failure("10.0.0.6", kStart);
  t.record_failure("10.0.0.6", kStart);  // penalty 200 ms
  const Clock::time_point deadline = kStart + seconds(1);
  size_t kept = 0;
  for (int i = 0; i < 150; ++i) {
    if (t.reserve_verdict("10.0.0.6", kStart, deadline)) ++kept;
  }
  cr_assert_eq(kept, 5u, "200 ms apart within 1 s: five verdicts fit");
  // A second later the queue is as long as those five made it, no longer.
  Clock::time_point later = kStart + seconds(2);
  std::optional<Clock::time_point> slot = t.reserve_verdict("10.0.0.6", later, later + seconds(10));
  cr_assert(slot.has_value());
  cr_assert(*slot - later == milliseconds(200), "waits one penalty: %lld ms",
            static_cast<long long>(std::chrono::duration_cast<milliseconds>(*slot - later).count()));
}

// Forgetting after ten quiet minutes does not wait for reserved verdicts to go out.
Test(auth_throttle, a_long_queue_does_not_stop_forgetting) {
  AuthThrottle t;
  for (int i = 0; i < 10; ++i) t.record_failure("10.0.0.7", kStart);
  for (int i = 0; i < 100; ++i) t.verdict_time("10.0.0.7", kStart);  // 500 s of queue, unbounded
  t.prune(kStart + std::chrono::minutes(10));
  cr_assert_eq(t.failures("10.0.0.7"), 0u);
}
