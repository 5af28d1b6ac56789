// TimerHeap on its own: ordering, ties, repetition, lazy cancellation, and callbacks that
// add and cancel timers while the heap is running them. Time is simulated (run_due takes
// "now"), so none of these tests sleeps.

#include <criterion/criterion.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "reactor/timer_heap.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using reactor::TimerHeap;
using reactor::TimerId;
using Clock = TimerHeap::Clock;
using std::chrono::milliseconds;

namespace {
const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);
const Clock::duration once = Clock::duration::zero();
}  // namespace

Test(timer_heap, empty_has_no_deadline, .timeout = 10) {
  TimerHeap heap;
  cr_assert(!heap.next_deadline().has_value());
  cr_assert_eq(heap.run_due(t0), 0u);
  cr_assert(heap.empty());
}

Test(timer_heap, runs_in_deadline_order, .timeout = 10) {
  TimerHeap heap;
  std::string order;
  heap.add(t0 + milliseconds(30), once, [&] { order += "c"; });
  heap.add(t0 + milliseconds(10), once, [&] { order += "a"; });
  heap.add(t0 + milliseconds(20), once, [&] { order += "b"; });
  cr_assert(heap.next_deadline() == t0 + milliseconds(10));
  cr_assert_eq(heap.run_due(t0 + milliseconds(5)), 0u, "nothing is due yet");
  cr_assert_eq(heap.run_due(t0 + milliseconds(20)), 2u);
  cr_assert_eq(order, "ab");
  cr_assert(heap.next_deadline() == t0 + milliseconds(30));
  cr_assert_eq(heap.run_due(t0 + milliseconds(100)), 1u);
  cr_assert_eq(order, "abc");
  cr_assert(heap.empty());
  cr_assert(!heap.next_deadline().has_value());
}

Test(timer_heap, equal_deadlines_run_in_insertion_order, .timeout = 10) {
  TimerHeap heap;
  std::string order;
  for (char c = 'a'; c <= 'h'; ++c) {
    heap.add(t0, once, [&order, c] { order += c; });
  }
  heap.run_due(t0);
  cr_assert_eq(order, "abcdefgh");
}

Test(timer_heap, ids_are_unique_and_nonzero, .timeout = 10) {
  TimerHeap heap;
  TimerId a = heap.add(t0, once, [] {});
  TimerId b = heap.add(t0, once, [] {});
  cr_assert_neq(a, 0u);
  cr_assert_neq(a, b);
  heap.run_due(t0);
  TimerId c = heap.add(t0, once, [] {});
  cr_assert(c != a && c != b, "ids are never reused");
}

Test(timer_heap, cancel_before_due, .timeout = 10) {
  TimerHeap heap;
  int ran = 0;
  TimerId a = heap.add(t0 + milliseconds(10), once, [&] { ran += 1; });
  heap.add(t0 + milliseconds(20), once, [&] { ran += 10; });
  cr_assert(heap.cancel(a));
  cr_assert(!heap.cancel(a), "a second cancel finds nothing");
  cr_assert(!heap.cancel(12345), "unknown ids are refused");
  cr_assert(heap.next_deadline() == t0 + milliseconds(20), "the cancelled top is skipped");
  cr_assert_eq(heap.run_due(t0 + milliseconds(100)), 1u);
  cr_assert_eq(ran, 10);
}

Test(timer_heap, fired_one_shot_cannot_be_cancelled, .timeout = 10) {
  TimerHeap heap;
  TimerId a = heap.add(t0, once, [] {});
  heap.run_due(t0);
  cr_assert(!heap.cancel(a));
}

Test(timer_heap, callback_cancels_a_due_timer_of_the_same_batch, .timeout = 10) {
  TimerHeap heap;
  std::string order;
  TimerId victim = 0;
  heap.add(t0 + milliseconds(1), once, [&] {
    order += "a";
    cr_assert(heap.cancel(victim));
  });
  victim = heap.add(t0 + milliseconds(2), once, [&] { order += "X"; });
  heap.add(t0 + milliseconds(3), once, [&] { order += "c"; });
  cr_assert_eq(heap.run_due(t0 + milliseconds(10)), 2u);
  cr_assert_eq(order, "ac", "the cancelled due timer must not run");
}

