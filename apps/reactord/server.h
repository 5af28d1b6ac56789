#pragma once
// reactord's top level: listeners, the table of sessions, the periodic sweep that
// enforces timeouts, signals and graceful shutdown. One thread, one loop.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "apps/common/secret.h"
#include "apps/reactord/auth_throttle.h"
#include "apps/reactord/digest_cache.h"
#include "apps/reactord/options.h"
#include "apps/reactord/served_root.h"
#include "apps/reactord/session.h"
#include "apps/reactord/tutorial_session.h"
#include "reactor/event_loop.h"
#include "protocol/tls.h"
#include "reactor/listener.h"
#include "reactor/socket_address.h"
#include "reactor/work_queue.h"

namespace server {


// reactord's exit statuses (documented in reactord(8)).
enum ExitCode { kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitListen = 3, kExitConfig = 4 };

class Server final : public SessionHost {
 public:
  Server(reactor::EventLoop& loop, Options options, std::unique_ptr<ServedRoot> root, app::Secret secret);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Where to listen, and whether connections there speak TLS or the plain protocol.
  struct Endpoint {
    reactor::SocketAddress address;
    bool tls = true;
    bool tutorial = false;  // the socket tutorial's wire format (tutorial_session.h)
  };

  // Opens every listener and installs the signal handlers. On failure says why. TLS
  // endpoints need the context made from the secret (or the certificate) first: see
  // make_tls().
  bool start(const std::vector<Endpoint>& endpoints, std::string* err);
  // The TLS context for the current secret and options; again after a reload.
  bool make_tls(std::string* err);
  // The --tutorial-file, if any, opens now under every rule of the served root: a typo
  // or a path out of the root stops the start instead of failing each tutorial client.
  bool check_tutorial_file(std::string* err) const;

  // SessionHost: for sessions.
  reactor::EventLoop& loop() override { return loop_; }
  const Options& options() const override { return options_; }
  const ServedRoot& root() const override { return *root_; }
  const app::Secret& secret() const override { return secret_; }
  AuthThrottle& throttle() override { return throttle_; }
  DigestCache& digest_cache() override { return digest_cache_; }
  UploadSpace& upload_space() override { return upload_space_; }
  reactor::WorkQueue& work_queue() override { return work_queue_; }
  const std::vector<std::string>& features() const override { return features_; }
  void retire(Session* session) override;

  size_t session_count() const { return sessions_.size() + tutorials_.size(); }

 private:
  void on_accept(reactor::UniqueFd fd, const reactor::SocketAddress& peer, bool tls);
  void on_tutorial_accept(reactor::UniqueFd fd, const reactor::SocketAddress& peer);
  void retire_tutorial(TutorialSession* session);
  bool nothing_left() const { return sessions_.empty() && tutorials_.empty(); }
  void sweep();
  // A writable server removes what uploads left behind (partial_sweep.h), on the worker.
  void sweep_partials();
  void begin_shutdown(const char* why);
  void finish_shutdown();
  void reload_secret();

  reactor::EventLoop& loop_;
  Options options_;
  std::unique_ptr<ServedRoot> root_;
  app::Secret secret_;
  AuthThrottle throttle_;
  DigestCache digest_cache_;
  UploadSpace upload_space_;
  // Before the sessions: they cancel their jobs as they close, so it must outlive them.
  reactor::WorkQueue work_queue_;
  std::vector<std::string> features_;
  std::vector<std::unique_ptr<reactor::Listener>> listeners_;
  std::shared_ptr<protocol::TlsContext> tls_;  // for TLS listeners
  std::unordered_map<uint64_t, std::unique_ptr<Session>> sessions_;
  std::vector<std::unique_ptr<Session>> retired_;
  TutorialConfig tutorial_;
  std::unordered_map<uint64_t, std::unique_ptr<TutorialSession>> tutorials_;
  std::vector<std::unique_ptr<TutorialSession>> retired_tutorials_;
  uint64_t next_id_ = 1;
  bool shutting_down_ = false;
  bool stopped_ = false;
  reactor::EventLoop::TimerId sweep_timer_ = 0;
  reactor::EventLoop::TimerId grace_timer_ = 0;
  reactor::EventLoop::TimerId partial_timer_ = 0;
  bool partial_sweep_running_ = false;
  std::chrono::steady_clock::time_point last_emfile_log_{};
};

}  // namespace server
