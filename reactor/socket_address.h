#pragma once
// SocketAddress: an IPv4 or IPv6 socket address by value (sockaddr_storage + length), plus
// the two ways the programs obtain one: parse_address() for numeric addresses the server
// binds to, resolve() for the host names a client may be given.

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace reactor {

class SocketAddress {
 public:
  SocketAddress() = default;  // AF_UNSPEC, length 0
  // Copies `len` bytes of `sa` (truncated to sizeof(sockaddr_storage)).
  SocketAddress(const sockaddr* sa, socklen_t len);

  static SocketAddress ipv4_loopback(uint16_t port);  // 127.0.0.1:port
  static SocketAddress ipv6_loopback(uint16_t port);  // [::1]:port

  int family() const { return storage_.ss_family; }
  // Host byte order; 0 for a family without ports.
  uint16_t port() const;
  void set_port(uint16_t port);

  // "127.0.0.1:9000", "[::1]:9000", "[fe80::1%eth0]:22"; "(unspecified)" when empty.
  std::string to_string() const;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  // For accept()/getsockname(): fill through these, then set_length() with what came back.
  sockaddr* get_mutable() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t length() const { return len_; }
  void set_length(socklen_t len);
  static constexpr socklen_t capacity() { return sizeof(sockaddr_storage); }

  // The same family and IP address (and IPv6 scope), whatever the ports.
  bool same_host(const SocketAddress& other) const;
  // 127.0.0.0/8, ::1, or ::ffff:127.x.y.z.
  bool is_loopback() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);
  friend bool operator!=(const SocketAddress& a, const SocketAddress& b) { return !(a == b); }

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// Parses a numeric address, strictly: "HOST:PORT" with a dotted-quad IPv4 host, or
// "[V6]:PORT" (brackets required, an optional %scope allowed). PORT is 0..65535 in
// decimal, 0 meaning "any free port" when binding. No host names, no DNS, no shorthand such
// as "127.1" or ":9000". False + *err saying what is wrong.
bool parse_address(std::string_view text, SocketAddress* out, std::string* err);

// Resolves "HOST:PORT" or "[V6]:PORT" for connecting, host names allowed, through
// getaddrinfo(). Results keep getaddrinfo's preference order (RFC 6724) for the caller to
// try in turn. AI_ADDRCONFIG is off on purpose: on a host whose only interface is
// loopback it would hide 127.0.0.1 and ::1. Replaces *out; false + *err, e.g.
//   resolve "nosuch.invalid:9000": Name or service not known
bool resolve(std::string_view host_port, std::vector<SocketAddress>* out, std::string* err);

}  // namespace reactor
