#pragma once
// An address block in CIDR notation (192.0.2.0/24, 2001:db8::/32, or a bare address
// for one host), and whether a peer's address falls inside it. An IPv4 client seen
// by a dual-stack socket as ::ffff:a.b.c.d is matched as the IPv4 address it is.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "reactor/socket_address.h"

namespace reactor {

class Cidr {
 public:
  // On failure says why ("10.0.0.0/33": prefix longer than 32 bits).
  static std::optional<Cidr> parse(std::string_view text, std::string* err);

  bool contains(const SocketAddress& address) const;
  std::string to_string() const;

 private:
  int family_ = 0;             // AF_INET or AF_INET6
  unsigned char bytes_[16] {};  // the network, host bits cleared
  unsigned prefix_ = 0;
};

}  // namespace reactor
