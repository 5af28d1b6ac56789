#pragma once
// The client's end of one connection: connect with a deadline, check the server's
// hello, prove the secret, check the server's proof back, then carry requests and
// deliver the decoded responses to a listener. A state machine on the event loop, the
// mirror image of the server's Session:
//
//   Connecting -> AwaitHello -> AwaitAuthOk -> Ready -> Closed
//
// Bodies are handed to the listener straight out of the input buffer, chunk by chunk,
// so a multi-GiB download never sits in memory.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "reactor/buffer.h"
#include "reactor/connector.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/unique_fd.h"

namespace client {

// Why a connection ended badly; each maps to one exit status.
enum class Failure { kConnect, kAuth, kProtocol, kClosed, kTimeout };

class Connection;

class ConnectionListener {
 public:
  virtual ~ConnectionListener() = default;
  virtual void on_ready(Connection& connection) = 0;
  // Responses in order, including per-request `error` messages.
  virtual void on_message(Connection& connection, protocol::Message& message) = 0;
  // Body bytes of the last message that announced a body; `remaining` is what follows.
  virtual void on_body(Connection& connection, const char* data, size_t len, uint64_t remaining) = 0;
  virtual void on_failure(Connection& connection, Failure failure, const std::string& message) = 0;
};

class Connection {
 public:
  using Clock = reactor::EventLoop::Clock;
  enum class State { kConnecting, kAwaitHello, kAwaitAuthOk, kReady, kClosed };

  Connection(reactor::EventLoop& loop, const app::Secret& secret, ConnectionListener& listener);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // `timeout` bounds the connect and, afterwards, any silence while a response is due.
  // `source`, if given, is the local address to connect from (see reactor::Connector).
  void connect(std::vector<reactor::SocketAddress> addresses, Clock::duration timeout,
               const reactor::SocketAddress* source = nullptr);
  void send(const protocol::Message& message);
  void close();

  State state() const { return state_; }
  const std::string& peer() const { return peer_; }
  const std::string& server_software() const { return server_software_; }
  // Whether the server's hello offered `feature` (the usable set is the intersection).
  bool server_offers(const std::string& feature) const;

 private:
  void on_connected(reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message);
  void on_events(uint32_t events);
  void process_input();
  void handle_header(protocol::Message& message);
  bool flush();
  void update_interest();
  void check_silence();
  void fail(Failure failure, const std::string& message);

  reactor::EventLoop& loop_;
  const app::Secret& secret_;
  ConnectionListener& listener_;
  State state_ = State::kConnecting;
  std::unique_ptr<reactor::Connector> connector_;
  reactor::UniqueFd fd_;
  std::string peer_;
  std::string server_software_;
  std::vector<std::string> server_features_;
  reactor::Buffer in_;
  reactor::Buffer out_;
  protocol::FrameDecoder decoder_;
  protocol::Nonce client_nonce_{};
  protocol::Nonce server_nonce_{};
  Clock::duration timeout_{};
  Clock::time_point last_activity_{};
  reactor::EventLoop::TimerId silence_timer_ = 0;
  uint32_t interest_ = 0;
  bool registered_ = false;
};

}  // namespace client
