#include "apps/reactorc/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
#include "protocol/auth.h"
#include "protocol/features.h"
#include "protocol/peer_sniff.h"

namespace client {
namespace {

using protocol::MessageType;
using S = Connection::State;

constexpr const char kClientName[] = "reactorc/" REACTOR_VERSION;
// Read in big slices while a body streams in: at GiB/s, syscall count is what costs.
constexpr size_t kReadSlice = 256 * 1024;
constexpr size_t kInputLimit = 512 * 1024;
constexpr auto kSilenceCheck = std::chrono::milliseconds(250);

constexpr app::Edge<S> kEdges[] = {
    {S::kConnecting, S::kAwaitHello},  {S::kConnecting, S::kClosed}, {S::kAwaitHello, S::kAwaitAuthOk},
    {S::kAwaitHello, S::kClosed},      {S::kAwaitAuthOk, S::kReady}, {S::kAwaitAuthOk, S::kClosed},
    {S::kReady, S::kClosed},
};

constexpr app::Diagram<S> kDiagram{kEdges, to_string};
constexpr uint32_t in(S state) { return app::state_bit(state); }

protocol::StreamLimits make_connection_limits() {
  protocol::StreamLimits limits;
  limits.header_limit = protocol::kMaxHeaderLen;
  limits.input_max = kInputLimit;
  limits.input_high_water = kInputLimit;
  limits.body_read_slice = kReadSlice;
  return limits;
}
const protocol::StreamLimits kConnectionLimits = make_connection_limits();

// The first frame of `bytes`, if it is a whole, valid error frame of the plain protocol.
std::optional<protocol::ErrorMessage> plain_error(const std::string& bytes) {
  protocol::FrameDecoder decoder(protocol::kMaxHeaderLen);
  size_t consumed = 0;
  if (decoder.next(bytes.data(), bytes.size(), &consumed).kind != protocol::DecodeEvent::kHeader) return std::nullopt;
  protocol::ProtocolError err;
  std::optional<protocol::Message> message = protocol::parse_message(decoder.header(), decoder.body_length(), &err);
  if (!message) return std::nullopt;
  if (auto* error = std::get_if<protocol::ErrorMessage>(&*message)) return *error;
  return std::nullopt;
}

}  // namespace

const char* to_string(Connection::State state) {
  switch (state) {
    case S::kConnecting: return "connecting";
    case S::kAwaitHello: return "await-hello";
    case S::kAwaitAuthOk: return "await-auth-ok";
    case S::kReady: return "ready";
    case S::kClosed: return "closed";
  }
  return "?";
}

// What the server may send in each state (an error, in any state, is handled first).
struct Connection::Rule {
  MessageType type;
  uint32_t states;
  void (Connection::*handle)(protocol::Message&);
};

const Connection::Rule Connection::kRules[] = {
    {MessageType::kHello, in(S::kAwaitHello), &Connection::handle_hello},
    {MessageType::kAuthOk, in(S::kAwaitAuthOk), &Connection::handle_auth_ok},
    {MessageType::kFile, in(S::kReady), &Connection::handle_reply},
    {MessageType::kEnd, in(S::kReady), &Connection::handle_reply},
    {MessageType::kStatOk, in(S::kReady), &Connection::handle_reply},
    {MessageType::kEntries, in(S::kReady), &Connection::handle_reply},
    {MessageType::kListEnd, in(S::kReady), &Connection::handle_reply},
    {MessageType::kPong, in(S::kReady), &Connection::handle_reply},
    {MessageType::kMsgOk, in(S::kReady), &Connection::handle_reply},
    {MessageType::kPutReady, in(S::kReady), &Connection::handle_reply},
    {MessageType::kPutDone, in(S::kReady), &Connection::handle_reply},
    {MessageType::kDigestsOk, in(S::kReady), &Connection::handle_reply},
    {MessageType::kMkdirOk, in(S::kReady), &Connection::handle_reply},
    {MessageType::kSymlinkOk, in(S::kReady), &Connection::handle_reply},
};

Connection::Connection(reactor::EventLoop& loop, const app::Secret& secret, ConnectionListener& listener,
                       std::shared_ptr<protocol::TlsContext> tls)
    : loop_(loop),
      secret_(secret),
      listener_(listener),
      tls_(std::move(tls)),
      machine_(S::kConnecting, kDiagram),
      stream_(loop, *this, kConnectionLimits) {}

Connection::~Connection() {
  if (silence_timer_ != 0) loop_.cancel(silence_timer_);
}

bool Connection::transition(State next) {
  return machine_.transition(next, [this] { return "connection to " + (peer_.empty() ? std::string("?") : peer_); });
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
  // The connected socket stays registered, its events routed to the stream.
  connector_->hand_over(reactor::kReadable, [this](uint32_t events) { stream_.on_events(events); });
}

void Connection::on_connected(reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message) {
  // The connector may not be destroyed inside its own callback.
  loop_.defer([this] { connector_.reset(); });
  if (error != reactor::ConnectError::kNone) {
    fail(Failure::kConnect, message);
    return;
  }
  peer_ = connector_->peer().to_string();
  std::unique_ptr<reactor::Transport> transport;
  if (tls_) {
    std::string err;
    transport = tls_->wrap(fd.get(), &err);
    if (!transport) {
      fail(Failure::kProtocol, err);
      return;
    }
  }
  stream_.attach_registered(std::move(fd), std::move(transport), reactor::kReadable);
  if (state() == S::kClosed || !transition(S::kAwaitHello)) return;
  start_handshake_timer();
}

void Connection::adopt(reactor::UniqueFd fd, std::unique_ptr<reactor::Transport> transport, Clock::duration timeout,
                       const std::string& peer) {
  timeout_ = timeout;
  peer_ = peer;
  std::string err;
  if (!stream_.attach(std::move(fd), std::move(transport), &err)) {
    fail(Failure::kConnect, err);
    return;
  }
  if (!transition(S::kAwaitHello)) return;
  start_handshake_timer();
}

void Connection::start_handshake_timer() {
  waiting_since_ = loop_.now();
  silence_timer_ = loop_.run_every(kSilenceCheck, [this] { check_silence(); });
}

void Connection::submit(Command& command) {
  if (state() != S::kReady) {
    command.abandon(kExitFailure, "internal error: request before the connection is ready");
    return;
  }
  if (!waiting_.empty() || (!in_flight_.empty() && in_flight_.back()->sending())) {
    waiting_.push_back(&command);
    return;
  }
  send_request(command);
}

void Connection::send_request(Command& command) {
  // The silence clock starts when a response becomes due, not at the last traffic: a
  // connection idle for an hour may then wait its full timeout for this reply.
  if (in_flight_.empty()) waiting_since_ = loop_.now();
  in_flight_.push_back(&command);
  command.set_outbox(this);
  command.set_protocol_version(protocol_version());
  if (!stream_.send(command.request())) return;
  command.on_sent();
}

void Connection::release_waiting() {
  // What waited behind an upload goes now, up to the next one that sends more.
  while (!waiting_.empty() && state() == S::kReady && (in_flight_.empty() || !in_flight_.back()->sending())) {
    Command* next = waiting_.front();
    waiting_.pop_front();
    send_request(*next);
  }
}

void Connection::on_produced() {
  // Only the newest command can be producing: nothing is sent behind one still sending.
  if (!in_flight_.empty()) in_flight_.back()->on_produced();
  finish_front_if_done(0);
  release_waiting();
}

bool Connection::server_offers(const std::string& feature) const {
  for (const std::string& offered : server_features_)
    if (offered == feature) return true;
  return false;
}

void Connection::resume_input() {
  if (!input_paused_) return;
  input_paused_ = false;
  if (state() != State::kClosed) stream_.pump();
}

void Connection::close() {
  if (state() == S::kClosed) return;
  transition(S::kClosed);
  if (silence_timer_ != 0) {
    loop_.cancel(silence_timer_);
    silence_timer_ = 0;
  }
  stream_.close();
  connector_.reset();
  std::deque<Command*> abandoned;
  abandoned.swap(in_flight_);
  for (Command* command : waiting_) abandoned.push_back(command);
  waiting_.clear();
  for (Command* command : abandoned) command->abandon(kExitFailure, "the connection was closed");
}

void Connection::fail(Failure failure, const std::string& message) {
  if (state() == S::kClosed) return;
  // Commands in flight fail with the connection's reason, before close() would give
  // them its own.
  std::deque<Command*> abandoned;
  abandoned.swap(in_flight_);
  for (Command* command : waiting_) abandoned.push_back(command);
  waiting_.clear();
  for (Command* command : abandoned) command->abandon(exit_code_for(failure), message);
  close();
  listener_.on_failure(*this, failure, message);
}

void Connection::check_silence() {
  if (state() == S::kClosed) return;
  // Silence counts only while a response is due: the handshake, or a command in flight.
  if (state() == S::kReady && in_flight_.empty()) return;
  if (input_paused_) {
    waiting_since_ = loop_.now();  // our own choice, not the server's silence
    return;
  }
  Clock::time_point since = std::max(stream_.last_activity(), waiting_since_);
  if (loop_.now() - since >= timeout_) {
    char text[96];
    std::snprintf(text, sizeof text, "the server sent nothing for %.1f s",
                  std::chrono::duration<double>(timeout_).count());
    std::string message = text;
    // A plain reactor server greets at once; a peer that has said nothing at all is
    // most likely one that waits for its client to speak first.
    if (tls_ == nullptr && stream_.bytes_in() == 0)
      message += ", not even a greeting: is this a reactor server? (an HTTP server, for one, waits for its "
                 "client to speak first)";
    fail(Failure::kTimeout, message);
  }
}

void Connection::on_message(protocol::Message& message) {
  if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) {
    if (state() != S::kReady || protocol::is_fatal(error->code)) return on_error_message(*error);
    return handle_reply(message);  // a per-request refusal: the command's answer
  }
  MessageType type = protocol::type_of(message);
  for (const Rule& rule : kRules) {
    if (rule.type == type && (rule.states & in(state())) != 0) return (this->*rule.handle)(message);
  }
  switch (state()) {
    case S::kAwaitHello:
      return fail(Failure::kProtocol, std::string("expected hello from the server, got ") + protocol::type_name(message));
    case S::kAwaitAuthOk:
      return fail(Failure::kProtocol,
                  std::string("expected auth_ok from the server, got ") + protocol::type_name(message));
    default:
      return fail(Failure::kProtocol, std::string("unexpected reply from the server: ") + protocol::type_name(message));
  }
}

