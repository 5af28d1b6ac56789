// EventLoop against the backend named by REACTOR_BACKEND (make check runs this binary under
// both), plus one test that walks both backends explicitly. Every run() is bounded by a
// watchdog timer as well as Criterion's timeout.

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "reactor/event_loop.h"
#include "tests/support/loop_driver.h"
#include "reactor/unique_fd.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using reactor::EventLoop;
using reactor::UniqueFd;
using Clock = EventLoop::Clock;
using std::chrono::milliseconds;

namespace {

using testsupport::make_loop;

// Stops the loop after `limit` and records that it had to: a test that needs the watchdog
// has failed.
struct Watchdog {
  bool fired = false;
  Watchdog(EventLoop& loop, Clock::duration limit) {
    loop.run_after(limit, [this, &loop] {
      fired = true;
      loop.stop();
    });
  }
};

void run(EventLoop& loop, Clock::duration limit = std::chrono::seconds(3)) {
  Watchdog dog(loop, limit);
  std::string err;
  cr_assert(loop.run(&err), "run: %s", err.c_str());
  cr_assert(!dog.fired, "the loop did not finish on its own within the time limit");
}

struct Pair {
  UniqueFd a;
  UniqueFd b;
};

Pair socket_pair() {
  int sv[2];
  cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0,
               "socketpair: %s", std::strerror(errno));
  return Pair{UniqueFd(sv[0]), UniqueFd(sv[1])};
}

void send_text(int fd, const char* text) {
  size_t n = std::strlen(text);
  cr_assert_eq(::write(fd, text, n), static_cast<ssize_t>(n));
}

}  // namespace

Test(event_loop, backend_matches_environment, .timeout = 10) {
  auto loop = make_loop();
  const char* env = std::getenv("REACTOR_BACKEND");
  std::string expected = (env == nullptr || *env == '\0') ? "epoll" : env;
  cr_assert_eq(std::string(loop->backend_name()), expected);
}

Test(event_loop, unknown_backend_is_an_error, .timeout = 10) {
  cr_assert_eq(::setenv("REACTOR_BACKEND", "kqueue", 1), 0);
  std::string err;
  cr_assert_null(EventLoop::create_from_env(&err).get());
  cr_assert(err.find("kqueue") != std::string::npos, "got: %s", err.c_str());
  reactor::Backend backend;
  cr_assert(!reactor::parse_backend("EPOLL", &backend));
  cr_assert(reactor::parse_backend("poll", &backend));
  cr_assert(backend == reactor::Backend::kPoll);
  cr_assert_eq(::setenv("REACTOR_BACKEND", "", 1), 0);
  cr_assert(reactor::backend_from_env(&backend, &err));
  cr_assert(backend == reactor::Backend::kEpoll, "empty means epoll");
}

Test(event_loop, every_backend_delivers_readiness_and_timers, .timeout = 10) {
  for (reactor::Backend backend : {reactor::Backend::kEpoll, reactor::Backend::kPoll}) {
    std::string err;
    auto loop = EventLoop::create(backend, &err);
    cr_assert_not_null(loop.get(), "%s: %s", reactor::backend_name(backend), err.c_str());
    cr_assert_str_eq(loop->backend_name(), reactor::backend_name(backend));
    Pair p = socket_pair();
    std::string got;
    bool timer_ran = false;
    cr_assert(loop->add(p.b.get(), reactor::kReadable,
                        [&](uint32_t events) {
                          cr_assert(events & reactor::kReadable);
                          char buf[16];
                          ssize_t n = ::read(p.b.get(), buf, sizeof buf);
                          if (n > 0) got.append(buf, static_cast<size_t>(n));
                          if (timer_ran) loop->stop();
                        },
                        &err),
              "%s", err.c_str());
    loop->run_after(milliseconds(5), [&] {
      timer_ran = true;
      send_text(p.a.get(), "ping");
    });
    run(*loop);
    cr_assert_eq(got, "ping", "backend %s", loop->backend_name());
  }
}

