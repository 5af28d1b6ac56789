#include "reactor/poll_poller.h"

#include <cerrno>

#include "reactor/errors.h"

namespace reactor {

namespace {

short to_poll(uint32_t events) {
  int out = 0;
  if (events & kReadable) out |= POLLIN;
  if (events & kWritable) out |= POLLOUT;
  return static_cast<short>(out);  // POLLHUP, POLLERR, POLLNVAL are always reported
}

uint32_t from_poll(short revents) {
  uint32_t out = 0;
  if (revents & (POLLIN | POLLPRI)) out |= kReadable;
  if (revents & POLLOUT) out |= kWritable;
  if (revents & POLLHUP) out |= kHangup;
  // POLLNVAL: the fd was closed while still watched, a caller bug; reporting it as an error
  // makes the owner remove it instead of the loop spinning on it silently.
  if (revents & (POLLERR | POLLNVAL)) out |= kError;
  return out;
}

}  // namespace

bool PollPoller::watch(int fd, uint32_t events, std::string* err) {
  if (fd < 0) return set_error(err, "poll: negative fd " + std::to_string(fd));
  auto it = index_.find(fd);
  if (it != index_.end()) {
    fds_[it->second].events = to_poll(events);
    return true;
  }
  pollfd p{};
  p.fd = fd;
  p.events = to_poll(events);
  fds_.push_back(p);
  index_.emplace(fd, fds_.size() - 1);
  return true;
}

void PollPoller::unwatch(int fd) {
  auto it = index_.find(fd);
  if (it == index_.end()) return;
  size_t hole = it->second;
  index_.erase(it);
  size_t last = fds_.size() - 1;
  if (hole != last) {
    fds_[hole] = fds_[last];
    index_[fds_[hole].fd] = hole;
  }
  fds_.pop_back();
}

int PollPoller::wait(int timeout_ms, std::vector<Ready>& out, std::string* err) {
  out.clear();
  int n = ::poll(fds_.data(), static_cast<nfds_t>(fds_.size()), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    set_error(err, sys_error("poll"));
    return -1;
  }
  out.reserve(static_cast<size_t>(n));
  for (const pollfd& p : fds_) {
    if (out.size() == static_cast<size_t>(n)) break;  // poll counted them; stop scanning
    if (p.revents != 0) out.push_back(Ready{p.fd, from_poll(p.revents)});
  }
  return static_cast<int>(out.size());
}

}  // namespace reactor