// A fatal error ends the connection. While ready, the command in flight gets it first,
// so that it reports it in its own words (busy, shutting_down).
void Connection::on_error_message(const protocol::ErrorMessage& error) {
  Failure failure = error.code == protocol::ErrorCode::kAuthFailed ? Failure::kAuth : Failure::kProtocol;
  if (error.code == protocol::ErrorCode::kTimeout) failure = Failure::kTimeout;
  // At its connection limit the server turns a client away before greeting it: for a
  // script that is "cannot connect, try later", like a refused connection.
  if (error.code == protocol::ErrorCode::kBusy) failure = Failure::kConnect;
  if (state() == S::kReady && !in_flight_.empty()) {
    protocol::Message message = error;
    in_flight_.front()->on_message(message);
    finish_front_if_done(0);
  }
  fail(failure, describe(error));
}

void Connection::handle_hello(protocol::Message& message) {
  auto& hello = std::get<protocol::Hello>(message);
  if (hello.proto < protocol::kMinProtocolVersion) {
    fail(Failure::kProtocol, "the server speaks protocol " + std::to_string(hello.proto) + "; this client needs 1 or 2");
    return;
  }
  proto_ = std::min<uint64_t>(hello.proto, protocol::kProtocolVersion);
  server_software_ = app::escape_for_terminal(hello.server);
  server_features_ = hello.features;
  server_nonce_ = hello.nonce;
  std::string err;
  if (!protocol::random_nonce(&client_nonce_, &err)) {
    fail(Failure::kAuth, err);
    return;
  }
  protocol::Auth auth;
  auth.proto = protocol::kProtocolVersion;
  auth.client = kClientName;
  auth.features = protocol::client_features();
  auth.nonce = client_nonce_;
  auth.mac = protocol::client_proof(secret_.key, server_nonce_, client_nonce_, binding());
  if (!transition(S::kAwaitAuthOk)) return;
  stream_.send(auth);
}

