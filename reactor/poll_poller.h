#pragma once
// poll(2) backend: the portable fallback, and a second implementation that keeps the loop
// honest (a test suite that passes on both does not depend on epoll quirks).
//
// The pollfd array is what poll() takes, so it is kept dense: an fd->index map finds an
// entry in O(1), and unwatch() moves the last entry into the hole instead of shifting.

#include <poll.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "reactor/poller.h"

namespace reactor {

class PollPoller final : public Poller {
 public:
  bool watch(int fd, uint32_t events, std::string* err) override;
  void unwatch(int fd) override;
  int wait(int timeout_ms, std::vector<Ready>& out, std::string* err) override;
  const char* name() const override { return "poll"; }

 private:
  std::vector<pollfd> fds_;
  std::unordered_map<int, size_t> index_;
};

}  // namespace reactor
