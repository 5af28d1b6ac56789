#include "reactor/timer_heap.h"

#include <algorithm>

namespace reactor {

bool TimerHeap::live(const Entry& e) const {
  auto it = timers_.find(e.id);
  return it != timers_.end() && it->second.seq == e.seq;
}

void TimerHeap::push(Clock::time_point deadline, TimerId id, Timer& timer) {
  timer.seq = next_seq_++;
  heap_.push_back(Entry{deadline, timer.seq, id});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

// Keeps the invariant that the top of the heap is live (or the heap is empty), which is what
// lets next_deadline() be a const O(1) look.
void TimerHeap::drop_stale_top() {
  while (!heap_.empty() && !live(heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
  }
}

void TimerHeap::compact_if_sparse() {
  if (heap_.size() < 64 || heap_.size() <= 2 * timers_.size()) return;
  heap_.erase(std::remove_if(heap_.begin(), heap_.end(),
                             [this](const Entry& e) { return !live(e); }),
              heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), later);
}

TimerId TimerHeap::add(Clock::time_point when, Clock::duration repeat, Callback cb) {
  TimerId id = next_id_++;
  Timer& timer = timers_[id];
  timer.cb = std::move(cb);
  timer.repeat = repeat > Clock::duration::zero() ? repeat : Clock::duration::zero();
  push(when, id, timer);
  return id;
}

bool TimerHeap::cancel(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  timers_.erase(it);
  drop_stale_top();
  compact_if_sparse();
  return true;
}

void TimerHeap::clear() {
  std::vector<Entry> heap;
  std::unordered_map<TimerId, Timer> timers;
  heap.swap(heap_);
  timers.swap(timers_);
}

std::optional<TimerHeap::Clock::time_point> TimerHeap::next_deadline() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().deadline;
}

size_t TimerHeap::run_due(Clock::time_point now) {
  std::vector<Entry> due;
  while (!heap_.empty() && heap_.front().deadline <= now) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    if (live(heap_.back())) due.push_back(heap_.back());
    heap_.pop_back();
  }

  size_t ran = 0;
  for (const Entry& e : due) {
    auto it = timers_.find(e.id);
    if (it == timers_.end()) continue;  // cancelled by an earlier callback of this batch

    // The callback is moved out of the table before it runs: if it cancels its own timer,
    // the erase must not destroy a std::function that is executing.
    Callback cb = std::move(it->second.cb);
    Clock::duration repeat = it->second.repeat;
    if (repeat == Clock::duration::zero()) timers_.erase(it);
    ++ran;
    cb();

    if (repeat == Clock::duration::zero()) continue;
    it = timers_.find(e.id);  // the callback may have added timers (rehash) or cancelled this
    if (it == timers_.end()) continue;
    it->second.cb = std::move(cb);
    // Stay on the original grid, but never schedule into the past: after a stall the timer
    // fires once and resumes its period, instead of firing a burst to catch up.
    Clock::time_point next = e.deadline + repeat;
    if (next <= now) next = now + repeat;
    push(next, e.id, it->second);
  }
  drop_stale_top();
  compact_if_sparse();
  return ran;
}

}  // namespace reactor