// Inside TLS the proofs are bound to the TLS session (see protocol/auth.h).
const protocol::ChannelBinding* Connection::binding() {
  return stream_.transport()->channel_binding(&binding_) ? &binding_ : nullptr;
}

void Connection::handle_auth_ok(protocol::Message& message) {
  auto& ok = std::get<protocol::AuthOk>(message);
  protocol::Mac expected = protocol::server_proof(secret_.key, server_nonce_, client_nonce_, binding());
  if (!protocol::proofs_equal(expected, ok.mac)) {
    fail(Failure::kAuth, "the server failed to prove it knows the secret: it may be an impostor");
    return;
  }
  if (ok.proto != proto_) {
    fail(Failure::kProtocol, "the server settled on protocol " + std::to_string(ok.proto) + ", not version " +
                                 std::to_string(proto_) + ", the smaller of the two sides'");
    return;
  }
  if (!transition(S::kReady)) return;
  listener_.on_ready(*this);
}

void Connection::handle_reply(protocol::Message& message) {
  MessageType type = protocol::type_of(message);
  bool trailer = type == MessageType::kEnd || type == MessageType::kError;
  if (skipping_trailer_ && trailer) {
    skipping_trailer_ = false;
    return;
  }
  if (in_flight_.empty()) {
    fail(Failure::kProtocol, std::string("unexpected reply from the server: ") + protocol::type_name(message));
    return;
  }
  uint64_t body = 0;
  if (auto* header = std::get_if<protocol::FileHeader>(&message)) {
    body = header->body_length();
    owes_trailer_ = true;
  } else if (auto* digests = std::get_if<protocol::DigestsReply>(&message)) {
    body = digests->body_length();
  } else if (auto* ready = std::get_if<protocol::PutReady>(&message)) {
    body = ready->body_length();
  } else if (trailer) {
    owes_trailer_ = false;
  }
  in_flight_.front()->on_message(message);
  finish_front_if_done(body);
}

