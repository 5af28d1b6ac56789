#include "apps/reactorc/source_range.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "apps/common/cli.h"

namespace client {

bool SourceRange::parse(std::string_view text, SourceRange* out, std::string* err) {
  size_t slash = text.find('/');
  std::string address(text.substr(0, slash));
  uint64_t bits = 0;
  in_addr parsed{};
  if (slash == std::string_view::npos || inet_pton(AF_INET, address.c_str(), &parsed) != 1 ||
      !app::parse_count(text.substr(slash + 1), 8, 32, &bits)) {
    *err = "expected an IPv4 prefix such as 127.0.0.0/24 (8 to 32 bits)";
    return false;
  }
  uint32_t mask = bits == 32 ? ~uint32_t{0} : ~(~uint32_t{0} >> bits);
  uint32_t network = ntohl(parsed.s_addr) & mask;
  uint64_t hosts = uint64_t{1} << (32 - bits);
  if (hosts >= 4) {
    out->first_ = network + 1;
    out->count_ = static_cast<uint32_t>(hosts - 2);
  } else {
    out->first_ = network;
    out->count_ = static_cast<uint32_t>(hosts);
  }
  return true;
}

reactor::SocketAddress SourceRange::at(uint64_t i) const {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(first_ + static_cast<uint32_t>(i % count_));
  return reactor::SocketAddress(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
}

}  // namespace client
