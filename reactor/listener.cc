#include "reactor/listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "reactor/errors.h"
#include "reactor/socket_ops.h"

namespace reactor {

namespace {

// Linux's accept() reports network errors already pending on the new connection; the
// connection is gone, the listener is fine (accept(2), "Error handling").
bool is_connection_error(int errnum) {
  switch (errnum) {
    case ECONNABORTED:
    case EPROTO:
    case EPERM:  // refused by a firewall rule
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::unique_ptr<Listener> Listener::open(EventLoop& loop, const SocketAddress& address,
                                         AcceptHandler on_accept, std::string* err) {
  const std::string name = address.to_string();
  if (address.family() != AF_INET && address.family() != AF_INET6) {
    set_error(err, "listen " + name + ": not an IPv4 or IPv6 address");
    return nullptr;
  }
  if (!on_accept) {
    set_error(err, "listen " + name + ": no accept handler");
    return nullptr;
  }
  std::string why;
  UniqueFd fd = tcp_socket(address.family(), &why);
  if (!fd) {
    set_error(err, "listen " + name + ": " + why);
    return nullptr;
  }
  if (!set_reuseaddr(fd.get(), true, &why)) {
    set_error(err, "listen " + name + ": " + why);
    return nullptr;
  }
  if (address.family() == AF_INET6) {
    int on = 1;
    if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) {
      set_error(err, sys_error("setsockopt IPV6_V6ONLY for " + name));
      return nullptr;
    }
  }
  if (::bind(fd.get(), address.get(), address.length()) != 0) {
    set_error(err, sys_error("bind " + name));
    return nullptr;
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) {
    set_error(err, sys_error("listen " + name));
    return nullptr;
  }
  std::optional<SocketAddress> local = reactor::local_address(fd.get(), err);
  if (!local) return nullptr;

  std::unique_ptr<Listener> listener(
      new Listener(loop, std::move(fd), *local, std::move(on_accept)));
  if (!listener->watch(err)) return nullptr;
  return listener;
}

Listener::Listener(EventLoop& loop, UniqueFd fd, const SocketAddress& local,
                   AcceptHandler on_accept)
    : loop_(loop), fd_(std::move(fd)), local_(local), on_accept_(std::move(on_accept)) {
  // Best effort: without it, descriptor exhaustion falls back to the timed back-off, and
  // the spare is retried after every wakeup.
  reserve_spare();
}

Listener::~Listener() { close(); }

void Listener::close() {
  if (!fd_) return;
  loop_.remove(fd_.get());
  if (backoff_timer_ != 0) loop_.cancel(backoff_timer_);
  backoff_timer_ = 0;
  fd_.reset();
  spare_.reset();
}

void Listener::pause() {
  user_paused_ = true;
  update_watch();
}

void Listener::resume() {
  user_paused_ = false;
  update_watch();
}

// Paused means not registered at all, rather than registered with an empty mask: hangup
// and error are reported whatever the mask, and a level-triggered one would spin.
void Listener::update_watch() {
  if (!fd_) return;
  bool want = accepting();
  if (want == loop_.watching(fd_.get())) return;
  if (!want) {
    loop_.remove(fd_.get());
    return;
  }
  std::string err;
  if (!watch(&err)) {
    report(err);
    back_off();  // try again later rather than stay deaf for good
  }
}

bool Listener::watch(std::string* err) {
  return loop_.add(fd_.get(), kReadable, [this](uint32_t) { on_readable(); }, err);
}

void Listener::reserve_spare() {
  if (!spare_) spare_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

void Listener::report(const std::string& message) {
  if (on_error_) on_error_(message);
}

void Listener::back_off() {
  if (!fd_ || backoff_timer_ != 0) return;
  backoff_timer_ = loop_.run_after(kBackoff, [this] {
    backoff_timer_ = 0;
    reserve_spare();
    update_watch();
  });
  update_watch();
}

void Listener::on_readable() {
  for (int i = 0; i < kMaxAcceptsPerWakeup && accepting(); ++i) {
    SocketAddress peer;
    socklen_t len = SocketAddress::capacity();
    int fd = ::accept4(fd_.get(), peer.get_mutable(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      peer.set_length(len);
      // The handler may close() or pause() us; accepting() in the loop condition sees it.
      on_accept_(UniqueFd(fd), peer);
      continue;
    }
    int errnum = errno;
    if (errnum == EAGAIN || errnum == EWOULDBLOCK) break;
    if (errnum == EINTR || is_connection_error(errnum)) continue;
    if (errnum == EMFILE || errnum == ENFILE) {
      on_exhausted(errnum);
      break;
    }
    // ENOBUFS, ENOMEM, or something unexpected: retrying at once would fail the same way.
    report(sys_error(errnum, "accept " + local_.to_string()));
    back_off();
    break;
  }
  if (fd_) reserve_spare();  // a no-op unless an earlier attempt found the table full
}

void Listener::on_exhausted(int errnum) {
  int turned_away = 0;
  bool drained = false;  // the backlog is empty: nothing left to spin on
  for (int attempt = 0; spare_ && attempt < kMaxAcceptsPerWakeup; ++attempt) {
    spare_.reset();
    int fd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    int accept_errno = errno;
    UniqueFd(fd).reset();  // the client reads end of file (or a reset, if it had sent data)
    reserve_spare();
    if (fd >= 0) {
      ++turned_away;
      continue;
    }
    if (accept_errno == EAGAIN || accept_errno == EWOULDBLOCK) {
      drained = true;
      break;
    }
    if (accept_errno != EINTR && !is_connection_error(accept_errno)) break;  // no help
  }

  std::string message = sys_error(errnum, "accept " + local_.to_string());
  if (turned_away > 0) {
    message += " (closed " + std::to_string(turned_away) + " pending connection" +
               (turned_away == 1 ? ")" : "s)");
  }
  report(message);

  // The trick worked (backlog drained, or a full batch turned away with more waiting: the
  // next wakeup makes progress too) only if the spare is back. Anything else -- no spare,
  // accept still failing -- would make the next wakeup fail the same way at once, so wait.
  bool progress = drained || turned_away == kMaxAcceptsPerWakeup;
  if (!progress || !spare_) back_off();
}

}  // namespace reactor