void Connection::on_body(const char* data, size_t len, uint64_t remaining) {
  if (skipping_body_) {
    skipping_body_ = remaining > 0;
    return;
  }
  if (state() != S::kReady || in_flight_.empty()) {
    fail(Failure::kProtocol, "the server sent an unexpected body");
    return;
  }
  in_flight_.front()->on_body(data, len, remaining);
  finish_front_if_done(remaining);
}

// A command that has its answer leaves the queue. One that failed on a protocol
// violation takes the connection with it: nothing after it on the stream can be
// trusted. One that failed mid-body (a local write error) has the rest of its body
// skipped, so the next command's response starts where it should.
void Connection::finish_front_if_done(uint64_t body_remaining) {
  if (in_flight_.empty() || !in_flight_.front()->finished()) return;
  // A refused eager upload still sends the rest of its body and its end, which the
  // server discards: it leaves once they are out.
  if (in_flight_.front()->sending() && !in_flight_.front()->broke_stream()) return;
  Command* command = in_flight_.front();
  in_flight_.pop_front();
  if (command->result().exit_code == kExitProtocol) {
    std::string why = command->result().message;
    in_flight_.push_front(command);  // abandoned with the rest; it is failed already
    fail(Failure::kProtocol, why);
    return;
  }
  if (command->broke_stream()) {
    // An upload stopped in its body: the server expects bytes that will not come, so
    // nothing more can go over this connection. The command's failure is the news.
    stream_.stop_producing();
    close();
    listener_.on_command_done(*this, *command);
    return;
  }
  skipping_body_ = body_remaining > 0;
  skipping_trailer_ = owes_trailer_;
  owes_trailer_ = false;
  if (!in_flight_.empty()) waiting_since_ = loop_.now();
  release_waiting();
  listener_.on_command_done(*this, *command);
}

