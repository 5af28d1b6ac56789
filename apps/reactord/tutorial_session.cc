#include "apps/reactord/tutorial_session.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>

#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "protocol/auth.h"
#include "protocol/hex.h"
#include "reactor/socket_ops.h"

namespace server {
namespace {

constexpr size_t kAnswerLength = 32;          // MD5's hex digest
constexpr size_t kChatRead = 1024;            // the lesson's recv(1024)
constexpr size_t kBufferSize = 1024 * 1024;   // "buffer_size" of the MD5 variant, as the lesson sends it
constexpr size_t kSendSlice = 256 * 1024;     // per sendfile call: the loop stays fair to others
constexpr size_t kMaxChatQueued = 64 * 1024;  // a client that sends and never reads is cut off
const char kHello[] = "hello";

std::string md5_file(int fd, uint64_t size, std::string* err) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) {
    *err = "MD5 is not available";
    return {};
  }
  std::string chunk(kBufferSize, '\0');
  uint64_t offset = 0;
  while (offset < size) {
    ssize_t n = pread(fd, &chunk[0], chunk.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = std::string("read: ") + std::strerror(errno);
      return {};
    }
    if (n == 0) break;  // shrank: the header says what was hashed
    EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  if (offset != size) {
    *err = "the file changed while it was hashed";
    return {};
  }
  return protocol::to_hex(digest, len);
}

}  // namespace

TutorialSession::TutorialSession(reactor::EventLoop& loop, reactor::WorkQueue& work, const ServedRoot& root,
                                 const TutorialConfig& config, uint64_t id, reactor::UniqueFd fd, std::string peer,
                                 std::function<void(TutorialSession*)> on_closed)
    : loop_(loop),
      work_(work),
      root_(root),
      config_(config),
      id_(id),
      fd_(std::move(fd)),
      peer_(std::move(peer)),
      on_closed_(std::move(on_closed)),
      out_(kMaxChatQueued + 4096) {}

TutorialSession::~TutorialSession() {
  if (hash_job_ != 0) work_.cancel(hash_job_);
  if (fd_) loop_.remove_before_close(fd_.get());
}

void TutorialSession::log(const char* fmt, ...) {
  char text[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(text, sizeof text, fmt, args);
  va_end(args);
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " (tutorial): %s", text);
}

bool TutorialSession::start() {
  started_ = last_activity_ = loop_.now();
  std::string err;
  if (!loop_.add(fd_.get(), 0, [this](uint32_t events) { on_events(events); }, &err)) {
    close("cannot watch: " + err);
    return false;
  }
  if (config_.auth) {
    protocol::Nonce nonce;
    if (!protocol::random_nonce(&nonce, &err)) {
      close("no randomness: " + err);
      return false;
    }
    challenge_.assign(reinterpret_cast<const char*>(nonce.data()), nonce.size());
    out_.append(challenge_);
    state_ = State::kChallenge;
    return flush();
  }
  after_auth();
  return !closed();
}

void TutorialSession::after_auth() {
  if (config_.file.empty()) {
    state_ = State::kChat;
    out_.append(kHello, sizeof kHello - 1);
    flush();
    return;
  }
  start_download();
}

void TutorialSession::start_download() {
  struct stat st {};
  protocol::ProtocolError refusal;
  reactor::UniqueFd opened = root_.open_file(config_.file, &st, &refusal);
  if (!opened) return close("--tutorial-file: " + refusal.message);
  file_ = std::make_shared<reactor::UniqueFd>(std::move(opened));
  file_size_ = static_cast<uint64_t>(st.st_size);
  if (!config_.md5) return send_header({});
  state_ = State::kHashing;
  update_interest();
  // The MD5 variant names the digest before the bytes: the whole file is read first, on
  // the worker, as the lesson's server reads it before it sends the header.
  auto digest = std::make_shared<std::string>();
  auto error = std::make_shared<std::string>();
  // The worker holds the descriptor too: a session closed meanwhile cannot let its
  // number be reused under the hash.
  std::shared_ptr<const reactor::UniqueFd> file = file_;
  uint64_t size = file_size_;
  std::string err;
  hash_job_ = work_.submit([file, size, digest, error] { *digest = md5_file(file->get(), size, error.get()); },
                           [this, digest, error] {
                             hash_job_ = 0;
                             if (digest->empty()) return close("MD5 of the tutorial file: " + *error);
                             send_header(*digest);
                           },
                           &err);
  if (hash_job_ == 0) close("cannot hash the tutorial file: " + err);
}

