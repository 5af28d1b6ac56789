#include "apps/reactord/session.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "apps/reactord/auth_throttle.h"
#include "apps/reactord/digest_cache.h"
#include "apps/reactord/options.h"
#include "apps/reactord/served_root.h"
#include "protocol/auth.h"
#include "protocol/memory_producer.h"
#include "protocol/peer_sniff.h"
#include "reactor/errors.h"

namespace server {
namespace {

using protocol::ErrorCode;
using protocol::MessageType;
using protocol::ProtocolError;
using S = SessionState;

// What a web browser pointed at a reactord port is told, as an HTTP answer it can show.
constexpr char kNotHttp[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    "This port speaks the reactor file-transfer protocol, not HTTP.\n"
    "Use reactorc(1) to fetch files from it; see reactor-protocol(7).\n";

// Input kept while a response is in progress (pipelined requests). Past this the
// session stops reading and lets TCP flow control hold the client back.
constexpr size_t kInputHighWater = 4 + protocol::kMaxHeaderLen;
// Output queued before the session stops taking requests: a client that pipelines
// requests and never reads the answers is held back by TCP instead of growing our memory.
constexpr size_t kOutputHighWater = 256 * 1024;
// How long a TLS listener waits for a client's first byte before taking it for a plain
// client waiting for a hello (checked by the once-a-second sweep, so 3 to 4 s). A TLS
// client sends its ClientHello the moment it connects; the margin is for one that the
// scheduler runs late, as when two hundred start at once on two loaded cores (2 s refused
// one in three such TLS clients under ASan, before the socket was asked as well).
constexpr auto kPlainClientPatience = std::chrono::seconds(3);
// Time allowed to deliver a final error frame and see the client close.
constexpr auto kDrainTimeout = std::chrono::seconds(2);

constexpr const char kServerName[] = "reactord/" REACTOR_VERSION;

// The diagram in session.h, edge by edge.
constexpr app::Edge<S> kEdges[] = {
    {S::kAwaitAuth, S::kVerdictPending}, {S::kAwaitAuth, S::kDraining},      {S::kAwaitAuth, S::kClosed},
    {S::kVerdictPending, S::kReady},     {S::kVerdictPending, S::kDraining}, {S::kVerdictPending, S::kClosed},
    {S::kReady, S::kSending},            {S::kReady, S::kListing},           {S::kReady, S::kDraining},
    {S::kReady, S::kClosed},             {S::kSending, S::kReady},           {S::kSending, S::kDraining},
    {S::kSending, S::kClosed},           {S::kListing, S::kReady},           {S::kListing, S::kDraining},
    {S::kListing, S::kClosed},           {S::kReady, S::kReceiving},         {S::kReceiving, S::kCommitting},
    {S::kReceiving, S::kReady},          {S::kReceiving, S::kDraining},      {S::kReceiving, S::kClosed},
    {S::kCommitting, S::kReady},         {S::kCommitting, S::kDraining},     {S::kCommitting, S::kClosed},
    {S::kReady, S::kDigesting},          {S::kDigesting, S::kSending},       {S::kDigesting, S::kReady},
    {S::kDigesting, S::kDraining},       {S::kDigesting, S::kClosed},        {S::kDigesting, S::kReceiving},
    {S::kDraining, S::kClosed},
};

constexpr app::Diagram<S> kDiagram{kEdges, to_string};
constexpr uint32_t in(S state) { return app::state_bit(state); }

protocol::StreamLimits make_session_limits() {
  protocol::StreamLimits limits;
  // Until authenticated a client gets only 4 KiB headers; handle_auth raises it.
  limits.header_limit = protocol::kMaxHeaderLenBeforeAuth;
  limits.input_max = kInputHighWater + 64 * 1024;
  limits.input_high_water = kInputHighWater;
  limits.output_high_water = kOutputHighWater;
  limits.write_budget = Session::kWriteBudget;
  limits.read_budget = Session::kReadBudget;
  limits.produce_low_water = app::BodySource::kChunk;
  return limits;
}
const protocol::StreamLimits kSessionLimits = make_session_limits();

// "[::1]:41234" -> "::1", "127.0.0.1:41234" -> "127.0.0.1": the auth throttle counts
// failures per address, whatever port each attempt comes from.
std::string host_of(const std::string& address) {
  if (!address.empty() && address.front() == '[') return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

}  // namespace

const char* to_string(SessionState state) {
  switch (state) {
    case S::kAwaitAuth: return "await-auth";
    case S::kVerdictPending: return "verdict-pending";
    case S::kReady: return "ready";
    case S::kSending: return "sending";
    case S::kListing: return "listing";
    case S::kReceiving: return "receiving";
    case S::kCommitting: return "committing";
    case S::kDigesting: return "digesting";
    case S::kDraining: return "draining";
    case S::kClosed: return "closed";
  }
  return "?";
}

// One row per message a client may send: the states it is allowed in, the protocol
// version that defines it, whether it changes the file system (a read-only server
// refuses those), and its handler.
struct Session::Rule {
  MessageType type;
  uint32_t states;
  uint8_t since;
  bool writes;
  void (Session::*handle)(protocol::Message&);
};

template <typename T, void (Session::*Handle)(const T&)>
void Session::dispatch_as(protocol::Message& message) {
  (this->*Handle)(std::get<T>(message));
}

const Session::Rule Session::kRules[] = {
    {MessageType::kAuth, in(S::kAwaitAuth), 1, false, &Session::dispatch_as<protocol::Auth, &Session::handle_auth>},
    {MessageType::kGet, in(S::kReady), 1, false, &Session::dispatch_as<protocol::GetRequest, &Session::handle_get>},
    {MessageType::kStat, in(S::kReady), 1, false, &Session::dispatch_as<protocol::StatRequest, &Session::handle_stat>},
    {MessageType::kList, in(S::kReady), 1, false, &Session::dispatch_as<protocol::ListRequest, &Session::handle_list>},
    {MessageType::kPing, in(S::kReady), 1, false, &Session::dispatch_as<protocol::PingRequest, &Session::handle_ping>},
    {MessageType::kMsg, in(S::kReady), 1, false, &Session::dispatch_as<protocol::MsgRequest, &Session::handle_msg>},
    {MessageType::kPut, in(S::kReady), 2, true, &Session::dispatch_as<protocol::PutRequest, &Session::handle_put>},
    {MessageType::kData, in(S::kReceiving), 2, false, &Session::dispatch_as<protocol::Data, &Session::handle_data>},
    {MessageType::kEnd, in(S::kReceiving), 2, false, &Session::dispatch_as<protocol::End, &Session::handle_upload_end>},
    {MessageType::kDigests, in(S::kReady), 2, false,
     &Session::dispatch_as<protocol::DigestsRequest, &Session::handle_digests>},
    {MessageType::kMkdir, in(S::kReady), 2, true, &Session::dispatch_as<protocol::MkdirRequest, &Session::handle_mkdir>},
    {MessageType::kSymlink, in(S::kReady), 2, true,
     &Session::dispatch_as<protocol::SymlinkRequest, &Session::handle_symlink>},
};

Session::Session(SessionHost& server, uint64_t id, reactor::UniqueFd fd, const reactor::SocketAddress& peer,
                 std::unique_ptr<reactor::Transport> transport)
    : server_(server),
      id_(id),
      peer_(peer.to_string()),
      machine_(S::kAwaitAuth, kDiagram),
      stream_(server.loop(), *this, kSessionLimits) {
  stream_.hold(std::move(fd), std::move(transport));
}

Session::~Session() {
  if (handshake_ && handshake_->verdict_timer != 0) server_.loop().cancel(handshake_->verdict_timer);
}

std::string Session::who() const { return peer_ + " #" + std::to_string(id_); }

bool Session::transition(SessionState next) {
  if (machine_.transition(next, [this] { return who(); })) return true;
  // A bug, not the client's doing: end the connection rather than run on in a state the
  // diagram does not have.
  if (next != S::kClosed && state() != S::kClosed) close("internal error: illegal state change");
  return false;
}

bool Session::start() {
  Clock::time_point now = server_.loop().now();
  started_ = now;
  handshake_->deadline = now + server_.options().handshake_timeout;
  std::string err;
  if (!protocol::random_nonce(&handshake_->server_nonce, &err)) {
    app::log_connection(app::LogLevel::kError, peer_.c_str(), id_, ": %s", err.c_str());
    close("no randomness");
    return false;
  }
  // A TLS handshake proves the secret as the auth frame does, so an address with recent
  // failures waits its turn before its handshake starts, exactly as its verdict would
  // (see handle_auth): guessing keys over TLS is no faster than guessing proofs.
  if (stream_.transport()->authenticates_peer()) {
    std::optional<Clock::time_point> slot =
        server_.throttle().reserve_verdict(host_of(peer_), now, handshake_->deadline);
    if (!slot) {
      // Before TLS has begun: said in the clear, which a TLS client reads and reports.
      stream_.refuse_in_clear(protocol::encode(protocol::ErrorMessage{
          ErrorCode::kTimeout, "too many recent authentication failures from this address; try again later"}));
      close("too many recent authentication failures from this address");
      return false;
    }
    if (*slot > now) {
      handshake_->throttled = true;
      handshake_->verdict_timer = server_.loop().run_after(*slot - now, [this] {
        handshake_->verdict_timer = 0;
        attach_and_greet();
      });
      return true;
    }
    handshake_->throttled = true;
  }
  return attach_and_greet();
}

bool Session::attach_and_greet() {
  std::string err;
  stream_.set_rate_limit(server_.options().limit_rate);
  if (!stream_.attach(&err)) {
    app::log_connection(app::LogLevel::kError, peer_.c_str(), id_, ": %s", err.c_str());
    close("cannot watch");
    return false;
  }
  if (state() == S::kClosed) return false;  // the TLS handshake failed at once
  protocol::Hello hello;
  hello.proto = protocol::kProtocolVersion;
  hello.server = kServerName;
  hello.features = server_.features();
  hello.nonce = handshake_->server_nonce;
  stream_.send(hello);
  return state() != S::kClosed;
}

bool Session::accepting_input() const {
  return state() == S::kAwaitAuth || state() == S::kReady || state() == S::kReceiving;
}

bool Session::drop_refused_upload(const protocol::Message& message) {
  MessageType type = protocol::type_of(message);
  if (refused_upload_ == RefusedUpload::kMayFollow) {
    if (type == MessageType::kData) {
      refused_upload_ = RefusedUpload::kDiscardingBody;
      return true;
    }
    refused_upload_ = RefusedUpload::kNone;  // the client waited for the verdict: a request
    return false;
  }
  if (type == MessageType::kEnd) {
    refused_upload_ = RefusedUpload::kNone;
    return true;
  }
  refused_upload_ = RefusedUpload::kNone;
  fatal(ErrorCode::kUnexpectedMessage,
        std::string("expected the end of the refused upload's data, got ") + protocol::type_name(message));
  return true;
}

void Session::refuse_put(const protocol::PutRequest& request, const ProtocolError& error) {
  // An eager client (reactor-protocol(7), eager_put) has sent the data and end already.
  if (!request.resume) refused_upload_ = RefusedUpload::kMayFollow;
  request_error(error);
}

void Session::on_message(protocol::Message& message) {
  MessageType type = protocol::type_of(message);
  if (refused_upload_ != RefusedUpload::kNone && state() == S::kReady && drop_refused_upload(message)) return;
  if (state() == S::kReady) ++requests_;
  for (const Rule& rule : kRules) {
    if (rule.type != type) continue;
    if ((rule.states & in(state())) == 0 || rule.since > proto_) break;
    if (rule.writes && !server_.options().writable) {
      ProtocolError read_only{ErrorCode::kReadOnly, "this server is read-only: it takes no uploads (reactord -w allows them)"};
      if (type == MessageType::kPut) return refuse_put(std::get<protocol::PutRequest>(message), read_only);
      return request_error(read_only);
    }
    (this->*rule.handle)(message);
    return;
  }
  refuse_unexpected(message);
}

void Session::refuse_unexpected(const protocol::Message& message) {
  MessageType type = protocol::type_of(message);
  if (state() == S::kAwaitAuth) {
    fatal(ErrorCode::kUnexpectedMessage,
          std::string("expected auth, got ") + protocol::type_name(message) + ": authenticate first");
  } else if (state() == S::kReceiving) {
    fatal(ErrorCode::kUnexpectedMessage, std::string("expected the upload's ") +
                                             (response_ && response_->data_seen ? "end" : "data") + ", got " +
                                             protocol::type_name(message));
  } else if (type == MessageType::kPut && proto_ < protocol::kPutVersion) {
    fatal(ErrorCode::kUnexpectedMessage, "put needs protocol version 2; this connection uses version " +
                                             std::to_string(proto_));
  } else {
    fatal(ErrorCode::kUnexpectedMessage,
          std::string(protocol::type_name(message)) + " is not a request a client may send");
  }
}

void Session::on_body(const char* data, size_t len, uint64_t) {
  if (refused_upload_ == RefusedUpload::kDiscardingBody) return;  // a refused eager put's
  // Only an upload's data frame has a body; parse_message rejects one on any other.
  if (state() != S::kReceiving || !response_ || !response_->data_seen) {
    fatal(ErrorCode::kInternal, "unexpected body bytes");
    return;
  }
  if (response_->upload_failed) return;  // refused already: the rest is discarded
  ProtocolError err;
  if (!response_->upload->write(data, len, &err)) upload_failed(err);
}

void Session::on_failure(const protocol::StreamFailure& failure) {
  using F = protocol::StreamFailure;
  switch (failure.kind) {
    case F::kBadFrame:
      if (state() == S::kAwaitAuth && refuse_wrong_peer(failure.peer_bytes)) return;
      fatal(failure.error.code, failure.error.message);
      return;
    case F::kBadMessage:
      fatal(failure.error.code, failure.error.message);
      return;
    case F::kEndOfInput:
      if (state() == S::kDraining) close("closed after error");
      else if (state() == S::kReceiving) close(mid_upload("client went away mid-upload"));
      else if (busy()) close("client went away mid-response");
      else close(state() == S::kReady ? "client closed" : "client closed before authenticating");
      return;
    case F::kReadFailed:
      if (state() == S::kReceiving) return close(mid_upload("connection lost mid-upload"));
      close(failure.errnum == ECONNRESET ? "connection reset by client"
            : !failure.text.empty()      ? failure.text.c_str()
                                         : std::strerror(failure.errnum));
      return;
    case F::kWriteFailed:
      close(failure.errnum == EPIPE || failure.errnum == ECONNRESET ? "client went away"
                                                                     : std::strerror(failure.errnum));
      return;
    case F::kOutputFull:
      close("output buffer limit reached");
      return;
    case F::kHandshake:
      if (failure.handshake == reactor::HandshakeFailure::kAuthentication) {
        // A client with another secret: a failed authentication like any other.
        server_.throttle().record_failure(host_of(peer_), server_.loop().now());
        app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_,
                            ": authentication failed in the TLS handshake: %s (%zu recent failures from this address)",
                            failure.text.c_str(), server_.throttle().failures(host_of(peer_)));
      } else {
        // "speaks HTTP, not TLS" reads best right after the address.
        bool named = failure.handshake == reactor::HandshakeFailure::kWrongProtocol && !failure.peer_bytes.empty();
        app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, "%s%s", named ? " " : ": tls handshake failed: ",
                            failure.text.c_str());
        // A web browser pointed at the port: nothing was sent yet, so it gets an answer
        // it can show.
        if (named && protocol::sniff_peer(failure.peer_bytes) == protocol::PeerKind::kHttpRequest) {
          stream_.refuse_in_clear(kNotHttp);
          close("an HTTP client");
          return;
        }
      }
      close("TLS handshake failed");
      return;
    case F::kLoop:
      app::log_connection(app::LogLevel::kError, peer_.c_str(), id_, ": %s", failure.text.c_str());
      close("event loop error");
      return;
  }
}

// A first frame that breaks the framing may be another protocol altogether: say so in
// the log, and to a web browser in words it can show. True if it was one of those.
bool Session::refuse_wrong_peer(const std::string& first_bytes) {
  protocol::PeerKind kind = protocol::sniff_peer(first_bytes);
  switch (kind) {
    case protocol::PeerKind::kHttpRequest:
      app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, " speaks HTTP, not the reactor protocol");
      stream_.refuse_in_clear(kNotHttp);
      close("an HTTP client");
      return true;
    case protocol::PeerKind::kTlsRecord:
    case protocol::PeerKind::kSsh:
      app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, " speaks %s, not the plain reactor protocol%s",
                          protocol::peer_kind_name(kind),
                          kind == protocol::PeerKind::kTlsRecord ? " (this listener is plain)" : "");
      close(kind == protocol::PeerKind::kTlsRecord ? "a TLS client at a plain listener" : "an SSH client");
      return true;
    default:
      return false;
  }
}

