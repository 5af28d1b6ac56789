#include "apps/reactord/session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "apps/reactord/server.h"
#include "protocol/auth.h"
#include "reactor/errors.h"

namespace server {
namespace {

using protocol::ErrorCode;
using protocol::ProtocolError;

// Input kept while a response is in progress (pipelined requests). Past this the
// session stops reading and lets TCP flow control hold the client back.
constexpr size_t kInputHighWater = 4 + protocol::kMaxHeaderLen;
// Output queued before the session stops decoding requests: a client that pipelines
// requests and never reads the answers is held back by TCP instead of growing our memory.
constexpr size_t kOutputHighWater = 256 * 1024;
// Time allowed to deliver a final error frame and see the client close.
constexpr auto kDrainTimeout = std::chrono::seconds(2);

constexpr const char kServerName[] = "reactord/" REACTOR_VERSION;

// "[::1]:41234" -> "::1", "127.0.0.1:41234" -> "127.0.0.1": the auth throttle counts
// failures per address, whatever port each attempt comes from.
std::string host_of(const std::string& address) {
  if (!address.empty() && address.front() == '[') return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

}  // namespace

const char* to_string(SessionState state) {
  switch (state) {
    case SessionState::kAwaitAuth: return "await-auth";
    case SessionState::kVerdictPending: return "verdict-pending";
    case SessionState::kReady: return "ready";
    case SessionState::kSending: return "sending";
    case SessionState::kListing: return "listing";
    case SessionState::kDraining: return "draining";
    case SessionState::kClosed: return "closed";
  }
  return "?";
}

Session::Session(Server& server, uint64_t id, reactor::UniqueFd fd, const reactor::SocketAddress& peer)
    : server_(server),
      id_(id),
      fd_(std::move(fd)),
      peer_(peer.to_string()),
      in_(kInputHighWater + 64 * 1024),
      out_(),
      decoder_(protocol::kMaxHeaderLenBeforeAuth) {}

Session::~Session() {
  if (handshake_ && handshake_->verdict_timer != 0) server_.loop().cancel(handshake_->verdict_timer);
  if (registered_) server_.loop().remove_before_close(fd_.get());  // reactord never dups or forks
}

bool Session::start() {
  Clock::time_point now = server_.loop().now();
  started_ = last_activity_ = now;
  handshake_->deadline = now + server_.options().handshake_timeout;
  std::string err;
  if (!protocol::random_nonce(&handshake_->server_nonce, &err)) {
    app::log_error("%s #%llu: %s", peer_.c_str(), static_cast<unsigned long long>(id_), err.c_str());
    close("no randomness");
    return false;
  }
  if (!server_.loop().add(fd_.get(), reactor::kReadable, [this](uint32_t events) { on_events(events); }, &err)) {
    app::log_error("%s #%llu: %s", peer_.c_str(), static_cast<unsigned long long>(id_), err.c_str());
    close("cannot watch");
    return false;
  }
  registered_ = true;
  interest_ = reactor::kReadable;
  protocol::Hello hello;
  hello.proto = protocol::kProtocolVersion;
  hello.server = kServerName;
  hello.features = server_.features();
  hello.nonce = handshake_->server_nonce;
  send(hello);
  drive();
  return state_ != SessionState::kClosed;
}

void Session::on_events(uint32_t events) {
  if (state_ == SessionState::kClosed) return;
  if (events & (reactor::kReadable | reactor::kHangup | reactor::kError)) {
    on_readable();
    if (state_ == SessionState::kClosed) return;
  }
  drive();
}

void Session::on_readable() {
  int saved_errno = 0;
  ssize_t n = in_.read_from(fd_.get(), &saved_errno);
  if (n > 0) {
    last_activity_ = server_.loop().now();
    if (state_ == SessionState::kDraining) in_.consume_all();  // nothing more is read
    return;
  }
  if (n == 0) {
    if (state_ == SessionState::kDraining) close("closed after error");
    else if (busy()) close("client went away mid-response");
    else close(state_ == SessionState::kReady ? "client closed" : "client closed before authenticating");
    return;
  }
  if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == EINTR) return;
  if (saved_errno == EMSGSIZE) return;  // buffer full: interest is dropped below
  errno = saved_errno;
  close(saved_errno == ECONNRESET ? "connection reset by client" : std::strerror(saved_errno));
}

// One pass of work after any event: decode what can be handled, produce what the current
// response needs, write, and repeat while a finished response uncovers queued requests.
// Bounded so one client with thousands of pipelined pings still yields to the others.
void Session::drive() {
  for (int round = 0; round < 64 && state_ != SessionState::kClosed; ++round) {
    bool held_back = process_input();
    if (state_ == SessionState::kClosed) return;
    bool was_busy = busy();
    produce_response();
    if (!flush()) return;
    // Go round again only if this round made room for queued requests: a response
    // finished, or output that held input back has drained.
    bool room = state_ == SessionState::kReady && in_.readable() > 0 && out_.readable() < kOutputHighWater;
    if (!(room && (was_busy || held_back))) break;
  }
  if (state_ == SessionState::kClosed) return;
  if (state_ == SessionState::kDraining && out_.readable() == 0 && !write_shut_) {
    // The error frame is out. Half-close and wait for the client's EOF rather than
    // close() at once: closing with unread input makes the kernel send a RST, which can
    // destroy the error frame before the client reads it.
    shutdown(fd_.get(), SHUT_WR);
    write_shut_ = true;
  }
  update_interest();
}

bool Session::process_input() {
  while (state_ == SessionState::kAwaitAuth || state_ == SessionState::kReady) {
    if (out_.readable() >= kOutputHighWater) return true;
    if (closing_after_response_ && state_ == SessionState::kReady) {
      fatal(ErrorCode::kShuttingDown, "the server is shutting down");
      return false;
    }
    size_t consumed = 0;
    protocol::DecodeEvent event = decoder_.next(in_.peek(), in_.readable(), &consumed);
    in_.consume(consumed);
    switch (event.kind) {
      case protocol::DecodeEvent::kNeedMore:
        return false;
      case protocol::DecodeEvent::kError:
        fatal(decoder_.error().code, decoder_.error().message);
        return false;
      case protocol::DecodeEvent::kBody:
        // Requests carry no body; parse_message rejects one before any arrives.
        fatal(ErrorCode::kInternal, "unexpected body bytes");
        return false;
      case protocol::DecodeEvent::kHeader: {
        ProtocolError err;
        std::optional<protocol::Message> message =
            protocol::parse_message(decoder_.header(), decoder_.body_length(), &err);
        if (!message) {
          fatal(err.code, err.message);
          return false;
        }
        last_activity_ = server_.loop().now();
        handle_message(std::move(*message));
        break;
      }
    }
  }
  return false;
}

void Session::handle_message(protocol::Message&& message) {
  if (state_ == SessionState::kAwaitAuth) {
    if (auto* auth = std::get_if<protocol::Auth>(&message)) {
      handle_auth(*auth);
    } else {
      fatal(ErrorCode::kUnexpectedMessage,
            std::string("expected auth, got ") + protocol::type_name(message) + ": authenticate first");
    }
    return;
  }
  ++requests_;
  if (auto* get = std::get_if<protocol::GetRequest>(&message)) return handle_get(*get);
  if (auto* stat = std::get_if<protocol::StatRequest>(&message)) return handle_stat(*stat);
  if (auto* list = std::get_if<protocol::ListRequest>(&message)) return handle_list(*list);
  if (auto* msg = std::get_if<protocol::MsgRequest>(&message)) return handle_msg(*msg);
  if (auto* ping = std::get_if<protocol::PingRequest>(&message)) {
    protocol::Pong pong;
    pong.token = ping->token;
    send(pong);
    return;
  }
  fatal(ErrorCode::kUnexpectedMessage,
        std::string(protocol::type_name(message)) + " is not a request a client may send");
}

void Session::handle_auth(const protocol::Auth& auth) {
  if (auth.proto < protocol::kProtocolVersion) {
    fatal(ErrorCode::kUnsupportedVersion, "protocol version " + std::to_string(auth.proto) +
                                              " is not supported; this server speaks version 1");
    return;
  }
  Handshake& hs = *handshake_;
  protocol::Mac expected = protocol::client_proof(server_.secret().key, hs.server_nonce, auth.nonce);
  hs.auth_ok = protocol::proofs_equal(expected, auth.mac);
  protocol::AuthOk ok;
  ok.proto = protocol::kProtocolVersion;
  ok.mac = protocol::server_proof(server_.secret().key, hs.server_nonce, auth.nonce);
  hs.pending_auth_ok = ok;
  if (hs.auth_ok) {
    // Until authenticated a client gets only 4 KiB headers; now the full limit.
    decoder_.set_header_limit(protocol::kMaxHeaderLen);
  }
  transition(SessionState::kVerdictPending);
  Clock::time_point now = server_.loop().now();
  Clock::time_point when = server_.throttle().verdict_time(host_of(peer_), now);
  // Verdicts from a throttled address queue behind each other; a connection must not
  // outlive its handshake deadline waiting in that queue, or many parallel attempts
  // from one address would hold descriptors indefinitely.
  if (when > hs.deadline) {
    fatal(ErrorCode::kTimeout, "too many recent authentication failures from this address; try again later");
    return;
  }
  if (when <= now) {
    deliver_verdict();
  } else {
    hs.verdict_timer = server_.loop().run_after(when - now, [this] {
      handshake_->verdict_timer = 0;
      deliver_verdict();
      if (state_ != SessionState::kClosed) drive();
    });
  }
}

void Session::deliver_verdict() {
  const std::string host = host_of(peer_);
  if (!handshake_->auth_ok) {
    server_.throttle().record_failure(host, server_.loop().now());
    app::log_warn("%s #%llu: authentication failed (%zu recent failures from this address)", peer_.c_str(),
                  static_cast<unsigned long long>(id_), server_.throttle().failures(host));
    fatal(ErrorCode::kAuthFailed, "authentication failed: the client does not know the shared secret");
    return;
  }
  server_.throttle().record_success(host);
  send(handshake_->pending_auth_ok);
  handshake_.reset();
  transition(SessionState::kReady);
  app::log_info("%s #%llu authenticated", peer_.c_str(), static_cast<unsigned long long>(id_));
}

void Session::handle_get(const protocol::GetRequest& request) {
  struct stat st {};
  ProtocolError err;
  reactor::UniqueFd file = server_.root().open_file(request.path, &st, &err);
  if (!file) return request_error(err);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (request.offset > size) {
    err.code = ErrorCode::kBadOffset;
    err.message = "offset " + std::to_string(request.offset) + " is beyond the end of the file (" +
                  std::to_string(size) + " bytes)";
    return request_error(err);
  }
  protocol::FileHeader header;
  header.path = request.path;
  header.size = size;
  header.offset = request.offset;
  header.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  header.mode = static_cast<uint32_t>(st.st_mode & 07777);
  send(header);
  std::optional<protocol::Digest> cached = server_.digest_cache().find(FileIdentity::of(st));
  sender_ = std::make_unique<FileSender>(std::move(file), st, request.offset, cached);
  response_path_ = app::escape_for_terminal(request.path);
  app::log_info("%s #%llu get \"%s\" (%llu bytes from offset %llu%s)", peer_.c_str(),
                static_cast<unsigned long long>(id_), response_path_.c_str(), static_cast<unsigned long long>(size),
                static_cast<unsigned long long>(request.offset),
                !cached ? "" : sender_->zero_copy() ? ", digest cached: zero-copy" : ", digest cached");
  transition(SessionState::kSending);
}

void Session::handle_stat(const protocol::StatRequest& request) {
  struct stat st {};
  ProtocolError err;
  if (!server_.root().stat_path(request.path, &st, &err)) return request_error(err);
  protocol::StatReply reply;
  reply.path = request.path;
  reply.kind = S_ISREG(st.st_mode) ? protocol::EntryKind::kFile
             : S_ISDIR(st.st_mode) ? protocol::EntryKind::kDir
                                   : protocol::EntryKind::kOther;
  reply.size = static_cast<uint64_t>(st.st_size);
  reply.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  reply.mode = static_cast<uint32_t>(st.st_mode & 07777);
  send(reply);
}

void Session::handle_list(const protocol::ListRequest& request) {
  ProtocolError err;
  reactor::UniqueFd dir = server_.root().open_directory(request.path, &err);
  if (!dir) return request_error(err);
  std::string why;
  lister_ = DirLister::open(std::move(dir), server_.root(), &why);
  if (!lister_) {
    err.code = ErrorCode::kIoError;
    err.message = why;
    return request_error(err);
  }
  response_path_ = app::escape_for_terminal(request.path);
  app::log_debug("%s #%llu list \"%s\"", peer_.c_str(), static_cast<unsigned long long>(id_),
                 response_path_.c_str());
  transition(SessionState::kListing);
}

void Session::handle_msg(const protocol::MsgRequest& request) {
  // The tutorial's hello/recv exchange: log what the client said, escaped, so a message
  // cannot forge log lines or drive the terminal of whoever reads the log.
  app::log_info("%s #%llu says: %s", peer_.c_str(), static_cast<unsigned long long>(id_),
                app::escape_for_terminal(request.text).c_str());
  protocol::MsgOk ok;
  ok.bytes = request.text.size();
  send(ok);
}

void Session::produce_response() {
  size_t budget = kWriteBudget;
  while (busy() && out_.readable() < FileSender::kChunk && budget > 0) {
    if (sender_) {
      if (sender_->zero_copy()) break;  // flush() sends the body straight from the file
      size_t done = sender_->produce(out_, std::min(budget, FileSender::kChunk));
      budget -= std::min(budget, done);
      if (sender_->finished()) finish_response();
      else if (done == 0) break;  // the output buffer is full: wait for the socket
    } else if (lister_) {
      if (!lister_->produce(out_)) finish_response();
    } else {
      finish_response();
    }
    if (state_ == SessionState::kClosed) return;
  }
}

void Session::finish_response() {
  if (sender_) {
    protocol::Message trailer = sender_->trailer();
    if (std::optional<protocol::Digest> digest = sender_->computed_digest())
      server_.digest_cache().insert(FileIdentity::of(sender_->opened()), *digest);
    if (auto* error = std::get_if<protocol::ErrorMessage>(&trailer)) {
      app::log_warn("%s #%llu get \"%s\": %s", peer_.c_str(), static_cast<unsigned long long>(id_),
                    response_path_.c_str(), error->message.c_str());
    } else {
      app::log_info("%s #%llu sent \"%s\"", peer_.c_str(), static_cast<unsigned long long>(id_),
                    response_path_.c_str());
    }
    send(trailer);
    sender_.reset();
  }
  lister_.reset();
  transition(SessionState::kReady);
}

bool Session::flush() {
  size_t budget = kWriteBudget;
  while (budget > 0) {
    int saved_errno = 0;
    ssize_t n;
    if (out_.readable() > 0) {
      n = out_.write_to(fd_.get(), budget, &saved_errno);
    } else if (sender_ && sender_->zero_copy()) {
      // Everything queued (the frame header) is out: the body may go straight from the
      // page cache to the socket.
      n = sender_->send_to(fd_.get(), budget, &saved_errno);
      if (n == 0) {  // the sender changed mode (file shrank, no sendfile): produce instead
        produce_response();
        if (state_ == SessionState::kClosed) return false;
        continue;
      }
    } else {
      break;
    }
    if (n > 0) {
      budget -= static_cast<size_t>(n);
      bytes_out_ += static_cast<uint64_t>(n);
      last_activity_ = server_.loop().now();
      // Keep the socket fed while the response produces more and the budget lasts.
      if (out_.readable() < FileSender::kChunk && busy()) produce_response();
      if (state_ == SessionState::kClosed) return false;
      continue;
    }
    if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == EINTR) break;
    close(saved_errno == EPIPE || saved_errno == ECONNRESET ? "client went away"
                                                            : std::strerror(saved_errno));
    return false;
  }
  if (out_.readable() == 0 && !busy()) out_.shrink_if_empty();  // idle sessions hold no buffer
  if (in_.readable() == 0) in_.shrink_if_empty();
  return true;
}

