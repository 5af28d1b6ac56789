#include "apps/reactorc/tutorial_get.h"

#include <cjson/cJSON.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/local_path.h"
#include "protocol/hex.h"
#include "protocol/utf8.h"

namespace client {
namespace {

constexpr size_t kChallengeLength = 32;  // os.urandom(32)
// The lesson's dict is a few dozen bytes; a length past this is not that dict (or is the
// byte order of another machine: struct.pack('i') is native).
constexpr int32_t kMaxHeader = 64 * 1024;
constexpr size_t kReadSize = 256 * 1024;
constexpr uint64_t kMaxSize = 1ull << 53;  // what a JSON number carries exactly

// The server's "filename" as a local name: its last component, if that is a plain name.
bool plain_name(const std::string& filename, std::string* out) {
  size_t cut = filename.find_last_of("/\\");
  std::string name = cut == std::string::npos ? filename : filename.substr(cut + 1);
  if (name.empty() || name == "." || name == ".." || name.size() > 255 || !protocol::valid_utf8(name)) return false;
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return false;
  *out = name;
  return true;
}

}  // namespace

TutorialGet::TutorialGet(reactor::EventLoop& loop, const Options& options, const app::Secret* secret)
    : loop_(loop), options_(options), secret_(secret), md5_(nullptr, EVP_MD_CTX_free) {}

TutorialGet::~TutorialGet() {
  if (tick_timer_ != 0) loop_.cancel(tick_timer_);
  if (fd_) loop_.remove_before_close(fd_.get());
  if (sink_) sink_->discard();
}

bool TutorialGet::prepare() {
  local_ = options_.operands.empty() ? "" : options_.operands[0];
  return true;
}

void TutorialGet::start(std::vector<reactor::SocketAddress> addresses) {
  last_activity_ = loop_.now();
  connector_ = std::make_unique<reactor::Connector>(
      loop_, std::move(addresses), options_.timeout,
      [this](reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message) {
        on_connected(std::move(fd), error, message);
      });
  connector_->hand_over(reactor::kReadable, [this](uint32_t events) { on_events(events); });
  tick_timer_ = loop_.run_every(std::chrono::milliseconds(100), [this] {
    if (progress_) {
      progress_->update(received_);
      progress_->tick();
    }
    if (step_ != Step::kConnecting && loop_.now() - last_activity_ >= options_.timeout)
      fail(kExitProtocol, "the tutorial server sent nothing for " +
                              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options_.timeout).count()) +
                              " s");
  });
}

void TutorialGet::on_connected(reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message) {
  loop_.defer([this] { connector_.reset(); });
  if (error != reactor::ConnectError::kNone) return fail(kExitConnect, message);
  peer_ = connector_->peer().to_string();
  fd_ = std::move(fd);
  last_activity_ = loop_.now();
  step_ = options_.tutorial_auth ? Step::kChallenge : Step::kLength;
  if (options_.verbosity > 0) app::log_info("connected to %s (the socket tutorial's format, plain text)", peer_.c_str());
}

void TutorialGet::on_events(uint32_t events) {
  (void)events;
  if (step_ == Step::kDone || !fd_) return;
  // Bounded per wakeup, so that the progress timer and signals get their turn.
  for (int round = 0; round < 16; ++round) {
    char buf[kReadSize];
    size_t want = sizeof buf;
    // Before the body, exactly what each step needs: the body's first bytes stay in the
    // kernel until the header has said where they go.
    if (step_ == Step::kChallenge) want = kChallengeLength - pending_.size();
    if (step_ == Step::kLength) want = 4 - pending_.size();
    if (step_ == Step::kHeader) want = header_length_ - pending_.size();
    ssize_t n = ::recv(fd_.get(), buf, want, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) return fail(kExitProtocol, "receive from " + peer_ + ": " + std::strerror(errno));
    last_activity_ = loop_.now();
    if (n == 0) {
      if (step_ == Step::kEnd) return on_body_done();
      if (step_ == Step::kBody)
        return fail(kExitProtocol, "the server closed the connection after " + std::to_string(received_) + " of " +
                                       std::to_string(size_) + " bytes; nothing was kept");
      return fail(kExitProtocol, "the server closed the connection before sending a file (wrong port, or "
                                 "--tutorial-auth needed or refused?)");
    }
    if (!take(buf, static_cast<size_t>(n))) return;
  }
}

