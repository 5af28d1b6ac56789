#pragma once
// What the first bytes from a peer say it speaks, when they are not what was expected:
// a TLS record where a reactor frame should be (or the reverse), an HTTP request or
// response, an SSH banner, an SMTP or FTP greeting. Only a diagnosis for a clear error
// message: a listener is TLS or plain by its own configuration, never by these bytes.

#include <cstddef>
#include <string_view>

namespace protocol {

enum class PeerKind {
  kUnknown,       // too few bytes to tell, or nothing recognisable
  kReactorFrame,  // a plain reactor frame: a length below 2^24, then '{'
  kTlsRecord,     // a TLS record header: content type 20..23, version 3.x
  kHttpRequest,   // "GET ", "POST ", "HEAD ", ...
  kHttpResponse,  // "HTTP/", or an HTML page without a status line (HTTP/0.9 style,
                  // as Python's http.server answers a request it cannot parse)
  kSsh,           // "SSH-"
  kBanner220,     // "220 " or "220-": SMTP, FTP
  kMailBanner,    // "+OK" (POP3) or "* OK" (IMAP)
};

// Judges the first bytes received on a connection; more bytes give a surer answer, and
// fewer than 5 give kUnknown unless they already rule everything else out.
PeerKind sniff_peer(std::string_view first_bytes);

// "TLS", "HTTP", "SSH", "SMTP or FTP", "POP3 or IMAP", "the plain reactor protocol",
// "something else".
const char* peer_kind_name(PeerKind kind);

}  // namespace protocol
