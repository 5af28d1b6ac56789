#include "protocol/peer_sniff.h"

namespace protocol {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

PeerKind sniff_peer(std::string_view b) {
  if (b.size() >= 3) {
    auto type = static_cast<unsigned char>(b[0]);
    auto major = static_cast<unsigned char>(b[1]);
    auto minor = static_cast<unsigned char>(b[2]);
    // change_cipher_spec, alert, handshake, application_data; SSL 3.0 to TLS 1.3 all
    // carry 3.x in the record header.
    if (type >= 20 && type <= 23 && major == 3 && minor <= 4) return PeerKind::kTlsRecord;
  }
  if (starts_with(b, "HTTP/")) return PeerKind::kHttpResponse;
  for (std::string_view page : {"<!DOCTYPE", "<!doctype", "<html", "<HTML"})
    if (starts_with(b, page)) return PeerKind::kHttpResponse;
  for (std::string_view method : {"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "PATCH "})
    if (starts_with(b, method)) return PeerKind::kHttpRequest;
  if (starts_with(b, "SSH-")) return PeerKind::kSsh;
  if (starts_with(b, "220 ") || starts_with(b, "220-")) return PeerKind::kBanner220;
  if (starts_with(b, "+OK") || starts_with(b, "* OK")) return PeerKind::kMailBanner;
  // A reactor frame: 4-byte big-endian length (headers are at most 64 KiB, so the first
  // byte is 0 and the second at most 1), then the JSON object's '{'.
  if (b.size() >= 5 && b[0] == 0 && static_cast<unsigned char>(b[1]) <= 1 && b[4] == '{') return PeerKind::kReactorFrame;
  return PeerKind::kUnknown;
}

const char* peer_kind_name(PeerKind kind) {
  switch (kind) {
    case PeerKind::kReactorFrame: return "the plain reactor protocol";
    case PeerKind::kTlsRecord: return "TLS";
    case PeerKind::kHttpRequest:
    case PeerKind::kHttpResponse: return "HTTP";
    case PeerKind::kSsh: return "SSH";
    case PeerKind::kBanner220: return "SMTP or FTP";
    case PeerKind::kMailBanner: return "POP3 or IMAP";
    case PeerKind::kUnknown: break;
  }
  return "something else";
}

}  // namespace protocol
