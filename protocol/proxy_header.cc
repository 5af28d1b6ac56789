#include "protocol/proxy_header.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <vector>

namespace protocol {
namespace {

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr std::string_view kV1Prefix = "PROXY ";

bool is_prefix_of(std::string_view data, std::string_view whole) {
  size_t n = std::min(data.size(), whole.size());
  return data.substr(0, n) == whole.substr(0, n);
}

reactor::SocketAddress make_v4(const unsigned char* addr, uint16_t port) {
  sockaddr_in sin {};
  sin.sin_family = AF_INET;
  std::memcpy(&sin.sin_addr, addr, 4);
  sin.sin_port = htons(port);
  return reactor::SocketAddress(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
}

reactor::SocketAddress make_v6(const unsigned char* addr, uint16_t port) {
  sockaddr_in6 sin6 {};
  sin6.sin6_family = AF_INET6;
  std::memcpy(&sin6.sin6_addr, addr, 16);
  sin6.sin6_port = htons(port);
  return reactor::SocketAddress(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

// A v1 port: decimal, 0 to 65535, no sign, no leading zero (the specification's words).
bool parse_port(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

ProxyParse invalid(std::string* err, const std::string& why) {
  *err = why;
  return ProxyParse::kInvalid;
}

ProxyParse parse_v1(std::string_view data, ProxyHeader* out, size_t* consumed, std::string* err) {
  size_t newline = data.substr(0, kProxyV1Max).find('\n');
  if (newline == std::string_view::npos)
    return data.size() >= kProxyV1Max ? invalid(err, "PROXY v1 header longer than 107 bytes") : ProxyParse::kNeedMore;
  if (newline == 0 || data[newline - 1] != '\r') return invalid(err, "PROXY v1 header not ended by CRLF");
  std::string_view line = data.substr(0, newline - 1);
  std::vector<std::string_view> fields;
  while (!line.empty()) {
    size_t space = line.find(' ');
    fields.push_back(line.substr(0, space));
    if (space == std::string_view::npos) break;
    line.remove_prefix(space + 1);
    if (line.empty()) fields.emplace_back();  // a trailing space: an empty last field
  }
  ProxyHeader header;
  header.version = 1;
  if (fields.size() >= 2 && fields[1] == "UNKNOWN") {
    header.local = true;  // whatever follows UNKNOWN is to be ignored
  } else {
    if (fields.size() < 2 || (fields[1] != "TCP4" && fields[1] != "TCP6"))
      return invalid(err, "PROXY v1 header with an unknown protocol (TCP4, TCP6 or UNKNOWN expected)");
    if (fields.size() != 6) return invalid(err, "PROXY v1 header without exactly two addresses and two ports");
    bool v4 = fields[1] == "TCP4";
    unsigned char src[16];
    unsigned char dst[16];
    std::string src_text(fields[2]);
    std::string dst_text(fields[3]);
    uint16_t sport = 0;
    uint16_t dport = 0;
    int family = v4 ? AF_INET : AF_INET6;
    if (inet_pton(family, src_text.c_str(), src) != 1 || inet_pton(family, dst_text.c_str(), dst) != 1)
      return invalid(err, std::string("PROXY v1 header with an address that is not ") + (v4 ? "IPv4" : "IPv6"));
    if (!parse_port(fields[4], &sport) || !parse_port(fields[5], &dport))
      return invalid(err, "PROXY v1 header with a port that is not a decimal number from 0 to 65535");
    header.source = v4 ? make_v4(src, sport) : make_v6(src, sport);
    header.destination = v4 ? make_v4(dst, dport) : make_v6(dst, dport);
  }
  *out = header;
  *consumed = newline + 1;
  return ProxyParse::kDone;
}

ProxyParse parse_v2(std::string_view data, ProxyHeader* out, size_t* consumed, std::string* err) {
  if (data.size() < 16) return ProxyParse::kNeedMore;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  unsigned version = bytes[12] >> 4;
  unsigned command = bytes[12] & 0x0f;
  unsigned family = bytes[13] >> 4;
  unsigned transport = bytes[13] & 0x0f;
  size_t length = static_cast<size_t>(bytes[14]) << 8 | bytes[15];
  if (version != 2) return invalid(err, "PROXY header of version " + std::to_string(version) + " (2 expected)");
  if (command > 1) return invalid(err, "PROXY v2 header with an unknown command " + std::to_string(command));
  if (length > kProxyV2MaxBlock)
    return invalid(err, "PROXY v2 header with an address block of " + std::to_string(length) + " bytes (at most " +
                            std::to_string(kProxyV2MaxBlock) + " accepted)");
  if (data.size() < 16 + length) return ProxyParse::kNeedMore;
  ProxyHeader header;
  header.version = 2;
  const unsigned char* block = bytes + 16;
  if (command == 0 || family == 0) {
    header.local = true;  // LOCAL, or PROXY of an unspecified family: keep the real peer
  } else if (transport != 1) {
    return invalid(err, "PROXY v2 header for a transport other than TCP");
  } else if (family == 1) {
    if (length < 12) return invalid(err, "PROXY v2 header too short for two IPv4 addresses");
    header.source = make_v4(block, static_cast<uint16_t>(block[8] << 8 | block[9]));
    header.destination = make_v4(block + 4, static_cast<uint16_t>(block[10] << 8 | block[11]));
  } else if (family == 2) {
    if (length < 36) return invalid(err, "PROXY v2 header too short for two IPv6 addresses");
    header.source = make_v6(block, static_cast<uint16_t>(block[32] << 8 | block[33]));
    header.destination = make_v6(block + 16, static_cast<uint16_t>(block[34] << 8 | block[35]));
  } else {
    return invalid(err, "PROXY v2 header for an address family other than IPv4 or IPv6");
  }
  *out = header;
  *consumed = 16 + length;
  return ProxyParse::kDone;
}

}  // namespace

ProxyParse parse_proxy_header(std::string_view data, ProxyHeader* out, size_t* consumed, std::string* err) {
  std::string_view signature(kV2Signature, sizeof kV2Signature);
  if (data.empty()) return ProxyParse::kNeedMore;
  if (is_prefix_of(data, signature)) {
    if (data.size() < signature.size()) return ProxyParse::kNeedMore;
    return parse_v2(data, out, consumed, err);
  }
  if (is_prefix_of(data, kV1Prefix)) {
    if (data.size() < kV1Prefix.size()) return ProxyParse::kNeedMore;
    return parse_v1(data, out, consumed, err);
  }
  return invalid(err, "no PROXY protocol header (the listener expects one from the load balancer first)");
}

}  // namespace protocol
