#include "protocol/tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string_view>

#include "protocol/hex.h"
#include "protocol/peer_sniff.h"
#include "protocol/sha256.h"
#include "reactor/poller.h"

namespace protocol {
namespace {

constexpr char kPskIdentity[] = "reactor/1";
constexpr char kPskSalt[] = "reactor-tls-psk-v1";
constexpr char kPskInfo[] = "reactor tls13 external psk";
constexpr char kExporterLabel[] = "EXPORTER-reactor-auth";
constexpr size_t kRecordPlaintext = 16 * 1024;  // TLS's largest record
// With read-ahead, what OpenSSL reads from the socket at once: several records, so a
// download costs one read(2) per 64 KiB instead of two per 16 KiB record.
constexpr size_t kReadAhead = 64 * 1024;
// TLS_AES_128_GCM_SHA256: the PSK is bound to SHA-256, so the suites offered in PSK mode
// are the SHA-256 ones. AES-GCM first: with AES-NI it is the fastest on this hardware.
const unsigned char kAes128GcmSha256[] = {0x13, 0x01};
constexpr char kPskSuites[] = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kCertSuites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// Everything OpenSSL queued for this thread, as one line: "what: reason; reason".
// (An empty `what` gives just the reasons.)
std::string drain_errors(std::string_view what) {
  std::string text(what);
  bool first = true;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(code);
    if (!text.empty()) text += first ? ": " : "; ";
    text += reason != nullptr ? reason : buf;
    first = false;
  }
  return text;
}

TlsContext* context_of(SSL* ssl) { return static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl))); }

SSL_SESSION* psk_session(SSL* ssl, const uint8_t* key) {
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
  if (cipher == nullptr) return nullptr;
  SSL_SESSION* session = SSL_SESSION_new();
  if (session == nullptr) return nullptr;
  if (SSL_SESSION_set1_master_key(session, key, 32) != 1 || SSL_SESSION_set_cipher(session, cipher) != 1 ||
      SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(session);
    return nullptr;
  }
  return session;
}

// Server: the client named a PSK identity. Only ours is known; for any other the
// handshake goes on without a PSK and fails for want of a certificate, which is the
// right outcome. OpenSSL frees the session it is given.
int g_external_psk_index = -1;  // SSL ex_data: set when the external PSK was found

int find_psk(SSL* ssl, const unsigned char* identity, size_t identity_len, SSL_SESSION** session) {
  *session = nullptr;
  if (identity_len != sizeof kPskIdentity - 1 || std::memcmp(identity, kPskIdentity, identity_len) != 0) return 1;
  *session = psk_session(ssl, context_of(ssl)->psk());
  if (*session != nullptr) SSL_set_ex_data(ssl, g_external_psk_index, ssl);
  return *session != nullptr ? 1 : 0;
}

