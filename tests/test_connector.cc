// Connector: success, refusal, the timeout, falling through a list of addresses, and the
// lifetime rules (callback only from the loop, may destroy the Connector; destroying it
// first cancels everything). Loopback only. The timeout is made deterministic with a
// listener whose accept queue is full: Linux then drops new SYNs, and the connect stays
// pending for at least the first SYN retransmission (1 s), far beyond the test's timeout.

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "reactor/connector.h"
#include "reactor/event_loop.h"
#include "tests/support/loop_driver.h"
#include "reactor/socket_address.h"
#include "reactor/socket_ops.h"
#include "reactor/unique_fd.h"
#include "tests/support/black_hole.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using reactor::ConnectError;
using reactor::Connector;
using reactor::EventLoop;
using reactor::SocketAddress;
using reactor::UniqueFd;
using Clock = EventLoop::Clock;
using std::chrono::milliseconds;

namespace {

using testsupport::make_loop;

// A listening socket on 127.0.0.1 with an ephemeral port; nobody accepts, the kernel
// completes handshakes into the backlog.
struct RawListener {
  UniqueFd fd;
  SocketAddress addr;
};

RawListener raw_listener(int backlog) {
  RawListener l;
  l.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  cr_assert(l.fd);
  SocketAddress any = SocketAddress::ipv4_loopback(0);
  cr_assert_eq(::bind(l.fd.get(), any.get(), any.length()), 0, "bind: %s", std::strerror(errno));
  cr_assert_eq(::listen(l.fd.get(), backlog), 0);
  std::optional<SocketAddress> local = reactor::local_address(l.fd.get());
  cr_assert(local.has_value());
  l.addr = *local;
  return l;
}

// An address where nothing listens: bound once (so the port was free), then closed.
SocketAddress refused_address() {
  RawListener l = raw_listener(1);
  return l.addr;  // l.fd closes here
}

// A listener whose accept queue is full: further SYNs are dropped, connects hang.
struct FullListener {
  testsupport::BlackHole hole;
  RawListener listener;  // only .addr: the hole's address as a reactor::SocketAddress
};

FullListener full_listener() {
  FullListener full;
  std::string err;
  cr_assert(testsupport::BlackHole::open(&full.hole, &err), "%s", err.c_str());
  cr_assert(reactor::parse_address(full.hole.address(), &full.listener.addr, &err), "%s", err.c_str());
  return full;
}

struct Outcome {
  int calls = 0;
  UniqueFd fd;
  ConnectError kind = ConnectError::kNone;
  std::string err;
  Clock::time_point when;
};

Connector::Callback record(Outcome& out, EventLoop& loop) {
  return [&out, &loop](UniqueFd fd, ConnectError kind, const std::string& err) {
    ++out.calls;
    out.fd = std::move(fd);
    out.kind = kind;
    out.err = err;
    out.when = Clock::now();
    loop.stop();
  };
}

void run(EventLoop& loop, Clock::duration limit = std::chrono::seconds(3)) {
  bool expired = false;
  EventLoop::TimerId id = loop.run_after(limit, [&] {
    expired = true;
    loop.stop();
  });
  loop.run();
  loop.cancel(id);
  cr_assert(!expired, "the connector never called back");
}

}  // namespace

