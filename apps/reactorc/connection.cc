#include "apps/reactorc/connection.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "apps/common/terminal_text.h"
#include "protocol/auth.h"
#include "reactor/socket_ops.h"

namespace client {
namespace {

constexpr const char kClientName[] = "reactorc/" REACTOR_VERSION;
// Read in big slices: at GiB/s, syscall count is what costs.
constexpr size_t kReadSlice = 256 * 1024;
constexpr size_t kInputLimit = 512 * 1024;

}  // namespace

Connection::Connection(reactor::EventLoop& loop, const app::Secret& secret, ConnectionListener& listener)
    : loop_(loop), secret_(secret), listener_(listener), in_(kInputLimit), decoder_(protocol::kMaxHeaderLen) {}

// remove_before_close: a connection's socket is never duplicated, and closes right after.
Connection::~Connection() {
  if (silence_timer_ != 0) loop_.cancel(silence_timer_);
  if (registered_) loop_.remove_before_close(fd_.get());
}

void Connection::connect(std::vector<reactor::SocketAddress> addresses, Clock::duration timeout,
                         const reactor::SocketAddress* source) {
  timeout_ = timeout;
  connector_ = std::make_unique<reactor::Connector>(
      loop_, std::move(addresses), timeout,
      [this](reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message) {
        on_connected(std::move(fd), error, message);
      },
      source);
  connector_->hand_over(reactor::kReadable, [this](uint32_t events) { on_events(events); });
}

void Connection::on_connected(reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message) {
  // The connector may not be destroyed inside its own callback.
  loop_.defer([this] { connector_.reset(); });
  if (error != reactor::ConnectError::kNone) {
    fail(Failure::kConnect, message);
    return;
  }
  fd_ = std::move(fd);
  peer_ = connector_->peer().to_string();
  registered_ = true;  // by the connector, for on_events (see connect())
  interest_ = reactor::kReadable;
  state_ = State::kAwaitHello;
  last_activity_ = loop_.now();
  silence_timer_ = loop_.run_every(std::chrono::milliseconds(250), [this] { check_silence(); });
}

void Connection::send(const protocol::Message& message) {
  std::string frame = protocol::encode(message);
  out_.append(frame.data(), frame.size());
  if (state_ == State::kReady || state_ == State::kAwaitHello || state_ == State::kAwaitAuthOk) {
    if (flush()) update_interest();
  }
}

bool Connection::server_offers(const std::string& feature) const {
  for (const std::string& offered : server_features_)
    if (offered == feature) return true;
  return false;
}

void Connection::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (silence_timer_ != 0) {
    loop_.cancel(silence_timer_);
    silence_timer_ = 0;
  }
  if (registered_) {
    loop_.remove_before_close(fd_.get());
    registered_ = false;
  }
  fd_.reset();
  connector_.reset();
}

void Connection::fail(Failure failure, const std::string& message) {
  if (state_ == State::kClosed) return;
  close();
  listener_.on_failure(*this, failure, message);
}

void Connection::check_silence() {
  if (state_ == State::kClosed) return;
  if (loop_.now() - last_activity_ >= timeout_) {
    double seconds = std::chrono::duration<double>(timeout_).count();
    char text[96];
    snprintf(text, sizeof text, "the server sent nothing for %.1f s", seconds);
    fail(state_ == State::kReady ? Failure::kTimeout : Failure::kTimeout, text);
  }
}

void Connection::on_events(uint32_t events) {
  if (events & (reactor::kReadable | reactor::kHangup | reactor::kError)) {
    // While a body streams, make room so one read can take a big slice; for handshakes
    // and small replies the buffer's default size (plus read_from's spill) is plenty.
    if (decoder_.body_remaining() > 0) in_.begin_write(kReadSlice);
    int saved_errno = 0;
    ssize_t n = in_.read_from(fd_.get(), &saved_errno);
    if (n > 0) {
      last_activity_ = loop_.now();
      process_input();
      if (state_ == State::kClosed) return;
    } else if (n == 0) {
      fail(Failure::kClosed, state_ == State::kAwaitHello ? "the server closed the connection before greeting"
                                                          : "the server closed the connection");
      return;
    } else if (saved_errno != EAGAIN && saved_errno != EWOULDBLOCK && saved_errno != EINTR) {
      fail(Failure::kClosed, std::string("connection to the server failed: ") + std::strerror(saved_errno));
      return;
    }
  }
  if (events & reactor::kWritable) {
    if (!flush()) return;
  }
  update_interest();
}