Test(event_loop, readable_on_socketpair, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  std::string got;
  uint32_t seen = 0;
  std::string err;
  cr_assert(loop->add(p.b.get(), reactor::kReadable,
                      [&](uint32_t events) {
                        seen |= events;
                        char buf[64];
                        ssize_t n = ::read(p.b.get(), buf, sizeof buf);
                        if (n > 0) got.append(buf, static_cast<size_t>(n));
                        if (got == "hello") loop->stop();
                      },
                      &err));
  cr_assert(loop->watching(p.b.get()));
  cr_assert_eq(loop->events(p.b.get()), reactor::kReadable);
  send_text(p.a.get(), "hello");
  run(*loop);
  cr_assert_eq(got, "hello");
  cr_assert_eq(seen, reactor::kReadable);
}

Test(event_loop, idle_fd_is_not_reported, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  int calls = 0;
  cr_assert(loop->add(p.b.get(), reactor::kReadable, [&](uint32_t) { ++calls; }, nullptr));
  loop->run_after(milliseconds(50), [&] { loop->stop(); });
  run(*loop);
  cr_assert_eq(calls, 0);
  cr_assert_leq(loop->iterations(), 5u, "an idle loop sleeps until its timer");
}

Test(event_loop, peer_close_reports_readable_or_hangup, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  uint32_t seen = 0;
  ssize_t last_read = -2;
  cr_assert(loop->add(p.b.get(), reactor::kReadable,
                      [&](uint32_t events) {
                        seen |= events;
                        char buf[8];
                        last_read = ::read(p.b.get(), buf, sizeof buf);
                        loop->remove(p.b.get());
                        loop->stop();
                      },
                      nullptr));
  p.a.reset();
  run(*loop);
  cr_assert(seen & (reactor::kReadable | reactor::kHangup));
  cr_assert_eq(last_read, 0, "end of file");
}

Test(event_loop, hangup_is_reported_with_an_empty_mask, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  uint32_t seen = 0;
  cr_assert(loop->add(p.b.get(), 0,
                      [&](uint32_t events) {
                        seen = events;
                        loop->remove(p.b.get());
                        loop->stop();
                      },
                      nullptr));
  p.a.reset();
  run(*loop);
  cr_assert(seen & reactor::kHangup, "got events %#x", seen);
  cr_assert_eq(seen & (reactor::kReadable | reactor::kWritable), 0u, "not asked for");
}

Test(event_loop, arm_and_disarm_writable, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  int writable = 0;
  bool armed = false;
  uint64_t armed_at = 0;
  cr_assert(loop->add(p.a.get(), reactor::kReadable,
                      [&](uint32_t events) {
                        cr_assert(armed, "kWritable before it was armed");
                        cr_assert(events & reactor::kWritable);
                        ++writable;
                        std::string err;
                        cr_assert(loop->modify(p.a.get(), reactor::kReadable, &err), "%s",
                                  err.c_str());
                      },
                      nullptr));
  loop->run_after(milliseconds(20), [&] {
    armed = true;
    armed_at = loop->iterations();
    std::string err;
    cr_assert(loop->modify(p.a.get(), reactor::kReadable | reactor::kWritable, &err), "%s",
              err.c_str());
    cr_assert_eq(loop->events(p.a.get()), reactor::kReadable | reactor::kWritable);
  });
  loop->run_after(milliseconds(80), [&] { loop->stop(); });
  run(*loop);
  cr_assert_eq(writable, 1, "disarmed after the first kWritable");
  cr_assert_eq(loop->events(p.a.get()), reactor::kReadable);
  cr_assert_gt(loop->iterations(), armed_at);
}

Test(event_loop, modify_dropping_interest_applies_within_the_pass, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  Pair q = socket_pair();
  // Both are writable at once; whichever runs first disarms the other, whose pending
  // kWritable in the same batch must then not be delivered.
  int calls = 0;
  auto handler = [&](int other) {
    return [&, other](uint32_t) {
      ++calls;
      loop->modify(other, 0, nullptr);
      loop->stop();
    };
  };
  cr_assert(loop->add(p.a.get(), reactor::kWritable, handler(q.a.get()), nullptr));
  cr_assert(loop->add(q.a.get(), reactor::kWritable, handler(p.a.get()), nullptr));
  run(*loop);
  cr_assert_eq(calls, 1);
}

