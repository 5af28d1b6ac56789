#include "reactor/work_queue.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "reactor/errors.h"

namespace reactor {

WorkQueue::WorkQueue(EventLoop& loop) : loop_(loop) {}

WorkQueue::~WorkQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  if (worker_.joinable()) worker_.join();
  if (wake_) loop_.remove(wake_.get());
}

bool WorkQueue::start(std::string* err) {
  wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_) {
    *err = sys_error("eventfd", "work queue");
    return false;
  }
  if (!loop_.add(wake_.get(), kReadable, [this](uint32_t) { on_completions(); }, err)) {
    wake_.reset();
    return false;
  }
  // The worker inherits this mask: every signal stays with the loop's signalfd.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    worker_ = std::thread([this] { run_worker(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    loop_.remove(wake_.get());
    wake_.reset();
    *err = std::string("start a worker thread: ") + e.what();
    return false;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return true;
}

WorkQueue::Id WorkQueue::submit(Work work, Work done, std::string* err) {
  if (!worker_.joinable() && !start(err)) return 0;
  Id id = next_id_++;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queued_.push_back(Job{id, std::move(work), std::move(done)});
  }
  ready_.notify_one();
  ++pending_;
  return id;
}

void WorkQueue::cancel(Id id) {
  if (id == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (id == running_) {
    if (!running_cancelled_) --pending_;
    running_cancelled_ = true;
    return;
  }
  for (std::deque<Job>* jobs : {&queued_, &completed_}) {
    for (Job& job : *jobs) {
      if (job.id == id) {
        if (!job.cancelled) --pending_;
        job.cancelled = true;
        return;
      }
    }
  }
}

void WorkQueue::run_worker() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    ready_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
    if (queued_.empty()) return;  // stopping, and nothing left to do
    Job job = std::move(queued_.front());
    queued_.pop_front();
    running_ = job.id;
    running_cancelled_ = job.cancelled;
    lock.unlock();
    if (job.work) job.work();
    lock.lock();
    job.cancelled = running_cancelled_;
    running_ = 0;
    completed_.push_back(std::move(job));
    uint64_t one = 1;
    // Only a counter at 2^64 - 2 unread completions could refuse this.
    ssize_t n = write(wake_.get(), &one, sizeof one);
    (void)n;
  }
}

void WorkQueue::on_completions() {
  uint64_t count = 0;
  ssize_t n = read(wake_.get(), &count, sizeof count);
  (void)n;  // EAGAIN: an earlier pass already took them
  // One at a time, the lock released around each callback: a done callback may submit
  // or cancel other jobs, those already completed included.
  while (true) {
    Job job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (completed_.empty()) return;
      job = std::move(completed_.front());
      completed_.pop_front();
    }
    if (job.cancelled) continue;
    --pending_;
    if (job.done) job.done();
  }
}

}  // namespace reactor