void Session::handle_auth(const protocol::Auth& auth) {
  if (auth.proto < protocol::kMinProtocolVersion) {
    fatal(ErrorCode::kUnsupportedVersion, "protocol version " + std::to_string(auth.proto) +
                                              " is not supported; this server speaks versions 1 and 2");
    return;
  }
  // The smaller of the two highest versions; auth_ok says which.
  proto_ = static_cast<uint8_t>(std::min<uint64_t>(auth.proto, protocol::kProtocolVersion));
  Handshake& hs = *handshake_;
  // Inside TLS the proofs are bound to this TLS session (see protocol/auth.h).
  protocol::ChannelBinding binding{};
  const protocol::ChannelBinding* bound = stream_.transport()->channel_binding(&binding) ? &binding : nullptr;
  protocol::Mac expected = protocol::client_proof(server_.secret().key, hs.server_nonce, auth.nonce, bound);
  hs.auth_ok = protocol::proofs_equal(expected, auth.mac);
  protocol::AuthOk ok;
  ok.proto = proto_;
  ok.mac = protocol::server_proof(server_.secret().key, hs.server_nonce, auth.nonce, bound);
  hs.pending_auth_ok = ok;
  if (hs.auth_ok) {
    // Until authenticated a client gets only 4 KiB headers; now the full limit.
    stream_.set_header_limit(protocol::kMaxHeaderLen);
  }
  if (!transition(S::kVerdictPending)) return;
  Clock::time_point now = server_.loop().now();
  // Verdicts from a throttled address queue behind each other; a connection must not
  // outlive its handshake deadline waiting in that queue, or many parallel attempts
  // from one address would hold descriptors indefinitely. One turned away reserves no
  // place in the queue.
  // Over TLS the address already waited its turn before the TLS handshake (start()).
  std::optional<Clock::time_point> slot =
      hs.throttled ? std::optional<Clock::time_point>(now)
                   : server_.throttle().reserve_verdict(host_of(peer_), now, hs.deadline);
  if (!slot) {
    fatal(ErrorCode::kTimeout, "too many recent authentication failures from this address; try again later");
    return;
  }
  Clock::time_point when = *slot;
  if (when <= now) {
    deliver_verdict();
  } else {
    hs.verdict_timer = server_.loop().run_after(when - now, [this] {
      handshake_->verdict_timer = 0;
      deliver_verdict();
      // Requests the client pipelined after auth wait in the stream: deliver them now.
      stream_.pump();
    });
  }
}