Test(event_loop, add_modify_remove_errors, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  std::string err;
  cr_assert(loop->add(p.a.get(), reactor::kReadable, [](uint32_t) {}, &err));
  cr_assert(!loop->add(p.a.get(), reactor::kReadable, [](uint32_t) {}, &err));
  cr_assert(err.find("already registered") != std::string::npos, "got: %s", err.c_str());
  cr_assert(!loop->add(-1, reactor::kReadable, [](uint32_t) {}, &err));
  cr_assert(!loop->add(p.b.get(), reactor::kReadable, nullptr, &err), "empty handler");
  cr_assert(!loop->modify(p.b.get(), reactor::kReadable, &err));
  cr_assert(err.find("not registered") != std::string::npos, "got: %s", err.c_str());
  cr_assert_eq(loop->events(p.b.get()), 0u);
  cr_assert(!loop->watching(p.b.get()));
  loop->remove(p.b.get());  // not registered: a no-op
  loop->remove(12345);
  loop->remove(p.a.get());
  cr_assert(!loop->watching(p.a.get()));
  cr_assert(loop->add(p.a.get(), reactor::kReadable, [](uint32_t) {}, &err),
            "re-adding after remove works");
  UniqueFd closed(::dup(p.b.get()));
  int closed_fd = closed.get();
  closed.reset();
  cr_assert(!loop->add(closed_fd, reactor::kReadable, [](uint32_t) {}, &err) ||
                std::string(loop->backend_name()) == "poll",
            "epoll refuses a closed fd");
  loop->remove(closed_fd);
}

Test(event_loop, timers_fire_in_deadline_order_and_never_early, .timeout = 10) {
  auto loop = make_loop();
  std::vector<int> order;
  Clock::time_point start = Clock::now();
  bool early = false;
  for (int ms : {30, 10, 20}) {
    loop->run_after(milliseconds(ms), [&, ms] {
      if (Clock::now() < start + milliseconds(ms)) early = true;
      order.push_back(ms);
      if (order.size() == 3) loop->stop();
    });
  }
  run(*loop);
  cr_assert_eq(order.size(), 3u);
  cr_assert(order[0] == 10 && order[1] == 20 && order[2] == 30);
  cr_assert(!early, "a timer fired before its deadline");
}

Test(event_loop, repeating_timer_and_cancel_from_inside, .timeout = 10) {
  auto loop = make_loop();
  int ticks = 0;
  EventLoop::TimerId id = 0;
  id = loop->run_every(milliseconds(5), [&] {
    ++ticks;
    if (ticks == 5) {
      loop->cancel(id);
      loop->run_after(milliseconds(40), [&] { loop->stop(); });
    }
  });
  run(*loop);
  cr_assert_eq(ticks, 5, "no tick after cancelling itself");
}

Test(event_loop, cancel_before_fire_and_cancel_another_due_timer, .timeout = 10) {
  auto loop = make_loop();
  std::string order;
  EventLoop::TimerId never = loop->run_after(milliseconds(10), [&] { order += "N"; });
  loop->cancel(never);
  EventLoop::TimerId victim = 0;
  loop->run_after(milliseconds(5), [&] {
    order += "a";
    loop->cancel(victim);
  });
  victim = loop->run_after(milliseconds(5), [&] { order += "V"; });
  loop->run_after(milliseconds(40), [&] {
    order += "z";
    loop->stop();
  });
  loop->cancel(999999);  // unknown: ignored
  run(*loop);
  cr_assert_eq(order, "az");
}

Test(event_loop, run_every_clamps_a_zero_period, .timeout = 10) {
  auto loop = make_loop();
  int ticks = 0;
  loop->run_every(Clock::duration::zero(), [&] { ++ticks; });
  loop->run_after(milliseconds(50), [&] { loop->stop(); });
  run(*loop);
  cr_assert_gt(ticks, 0);
  cr_assert_leq(ticks, 55, "a zero period must not become a busy loop (%d ticks)", ticks);
}

Test(event_loop, signals_are_delivered_through_the_loop, .timeout = 10) {
  auto loop = make_loop();
  int usr1 = 0;
  int hup = 0;
  std::string err;
  cr_assert(loop->on_signal(SIGUSR1, [&] { ++usr1; }, &err), "%s", err.c_str());
  cr_assert(loop->on_signal(SIGHUP, [&] { ++hup; }, &err), "%s", err.c_str());
  // raise() targets this thread, which has both blocked: they wait for the signalfd.
  // (kill(getpid()) could be delivered to a Criterion helper thread instead.)
  loop->run_after(milliseconds(5), [&] { ::raise(SIGUSR1); });
  loop->run_after(milliseconds(10), [&] { ::raise(SIGHUP); });
  loop->run_every(milliseconds(5), [&] {
    if (usr1 > 0 && hup > 0) loop->stop();
  });
  run(*loop);
  cr_assert_eq(usr1, 1);
  cr_assert_eq(hup, 1);
  sigset_t blocked;
  cr_assert_eq(::sigprocmask(SIG_BLOCK, nullptr, &blocked), 0);
  cr_assert(sigismember(&blocked, SIGUSR1) && sigismember(&blocked, SIGHUP));
}

