#pragma once
// Runs one reactorc command over one Connection, shows its result and decides the exit
// status. Results go to stdout; the progress bar and errors to stderr. The protocol
// work is the Command's (command.h, get_command.h); this is the presentation.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/get_command.h"
#include "apps/reactorc/put_command.h"
#include "apps/reactorc/options.h"
#include "apps/reactorc/partial_download.h"
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
  std::unique_ptr<Command> make_command(const Connection& connection);
  bool prepare_get();
  // get into a file: a sink writing into the partial download, going on after `leaves`.
  std::unique_ptr<app::BodySink> partial_sink(const std::vector<protocol::Digest>& leaves, uint64_t held,
                                              std::string* err);
  // get -c with something held: ask for the digests, check what is held, fetch the rest.
  void start_resume(Connection& connection);
  void on_resume_step(Command& command);
  void plan_resume();
  void start_over(const std::string& why);
  // --retry: whether this failure of the connection is worth another attempt, and the
  // next attempt (a new connection, resuming what the last one left).
  bool should_retry(Failure failure) const;
  void schedule_retry(const std::string& message);
  void retry();
  void submit_get(std::unique_ptr<app::BodySink> sink, uint64_t offset);
  bool prepare_put();
  void show_progress(const std::string& label, uint64_t total, uint64_t start);
  void report_success();
  void report_failure(int code, const std::string& message);
  void print_listing(ListCommand& list);
  // ls of something that is not a directory: describe it, as ls(1) does a file operand.
  void list_a_file();
  void print_file_entry(const protocol::StatReply& stat);
  void finish(int code);

  reactor::EventLoop& loop_;
  const Options& options_;
  const app::Secret& secret_;
  std::shared_ptr<protocol::TlsContext> tls_;
  std::unique_ptr<Connection> connection_;  // a new one for each attempt
  std::vector<reactor::SocketAddress> addresses_;
  uint64_t attempt_ = 0;         // retries so far
  bool connected_once_ = false;  // some attempt got as far as authenticating
  bool streaming_ = false;       // get into a stream: what went out cannot be taken back
  reactor::EventLoop::TimerId retry_timer_ = 0;
  std::unique_ptr<Command> command_;
  std::unique_ptr<StatCommand> ls_stat_;  // ls of a file: the stat that replaced the listing
  GetCommand* get_ = nullptr;  // command_, when it is a get
  // A get into a file: its partial download, in the destination's directory.
  PartialDownload partial_;
  reactor::UniqueFd dest_dir_;
  std::string dest_name_;
  std::string dest_display_;
  std::string remote_;
  // get -c: the resume's own requests (digests, chunks fetched again), in order, and
  // what the digests said.
  bool resuming_ = false;
  std::vector<std::unique_ptr<Command>> steps_;
  std::vector<protocol::Digest> leaves_;
  protocol::DigestsReply tree_;
  uint64_t leaves_wanted_ = 0;
  PutCommand* put_ = nullptr;  // command_, when it is a put
  std::string put_label_;      // LOCAL as given, for the progress line
  int exit_code_ = 1;
  bool done_ = false;
  reactor::EventLoop::Clock::time_point sent_at_{};
  std::unique_ptr<Progress> progress_;
  // Where the first attempt's progress began, once a retry has cut it: the next
  // attempts' lines count from there.
  std::optional<Progress::Origin> progress_origin_;
  reactor::EventLoop::TimerId progress_timer_ = 0;
};

}  // namespace client