// Client: offer our PSK. On a HelloRetryRequest `md` is the hash the server chose; the
// PSK fits only SHA-256 suites.
int use_psk(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* id_len, SSL_SESSION** session) {
  *session = nullptr;
  *id = nullptr;
  *id_len = 0;
  SSL_SESSION* offered = psk_session(ssl, context_of(ssl)->psk());
  if (offered == nullptr) return 0;
  if (md != nullptr && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(offered))) {
    SSL_SESSION_free(offered);
    return 1;
  }
  *session = offered;
  *id = reinterpret_cast<const unsigned char*>(kPskIdentity);
  *id_len = sizeof kPskIdentity - 1;
  return 1;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned int in_len,
                void*) {
  static const unsigned char kWire[] = {9, 'r', 'e', 'a', 'c', 't', 'o', 'r', '/', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kWire, sizeof kWire, in, in_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol: not a reactor client
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int keep_session(SSL* ssl, SSL_SESSION* session) {
  context_of(ssl)->remember_session(session);
  return 1;  // we keep a reference
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// The first certificate problem OpenSSL met while verifying, kept per connection.
int g_verify_index = -1;

struct VerifyState {
  long error = X509_V_OK;
  int depth = 0;
};

int verify_callback(int ok, X509_STORE_CTX* store) {
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* state = static_cast<VerifyState*>(SSL_get_ex_data(ssl, g_verify_index));
  if (!ok && state != nullptr && state->error == X509_V_OK) {
    state->error = X509_STORE_CTX_get_error(store);
    state->depth = X509_STORE_CTX_get_error_depth(store);
  }
  const TlsClientConfig& config = context_of(ssl)->client_config();
  // A pin replaces the chain and the name: checked after the handshake instead.
  if (config.insecure || !config.pin.empty()) return 1;
  return ok;
}

// "sha256:" and 64 hex digits of SHA-256 over the DER SubjectPublicKeyInfo.
std::string public_key_pin(X509* cert) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) return {};
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return {};
  Digest digest = sha256(der, static_cast<size_t>(len));
  OPENSSL_free(der);
  return "sha256:" + to_hex(digest);
}

class TlsTransport final : public reactor::Transport {
 public:
  TlsTransport(std::shared_ptr<TlsContext> context, int fd, SslPtr ssl, bool offered_ticket)
      : context_holder_(std::move(context)), context_(*context_holder_), fd_(fd), ssl_(std::move(ssl)),
        offered_ticket_(offered_ticket) {
    SSL_set_ex_data(ssl_.get(), g_verify_index, &verify_);
  }

  // OpenSSL takes a session freed without a shutdown for a broken one and will not
  // resume it: mark it shut down. A connection that ends well has already sent its
  // close_notify (shutdown_write); any other ends quietly, never waiting on the peer.
  ~TlsTransport() override {
    if ((SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) == 0) SSL_set_shutdown(ssl_.get(), SSL_SENT_SHUTDOWN);
  }

  Handshake handshake(std::string* err) override {
    if (!context_.is_server() && !hello_sent_) return send_client_hello(err);
    if (!sniffed_ && !sniff_first_bytes(err)) return Handshake::kFailed;
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_.get());
    if (rc == 1) {
      if (!after_handshake(err)) return Handshake::kFailed;
      return Handshake::kDone;
    }
    return handshake_step_failed(SSL_get_error(ssl_.get(), rc), err);
  }

  // A handshake step that did not finish: wait for what OpenSSL wants, or fail.
  Handshake handshake_step_failed(int code, std::string* err) {
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
      handshake_interest_ = code == SSL_ERROR_WANT_READ ? reactor::kReadable : reactor::kWritable;
      return Handshake::kAgain;
    }
    *err = describe_failure(code);
    return Handshake::kFailed;
  }

  uint32_t handshake_interest() const override { return handshake_interest_; }
  reactor::HandshakeFailure handshake_failure() const override { return failure_; }
  std::string peer_bytes() const override { return peer_bytes_; }

  reactor::IoResult read(reactor::Buffer& in, size_t max) override {
    reactor::IoResult r;
    // One call returns at most one record (16 KiB of plaintext); read-ahead (see
    // common_setup) makes each of OpenSSL's own reads from the socket much bigger.
    size_t room = in.max_size() - in.readable();
    size_t want = std::min<size_t>({max, room, kRecordPlaintext});
    char* dst = want == 0 ? nullptr : in.begin_write(want);
    if (dst == nullptr) {
      r.bytes = -1;
      r.error = room == 0 ? EMSGSIZE : EAGAIN;
      return r;
    }
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(ssl_.get(), dst, std::min(want, in.writable()), &got) == 1) {
      in.commit(got);
      read_interest_ = reactor::kReadable;
      r.bytes = static_cast<ssize_t>(got);
      r.more = SSL_has_pending(ssl_.get()) == 1 || got == want;
      return r;
    }
    return failed_io(SSL_get_error(ssl_.get(), 0), &read_interest_, reactor::kReadable, /*reading=*/true);
  }

  reactor::IoResult write(reactor::Buffer& out, size_t max) override {
    reactor::IoResult r;
    size_t n = std::min(out.readable(), max);
    if (n == 0) return r;
    size_t written = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(ssl_.get(), out.peek(), n, &written) == 1) {
      out.consume(written);
      write_interest_ = reactor::kWritable;
      r.bytes = static_cast<ssize_t>(written);
      return r;
    }
    return failed_io(SSL_get_error(ssl_.get(), 0), &write_interest_, reactor::kWritable, /*reading=*/false);
  }

  uint32_t read_interest() const override { return read_interest_; }
  uint32_t write_interest() const override { return write_interest_; }
  bool has_buffered_input() const override { return SSL_has_pending(ssl_.get()) == 1; }

  bool can_send_file() const override { return ktls_send_; }

  reactor::IoResult send_file(int file_fd, uint64_t* offset, size_t len) override {
    reactor::IoResult r;
    if (!ktls_send_) {
      r.bytes = -1;
      r.error = EOPNOTSUPP;
      return r;
    }
    ERR_clear_error();
    ossl_ssize_t n = SSL_sendfile(ssl_.get(), file_fd, static_cast<off_t>(*offset), len, 0);
    if (n > 0) {
      *offset += static_cast<uint64_t>(n);
      r.bytes = n;
      return r;
    }
    int code = SSL_get_error(ssl_.get(), static_cast<int>(n));
    if (code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ) {
      r.bytes = -1;
      r.error = EAGAIN;
      return r;
    }
    r.bytes = -1;
    r.error = errno != 0 ? errno : EIO;
    return r;
  }

  bool shutdown_write(std::string* err) override {
    // close_notify, best effort and never waited for (nginx's quiet shutdown on the
    // error path is the same idea); then the socket's own end of stream.
    if (SSL_is_init_finished(ssl_.get())) {
      ERR_clear_error();
      SSL_shutdown(ssl_.get());
      ERR_clear_error();
    }
    if (::shutdown(fd_, SHUT_WR) != 0) {
      if (err != nullptr) *err = std::string("shutdown: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  bool channel_binding(std::array<uint8_t, 32>* out) const override {
    return SSL_is_init_finished(ssl_.get()) &&
           SSL_export_keying_material(ssl_.get(), out->data(), out->size(), kExporterLabel,
                                      sizeof kExporterLabel - 1, nullptr, 0, 0) == 1;
  }

  bool authenticates_peer() const override { return true; }
  // Asks the socket as well as our own record of reads: a loaded server may not have
  // read yet from a socket whose ClientHello has long been waiting in the kernel, and
  // such a client is no silent plain one.
  bool awaiting_first_byte() const override {
    if (!context_.is_server() || seen_a_byte_) return false;
    char first;
    return ::recv(fd_, &first, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  std::string describe() const override { return description_; }
  std::string last_error() const override { return last_error_; }
  const char* name() const override { return "tls"; }

 private:
  // The client's first step writes its ClientHello, and OpenSSL would then read whatever
  // the server has sent at once. A plain server greets first, so that read could swallow
  // a plain frame before sniff_first_bytes() can see it: the first step reads from an
  // empty memory BIO instead, and the socket is back for every later step.
  Handshake send_client_hello(std::string* err) {
    hello_sent_ = true;
    BIO* socket_bio = SSL_get_rbio(ssl_.get());
    BIO* empty = BIO_new(BIO_s_mem());
    if (empty == nullptr || BIO_up_ref(socket_bio) != 1) {
      BIO_free(empty);
      *err = drain_errors("");
      return Handshake::kFailed;
    }
    BIO_set_mem_eof_return(empty, -1);  // "nothing yet", not end of stream
    SSL_set0_rbio(ssl_.get(), empty);
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_.get());
    int code = SSL_get_error(ssl_.get(), rc);
    SSL_set0_rbio(ssl_.get(), socket_bio);  // frees the memory BIO, takes our reference
    return handshake_step_failed(code, err);
  }

  // Before OpenSSL reads a byte: if the peer's first bytes are not a TLS record at all,
  // say what they are instead of "wrong version number".
  bool sniff_first_bytes(std::string* err) {
    char first[16];  // enough for the longest prefix sniff_peer knows ("<!DOCTYPE")
    ssize_t n = ::recv(fd_, first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
    if (n != 0) seen_a_byte_ = seen_a_byte_ || n > 0;
    if (n <= 0) {
      // Nothing yet (a server waits for the ClientHello; a client has not sent its own):
      // look again next time; an end of stream is OpenSSL's to report.
      if (n == 0) sniffed_ = true;
      return true;
    }
    PeerKind kind = sniff_peer(std::string_view(first, static_cast<size_t>(n)));
    if (kind == PeerKind::kTlsRecord || kind == PeerKind::kUnknown) {
      // Unknown bytes may still be TLS that OpenSSL can judge better; too few to tell is
      // left to it as well (a record header needs 3).
      sniffed_ = true;
      return true;
    }
    sniffed_ = true;
    failure_ = reactor::HandshakeFailure::kWrongProtocol;
    // Keep what is there: a plain frame may be an error worth reporting as such.
    char frame[4 + 8192];
    ssize_t got = ::recv(fd_, frame, sizeof frame, MSG_PEEK | MSG_DONTWAIT);
    if (got > 0) peer_bytes_.assign(frame, static_cast<size_t>(got));
    *err = std::string("speaks ") + peer_kind_name(kind) + ", not TLS";
    return false;
  }

  bool after_handshake(std::string* err) {
    const TlsClientConfig& config = context_.client_config();
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    if (!context_.is_server() && cert != nullptr && !config.pin.empty()) {
      std::string pin = public_key_pin(cert);
      if (pin.empty() || !pin_matches(pin, config.pin)) {
        failure_ = reactor::HandshakeFailure::kCertificate;
        *err = "its public key " + pin + " does not match the pin " + config.pin;
        return false;
      }
    }
    ktls_send_ = BIO_get_ktls_send(SSL_get_wbio(ssl_.get())) != 0;
    char group[64] = "none";
    int nid = static_cast<int>(SSL_get_negotiated_group(ssl_.get()));
    if (nid != 0 && nid != NID_undef) {
      const char* text = SSL_group_to_name(ssl_.get(), nid);
      if (text != nullptr) std::snprintf(group, sizeof group, "%s", text);
    }
    // OpenSSL counts an external PSK as a reused session too: a resumption is a reuse
    // without it (server), or one after offering a ticket (client: a server takes the
    // ticket before the external key when both are valid).
    bool reused = SSL_session_reused(ssl_.get()) == 1;
    bool resumed = context_.is_server() ? reused && SSL_get_ex_data(ssl_.get(), g_external_psk_index) == nullptr
                                        : reused && offered_ticket_;
    bool certificate = context_.is_server() ? context_.certificate_mode() : cert != nullptr;
    const char* auth = certificate ? "certificate" : "pre-shared key";
    description_ = std::string(SSL_get_version(ssl_.get())) + " " + SSL_get_cipher_name(ssl_.get()) + " " + group +
                   ", " + auth + (resumed ? ", resumed" : "") +
                   (ktls_send_ ? ", kernel TLS" : ", user-space encryption");
    return true;
  }

  static bool pin_matches(const std::string& actual, const std::string& wanted) {
    if (actual.size() != wanted.size()) return false;
    for (size_t i = 0; i < actual.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(actual[i])) != std::tolower(static_cast<unsigned char>(wanted[i])))
        return false;
    return true;
  }

  // The OpenSSL reason text ("tlsv1 alert decrypt error"), with the kind of failure
  // worked out for the layer above, which names the peer.
  std::string describe_failure(int code) {
    if (code == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      int errnum = errno;
      return errnum != 0 ? std::strerror(errnum) : "the peer closed the connection";
    }
    unsigned long first = ERR_peek_error();
    int reason = ERR_GET_REASON(first);
    std::string text = drain_errors("");
    if (first == 0) text = "the connection ended during the handshake";
    if (verify_.error != X509_V_OK) {
      failure_ = reactor::HandshakeFailure::kCertificate;
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify_.error) + " (depth " +
             std::to_string(verify_.depth) + "); use --tls-ca, --tls-pin or --insecure";
    }
    // A wrong key shows as a bad binder on the server, which answers with an
    // illegal_parameter alert (decrypt_error in some versions) to a client that offered
    // our PSK: both mean the two ends do not share the secret.
    bool offered_psk = !context_.is_server() && context_.client_config().ca_file.empty() &&
                       context_.client_config().pin.empty();
    if (reason == SSL_R_BINDER_DOES_NOT_VERIFY || reason == SSL_AD_REASON_OFFSET + SSL_AD_DECRYPT_ERROR ||
        (offered_psk && reason == SSL_AD_REASON_OFFSET + SSL_AD_ILLEGAL_PARAMETER)) {
      failure_ = reactor::HandshakeFailure::kAuthentication;
    } else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
               reason == SSL_R_RECORD_LENGTH_MISMATCH || reason == SSL_R_NO_APPLICATION_PROTOCOL ||
               reason == SSL_AD_REASON_OFFSET + SSL_AD_NO_APPLICATION_PROTOCOL) {
      failure_ = reactor::HandshakeFailure::kWrongProtocol;
    }
    return text;
  }

  reactor::IoResult failed_io(int code, uint32_t* interest, uint32_t normal, bool reading) {
    int saved_errno = errno;
    reactor::IoResult r;
    r.bytes = -1;
    switch (code) {
      case SSL_ERROR_WANT_READ:
        *interest = reactor::kReadable;
        r.error = EAGAIN;
        return r;
      case SSL_ERROR_WANT_WRITE:
        *interest = reactor::kWritable;
        r.error = EAGAIN;
        return r;
      case SSL_ERROR_ZERO_RETURN:  // close_notify: a clean end of stream
        *interest = normal;
        r.bytes = reading ? 0 : -1;
        r.error = reading ? 0 : EPIPE;
        return r;
      case SSL_ERROR_SYSCALL:
        *interest = normal;
        r.error = saved_errno != 0 ? saved_errno : (reading ? 0 : EPIPE);
        if (reading && r.error == 0) r.bytes = 0;  // end of stream without close_notify
        ERR_clear_error();
        return r;
      default:
        // A record that failed to decrypt (a flipped bit), a protocol violation: the
        // connection cannot go on.
        *interest = normal;
        r.error = EPROTO;
        last_error_ = drain_errors("tls");
        return r;
    }
  }

  std::shared_ptr<TlsContext> context_holder_;
  TlsContext& context_;
  int fd_;
  SslPtr ssl_;
  VerifyState verify_;
  bool sniffed_ = false;
  bool hello_sent_ = false;
  bool seen_a_byte_ = false;
  bool offered_ticket_ = false;
  bool ktls_send_ = false;
  reactor::HandshakeFailure failure_ = reactor::HandshakeFailure::kOther;
  uint32_t handshake_interest_ = reactor::kReadable;
  uint32_t read_interest_ = reactor::kReadable;
  uint32_t write_interest_ = reactor::kWritable;
  std::string description_ = "tls";
  std::string peer_bytes_;
  std::string last_error_;
};

