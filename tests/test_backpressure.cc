// A client that pipelines requests and never reads the answers must be held back by
// TCP, not by the server's memory: the session stops decoding requests while 256 KiB of
// output is queued, and resumes as it drains, without stalling (apps/reactord/session.cc).
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <fstream>
#include <string>

#include "tests/support/fixture.h"

using namespace testsupport;

TestSuite(backpressure, .timeout = 120);

namespace {

// Resident memory of a process in KiB, from /proc.
uint64_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

}  // namespace

Test(backpressure, a_client_that_never_reads_cannot_grow_the_servers_memory) {
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default), so
  // RSS would measure the sanitizer, not our buffering. The server inherits this; a
  // build without ASan ignores it.
  setenv("ASAN_OPTIONS", "quarantine_size_mb=0", 1);
  ServeOptions options;
  options.prefix = "backpressure";
  Served s = serve(options);
  RawClient c = connect_authenticated(s);
  const uint64_t rss_before = rss_kib(s.server.pid());

  // Push up to 48 MiB of pings without reading a single answer, until the server stops
  // taking them for half a second (or 20 s pass).
  const std::string ping = encode_frame("{\"type\":\"ping\"}");
  std::string batch;
  for (int i = 0; i < 4096; ++i) batch += ping;
  int flags = fcntl(c.fd(), F_GETFL);
  cr_assert_eq(fcntl(c.fd(), F_SETFL, flags | O_NONBLOCK), 0);
  uint64_t sent = 0;
  size_t offset = 0;
  Deadline overall(Millis(20000));
  Clock::time_point last_progress = Clock::now();
  while (sent < (uint64_t{48} << 20) && !overall.expired() && seconds_since(last_progress) < 0.5) {
    ssize_t n = send(c.fd(), batch.data() + offset, batch.size() - offset, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
      offset = (offset + static_cast<size_t>(n)) % batch.size();
      last_progress = Clock::now();
      continue;
    }
    cr_assert(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "send: %s", strerror(errno));
    struct pollfd pfd = {c.fd(), POLLOUT, 0};
    poll(&pfd, 1, 50);
  }
  // A send may stop mid-frame; only complete pings are answered.
  const uint64_t pings = sent / ping.size();

  // The server answered only what fits its output high-water mark and left the rest to
  // TCP; without backpressure it would hold tens of MiB of pongs (or give up on us).
  const uint64_t rss_after = rss_kib(s.server.pid());
  cr_assert_lt(rss_after, rss_before + 24 * 1024, "server RSS grew from %llu to %llu KiB for %llu pings",
               static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss_after),
               static_cast<unsigned long long>(pings));

  // Now read: every ping is answered, in order, with nothing lost or stalled.
  cr_assert_eq(fcntl(c.fd(), F_SETFL, flags), 0);
  uint64_t pongs = 0;
  Deadline reading(Millis(60000));
  while (pongs < pings && !reading.expired()) {
    ReadResult r = c.read_frame(Millis(10000));
    cr_assert(r.ok(), "after %llu of %llu pongs: %s", static_cast<unsigned long long>(pongs),
              static_cast<unsigned long long>(pings), r.describe().c_str());
    cr_assert(r.frame.type() == "pong", "%s", r.frame.header.c_str());
    ++pongs;
  }
  cr_assert_eq(pongs, pings);
  c.close();
  stop_cleanly(s);
}
