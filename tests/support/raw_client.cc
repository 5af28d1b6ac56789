#include "tests/support/raw_client.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "tests/support/address.h"
#include "tests/support/hmac_auth.h"

namespace testsupport {
namespace {

constexpr size_t kRecvChunk = 64 * 1024;
constexpr double kMaxSafeInteger = 9007199254740992.0;  // 2^53

void no_delete(cJSON*) {}

timeval to_timeval(Millis ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

const cJSON* field(const cJSON* obj, std::string_view key) {
  if (!obj || !cJSON_IsObject(obj)) return nullptr;
  return cJSON_GetObjectItemCaseSensitive(obj, std::string(key).c_str());
}

}  // namespace

JsonPtr Frame::parse() const {
  cJSON* json = cJSON_ParseWithLength(header.data(), header.size());
  if (!json) return JsonPtr(nullptr, no_delete);
  return JsonPtr(json, cJSON_Delete);
}

std::optional<std::string> Frame::string_field(std::string_view key) const {
  JsonPtr json = parse();
  const cJSON* item = field(json.get(), key);
  if (!item || !cJSON_IsString(item) || !item->valuestring) return std::nullopt;
  return std::string(item->valuestring);
}

std::optional<double> Frame::number_field(std::string_view key) const {
  JsonPtr json = parse();
  const cJSON* item = field(json.get(), key);
  if (!item || !cJSON_IsNumber(item)) return std::nullopt;
  return item->valuedouble;
}

bool Frame::has_field(std::string_view key) const {
  JsonPtr json = parse();
  return field(json.get(), key) != nullptr;
}

std::string Frame::type() const { return string_field("type").value_or(""); }
std::string Frame::code() const { return string_field("code").value_or(""); }

const char* to_string(ReadStatus status) {
  switch (status) {
    case ReadStatus::kOk: return "ok";
    case ReadStatus::kEof: return "eof";
    case ReadStatus::kReset: return "reset";
    case ReadStatus::kTimeout: return "timeout";
    case ReadStatus::kError: return "error";
    case ReadStatus::kBadFrame: return "bad frame";
  }
  return "?";
}

std::string ReadResult::describe() const {
  std::string out = to_string(status);
  if (!error.empty()) out += ": " + error;
  if (!frame.header.empty()) {
    out += (status == ReadStatus::kOk ? ": " : "; header: ") + frame.header.substr(0, 2000);
  }
  if (!frame.body.empty()) out += " (+" + std::to_string(frame.body.size()) + " body bytes)";
  return out;
}

std::string be32(uint32_t n) {
  std::string out(4, '\0');
  out[0] = static_cast<char>((n >> 24) & 0xff);
  out[1] = static_cast<char>((n >> 16) & 0xff);
  out[2] = static_cast<char>((n >> 8) & 0xff);
  out[3] = static_cast<char>(n & 0xff);
  return out;
}

std::string encode_frame(std::string_view header, std::string_view body) {
  std::string out = be32(static_cast<uint32_t>(header.size()));
  out.append(header);
  out.append(body);
  return out;
}

RawClient::RawClient(Fd fd) : fd_(std::move(fd)) { set_send_timeout(Millis(10000)); }

bool RawClient::connect(const std::string& address, Millis timeout, std::string* err) {
  auto fail = [&](const std::string& why) {
    if (err) *err = why;
    fd_.reset();
    return false;
  };
  pending_.clear();
  auto addr = parse_address(address, err);
  if (!addr) {
    fd_.reset();
    return false;
  }
  fd_.reset(socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd_) return fail(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd_.get(), addr->get(), addr->length) != 0) {
    if (errno != EINPROGRESS) {
      return fail("connect " + address + ": " + std::strerror(errno));
    }
    Deadline deadline(timeout);
    int ready = 0;
    for (int i = 0; i < 1000; ++i) {
      pollfd pfd{fd_.get(), POLLOUT, 0};
      ready = poll(&pfd, 1, deadline.poll_timeout_ms());
      if (!(ready < 0 && errno == EINTR)) break;
    }
    if (ready <= 0) return fail("connect " + address + ": timed out");
    int so_error = 0;
    socklen_t len = sizeof so_error;
    getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) return fail("connect " + address + ": " + std::strerror(so_error));
  }
  int flags = fcntl(fd_.get(), F_GETFL);
  fcntl(fd_.get(), F_SETFL, flags & ~O_NONBLOCK);
  set_send_timeout(Millis(10000));
  return true;
}

