#include "reactor/epoll_poller.h"

#include <cerrno>
#include <climits>

#include "reactor/errors.h"

namespace reactor {

namespace {

constexpr size_t kInitialEvents = 64;
constexpr size_t kMaxEvents = 4096;  // beyond this, another epoll_wait call is just as cheap

uint32_t to_epoll(uint32_t events) {
  uint32_t out = 0;
  if (events & kReadable) out |= EPOLLIN;
  if (events & kWritable) out |= EPOLLOUT;
  return out;  // EPOLLHUP and EPOLLERR are always reported, no need to ask
}

uint32_t from_epoll(uint32_t events) {
  uint32_t out = 0;
  // EPOLLPRI (urgent data) wakes the reader too: the handler's read() sees whatever it is.
  if (events & (EPOLLIN | EPOLLPRI)) out |= kReadable;
  if (events & EPOLLOUT) out |= kWritable;
  if (events & EPOLLHUP) out |= kHangup;
  if (events & EPOLLERR) out |= kError;
  return out;
}

}  // namespace

std::unique_ptr<EpollPoller> EpollPoller::create(std::string* err) {
  UniqueFd epfd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epfd) {
    set_error(err, sys_error("epoll_create1"));
    return nullptr;
  }
  return std::unique_ptr<EpollPoller>(new EpollPoller(std::move(epfd)));
}

EpollPoller::EpollPoller(UniqueFd epfd) : epfd_(std::move(epfd)), events_(kInitialEvents) {}

bool EpollPoller::watch(int fd, uint32_t events, std::string* err) {
  if (fd < 0) return set_error(err, "epoll_ctl: negative fd " + std::to_string(fd));
  epoll_event ev{};
  ev.events = to_epoll(events);
  ev.data.fd = fd;
  size_t index = static_cast<size_t>(fd);
  if (index >= registered_.size()) registered_.resize(index + 1, false);
  int op = registered_[index] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  int rc = ::epoll_ctl(epfd_.get(), op, fd, &ev);
  // The kernel drops a registration by itself when the last descriptor of the open file is
  // closed; if the fd was closed without unwatch() and the number reused, MOD finds nothing.
  if (rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT) {
    op = EPOLL_CTL_ADD;
    rc = ::epoll_ctl(epfd_.get(), op, fd, &ev);
  }
  if (rc != 0) {
    int errnum = errno;
    std::string what = op == EPOLL_CTL_ADD ? "epoll_ctl ADD fd " : "epoll_ctl MOD fd ";
    return set_error(err, sys_error(errnum, what + std::to_string(fd)));
  }
  registered_[index] = true;
  return true;
}

void EpollPoller::unwatch(int fd) {
  size_t index = static_cast<size_t>(fd);
  if (fd < 0 || index >= registered_.size() || !registered_[index]) return;
  registered_[index] = false;
  // ENOENT/EBADF mean the fd was already closed and the kernel forgot it: nothing to undo.
  epoll_event ev{};  // non-null for kernels before 2.6.9
  ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, &ev);
}

void EpollPoller::forget(int fd) {
  size_t index = static_cast<size_t>(fd);
  if (fd >= 0 && index < registered_.size()) registered_[index] = false;
}

int EpollPoller::wait(int timeout_ms, std::vector<Ready>& out, std::string* err) {
  out.clear();
  int n = ::epoll_wait(epfd_.get(), events_.data(), static_cast<int>(events_.size()),
                       timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    set_error(err, sys_error("epoll_wait"));
    return -1;
  }
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = events_[static_cast<size_t>(i)];
    out.push_back(Ready{ev.data.fd, from_epoll(ev.events)});
  }
  if (static_cast<size_t>(n) == events_.size() && events_.size() < kMaxEvents) {
    events_.resize(events_.size() * 2);
  }
  return n;
}

}  // namespace reactor
