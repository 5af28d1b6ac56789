#pragma once
// A blocking client socket for protocol tests: raw bytes and frames in, frames out, every
// read bounded by a timeout. It frames and authenticates by itself (hmac_auth.h), without
// protocol/, so that it doubles as an independent implementation of the wire contract.

#include <cjson/cJSON.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tests/support/deadline.h"
#include "tests/support/fd.h"

namespace testsupport {

using JsonPtr = std::unique_ptr<cJSON, void (*)(cJSON*)>;

struct Frame {
  std::string header;  // the JSON text as received
  std::string body;

  // cJSON parse of header; null if it is not JSON.
  JsonPtr parse() const;
  // The top-level "type" (empty if absent or not a string).
  std::string type() const;
  // "code" of an error frame (empty if absent).
  std::string code() const;
  // A top-level field of the given JSON type; nullopt if absent or of another type.
  std::optional<std::string> string_field(std::string_view key) const;
  std::optional<double> number_field(std::string_view key) const;
  bool has_field(std::string_view key) const;
};

enum class ReadStatus {
  kOk,        // a whole frame (or all bytes asked for)
  kEof,       // the peer closed before the first byte of the frame
  kReset,     // ECONNRESET
  kTimeout,   // nothing complete within the timeout; bytes read so far stay buffered
  kError,     // other socket error, or EOF in the middle of a frame
  kBadFrame,  // header not JSON, bad "body" field, or header/body over the limits
};
const char* to_string(ReadStatus status);

struct ReadResult {
  ReadStatus status = ReadStatus::kError;
  Frame frame;
  std::string error;  // for kError / kBadFrame / kReset

  bool ok() const { return status == ReadStatus::kOk; }
  bool closed() const { return status == ReadStatus::kEof || status == ReadStatus::kReset; }
  // "ok: {header}", "eof", "timeout", "error: why" - for assertion messages.
  std::string describe() const;
};

struct HandshakeResult {
  bool ok = false;
  std::string error;  // why it failed; for a refusal, includes the error frame
  Frame hello;        // the server's hello (if received)
  Frame reply;        // auth_ok or error (if received)
};

// 4-byte big-endian N.
std::string be32(uint32_t n);
// be32(header.size()) + header + body.
std::string encode_frame(std::string_view header, std::string_view body = {});

class RawClient {
 public:
  static constexpr uint32_t kMaxHeader = 16u << 20;  // far above the contract's 65536

  RawClient() = default;
  // Adopts a connected stream socket (e.g. one end of a socketpair).
  explicit RawClient(Fd fd);
  RawClient(RawClient&&) noexcept = default;
  RawClient& operator=(RawClient&&) noexcept = default;
  ~RawClient() = default;

  // "127.0.0.1:PORT" or "[::1]:PORT"; the connect itself is bounded by timeout.
  bool connect(const std::string& address, Millis timeout = Millis(5000),
               std::string* err = nullptr);
  bool connected() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  // SO_SNDTIMEO for the sends below (default 10 s).
  void set_send_timeout(Millis timeout);

  // All of BYTES, or false (*err: "send: Broken pipe", "send: timed out", ...).
  bool send_raw(std::string_view bytes, std::string* err = nullptr);
  bool send_frame(std::string_view header_json, std::string_view body = {},
                  std::string* err = nullptr);

  // One frame: length, header, then "body" bytes as the header declares.
  ReadResult read_frame(Millis timeout = Millis(5000), uint64_t max_body = uint64_t{1} << 30);
  // Exactly N raw bytes into *out (kOk), or fewer and the reason.
  ReadStatus read_bytes(size_t n, std::string* out, Millis timeout = Millis(5000));
  // Reads and discards (or appends to *received) until the peer closes: true on EOF or
  // reset, false on timeout or another error.
  bool read_until_closed(Millis timeout = Millis(5000), std::string* received = nullptr);
  // Bytes received but not consumed yet.
  size_t buffered() const { return pending_.size(); }

  // The contract's mutual HMAC handshake: read hello, send auth, check auth_ok's mac.
  // `proto`: the version the auth offers (2 for uploads); its features then include put.
  HandshakeResult handshake(std::string_view secret, Millis timeout = Millis(5000), int proto = 1);

  bool shutdown_write();
  void close() { fd_.reset(); }
  // Close with RST (SO_LINGER 0), as an abruptly vanishing client does.
  void abort();

 private:
  // Makes pending_ at least N bytes long.
  ReadStatus fill(size_t n, const Deadline& deadline, std::string* error);

  Fd fd_;
  std::string pending_;
};

}  // namespace testsupport
