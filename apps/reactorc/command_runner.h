#pragma once
// Runs one reactorc command over one Connection and decides the exit status.
// Results go to stdout; the progress bar and errors to stderr.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "apps/reactorc/background_sha256.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/download_target.h"
#include "apps/reactorc/options.h"
#include "apps/reactorc/progress.h"
#include "protocol/sha256.h"
#include "reactor/event_loop.h"

namespace client {

class CommandRunner : public ConnectionListener {
 public:
  CommandRunner(reactor::EventLoop& loop, const Options& options, const app::Secret& secret);
  ~CommandRunner() override;

  // Local preparation before any network traffic (get: the destination must be
  // creatable and, without --force, absent). False: exit_code() says why.
  bool prepare();
  void start(std::vector<reactor::SocketAddress> addresses);
  // SIGINT/SIGTERM: remove any partial download and stop.
  void interrupt(const char* signal_name);
  int exit_code() const { return exit_code_; }

  void on_ready(Connection& connection) override;
  void on_message(Connection& connection, protocol::Message& message) override;
  void on_body(Connection& connection, const char* data, size_t len, uint64_t remaining) override;
  void on_failure(Connection& connection, Failure failure, const std::string& message) override;

 private:
  void on_get_message(protocol::Message& message);
  void on_list_message(protocol::Message& message);
  void finish(int code);
  void fail(int code, const std::string& message);
  void fail_transfer(int code, const std::string& reason);
  void print_listing();

  reactor::EventLoop& loop_;
  const Options& options_;
  Connection connection_;
  int exit_code_ = 1;
  bool done_ = false;
  reactor::EventLoop::Clock::time_point sent_at_{};

  // get
  std::string remote_;
  std::unique_ptr<DownloadTarget> target_;
  std::unique_ptr<Progress> progress_;
  std::optional<BackgroundSha256> hash_;  // from the file header on
  bool header_seen_ = false;
  bool body_done_ = false;
  int64_t mtime_ = 0;
  uint64_t received_ = 0;
  uint64_t expected_ = 0;
  reactor::EventLoop::TimerId progress_timer_ = 0;
  std::string write_error_;

  // ls
  std::vector<protocol::Entry> entries_;
};

}  // namespace client
