// reactor::WorkQueue: blocking calls on a worker thread, completions back on the loop.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "reactor/event_loop.h"
#include "reactor/work_queue.h"
#include "tests/support/loop_driver.h"

using reactor::EventLoop;
using reactor::WorkQueue;
using testsupport::Millis;

namespace {

using testsupport::make_loop;

}  // namespace

TestSuite(work_queue, .timeout = 30);

Test(work_queue, work_runs_on_another_thread_and_done_on_the_loop_in_order) {
  auto loop = make_loop();
  WorkQueue queue(*loop);
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::vector<int> done_order;
  std::atomic<int> worked{0};
  std::string err;
  for (int i = 0; i < 20; ++i) {
    WorkQueue::Id id = queue.submit(
        [&worked, loop_thread] {
          cr_assert(std::this_thread::get_id() != loop_thread, "work ran on the loop thread");
          ++worked;
        },
        [&done_order, i, loop_thread] {
          cr_assert(std::this_thread::get_id() == loop_thread, "done ran off the loop thread");
          done_order.push_back(i);
        },
        &err);
    cr_assert_neq(id, 0u, "%s", err.c_str());
  }
  cr_assert_eq(queue.pending(), 20u);
  cr_assert(testsupport::run_until(*loop, [&] { return done_order.size() == 20; }));
  cr_assert_eq(worked.load(), 20);
  for (int i = 0; i < 20; ++i) cr_assert_eq(done_order[i], i);
  cr_assert_eq(queue.pending(), 0u);
}

Test(work_queue, a_slow_job_does_not_stall_the_loop) {
  auto loop = make_loop();
  WorkQueue queue(*loop);
  std::atomic<bool> release{false};
  bool done = false;
  std::string err;
  queue.submit([&release] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }, [&done] { done = true; }, &err);
  // Timers keep firing while the worker is busy.
  int ticks = 0;
  loop->run_every(std::chrono::milliseconds(1), [&ticks] { ++ticks; });
  cr_assert(testsupport::run_until(*loop, [&] { return ticks >= 20; }, Millis(5000)));
  cr_assert_not(done);
  release = true;
  cr_assert(testsupport::run_until(*loop, [&] { return done; }));
}

Test(work_queue, cancelled_jobs_still_work_but_never_complete) {
  auto loop = make_loop();
  WorkQueue queue(*loop);
  std::atomic<bool> release{false};
  std::atomic<int> worked{0};
  std::vector<int> done;
  std::string err;
  // 0 is with the worker (blocked) and cancelled there; 1 is queued and cancelled; 2's
  // completion cancels 3's, which has completed too by then (all finish before the loop
  // looks); 4 completes normally.
  WorkQueue::Id running = queue.submit([&] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ++worked;
  }, [&done] { done.push_back(0); }, &err);
  WorkQueue::Id queued = queue.submit([&worked] { ++worked; }, [&done] { done.push_back(1); }, &err);
  WorkQueue::Id third = 0;
  queue.submit([&worked] { ++worked; }, [&] {
    done.push_back(2);
    queue.cancel(third);
  }, &err);
  third = queue.submit([&worked] { ++worked; }, [&done] { done.push_back(3); }, &err);
  queue.submit([&worked] { ++worked; }, [&done] { done.push_back(4); }, &err);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  queue.cancel(running);
  queue.cancel(queued);
  queue.cancel(queued);  // twice: no effect
  queue.cancel(12345);   // unknown: ignored
  cr_assert_eq(queue.pending(), 3u);
  release = true;
  // Let every job finish before the loop collects any completion.
  while (worked.load() < 5) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  cr_assert(testsupport::run_until(*loop, [&] { return queue.pending() == 0; }));
  testsupport::run_for(*loop, Millis(20));
  cr_assert_eq(done.size(), 2u);
  cr_assert_eq(done[0], 2);
  cr_assert_eq(done[1], 4);
}

Test(work_queue, the_destructor_finishes_queued_work_without_completions) {
  auto loop = make_loop();
  std::atomic<int> worked{0};
  bool completed = false;
  {
    WorkQueue queue(*loop);
    std::string err;
    for (int i = 0; i < 5; ++i)
      queue.submit([&worked] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ++worked;
      }, [&completed] { completed = true; }, &err);
  }
  cr_assert_eq(worked.load(), 5, "queued work was dropped: a verified upload must still be stored");
  testsupport::run_for(*loop, Millis(10));
  cr_assert_not(completed);
}

Test(work_queue, the_worker_blocks_every_signal) {
  auto loop = make_loop();
  WorkQueue queue(*loop);
  bool blocked = false;
  bool done = false;
  std::string err;
  queue.submit([&blocked] {
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    blocked = sigismember(&mask, SIGINT) == 1 && sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGHUP) == 1;
  }, [&done] { done = true; }, &err);
  cr_assert(testsupport::run_until(*loop, [&] { return done; }));
  cr_assert(blocked, "the worker can take the loop's signals");
}

Test(work_queue, a_done_callback_may_submit_more) {
  auto loop = make_loop();
  WorkQueue queue(*loop);
  int rounds = 0;
  std::string err;
  std::function<void()> again = [&] {
    if (++rounds < 10) queue.submit([] {}, again, &err);
  };
  queue.submit([] {}, again, &err);
  cr_assert(testsupport::run_until(*loop, [&] { return rounds == 10; }));
}