void Session::deliver_verdict() {
  const std::string host = host_of(peer_);
  if (!handshake_->auth_ok) {
    server_.throttle().record_failure(host, server_.loop().now());
    app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, ": authentication failed (%zu recent failures from this address)",
                  server_.throttle().failures(host));
    fatal(ErrorCode::kAuthFailed, "authentication failed: the client does not know the shared secret");
    return;
  }
  server_.throttle().record_success(host);
  if (!stream_.send(handshake_->pending_auth_ok)) return;
  handshake_.reset();
  if (!transition(S::kReady)) return;
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " authenticated (%s)",
                      stream_.transport()->describe().c_str());
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
  protocol::DigestKind kind = protocol::digest_kind_for(proto_);
  protocol::GetRequest get = request;
  if (proto_ < protocol::kTreeVersion) get.length.reset();  // not a field of version 1
  bool whole = get.offset == 0 && (!get.length || *get.length >= size);
  if (whole) get.length.reset();
  if (kind == protocol::DigestKind::kTree && !whole) {
    // Part of a file: its root has to be known before the first byte goes out, since
    // the bytes outside the range are never read.
    std::shared_ptr<const ChunkTree> tree = server_.digest_cache().find_tree(FileIdentity::of(st));
    if (!tree) {
      compute_tree(std::move(file), st, request.path);
      if (response_) response_->pending_get = get;
      return;
    }
    return start_get(get, std::move(file), st, tree->root);
  }
  start_get(get, std::move(file), st, server_.digest_cache().find(FileIdentity::of(st), kind));
}

