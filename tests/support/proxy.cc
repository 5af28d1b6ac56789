#include "tests/support/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "tests/support/address.h"
#include "tests/support/cleanup.h"
#include "tests/support/fd.h"

namespace testsupport {
namespace {

// ---- The child. Only system calls from here on: the test process has other threads,
// so the forked copy must not touch the allocator or any lock.

constexpr size_t kBufSize = 64 * 1024;
constexpr int kSlots = Proxy::kMaxConnections;
constexpr int64_t kDrainMs = 2000;

struct Slot {
  bool used;
  int cfd;
  int sfd;
  bool faulty;
  bool connecting;
  bool stalled;
  bool draining;
  int64_t drain_until;
  bool s_eof, c_eof;          // read side reached EOF
  bool c_wr_shut, s_wr_shut;  // we sent FIN that way
  uint64_t s2c_read, s2c_written;
  uint64_t c2s_read;
  char* s2c;
  size_t s2c_len, s2c_off;
  char* c2s;
  size_t c2s_len, c2s_off;
  short cre, sre;  // revents of this poll round
};

struct ChildState {
  int lfd;
  SockAddr target;
  FaultSpec faults;
  ProxyStats* stats;
  uint64_t accepted;
  Slot slots[kSlots];
  pollfd pfds[1 + 2 * kSlots];
  int owner[1 + 2 * kSlots];  // slot index * 2 + (0 client, 1 server)
};

ChildState g_child;  // used only in the forked child

void bump(uint64_t* counter, uint64_t n = 1) { __atomic_fetch_add(counter, n, __ATOMIC_RELAXED); }

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void close_with_reset(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

void close_slot(Slot& s, bool reset_client) {
  if (s.cfd >= 0) {
    if (reset_client) {
      close_with_reset(s.cfd);
    } else {
      ::close(s.cfd);
    }
  }
  if (s.sfd >= 0) ::close(s.sfd);
  s.cfd = s.sfd = -1;
  s.used = false;
  bump(&g_child.stats->closed);
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void accept_one(int cfd) {
  uint64_t index = g_child.accepted++;
  bump(&g_child.stats->accepted);
  Slot* slot = nullptr;
  for (auto& s : g_child.slots) {
    if (!s.used) {
      slot = &s;
      break;
    }
  }
  if (!slot) {
    ::close(cfd);
    bump(&g_child.stats->closed);
    return;
  }
  char* s2c = slot->s2c;
  char* c2s = slot->c2s;
  *slot = Slot{};
  slot->s2c = s2c;
  slot->c2s = c2s;
  slot->used = true;
  slot->cfd = cfd;
  slot->sfd = -1;
  const FaultSpec& f = g_child.faults;
  slot->faulty = f.only_connection < 0 || static_cast<uint64_t>(f.only_connection) == index;
  set_nodelay(cfd);
  int sfd = socket(g_child.target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sfd < 0) {
    bump(&g_child.stats->connect_failures);
    close_slot(*slot, true);
    return;
  }
  slot->sfd = sfd;
  set_nodelay(sfd);
  if (connect(sfd, g_child.target.get(), g_child.target.length) == 0) {
    slot->connecting = false;
  } else if (errno == EINPROGRESS) {
    slot->connecting = true;
  } else {
    bump(&g_child.stats->connect_failures);
    close_slot(*slot, true);
  }
}

bool is_transient(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

void step_slot(Slot& s, int64_t now) {
  const FaultSpec& f = g_child.faults;
  if (s.connecting) {
    if (s.sre == 0) return;
    int so_error = 0;
    socklen_t len = sizeof so_error;
    getsockopt(s.sfd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      bump(&g_child.stats->connect_failures);
      close_slot(s, true);
      return;
    }
    s.connecting = false;
    s.sre = 0;
  }
  if (s.draining) {
    if (s.cre != 0) {
      char sink[4096];
      for (int i = 0; i < 64; ++i) {
        ssize_t n = recv(s.cfd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0) continue;
        if (n < 0 && is_transient(errno)) break;
        close_slot(s, false);  // the client closed (or failed): done
        return;
      }
    }
    if (now >= s.drain_until) close_slot(s, false);
    return;
  }
  if (s.stalled) {
    if (s.cre & (POLLRDHUP | POLLHUP | POLLERR)) close_slot(s, false);
    return;
  }

  // server -> proxy
  if ((s.sre & (POLLIN | POLLHUP | POLLERR)) && s.s2c_len == 0 && !s.s_eof) {
    uint64_t limit = kBufSize;
    if (s.faulty && f.cut_after) limit = std::min(limit, *f.cut_after - s.s2c_read);
    if (s.faulty && f.stall_after) limit = std::min(limit, *f.stall_after - s.s2c_read);
    if (limit > 0) {
      ssize_t n = recv(s.sfd, s.s2c, static_cast<size_t>(limit), MSG_DONTWAIT);
      if (n > 0) {
        auto got = static_cast<uint64_t>(n);
        if (s.faulty && f.flip_at && *f.flip_at >= s.s2c_read && *f.flip_at < s.s2c_read + got) {
          s.s2c[*f.flip_at - s.s2c_read] = static_cast<char>(s.s2c[*f.flip_at - s.s2c_read] ^ f.flip_mask);
          bump(&g_child.stats->flips);
        }
        s.s2c_len = static_cast<size_t>(n);
        s.s2c_off = 0;
        s.s2c_read += got;
      } else if (n == 0) {
        s.s_eof = true;
      } else if (!is_transient(errno)) {
        close_slot(s, errno == ECONNRESET);
        return;
      }
    }
  }
  // proxy -> client
  if ((s.cre & (POLLOUT | POLLHUP | POLLERR)) && s.s2c_off < s.s2c_len) {
    size_t chunk = s.s2c_len - s.s2c_off;
    if (s.faulty && f.max_chunk > 0 && chunk > f.max_chunk) chunk = f.max_chunk;
    ssize_t n = send(s.cfd, s.s2c + s.s2c_off, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.s2c_off += static_cast<size_t>(n);
      s.s2c_written += static_cast<uint64_t>(n);
      bump(&g_child.stats->s2c_bytes, static_cast<uint64_t>(n));
      if (s.s2c_off == s.s2c_len) s.s2c_off = s.s2c_len = 0;
    } else if (n < 0 && !is_transient(errno)) {
      close_slot(s, false);
      return;
    }
  }
  // client -> proxy
  size_t c2s_allowed = kBufSize;
  if (s.faulty && f.c2s_stall_after)
    c2s_allowed = static_cast<size_t>(std::min<uint64_t>(kBufSize, *f.c2s_stall_after - std::min(*f.c2s_stall_after, s.c2s_read)));
  if ((s.cre & (POLLIN | POLLHUP | POLLERR)) && s.c2s_len == 0 && !s.c_eof && c2s_allowed > 0) {
    ssize_t n = recv(s.cfd, s.c2s, c2s_allowed, MSG_DONTWAIT);
    if (n > 0) {
      s.c2s_read += static_cast<uint64_t>(n);
      s.c2s_len = static_cast<size_t>(n);
      s.c2s_off = 0;
    } else if (n == 0) {
      s.c_eof = true;
    } else if (!is_transient(errno)) {
      if (errno == ECONNRESET && s.sfd >= 0) {
        close_with_reset(s.sfd);
        s.sfd = -1;
      }
      close_slot(s, false);
      return;
    }
  }
  // proxy -> server
  if ((s.sre & (POLLOUT | POLLHUP | POLLERR)) && s.c2s_off < s.c2s_len) {
    ssize_t n = send(s.sfd, s.c2s + s.c2s_off, s.c2s_len - s.c2s_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.c2s_off += static_cast<size_t>(n);
      bump(&g_child.stats->c2s_bytes, static_cast<uint64_t>(n));
      if (s.c2s_off == s.c2s_len) s.c2s_off = s.c2s_len = 0;
    } else if (n < 0 && !is_transient(errno)) {
      close_slot(s, errno == ECONNRESET);
      return;
    }
  }

  bool s2c_empty = s.s2c_len == 0;
  if (s.faulty && f.cut_after && s.s2c_written >= *f.cut_after && s2c_empty) {
    bump(&g_child.stats->cuts);
    if (f.cut_with_reset) {
      close_slot(s, true);
      return;
    }
    // FIN after the bytes already sent; then swallow what the client still sends, so
    // that closing does not turn into an RST that could destroy data in flight to it.
    shutdown(s.cfd, SHUT_WR);
    ::close(s.sfd);
    s.sfd = -1;
    s.draining = true;
    s.drain_until = now + kDrainMs;
    return;
  }
  if (s.faulty && f.stall_after && s.s2c_written >= *f.stall_after && s2c_empty) {
    bump(&g_child.stats->stalls);
    s.stalled = true;
    return;
  }
  if (s.s_eof && s2c_empty && !s.c_wr_shut) {
    shutdown(s.cfd, SHUT_WR);
    s.c_wr_shut = true;
  }
  if (s.c_eof && s.c2s_len == 0 && !s.s_wr_shut) {
    shutdown(s.sfd, SHUT_WR);
    s.s_wr_shut = true;
  }
  if (s.c_wr_shut && s.s_wr_shut) close_slot(s, false);
}

short client_events(const Slot& s) {
  if (s.connecting) return 0;
  if (s.draining) return POLLIN;
  if (s.stalled) return POLLRDHUP;
  short ev = 0;
  const FaultSpec& f = g_child.faults;
  bool c2s_stalled = s.faulty && f.c2s_stall_after && s.c2s_read >= *f.c2s_stall_after;
  if (s.c2s_len == 0 && !s.c_eof && !c2s_stalled) ev |= POLLIN;
  if (s.s2c_off < s.s2c_len) ev |= POLLOUT;
  return ev;
}

short server_events(const Slot& s) {
  if (s.connecting) return POLLOUT;
  if (s.draining || s.stalled || s.sfd < 0) return 0;
  const FaultSpec& f = g_child.faults;
  short ev = 0;
  bool limited = s.faulty && ((f.cut_after && s.s2c_read >= *f.cut_after) ||
                              (f.stall_after && s.s2c_read >= *f.stall_after));
  if (s.s2c_len == 0 && !s.s_eof && !limited) ev |= POLLIN;
  if (s.c2s_off < s.c2s_len) ev |= POLLOUT;
  return ev;
}

[[noreturn]] void child_main(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  int lfd = g_child.lfd;
  // The test's other descriptors (Criterion's pipes among them) are not ours to hold.
  if (lfd > 3) close_range(3, static_cast<unsigned>(lfd - 1), 0);
  close_range(static_cast<unsigned>(lfd + 1), ~0U, 0);

  void* mem = mmap(nullptr, static_cast<size_t>(kSlots) * 2 * kBufSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) _exit(1);
  char* base = static_cast<char*>(mem);
  for (int i = 0; i < kSlots; ++i) {
    g_child.slots[i] = Slot{};
    g_child.slots[i].cfd = g_child.slots[i].sfd = -1;
    g_child.slots[i].s2c = base + static_cast<size_t>(2 * i) * kBufSize;
    g_child.slots[i].c2s = base + static_cast<size_t>(2 * i + 1) * kBufSize;
  }

  const int64_t end = now_ms() + Proxy::kMaxLifetime.count();
  for (int64_t round = 0; round < int64_t{1} << 40; ++round) {
    int64_t now = now_ms();
    if (now >= end) break;
    nfds_t n = 0;
    g_child.pfds[n] = pollfd{lfd, POLLIN, 0};
    g_child.owner[n++] = -1;
    for (int i = 0; i < kSlots; ++i) {
      Slot& s = g_child.slots[i];
      s.cre = s.sre = 0;
      if (!s.used) continue;
      short ce = client_events(s);
      short se = server_events(s);
      // An fd with no wanted events is left out: poll would report POLLHUP on it forever.
      if (ce != 0) {
        g_child.pfds[n] = pollfd{s.cfd, ce, 0};
        g_child.owner[n++] = i * 2;
      }
      if (se != 0) {
        g_child.pfds[n] = pollfd{s.sfd, se, 0};
        g_child.owner[n++] = i * 2 + 1;
      }
    }
    int ready = poll(g_child.pfds, n, 50);
    if (ready < 0 && errno != EINTR) _exit(2);
    for (nfds_t k = 1; ready > 0 && k < n; ++k) {
      short re = g_child.pfds[k].revents;
      if (re == 0) continue;
      Slot& s = g_child.slots[g_child.owner[k] / 2];
      if (g_child.owner[k] % 2 == 0) {
        s.cre = re;
      } else {
        s.sre = re;
      }
    }
    now = now_ms();
    for (auto& s : g_child.slots) {
      if (s.used) step_slot(s, now);
    }
    if (ready > 0 && (g_child.pfds[0].revents & POLLIN)) {
      for (int i = 0; i < 64; ++i) {
        int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        accept_one(cfd);
      }
    }
  }
  _exit(0);
}

uint64_t load(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

}  // namespace

std::optional<Proxy> Proxy::start(const std::string& target, const FaultSpec& faults,
                                  std::string* err) {
  auto fail = [&](const std::string& why) -> std::optional<Proxy> {
    if (err) *err = why;
    return std::nullopt;
  };
  auto addr = parse_address(target, err);
  if (!addr) return std::nullopt;
  bool v6 = addr->family() == AF_INET6;
  Fd lfd(socket(addr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!lfd) return fail(std::string("proxy socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(lfd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto listen_addr = parse_address(v6 ? "[::1]:0" : "127.0.0.1:0");
  if (bind(lfd.get(), listen_addr->get(), listen_addr->length) != 0 || listen(lfd.get(), 512) != 0) {
    return fail(std::string("proxy bind/listen: ") + std::strerror(errno));
  }
  auto local = local_address(lfd.get());
  if (!local) return fail(std::string("proxy getsockname: ") + std::strerror(errno));

  void* shared = mmap(nullptr, sizeof(ProxyStats), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return fail(std::string("proxy mmap: ") + std::strerror(errno));
  Proxy proxy;
  proxy.shared_ = shared;
  proxy.port_ = local->port();
  proxy.v6_ = v6;
  auto* stats = new (shared) ProxyStats();

  g_child.lfd = lfd.get();
  g_child.target = *addr;
  g_child.faults = faults;
  g_child.stats = stats;
  g_child.accepted = 0;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return fail(std::string("proxy fork: ") + std::strerror(errno));
  if (pid == 0) child_main(parent);
  track_child(pid, false);
  proxy.pid_ = pid;
  return proxy;
}

Proxy::Proxy(Proxy&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      port_(other.port_),
      v6_(other.v6_),
      shared_(std::exchange(other.shared_, nullptr)) {}

Proxy& Proxy::operator=(Proxy&& other) noexcept {
  if (this != &other) {
    stop();
    if (shared_) munmap(shared_, sizeof(ProxyStats));
    pid_ = std::exchange(other.pid_, -1);
    port_ = other.port_;
    v6_ = other.v6_;
    shared_ = std::exchange(other.shared_, nullptr);
  }
  return *this;
}

Proxy::~Proxy() {
  stop();
  if (shared_) munmap(shared_, sizeof(ProxyStats));
}

std::string Proxy::address() const {
  return (v6_ ? "[::1]:" : "127.0.0.1:") + std::to_string(port_);
}

ProxyStats Proxy::stats() const {
  ProxyStats out;
  if (!shared_) return out;
  const auto* s = static_cast<const ProxyStats*>(shared_);
  out.accepted = load(&s->accepted);
  out.connect_failures = load(&s->connect_failures);
  out.closed = load(&s->closed);
  out.c2s_bytes = load(&s->c2s_bytes);
  out.s2c_bytes = load(&s->s2c_bytes);
  out.flips = load(&s->flips);
  out.cuts = load(&s->cuts);
  out.stalls = load(&s->stalls);
  return out;
}

void Proxy::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  Deadline deadline(Millis(5000));
  for (int i = 0; i < 10000; ++i) {
    pid_t r = waitpid(pid_, nullptr, WNOHANG);
    if (r != 0 && !(r < 0 && errno == EINTR)) break;
    if (deadline.expired()) break;
    usleep(1000);
  }
  untrack_child(pid_);
  pid_ = -1;
}

}  // namespace testsupport
