#pragma once
// The PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer sends
// before anything else on a connection it passes on, naming the client it accepted.
// Specification: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
//
// Only the header is parsed here; whether the sender may be believed at all is the
// listener's business (reactord --trusted-proxy).

#include <cstddef>
#include <string>
#include <string_view>

#include "reactor/socket_address.h"

namespace protocol {

struct ProxyHeader {
  int version = 0;     // 1 or 2
  // No addresses to take (v1 "UNKNOWN", v2 LOCAL or an unspecified family): the
  // balancer's own health check, say. The connection's real peer stands.
  bool local = false;
  reactor::SocketAddress source;       // the client, as the balancer saw it
  reactor::SocketAddress destination;  // the address the client connected to
};

enum class ProxyParse {
  kNeedMore,  // every byte so far can start a valid header: read more
  kDone,      // *out holds the header, *consumed its length
  kInvalid,   // *err says why
};

// A v1 line is at most 107 bytes; a v2 header is 16 bytes and its address block, which
// we bound (its TLVs are skipped, never interpreted) so a pre-authentication peer
// cannot make us hold more than this.
constexpr size_t kProxyV1Max = 107;
constexpr size_t kProxyV2MaxBlock = 1024;
constexpr size_t kProxyHeaderMax = 16 + kProxyV2MaxBlock;

// Parses the header at the start of `data`, which may hold more after it.
ProxyParse parse_proxy_header(std::string_view data, ProxyHeader* out, size_t* consumed, std::string* err);

}  // namespace protocol
