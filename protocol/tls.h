#pragma once
// TLS 1.3 for reactor connections: the second reactor::Transport, inside the one
// event loop, never blocking.
//
// Two ways to authenticate the TLS session, chosen by the server's configuration:
//
//   pre-shared key (the default): both ends derive a 32-byte external PSK from the
//     shared secret with HKDF-SHA256 (salt "reactor-tls-psk-v1", info "reactor tls13
//     external psk", identity "reactor/1"), and the handshake is psk_dhe_ke only: an
//     (EC)DHE exchange on top of the key, so a later leak of the secret does not decrypt
//     recorded sessions. Nothing to configure beyond the secret file.
//   certificates: the server presents a certificate chain (--tls-cert, --tls-key) and
//     offers no PSK; the client verifies it against a CA file, the system store, or a
//     pinned public-key hash, with hostname verification.
//
// Either way TLS 1.2 and below are never negotiated (so renegotiation does not exist),
// 0-RTT is off, ALPN "reactor/1" must match, and the protocol's HMAC handshake still
// runs inside the tunnel, bound to this TLS session by its exporter
// (channel_binding()): the client is always authenticated by the shared secret, and a
// machine in the middle that terminates TLS on both sides cannot relay the proofs.
//
// Non-blocking as nginx does it (src/event/ngx_event_openssl.c): SSL_ERROR_WANT_READ or
// WANT_WRITE from any call becomes the loop interest that lets the same call go on (a
// read can wait for writability, a write for readability); bytes OpenSSL has already
// decrypted are reported through IoResult::more / has_buffered_input(), since the
// descriptor will not become readable for them; SSL_MODE_ENABLE_PARTIAL_WRITE and
// SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER let a retried write pass a moved, longer buffer;
// SSL_MODE_RELEASE_BUFFERS frees record buffers on idle connections.
//
// Zero copy only with kernel TLS: where the tls ULP is available
// (/proc/sys/net/ipv4/tcp_available_ulp) SSL_OP_ENABLE_KTLS is set, and once the
// kernel has the send keys, send_file() is SSL_sendfile(); otherwise bodies are
// encrypted in user space from the page cache, and can_send_file() is false.

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "reactor/transport.h"

namespace protocol {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslSessionFree {
  void operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

inline constexpr char kTlsAlpn[] = "reactor/1";

struct TlsServerConfig {
  std::string secret;     // the shared secret: the PSK comes from it (PSK mode)
  std::string cert_file;  // certificate mode when set: PEM chain, leaf first
  std::string key_file;   // its private key
};

struct TlsClientConfig {
  std::string secret;    // the shared secret: the PSK the client offers
  std::string host;      // the server's name or address: SNI and hostname verification
  std::string ca_file;   // trust anchors for a certificate; empty: the system store
  std::string pin;       // "sha256:HEX" of the server's public key (SubjectPublicKeyInfo)
  bool insecure = false; // accept any certificate (the HMAC handshake still authenticates)
};

// One per process and role (a new one when the secret is reloaded); makes a TlsTransport
// for each connection. Shared: each transport keeps its context alive, so a reload
// never pulls it from under a handshake in progress.
class TlsContext : public std::enable_shared_from_this<TlsContext> {
 public:
  static std::shared_ptr<TlsContext> server(const TlsServerConfig& config, std::string* err);
  static std::shared_ptr<TlsContext> client(const TlsClientConfig& config, std::string* err);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A transport for the connected, non-blocking socket `fd` (owned by the caller, open
  // while the transport lives). Null + *err if OpenSSL cannot make one.
  std::unique_ptr<reactor::Transport> wrap(int fd, std::string* err);

  bool is_server() const { return server_; }
  bool certificate_mode() const { return certificate_mode_; }
  // Whether SSL_OP_ENABLE_KTLS was set (the kernel offers the tls ULP).
  bool ktls_offered() const { return ktls_offered_; }

  // Internal, for the callbacks and the transports.
  const uint8_t* psk() const { return psk_; }
  const TlsClientConfig& client_config() const { return client_; }
  SSL_SESSION* resumable_session() const { return resumable_.get(); }
  void remember_session(SSL_SESSION* session);

 private:
  TlsContext() = default;
  bool common_setup(std::string* err);

  bool server_ = false;
  bool certificate_mode_ = false;
  bool ktls_offered_ = false;
  SslCtxPtr ctx_;
  uint8_t psk_[32] = {};
  TlsClientConfig client_;
  // The client's ticket from its last connection, offered on the next (a --retry
  // reconnect resumes instead of a full handshake).
  SslSessionPtr resumable_;
};

// The 32-byte external PSK derived from `secret` (HKDF-SHA256, see above). False +
// *err on an OpenSSL failure.
bool derive_tls_psk(const std::string& secret, uint8_t (&out)[32], std::string* err);

// Whether the kernel offers kernel TLS (the tls ULP is listed as available).
bool kernel_tls_available();

}  // namespace protocol
