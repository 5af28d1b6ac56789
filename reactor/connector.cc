#include "reactor/connector.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>

#include "reactor/errors.h"
#include "reactor/socket_ops.h"

namespace reactor {

namespace {

ConnectError classify(int errnum) {
  switch (errnum) {
    case ECONNREFUSED:
      return ConnectError::kRefused;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      return ConnectError::kUnreachable;
    case ETIMEDOUT:  // the kernel gave up on its own (SYN retries) before our timer
      return ConnectError::kTimedOut;
    default:
      return ConnectError::kOther;
  }
}

std::string describe(Connector::Clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 1000) return std::to_string(ms) + " ms";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ms) / 1000.0);
  return text;
}

}  // namespace

const char* to_string(ConnectError kind) {
  switch (kind) {
    case ConnectError::kNone:
      return "none";
    case ConnectError::kRefused:
      return "refused";
    case ConnectError::kUnreachable:
      return "unreachable";
    case ConnectError::kTimedOut:
      return "timed out";
    case ConnectError::kOther:
      break;
  }
  return "other";
}

Connector::Connector(EventLoop& loop, std::vector<SocketAddress> addresses,
                     Clock::duration timeout, Callback on_done, const SocketAddress* source)
    : loop_(loop),
      addresses_(std::move(addresses)),
      source_(source ? *source : SocketAddress()),
      timeout_(timeout),
      on_done_(std::move(on_done)) {
  // Deferred so that even an immediate outcome (connect() refused on the spot, an empty
  // address list) reaches the callback from the loop, never before the constructor returns.
  std::weak_ptr<bool> alive = alive_;
  loop_.defer([this, alive] {
    if (!alive.expired()) try_next();
  });
}

Connector::~Connector() { stop_waiting(); }

void Connector::stop_waiting() {
  if (fd_) loop_.remove(fd_.get());
  if (timer_ != 0) loop_.cancel(timer_);
  timer_ = 0;
}

void Connector::note(ConnectError kind, std::string message) {
  last_kind_ = kind;
  if (!errors_.empty()) errors_ += "; ";
  errors_ += message;
}

// Every path ends here or in a new attempt; nothing touches *this after the callback,
// which may have destroyed it.
void Connector::finish(UniqueFd fd, ConnectError kind) {
  done_ = true;
  Callback on_done = std::move(on_done_);
  std::string message = kind == ConnectError::kNone ? std::string() : std::move(errors_);
  if (on_done) on_done(std::move(fd), kind, message);
}

void Connector::hand_over(uint32_t events, EventLoop::IoHandler handler) {
  handover_events_ = events;
  handover_ = std::move(handler);
}

// `registered`: the fd is still watched for the connect's completion.
void Connector::succeed(UniqueFd fd, bool registered) {
  // Requests and replies are small and latency-bound; the OS default would hold them back
  // waiting for an ACK. A failure here costs speed, not correctness.
  set_nodelay(fd.get(), true, nullptr);
  if (handover_) {
    std::string err;
    bool ok = registered ? loop_.replace(fd.get(), handover_events_, handover_, &err)
                         : loop_.add(fd.get(), handover_events_, handover_, &err);
    if (!ok) {
      if (registered) loop_.remove_before_close(fd.get());
      note(ConnectError::kOther, "connect " + addresses_[next_ - 1].to_string() + ": " + err);
      fd.reset();
      try_next();
      return;
    }
  } else if (registered) {
    loop_.remove(fd.get());
  }
  finish(std::move(fd), ConnectError::kNone);
}

void Connector::try_next() {
  while (next_ < addresses_.size()) {
    const SocketAddress& address = addresses_[next_++];
    // Formatted only for an error: the common path connects without building strings.
    auto what = [&address] { return "connect " + address.to_string(); };
    std::string err;
    UniqueFd fd = tcp_socket(address.family(), &err);
    if (!fd) {
      note(ConnectError::kOther, what() + ": " + err);
      continue;
    }
    if (source_.family() == address.family() && !bind_source(fd.get(), source_, &err)) {
      note(ConnectError::kOther, what() + ": " + err);
      continue;
    }
    // EINTR does not abort a connect: it carries on in the background like EINPROGRESS
    // (and a second connect() would only say EALREADY).
    if (::connect(fd.get(), address.get(), address.length()) == 0) {
      succeed(std::move(fd), false);
      return;
    }
    int errnum = errno;
    if (errnum != EINPROGRESS && errnum != EINTR) {
      note(classify(errnum), sys_error(errnum, what()));
      continue;
    }
    if (!loop_.add(fd.get(), kWritable, [this](uint32_t) { on_writable(); }, &err)) {
      note(ConnectError::kOther, what() + ": " + err);
      continue;
    }
    fd_ = std::move(fd);
    timer_ = loop_.run_after(timeout_, [this] {
      timer_ = 0;
      on_timeout();
    });
    return;
  }
  if (addresses_.empty()) note(ConnectError::kOther, "connect: no address to try");
  finish(UniqueFd(), last_kind_);
}

void Connector::on_writable() {
  if (timer_ != 0) loop_.cancel(timer_);
  timer_ = 0;
  UniqueFd fd = std::move(fd_);  // still registered: succeed() or the failure below settles that
  const SocketAddress& address = addresses_[next_ - 1];
  int errnum = socket_error(fd.get());
  if (errnum != 0) {
    note(classify(errnum), sys_error(errnum, "connect " + address.to_string()));
  } else if (may_connect_to_itself(address) && local_address(fd.get()) == address) {
    // Loopback only: connecting to a free ephemeral port can pick that same port as the
    // source, and TCP's simultaneous open then "connects" the socket to itself.
    note(ConnectError::kRefused, "connect " + address.to_string() + ": connected to itself (nothing listening)");
  } else {
    succeed(std::move(fd), true);
    return;
  }
  loop_.remove_before_close(fd.get());
  fd.reset();
  try_next();
}

// A socket bound to another source address than the one it connects to cannot end up
// connected to itself; only then is the getsockname() check worth its system call.
bool Connector::may_connect_to_itself(const SocketAddress& address) const {
  return source_.family() != address.family() || !source_.same_host(address);
}

void Connector::on_timeout() {
  const SocketAddress& address = addresses_[next_ - 1];
  stop_waiting();
  fd_.reset();
  note(ConnectError::kTimedOut, "connect " + address.to_string() + ": timed out after " +
                                    describe(timeout_));
  try_next();
}

}  // namespace reactor