void RawClient::set_send_timeout(Millis timeout) {
  if (!fd_) return;
  timeval tv = to_timeval(timeout);
  setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // Reads poll() with their own deadline; this only backs them up.
  timeval rtv = to_timeval(Millis(60000));
  setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof rtv);
}

bool RawClient::send_raw(std::string_view bytes, std::string* err) {
  if (!fd_) {
    if (err) *err = "send: not connected";
    return false;
  }
  size_t done = 0;
  for (int i = 0; done < bytes.size() && i < 10000000; ++i) {
    ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (err) {
        *err = (errno == EAGAIN || errno == EWOULDBLOCK)
                   ? "send: timed out after " + std::to_string(done) + " bytes"
                   : std::string("send: ") + std::strerror(errno);
      }
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return done == bytes.size();
}

bool RawClient::send_frame(std::string_view header_json, std::string_view body,
                           std::string* err) {
  return send_raw(encode_frame(header_json, body), err);
}

ReadStatus RawClient::fill(size_t n, const Deadline& deadline, std::string* error) {
  if (!fd_) {
    if (error) *error = "not connected";
    return ReadStatus::kError;
  }
  char buf[kRecvChunk];
  for (int i = 0; pending_.size() < n && i < 100000000; ++i) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ready = poll(&pfd, 1, deadline.poll_timeout_ms());
    if (ready < 0) {
      if (errno == EINTR) continue;
      if (error) *error = std::string("poll: ") + std::strerror(errno);
      return ReadStatus::kError;
    }
    if (ready == 0) return ReadStatus::kTimeout;
    size_t want = std::min(kRecvChunk, std::max(n - pending_.size(), size_t{4096}));
    ssize_t got = ::recv(fd_.get(), buf, want, MSG_DONTWAIT);
    if (got > 0) {
      pending_.append(buf, static_cast<size_t>(got));
      continue;
    }
    if (got == 0) return ReadStatus::kEof;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
      if (deadline.expired()) return ReadStatus::kTimeout;
      continue;
    }
    if (errno == ECONNRESET) {
      if (error) *error = "recv: connection reset by peer";
      return ReadStatus::kReset;
    }
    if (error) *error = std::string("recv: ") + std::strerror(errno);
    return ReadStatus::kError;
  }
  return pending_.size() >= n ? ReadStatus::kOk : ReadStatus::kTimeout;
}

ReadResult RawClient::read_frame(Millis timeout, uint64_t max_body) {
  Deadline deadline(timeout);
  ReadResult result;
  auto partial = [&](ReadStatus status, const char* part) {
    result.status = status;
    if (status == ReadStatus::kEof) {
      result.status = ReadStatus::kError;
      result.error = std::string("connection closed in the middle of the ") + part + " (" +
                     std::to_string(pending_.size()) + " bytes buffered)";
    }
    return result;
  };
  ReadStatus st = fill(4, deadline, &result.error);
  if (st != ReadStatus::kOk) {
    if (st == ReadStatus::kEof && pending_.empty()) {
      result.status = ReadStatus::kEof;
      return result;
    }
    return partial(st, "length");
  }
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(pending_[i])); };
  uint32_t len = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
  if (len > kMaxHeader) {
    result.status = ReadStatus::kBadFrame;
    result.error = "header length " + std::to_string(len) + " over the limit";
    return result;
  }
  st = fill(4 + size_t{len}, deadline, &result.error);
  if (st != ReadStatus::kOk) return partial(st, "header");
  result.frame.header = pending_.substr(4, len);
  JsonPtr json = result.frame.parse();
  if (!json || !cJSON_IsObject(json.get())) {
    pending_.erase(0, 4 + size_t{len});
    result.status = ReadStatus::kBadFrame;
    result.error = "header is not a JSON object";
    return result;
  }
  uint64_t body_len = 0;
  if (const cJSON* body = field(json.get(), "body")) {
    double v = cJSON_IsNumber(body) ? body->valuedouble : -1.0;
    if (!cJSON_IsNumber(body) || !std::isfinite(v) || v < 0 || v > kMaxSafeInteger ||
        std::floor(v) != v || static_cast<uint64_t>(v) > max_body) {
      pending_.erase(0, 4 + size_t{len});
      result.status = ReadStatus::kBadFrame;
      result.error = "bad or too large \"body\" field";
      return result;
    }
    body_len = static_cast<uint64_t>(v);
  }
  size_t total = 4 + size_t{len} + static_cast<size_t>(body_len);
  if (pending_.capacity() < total) pending_.reserve(total);
  st = fill(total, deadline, &result.error);
  if (st != ReadStatus::kOk) {
    result.frame.header.clear();  // still buffered; a later call returns the whole frame
    return partial(st, "body");
  }
  result.frame.body = pending_.substr(4 + size_t{len}, static_cast<size_t>(body_len));
  pending_.erase(0, total);
  result.status = ReadStatus::kOk;
  return result;
}