void Session::update_interest() {
  uint32_t want = 0;
  bool reading = state_ != SessionState::kDraining || write_shut_;
  if (reading && in_.readable() < kInputHighWater) want |= reactor::kReadable;
  if (out_.readable() > 0 || busy()) want |= reactor::kWritable;
  if (want == interest_) return;
  std::string err;
  if (!server_.loop().modify(fd_.get(), want, &err)) {
    app::log_error("%s #%llu: %s", peer_.c_str(), static_cast<unsigned long long>(id_), err.c_str());
    close("event loop error");
    return;
  }
  interest_ = want;
}

void Session::send(const protocol::Message& message) {
  std::string frame = protocol::encode(message);
  if (!out_.append(frame.data(), frame.size())) close("output buffer limit reached");
}

void Session::request_error(const ProtocolError& error) {
  app::log_info("%s #%llu request refused: %s: %s", peer_.c_str(), static_cast<unsigned long long>(id_),
                protocol::to_string(error.code), app::escape_for_terminal(error.message).c_str());
  send(protocol::ErrorMessage{error.code, error.message});
}

void Session::fatal(ErrorCode code, const std::string& message) {
  if (state_ == SessionState::kDraining || state_ == SessionState::kClosed) return;
  if (code != ErrorCode::kAuthFailed && code != ErrorCode::kShuttingDown)
    app::log_warn("%s #%llu: %s: %s", peer_.c_str(), static_cast<unsigned long long>(id_),
                  protocol::to_string(code), app::escape_for_terminal(message).c_str());
  sender_.reset();
  lister_.reset();
  send(protocol::ErrorMessage{code, message});
  drain_deadline_ = server_.loop().now() + kDrainTimeout;
  transition(SessionState::kDraining);
}