void Connection::process_input() {
  while (state_ != State::kClosed) {
    size_t consumed = 0;
    protocol::DecodeEvent event = decoder_.next(in_.peek(), in_.readable(), &consumed);
    switch (event.kind) {
      case protocol::DecodeEvent::kNeedMore:
        in_.consume(consumed);
        return;
      case protocol::DecodeEvent::kError:
        in_.consume(consumed);
        fail(Failure::kProtocol, "malformed frame from the server: " + decoder_.error().message);
        return;
      case protocol::DecodeEvent::kBody:
        // Deliver before consuming: the chunk points into the input buffer.
        listener_.on_body(*this, event.data, event.size, decoder_.body_remaining());
        in_.consume(consumed);
        break;
      case protocol::DecodeEvent::kHeader: {
        in_.consume(consumed);
        protocol::ProtocolError err;
        std::optional<protocol::Message> message =
            protocol::parse_message(decoder_.header(), decoder_.body_length(), &err);
        if (!message) {
          fail(Failure::kProtocol, "bad message from the server: " + err.message);
          return;
        }
        handle_header(*message);
        break;
      }
    }
  }
}

void Connection::handle_header(protocol::Message& message) {
  if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) {
    if (state_ != State::kReady || protocol::is_fatal(error->code)) {
      Failure failure = error->code == protocol::ErrorCode::kAuthFailed ? Failure::kAuth : Failure::kProtocol;
      if (error->code == protocol::ErrorCode::kTimeout) failure = Failure::kTimeout;
      // At its connection limit the server turns a client away before greeting it:
      // for a script that is "cannot connect, try later", like a refused connection.
      if (error->code == protocol::ErrorCode::kBusy) failure = Failure::kConnect;
      // A fatal error while ready may still be a reply the listener wants to report
      // in its own words (busy, shutting_down): it decides, then the connection ends.
      if (state_ == State::kReady) listener_.on_message(*this, message);
      fail(failure, std::string(protocol::to_string(error->code)) + ": " + app::escape_for_terminal(error->message));
      return;
    }
  }
  switch (state_) {
    case State::kAwaitHello: {
      auto* hello = std::get_if<protocol::Hello>(&message);
      if (hello == nullptr) {
        fail(Failure::kProtocol, std::string("expected hello from the server, got ") + protocol::type_name(message));
        return;
      }
      if (hello->proto < protocol::kProtocolVersion) {
        fail(Failure::kProtocol, "the server speaks protocol " + std::to_string(hello->proto) + "; this client needs 1");
        return;
      }
      server_software_ = app::escape_for_terminal(hello->server);
      server_features_ = hello->features;
      server_nonce_ = hello->nonce;
      std::string err;
      if (!protocol::random_nonce(&client_nonce_, &err)) {
        fail(Failure::kAuth, err);
        return;
      }
      protocol::Auth auth;
      auth.proto = protocol::kProtocolVersion;
      auth.client = kClientName;
      auth.features = {"get", "stat", "list", "ping", "msg"};
      auth.nonce = client_nonce_;
      auth.mac = protocol::client_proof(secret_.key, server_nonce_, client_nonce_);
      state_ = State::kAwaitAuthOk;
      send(auth);
      return;
    }
    case State::kAwaitAuthOk: {
      auto* ok = std::get_if<protocol::AuthOk>(&message);
      if (ok == nullptr) {
        fail(Failure::kProtocol, std::string("expected auth_ok from the server, got ") + protocol::type_name(message));
        return;
      }
      protocol::Mac expected = protocol::server_proof(secret_.key, server_nonce_, client_nonce_);
      if (!protocol::proofs_equal(expected, ok->mac)) {
        fail(Failure::kAuth, "the server failed to prove it knows the secret: it may be an impostor");
        return;
      }
      state_ = State::kReady;
      listener_.on_ready(*this);
      return;
    }
    case State::kReady:
      listener_.on_message(*this, message);
      return;
    case State::kConnecting:
    case State::kClosed:
      return;
  }
}

bool Connection::flush() {
  while (out_.readable() > 0) {
    int saved_errno = 0;
    ssize_t n = out_.write_to(fd_.get(), SIZE_MAX, &saved_errno);
    if (n > 0) continue;
    if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == EINTR) break;
    fail(Failure::kClosed, std::string("sending to the server failed: ") + std::strerror(saved_errno));
    return false;
  }
  return true;
}

void Connection::update_interest() {
  if (state_ == State::kClosed || !registered_) return;
  uint32_t want = reactor::kReadable | (out_.readable() > 0 ? reactor::kWritable : 0u);
  if (want == interest_) return;
  std::string err;
  if (!loop_.modify(fd_.get(), want, &err)) {
    fail(Failure::kClosed, err);
    return;
  }
  interest_ = want;
}

}  // namespace client
