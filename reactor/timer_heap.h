#pragma once
// TimerHeap: one-shot and repeating timers on the monotonic clock, in a binary min-heap
// keyed by (deadline, sequence). The sequence number breaks ties, so timers due at the same
// instant run in the order they were armed.
//
// Cancellation is lazy: cancel() forgets the callback and the stale heap entry is skipped
// when it reaches the top. The heap is rebuilt once stale entries outnumber live ones, so a
// connection that re-arms an idle timer on every read cannot grow it without bound.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

namespace reactor {

using TimerId = uint64_t;  // never reused; 0 is never a valid id

class TimerHeap {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void()>;

  // Arms a timer at `when`; `repeat` > 0 makes it fire again every `repeat` after that,
  // zero (or negative) makes it one-shot.
  TimerId add(Clock::time_point when, Clock::duration repeat, Callback cb);

  // Cancels a pending timer, also from inside any timer callback (its own included).
  // Returns false if the id is unknown, already fired (one-shot) or already cancelled.
  bool cancel(TimerId id);

  // The earliest live deadline, or nothing when no timer is armed.
  std::optional<Clock::time_point> next_deadline() const;

  // Runs every timer due at `now` and returns how many ran. All due timers are taken out of
  // the heap before the first callback, so callbacks may add and cancel freely: a due timer
  // cancelled by an earlier callback of the same batch does not run, and a timer added with
  // a deadline <= now waits for the next call (no callback can make this one loop forever).
  size_t run_due(Clock::time_point now);

  // Forgets every timer. The callbacks are destroyed after the heap is already empty, so a
  // destructor that calls cancel() (an object captured by a callback) finds nothing to undo.
  void clear();

  size_t size() const { return timers_.size(); }  // live timers
  bool empty() const { return timers_.empty(); }

 private:
  struct Entry {
    Clock::time_point deadline;
    uint64_t seq;
    TimerId id;
  };
  struct Timer {
    Callback cb;
    Clock::duration repeat;
    uint64_t seq;  // of its current heap entry; anything else in the heap for it is stale
  };
  // std::push_heap builds a max-heap; "later" as less-than puts the earliest on top.
  static bool later(const Entry& a, const Entry& b) {
    if (a.deadline != b.deadline) return a.deadline > b.deadline;
    return a.seq > b.seq;
  }

  bool live(const Entry& e) const;
  void push(Clock::time_point deadline, TimerId id, Timer& timer);
  void drop_stale_top();
  void compact_if_sparse();

  std::vector<Entry> heap_;
  std::unordered_map<TimerId, Timer> timers_;
  uint64_t next_id_ = 1;
  uint64_t next_seq_ = 1;
};

}  // namespace reactor