ReadStatus RawClient::read_bytes(size_t n, std::string* out, Millis timeout) {
  Deadline deadline(timeout);
  ReadStatus st = fill(n, deadline, nullptr);
  size_t take = std::min(n, pending_.size());
  if (out) out->append(pending_, 0, take);
  pending_.erase(0, take);
  return st;
}

bool RawClient::read_until_closed(Millis timeout, std::string* received) {
  Deadline deadline(timeout);
  for (int i = 0; i < 100000000; ++i) {
    // Ask for more than is buffered: fill() returns only on close, error or timeout,
    // or when it has read at least one more chunk.
    ReadStatus st = fill(pending_.size() + 1, deadline, nullptr);
    if (received) received->append(pending_);
    pending_.clear();
    if (st == ReadStatus::kEof || st == ReadStatus::kReset) return true;
    if (st != ReadStatus::kOk) return false;
  }
  return false;
}

HandshakeResult RawClient::handshake(std::string_view secret, Millis timeout, int proto) {
  Deadline deadline(timeout);
  HandshakeResult result;
  ReadResult hello = read_frame(deadline.remaining());
  if (!hello.ok()) {
    result.error = "no hello: " + hello.describe();
    return result;
  }
  result.hello = hello.frame;
  if (hello.frame.type() != "hello") {
    result.error = "expected hello, got " + hello.frame.header;
    return result;
  }
  auto nonce_hex = hello.frame.string_field("nonce");
  auto server_nonce = nonce_hex ? hex_decode(*nonce_hex) : std::nullopt;
  if (!server_nonce || server_nonce->size() != kNonceBytes) {
    result.error = "hello has no 64-hex-character nonce: " + hello.frame.header;
    return result;
  }
  std::string client_nonce = random_bytes(kNonceBytes);
  std::string send_err;
  std::vector<std::string> features = {"get", "stat", "list", "ping", "msg", "resume"};
  if (proto >= 2) features.push_back("put");
  if (!send_frame(make_auth_header(secret, *server_nonce, client_nonce, proto, features), {}, &send_err)) {
    result.error = "sending auth: " + send_err;
    return result;
  }
  ReadResult reply = read_frame(deadline.remaining());
  if (!reply.ok()) {
    result.error = "no reply to auth: " + reply.describe();
    return result;
  }
  result.reply = reply.frame;
  if (reply.frame.type() != "auth_ok") {
    result.error = "auth refused: " + reply.frame.header;
    return result;
  }
  std::string expected = server_mac_hex(secret, *server_nonce, client_nonce);
  auto mac = reply.frame.string_field("mac");
  if (!mac || mac->size() != expected.size() ||
      CRYPTO_memcmp(mac->data(), expected.data(), expected.size()) != 0) {
    result.error = "auth_ok carries a wrong server mac (impostor server?): " + reply.frame.header;
    return result;
  }
  result.ok = true;
  return result;
}

bool RawClient::shutdown_write() { return fd_ && ::shutdown(fd_.get(), SHUT_WR) == 0; }

void RawClient::abort() {
  if (!fd_) return;
  linger lg{1, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  fd_.reset();
  pending_.clear();
}

}  // namespace testsupport