Test(event_loop, signal_registration_replaces_and_validates, .timeout = 10) {
  auto loop = make_loop();
  std::string order;
  std::string err;
  cr_assert(loop->on_signal(SIGUSR2, [&] { order += "old"; }, &err));
  cr_assert(loop->on_signal(SIGUSR2,
                            [&] {
                              order += "new";
                              loop->stop();
                            },
                            &err));
  cr_assert(!loop->on_signal(0, [] {}, &err));
  cr_assert(!loop->on_signal(SIGKILL, [] {}, &err), "SIGKILL cannot be caught");
  cr_assert(!err.empty());
  ::raise(SIGUSR2);  // before run(): stays pending until the loop reads it
  run(*loop);
  cr_assert_eq(order, "new");
}

Test(event_loop, defer_runs_after_the_dispatch_pass, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  Pair q = socket_pair();
  std::vector<std::string> log;
  bool deferred = false;
  auto handler = [&](int fd, const char* name) {
    return [&, fd, name](uint32_t) {
      char buf[8];
      (void)::read(fd, buf, sizeof buf);
      log.push_back(std::string(name) + "@" + std::to_string(loop->iterations()));
      if (!deferred) {
        deferred = true;
        loop->defer([&] {
          log.push_back("deferred@" + std::to_string(loop->iterations()));
          loop->defer([&] {
            log.push_back("nested@" + std::to_string(loop->iterations()));
            loop->stop();
          });
        });
      }
    };
  };
  cr_assert(loop->add(p.b.get(), reactor::kReadable, handler(p.b.get(), "p"), nullptr));
  cr_assert(loop->add(q.b.get(), reactor::kReadable, handler(q.b.get(), "q"), nullptr));
  send_text(p.a.get(), "x");
  send_text(q.a.get(), "y");
  run(*loop);
  cr_assert_eq(log.size(), 4u);
  // Both handlers ran in iteration 1, the deferred task after both in the same iteration,
  // and the task it deferred in the next one (without waiting for anything).
  std::vector<std::string> handlers{log[0], log[1]};
  cr_assert((handlers[0] == "p@1" && handlers[1] == "q@1") ||
                (handlers[0] == "q@1" && handlers[1] == "p@1"),
            "%s %s", log[0].c_str(), log[1].c_str());
  cr_assert_eq(log[2], "deferred@1");
  cr_assert_eq(log[3], "nested@2");
}

Test(event_loop, stop_before_run_returns_at_once, .timeout = 10) {
  auto loop = make_loop();
  loop->stop();
  loop->run_after(std::chrono::seconds(5), [] { cr_assert_fail("should not run"); });
  Clock::time_point start = Clock::now();
  cr_assert(loop->run());
  cr_assert_lt(Clock::now() - start, std::chrono::seconds(1));
  // and the loop can run again afterwards
  loop->run_after(milliseconds(1), [&] { loop->stop(); });
  run(*loop);
}

Test(event_loop, run_is_not_reentrant, .timeout = 10) {
  auto loop = make_loop();
  bool nested_ok = true;
  std::string nested_err;
  loop->run_after(milliseconds(1), [&] {
    nested_ok = loop->run(&nested_err);
    loop->stop();
  });
  run(*loop);
  cr_assert(!nested_ok);
  cr_assert(nested_err.find("inside the loop") != std::string::npos, "%s", nested_err.c_str());
}