void Session::start_get(const protocol::GetRequest& request, reactor::UniqueFd file, const struct stat& st,
                        std::optional<protocol::Digest> digest) {
  uint64_t size = static_cast<uint64_t>(st.st_size);
  protocol::FileHeader header;
  header.path = request.path;
  header.size = size;
  header.offset = request.offset;
  header.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  header.mode = static_cast<uint32_t>(st.st_mode & 07777);
  if (request.length && *request.length < size - request.offset) header.length = *request.length;
  if (!stream_.send(header)) return;
  response_ = std::make_unique<Response>();
  response_->body = std::make_unique<app::BodySource>(std::move(file), st, request.offset,
                                                      protocol::digest_kind_for(proto_), digest, header.length);
  response_->path = app::escape_for_terminal(request.path);
  if (!transition(S::kSending)) return;
  stream_.start_producing(*response_->body);
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " get \"%s\" (%llu of %llu bytes from offset %llu%s)",
                      response_->path.c_str(), static_cast<unsigned long long>(header.body_length()),
                      static_cast<unsigned long long>(size), static_cast<unsigned long long>(request.offset),
                      !digest ? "" : response_->body->zero_copy() ? ", digest cached: zero-copy" : ", digest cached");
}

void Session::handle_digests(const protocol::DigestsRequest& request) {
  struct stat st {};
  ProtocolError err;
  reactor::UniqueFd file = server_.root().open_file(request.path, &st, &err);
  if (!file) return request_error(err);
  uint64_t chunks = protocol::chunk_count(static_cast<uint64_t>(st.st_size));
  if (request.from > chunks) {
    err.code = ErrorCode::kBadOffset;
    err.message = "chunk " + std::to_string(request.from) + " is beyond the end of the file (" +
                  std::to_string(chunks) + " chunks)";
    return request_error(err);
  }
  std::shared_ptr<const ChunkTree> tree = server_.digest_cache().find_tree(FileIdentity::of(st));
  if (!tree) {
    compute_tree(std::move(file), st, request.path);
    if (response_) response_->pending_digests = request;
    return;
  }
  send_digests(request, st, *tree);
}