void Connection::on_failure(const protocol::StreamFailure& failure) {
  using F = protocol::StreamFailure;
  switch (failure.kind) {
    case F::kBadFrame: {
      // The very first bytes already no frame: say what answered instead (an SSH or SMTP
      // server's banner, HTTP, TLS), not what the frame's length would have been.
      protocol::PeerKind kind = protocol::sniff_peer(failure.peer_bytes);
      if (kind != protocol::PeerKind::kUnknown && kind != protocol::PeerKind::kReactorFrame)
        return fail(Failure::kProtocol, peer_ + " speaks " + protocol::peer_kind_name(kind) +
                                            ", not the reactor protocol" +
                                            (kind == protocol::PeerKind::kTlsRecord ? "; connect without --plain" : ""));
      return fail(Failure::kProtocol, "malformed frame from the server: " + failure.error.message);
    }
    case F::kBadMessage:
      return fail(Failure::kProtocol, "bad message from the server: " + failure.error.message);
    case F::kEndOfInput:
      return fail(Failure::kClosed, state() == S::kAwaitHello ? "the server closed the connection before greeting"
                                                              : "the server closed the connection");
    case F::kReadFailed:
      return fail(Failure::kClosed, std::string("connection to the server failed: ") +
                                        (failure.text.empty() ? std::strerror(failure.errnum) : failure.text));
    case F::kWriteFailed:
      return fail(Failure::kClosed, std::string("sending to the server failed: ") +
                                        (failure.text.empty() ? std::strerror(failure.errnum) : failure.text));
    case F::kOutputFull:
      return fail(Failure::kClosed, "too much output queued for the server");
    case F::kHandshake:
      switch (failure.handshake) {
        case reactor::HandshakeFailure::kAuthentication:
          return fail(Failure::kAuth, "authentication failed: the server does not share this secret (tls handshake with " +
                                          peer_ + ": " + failure.text + ")");
        case reactor::HandshakeFailure::kCertificate:
          return fail(Failure::kCertificate, "the TLS certificate of " + peer_ + " was refused: " + failure.text);
        case reactor::HandshakeFailure::kWrongProtocol:
          // A plain server may be saying something in its own protocol (busy, at its
          // connection limit): report that rather than the mismatch.
          if (std::optional<protocol::ErrorMessage> said = plain_error(failure.peer_bytes))
            return on_error_message(*said);
          if (protocol::sniff_peer(failure.peer_bytes) == protocol::PeerKind::kReactorFrame)
            return fail(Failure::kProtocol,
                        peer_ + " speaks the plain reactor protocol, not TLS; connect with --plain to use it");
          if (!failure.peer_bytes.empty()) return fail(Failure::kProtocol, peer_ + " " + failure.text);
          return fail(Failure::kProtocol, "tls handshake with " + peer_ + ": " + failure.text);
        case reactor::HandshakeFailure::kOther:
          break;
      }
      return fail(Failure::kProtocol, "tls handshake with " + peer_ + ": " + failure.text);
    case F::kLoop:
      return fail(Failure::kClosed, failure.text);
  }
}

}  // namespace client
