#pragma once
// EventLoop: the single-threaded reactor at the heart of reactord and reactorc.
//
// One iteration is: wait (timeout from the nearest timer) -> dispatch I/O handlers ->
// run due timers -> run deferred tasks. The loop never owns the descriptors it watches; it
// owns the handlers, and only the signalfd it creates itself.
//
// Dispatch safety. Handlers live in a table indexed by fd, each registration stamped with a
// generation number. Right after a wait the loop snapshots (fd, events, generation) for the
// whole batch, and before each call checks that the slot still holds that generation: an fd
// removed earlier in the same pass -- or removed and re-added, as when accept() hands out the
// number of a connection just closed -- is skipped, so no handler ever receives an event that
// was meant for a previous file. A handler removed during a pass (its own included) is
// retired and destroyed only after the pass: a std::function is never destroyed while it
// runs. Handlers may therefore add, modify and remove any fd, including their own.
//
// Not thread-safe: every method must be called from the thread running the loop.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "reactor/poller.h"
#include "reactor/timer_heap.h"
#include "reactor/unique_fd.h"

namespace reactor {

class EventLoop {
 public:
  using IoHandler = std::function<void(uint32_t events)>;
  using Task = std::function<void()>;
  using Clock = std::chrono::steady_clock;
  using TimerId = reactor::TimerId;

  static std::unique_ptr<EventLoop> create(Backend backend, std::string* err);
  // The backend named by REACTOR_BACKEND (see backend_from_env).
  static std::unique_ptr<EventLoop> create_from_env(std::string* err);

  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  const char* backend_name() const;

  // Watches `fd` for `events` (kReadable | kWritable) and calls `h` with what is ready.
  // kHangup/kError are delivered whatever the mask. False + *err if the fd is already
  // registered or the poller refuses it.
  bool add(int fd, uint32_t events, IoHandler h, std::string* err);
  // Changes the interest mask of a registered fd (e.g. arm kWritable only while output is
  // queued). Dropped interest applies at once, also to events still pending in this pass.
  bool modify(int fd, uint32_t events, std::string* err);
  // The interest mask of `fd`, 0 when not registered (see watching()).
  uint32_t events(int fd) const;
  bool watching(int fd) const;
  // Forgets `fd`. Safe from inside that fd's own handler or any other; a no-op for an fd
  // not registered. Call it before closing the fd (see Poller::unwatch).
  void remove(int fd);
  // remove() for an fd the caller closes right after and never duplicated (no dup(), no
  // fork() while it was open), which lets epoll skip a system call: see Poller::forget.
  // reactord and reactorc use it for their connections: neither forks nor dups them.
  void remove_before_close(int fd);
  // Gives a registered fd a new handler and interest mask, at most one epoll_ctl MOD: for
  // handing a descriptor from one owner to the next (Connector to Connection) without the
  // kernel forgetting and relearning it. Events still pending for the fd in the current
  // pass are dropped, as after remove() and add(). Safe from inside the old handler.
  bool replace(int fd, uint32_t events, IoHandler h, std::string* err);

  // Timers. Deadlines are taken from the clock at the call, not the cached now(), so a timer
  // never fires early. A callback may cancel any timer, itself included. run_every() with a
  // period below 1 ms uses 1 ms: a zero period would turn the loop into a busy wait.
  TimerId run_after(Clock::duration delay, Task task);
  TimerId run_every(Clock::duration period, Task task);
  void cancel(TimerId id);  // unknown or already-fired ids are ignored

  // Runs `task` from the loop whenever `signo` arrives, through a signalfd (so it works the
  // same with both backends and the task runs in normal context, not in a signal handler).
  // The signal is blocked with sigprocmask and stays blocked after the loop is gone: an
  // unblocked pending signal would otherwise take its default action. Registering the same
  // signal again replaces the task. In a multi-threaded process the other threads must block
  // the signal too, or the kernel may deliver a process-directed one to them.
  bool on_signal(int signo, Task task, std::string* err);

  // Runs `task` after the current dispatch pass and its timers, before the next wait; the
  // place for deferred cleanup (destroying the object whose handler is running). Tasks
  // deferred by a deferred task run in the next iteration, which then does not block.
  void defer(Task task);

  // Runs until stop(). Returns true after stop(); false + *err if the poller fails in a way
  // retrying cannot fix (the loop then stops rather than spinning on the error), or if
  // called from inside the running loop (it is not re-entrant).
  bool run(std::string* err = nullptr);
  // Makes run() return after the current iteration (timers and deferred tasks included).
  // Called before run(), it makes the next run() return at once.
  void stop();

  // The time cached at the start of the current iteration: cheap, and the same for every
  // handler of one pass.
  Clock::time_point now() const { return now_; }
  // Completed waits so far; lets tests prove that an idle or throttled loop is not spinning.
  uint64_t iterations() const { return iterations_; }

 private:
  struct Slot {
    std::unique_ptr<IoHandler> handler;  // null: free slot
    uint32_t events = 0;
    uint64_t generation = 0;
  };
  struct Pending {
    int fd;
    uint32_t events;
    uint64_t generation;
  };

  explicit EventLoop(std::unique_ptr<Poller> poller);
  Slot* slot(int fd);
  const Slot* slot(int fd) const;
  int poll_timeout() const;
  void dispatch();
  void run_deferred();
  void read_signals();
  void drop_handler(Slot& s);

  std::unique_ptr<Poller> poller_;
  std::vector<Slot> slots_;
  uint64_t next_generation_ = 1;
  bool dispatching_ = false;  // within an iteration: removed handlers are retired, not freed
  std::vector<std::unique_ptr<IoHandler>> retired_;
  std::vector<Ready> ready_;
  std::vector<Pending> pending_;

  TimerHeap timers_;
  std::vector<Task> deferred_;

  UniqueFd signal_fd_;
  std::unordered_map<int, std::shared_ptr<Task>> signal_tasks_;

  bool running_ = false;
  bool stop_ = false;
  Clock::time_point now_;
  uint64_t iterations_ = 0;
};

// SIGPIPE's default action kills the process on a write to a closed socket or pipe; servers
// want EPIPE instead. Sends use MSG_NOSIGNAL as well, but write() to a pipe cannot.
void ignore_sigpipe();

}  // namespace reactor
