#pragma once
// Thin wrappers over the socket system calls the reactor needs, each reporting failure the
// project's way (bool + *err with the call and the fd in the message).

#include <optional>
#include <string>

#include "reactor/socket_address.h"
#include "reactor/unique_fd.h"

namespace reactor {

// A TCP socket of the given family, already non-blocking and close-on-exec (atomically, so
// no fork+exec elsewhere can inherit it).
UniqueFd tcp_socket(int family, std::string* err);

bool set_nonblocking(int fd, bool on, std::string* err);
bool set_cloexec(int fd, bool on, std::string* err);
bool set_nodelay(int fd, bool on, std::string* err);    // TCP_NODELAY
bool set_reuseaddr(int fd, bool on, std::string* err);  // SO_REUSEADDR
// SO_SNDBUF / SO_RCVBUF. Linux doubles the value for bookkeeping and clamps it to
// [a small minimum, net.core.{w,r}mem_max].
bool set_send_buffer(int fd, int bytes, std::string* err);
bool set_receive_buffer(int fd, int bytes, std::string* err);
// Binds a socket about to connect() to `source` (port 0: any). For IPv4 it sets
// IP_BIND_ADDRESS_NO_PORT first, so the port is chosen at connect() against the whole
// address 4-tuple instead of being reserved here from the source address alone.
bool bind_source(int fd, const SocketAddress& source, std::string* err);
// shutdown(SHUT_WR): the peer reads end of file once the queued data is through.
bool shutdown_write(int fd, std::string* err);

// getsockname() / getpeername(); nothing + *err on failure (ENOTCONN for peer_address on an
// unconnected socket).
std::optional<SocketAddress> local_address(int fd, std::string* err = nullptr);
std::optional<SocketAddress> peer_address(int fd, std::string* err = nullptr);

// The pending error of a socket (SO_ERROR), which also clears it: how a non-blocking
// connect() reports its outcome. 0 for none; if getsockopt itself fails, its errno.
int socket_error(int fd);

}  // namespace reactor
