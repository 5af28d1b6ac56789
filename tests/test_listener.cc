// Listener: accepting on IPv4 and IPv6 loopback, pause/resume/close, the per-wakeup cap,
// and descriptor exhaustion. The EMFILE tests lower RLIMIT_NOFILE in the test process;
// Criterion runs every test in its own process, so the limit dies with the test.

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "reactor/event_loop.h"
#include "tests/support/loop_driver.h"
#include "reactor/listener.h"
#include "reactor/socket_address.h"
#include "reactor/socket_ops.h"
#include "reactor/unique_fd.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using reactor::EventLoop;
using reactor::Listener;
using reactor::SocketAddress;
using reactor::UniqueFd;
using Clock = EventLoop::Clock;
using std::chrono::milliseconds;

namespace {

using testsupport::make_loop;

SocketAddress address(const char* text) {
  SocketAddress addr;
  std::string err;
  cr_assert(reactor::parse_address(text, &addr, &err), "%s", err.c_str());
  return addr;
}

// Collects accepted connections; stops the loop once `target` have arrived.
struct Acceptor {
  explicit Acceptor(EventLoop* l) : loop(l) {}
  EventLoop* loop;
  size_t target = 1;
  std::vector<UniqueFd> fds;
  std::vector<SocketAddress> peers;
  std::vector<uint64_t> iterations;  // loop iteration of each accept

  Listener::AcceptHandler handler() {
    return [this](UniqueFd fd, const SocketAddress& peer) {
      fds.push_back(std::move(fd));
      peers.push_back(peer);
      iterations.push_back(loop->iterations());
      if (fds.size() >= target) loop->stop();
    };
  }
};

std::unique_ptr<Listener> listen_on(EventLoop& loop, const SocketAddress& addr, Acceptor& acc) {
  std::string err;
  std::unique_ptr<Listener> listener = Listener::open(loop, addr, acc.handler(), &err);
  cr_assert_not_null(listener.get(), "Listener::open: %s", err.c_str());
  return listener;
}

// Runs the loop until something stops it; false if `limit` ran out first.
bool run_for_at_most(EventLoop& loop, Clock::duration limit) {
  bool expired = false;
  EventLoop::TimerId id = loop.run_after(limit, [&] {
    expired = true;
    loop.stop();
  });
  loop.run();
  loop.cancel(id);
  return !expired;
}

// Runs the loop for exactly `span` (nothing else stops it) and returns its wakeups.
uint64_t run_for(EventLoop& loop, Clock::duration span) {
  uint64_t before = loop.iterations();
  loop.run_after(span, [&] { loop.stop(); });
  loop.run();
  return loop.iterations() - before;
}

// A non-blocking connect that is not waited for: on loopback the kernel completes the
// handshake into the listener's backlog at once.
UniqueFd start_connect(const SocketAddress& addr) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  cr_assert(fd, "socket: %s", std::strerror(errno));
  int rc = ::connect(fd.get(), addr.get(), addr.length());
  cr_assert(rc == 0 || errno == EINPROGRESS, "connect: %s", std::strerror(errno));
  return fd;
}

UniqueFd connect_client(const SocketAddress& addr) {
  UniqueFd fd = start_connect(addr);
  pollfd p{fd.get(), POLLOUT, 0};
  cr_assert_eq(::poll(&p, 1, 2000), 1, "connect did not complete");
  cr_assert_eq(reactor::socket_error(fd.get()), 0);
  return fd;
}

int highest_open_fd() {
  int highest = 2;
  DIR* dir = ::opendir("/proc/self/fd");
  cr_assert_not_null(dir);
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') highest = std::max(highest, std::atoi(entry->d_name));
  }
  ::closedir(dir);
  return highest;
}

