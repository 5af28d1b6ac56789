// protocol/proxy_header and reactor/cidr: the PROXY header a load balancer sends first
// (HAProxy's proxy-protocol.txt, versions 1 and 2), and the blocks of --trusted-proxy.

#include <criterion/criterion.h>

#include <string>

#include "protocol/proxy_header.h"
#include "reactor/cidr.h"
#include "reactor/socket_address.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary (see test_hex.cc).
constexpr double kTimeout = 10;

using protocol::ProxyHeader;
using protocol::ProxyParse;

namespace {

const std::string kSignature("\r\n\r\n\0\r\nQUIT\n", 12);

struct Parsed {
  ProxyParse result;
  ProxyHeader header;
  size_t consumed = 0;
  std::string err;
};

Parsed parse(const std::string& data) {
  Parsed p;
  p.result = protocol::parse_proxy_header(data, &p.header, &p.consumed, &p.err);
  return p;
}

// A v2 header: version/command byte, family/transport byte, then the address block.
std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& block) {
  std::string out = kSignature;
  out += static_cast<char>(ver_cmd);
  out += static_cast<char>(fam);
  out += static_cast<char>(block.size() >> 8);
  out += static_cast<char>(block.size() & 0xff);
  return out + block;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

// Every strict prefix of a valid header asks for more, and never claims to be done.
void assert_prefixes_need_more(const std::string& header) {
  for (size_t n = 0; n < header.size(); ++n) {
    Parsed p = parse(header.substr(0, n));
    cr_assert(p.result == ProxyParse::kNeedMore, "a prefix of %zu of %zu bytes: %d (%s)", n, header.size(),
              static_cast<int>(p.result), p.err.c_str());
  }
}

void assert_invalid(const std::string& data, const std::string& why) {
  Parsed p = parse(data);
  cr_assert(p.result == ProxyParse::kInvalid, "accepted %zu bytes for %s", data.size(), why.c_str());
  cr_assert(p.err.find(why) != std::string::npos, "\"%s\" does not say \"%s\"", p.err.c_str(), why.c_str());
}

}  // namespace

Test(proxy_header, v1_tcp4_names_the_client_and_leaves_what_follows, .timeout = kTimeout) {
  std::string header = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 9000\r\n";
  Parsed p = parse(header + "\x16\x03\x01 the ClientHello");
  cr_assert(p.result == ProxyParse::kDone, "%s", p.err.c_str());
  cr_assert_eq(p.consumed, header.size());
  cr_assert_eq(p.header.version, 1);
  cr_assert(!p.header.local);
  cr_assert(p.header.source.to_string() == "203.0.113.7:56324", "%s", p.header.source.to_string().c_str());
  cr_assert(p.header.destination.to_string() == "192.0.2.1:9000", "%s", p.header.destination.to_string().c_str());
  assert_prefixes_need_more(header);
}

Test(proxy_header, v1_tcp6_and_unknown, .timeout = kTimeout) {
  Parsed p = parse("PROXY TCP6 2001:db8::5 2001:db8::1 4242 443\r\n");
  cr_assert(p.result == ProxyParse::kDone, "%s", p.err.c_str());
  cr_assert(p.header.source.to_string() == "[2001:db8::5]:4242", "%s", p.header.source.to_string().c_str());
  // UNKNOWN: the balancer's own connection; whatever follows the word is ignored.
  for (const std::string header : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    p = parse(header);
    cr_assert(p.result == ProxyParse::kDone, "%s: %s", header.c_str(), p.err.c_str());
    cr_assert(p.header.local);
    cr_assert_eq(p.consumed, header.size());
  }
}

