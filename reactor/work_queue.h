#pragma once
// WorkQueue: runs calls that may block for seconds (fsync(2), rename(2) on a busy disk)
// on a worker thread, and hands each completion back to the event loop thread, as
// libuv's threadpool does (uv_queue_work). The loop thread never waits for the disk.
//
// The worker takes jobs in order and runs each job's `work` with every signal blocked
// (they belong to the loop's signalfd). When a job is done, the worker writes to an
// eventfd the loop watches; the loop then runs the job's `done`, on its own thread, in
// submission order. cancel() drops a job's `done` (its `work` still runs, or has run):
// the object that submitted it can go away without a completion arriving into freed
// memory. Anything `work` touches must therefore be owned by the job itself.
//
// The worker starts with the first job. The destructor lets the worker finish the
// jobs already queued (a verified upload is still renamed into place) and joins it;
// their `done` callbacks do not run.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "reactor/event_loop.h"
#include "reactor/unique_fd.h"

namespace reactor {

class WorkQueue {
 public:
  using Id = uint64_t;
  using Work = std::function<void()>;

  explicit WorkQueue(EventLoop& loop);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `work` for the worker and `done` for the loop after it. Returns the job's id
  // (never 0), or 0 with *err set if the queue cannot run jobs at all (no eventfd, no
  // thread); nothing then runs.
  Id submit(Work work, Work done, std::string* err);
  // `done` of job `id` will not run. Unknown and finished ids are ignored.
  void cancel(Id id);

  // Jobs submitted whose `done` has neither run nor been cancelled.
  size_t pending() const { return pending_; }

 private:
  struct Job {
    Id id = 0;
    Work work;
    Work done;
    bool cancelled = false;
  };

  bool start(std::string* err);
  void run_worker();
  void on_completions();

  EventLoop& loop_;
  UniqueFd wake_;  // eventfd: the worker counts completed jobs into it
  std::thread worker_;
  Id next_id_ = 1;
  size_t pending_ = 0;

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> queued_;     // the worker's, in order
  std::deque<Job> completed_;  // the loop's, in order
  bool stopping_ = false;
  Id running_ = 0;                 // the job the worker has, 0 for none
  bool running_cancelled_ = false;  // cancel() came while the worker had it
};

}  // namespace reactor