void Session::send_digests(const protocol::DigestsRequest& request, const struct stat& st, const ChunkTree& tree) {
  uint64_t chunks = tree.leaves.size();
  uint64_t from = std::min<uint64_t>(request.from, chunks);
  uint64_t count = std::min<uint64_t>({request.count.value_or(chunks - from), chunks - from,
                                       protocol::kMaxDigestsPerReply});
  protocol::DigestsReply reply;
  reply.path = request.path;
  reply.size = static_cast<uint64_t>(st.st_size);
  reply.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  reply.root = tree.root;
  reply.from = from;
  reply.count = count;
  if (!stream_.send(reply)) return;
  response_ = std::make_unique<Response>();
  response_->digests = digests_body(tree.leaves, from, count);
  response_->path = app::escape_for_terminal(request.path);
  if (!transition(S::kSending)) return;
  app::log_connection(app::LogLevel::kDebug, peer_.c_str(), id_, " digests \"%s\" (chunks %llu + %llu)",
                      response_->path.c_str(), static_cast<unsigned long long>(from),
                      static_cast<unsigned long long>(count));
  stream_.start_producing(*response_->digests);
}

void Session::compute_tree(reactor::UniqueFd file, const struct stat& st, std::string path) {
  response_ = std::make_unique<Response>();
  response_->path = app::escape_for_terminal(path);
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " computing the chunk tree of \"%s\"",
                      response_->path.c_str());
  start_tree_job(std::move(file), st, "the server cannot compute digests now: ");
}

// The response in progress waits, Digesting, for the tree of `file` from the worker;
// on_tree() goes on with it.
void Session::start_tree_job(reactor::UniqueFd file, const struct stat& st, const char* cannot) {
  auto job = std::make_shared<TreeJob>(std::move(file), st);
  response_->tree_job = job;
  if (!transition(S::kDigesting)) return;
  std::string err;
  response_->tree = server_.work_queue().submit([job] { job->run(); }, [this, job] { on_tree(*job); }, &err);
  if (response_->tree == 0) {
    app::log_connection(app::LogLevel::kError, peer_.c_str(), id_, ": %s", err.c_str());
    ProtocolError failure{ErrorCode::kIoError, cannot + err};
    response_.reset();
    request_error(failure);
    transition(S::kReady);
  }
}

std::unique_ptr<protocol::Producer> Session::digests_body(const std::vector<protocol::Digest>& leaves, uint64_t from,
                                                          uint64_t count) {
  std::string body(reinterpret_cast<const char*>(leaves.data() + from), count * sizeof(protocol::Digest));
  return std::make_unique<protocol::MemoryProducer>(std::move(body));
}

