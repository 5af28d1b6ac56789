// protocol/peer_sniff: what the first bytes of a peer of the wrong kind say it is, for
// the error message that names it ("127.0.0.1:22 speaks SSH, not the reactor protocol").

#include <criterion/criterion.h>

#include <string>

#include "protocol/peer_sniff.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary (see test_hex.cc).
constexpr double kTimeout = 10;

using protocol::PeerKind;
using protocol::peer_kind_name;
using protocol::sniff_peer;

namespace {
void expect_kind(const std::string& bytes, PeerKind kind, const char* name) {
  PeerKind got = sniff_peer(bytes);
  cr_expect(got == kind, "%s: got %s", bytes.substr(0, 20).c_str(), peer_kind_name(got));
  const std::string got_name = peer_kind_name(got);
  cr_expect_str_eq(got_name.c_str(), name);
}
}  // namespace

Test(peer_sniff, names_the_common_wrong_peers, .timeout = kTimeout) {
  expect_kind(std::string("\x16\x03\x01\x02\x00\x01\x00", 7), PeerKind::kTlsRecord, "TLS");  // ClientHello
  expect_kind(std::string("\x15\x03\x03\x00\x02\x02\x46", 7), PeerKind::kTlsRecord, "TLS");  // an alert
  expect_kind("HTTP/1.1 400 Bad Request\r\n", PeerKind::kHttpResponse, "HTTP");
  expect_kind("GET / HTTP/1.1\r\n", PeerKind::kHttpRequest, "HTTP");
  expect_kind("POST /x HTTP/1.1\r\n", PeerKind::kHttpRequest, "HTTP");
  // Python's http.server answers a request it cannot parse with a bare HTML page.
  expect_kind("<!DOCTYPE HTML>\n<html lang=\"en\">", PeerKind::kHttpResponse, "HTTP");
  expect_kind("<html><body>", PeerKind::kHttpResponse, "HTTP");
  expect_kind("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", PeerKind::kSsh, "SSH");
  expect_kind("220 mail.example.org ESMTP Postfix\r\n", PeerKind::kBanner220, "SMTP or FTP");
  expect_kind("220-FileZilla Server\r\n", PeerKind::kBanner220, "SMTP or FTP");
  expect_kind("+OK Dovecot ready.\r\n", PeerKind::kMailBanner, "POP3 or IMAP");
  expect_kind("* OK [CAPABILITY IMAP4rev1] ready\r\n", PeerKind::kMailBanner, "POP3 or IMAP");
  expect_kind(std::string("\x00\x00\x00\x2a{\"type\":\"hello\"", 20), PeerKind::kReactorFrame,
              "the plain reactor protocol");
}

Test(peer_sniff, little_or_nothing_recognisable_is_unknown, .timeout = kTimeout) {
  expect_kind("", PeerKind::kUnknown, "something else");
  expect_kind("GE", PeerKind::kUnknown, "something else");
  expect_kind("hello there", PeerKind::kUnknown, "something else");
  // A TLS-like type byte with a version that is not 3.x, and a length too big for a
  // reactor header: neither.
  expect_kind(std::string("\x16\x04\x01\x00\x10", 5), PeerKind::kUnknown, "something else");
  expect_kind(std::string("\x00\x05\x00\x00{", 5), PeerKind::kUnknown, "something else");
  expect_kind("get / http/1.1", PeerKind::kUnknown, "something else");  // methods are upper case
}
