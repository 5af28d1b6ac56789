#include "reactor/event_loop.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "reactor/errors.h"

namespace reactor {

namespace {

constexpr auto kMinPeriod = std::chrono::milliseconds(1);
constexpr int kMaxSignalsPerWakeup = 64;  // level-triggered: the rest come next pass

std::string signal_name(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);  // "USR1"; null for real-time signals
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(signo);
}

}  // namespace

std::unique_ptr<EventLoop> EventLoop::create(Backend backend, std::string* err) {
  std::unique_ptr<Poller> poller = make_poller(backend, err);
  if (!poller) return nullptr;
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(poller)));
}

std::unique_ptr<EventLoop> EventLoop::create_from_env(std::string* err) {
  Backend backend;
  if (!backend_from_env(&backend, err)) return nullptr;
  return create(backend, err);
}

EventLoop::EventLoop(std::unique_ptr<Poller> poller)
    : poller_(std::move(poller)), now_(Clock::now()) {}

EventLoop::~EventLoop() {
  // Handlers, tasks and timer callbacks may capture objects whose destructors call back into
  // the loop (remove(), cancel()). Each container is emptied before its contents die, so such
  // calls find nothing and return instead of touching a container mid-destruction.
  dispatching_ = true;
  {
    std::vector<Slot> slots;
    slots.swap(slots_);
  }
  {
    std::vector<Task> tasks;
    tasks.swap(deferred_);
  }
  timers_.clear();
  {
    std::unordered_map<int, std::shared_ptr<Task>> tasks;
    tasks.swap(signal_tasks_);
  }
  std::vector<std::unique_ptr<IoHandler>> retired;
  retired.swap(retired_);
}

const char* EventLoop::backend_name() const { return poller_->name(); }

const EventLoop::Slot* EventLoop::slot(int fd) const {
  if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return nullptr;
  const Slot* s = &slots_[static_cast<size_t>(fd)];
  return s->handler ? s : nullptr;
}

EventLoop::Slot* EventLoop::slot(int fd) {
  return const_cast<Slot*>(static_cast<const EventLoop*>(this)->slot(fd));
}

bool EventLoop::add(int fd, uint32_t events, IoHandler h, std::string* err) {
  if (fd < 0) return set_error(err, "event loop: cannot watch fd " + std::to_string(fd));
  if (!h) return set_error(err, "event loop: empty handler for fd " + std::to_string(fd));
  if (slot(fd) != nullptr) {
    return set_error(err, "event loop: fd " + std::to_string(fd) + " is already registered");
  }
  events &= kReadable | kWritable;
  if (!poller_->watch(fd, events, err)) return false;
  size_t index = static_cast<size_t>(fd);
  if (index >= slots_.size()) slots_.resize(index + 1);
  Slot& s = slots_[index];
  s.handler = std::make_unique<IoHandler>(std::move(h));
  s.events = events;
  s.generation = next_generation_++;
  return true;
}

bool EventLoop::modify(int fd, uint32_t events, std::string* err) {
  Slot* s = slot(fd);
  if (s == nullptr) {
    return set_error(err, "event loop: fd " + std::to_string(fd) + " is not registered");
  }
  events &= kReadable | kWritable;
  if (events == s->events) return true;
  if (!poller_->watch(fd, events, err)) return false;
  s->events = events;
  return true;
}

uint32_t EventLoop::events(int fd) const {
  const Slot* s = slot(fd);
  return s != nullptr ? s->events : 0;
}

bool EventLoop::watching(int fd) const { return slot(fd) != nullptr; }

void EventLoop::drop_handler(Slot& s) {
  std::unique_ptr<IoHandler> handler = std::move(s.handler);
  s.events = 0;
  // The generation stays: the next add() stamps a new one, which is what invalidates any
  // event for this fd still pending in the current pass.
  if (dispatching_) retired_.push_back(std::move(handler));
  // Otherwise `handler` dies here: no handler can be running outside an iteration.
}

void EventLoop::remove(int fd) {
  Slot* s = slot(fd);
  if (s == nullptr) return;
  poller_->unwatch(fd);
  drop_handler(*s);
}

void EventLoop::remove_before_close(int fd) {
  Slot* s = slot(fd);
  if (s == nullptr) return;
  poller_->forget(fd);
  drop_handler(*s);
}

bool EventLoop::replace(int fd, uint32_t events, IoHandler h, std::string* err) {
  Slot* s = slot(fd);
  if (s == nullptr) return set_error(err, "event loop: fd " + std::to_string(fd) + " is not registered");
  if (!h) return set_error(err, "event loop: empty handler for fd " + std::to_string(fd));
  events &= kReadable | kWritable;
  if (events != s->events && !poller_->watch(fd, events, err)) return false;
  drop_handler(*s);
  s->handler = std::make_unique<IoHandler>(std::move(h));
  s->events = events;
  s->generation = next_generation_++;
  return true;
}

