#include "tests/support/loop_driver.h"

#include <criterion/criterion.h>
// cr_assert expands to C-style casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace testsupport {

std::unique_ptr<reactor::EventLoop> make_loop() {
  std::string err;
  std::unique_ptr<reactor::EventLoop> loop = reactor::EventLoop::create_from_env(&err);
  cr_assert_not_null(loop.get(), "create_from_env: %s", err.c_str());
  return loop;
}

bool run_until(reactor::EventLoop& loop, const std::function<bool()>& done, Millis timeout) {
  if (done()) return true;
  Deadline deadline(timeout);
  bool reached = false;
  reactor::EventLoop::TimerId timer = loop.run_every(std::chrono::milliseconds(1), [&] {
    if (done()) {
      reached = true;
      loop.stop();
    } else if (deadline.expired()) {
      loop.stop();
    }
  });
  loop.run();
  loop.cancel(timer);
  return reached || done();
}

void run_for(reactor::EventLoop& loop, Millis time) {
  reactor::EventLoop::TimerId timer = loop.run_after(time, [&loop] { loop.stop(); });
  loop.run();
  loop.cancel(timer);
}

bool stream_socketpair(Fd* a, Fd* b, std::string* err) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    if (err != nullptr) *err = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  a->reset(fds[0]);
  b->reset(fds[1]);
  int flags = fcntl(a->get(), F_GETFL);
  if (flags < 0 || fcntl(a->get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    if (err != nullptr) *err = std::string("fcntl: ") + std::strerror(errno);
    return false;
  }
  return true;
}

std::string read_available(int fd, bool* eof) {
  std::string out;
  if (eof != nullptr) *eof = false;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 && eof != nullptr) *eof = true;
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  return out;
}

}  // namespace testsupport

namespace testsupport {

bool LoopPeer::send(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The far side's buffer is full: let the loop read some.
      run_for(loop_, Millis(1));
      continue;
    }
    return false;
  }
  return true;
}

bool LoopPeer::try_split(Frame* frame, std::string* why) {
  if (pending_.size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(pending_.data());
  size_t len = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
  if (pending_.size() < 4 + len) return false;
  Frame f;
  f.header = pending_.substr(4, len);
  uint64_t body = 0;
  if (f.has_field("body")) {
    std::optional<double> n = f.number_field("body");
    if (!n || *n < 0) {
      if (why != nullptr) *why = "bad body field in " + f.header;
      return false;
    }
    body = static_cast<uint64_t>(*n);
  }
  if (pending_.size() < 4 + len + body) return false;
  f.body = pending_.substr(4 + len, body);
  pending_.erase(0, 4 + len + body);
  *frame = std::move(f);
  return true;
}

bool LoopPeer::next(Frame* frame, Millis timeout, std::string* why) {
  bool split = try_split(frame, why);
  if (!split) {
    run_until(loop_, [&] {
      bool eof = false;
      pending_ += read_available(fd_.get(), &eof);
      eof_ = eof_ || eof;
      split = try_split(frame, why);
      return split || eof_;
    }, timeout);
  }
  if (split) return true;
  if (why != nullptr && why->empty()) *why = eof_ ? "end of stream" : "timed out";
  return false;
}

bool LoopPeer::wait_eof(Millis timeout, std::string* rest) {
  bool got = run_until(loop_, [&] {
    bool eof = false;
    pending_ += read_available(fd_.get(), &eof);
    eof_ = eof_ || eof;
    return eof_;
  }, timeout);
  if (rest != nullptr) {
    *rest = pending_;
  } else if (!pending_.empty()) {
    return false;
  }
  pending_.clear();
  return got;
}

}  // namespace testsupport
