#pragma once
// Numeric socket addresses as the programs print and accept them: "127.0.0.1:PORT" and
// "[::1]:PORT".

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace testsupport {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;
};

// "IPv4:PORT" or "[IPv6]:PORT", numeric only, port 0..65535.
std::optional<SockAddr> parse_address(std::string_view text, std::string* err = nullptr);

// The local (getsockname) or remote (getpeername) address of a socket.
std::optional<SockAddr> local_address(int fd);
std::optional<SockAddr> peer_address(int fd);

// "127.0.0.1:PORT".
std::string loopback_address(uint16_t port);

// A loopback port nobody listens on: bound (so that no one else had it at that moment),
// then closed. For a refused connection, or for a program that takes a fixed port.
uint16_t unused_loopback_port();
// The same as "127.0.0.1:PORT".
std::string refused_address();

}  // namespace testsupport