void TutorialSession::send_header(const std::string& md5_hex) {
  std::string name = config_.file.substr(config_.file.rfind('/') + 1);
  std::unique_ptr<cJSON, decltype(&cJSON_Delete)> json(cJSON_CreateObject(), cJSON_Delete);
  bool built = json && cJSON_AddStringToObject(json.get(), "filename", name.c_str()) != nullptr;
  if (built && !md5_hex.empty())
    built = cJSON_AddStringToObject(json.get(), "filename_md5", md5_hex.c_str()) != nullptr &&
            cJSON_AddNumberToObject(json.get(), "buffer_size", static_cast<double>(kBufferSize)) != nullptr;
  // A double carries sizes exactly up to 2^53 bytes (8 PiB).
  built = built && cJSON_AddNumberToObject(json.get(), "filesize", static_cast<double>(file_size_)) != nullptr;
  std::unique_ptr<char, decltype(&cJSON_free)> text(built ? cJSON_PrintUnformatted(json.get()) : nullptr, cJSON_free);
  if (!text) return close("out of memory for the header");
  std::string dict(text.get());
  // struct.pack('i', n): a C int in this machine's byte order, as the scripts unpack it.
  int32_t length = static_cast<int32_t>(dict.size());
  out_.append(&length, sizeof length);
  out_.append(dict);
  body_queued_ = true;
  state_ = State::kSending;
  log("sending \"%s\" (%llu bytes%s)", app::escape_for_terminal(config_.file).c_str(),
      static_cast<unsigned long long>(file_size_), md5_hex.empty() ? "" : ", MD5 first");
  flush();
}

void TutorialSession::on_events(uint32_t events) {
  if (closed()) return;
  if (events & (reactor::kReadable | reactor::kHangup | reactor::kError)) {
    if (state_ == State::kChallenge) {
      read_answer();
    } else if (state_ == State::kChat) {
      read_chat();
    } else if (state_ == State::kDraining) {
      read_until_end();
    } else if (events & (reactor::kHangup | reactor::kError)) {
      // A download's client gone: nothing more will be read from it.
      if (state_ == State::kSending && file_offset_ < file_size_)
        return close("the client went away at " + std::to_string(file_offset_) + " of " +
                     std::to_string(file_size_) + " bytes");
    }
    if (closed()) return;
  }
  if (events & reactor::kWritable) flush();
}

void TutorialSession::read_answer() {
  char buf[kAnswerLength];
  // Only the answer: in the chat, what follows it is the client's first message.
  ssize_t n = ::recv(fd_.get(), buf, kAnswerLength - answer_.size(), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) return close(n == 0 ? "closed before answering the challenge" : std::strerror(errno));
  last_activity_ = loop_.now();
  answer_.append(buf, static_cast<size_t>(n));
  if (answer_.size() < kAnswerLength) return;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_md5(), config_.key.data(), static_cast<int>(config_.key.size()),
           reinterpret_cast<const unsigned char*>(challenge_.data()), challenge_.size(), mac, &mac_len) == nullptr)
    return close("HMAC-MD5 is not available");
  std::string expected = protocol::to_hex(mac, mac_len);
  // Constant time: a string compare that stops at the first difference tells a patient
  // attacker how much of a guess was right (the lesson's `msg == ret`).
  if (expected.size() != answer_.size() || CRYPTO_memcmp(expected.data(), answer_.data(), expected.size()) != 0) {
    app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, " (tutorial): not a legitimate client: wrong answer");
    return close("not a legitimate client: wrong answer to the challenge");
  }
  log("a legitimate client");
  after_auth();
}