void set_fd_limit(rlim_t limit) {
  rlimit rl;
  cr_assert_eq(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = limit;
  cr_assert_eq(::setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s", std::strerror(errno));
}

// Opens /dev/null until the descriptor table is full.
std::vector<UniqueFd> fill_fd_table() {
  std::vector<UniqueFd> fillers;
  fillers.reserve(1000);  // no allocation while the table is full
  for (int i = 0; i < 1000; ++i) {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!fd) {
      cr_assert_eq(errno, EMFILE, "open: %s", std::strerror(errno));
      return fillers;
    }
    fillers.push_back(std::move(fd));
  }
  cr_assert_fail("the descriptor table never filled up");
  return fillers;
}

// Whether a connection the server closed has been closed: recv() reports end of file or
// a reset. Waits up to `wait_ms` for the verdict.
bool closed_by_peer(int fd, int wait_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, wait_ms) != 1) return false;
  char c;
  ssize_t n = ::recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

// UBSan checks each virtual call's dynamic type, and the first check of a type probes memory
// through a pipe: under EMFILE that fails and is reported as a bad vptr. Calling every
// Poller method once while descriptors are still free warms its cache.
void warm_up_poller(EventLoop& loop) {
  int sv[2];
  cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]);
  UniqueFd b(sv[1]);
  cr_assert(loop.add(a.get(), reactor::kReadable, [](uint32_t) {}, nullptr));
  cr_assert(loop.modify(a.get(), reactor::kWritable, nullptr));
  run_for(loop, milliseconds(1));
  loop.remove(a.get());
}

}  // namespace

Test(listener, accepts_on_ipv4_loopback, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  auto listener = listen_on(*loop, address("127.0.0.1:0"), acc);
  SocketAddress local = listener->local_address();
  cr_assert_eq(local.family(), AF_INET);
  cr_assert_neq(local.port(), 0, "the real port, not 0");
  cr_assert_eq(local.to_string(), "127.0.0.1:" + std::to_string(local.port()));

  UniqueFd client = connect_client(local);
  cr_assert(run_for_at_most(*loop, std::chrono::seconds(2)), "no connection accepted");
  cr_assert_eq(acc.fds.size(), 1u);
  std::optional<SocketAddress> client_addr = reactor::local_address(client.get());
  cr_assert(client_addr.has_value());
  cr_assert(acc.peers[0] == *client_addr, "peer %s, client %s", acc.peers[0].to_string().c_str(),
            client_addr->to_string().c_str());
  int fd = acc.fds[0].get();
  cr_assert(::fcntl(fd, F_GETFL) & O_NONBLOCK, "accepted sockets are non-blocking");
  cr_assert(::fcntl(fd, F_GETFD) & FD_CLOEXEC, "and close-on-exec");
  cr_assert_eq(::write(client.get(), "hi", 2), 2);
  char buf[2];
  pollfd p{fd, POLLIN, 0};
  cr_assert_eq(::poll(&p, 1, 2000), 1);
  cr_assert_eq(::read(fd, buf, 2), 2);
}

Test(listener, accepts_on_ipv6_loopback, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  std::string err;
  auto listener = Listener::open(*loop, address("[::1]:0"), acc.handler(), &err);
  if (!listener) {
    cr_skip_test("no IPv6 loopback here: %s", err.c_str());
    return;
  }
  SocketAddress local = listener->local_address();
  cr_assert_eq(local.family(), AF_INET6);
  cr_assert_eq(local.to_string(), "[::1]:" + std::to_string(local.port()));
  UniqueFd client = connect_client(local);
  cr_assert(run_for_at_most(*loop, std::chrono::seconds(2)), "no connection accepted");
  cr_assert_eq(acc.peers.at(0).family(), AF_INET6);
}

Test(listener, ipv6_wildcard_is_ipv6_only, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  std::string err;
  auto listener = Listener::open(*loop, address("[::]:0"), acc.handler(), &err);
  if (!listener) {
    cr_skip_test("no IPv6 here: %s", err.c_str());
    return;
  }
  SocketAddress v4 = SocketAddress::ipv4_loopback(listener->local_address().port());
  UniqueFd client = start_connect(v4);
  pollfd p{client.get(), POLLOUT, 0};
  cr_assert_eq(::poll(&p, 1, 2000), 1);
  cr_assert_eq(reactor::socket_error(client.get()), ECONNREFUSED,
               "an IPv4 client reached an IPv6 listener: IPV6_V6ONLY is not set");
}