Test(proxy_header, v1_malformed_lines_are_refused_with_the_reason, .timeout = kTimeout) {
  assert_invalid("PROXY TCP4 203.0.113.7 192.0.2.1 56324 9000\n", "CRLF");
  assert_invalid("PROXY TCP4 " + std::string(120, '1') + "\r\n", "longer than 107");
  assert_invalid("PROXY TCP4 " + std::string(100, '1'), "longer than 107");  // no end in sight
  assert_invalid("PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n", "unknown protocol");
  assert_invalid("PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n", "exactly two addresses");
  assert_invalid("PROXY TCP4 203.0.113.7 192.0.2.1 1 2 3\r\n", "exactly two addresses");
  assert_invalid("PROXY TCP4  203.0.113.7 192.0.2.1 1 2\r\n", "exactly two addresses");
  assert_invalid("PROXY TCP4 2001:db8::5 192.0.2.1 1 2\r\n", "not IPv4");
  assert_invalid("PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n", "not IPv6");
  assert_invalid("PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n", "port");
  assert_invalid("PROXY TCP4 203.0.113.7 192.0.2.1 080 2\r\n", "port");
  assert_invalid("PROXY TCP4 203.0.113.7 192.0.2.1 -1 2\r\n", "port");
  assert_invalid("PROXY TCP4 203.0.113.7 192.0.2.1 1 2 \r\n", "exactly two addresses");
}