void Session::on_tree(TreeJob& job) {
  response_->tree = 0;
  std::optional<protocol::GetRequest> get = std::move(response_->pending_get);
  std::optional<protocol::DigestsRequest> digests = std::move(response_->pending_digests);
  if (!job.tree) {
    request_error(job.error);
    if (state() == S::kClosed) return;
    response_.reset();
    if (!transition(S::kReady)) return;
    if (closing_after_response_) return fatal(ErrorCode::kShuttingDown, "the server is shutting down");
    stream_.pump();
    return;
  }
  if (response_->upload) return send_put_ready(job);
  server_.digest_cache().insert_tree(FileIdentity::of(job.opened), job.tree);
  std::shared_ptr<TreeJob> keep = response_->tree_job;  // `job` lives in it
  if (get) {
    start_get(*get, std::move(job.fd), job.opened, job.tree->root);
  } else if (digests) {
    send_digests(*digests, job.opened, *job.tree);
  }
}

void Session::handle_stat(const protocol::StatRequest& request) {
  struct stat st {};
  ProtocolError err;
  std::optional<std::string> target;
  if (!server_.root().stat_path(request.path, &st, &err, &target)) return request_error(err);
  protocol::StatReply reply;
  reply.path = request.path;
  reply.kind = S_ISREG(st.st_mode) ? protocol::EntryKind::kFile
             : S_ISDIR(st.st_mode) ? protocol::EntryKind::kDir
             : target              ? protocol::EntryKind::kLink  // one a listing could carry too
                                   : protocol::EntryKind::kOther;
  reply.target = std::move(target);
  reply.size = static_cast<uint64_t>(st.st_size);
  reply.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  reply.mode = static_cast<uint32_t>(st.st_mode & 07777);
  stream_.send(reply);
}

void Session::handle_mkdir(const protocol::MkdirRequest& request) {
  ProtocolError err;
  bool created = false;
  if (!server_.root().make_directory(request.path, request.mode.value_or(0755), request.mtime, &created, &err))
    return request_error(err);
  if (created) {
    app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " mkdir \"%s\"",
                        app::escape_for_terminal(request.path).c_str());
  }
  stream_.send(protocol::MkdirOk{request.path, created});
}

void Session::handle_symlink(const protocol::SymlinkRequest& request) {
  ProtocolError err;
  bool replaced = false;
  bool unchanged = false;
  if (!server_.root().make_symlink(request.path, request.target, request.force, &replaced, &unchanged, &err))
    return request_error(err);
  if (!unchanged) {
    app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " symlink \"%s\" -> \"%s\"%s",
                        app::escape_for_terminal(request.path).c_str(),
                        app::escape_for_terminal(request.target).c_str(), replaced ? " (replaced)" : "");
  }
  stream_.send(protocol::SymlinkOk{request.path, replaced, unchanged});
}

void Session::handle_list(const protocol::ListRequest& request) {
  ProtocolError err;
  reactor::UniqueFd dir = server_.root().open_directory(request.path, &err);
  if (!dir) return request_error(err);
  std::string why;
  // A version 1 peer cannot mean "recursive" (the field is version 2's), and a version 1
  // server ignores what it does not know.
  DirLister::Options options;
  options.recursive = request.recursive && proto_ >= 2;
  options.links = request.links && proto_ >= 2;
  bool recursive = options.recursive;
  std::unique_ptr<DirLister> listing = DirLister::open(std::move(dir), server_.root(), options, &why);
  if (!listing) {
    err.code = ErrorCode::kIoError;
    err.message = why;
    return request_error(err);
  }
  response_ = std::make_unique<Response>();
  response_->listing = std::move(listing);
  response_->path = app::escape_for_terminal(request.path);
  app::log_connection(app::LogLevel::kDebug, peer_.c_str(), id_, " list%s \"%s\"", recursive ? " -r" : "",
                      response_->path.c_str());
  if (!transition(S::kListing)) return;
  stream_.start_producing(*response_->listing);
}

void Session::handle_msg(const protocol::MsgRequest& request) {
  // The tutorial's hello/recv exchange: log what the client said, escaped, so a message
  // cannot forge log lines or drive the terminal of whoever reads the log.
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " says: %s", app::escape_for_terminal(request.text).c_str());
  protocol::MsgOk ok;
  ok.bytes = request.text.size();
  stream_.send(ok);
}

void Session::handle_ping(const protocol::PingRequest& request) {
  protocol::Pong pong;
  pong.token = request.token;
  stream_.send(pong);
}

void Session::handle_put(const protocol::PutRequest& request) {
  ProtocolError err;
  std::unique_ptr<Upload> upload =
      Upload::begin(request, server_.root(), server_.options(), server_.upload_space(), this, &err);
  if (!upload) return refuse_put(request, err);
  response_ = std::make_unique<Response>();
  response_->upload = std::move(upload);
  response_->path = app::escape_for_terminal(request.path);
  const Upload& started = *response_->upload;
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " put \"%s\" (%llu bytes%s%s)", response_->path.c_str(),
                      static_cast<unsigned long long>(request.size), request.force ? ", replacing" : "",
                      !started.resumable()   ? ""
                      : started.held() == 0 ? ", resumable"
                                            : (", resuming: " + std::to_string(started.held()) + " bytes held").c_str());
  if (started.held() == 0) {
    if (!transition(S::kReceiving)) return;
    stream_.send(protocol::PutReady{request.path, 0, 0});
    return;
  }
  // What the kept partial holds is hashed again from the disk, on the worker: the
  // client compares those digests with its file's before it trusts any of it.
  struct stat st {};
  int fd = fcntl(started.partial_fd(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0) ::close(fd);
    response_.reset();
    return request_error(ProtocolError{ErrorCode::kIoError, std::string("the partial upload: ") + std::strerror(errno)});
  }
  start_tree_job(reactor::UniqueFd(fd), st, "the server cannot resume uploads now: ");
}