Test(event_loop, remove_self_inside_handler, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  auto token = std::make_shared<int>(42);
  std::string payload(512, 'x');  // heap-allocated capture: ASan sees a use after free
  int calls = 0;
  cr_assert(loop->add(p.b.get(), reactor::kReadable,
                      [&calls, &loop, &p, token, payload](uint32_t) {
                        ++calls;
                        loop->remove(p.b.get());
                        // Still running: our captures must be intact.
                        cr_assert_eq(*token, 42);
                        cr_assert_eq(payload.size(), 512u);
                      },
                      nullptr));
  send_text(p.a.get(), "data stays unread, so the fd stays readable");
  std::weak_ptr<int> weak = token;
  token.reset();
  loop->run_after(milliseconds(40), [&] { loop->stop(); });
  run(*loop);
  cr_assert_eq(calls, 1, "not called again after removing itself");
  cr_assert(weak.expired(), "the handler is destroyed after its pass");
  cr_assert(!loop->watching(p.b.get()));
}

Test(event_loop, removing_another_ready_fd_skips_its_handler, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  Pair q = socket_pair();
  std::vector<int> ran;
  auto handler = [&](int self, int other) {
    return [&, self, other](uint32_t) {
      ran.push_back(self);
      char buf[8];
      (void)::read(self, buf, sizeof buf);
      loop->remove(other);
    };
  };
  cr_assert(loop->add(p.b.get(), reactor::kReadable, handler(p.b.get(), q.b.get()), nullptr));
  cr_assert(loop->add(q.b.get(), reactor::kReadable, handler(q.b.get(), p.b.get()), nullptr));
  // Both readable before the first wait, so both are in the same batch.
  send_text(p.a.get(), "1");
  send_text(q.a.get(), "2");
  loop->run_after(milliseconds(40), [&] { loop->stop(); });
  run(*loop);
  cr_assert_eq(ran.size(), 1u, "the removed fd's handler ran although it was removed");
}

Test(event_loop, fd_reused_within_a_batch_gets_no_stale_event, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  Pair q = socket_pair();
  Pair fresh = socket_pair();
  std::vector<std::string> log;
  UniqueFd reused;
  auto reuse = [&](int self, UniqueFd& victim) {
    return [&, self](uint32_t) {
      log.push_back("old@" + std::to_string(loop->iterations()));
      char buf[8];
      (void)::read(self, buf, sizeof buf);
      if (reused) return;
      // Close the other ready fd and hand its number to a new file, as accept() would.
      int number = victim.get();
      loop->remove(number);
      victim.release();
      cr_assert_eq(::dup2(fresh.b.get(), number), number, "dup2: %s", std::strerror(errno));
      reused.reset(number);
      send_text(fresh.a.get(), "new");
      cr_assert(loop->add(number, reactor::kReadable,
                          [&, number](uint32_t) {
                            log.push_back("new@" + std::to_string(loop->iterations()));
                            char b[8];
                            (void)::read(number, b, sizeof b);
                            loop->stop();
                          },
                          nullptr));
    };
  };
  cr_assert(loop->add(p.b.get(), reactor::kReadable, reuse(p.b.get(), q.b), nullptr));
  cr_assert(loop->add(q.b.get(), reactor::kReadable, reuse(q.b.get(), p.b), nullptr));
  send_text(p.a.get(), "1");
  send_text(q.a.get(), "2");
  run(*loop);
  cr_assert_eq(log.size(), 2u);
  cr_assert_eq(log[0], "old@1");
  cr_assert_eq(log[1], "new@2",
               "the new file's handler got the old file's event in the same pass: %s",
               log[1].c_str());
}

namespace {
// Calls back into the loop when destroyed, as a connection owned by its handler might.
struct RemovesOnDestroy {
  EventLoop* loop;
  int fd;
  ~RemovesOnDestroy() {
    loop->remove(fd);
    loop->cancel(1);
  }
};
}  // namespace

Test(event_loop, destroying_the_loop_tolerates_reentrant_destructors, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  std::shared_ptr<RemovesOnDestroy> owner(new RemovesOnDestroy{loop.get(), p.a.get()});
  cr_assert(loop->add(p.a.get(), reactor::kReadable, [owner](uint32_t) {}, nullptr));
  std::shared_ptr<RemovesOnDestroy> timer_owner(new RemovesOnDestroy{loop.get(), p.a.get()});
  loop->run_after(std::chrono::hours(1), [timer_owner] {});
  std::shared_ptr<RemovesOnDestroy> task_owner(new RemovesOnDestroy{loop.get(), p.a.get()});
  loop->defer([task_owner] {});
  owner.reset();
  timer_owner.reset();
  task_owner.reset();
  loop.reset();  // ASan reports any use of a container mid-destruction
}

