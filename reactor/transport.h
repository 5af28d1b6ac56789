#pragma once
// Transport: how a connection's bytes cross its descriptor. The framed stream above it
// (protocol/framed_stream.h) owns the descriptor, both Buffers and the decoder, and
// calls only these few operations; a transport owns none of that, only what it needs
// to move bytes (nothing for a plain socket; an SSL object for TLS).
//
// The shape is the one a non-blocking TLS implementation needs, after nginx's
// ngx_event_openssl.c:
//   - read() and write() report EAGAIN when they cannot go on, and read_interest() /
//     write_interest() then say which readiness lets them continue. For a plain socket
//     that is kReadable and kWritable; a TLS read can need the socket writable (a
//     record to flush first) and a TLS write readable.
//   - Bytes the transport has taken from the kernel but not yet returned (SSL_pending)
//     never make the descriptor readable again: IoResult::more says "call read() again
//     before waiting", and has_buffered_input() says the same between wakeups.
//   - handshake() runs whatever must happen before application bytes flow (nothing for
//     a plain socket).
//   - send_file() is zero copy where the transport can offer it (a plain socket
//     through sendfile(2); TLS only with kernel TLS); can_send_file() says whether it
//     can, so callers never special-case a transport by name.
//
// Every call is non-blocking, retries EINTR, and never raises SIGPIPE.

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "reactor/buffer.h"

namespace reactor {

struct IoResult {
  // > 0: bytes moved. 0: end of stream (read only; a clean close for TLS). -1: see error.
  ssize_t bytes = 0;
  // With bytes == -1: EAGAIN (wait for the matching interest), or what the connection
  // failed with (ECONNRESET, EPIPE, EPROTO for a TLS failure, ...).
  int error = 0;
  // Reads: the transport may have more at once (the read filled what was asked, or the
  // transport holds bytes already): call again before waiting for readiness.
  bool more = false;
};

// Why a handshake failed, for the words and the exit status above.
enum class HandshakeFailure {
  kOther,           // a protocol error, a reset, ...
  kAuthentication,  // the peers do not share the secret (a TLS pre-shared key mismatch)
  kCertificate,     // the server's certificate was refused: untrusted, expired, wrong name, wrong pin
  kWrongProtocol,   // the peer does not speak this transport (plain against TLS, HTTP, SSH, ...)
};

class Transport {
 public:
  enum class Handshake { kDone, kAgain, kFailed };

  virtual ~Transport() = default;

  // Drives the opening handshake; kAgain: wait for handshake_interest(). kFailed: *err
  // says why and handshake_failure() what kind of failure it was. A transport without a
  // handshake returns kDone at once.
  virtual Handshake handshake(std::string* err) = 0;
  virtual uint32_t handshake_interest() const = 0;
  virtual HandshakeFailure handshake_failure() const { return HandshakeFailure::kOther; }
  // After kWrongProtocol: the first bytes the peer sent (up to a few KiB), for the layer
  // above to read what it may be saying in a protocol it knows (a plain reactor server
  // turning a TLS client away with a busy frame).
  virtual std::string peer_bytes() const { return {}; }

  // After the handshake: 32 bytes unique to this connection's security session, for
  // binding an authentication exchange above to it (RFC 9266's idea); false when the
  // transport has none (plain).
  virtual bool channel_binding(std::array<uint8_t, 32>* out) const {
    (void)out;
    return false;
  }
  // Whether the handshake authenticates the peer (TLS with a pre-shared key or a
  // certificate): a failed handshake is then a failed authentication.
  virtual bool authenticates_peer() const { return false; }
  // A server-side transport whose handshake has not seen a single byte from the peer
  // (a TLS listener waiting for a ClientHello from a client that speaks first only in
  // TLS): lets the server tell a silent, plain client what is wrong.
  virtual bool awaiting_first_byte() const { return false; }
  // What protects the bytes, for logs: "plain", "TLSv1.3 TLS_AES_128_GCM_SHA256 x25519 ...".
  virtual std::string describe() const { return name(); }
  // After a read or write failed with EPROTO: the transport's own words for it ("tls:
  // decryption failed or bad record mac"). Empty when errno says it all.
  virtual std::string last_error() const { return {}; }

  // Appends at most `max` bytes (and at least 1 if any are ready) to `in`.
  virtual IoResult read(Buffer& in, size_t max) = 0;
  // Writes and consumes at most `max` of out's readable bytes.
  virtual IoResult write(Buffer& out, size_t max) = 0;
  virtual uint32_t read_interest() const = 0;
  virtual uint32_t write_interest() const = 0;
  virtual bool has_buffered_input() const = 0;

  virtual bool can_send_file() const = 0;
  // At most `len` bytes of `file_fd` from *offset, advancing it. 0: nothing left in the
  // file at *offset (it shrank). -1 with error: EAGAIN (socket full), EINVAL/ENOSYS/
  // EOPNOTSUPP (the file cannot be sent this way: copy it instead), EIO (reading the
  // file failed), or the connection's own failure.
  virtual IoResult send_file(int file_fd, uint64_t* offset, size_t len) = 0;

  // Ends the sending direction once everything written so far is through: the peer
  // reads end of stream. Best effort; false + *err if the call failed.
  virtual bool shutdown_write(std::string* err) = 0;

  // "plain", "tls": for logs.
  virtual const char* name() const = 0;
};

// The plain transport: send/recv on a connected, non-blocking stream socket, which the
// caller owns and keeps open for as long as the transport uses it. Small enough to be
// embedded (a FramedStream holds one, so a plain connection allocates nothing for it).
class SocketTransport final : public Transport {
 public:
  explicit SocketTransport(int fd = -1) : fd_(fd) {}
  void set_fd(int fd) { fd_ = fd; }

  Handshake handshake(std::string*) override { return Handshake::kDone; }
  uint32_t handshake_interest() const override { return 0; }
  IoResult read(Buffer& in, size_t max) override;
  IoResult write(Buffer& out, size_t max) override;
  uint32_t read_interest() const override;
  uint32_t write_interest() const override;
  bool has_buffered_input() const override { return false; }
  bool can_send_file() const override { return true; }
  IoResult send_file(int file_fd, uint64_t* offset, size_t len) override;
  bool shutdown_write(std::string* err) override;
  const char* name() const override { return "plain"; }

 private:
  int fd_;
};

std::unique_ptr<Transport> make_socket_transport(int fd);

}  // namespace reactor
