#pragma once
// Runs one reactorc command over one Connection, shows its result and decides the exit
// status. Results go to stdout; the progress bar and errors to stderr. The protocol
// work is the Command's (command.h, get_command.h); this is the presentation.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/get_command.h"
#include "apps/reactorc/put_command.h"
#include "apps/reactorc/options.h"
#include "apps/reactorc/progress.h"
#include "reactor/event_loop.h"

namespace client {

class CommandRunner final : public ConnectionListener, public GetObserver, public PutObserver {
 public:
  // `tls` null: the plain protocol.
  CommandRunner(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
                std::shared_ptr<protocol::TlsContext> tls);
  ~CommandRunner() override;

  // Local preparation before any network traffic (get: the destination must be
  // creatable and, without --force, absent; put: the source a readable regular file).
  // False: exit_code() says why.
  bool prepare();
  void start(std::vector<reactor::SocketAddress> addresses);
  // SIGINT/SIGTERM: remove any partial download and stop.
  void interrupt(const char* signal_name);
  int exit_code() const { return exit_code_; }

  // ConnectionListener
  void on_ready(Connection& connection) override;
  void on_command_done(Connection& connection, Command& command) override;
  void on_failure(Connection& connection, Failure failure, const std::string& message) override;

  // GetObserver: the progress line.
  void on_file(const protocol::FileHeader& header) override;
  void on_received(uint64_t bytes) override;
  // PutObserver: the progress line of an upload.
  void on_put_ready(uint64_t size, uint64_t offset) override;

 private:
  std::unique_ptr<Command> make_command();
  bool prepare_get();
  bool prepare_put();
  void show_progress(const std::string& label, uint64_t total, uint64_t start);
  void report_success();
  void report_failure(int code, const std::string& message);
  void print_listing(ListCommand& list);
  void finish(int code);

  reactor::EventLoop& loop_;
  const Options& options_;
  Connection connection_;
  std::unique_ptr<Command> command_;
  GetCommand* get_ = nullptr;  // command_, when it is a get
  PutCommand* put_ = nullptr;  // command_, when it is a put
  std::string put_label_;      // LOCAL as given, for the progress line
  int exit_code_ = 1;
  bool done_ = false;
  reactor::EventLoop::Clock::time_point sent_at_{};
  std::unique_ptr<Progress> progress_;
  reactor::EventLoop::TimerId progress_timer_ = 0;
};

}  // namespace client
