#pragma once
// One client connection on the server: a pure protocol state machine over a
// FramedStream (protocol/framed_stream.h), which does all of the connection's I/O.
//
//   AwaitAuth --auth--> VerdictPending --ok--> Ready <--> Sending (get, digests)
//       |                     |                  ^  <--> Digesting --> Sending
//       |                     |                  ^  <--> Listing (list)
//       |                     |                  |  <--> Receiving (put) --end--> Committing
//       |                     |                  |                                   |
//       |                     |                  +-----------------------------------+
//       |                     +--bad--+          |
//       +-- any fatal error ----------+--> Draining --> Closed
//
// (and any state --> Closed when the connection ends). Every change of state goes
// through transition(), which refuses an edge this diagram does not have. Frames are
// delivered only in AwaitAuth, Ready and Receiving (an upload's data and end), so
// pipelined requests wait in the stream's input (and then in the kernel) until the
// current response is complete; responses therefore go out strictly in order.
// Committing waits for the worker thread (upload.h): the fsyncs and the rename of a
// verified upload never run on the loop. So does Digesting (tree_job.h): a version 2
// digests request, or get of part of a file, whose chunk tree is not cached yet.
//
// Requests are dispatched through one table, after OpenSSH's sftp-server: for each
// message type, the states it is allowed in, whether it writes to the file system, and
// its handler. Anything else is refused with unexpected_message.
//
// A response is a header frame and, for get and list, a Producer (a BodySource, a
// DirLister) that the stream drains into the socket as it has room, zero copy where the
// transport can: one big download never starves the other connections.

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/body_source.h"
#include "apps/common/secret.h"
#include "apps/common/state_machine.h"
#include "apps/reactord/dir_lister.h"
#include "apps/reactord/tree_job.h"
#include "apps/reactord/upload.h"
#include "protocol/framed_stream.h"
#include "protocol/messages.h"
#include "protocol/types.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/transport.h"
#include "reactor/unique_fd.h"
#include "reactor/work_queue.h"

namespace server {

class AuthThrottle;
class DigestCache;
class ServedRoot;
struct Options;
class Session;

// What a session needs from whoever runs it (the Server): shared state, and somewhere to
// say that it has closed. Declared here, beside its user, so that the session calls
// nothing above itself but this interface.
class SessionHost {
 public:
  virtual reactor::EventLoop& loop() = 0;
  virtual const Options& options() const = 0;
  virtual const ServedRoot& root() const = 0;
  virtual const app::Secret& secret() const = 0;
  virtual AuthThrottle& throttle() = 0;
  virtual DigestCache& digest_cache() = 0;
  virtual UploadSpace& upload_space() = 0;
  // Where calls that can block on the disk run (a put's commit).
  virtual reactor::WorkQueue& work_queue() = 0;
  virtual const std::vector<std::string>& features() const = 0;
  // The session has closed; it may be destroyed once the current dispatch pass is over
  // (never inside its own callback).
  virtual void retire(Session* session) = 0;

 protected:
  ~SessionHost() = default;
};

enum class SessionState {
  kAwaitAuth, kVerdictPending, kReady, kSending, kListing, kReceiving, kCommitting, kDigesting, kDraining, kClosed,
};
const char* to_string(SessionState state);

class Session final : public protocol::StreamHandler, public PartialHolder {
 public:
  using Clock = reactor::EventLoop::Clock;

  // Bytes written to one socket per wakeup before yielding to the other connections. At
  // 1 MiB, four hashed downloads made each loop pass take ~2.5 ms and a ping waited
  // 7 ms (p50) behind them; at 256 KiB its p99 is under 2 ms (BENCHMARKS.md, scenario 6).
  static constexpr size_t kWriteBudget = 256 * 1024;
  // The same for reading (an upload's body): each byte read is also written to a file
  // and hashed, so a pass over four uploads costs four times this.
  static constexpr size_t kReadBudget = 128 * 1024;

  // `transport`: how the connection's bytes move; null means the plain socket transport.
  Session(SessionHost& server, uint64_t id, reactor::UniqueFd fd, const reactor::SocketAddress& peer,
          std::unique_ptr<reactor::Transport> transport = nullptr);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Registers with the loop and queues the hello. False: the session is already closed.
  bool start();
  // SIGINT/SIGTERM: finish the response in progress, then close; idle sessions close now.
  void begin_shutdown();
  // Called once a second by the server: handshake deadline, idle and drain timeouts.
  void check_timeouts(Clock::time_point now);
  // Ends the connection immediately (grace period over, server stopping).
  void abort(const char* reason);

  SessionState state() const { return machine_.state(); }
  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }
  bool busy() const {
    return state() == SessionState::kSending || state() == SessionState::kListing ||
           state() == SessionState::kReceiving || state() == SessionState::kCommitting ||
           state() == SessionState::kDigesting;
  }
  // The protocol version in use: kProtocolVersion until auth settles it.
  uint64_t protocol_version() const { return proto_; }
  const protocol::FramedStream& stream() const { return stream_; }

  // PartialHolder: a resumed upload whose client went silent for kStalledUpload.
  // Short: the newcomer uploads the same file to the same name, so whichever finishes
  // stores the same bytes; at worst two racing clients repeat some of the work.
  static constexpr auto kStalledUpload = std::chrono::seconds(2);
  bool stalled() const override;
  void give_up(const char* why) override;