Test(connector, connects, .timeout = 10) {
  auto loop = make_loop();
  RawListener server = raw_listener(16);
  Outcome out;
  Connector c(*loop, {server.addr}, std::chrono::seconds(2), record(out, *loop));
  cr_assert_eq(out.calls, 0, "never from inside the constructor");
  run(*loop);
  cr_assert_eq(out.calls, 1);
  cr_assert(out.kind == ConnectError::kNone, "%s: %s", reactor::to_string(out.kind), out.err.c_str());
  cr_assert(out.err.empty());
  cr_assert(out.fd);
  cr_assert(c.done());
  std::optional<SocketAddress> peer = reactor::peer_address(out.fd.get());
  cr_assert(peer.has_value() && *peer == server.addr);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  cr_assert_eq(::getsockopt(out.fd.get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  cr_assert_neq(nodelay, 0, "TCP_NODELAY is set on success");
  cr_assert(::fcntl(out.fd.get(), F_GETFL) & O_NONBLOCK);
  cr_assert(::fcntl(out.fd.get(), F_GETFD) & FD_CLOEXEC);
}

// Without hand_over() the fd comes back unregistered; with it, registered for the new
// handler, which then gets the connection's events (here: the server's first bytes).
// A failed attempt leaves nothing registered either way.
Test(connector, hands_the_fd_over_registered, .timeout = 10) {
  auto loop = make_loop();
  RawListener server = raw_listener(16);
  Outcome plain;
  Connector c1(*loop, {server.addr}, std::chrono::seconds(2), record(plain, *loop));
  run(*loop);
  cr_assert(plain.fd);
  cr_assert_not(loop->watching(plain.fd.get()), "registered without hand_over()");

  Outcome out;
  int handled = 0;
  Connector c2(*loop, {refused_address(), server.addr}, std::chrono::seconds(2), record(out, *loop));
  c2.hand_over(reactor::kReadable, [&](uint32_t events) {
    if (events & reactor::kReadable) ++handled;
    loop->stop();
  });
  run(*loop);
  cr_assert(out.kind == ConnectError::kNone, "%s: %s", reactor::to_string(out.kind), out.err.c_str());
  cr_assert(out.fd);
  cr_assert(loop->watching(out.fd.get()));
  cr_assert_eq(loop->events(out.fd.get()), reactor::kReadable);
  // Both connections wait in the listener's queue (c1's first): greet both.
  UniqueFd first(::accept4(server.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  UniqueFd second(::accept4(server.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  cr_assert(first && second);
  cr_assert_eq(::write(first.get(), "x", 1), 1);
  cr_assert_eq(::write(second.get(), "x", 1), 1);
  run(*loop);
  cr_assert_eq(handled, 1);
  loop->remove(out.fd.get());
}

Test(connector, refused, .timeout = 10) {
  auto loop = make_loop();
  SocketAddress nobody = refused_address();
  Outcome out;
  Connector c(*loop, {nobody}, std::chrono::seconds(2), record(out, *loop));
  cr_assert_eq(out.calls, 0, "an immediate refusal is still reported from the loop");
  run(*loop);
  cr_assert_eq(out.calls, 1);
  cr_assert(out.kind == ConnectError::kRefused, "%s: %s", reactor::to_string(out.kind),
            out.err.c_str());
  cr_assert(!out.fd);
  cr_assert_eq(out.err, "connect " + nobody.to_string() + ": Connection refused");
}

Test(connector, times_out, .timeout = 10) {
  auto loop = make_loop();
  FullListener full = full_listener();
  Outcome out;
  Clock::time_point start = Clock::now();
  Connector c(*loop, {full.listener.addr}, milliseconds(200), record(out, *loop));
  run(*loop);
  cr_assert_eq(out.calls, 1);
  cr_assert(out.kind == ConnectError::kTimedOut, "%s: %s", reactor::to_string(out.kind),
            out.err.c_str());
  cr_assert(!out.fd);
  cr_assert_eq(out.err, "connect " + full.listener.addr.to_string() + ": timed out after 200 ms");
  cr_assert_geq(out.when - start, milliseconds(200), "not before the deadline");
}

Test(connector, timeout_message_in_seconds, .timeout = 10) {
  auto loop = make_loop();
  FullListener full = full_listener();
  Outcome out;
  Connector c(*loop, {full.listener.addr}, milliseconds(1500), record(out, *loop));
  run(*loop);
  cr_assert(out.kind == ConnectError::kTimedOut, "%s: %s", reactor::to_string(out.kind),
            out.err.c_str());
  cr_assert_eq(out.err, "connect " + full.listener.addr.to_string() + ": timed out after 1.5 s");
}

Test(connector, falls_through_to_the_next_address, .timeout = 10) {
  auto loop = make_loop();
  FullListener full = full_listener();
  SocketAddress nobody = refused_address();
  RawListener server = raw_listener(16);
  Outcome out;
  Connector c(*loop, {nobody, full.listener.addr, server.addr}, milliseconds(100),
              record(out, *loop));
  run(*loop);
  cr_assert_eq(out.calls, 1);
  cr_assert(out.kind == ConnectError::kNone, "%s", out.err.c_str());
  cr_assert(out.fd);
  std::optional<SocketAddress> peer = reactor::peer_address(out.fd.get());
  cr_assert(peer.has_value() && *peer == server.addr, "connected to the third address");
}

Test(connector, reports_every_failed_address, .timeout = 10) {
  auto loop = make_loop();
  SocketAddress first = refused_address();
  FullListener full = full_listener();
  Outcome out;
  Connector c(*loop, {first, full.listener.addr}, milliseconds(50), record(out, *loop));
  run(*loop);
  cr_assert(out.kind == ConnectError::kTimedOut, "the kind of the last failure");
  cr_assert_eq(out.err, "connect " + first.to_string() + ": Connection refused; connect " +
                            full.listener.addr.to_string() + ": timed out after 50 ms");
}

Test(connector, no_addresses, .timeout = 10) {
  auto loop = make_loop();
  Outcome out;
  Connector c(*loop, {}, milliseconds(50), record(out, *loop));
  cr_assert_eq(out.calls, 0);
  run(*loop);
  cr_assert_eq(out.calls, 1);
  cr_assert(out.kind == ConnectError::kOther);
  cr_assert(out.err.find("no address") != std::string::npos, "%s", out.err.c_str());
}

Test(connector, unsupported_family_is_other, .timeout = 10) {
  auto loop = make_loop();
  Outcome out;
  Connector c(*loop, {SocketAddress()}, milliseconds(50), record(out, *loop));
  run(*loop);
  cr_assert(out.kind == ConnectError::kOther, "%s", reactor::to_string(out.kind));
  cr_assert(out.err.rfind("connect (unspecified): ", 0) == 0, "%s", out.err.c_str());
}

Test(connector, callback_may_destroy_the_connector, .timeout = 10) {
  for (int scenario = 0; scenario < 3; ++scenario) {
    auto loop = make_loop();
    RawListener server = raw_listener(16);
    FullListener full = full_listener();
    SocketAddress target = scenario == 0   ? server.addr
                           : scenario == 1 ? refused_address()
                                           : full.listener.addr;
    std::unique_ptr<Connector> holder;
    std::string payload(300, 'x');  // heap-allocated capture: ASan sees a use after free
    int calls = 0;
    holder = std::make_unique<Connector>(
        *loop, std::vector<SocketAddress>{target}, milliseconds(50),
        [&, payload](UniqueFd, ConnectError, const std::string& err) {
          std::string copy = err;
          holder.reset();  // destroys the Connector and this very callback's owner
          cr_assert_eq(copy, err, "the message must outlive the Connector");
          cr_assert_eq(payload.size(), 300u);
          ++calls;
          loop->stop();
        });
    run(*loop);
    cr_assert_eq(calls, 1, "scenario %d", scenario);
    cr_assert_null(holder.get());
  }
}

Test(connector, destroying_it_first_cancels_everything, .timeout = 10) {
  auto loop = make_loop();
  FullListener full = full_listener();
  int calls = 0;
  auto count = [&](UniqueFd, ConnectError, const std::string&) { ++calls; };
  // Destroyed before its first attempt ran ...
  auto early = std::make_unique<Connector>(*loop, std::vector<SocketAddress>{full.listener.addr},
                                           milliseconds(20), count);
  early.reset();
  // ... and while its connect is pending, before the timeout.
  auto pending = std::make_unique<Connector>(
      *loop, std::vector<SocketAddress>{full.listener.addr}, milliseconds(50), count);
  loop->run_after(milliseconds(10), [&] { pending.reset(); });
  loop->run_after(milliseconds(150), [&] { loop->stop(); });
  loop->run();
  cr_assert_eq(calls, 0, "no callback after destruction");
}

Test(connector, error_kind_names, .timeout = 10) {
  cr_assert_str_eq(reactor::to_string(ConnectError::kNone), "none");
  cr_assert_str_eq(reactor::to_string(ConnectError::kRefused), "refused");
  cr_assert_str_eq(reactor::to_string(ConnectError::kUnreachable), "unreachable");
  cr_assert_str_eq(reactor::to_string(ConnectError::kTimedOut), "timed out");
  cr_assert_str_eq(reactor::to_string(ConnectError::kOther), "other");
}
