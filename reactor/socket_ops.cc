#include "reactor/socket_ops.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "reactor/errors.h"

namespace reactor {

namespace {

// "setsockopt SO_SNDBUF fd 7: Bad file descriptor": the fd is not a name, so no quotes.
std::string on_fd(std::string_view what, int fd) {
  int errnum = errno;  // before the string building below
  return sys_error(errnum, std::string(what) + " fd " + std::to_string(fd));
}

bool set_flag(int fd, int get_cmd, int set_cmd, int flag, bool on, const char* what,
              std::string* err) {
  int flags = ::fcntl(fd, get_cmd);
  if (flags < 0) return set_error(err, on_fd(what, fd));
  int wanted = on ? (flags | flag) : (flags & ~flag);
  if (wanted != flags && ::fcntl(fd, set_cmd, wanted) < 0) {
    return set_error(err, on_fd(what, fd));
  }
  return true;
}

bool set_int_option(int fd, int level, int name, int value, const char* what,
                    std::string* err) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    return set_error(err, on_fd(what, fd));
  }
  return true;
}

}  // namespace

UniqueFd tcp_socket(int family, std::string* err) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd) set_error(err, sys_error("socket"));
  return fd;
}

bool set_nonblocking(int fd, bool on, std::string* err) {
  return set_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, on, "fcntl O_NONBLOCK", err);
}

bool set_cloexec(int fd, bool on, std::string* err) {
  return set_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, on, "fcntl FD_CLOEXEC", err);
}

bool set_nodelay(int fd, bool on, std::string* err) {
  return set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt TCP_NODELAY", err);
}

bool bind_source(int fd, const SocketAddress& source, std::string* err) {
  if (source.family() == AF_INET &&
      !set_int_option(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1, "setsockopt IP_BIND_ADDRESS_NO_PORT", err))
    return false;
  if (::bind(fd, source.get(), source.length()) != 0)
    return set_error(err, sys_error("bind " + source.to_string()));
  return true;
}

bool set_reuseaddr(int fd, bool on, std::string* err) {
  return set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0, "setsockopt SO_REUSEADDR",
                        err);
}

bool set_send_buffer(int fd, int bytes, std::string* err) {
  return set_int_option(fd, SOL_SOCKET, SO_SNDBUF, bytes, "setsockopt SO_SNDBUF", err);
}

bool set_receive_buffer(int fd, int bytes, std::string* err) {
  return set_int_option(fd, SOL_SOCKET, SO_RCVBUF, bytes, "setsockopt SO_RCVBUF", err);
}

bool shutdown_write(int fd, std::string* err) {
  if (::shutdown(fd, SHUT_WR) != 0) return set_error(err, on_fd("shutdown", fd));
  return true;
}

std::optional<SocketAddress> local_address(int fd, std::string* err) {
  SocketAddress addr;
  socklen_t len = SocketAddress::capacity();
  if (::getsockname(fd, addr.get_mutable(), &len) != 0) {
    set_error(err, on_fd("getsockname", fd));
    return std::nullopt;
  }
  addr.set_length(len);
  return addr;
}

std::optional<SocketAddress> peer_address(int fd, std::string* err) {
  SocketAddress addr;
  socklen_t len = SocketAddress::capacity();
  if (::getpeername(fd, addr.get_mutable(), &len) != 0) {
    set_error(err, on_fd("getpeername", fd));
    return std::nullopt;
  }
  addr.set_length(len);
  return addr;
}

int socket_error(int fd) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &len) != 0) return errno;
  return value;
}

}  // namespace reactor