void Session::begin_shutdown() {
  if (busy()) {
    closing_after_response_ = true;
  } else if (state_ != SessionState::kDraining && state_ != SessionState::kClosed) {
    fatal(ErrorCode::kShuttingDown, "the server is shutting down");
    if (state_ != SessionState::kClosed) drive();
  }
}

void Session::check_timeouts(Clock::time_point now) {
  const Options& options = server_.options();
  switch (state_) {
    case SessionState::kAwaitAuth:
    case SessionState::kVerdictPending:
      // Absolute: a client trickling one byte at a time gains nothing.
      if (state_ == SessionState::kAwaitAuth && now >= handshake_->deadline) {
        fatal(ErrorCode::kTimeout, "no authentication within the handshake deadline");
        drive();
      }
      break;
    case SessionState::kReady:
    case SessionState::kSending:
    case SessionState::kListing:
      // Busy sessions count as active while the client keeps reading.
      if (now - last_activity_ >= options.idle_timeout) {
        if (busy()) {
          close("client stopped reading");
        } else {
          fatal(ErrorCode::kTimeout, "idle for too long");
          drive();
        }
      }
      break;
    case SessionState::kDraining:
      if (now >= drain_deadline_) close("drain timeout");
      break;
    case SessionState::kClosed:
      break;
  }
}