bool read_whole_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

bool kernel_tls_available() {
  std::string ulps;
  if (!read_whole_file("/proc/sys/net/ipv4/tcp_available_ulp", &ulps)) return false;
  size_t pos = 0;
  while ((pos = ulps.find("tls", pos)) != std::string::npos) {
    bool start = pos == 0 || ulps[pos - 1] == ' ';
    bool end = pos + 3 == ulps.size() || ulps[pos + 3] == ' ' || ulps[pos + 3] == '\n';
    if (start && end) return true;
    pos += 3;
  }
  return false;
}

bool derive_tls_psk(const std::string& secret, uint8_t (&out)[32], std::string* err) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), &EVP_KDF_free);
  if (!kdf) {
    *err = drain_errors("HKDF");
    return false;
  }
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()), &EVP_KDF_CTX_free);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kPskSalt), sizeof kPskSalt - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kPskInfo), sizeof kPskInfo - 1),
      OSSL_PARAM_construct_end(),
  };
  if (!ctx || EVP_KDF_derive(ctx.get(), out, sizeof out, params) != 1) {
    *err = drain_errors("HKDF");
    return false;
  }
  return true;
}

TlsContext::~TlsContext() { OPENSSL_cleanse(psk_, sizeof psk_); }

void TlsContext::remember_session(SSL_SESSION* session) { resumable_.reset(session); }