EventLoop::TimerId EventLoop::run_after(Clock::duration delay, Task task) {
  return timers_.add(Clock::now() + delay, Clock::duration::zero(), std::move(task));
}

EventLoop::TimerId EventLoop::run_every(Clock::duration period, Task task) {
  if (period < kMinPeriod) period = kMinPeriod;
  return timers_.add(Clock::now() + period, period, std::move(task));
}

void EventLoop::cancel(TimerId id) { timers_.cancel(id); }

bool EventLoop::on_signal(int signo, Task task, std::string* err) {
  if (signo <= 0 || signo >= NSIG) {
    return set_error(err, "event loop: invalid signal " + std::to_string(signo));
  }
  // The kernel silently leaves these out of any mask: the task would never run.
  if (signo == SIGKILL || signo == SIGSTOP) {
    return set_error(err, "event loop: " + signal_name(signo) + " cannot be caught");
  }
  if (!task) return set_error(err, "event loop: empty task for signal " + std::to_string(signo));

  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  sigset_t all = one;
  for (const auto& entry : signal_tasks_) sigaddset(&all, entry.first);

  // Blocked first, so the signal cannot take its default action between the two calls; a
  // signal that arrives meanwhile stays pending and the signalfd reads it.
  if (::sigprocmask(SIG_BLOCK, &one, nullptr) != 0) {
    return set_error(err, sys_error("sigprocmask", signal_name(signo)));
  }
  int fd = ::signalfd(signal_fd_ ? signal_fd_.get() : -1, &all, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return set_error(err, sys_error("signalfd", signal_name(signo)));
  if (!signal_fd_) {
    UniqueFd owned(fd);
    if (!add(fd, kReadable, [this](uint32_t) { read_signals(); }, err)) return false;
    signal_fd_ = std::move(owned);
  }
  signal_tasks_[signo] = std::make_shared<Task>(std::move(task));
  return true;
}

void EventLoop::read_signals() {
  for (int i = 0; i < kMaxSignalsPerWakeup; ++i) {
    signalfd_siginfo info;
    ssize_t n = ::read(signal_fd_.get(), &info, sizeof info);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof info)) return;  // EAGAIN: drained
    auto it = signal_tasks_.find(static_cast<int>(info.ssi_signo));
    if (it == signal_tasks_.end()) continue;
    // A copy of the shared_ptr keeps the task alive if it re-registers its own signal.
    std::shared_ptr<Task> task = it->second;
    (*task)();
  }
}

void EventLoop::defer(Task task) {
  if (task) deferred_.push_back(std::move(task));
}

void EventLoop::stop() { stop_ = true; }

int EventLoop::poll_timeout() const {
  if (!deferred_.empty()) return 0;
  std::optional<Clock::time_point> deadline = timers_.next_deadline();
  if (!deadline) return -1;
  Clock::duration left = *deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  // Rounded up: rounding down would wake just before the deadline and spin with timeout 0
  // until it passed.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

void EventLoop::dispatch() {
  pending_.clear();
  for (const Ready& r : ready_) {
    const Slot* s = slot(r.fd);
    if (s != nullptr) pending_.push_back(Pending{r.fd, r.events, s->generation});
  }
  for (const Pending& p : pending_) {
    Slot* s = slot(p.fd);
    if (s == nullptr || s->generation != p.generation) continue;  // removed or re-added
    // Interest dropped earlier in this pass (say, kWritable disarmed by another handler)
    // is honoured at once; hangup and error always get through.
    uint32_t events = p.events & (s->events | kHangup | kError);
    if (events == 0) continue;
    // A raw pointer, not the slot: the handler may resize slots_ (add of a higher fd) or
    // retire itself; retired handlers live until the end of the iteration.
    IoHandler* handler = s->handler.get();
    (*handler)(events);
  }
}

void EventLoop::run_deferred() {
  std::vector<Task> tasks;
  tasks.swap(deferred_);
  for (Task& task : tasks) task();
}

bool EventLoop::run(std::string* err) {
  if (running_) return set_error(err, "event loop: run() called from inside the loop");
  running_ = true;
  bool ok = true;
  while (!stop_) {
    if (poller_->wait(poll_timeout(), ready_, err) < 0) {
      ok = false;
      break;
    }
    now_ = Clock::now();
    ++iterations_;
    dispatching_ = true;
    dispatch();
    timers_.run_due(now_);
    run_deferred();
    dispatching_ = false;
    std::vector<std::unique_ptr<IoHandler>> retired;
    retired.swap(retired_);  // destroyed here, after the pass, with dispatching_ off
  }
  stop_ = false;
  running_ = false;
  return ok;
}

void ignore_sigpipe() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGPIPE, &sa, nullptr);  // cannot fail for SIGPIPE with SIG_IGN
}

}  // namespace reactor