Test(event_loop, handler_may_add_a_higher_fd_while_running, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  std::vector<UniqueFd> extra;
  int added_calls = 0;
  cr_assert(loop->add(p.b.get(), reactor::kReadable,
                      [&](uint32_t) {
                        char buf[8];
                        (void)::read(p.b.get(), buf, sizeof buf);
                        // Enough new fds to force the handler table to grow mid-call.
                        for (int i = 0; i < 64; ++i) {
                          Pair n = socket_pair();
                          cr_assert(loop->add(n.a.get(), reactor::kWritable,
                                              [&](uint32_t) { ++added_calls; }, nullptr));
                          extra.push_back(std::move(n.a));
                          extra.push_back(std::move(n.b));
                        }
                        loop->run_after(milliseconds(20), [&] { loop->stop(); });
                      },
                      nullptr));
  send_text(p.a.get(), "go");
  run(*loop);
  cr_assert_gt(added_calls, 0);
  for (UniqueFd& fd : extra) loop->remove(fd.get());
}

Test(event_loop, ignore_sigpipe_makes_writes_fail_with_epipe, .timeout = 10) {
  reactor::ignore_sigpipe();
  int fds[2];
  cr_assert_eq(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd r(fds[0]);
  UniqueFd w(fds[1]);
  r.reset();
  errno = 0;
  cr_assert_eq(::write(w.get(), "x", 1), -1);
  cr_assert_eq(errno, EPIPE);
}

// replace(): the new handler and mask take over at once, from inside the old handler; the
// old handler is not called again (it is retired, destroyed after the pass), and the new
// one sees only what its own mask asks for.
Test(event_loop, replace_hands_a_registered_fd_to_a_new_handler, .timeout = 10) {
  auto loop = make_loop();
  Pair p = socket_pair();
  int old_calls = 0;
  int new_calls = 0;
  std::string got;
  auto fresh = [&](uint32_t events) {
    ++new_calls;
    cr_assert(events & reactor::kReadable, "events %#x", events);
    char buf[16];
    ssize_t n = ::read(p.a.get(), buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    loop->remove(p.a.get());
    loop->stop();
  };
  cr_assert(loop->add(p.a.get(), reactor::kWritable,
                      [&](uint32_t) {
                        ++old_calls;
                        std::string err;
                        cr_assert(loop->replace(p.a.get(), reactor::kReadable, fresh, &err), "%s", err.c_str());
                        cr_assert_eq(loop->events(p.a.get()), reactor::kReadable);
                      },
                      nullptr));
  loop->run_after(milliseconds(30), [&] { send_text(p.b.get(), "hi"); });
  run(*loop);
  cr_assert_eq(old_calls, 1, "the old handler ran %d times", old_calls);
  cr_assert_eq(new_calls, 1);
  cr_assert_eq(got, "hi");
  std::string err;
  cr_assert_not(loop->replace(p.a.get(), reactor::kReadable, fresh, &err), "not registered any more");
  cr_assert_not(err.empty());
}

// remove_before_close(): after it and close(), the same descriptor number, reused by a new
// socket, can be added again and reports that socket's events, with either backend.
Test(event_loop, remove_before_close_then_reuse_the_number, .timeout = 10) {
  auto loop = make_loop();
  Pair first = socket_pair();
  int number = first.a.get();
  cr_assert(loop->add(number, reactor::kReadable, [](uint32_t) { cr_assert_fail("the closed socket's handler ran"); },
                      nullptr));
  loop->remove_before_close(number);
  cr_assert_not(loop->watching(number));
  first.a.reset();
  Pair second = socket_pair();
  int fds[2] = {second.a.get(), second.b.get()};
  int reused = fds[0] == number ? 0 : fds[1] == number ? 1 : -1;
  cr_assert_neq(reused, -1, "the lowest free number %d was not reused", number);
  int other = fds[1 - reused];
  bool seen = false;
  std::string err;
  cr_assert(loop->add(number, reactor::kReadable,
                      [&](uint32_t events) {
                        seen = (events & reactor::kReadable) != 0;
                        loop->remove(number);
                        loop->stop();
                      },
                      &err),
            "%s", err.c_str());
  send_text(other, "x");
  run(*loop);
  cr_assert(seen);
}