bool TlsContext::common_setup(std::string* err) {
  if (g_verify_index < 0) g_verify_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  if (g_external_psk_index < 0) g_external_psk_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  ctx_.reset(SSL_CTX_new(server_ ? TLS_server_method() : TLS_client_method()));
  if (!ctx_) {
    *err = drain_errors("SSL_CTX_new");
    return false;
  }
  SSL_CTX* ctx = ctx_.get();
  SSL_CTX_set_app_data(ctx, this);
  // TLS 1.3 only: no renegotiation, no legacy suites, no downgrade.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    *err = drain_errors("TLS 1.3");
    return false;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, kReadAhead);
  // psk_dhe_ke only: never SSL_OP_ALLOW_NO_DHE_KEX. No 0-RTT: a replayable request has no
  // place in a file transfer. An end of stream without close_notify reads as an end of
  // stream; the frames above say whether anything was cut short.
  SSL_CTX_set_max_early_data(ctx, 0);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  ktls_offered_ = kernel_tls_available();
  if (ktls_offered_) SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
  return true;
}

std::shared_ptr<TlsContext> TlsContext::server(const TlsServerConfig& config, std::string* err) {
  std::shared_ptr<TlsContext> context(new TlsContext());
  context->server_ = true;
  context->certificate_mode_ = !config.cert_file.empty();
  if (!context->common_setup(err)) return nullptr;
  SSL_CTX* ctx = context->ctx_.get();
  if (context->certificate_mode_) {
    if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
      *err = drain_errors("load certificate \"" + config.cert_file + "\"");
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      unsigned long code = ERR_peek_last_error();
      *err = ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH
                 ? drain_errors("\"" + config.key_file + "\" is not the key of \"" + config.cert_file + "\"")
                 : drain_errors("load private key \"" + config.key_file + "\"");
      return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      *err = drain_errors("\"" + config.key_file + "\" is not the key of \"" + config.cert_file + "\"");
      return nullptr;
    }
    SSL_CTX_set_ciphersuites(ctx, kCertSuites);
  } else {
    if (!derive_tls_psk(config.secret, context->psk_, err)) return nullptr;
    SSL_CTX_set_psk_find_session_callback(ctx, find_psk);
    SSL_CTX_set_ciphersuites(ctx, kPskSuites);
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  // One ticket per connection: enough for a client's next reconnect (--retry).
  SSL_CTX_set_num_tickets(ctx, 1);
  return context;
}