void TutorialSession::read_until_end() {
  char buf[4096];
  for (int i = 0; i < 16; ++i) {  // bounded: a client that keeps sending meets the deadline
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return close("sent");
  }
}

void TutorialSession::read_chat() {
  char buf[kChatRead];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n == 0) return close("the client said goodbye");
  if (n < 0) return close(std::strerror(errno));
  last_activity_ = loop_.now();
  log("says \"%s\"", app::escape_for_terminal(std::string_view(buf, static_cast<size_t>(n))).c_str());
  if (out_.readable() >= kMaxChatQueued) return close("the client does not read the answers");
  out_.append(kHello, sizeof kHello - 1);
  flush();
}

bool TutorialSession::flush() {
  // send(), not sendall(): what the socket does not take now stays queued for the next
  // writable event, where the lesson's sendall() would block the whole server.
  while (!out_.empty()) {
    ssize_t n = ::send(fd_.get(), out_.peek(), out_.readable(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      update_interest();
      return true;
    }
    if (n < 0) {
      close(std::string("send: ") + std::strerror(errno));
      return false;
    }
    out_.consume(static_cast<size_t>(n));
    last_activity_ = loop_.now();
  }
  out_.shrink_if_empty();
  if (body_queued_) {
    size_t budget = kSendSlice * 4;
    while (file_offset_ < file_size_ && budget > 0) {
      off_t offset = static_cast<off_t>(file_offset_);
      size_t want = static_cast<size_t>(std::min<uint64_t>({file_size_ - file_offset_, kSendSlice, budget}));
      ssize_t n = ::sendfile(fd_.get(), file_->get(), &offset, want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) {
        close(std::string("sendfile: ") + std::strerror(errno));
        return false;
      }
      if (n == 0) {
        close("the file shrank while it was sent");
        return false;
      }
      file_offset_ += static_cast<uint64_t>(n);
      budget -= std::min(budget, static_cast<size_t>(n));
      last_activity_ = loop_.now();
    }
    if (file_offset_ == file_size_) {
      // The lesson's conn.close(): the end of the file is the end of the stream. Our
      // side first, then the client's, within two seconds.
      ::shutdown(fd_.get(), SHUT_WR);
      body_queued_ = false;
      state_ = State::kDraining;
      drain_deadline_ = loop_.now() + std::chrono::seconds(2);
    }
  }
  update_interest();
  return true;
}

void TutorialSession::update_interest() {
  if (closed()) return;
  uint32_t want = 0;
  if (state_ == State::kChallenge || state_ == State::kChat || state_ == State::kDraining) want |= reactor::kReadable;
  if (!out_.empty() || (body_queued_ && file_offset_ < file_size_)) want |= reactor::kWritable;
  if (want == interest_) return;
  std::string err;
  if (!loop_.modify(fd_.get(), want, &err)) return close("cannot watch: " + err);
  interest_ = want;
}

void TutorialSession::check_timeouts(Clock::time_point now, Clock::duration idle_timeout) {
  if (closed()) return;
  if (state_ == State::kChallenge && now - started_ >= config_.auth_timeout)
    return close("no answer to the challenge in time");
  if (state_ == State::kDraining) {
    if (now >= drain_deadline_) close("sent; the client did not close");
    return;
  }
  if (state_ != State::kHashing && now - last_activity_ >= idle_timeout) close("idle for too long");
}

void TutorialSession::close(const std::string& why) {
  if (closed()) return;
  state_ = State::kClosed;
  if (hash_job_ != 0) {
    work_.cancel(hash_job_);
    hash_job_ = 0;
  }
  if (fd_) {
    loop_.remove_before_close(fd_.get());
    fd_.reset();
  }
  file_.reset();
  log("closed: %s", why.c_str());
  if (on_closed_) on_closed_(this);
}

}  // namespace server
