#include "tests/support/black_hole.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "tests/support/address.h"

namespace testsupport {

bool BlackHole::open(BlackHole* out, std::string* err) {
  auto fail = [&](const std::string& why) {
    if (err) *err = "black hole: " + why;
    return false;
  };
  out->listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!out->listener_) return fail(std::string("socket: ") + std::strerror(errno));
  std::optional<SockAddr> any = parse_address("127.0.0.1:0");
  // Backlog 0: Linux then queues one completed connection and drops SYNs after it.
  if (::bind(out->listener_.get(), any->get(), any->length) != 0 || ::listen(out->listener_.get(), 0) != 0)
    return fail(std::string("bind/listen: ") + std::strerror(errno));
  std::optional<SockAddr> local = local_address(out->listener_.get());
  if (!local) return fail("getsockname failed");
  out->address_ = local->to_string();
  for (int i = 0; i < 8; ++i) {
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (::connect(c.get(), local->get(), local->length) != 0 && errno != EINPROGRESS)
      return fail(std::string("connect: ") + std::strerror(errno));
    pollfd p{c.get(), POLLOUT, 0};
    bool connected = ::poll(&p, 1, 200) == 1;
    out->queued_.push_back(std::move(c));
    if (!connected) return true;  // this one hangs: the queue is full
  }
  return fail("the accept queue of a backlog-0 listener never filled");
}

}  // namespace testsupport
