#include "reactor/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace reactor {
namespace {

// The address's family and bytes, an IPv4-mapped IPv6 address unmapped.
bool address_bytes(const SocketAddress& address, int* family, unsigned char bytes[16]) {
  if (address.family() == AF_INET) {
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in*>(address.get())->sin_addr, 4);
    *family = AF_INET;
    return true;
  }
  if (address.family() == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(address.get())->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      std::memcpy(bytes, a.s6_addr + 12, 4);
      *family = AF_INET;
    } else {
      std::memcpy(bytes, a.s6_addr, 16);
      *family = AF_INET6;
    }
    return true;
  }
  return false;
}

bool prefix_matches(const unsigned char* a, const unsigned char* b, unsigned prefix) {
  unsigned whole = prefix / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* err) {
  std::string quoted = "\"" + std::string(text) + "\"";
  size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  Cidr cidr;
  if (inet_pton(AF_INET, host.c_str(), cidr.bytes_) == 1) {
    cidr.family_ = AF_INET;
  } else if (inet_pton(AF_INET6, host.c_str(), cidr.bytes_) == 1) {
    cidr.family_ = AF_INET6;
  } else {
    *err = quoted + ": not an IPv4 or IPv6 address block (e.g. 10.0.0.0/8, fd00::/8)";
    return std::nullopt;
  }
  unsigned bits = cidr.family_ == AF_INET ? 32 : 128;
  cidr.prefix_ = bits;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    unsigned value = 0;
    bool ok = !digits.empty() && digits.size() <= 3;
    for (char c : digits) {
      ok = ok && c >= '0' && c <= '9';
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (!ok || value > bits) {
      *err = quoted + ": the prefix length must be a number from 0 to " + std::to_string(bits);
      return std::nullopt;
    }
    cidr.prefix_ = value;
  }
  // Clear the host bits, so 10.1.2.3/8 means 10.0.0.0/8 as ip(8) takes it.
  for (unsigned i = 0; i < 16; ++i) {
    unsigned from = i * 8;
    if (from >= cidr.prefix_) {
      cidr.bytes_[i] = 0;
    } else if (cidr.prefix_ - from < 8) {
      cidr.bytes_[i] &= static_cast<unsigned char>(0xff << (8 - (cidr.prefix_ - from)));
    }
  }
  return cidr;
}

bool Cidr::contains(const SocketAddress& address) const {
  int family = 0;
  unsigned char bytes[16] {};
  if (!address_bytes(address, &family, bytes) || family != family_) return false;
  return prefix_matches(bytes, bytes_, prefix_);
}

std::string Cidr::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family_, bytes_, text, sizeof text);
  return std::string(text) + "/" + std::to_string(prefix_);
}

}  // namespace reactor
