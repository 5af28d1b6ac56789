#pragma once
// The client's end of one connection: connect with a deadline, check the server's
// hello, prove the secret, check the server's proof back, then carry commands and feed
// each its response. A pure protocol state machine over a FramedStream, the mirror
// image of the server's Session:
//
//   Connecting -> AwaitHello -> AwaitAuthOk -> Ready -> Closed   (and any -> Closed)
//
// Commands may be pipelined: submit() sends at once, and responses, which the server
// returns strictly in order, go to the oldest command in flight. Bodies are handed to
// the command straight out of the stream's input, chunk by chunk, so a multi-GiB
// download never sits in memory.

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "apps/common/state_machine.h"
#include "apps/reactorc/command.h"
#include "protocol/framed_stream.h"
#include "protocol/messages.h"
#include "protocol/tls.h"
#include "reactor/connector.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/transport.h"
#include "reactor/unique_fd.h"

namespace client {

// Why a connection ended badly; each maps to one exit status (exit_code_for).
enum class Failure { kConnect, kAuth, kCertificate, kProtocol, kClosed, kTimeout };

class Connection;

class ConnectionListener {
 public:
  virtual ~ConnectionListener() = default;
  virtual void on_ready(Connection& connection) = 0;
  // `command` is finished (succeeded or failed) and no longer in flight; it is the
  // listener's again, to destroy or reuse.
  virtual void on_command_done(Connection& connection, Command& command) = 0;
  // The connection is closed. Commands still in flight were abandoned with this
  // failure's status and message first (and are not reported to on_command_done).
  virtual void on_failure(Connection& connection, Failure failure, const std::string& message) = 0;
};

class Connection final : public protocol::StreamHandler, private Outbox {
 public:
  using Clock = reactor::EventLoop::Clock;
  enum class State { kConnecting, kAwaitHello, kAwaitAuthOk, kReady, kClosed };

  // `tls`: the context connections speak TLS with; null for the plain protocol.
  Connection(reactor::EventLoop& loop, const app::Secret& secret, ConnectionListener& listener,
             std::shared_ptr<protocol::TlsContext> tls = nullptr);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // `timeout` bounds the connect and, afterwards, any silence while a response is due.
  // `source`, if given, is the local address to connect from (see reactor::Connector).
  void connect(std::vector<reactor::SocketAddress> addresses, Clock::duration timeout,
               const reactor::SocketAddress* source = nullptr);
  // Sends the command's request; its response goes to it. Ready only. `command` stays
  // the caller's and must outlive its time in flight (close() ends that time: commands
  // still in flight are abandoned). Behind an exclusive command (an upload) the request
  // waits until that command is done.
  void submit(Command& command);
  // --limit-rate: at most `bytes_per_second` each way once authenticated (0: no cap).
  void set_rate_limit(uint64_t bytes_per_second) { stream_.set_rate_limit(bytes_per_second); }
  size_t in_flight() const { return in_flight_.size() + waiting_.size(); }
  // Stops handing responses to commands (they wait in the buffer, then in the kernel,
  // and the server stops producing), until resumed: a consumer that cannot keep up
  // with a streamed listing holds it back instead of queueing it in memory. Resuming
  // delivers what waits at once; call it from outside this connection's callbacks.
  void pause_input() { input_paused_ = true; }
  void resume_input();
  bool input_paused() const { return input_paused_; }
  // The protocol version in use, once ready: the smaller of the two sides' highest.
  uint64_t protocol_version() const { return proto_; }
  void close();

  State state() const { return machine_.state(); }
  const std::string& peer() const { return peer_; }
  const std::string& server_software() const { return server_software_; }
  // What protects the connection: "plain", or the TLS version, cipher, group and more.
  std::string security() const { return stream_.transport() ? stream_.transport()->describe() : "none"; }
  // Whether the server's hello offered `feature` (the usable set is the intersection).
  bool server_offers(const std::string& feature) const;

  // For tests: the connection as a FramedStream over `fd` with `transport`, already
  // connected, as if the connector had just finished.
  void adopt(reactor::UniqueFd fd, std::unique_ptr<reactor::Transport> transport, Clock::duration timeout,
             const std::string& peer);

  // protocol::StreamHandler
  bool accepting_input() const override { return !input_paused_; }
  void on_message(protocol::Message& message) override;
  void on_body(const char* data, size_t len, uint64_t remaining) override;
  void on_produced() override;
  void on_failure(const protocol::StreamFailure& failure) override;

 private:
  struct Rule;
  static const Rule kRules[];

  // Outbox, for the command in front.
  bool send(const protocol::Message& message) override { return stream_.send(message); }
  void start_producing(protocol::Producer& producer) override { stream_.start_producing(producer); }

  void send_request(Command& command);
  void release_waiting();
  void on_connected(reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message);
  void start_handshake_timer();
  void on_error_message(const protocol::ErrorMessage& error);
  void handle_hello(protocol::Message& message);
  void handle_auth_ok(protocol::Message& message);
  void handle_reply(protocol::Message& message);
  void finish_front_if_done(uint64_t body_remaining);
  void check_silence();
  void fail(Failure failure, const std::string& message);
  bool transition(State next);
  const protocol::ChannelBinding* binding();

  reactor::EventLoop& loop_;
  const app::Secret& secret_;
  ConnectionListener& listener_;
  std::shared_ptr<protocol::TlsContext> tls_;
  app::StateMachine<State> machine_;
  std::unique_ptr<reactor::Connector> connector_;
  protocol::FramedStream stream_;
  std::string peer_;
  std::string server_software_;
  std::vector<std::string> server_features_;
  protocol::Nonce client_nonce_{};
  protocol::Nonce server_nonce_{};
  protocol::ChannelBinding binding_{};
  std::deque<Command*> in_flight_;
  std::deque<Command*> waiting_;  // submitted behind an exclusive command
  uint64_t proto_ = protocol::kProtocolVersion;
  // A get that finished early (a local write error) leaves the rest of its response on
  // the stream: its body, then its trailer. Both are skipped, so that the next
  // command's response starts where it should.
  bool skipping_body_ = false;
  bool skipping_trailer_ = false;
  bool input_paused_ = false;
  bool owes_trailer_ = false;  // a file header was delivered; its end (or error) has not
  Clock::duration timeout_{};
  Clock::time_point waiting_since_{};  // when a response last became due
  reactor::EventLoop::TimerId silence_timer_ = 0;
};

const char* to_string(Connection::State state);

}  // namespace client