Test(proxy_header, anything_else_first_is_not_a_header, .timeout = kTimeout) {
  assert_invalid("GET / HTTP/1.1\r\n", "no PROXY protocol header");
  assert_invalid(std::string("\x16\x03\x01\x02\x00", 5), "no PROXY protocol header");
  assert_invalid("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "no PROXY protocol header");
  assert_invalid(std::string("\r\n\r\n\0\r\nQUIX\n", 12), "no PROXY protocol header");
  assert_invalid("P ROXY", "no PROXY protocol header");
}

Test(proxy_header, v2_tcp4_and_tcp6_with_tlvs_skipped, .timeout = kTimeout) {
  std::string block4 = bytes({203, 0, 113, 7, 192, 0, 2, 1, 0xdc, 0x04, 0x23, 0x28});
  std::string tlv = bytes({0x04, 0x00, 0x03, 'a', 'b', 'c'});  // PP2_TYPE_NOOP, skipped
  std::string header = v2(0x21, 0x11, block4 + tlv);
  Parsed p = parse(header + "after");
  cr_assert(p.result == ProxyParse::kDone, "%s", p.err.c_str());
  cr_assert_eq(p.consumed, header.size());
  cr_assert_eq(p.header.version, 2);
  cr_assert(p.header.source.to_string() == "203.0.113.7:56324", "%s", p.header.source.to_string().c_str());
  cr_assert(p.header.destination.to_string() == "192.0.2.1:9000", "%s", p.header.destination.to_string().c_str());
  assert_prefixes_need_more(header);

  std::string block6(36, '\0');
  block6[0] = 0x20, block6[1] = 0x01, block6[2] = 0x0d, block6[3] = static_cast<char>(0xb8), block6[15] = 5;
  block6[16] = 0x20, block6[17] = 0x01, block6[18] = 0x0d, block6[19] = static_cast<char>(0xb8), block6[31] = 1;
  block6[32] = 0x10, block6[33] = static_cast<char>(0x92), block6[34] = 0x01, block6[35] = static_cast<char>(0xbb);
  p = parse(v2(0x21, 0x21, block6));
  cr_assert(p.result == ProxyParse::kDone, "%s", p.err.c_str());
  cr_assert(p.header.source.to_string() == "[2001:db8::5]:4242", "%s", p.header.source.to_string().c_str());
  cr_assert(p.header.destination.to_string() == "[2001:db8::1]:443", "%s", p.header.destination.to_string().c_str());
}

Test(proxy_header, v2_local_and_unspecified_keep_the_real_peer, .timeout = kTimeout) {
  // LOCAL: a health check; its addresses, if any, mean nothing.
  Parsed p = parse(v2(0x20, 0x11, std::string(12, '\x01')));
  cr_assert(p.result == ProxyParse::kDone, "%s", p.err.c_str());
  cr_assert(p.header.local);
  p = parse(v2(0x20, 0x00, ""));
  cr_assert(p.result == ProxyParse::kDone && p.header.local, "%s", p.err.c_str());
  p = parse(v2(0x21, 0x00, ""));
  cr_assert(p.result == ProxyParse::kDone && p.header.local, "%s", p.err.c_str());
  cr_assert_eq(p.consumed, 16u);
}

Test(proxy_header, v2_malformed_headers_are_refused_with_the_reason, .timeout = kTimeout) {
  assert_invalid(v2(0x11, 0x11, std::string(12, '\0')), "version 1");
  assert_invalid(v2(0x22, 0x11, std::string(12, '\0')), "unknown command");
  assert_invalid(v2(0x21, 0x12, std::string(12, '\0')), "other than TCP");
  assert_invalid(v2(0x21, 0x31, std::string(216, '\0')), "other than IPv4 or IPv6");
  assert_invalid(v2(0x21, 0x11, std::string(11, '\0')), "too short for two IPv4");
  assert_invalid(v2(0x21, 0x21, std::string(35, '\0')), "too short for two IPv6");
  // A block over the bound is refused from its 16-byte header alone, before it is read.
  std::string huge = v2(0x21, 0x11, std::string(protocol::kProxyV2MaxBlock + 1, '\0'));
  assert_invalid(huge.substr(0, 16), "address block of 1025 bytes");
  Parsed p = parse(v2(0x21, 0x11, std::string(protocol::kProxyV2MaxBlock, '\0')));
  cr_assert(p.result == ProxyParse::kDone, "the bound itself is accepted: %s", p.err.c_str());
}

Test(cidr, blocks_match_their_addresses_and_only_those, .timeout = kTimeout) {
  std::string err;
  auto addr = [](const std::string& text) {
    reactor::SocketAddress a;
    std::string why;
    cr_assert(reactor::parse_address(text, &a, &why), "%s: %s", text.c_str(), why.c_str());
    return a;
  };
  auto block = reactor::Cidr::parse("10.1.2.3/8", &err);
  cr_assert(block.has_value(), "%s", err.c_str());
  cr_assert(block->to_string() == "10.0.0.0/8", "host bits are cleared: %s", block->to_string().c_str());
  cr_assert(block->contains(addr("10.200.0.1:1")));
  cr_assert(!block->contains(addr("11.0.0.1:1")));
  cr_assert(block->contains(addr("[::ffff:10.9.9.9]:1")), "an IPv4-mapped peer is its IPv4 address");
  cr_assert(!block->contains(addr("[::1]:1")));
  auto one = reactor::Cidr::parse("127.0.0.1", &err);
  cr_assert(one.has_value() && one->to_string() == "127.0.0.1/32");
  cr_assert(one->contains(addr("127.0.0.1:9")) && !one->contains(addr("127.0.0.2:9")));
  auto odd = reactor::Cidr::parse("192.168.4.0/22", &err);
  cr_assert(odd->contains(addr("192.168.7.255:1")) && !odd->contains(addr("192.168.8.0:1")));
  auto v6 = reactor::Cidr::parse("2001:db8::/33", &err);
  cr_assert(v6.has_value(), "%s", err.c_str());
  cr_assert(v6->contains(addr("[2001:db8:7fff::1]:1")) && !v6->contains(addr("[2001:db8:8000::1]:1")));
  cr_assert(!v6->contains(addr("10.0.0.1:1")));
  auto all = reactor::Cidr::parse("0.0.0.0/0", &err);
  cr_assert(all->contains(addr("203.0.113.7:1")));
}

Test(cidr, malformed_blocks_say_why, .timeout = kTimeout) {
  for (const char* text : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0/8", "example.com/8", "",
                           "10.0.0.0/-1", "10.0.0.0/0008"}) {
    std::string err;
    cr_assert(!reactor::Cidr::parse(text, &err).has_value(), "accepted \"%s\"", text);
    cr_assert(err.find(std::string("\"") + text + "\"") != std::string::npos, "%s", err.c_str());
  }
}