bool TutorialGet::take(const char* data, size_t len) {
  std::string err;
  switch (step_) {
    case Step::kChallenge: {
      pending_.append(data, len);
      if (pending_.size() < kChallengeLength) return true;
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      const std::string& key = secret_ != nullptr ? secret_->key : std::string();
      if (HMAC(EVP_md5(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(pending_.data()),
               pending_.size(), mac, &mac_len) == nullptr) {
        fail(kExitFailure, "HMAC-MD5 is not available");
        return false;
      }
      std::string answer = protocol::to_hex(mac, mac_len);
      // 32 bytes into an empty socket buffer: one send takes them all, or fails.
      if (::send(fd_.get(), answer.data(), answer.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(answer.size())) {
        fail(kExitProtocol, std::string("send the answer: ") + std::strerror(errno));
        return false;
      }
      pending_.clear();
      step_ = Step::kLength;
      return true;
    }
    case Step::kLength: {
      pending_.append(data, len);
      if (pending_.size() < 4) return true;
      int32_t length = 0;
      std::memcpy(&length, pending_.data(), 4);  // struct.unpack('i'): native order, signed
      if (length <= 0 || length > kMaxHeader) {
        std::string why = pending_ == "hell" ? "it greets with \"hello\": the socketserver lesson's chat, not a download"
                          : options_.tutorial_auth
                              ? "not the tutorial's download (or a machine of the other byte order)"
                              : "not the tutorial's download: a server asking a challenge needs --tutorial-auth (or it "
                                "is a machine of the other byte order)";
        fail(kExitProtocol, "the server's header length is " + std::to_string(length) + ": " + why);
        return false;
      }
      pending_.clear();
      header_length_ = static_cast<size_t>(length);
      step_ = Step::kHeader;
      return true;
    }
    case Step::kHeader:
      pending_.append(data, len);
      if (pending_.size() < header_length_) return true;
      if (!on_header(pending_)) return false;
      pending_.clear();
      step_ = size_ == 0 ? Step::kEnd : Step::kBody;
      return true;
    case Step::kBody: {
      size_t body = static_cast<size_t>(std::min<uint64_t>(len, size_ - received_));
      if (!sink_->write(data, body, &err)) {
        fail(kExitLocal, err);
        return false;
      }
      if (md5_) EVP_DigestUpdate(md5_.get(), data, body);
      received_ += body;
      if (body < len) {
        fail(kExitProtocol, "the server sent more than the " + std::to_string(size_) + " bytes it announced");
        return false;
      }
      if (received_ == size_) step_ = Step::kEnd;
      return true;
    }
    case Step::kEnd:
      fail(kExitProtocol, "the server sent more than the " + std::to_string(size_) + " bytes it announced");
      return false;
    case Step::kConnecting:
    case Step::kDone:
      return false;
  }
  return false;
}

bool TutorialGet::on_header(const std::string& text) {
  std::unique_ptr<cJSON, decltype(&cJSON_Delete)> json(cJSON_ParseWithLength(text.data(), text.size()), cJSON_Delete);
  const cJSON* name = json ? cJSON_GetObjectItemCaseSensitive(json.get(), "filename") : nullptr;
  const cJSON* size = json ? cJSON_GetObjectItemCaseSensitive(json.get(), "filesize") : nullptr;
  if (!cJSON_IsObject(json.get()) || !cJSON_IsString(name) || !cJSON_IsNumber(size)) {
    fail(kExitProtocol, "the server's header is not the tutorial's dict of filename and filesize: " +
                            app::escape_for_terminal(text.substr(0, 200)));
    return false;
  }
  double announced = size->valuedouble;
  if (!(announced >= 0) || announced > static_cast<double>(kMaxSize) || std::floor(announced) != announced) {
    fail(kExitProtocol, "the server's filesize is not a size: " + app::escape_for_terminal(text.substr(0, 200)));
    return false;
  }
  size_ = static_cast<uint64_t>(announced);
  const cJSON* md5 = cJSON_GetObjectItemCaseSensitive(json.get(), "filename_md5");
  if (md5 != nullptr) {
    std::string hex = cJSON_IsString(md5) ? md5->valuestring : "";
    bool valid = hex.size() == 32 && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
    if (!valid) {
      fail(kExitProtocol, "the server's filename_md5 is not an MD5 digest");
      return false;
    }
    for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    expected_md5_ = hex;
    md5_.reset(EVP_MD_CTX_new());
    if (!md5_ || EVP_DigestInit_ex(md5_.get(), EVP_md5(), nullptr) != 1) {
      fail(kExitFailure, "MD5 is not available");
      return false;
    }
  }
  std::string err;
  if (!open_destination(name->valuestring, &err)) {
    fail(kExitLocal, err);
    return false;
  }
  if (options_.verbosity >= 0) {
    bool tty = isatty(STDERR_FILENO) == 1;
    progress_ = std::make_unique<Progress>(STDERR_FILENO, options_.progress, tty, app::stream_wants_color(STDERR_FILENO),
                                           app::escape_for_terminal(sink_->display()), size_, 0);
    progress_->set_ascii(!app::locale_is_utf8());
    progress_->set_dumb_terminal(tty && app::terminal_is_dumb());
    progress_->tick();
  }
  return true;
}

bool TutorialGet::open_destination(const std::string& server_name, std::string* err) {
  std::string name;
  if (local_.empty() || local_.back() == '/') {
    if (!plain_name(server_name, &name)) {
      *err = "the server names the file \"" + app::escape_for_terminal(server_name) +
             "\", which is no plain file name: give LOCAL";
      return false;
    }
  }
  std::string local;
  if (!choose_local_path(name.empty() ? local_ : name, local_, &local, err)) return false;
  sink_ = std::make_unique<app::BodySink>(app::BodySink::Hashing::kByCaller, protocol::DigestKind::kSha256);
  reactor::UniqueFd stream;
  std::string display;
  if (!open_stream_destination(local, &stream, &display, err)) return false;
  if (stream) {
    sink_->open_stream(std::move(stream), display);
    return true;
  }
  std::string target;
  reactor::UniqueFd dir;
  std::string file;
  return resolve_destination(local, options_.force, &target, err) && open_parent(target, &dir, &file, err) &&
         sink_->open_file(std::move(dir), file, local, options_.force, err);
}

void TutorialGet::on_body_done() {
  if (md5_) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md5_.get(), digest, &len);
    std::string got = protocol::to_hex(digest, len);
    if (got != expected_md5_) {
      sink_->discard();
      return fail(kExitVerify, "MD5 mismatch: the server said " + expected_md5_ + ", the bytes are " + got +
                                   "; nothing was kept");
    }
  }
  sink_->verified_by_caller();
  std::string err;
  if (!sink_->commit(app::BodySink::CommitOptions{}, &err)) return fail(kExitLocal, err);
  if (progress_) {
    progress_->update(received_);
    progress_->finish_ok(md5_ ? "md5 verified" : "complete (the server sent no MD5 to check)");
    progress_.reset();
  }
  finish(kExitOk);
}

void TutorialGet::interrupt(const char* signal_name) { fail(kExitInterrupted, std::string("interrupted by ") + signal_name); }

void TutorialGet::fail(int code, const std::string& message) {
  if (step_ == Step::kDone) return;
  if (sink_) sink_->discard();
  if (progress_) {
    progress_->update(received_);
    progress_->finish_failed(message);
    progress_.reset();
  } else {
    app::log_error("%s", message.c_str());
  }
  finish(code);
}

void TutorialGet::finish(int code) {
  if (step_ == Step::kDone) return;
  step_ = Step::kDone;
  exit_code_ = code;
  if (tick_timer_ != 0) {
    loop_.cancel(tick_timer_);
    tick_timer_ = 0;
  }
  if (fd_) {
    loop_.remove_before_close(fd_.get());
    fd_.reset();
  }
  loop_.stop();
}

}  // namespace client
