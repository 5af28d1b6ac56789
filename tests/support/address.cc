#include "tests/support/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include <criterion/criterion.h>

#include "tests/support/fd.h"

namespace testsupport {
namespace {

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

uint16_t SockAddr::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

std::string SockAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf,
              sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
  }
  return "(family " + std::to_string(family()) + ")";
}

std::optional<SockAddr> parse_address(std::string_view text, std::string* err) {
  auto fail = [&](const char* why) -> std::optional<SockAddr> {
    if (err) *err = "bad address \"" + std::string(text) + "\": " + why;
    return std::nullopt;
  };
  SockAddr out;
  std::string host;
  std::string_view port_text;
  bool v6 = false;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("expected [IPv6]:PORT");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("expected HOST:PORT");
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  auto port = parse_port(port_text);
  if (!port) return fail("bad port");
  if (v6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(*port);
    if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) != 1) return fail("bad IPv6 address");
    std::memcpy(&out.storage, &sin6, sizeof sin6);
    out.length = sizeof sin6;
  } else {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(*port);
    if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) return fail("bad IPv4 address");
    std::memcpy(&out.storage, &sin, sizeof sin);
    out.length = sizeof sin;
  }
  return out;
}

std::optional<SockAddr> local_address(int fd) {
  SockAddr out;
  out.length = sizeof out.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.length) != 0) {
    return std::nullopt;
  }
  return out;
}

std::optional<SockAddr> peer_address(int fd) {
  SockAddr out;
  out.length = sizeof out.storage;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.length) != 0) {
    return std::nullopt;
  }
  return out;
}

std::string loopback_address(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

uint16_t unused_loopback_port() {
  auto addr = parse_address("127.0.0.1:0");
  cr_assert(addr.has_value());
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  cr_assert(fd.valid());
  cr_assert_eq(bind(fd.get(), addr->get(), addr->length), 0, "bind: %s", std::strerror(errno));
  auto local = local_address(fd.get());
  cr_assert(local.has_value());
  return local->port();
}

std::string refused_address() { return loopback_address(unused_loopback_port()); }

}  // namespace testsupport