// A resumed put: the digests of what is held go out with put_ready, and the data follows.
void Session::send_put_ready(TreeJob& job) {
  Upload& upload = *response_->upload;
  protocol::PutReady ready{upload.path(), upload.held(), job.tree->leaves.size()};
  if (!transition(S::kReceiving)) return;
  if (!stream_.send(ready)) return;
  response_->digests = digests_body(job.tree->leaves, 0, ready.count);
  stream_.start_producing(*response_->digests);
}

void Session::handle_data(const protocol::Data& data) {
  Upload& upload = *response_->upload;
  if (response_->data_seen) {
    fatal(ErrorCode::kUnexpectedMessage, "a second data frame for one upload");
    return;
  }
  uint64_t offset = data.offset.value_or(upload.held());
  if (offset > upload.held() || (offset != upload.held() && offset % protocol::kChunkSize != 0)) {
    fatal(ErrorCode::kBadSize, "data from offset " + std::to_string(offset) + ", but the server holds " +
                                   std::to_string(upload.held()) + " bytes and takes only that or a chunk boundary below");
    return;
  }
  if (data.length != upload.size() - offset) {
    fatal(ErrorCode::kBadSize, "data of " + std::to_string(data.length) + " bytes from offset " +
                                   std::to_string(offset) + ", but the put announced " + std::to_string(upload.size()));
    return;
  }
  response_->data_seen = true;
  stream_.stop_producing();  // the put_ready's digests are all out: the client answered them
  response_->digests.reset();
  // The digests of what is held: the tree the worker computed for put_ready, if any.
  static const std::vector<protocol::Digest> kNothingHeld;
  const TreeJob* held = response_->tree_job.get();
  ProtocolError err;
  if (!upload.start_body(offset, held != nullptr && held->tree ? held->tree->leaves : kNothingHeld, &err))
    upload_failed(err);
}

// A failure while the body arrives: said at once, so the client can stop sending; the
// rest of the body and its end are then discarded.
void Session::upload_failed(const ProtocolError& error) {
  response_->upload_failed = true;
  if (response_->upload) response_->upload->abandon();
  app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, " put \"%s\": %s: %s", response_->path.c_str(),
                      protocol::to_string(error.code), app::escape_for_terminal(error.message).c_str());
  stream_.send(protocol::ErrorMessage{error.code, error.message});
}

void Session::handle_upload_end(const protocol::End& end) {
  if (!response_->data_seen) {
    fatal(ErrorCode::kUnexpectedMessage, "expected the upload's data, got end");
    return;
  }
  if (response_->upload_failed) return finish_response();  // already answered
  if (!end.root) {
    fatal(ErrorCode::kMissingField, "the upload's end has no \"root\"");
    return;
  }
  std::shared_ptr<CommitJob> job = response_->upload->finish(*end.root);
  if (!transition(S::kCommitting)) return;
  if (job->cannot_block) {
    job->run();
    // Inside the stream's delivery: the requests pipelined after this end are
    // delivered by the pass already running once the session is ready again.
    return on_committed(*job, /*deliver_queued=*/false);
  }
  std::string err;
  response_->commit = server_.work_queue().submit([job] { job->run(); }, [this, job] { on_committed(*job, /*deliver_queued=*/true); }, &err);
  if (response_->commit == 0) {
    job->sink->discard();
    app::log_connection(app::LogLevel::kError, peer_.c_str(), id_, ": %s", err.c_str());
    stream_.send(protocol::ErrorMessage{ErrorCode::kIoError, "the server cannot store files now: " + err});
    finish_response();
  }
}

void Session::on_committed(CommitJob& job, bool deliver_queued) {
  response_->commit = 0;
  if (job.ok) {
    app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " stored \"%s\"", response_->path.c_str());
    if (!stream_.send(protocol::PutDone{job.path, job.size, job.actual})) return;
  } else {
    request_error(job.error);
    if (state() == S::kClosed) return;
  }
  finish_response();
  // Requests the client pipelined after its end wait in the stream: deliver them now.
  if (deliver_queued && state() == S::kReady) stream_.pump();
}

void Session::on_produced() {
  if (state() == S::kReceiving) return;  // put_ready's digests: the upload goes on
  finish_response();
}

void Session::finish_response() {
  if (response_ && response_->body) {
    const app::BodySource& body = *response_->body;
    protocol::Message trailer = body.trailer();
    if (std::optional<protocol::Digest> digest = body.computed_digest()) {
      FileIdentity identity = FileIdentity::of(body.opened());
      if (body.kind() == protocol::DigestKind::kTree) {
        auto tree = std::make_shared<ChunkTree>();
        tree->root = *digest;
        tree->leaves = body.computed_leaves();
        server_.digest_cache().insert_tree(identity, std::move(tree));
      } else {
        server_.digest_cache().insert(identity, *digest);
      }
    }
    if (auto* error = std::get_if<protocol::ErrorMessage>(&trailer)) {
      app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, " get \"%s\": %s", response_->path.c_str(), error->message.c_str());
    } else {
      app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " sent \"%s\"", response_->path.c_str());
    }
    if (!stream_.send(trailer)) return;
  }
  end_response();
  if (!transition(S::kReady)) return;
  // Shutting down: the response in progress is complete; nothing queued behind it runs.
  if (closing_after_response_) fatal(ErrorCode::kShuttingDown, "the server is shutting down");
}

