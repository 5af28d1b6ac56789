#pragma once
// Level-triggered epoll(7) backend. Level-triggered on purpose: a handler that stops early
// (a per-wakeup byte cap, a full buffer) is simply called again on the next wait, so no
// handler has to drain its descriptor to EAGAIN to stay correct.

#include <sys/epoll.h>

#include <memory>
#include <string>
#include <vector>

#include "reactor/poller.h"
#include "reactor/unique_fd.h"

namespace reactor {

class EpollPoller final : public Poller {
 public:
  static std::unique_ptr<EpollPoller> create(std::string* err);

  bool watch(int fd, uint32_t events, std::string* err) override;
  void unwatch(int fd) override;
  void forget(int fd) override;
  int wait(int timeout_ms, std::vector<Ready>& out, std::string* err) override;
  const char* name() const override { return "epoll"; }

 private:
  explicit EpollPoller(UniqueFd epfd);

  UniqueFd epfd_;
  // Whether each fd is registered, so that watch() can pick EPOLL_CTL_ADD or _MOD with one
  // system call instead of trying one and falling back to the other.
  std::vector<bool> registered_;
  // Filled by epoll_wait; doubled whenever a wait fills it, so a busy server needs fewer
  // calls per pass without a fixed upper limit on the batch.
  std::vector<epoll_event> events_;
};

}  // namespace reactor
