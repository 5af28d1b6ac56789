#include "reactor/socket_address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "reactor/errors.h"

namespace reactor {

namespace {

std::string quoted(std::string_view what, std::string_view text) {
  std::string out(what);
  out += " \"";
  out += text;
  out += "\": ";
  return out;
}

bool parse_port(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// Splits "HOST:PORT" / "[V6]:PORT" into host (brackets removed) and a validated port;
// the syntax parse_address() and resolve() share.
bool split_host_port(std::string_view text, std::string* host, uint16_t* port,
                     std::string* err) {
  std::string_view host_part;
  std::string_view port_part;
  // The host goes to C functions that would stop at a NUL and accept the prefix.
  if (text.find('\0') != std::string_view::npos) {
    return set_error(err, "address contains a NUL byte");
  }
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return set_error(err, quoted("address", text) + "missing ']'");
    }
    host_part = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return set_error(err, quoted("address", text) + "expected \":PORT\" after ']'");
    }
    port_part = rest.substr(1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return set_error(err, quoted("address", text) + "expected HOST:PORT");
    }
    host_part = text.substr(0, colon);
    port_part = text.substr(colon + 1);
    if (host_part.find(':') != std::string_view::npos) {
      return set_error(err, quoted("address", text) +
                                "an IPv6 address needs brackets, as in [::1]:9000");
    }
  }
  if (host_part.empty()) return set_error(err, quoted("address", text) + "empty host");
  if (port_part.empty()) return set_error(err, quoted("address", text) + "empty port");
  if (!parse_port(port_part, port)) {
    return set_error(err, quoted("address", text) + "port \"" + std::string(port_part) +
                              "\" is not a number from 0 to 65535");
  }
  host->assign(host_part);
  return true;
}

}  // namespace

SocketAddress::SocketAddress(const sockaddr* sa, socklen_t len) {
  len_ = std::min<socklen_t>(len, sizeof storage_);
  std::memcpy(&storage_, sa, len_);
}

SocketAddress SocketAddress::ipv4_loopback(uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
}

SocketAddress SocketAddress::ipv6_loopback(uint16_t port) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  sin6.sin6_addr = in6addr_loopback;
  return SocketAddress(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

void SocketAddress::set_length(socklen_t len) { len_ = std::min<socklen_t>(len, sizeof storage_); }

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string SocketAddress::to_string() const {
  char host[INET6_ADDRSTRLEN];
  if (family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
    ::inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    std::string out = "[";
    out += host;
    if (sin6->sin6_scope_id != 0) {
      char name[IF_NAMESIZE];
      out += '%';
      out += ::if_indextoname(sin6->sin6_scope_id, name) != nullptr
                 ? std::string(name)
                 : std::to_string(sin6->sin6_scope_id);
    }
    return out + "]:" + std::to_string(port());
  }
  if (family() == AF_UNSPEC) return "(unspecified)";
  return "(address family " + std::to_string(family()) + ")";
}

bool SocketAddress::is_loopback() const {
  if (family() == AF_INET) {
    uint32_t host = ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr);
    return (host >> 24) == 127;
  }
  if (family() == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return false;
}

bool SocketAddress::same_host(const SocketAddress& other) const {
  if (family() != other.family()) return false;
  if (family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&other.storage_)->sin_addr.s_addr;
  }
  if (family() == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&storage_);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&other.storage_);
    return std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
           x->sin6_scope_id == y->sin6_scope_id;
  }
  return len_ == other.len_ && std::memcmp(&storage_, &other.storage_, len_) == 0;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  return a.port() == b.port() && a.same_host(b);
}

bool parse_address(std::string_view text, SocketAddress* out, std::string* err) {
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(text, &host, &port, err)) return false;
  bool bracketed = text.front() == '[';

  if (!bracketed) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    // inet_pton, not inet_aton: it accepts exactly four decimal octets, no "127.1" or hex.
    if (::inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) {
      return set_error(err, quoted("address", text) + "\"" + host +
                                "\" is not a numeric IPv4 address");
    }
    *out = SocketAddress(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
    return true;
  }

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  std::string addr = host;
  size_t percent = host.find('%');
  if (percent != std::string::npos) {
    addr = host.substr(0, percent);
    std::string scope = host.substr(percent + 1);
    unsigned index = scope.empty() ? 0 : ::if_nametoindex(scope.c_str());
    if (index == 0 && !scope.empty() &&
        scope.find_first_not_of("0123456789") == std::string::npos && scope.size() < 10) {
      index = static_cast<unsigned>(std::stoul(scope));
    }
    if (index == 0) {
      return set_error(err, quoted("address", text) + "unknown scope \"" + scope + "\"");
    }
    sin6.sin6_scope_id = index;
  }
  if (::inet_pton(AF_INET6, addr.c_str(), &sin6.sin6_addr) != 1) {
    return set_error(err, quoted("address", text) + "\"" + addr +
                              "\" is not a numeric IPv6 address");
  }
  *out = SocketAddress(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
  return true;
}

bool resolve(std::string_view host_port, std::vector<SocketAddress>* out, std::string* err) {
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(host_port, &host, &port, err)) return false;

  // RFC 6761: "localhost" and names under it are the loopback addresses, answered here
  // without asking the resolver, so that they work where /etc/hosts lacks them (a
  // minimal chroot or container), as curl does. IPv4 first: servers listen there by
  // default.
  std::string lower = host;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "localhost" || lower == "localhost." ||
      (lower.size() > 10 && lower.compare(lower.size() - 10, 10, ".localhost") == 0)) {
    out->clear();
    std::string service = std::to_string(port);
    for (std::string loopback : {"127.0.0.1:" + service, "[::1]:" + service}) {
      SocketAddress addr;
      if (parse_address(loopback, &addr, nullptr)) out->push_back(addr);
    }
    return true;
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;  // no AI_ADDRCONFIG: see the header
  addrinfo* result = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    std::string what = quoted("resolve", host_port);
    what += rc == EAI_SYSTEM ? errno_string(errno) : ::gai_strerror(rc);
    return set_error(err, what);
  }
  out->clear();
  for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SocketAddress addr(ai->ai_addr, ai->ai_addrlen);
    if (std::find(out->begin(), out->end(), addr) == out->end()) out->push_back(addr);
  }
  ::freeaddrinfo(result);
  if (out->empty()) {
    return set_error(err, quoted("resolve", host_port) + "no IPv4 or IPv6 address");
  }
  return true;
}

}  // namespace reactor
