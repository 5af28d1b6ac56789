// The plain transport: the kernel's socket calls, nothing in between (see transport.h).

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>

#include "reactor/errors.h"
#include "reactor/poller.h"
#include "reactor/socket_ops.h"
#include "reactor/transport.h"

namespace reactor {

IoResult SocketTransport::read(Buffer& in, size_t max) {
  IoResult r;
  int saved_errno = 0;
  size_t offered = 0;
  r.bytes = in.read_from(fd_, &saved_errno, max, &offered);
  if (r.bytes < 0) r.error = saved_errno;
  // A read that filled everything offered may have left more in the kernel; a shorter
  // one emptied the receive queue at that instant, and asking again would only cost a
  // system call that says EAGAIN.
  r.more = r.bytes > 0 && static_cast<size_t>(r.bytes) == offered;
  return r;
}

IoResult SocketTransport::write(Buffer& out, size_t max) {
  IoResult r;
  int saved_errno = 0;
  r.bytes = out.write_to(fd_, max, &saved_errno);
  if (r.bytes < 0) r.error = saved_errno;
  return r;
}

uint32_t SocketTransport::read_interest() const { return kReadable; }
uint32_t SocketTransport::write_interest() const { return kWritable; }

IoResult SocketTransport::send_file(int file_fd, uint64_t* offset, size_t len) {
  IoResult r;
  off_t pos = static_cast<off_t>(*offset);
  do {
    r.bytes = ::sendfile(fd_, file_fd, &pos, len);
  } while (r.bytes < 0 && errno == EINTR);
  if (r.bytes < 0) {
    r.error = errno;
    return r;
  }
  *offset = static_cast<uint64_t>(pos);
  return r;
}

bool SocketTransport::shutdown_write(std::string* err) { return reactor::shutdown_write(fd_, err); }

std::unique_ptr<Transport> make_socket_transport(int fd) { return std::make_unique<SocketTransport>(fd); }

}  // namespace reactor
