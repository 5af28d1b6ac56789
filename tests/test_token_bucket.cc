// TokenBucket on its own, on a simulated clock: what --limit-rate lets through, in what
// steps, and how long it asks to wait. None of these tests sleeps.

#include <criterion/criterion.h>

#include <chrono>
#include <cstdint>

#include "reactor/token_bucket.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using reactor::TokenBucket;
using Clock = TokenBucket::Clock;
using std::chrono::milliseconds;

namespace {
const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);
}  // namespace

TestSuite(token_bucket, .timeout = 10);

Test(token_bucket, no_limit_lets_everything_through) {
  TokenBucket bucket;
  cr_assert(!bucket.limited());
  cr_assert_eq(bucket.available(t0), UINT64_MAX);
  bucket.spend(1ull << 40);
  cr_assert_eq(bucket.available(t0), UINT64_MAX);
  cr_assert(bucket.wait(t0) == Clock::duration::zero());
  cr_assert(!TokenBucket(0, t0).limited());
}

// It starts with a tenth of a second's worth and never holds more: an idle connection
// cannot save up a burst.
Test(token_bucket, holds_a_tenth_of_a_second) {
  TokenBucket bucket(1'000'000, t0);
  cr_assert_eq(bucket.available(t0), 100'000u);
  cr_assert_eq(bucket.available(t0 + std::chrono::hours(5)), 100'000u);
}

// Over a simulated minute of spending whatever is there whenever the bucket says so,
// the bytes moved are the rate times the time, plus the one starting tenth, and no
// single step is bigger than a tenth of a second's worth.
Test(token_bucket, moves_the_rate_in_small_steps) {
  const uint64_t rate = 300 * 1024;
  TokenBucket bucket(rate, t0);
  Clock::time_point now = t0;
  uint64_t moved = 0;
  uint64_t biggest = 0;
  int wakeups = 0;
  while (now < t0 + std::chrono::seconds(60) && wakeups < 100'000) {
    uint64_t step = bucket.available(now);
    bucket.spend(step);
    moved += step;
    if (step > biggest) biggest = step;
    Clock::duration wait = bucket.wait(now);
    cr_assert(wait > Clock::duration::zero(), "an empty bucket asks to wait");
    now += wait;
    ++wakeups;
  }
  const double expected = 60.0 * static_cast<double>(rate) + static_cast<double>(rate) / 10.0;
  const double got = static_cast<double>(moved);
  cr_assert(got >= expected * 0.99 && got <= expected * 1.01, "moved %llu, expected about %.0f",
            static_cast<unsigned long long>(moved), expected);
  cr_assert_leq(biggest, rate / 10);
  // Steps of a hundredth of a second's worth: about a hundred wakeups a second, not more.
  cr_assert(wakeups > 60 * 90 && wakeups < 60 * 110, "%d wakeups in a minute", wakeups);
}

// A slow rate still makes progress, a byte at a time at worst, without asking for a
// zero wait that would spin the loop.
Test(token_bucket, a_slow_rate_waits_for_whole_bytes) {
  TokenBucket bucket(10, t0);  // 10 bytes a second: a one-byte step
  cr_assert_eq(bucket.available(t0), 1u);
  bucket.spend(1);
  cr_assert_eq(bucket.available(t0), 0u);
  Clock::duration wait = bucket.wait(t0);
  cr_assert(wait >= milliseconds(99) && wait <= milliseconds(101), "waits %lld ns",
            static_cast<long long>(wait.count()));
  cr_assert_eq(bucket.available(t0 + wait), 1u);
}

// Spending more than was there (a TLS record that had to go whole) is repaid by waiting.
Test(token_bucket, an_overdraft_is_repaid) {
  TokenBucket bucket(1000, t0);  // holds 100
  bucket.spend(600);             // 500 in debt
  Clock::duration wait = bucket.wait(t0);
  // 500 to repay and a 10-byte step to earn, at 1000 a second.
  cr_assert(wait >= milliseconds(509) && wait <= milliseconds(511), "waits %lld ns",
            static_cast<long long>(wait.count()));
  cr_assert_eq(bucket.available(t0 + milliseconds(400)), 0u);
  cr_assert_geq(bucket.available(t0 + milliseconds(600)), 99u);
}
