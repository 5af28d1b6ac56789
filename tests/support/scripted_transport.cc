#include "tests/support/scripted_transport.h"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "reactor/poller.h"

namespace testsupport {

ScriptedTransport::ScriptedTransport(int fd, TransportScript script, TransportCounters* counters)
    : fd_(fd), script_(script), counters_(counters != nullptr ? counters : &own_counters_) {}

bool ScriptedTransport::inject_eagain() {
  ++calls_;
  if (script_.eagain_every == 0 || calls_ % script_.eagain_every != 0) return false;
  ++counters_->injected_eagain;
  return true;
}

reactor::IoResult ScriptedTransport::read(reactor::Buffer& in, size_t max) {
  reactor::IoResult r;
  if (inject_eagain()) {
    r.bytes = -1;
    r.error = EAGAIN;
    return r;
  }
  int saved_errno = 0;
  size_t offered = 0;
  r.bytes = in.read_from(fd_, &saved_errno, std::min(max, script_.read_limit), &offered);
  if (r.bytes < 0) r.error = saved_errno;
  if (r.bytes > 0) ++counters_->reads;
  r.more = r.bytes > 0 && static_cast<size_t>(r.bytes) == offered;
  return r;
}

reactor::IoResult ScriptedTransport::write(reactor::Buffer& out, size_t max) {
  reactor::IoResult r;
  if (inject_eagain()) {
    r.bytes = -1;
    r.error = EAGAIN;
    return r;
  }
  int saved_errno = 0;
  r.bytes = out.write_to(fd_, std::min(max, script_.write_limit), &saved_errno);
  if (r.bytes < 0) r.error = saved_errno;
  if (r.bytes > 0) ++counters_->writes;
  return r;
}

uint32_t ScriptedTransport::read_interest() const { return reactor::kReadable; }
uint32_t ScriptedTransport::write_interest() const { return reactor::kWritable; }

reactor::IoResult ScriptedTransport::send_file(int file_fd, uint64_t* offset, size_t len) {
  reactor::IoResult r;
  if (inject_eagain()) {
    r.bytes = -1;
    r.error = EAGAIN;
    return r;
  }
  off_t pos = static_cast<off_t>(*offset);
  do {
    r.bytes = ::sendfile(fd_, file_fd, &pos, std::min(len, script_.write_limit));
  } while (r.bytes < 0 && errno == EINTR);
  if (r.bytes < 0) {
    r.error = errno;
    return r;
  }
  if (r.bytes > 0) ++counters_->send_files;
  *offset = static_cast<uint64_t>(pos);
  return r;
}

bool ScriptedTransport::shutdown_write(std::string* err) {
  if (::shutdown(fd_, SHUT_WR) == 0) return true;
  if (err != nullptr) *err = "shutdown failed";
  return false;
}

std::unique_ptr<reactor::Transport> scripted_transport(int fd, TransportScript script, TransportCounters* counters) {
  return std::make_unique<ScriptedTransport>(fd, script, counters);
}

}  // namespace testsupport