  // protocol::StreamHandler
  bool accepting_input() const override;
  void on_message(protocol::Message& message) override;
  void on_body(const char* data, size_t len, uint64_t remaining) override;
  void on_produced() override;
  void on_failure(const protocol::StreamFailure& failure) override;

 private:
  struct Rule;
  static const Rule kRules[];
  template <typename T, void (Session::*Handle)(const T&)>
  void dispatch_as(protocol::Message& message);

  bool attach_and_greet();
  bool refuse_wrong_peer(const std::string& first_bytes);
  void refuse_unexpected(const protocol::Message& message);
  void handle_auth(const protocol::Auth& auth);
  void deliver_verdict();
  void handle_get(const protocol::GetRequest& request);
  void start_get(const protocol::GetRequest& request, reactor::UniqueFd file, const struct stat& st,
                 std::optional<protocol::Digest> digest);
  void handle_digests(const protocol::DigestsRequest& request);
  void handle_mkdir(const protocol::MkdirRequest& request);
  void handle_symlink(const protocol::SymlinkRequest& request);
  void send_digests(const protocol::DigestsRequest& request, const struct stat& st, const ChunkTree& tree);
  // The cache lacks the file's tree: compute it on the worker, then go on with the
  // request that needed it.
  void compute_tree(reactor::UniqueFd file, const struct stat& st, std::string path);
  void start_tree_job(reactor::UniqueFd file, const struct stat& st, const char* cannot);
  static std::unique_ptr<protocol::Producer> digests_body(const std::vector<protocol::Digest>& leaves, uint64_t from,
                                                          uint64_t count);
  void on_tree(TreeJob& job);
  void send_put_ready(TreeJob& job);
  void handle_stat(const protocol::StatRequest& request);
  void handle_list(const protocol::ListRequest& request);
  void handle_msg(const protocol::MsgRequest& request);
  void handle_ping(const protocol::PingRequest& request);
  void handle_put(const protocol::PutRequest& request);
  void handle_data(const protocol::Data& data);
  void handle_upload_end(const protocol::End& end);
  // DELIVER_QUEUED: called from outside the stream (the worker's completion), so the
  // requests pipelined behind the upload need a pass of their own.
  void on_committed(CommitJob& job, bool deliver_queued);
  void upload_failed(const protocol::ProtocolError& error);
  void finish_response();
  void end_response();
  void request_error(const protocol::ProtocolError& error);
  void fatal(protocol::ErrorCode code, const std::string& message);
  void close(const char* reason);
  const char* mid_upload(const char* what);
  bool transition(SessionState next);
  std::string who() const;

  SessionHost& server_;
  uint64_t id_;
  std::string peer_;  // "127.0.0.1:41234", for logs
  app::StateMachine<SessionState> machine_;
  protocol::FramedStream stream_;
  // What only the handshake needs, freed once it succeeds: an idle authenticated
  // connection should cost the server as little memory as possible.
  struct Handshake {
    protocol::Nonce server_nonce{};
    bool auth_ok = false;
    protocol::AuthOk pending_auth_ok;  // sent when the (possibly delayed) verdict is good
    reactor::EventLoop::TimerId verdict_timer = 0;  // or the TLS handshake's, see start()
    Clock::time_point deadline;  // absolute: trickling bytes does not extend it
    bool throttled = false;      // TLS: the turn was taken before the TLS handshake
  };
  std::unique_ptr<Handshake> handshake_ = std::make_unique<Handshake>();
  // The response in progress (get, list), made for it and freed after: an idle
  // connection carries none of it.
  struct Response {
    std::unique_ptr<app::BodySource> body;  // get
    std::unique_ptr<DirLister> listing;     // list
    std::unique_ptr<Upload> upload;         // put, until its end hands it to the worker
    bool data_seen = false;                 // put: the data frame has arrived
    bool upload_failed = false;             // put: refused mid-body; the rest is discarded
    reactor::WorkQueue::Id commit = 0;      // put: the worker's job, while Committing
    std::unique_ptr<protocol::Producer> digests;  // digests: the body of digests_ok
    std::shared_ptr<TreeJob> tree_job;            // while Digesting
    reactor::WorkQueue::Id tree = 0;              // its id
    std::optional<protocol::GetRequest> pending_get;          // what waits for the tree
    std::optional<protocol::DigestsRequest> pending_digests;  // (one of them)
    std::string path;                       // what it is for, escaped, for logs
  };
  std::unique_ptr<Response> response_;
  Clock::time_point started_;
  Clock::time_point drain_deadline_;
  bool closing_after_response_ = false;
  uint8_t proto_ = static_cast<uint8_t>(protocol::kProtocolVersion);
  uint64_t requests_ = 0;
  // After a refused put (reactor-protocol(7), eager_put): the data and end an eager
  // client sent behind it are read and dropped, if they come.
  enum class RefusedUpload : uint8_t { kNone, kMayFollow, kDiscardingBody };
  RefusedUpload refused_upload_ = RefusedUpload::kNone;
  // Whether `message` belongs to a refused eager put, and has been dropped.
  bool drop_refused_upload(const protocol::Message& message);
  void refuse_put(const protocol::PutRequest& request, const protocol::ProtocolError& error);
  std::string close_reason_;  // mid_upload()'s text, alive while close() logs it
};

}  // namespace server
