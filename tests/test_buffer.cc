// Buffer: index bookkeeping, compaction before growth, the hard maximum, prepend, and the
// two system-call paths (read_from with its spill buffer, write_to with partial writes)
// against real socketpairs and pipes.

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "reactor/buffer.h"
#include "reactor/unique_fd.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using reactor::Buffer;
using reactor::UniqueFd;

namespace {

struct Pair {
  UniqueFd a;
  UniqueFd b;
};

Pair socket_pair() {
  int sv[2];
  cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0,
               "socketpair: %s", std::strerror(errno));
  return Pair{UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// Byte i of a test stream: a pattern whose period (251, prime) does not divide any buffer
// size, so a dropped, repeated or reordered chunk shows up as a mismatch.
char pattern(size_t i) { return static_cast<char>(i % 251); }

std::string pattern_string(size_t from, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = pattern(from + i);
  return s;
}

}  // namespace

Test(buffer, starts_empty_without_storage, .timeout = 10) {
  Buffer buf;
  cr_assert_eq(buf.readable(), 0u);
  cr_assert(buf.empty());
  cr_assert_eq(buf.capacity(), 0u, "an idle buffer holds no memory");
  cr_assert_not_null(buf.peek());
  cr_assert_eq(buf.max_size(), Buffer::kDefaultMaxSize);
}

Test(buffer, append_peek_consume, .timeout = 10) {
  Buffer buf;
  cr_assert(buf.append("hello, ", 7));
  cr_assert(buf.append(std::string_view("world")));
  cr_assert_eq(buf.readable(), 12u);
  cr_assert_eq(buf.view(), "hello, world");
  buf.consume(7);
  cr_assert_eq(buf.view(), "world");
  cr_assert_eq(buf.prependable(), Buffer::kPrepend + 7);
  buf.consume(100);  // more than readable: everything
  cr_assert(buf.empty());
  cr_assert_eq(buf.prependable(), Buffer::kPrepend, "emptying resets the indices");
  cr_assert(buf.append("x", 1));
  cr_assert_eq(buf.view(), "x");
  buf.consume_all();
  cr_assert(buf.empty());
  cr_assert(buf.append(nullptr, 0), "appending nothing always succeeds");
}

Test(buffer, compacts_before_growing, .timeout = 10) {
  Buffer buf;
  std::string chunk = pattern_string(0, 3000);
  cr_assert(buf.append(chunk.data(), chunk.size()));
  size_t cap = buf.capacity();
  cr_assert_geq(cap, 3000u + Buffer::kPrepend);
  buf.consume(2900);  // 100 readable left, lots of dead space in front
  size_t free_total = buf.prependable() - Buffer::kPrepend + buf.writable();
  std::string more = pattern_string(3000, free_total);  // fits only after compaction
  cr_assert(buf.append(more.data(), more.size()));
  cr_assert_eq(buf.capacity(), cap, "compaction, not growth");
  cr_assert_eq(buf.prependable(), Buffer::kPrepend);
  cr_assert_eq(buf.view(), pattern_string(2900, 100 + more.size()));
}

Test(buffer, grows_and_keeps_content, .timeout = 10) {
  Buffer buf;
  std::string expect;
  for (size_t i = 0; i < 200; ++i) {
    std::string chunk = pattern_string(expect.size(), 1000 + i);
    cr_assert(buf.append(chunk.data(), chunk.size()));
    expect += chunk;
    if (i % 3 == 0) {
      buf.consume(500);
      expect.erase(0, 500);
    }
  }
  cr_assert_eq(buf.readable(), expect.size());
  cr_assert(buf.view() == expect);
  cr_assert_geq(buf.capacity(), expect.size());
}

Test(buffer, hard_maximum, .timeout = 10) {
  Buffer buf(100);
  std::string data = pattern_string(0, 100);
  cr_assert(buf.append(data.data(), 60));
  cr_assert(!buf.append(data.data(), 41), "60 + 41 > 100");
  cr_assert_eq(buf.readable(), 60u, "a refused append adds nothing");
  cr_assert(buf.append(data.data() + 60, 40), "exactly the maximum is fine");
  cr_assert_eq(buf.readable(), 100u);
  cr_assert(!buf.append("x", 1));
  cr_assert_null(buf.begin_write(1));
  cr_assert(!buf.prepend("x", 1));
  cr_assert_leq(buf.capacity(), 100u + Buffer::kPrepend, "storage never exceeds the maximum");
  buf.consume(10);
  cr_assert(buf.append("0123456789", 10), "room again after consuming");
  cr_assert(buf.view() == data.substr(10) + "0123456789");
}

Test(buffer, huge_append_refused_without_allocating, .timeout = 10) {
  Buffer buf(1 << 20);
  std::vector<char> big((1 << 20) + 1, 'x');
  cr_assert(!buf.append(big.data(), big.size()));
  cr_assert_eq(buf.capacity(), 0u, "nothing allocated for a refused append");
}

Test(buffer, begin_write_commit, .timeout = 10) {
  Buffer buf;
  char* p = buf.begin_write(10000);
  cr_assert_not_null(p);
  cr_assert_geq(buf.writable(), 10000u);
  std::memcpy(p, "abc", 3);
  buf.commit(3);
  cr_assert_eq(buf.view(), "abc");
  p = buf.begin_write(2);
  std::memcpy(p, "de", 2);
  buf.commit(2);
  cr_assert_eq(buf.view(), "abcde");
  buf.commit(buf.writable() + 100);  // over-commit is clamped, not trusted
  cr_assert_leq(buf.readable(), buf.capacity());
}

Test(buffer, prepend, .timeout = 10) {
  Buffer buf;
  cr_assert(buf.append("body", 4));
  cr_assert(buf.prepend("\x00\x00\x00\x04", 4));
  cr_assert_eq(buf.readable(), 8u);
  cr_assert(std::memcmp(buf.peek(), "\x00\x00\x00\x04" "body", 8) == 0);
  cr_assert(buf.prepend("HDR:", 4), "fills the rest of the prepend room");
  cr_assert_eq(buf.prependable(), 0u);
  cr_assert(buf.prepend("longer-than-the-room:", 21), "slides the data when there is no room");
  cr_assert(buf.view() == std::string("longer-than-the-room:HDR:") + std::string("\0\0\0\4body", 8));
}

Test(buffer, prepend_into_empty_buffer, .timeout = 10) {
  Buffer buf;
  cr_assert(buf.prepend("abc", 3));
  cr_assert_eq(buf.view(), "abc");
  Buffer small(4);
  cr_assert(small.append("ab", 2));
  cr_assert(!small.prepend("xyz", 3), "the maximum applies to prepend too");
  cr_assert_eq(small.view(), "ab");
}

Test(buffer, shrink_if_empty, .timeout = 10) {
  Buffer buf;
  std::string data = pattern_string(0, 100000);
  cr_assert(buf.append(data.data(), data.size()));
  cr_assert_geq(buf.capacity(), 100000u);
  buf.shrink_if_empty();
  cr_assert_geq(buf.capacity(), 100000u, "not empty: keeps its storage");
  buf.consume(99999);
  buf.shrink_if_empty();
  cr_assert_eq(buf.readable(), 1u);
  buf.consume_all();
  buf.shrink_if_empty();
  cr_assert_eq(buf.capacity(), 0u);
  cr_assert_eq(buf.prependable(), 0u);
  cr_assert(buf.append("again", 5), "usable after shrinking");
  cr_assert_eq(buf.view(), "again");
}

Test(buffer, read_from_more_than_capacity, .timeout = 10) {
  Pair p = socket_pair();
  int big = 1 << 20;
  ::setsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  std::string data = pattern_string(0, 40000);
  cr_assert_eq(::write(p.a.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));

  Buffer buf;
  cr_assert(buf.append("x", 1));
  buf.consume_all();
  size_t before = buf.capacity();
  cr_assert_lt(before, data.size(), "the point is to read more than fits");
  int saved_errno = 0;
  ssize_t n = buf.read_from(p.b.get(), &saved_errno);
  cr_assert_eq(n, static_cast<ssize_t>(data.size()), "one call, spill buffer included");
  cr_assert(buf.view() == data);
  n = buf.read_from(p.b.get(), &saved_errno);
  cr_assert_eq(n, -1);
  cr_assert_eq(saved_errno, EAGAIN);
  p.a.reset();
  n = buf.read_from(p.b.get(), &saved_errno);
  cr_assert_eq(n, 0, "end of file");
  cr_assert_eq(buf.readable(), data.size(), "EAGAIN and EOF keep what was read");
}

Test(buffer, read_from_large_stream_in_order, .timeout = 10) {
  Pair p = socket_pair();
  const size_t total = 3 << 20;
  std::string sent = pattern_string(0, total);
  Buffer buf;
  size_t written = 0;
  for (int round = 0; buf.readable() < total && round < 100000; ++round) {
    if (written < total) {
      ssize_t n = ::write(p.a.get(), sent.data() + written, std::min<size_t>(total - written, 200000));
      if (n > 0) written += static_cast<size_t>(n);
    }
    int saved_errno = 0;
    ssize_t n = buf.read_from(p.b.get(), &saved_errno);
    cr_assert(n > 0 || saved_errno == EAGAIN, "read_from: %s", std::strerror(saved_errno));
  }
  cr_assert_eq(buf.readable(), total);
  cr_assert(buf.view() == sent);
}

Test(buffer, read_from_respects_maximum, .timeout = 10) {
  Pair p = socket_pair();
  std::string data = pattern_string(0, 5000);
  cr_assert_eq(::write(p.a.get(), data.data(), data.size()), 5000);
  Buffer buf(1000);
  int saved_errno = 0;
  cr_assert_eq(buf.read_from(p.b.get(), &saved_errno), 1000);
  cr_assert_eq(buf.readable(), 1000u);
  cr_assert_eq(buf.read_from(p.b.get(), &saved_errno), -1, "full: reads nothing");
  cr_assert_eq(saved_errno, EMSGSIZE);
  cr_assert_leq(buf.capacity(), 1000u + Buffer::kPrepend);
  buf.consume(600);
  cr_assert_eq(buf.read_from(p.b.get(), &saved_errno), 600, "only the room that was freed");
  std::string got(buf.view());
  buf.consume_all();
  for (int i = 0; i < 10 && got.size() < data.size() - 600; ++i) {
    ssize_t n = buf.read_from(p.b.get(), &saved_errno);
    cr_assert(n > 0);
    got += std::string(buf.view());
    buf.consume_all();
  }
  cr_assert(got == data.substr(600), "nothing lost or reordered across the cap");
}

Test(buffer, write_to_partial_writes_keep_order, .timeout = 10) {
  Pair p = socket_pair();
  int tiny = 4096;  // the kernel rounds it up, still far below what we queue
  cr_assert_eq(::setsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny), 0);
  cr_assert_eq(::setsockopt(p.b.get(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny), 0);

  const size_t total = 1 << 20;
  std::string sent = pattern_string(0, total);
  Buffer out;
  cr_assert(out.append(sent.data(), sent.size()));

  int saved_errno = 0;
  ssize_t first = out.write_to(p.a.get(), SIZE_MAX, &saved_errno);
  cr_assert_gt(first, 0);
  cr_assert_lt(static_cast<size_t>(first), total, "a partial write");
  cr_assert_eq(out.readable(), total - static_cast<size_t>(first), "the rest stays queued");

  bool saw_eagain = false;
  for (int i = 0; i < 1000 && !saw_eagain; ++i) {
    if (out.write_to(p.a.get(), SIZE_MAX, &saved_errno) < 0) {
      cr_assert_eq(saved_errno, EAGAIN, "write_to: %s", std::strerror(saved_errno));
      saw_eagain = true;
    }
  }
  cr_assert(saw_eagain, "the socket buffer must fill up");
  size_t queued = out.readable();
  cr_assert_gt(queued, 0u);

  // Drain the reader and flush the remainder, as a loop would on kWritable.
  std::string received;
  char chunk[8192];
  for (int round = 0; received.size() < total && round < 100000; ++round) {
    ssize_t n = ::read(p.b.get(), chunk, sizeof chunk);
    if (n > 0) received.append(chunk, static_cast<size_t>(n));
    if (!out.empty()) {
      ssize_t w = out.write_to(p.a.get(), 3000, &saved_errno);  // capped per call
      cr_assert(w > 0 || saved_errno == EAGAIN);
      cr_assert_leq(w, 3000);
    }
  }
  cr_assert(out.empty());
  cr_assert_eq(received.size(), total);
  cr_assert(received == sent, "bytes arrive complete and in order");
  cr_assert_eq(out.write_to(p.a.get(), SIZE_MAX, &saved_errno), 0, "nothing left to write");
}

Test(buffer, write_to_closed_peer_is_epipe_not_sigpipe, .timeout = 10) {
  Pair p = socket_pair();
  p.b.reset();
  Buffer out;
  cr_assert(out.append("doomed", 6));
  int saved_errno = 0;
  cr_assert_eq(out.write_to(p.a.get(), SIZE_MAX, &saved_errno), -1);
  cr_assert_eq(saved_errno, EPIPE);
  cr_assert_eq(out.readable(), 6u, "a failed write consumes nothing");
}

Test(buffer, write_to_pipe_falls_back_to_write, .timeout = 10) {
  int fds[2];
  cr_assert_eq(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd r(fds[0]);
  UniqueFd w(fds[1]);
  Buffer out;
  cr_assert(out.append("through a pipe", 14));
  int saved_errno = 0;
  cr_assert_eq(out.write_to(w.get(), 7, &saved_errno), 7);
  cr_assert_eq(out.write_to(w.get(), SIZE_MAX, &saved_errno), 7);
  char got[32] = {};
  cr_assert_eq(::read(r.get(), got, sizeof got), 14);
  cr_assert_str_eq(got, "through a pipe");
}