std::shared_ptr<TlsContext> TlsContext::client(const TlsClientConfig& config, std::string* err) {
  std::shared_ptr<TlsContext> context(new TlsContext());
  context->client_ = config;
  if (!context->common_setup(err)) return nullptr;
  SSL_CTX* ctx = context->ctx_.get();
  if (!derive_tls_psk(config.secret, context->psk_, err)) return nullptr;
  // The PSK is offered unless the user asked for a certificate explicitly; a server in
  // certificate mode ignores it and presents its chain, which is then verified.
  if (config.ca_file.empty() && config.pin.empty()) SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
  SSL_CTX_set_ciphersuites(ctx, kCertSuites);
  if (!config.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr) != 1) {
      *err = drain_errors("load CA file \"" + config.ca_file + "\"");
      return nullptr;
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    ERR_clear_error();  // no system store: only a pin, --insecure or PSK can then work
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_callback);
  static const unsigned char kWire[] = {9, 'r', 'e', 'a', 'c', 't', 'o', 'r', '/', '1'};
  if (SSL_CTX_set_alpn_protos(ctx, kWire, sizeof kWire) != 0) {
    *err = drain_errors("ALPN");
    return nullptr;
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, keep_session);
  return context;
}

std::unique_ptr<reactor::Transport> TlsContext::wrap(int fd, std::string* err) {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    *err = drain_errors("SSL_new");
    return nullptr;
  }
  if (server_) {
    SSL_set_accept_state(ssl.get());
  } else {
    SSL_set_connect_state(ssl.get());
    const std::string& host = client_.host;
    if (!host.empty()) {
      if (is_ip_literal(host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
      } else {
        // SSL_set_tlsext_host_name is a macro with a cast to void* inside.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
        SSL_set_tlsext_host_name(ssl.get(), host.c_str());
#pragma GCC diagnostic pop
        SSL_set1_host(ssl.get(), host.c_str());
      }
    }
  }
  bool offered_ticket = !server_ && resumable_ && SSL_set_session(ssl.get(), resumable_.get()) == 1;
  return std::make_unique<TlsTransport>(shared_from_this(), fd, std::move(ssl), offered_ticket);
}

}  // namespace protocol