Test(listener, open_reports_clear_errors, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  auto first = listen_on(*loop, address("127.0.0.1:0"), acc);
  std::string port = std::to_string(first->local_address().port());
  std::string err;
  auto second = Listener::open(*loop, first->local_address(), acc.handler(), &err);
  cr_assert_null(second.get());
  cr_assert_eq(err, "bind 127.0.0.1:" + port + ": Address already in use");
  cr_assert_null(Listener::open(*loop, SocketAddress(), acc.handler(), &err).get());
  cr_assert(err.find("not an IPv4 or IPv6 address") != std::string::npos, "%s", err.c_str());
  cr_assert_null(Listener::open(*loop, address("127.0.0.1:0"), nullptr, &err).get());
}

Test(listener, pause_and_resume, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  auto listener = listen_on(*loop, address("127.0.0.1:0"), acc);
  listener->pause();
  cr_assert(listener->paused());
  UniqueFd client = connect_client(listener->local_address());
  run_for(*loop, milliseconds(50));
  cr_assert(acc.fds.empty(), "accepted while paused");
  listener->resume();
  cr_assert(!listener->paused());
  cr_assert(run_for_at_most(*loop, std::chrono::seconds(2)), "not accepted after resume");
  cr_assert_eq(acc.fds.size(), 1u, "the waiting connection is accepted after resume()");
}

Test(listener, close_from_inside_the_accept_handler, .timeout = 10) {
  auto loop = make_loop();
  std::unique_ptr<Listener> listener;
  int accepted = 0;
  std::string err;
  listener = Listener::open(
      *loop, address("127.0.0.1:0"),
      [&](UniqueFd, const SocketAddress&) {
        ++accepted;
        listener->close();
      },
      &err);
  cr_assert_not_null(listener.get(), "%s", err.c_str());
  SocketAddress addr = listener->local_address();
  UniqueFd a = connect_client(addr);
  UniqueFd b = connect_client(addr);
  run_for(*loop, milliseconds(50));
  cr_assert_eq(accepted, 1, "no accept after close()");
  cr_assert(!listener->is_open());
  UniqueFd late = start_connect(addr);
  pollfd p{late.get(), POLLOUT, 0};
  cr_assert_eq(::poll(&p, 1, 2000), 1);
  cr_assert_eq(reactor::socket_error(late.get()), ECONNREFUSED, "the port is closed");
}

Test(listener, accepts_at_most_64_per_wakeup, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  acc.target = 150;
  auto listener = listen_on(*loop, address("127.0.0.1:0"), acc);
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 150; ++i) clients.push_back(connect_client(listener->local_address()));
  cr_assert(run_for_at_most(*loop, std::chrono::seconds(5)), "only %zu accepted", acc.fds.size());
  cr_assert_eq(acc.fds.size(), 150u);
  size_t most = 0;
  for (uint64_t it : acc.iterations) {
    most = std::max<size_t>(most, static_cast<size_t>(
                                      std::count(acc.iterations.begin(), acc.iterations.end(), it)));
  }
  cr_assert_eq(most, static_cast<size_t>(Listener::kMaxAcceptsPerWakeup),
               "%zu accepts in one wakeup", most);
}