// Drops the producer of the current response; the stream must forget it first.
void Session::end_response() {
  stream_.stop_producing();
  // A commit already queued still runs (the client sent all of a verified file); only
  // its answer, for a connection that is gone, is dropped. A tree nobody waits for stops.
  if (response_ && response_->commit != 0) server_.work_queue().cancel(response_->commit);
  if (response_ && response_->tree != 0) {
    response_->tree_job->cancelled = true;
    server_.work_queue().cancel(response_->tree);
  }
  response_.reset();
}

void Session::request_error(const ProtocolError& error) {
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " request refused: %s: %s", protocol::to_string(error.code),
                app::escape_for_terminal(error.message).c_str());
  stream_.send(protocol::ErrorMessage{error.code, error.message});
}

void Session::fatal(ErrorCode code, const std::string& message) {
  if (state() == S::kDraining || state() == S::kClosed) return;
  if (code != ErrorCode::kAuthFailed && code != ErrorCode::kShuttingDown)
    app::log_connection(app::LogLevel::kWarn, peer_.c_str(), id_, ": %s: %s", protocol::to_string(code), app::escape_for_terminal(message).c_str());
  // Before the TLS handshake is done no frame can reach the client: just close.
  if (!stream_.secured()) return close(protocol::to_string(code));
  end_response();
  drain_deadline_ = server_.loop().now() + kDrainTimeout;
  if (!transition(S::kDraining)) return;
  if (!stream_.send(protocol::ErrorMessage{code, message})) return;
  stream_.drain();
}

void Session::begin_shutdown() {
  if (busy()) {
    closing_after_response_ = true;
  } else if (state() != S::kDraining && state() != S::kClosed) {
    fatal(ErrorCode::kShuttingDown, "the server is shutting down");
  }
}

void Session::check_timeouts(Clock::time_point now) {
  const Options& options = server_.options();
  switch (state()) {
    case S::kAwaitAuth:
    case S::kVerdictPending:
      // A TLS client speaks first, at once. Silence this long at a TLS listener is a
      // plain client waiting for our hello: tell it, in the plain protocol it reads.
      if (state() == S::kAwaitAuth && handshake_->verdict_timer == 0 && !stream_.secured() &&
          stream_.transport()->awaiting_first_byte() && now - started_ >= kPlainClientPatience) {
        stream_.refuse_in_clear(protocol::encode(protocol::ErrorMessage{
            ErrorCode::kTlsRequired, "this server speaks TLS here: connect without --plain"}));
        close("a plain client at a TLS listener");
        break;
      }
      // Absolute: a client trickling one byte at a time gains nothing.
      if (state() == S::kAwaitAuth && now >= handshake_->deadline)
        fatal(ErrorCode::kTimeout, "no authentication within the handshake deadline");
      break;
    case S::kCommitting:
    case S::kDigesting:
      break;  // the worker's time, not the client's idleness
    case S::kReady:
    case S::kSending:
    case S::kListing:
    case S::kReceiving:
      // Busy sessions count as active while the client keeps reading (or sending).
      if (now - stream_.last_activity() >= options.idle_timeout) {
        if (state() == S::kReceiving) {
          close(mid_upload("client stopped sending mid-upload"));
        } else if (busy()) {
          close("client stopped reading");
        } else {
          fatal(ErrorCode::kTimeout, "idle for too long");
        }
      }
      break;
    case S::kDraining:
      if (now >= drain_deadline_) close("drain timeout");
      break;
    case S::kClosed:
      break;
  }
}

void Session::abort(const char* reason) { close(reason); }

bool Session::stalled() const {
  return state() == S::kReceiving && server_.loop().now() - stream_.last_activity() >= kStalledUpload;
}

void Session::give_up(const char* why) { close(mid_upload(why)); }

// "<what>; nothing stored", or for a put -c, that what arrived is kept for the next one.
const char* Session::mid_upload(const char* what) {
  bool kept = response_ && response_->upload && response_->upload->resumable() && response_->data_seen;
  close_reason_ = std::string(what) + (kept ? "; what arrived is kept for a resume" : "; nothing stored");
  return close_reason_.c_str();
}

void Session::close(const char* reason) {
  if (state() == S::kClosed) return;
  double seconds = std::chrono::duration<double>(server_.loop().now() - started_).count();
  app::log_connection(app::LogLevel::kInfo, peer_.c_str(), id_, " closed: %s (%llu requests, %llu bytes out, %.1f s)", reason,
                static_cast<unsigned long long>(requests_), static_cast<unsigned long long>(stream_.bytes_out()),
                seconds);
  transition(S::kClosed);
  if (handshake_ && handshake_->verdict_timer != 0) {
    server_.loop().cancel(handshake_->verdict_timer);
    handshake_->verdict_timer = 0;
  }
  end_response();
  stream_.close();
  server_.retire(this);  // destroyed after the current dispatch pass
}

}  // namespace server