void Session::abort(const char* reason) { close(reason); }

void Session::close(const char* reason) {
  if (state_ == SessionState::kClosed) return;
  double seconds = std::chrono::duration<double>(server_.loop().now() - started_).count();
  app::log_info("%s #%llu closed: %s (%llu requests, %llu bytes out, %.1f s)", peer_.c_str(),
                static_cast<unsigned long long>(id_), reason, static_cast<unsigned long long>(requests_),
                static_cast<unsigned long long>(bytes_out_), seconds);
  transition(SessionState::kClosed);
  if (handshake_ && handshake_->verdict_timer != 0) {
    server_.loop().cancel(handshake_->verdict_timer);
    handshake_->verdict_timer = 0;
  }
  if (registered_) {
    server_.loop().remove_before_close(fd_.get());  // fd_ closes below; reactord never dups or forks
    registered_ = false;
  }
  sender_.reset();
  lister_.reset();
  fd_.reset();
  server_.retire(this);  // destroyed after the current dispatch pass
}

void Session::transition(SessionState next) {
  if (app::log_enabled(app::LogLevel::kDebug))
    app::log_debug("%s #%llu %s -> %s", peer_.c_str(), static_cast<unsigned long long>(id_), to_string(state_),
                   to_string(next));
  state_ = next;
}

}  // namespace server