Test(listener, emfile_turns_clients_away_without_spinning, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  auto listener = listen_on(*loop, address("127.0.0.1:0"), acc);
  std::vector<std::string> errors;
  errors.reserve(1000);
  listener->set_error_handler([&](const std::string& message) { errors.push_back(message); });
  SocketAddress addr = listener->local_address();

  set_fd_limit(static_cast<rlim_t>(highest_open_fd() + 32));
  std::vector<UniqueFd> fillers = fill_fd_table();
  cr_assert_geq(fillers.size(), 3u);
  std::vector<UniqueFd> clients;
  clients.reserve(3);
  for (int i = 0; i < 3; ++i) {
    fillers.pop_back();
    clients.push_back(start_connect(addr));
  }
  // The table is full now: every accept fails with EMFILE. Assertions wait until it is not,
  // so that Criterion can report them.
  uint64_t wakeups = run_for(*loop, milliseconds(300));
  bool all_closed = true;
  for (UniqueFd& c : clients) all_closed = closed_by_peer(c.get(), 1000) && all_closed;
  bool backing_off = listener->backing_off();
  fillers.clear();
  clients.clear();
  cr_log_info("spare: %llu wakeups in 300 ms, %zu reports", static_cast<unsigned long long>(wakeups),
              errors.size());

  cr_assert_lt(wakeups, 1000u, "the listener spun: %llu wakeups in 300 ms",
               static_cast<unsigned long long>(wakeups));
  cr_assert(acc.fds.empty(), "nothing can be accepted into a full table");
  cr_assert(all_closed, "pending clients must be turned away (EOF or reset)");
  cr_assert(!errors.empty(), "EMFILE is reported to the error handler");
  cr_assert(errors[0].find("Too many open files") != std::string::npos, "%s", errors[0].c_str());
  cr_assert(errors[0].rfind("accept 127.0.0.1:", 0) == 0, "%s", errors[0].c_str());
  cr_assert(!backing_off, "the spare descriptor drained the backlog: no back-off needed");

  // With descriptors free again, connections are accepted as usual.
  UniqueFd again = connect_client(addr);
  cr_assert(run_for_at_most(*loop, std::chrono::seconds(2)), "not accepting after EMFILE");
  cr_assert_eq(acc.fds.size(), 1u);
}

Test(listener, emfile_without_spare_backs_off, .timeout = 10) {
  auto loop = make_loop();
  Acceptor acc{loop.get()};
  std::vector<std::string> errors;
  errors.reserve(1000);
  warm_up_poller(*loop);

  set_fd_limit(static_cast<rlim_t>(highest_open_fd() + 32));
  std::vector<UniqueFd> fillers = fill_fd_table();
  cr_assert_geq(fillers.size(), 2u);
  fillers.pop_back();  // one free slot: the listening socket gets it, the spare cannot
  auto listener = listen_on(*loop, address("127.0.0.1:0"), acc);
  listener->set_error_handler([&](const std::string& message) { errors.push_back(message); });
  fillers.pop_back();
  UniqueFd client = start_connect(listener->local_address());

  uint64_t wakeups = run_for(*loop, milliseconds(350));
  pollfd p{client.get(), POLLIN, 0};
  int client_events = ::poll(&p, 1, 0);
  size_t reports = errors.size();
  fillers.clear();
  cr_log_info("no spare: %llu wakeups in 350 ms, %zu reports",
              static_cast<unsigned long long>(wakeups), reports);

  cr_assert_lt(wakeups, 1000u, "the listener spun: %llu wakeups in 350 ms",
               static_cast<unsigned long long>(wakeups));
  cr_assert(acc.fds.empty());
  cr_assert_eq(client_events, 0, "without a spare the client must wait, not be closed");
  // One EMFILE per 100 ms back-off period, not one per loop iteration.
  cr_assert(reports >= 2 && reports <= 10, "%zu EMFILE reports in 350 ms", reports);

  cr_assert(run_for_at_most(*loop, std::chrono::seconds(2)), "never resumed after the back-off");
  cr_assert_eq(acc.fds.size(), 1u, "the waiting client is accepted once descriptors are free");
  cr_assert_eq(::write(client.get(), "ok", 2), 2);
  char buf[2];
  pollfd q{acc.fds[0].get(), POLLIN, 0};
  cr_assert_eq(::poll(&q, 1, 2000), 1);
  cr_assert_eq(::read(acc.fds[0].get(), buf, 2), 2, "it is the same, still open connection");
}