Test(timer_heap, repeating_cancels_itself, .timeout = 10) {
  TimerHeap heap;
  int ran = 0;
  TimerId self = 0;
  // A big capture makes the std::function heap-allocate: ASan notices if cancelling from
  // inside destroys it while it runs.
  std::string payload(256, 'p');
  self = heap.add(t0 + milliseconds(10), milliseconds(10), [&, payload] {
    ++ran;
    if (ran == 3) cr_assert(heap.cancel(self));
    cr_assert_eq(payload.size(), 256u);
  });
  for (int step = 1; step <= 10; ++step) heap.run_due(t0 + milliseconds(10 * step));
  cr_assert_eq(ran, 3);
  cr_assert(heap.empty());
}

Test(timer_heap, repeating_keeps_its_grid, .timeout = 10) {
  TimerHeap heap;
  int ran = 0;
  heap.add(t0 + milliseconds(10), milliseconds(10), [&] { ++ran; });
  heap.run_due(t0 + milliseconds(13));  // late by 3 ms
  cr_assert_eq(ran, 1);
  cr_assert(heap.next_deadline() == t0 + milliseconds(20), "no drift from lateness");
  heap.run_due(t0 + milliseconds(20));
  cr_assert_eq(ran, 2);
  cr_assert(heap.next_deadline() == t0 + milliseconds(30));
}

Test(timer_heap, repeating_after_a_stall_fires_once, .timeout = 10) {
  TimerHeap heap;
  int ran = 0;
  heap.add(t0 + milliseconds(10), milliseconds(10), [&] { ++ran; });
  cr_assert_eq(heap.run_due(t0 + milliseconds(1000)), 1u, "no burst to catch up");
  cr_assert_eq(ran, 1);
  cr_assert(heap.next_deadline() == t0 + milliseconds(1010));
}

Test(timer_heap, timer_added_from_callback_waits_for_next_run, .timeout = 10) {
  TimerHeap heap;
  std::string order;
  heap.add(t0, once, [&] {
    order += "a";
    heap.add(t0, once, [&] { order += "b"; });  // already due, but not in this batch
  });
  cr_assert_eq(heap.run_due(t0), 1u);
  cr_assert_eq(order, "a");
  cr_assert_eq(heap.run_due(t0), 1u);
  cr_assert_eq(order, "ab");
}

Test(timer_heap, zero_delay_self_rearming_cannot_loop_forever, .timeout = 10) {
  TimerHeap heap;
  int ran = 0;
  std::function<void()> again = [&] {
    ++ran;
    heap.add(t0, once, again);
  };
  heap.add(t0, once, again);
  cr_assert_eq(heap.run_due(t0), 1u);
  cr_assert_eq(ran, 1);
}

Test(timer_heap, many_cancellations_stay_consistent, .timeout = 10) {
  TimerHeap heap;
  int ran = 0;
  std::vector<TimerId> ids;
  for (int i = 0; i < 10000; ++i) {
    ids.push_back(heap.add(t0 + milliseconds(1000 + i), once, [&] { ++ran; }));
  }
  TimerId keep = heap.add(t0 + milliseconds(20000), once, [&] { ran += 100; });
  for (TimerId id : ids) cr_assert(heap.cancel(id));
  cr_assert_eq(heap.size(), 1u);
  cr_assert(heap.next_deadline() == t0 + milliseconds(20000));
  cr_assert_eq(heap.run_due(t0 + milliseconds(30000)), 1u);
  cr_assert_eq(ran, 100);
  cr_assert(!heap.cancel(keep));
}

Test(timer_heap, negative_repeat_is_one_shot, .timeout = 10) {
  TimerHeap heap;
  int ran = 0;
  heap.add(t0, -milliseconds(5), [&] { ++ran; });
  heap.run_due(t0);
  heap.run_due(t0 + milliseconds(100));
  cr_assert_eq(ran, 1);
}

namespace {
// Cancels a timer of the heap when destroyed, as an object captured by a callback might.
struct CancelOnDestroy {
  TimerHeap* heap;
  TimerId id;
  ~CancelOnDestroy() { heap->cancel(id); }
};
}  // namespace

Test(timer_heap, clear_tolerates_callbacks_that_cancel_when_destroyed, .timeout = 10) {
  TimerHeap heap;
  TimerId other = heap.add(t0, once, [] {});
  std::shared_ptr<CancelOnDestroy> guard(new CancelOnDestroy{&heap, other});
  heap.add(t0, once, [guard] {});
  guard.reset();
  cr_assert_eq(heap.size(), 2u);
  heap.clear();
  cr_assert(heap.empty());
  cr_assert(!heap.next_deadline().has_value());
}
