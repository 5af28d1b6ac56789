#pragma once
// SourceRange: the local IPv4 addresses `reactorc bench --source PREFIX` connects from, in
// turn. A load generator that opens and closes tens of thousands of connections a second
// to one server address keeps every closed one in TIME_WAIT on its own side (it closes
// first), and with one source address the kernel's search for a free ephemeral port among
// them becomes the bottleneck. Spreading connections over many source addresses, as
// loopback's whole 127.0.0.0/8 allows, gives each its own port space.

#include <cstdint>
#include <string>
#include <string_view>

#include "reactor/socket_address.h"

namespace client {

class SourceRange {
 public:
  // "A.B.C.D/BITS", BITS 8 to 32; host bits of the address are ignored. The usable
  // addresses exclude the network and broadcast addresses for prefixes up to /30.
  static bool parse(std::string_view text, SourceRange* out, std::string* err);

  bool empty() const { return count_ == 0; }
  uint32_t size() const { return count_; }
  // The i-th usable address, i taken modulo size(), with port 0. Precondition: !empty().
  reactor::SocketAddress at(uint64_t i) const;

 private:
  uint32_t first_ = 0;  // host byte order
  uint32_t count_ = 0;
};

}  // namespace client
