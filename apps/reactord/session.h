#pragma once
// One client connection: a state machine driven by the event loop.
//
//   AwaitAuth --auth--> VerdictPending --ok--> Ready <--> Sending (get)
//       |                     |                  ^  <--> Listing (list)
//       |                     +--bad--+          |
//       +-- any fatal error ----------+--> Draining --> Closed
//
// Every state change goes through transition(), which logs it at debug level. Input is
// decoded only in AwaitAuth and Ready, so pipelined requests wait in the input buffer
// (and then in the kernel: reading stops once a few frames are queued) until the
// current response is complete; responses therefore go out strictly in order.
//
// The session never blocks: output goes to a Buffer, and writability is watched only
// while that buffer holds bytes or a response is still being produced. A response
// produces at most kChunk bytes ahead of the socket and writes at most kWriteBudget
// bytes per wakeup, so one big download cannot starve the other connections.

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "apps/reactord/digest_cache.h"
#include "apps/reactord/dir_lister.h"
#include "apps/reactord/file_sender.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "protocol/types.h"
#include "reactor/buffer.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/unique_fd.h"

namespace server {

class Server;

enum class SessionState { kAwaitAuth, kVerdictPending, kReady, kSending, kListing, kDraining, kClosed };
const char* to_string(SessionState state);

class Session {
 public:
  using Clock = reactor::EventLoop::Clock;

  // Bytes written to one socket per wakeup before yielding to the other connections. At
  // 1 MiB, four hashed downloads made each loop pass take ~2.5 ms and a ping waited
  // 7 ms (p50) behind them; at 256 KiB its p99 is under 2 ms (BENCHMARKS.md, scenario 6).
  static constexpr size_t kWriteBudget = 256 * 1024;

  Session(Server& server, uint64_t id, reactor::UniqueFd fd, const reactor::SocketAddress& peer);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Registers with the loop and sends the hello. False: the session is already closed.
  bool start();
  // SIGINT/SIGTERM: finish the response in progress, then close; idle sessions close now.
  void begin_shutdown();
  // Called once a second by the server: handshake deadline, idle and drain timeouts.
  void check_timeouts(Clock::time_point now);
  // Ends the connection immediately (grace period over, server stopping).
  void abort(const char* reason);

  SessionState state() const { return state_; }
  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }
  bool busy() const { return state_ == SessionState::kSending || state_ == SessionState::kListing; }

 private:
  void on_events(uint32_t events);
  void on_readable();
  void drive();
  // Decodes and handles requests; true if it stopped because too much output is queued.
  bool process_input();
  void handle_message(protocol::Message&& message);
  void handle_auth(const protocol::Auth& auth);
  void deliver_verdict();
  void handle_get(const protocol::GetRequest& request);
  void handle_stat(const protocol::StatRequest& request);
  void handle_list(const protocol::ListRequest& request);
  void handle_msg(const protocol::MsgRequest& request);
  void produce_response();
  void finish_response();
  bool flush();
  void update_interest();
  void send(const protocol::Message& message);
  void request_error(const protocol::ProtocolError& error);
  void fatal(protocol::ErrorCode code, const std::string& message);
  void close(const char* reason);
  void transition(SessionState next);

  Server& server_;
  uint64_t id_;
  reactor::UniqueFd fd_;
  std::string peer_;  // "127.0.0.1:41234", for logs
  SessionState state_ = SessionState::kAwaitAuth;
  reactor::Buffer in_;
  reactor::Buffer out_;
  protocol::FrameDecoder decoder_;
  // What only the handshake needs, freed once it succeeds: an idle authenticated
  // connection should cost the server as little memory as possible.
  struct Handshake {
    protocol::Nonce server_nonce{};
    bool auth_ok = false;
    protocol::AuthOk pending_auth_ok;  // sent when the (possibly delayed) verdict is good
    reactor::EventLoop::TimerId verdict_timer = 0;
    Clock::time_point deadline;  // absolute: trickling bytes does not extend it
  };
  std::unique_ptr<Handshake> handshake_ = std::make_unique<Handshake>();
  std::unique_ptr<FileSender> sender_;
  std::unique_ptr<DirLister> lister_;
  std::string response_path_;  // what the current get/list is for, for logs
  Clock::time_point started_;
  Clock::time_point last_activity_;
  Clock::time_point drain_deadline_;
  uint32_t interest_ = 0;
  bool registered_ = false;
  bool closing_after_response_ = false;
  bool write_shut_ = false;
  uint64_t requests_ = 0;
  uint64_t bytes_out_ = 0;
};

}  // namespace server
