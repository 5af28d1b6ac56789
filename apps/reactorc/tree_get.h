#pragma once
// get -r, and get with several sources: many files over two connections, pipelined.
//
//   listing connection:  stat SOURCE, then list -r SOURCE   (one source after another)
//   data connection:     get, get, digests, get, ...       (up to 64 requests and
//                                                            64 MiB of bodies in flight)
//
// The listing streams in (protocol::TreeListingCheck refuses anything a lying server
// could use to plant a file); each directory it announces is made at once, each file
// queued. The data connection drains the queue within its window, so small files do not
// pay a round trip each and the first file arrives before the listing ends. When the
// queue is full the listing connection stops reading (the server stops producing), so a
// tree of any size flows through in bounded memory; a ping every minute keeps the
// server from taking the pause for a dead client.
//
// A file already at its destination is not fetched again when it has the same size and
// modification time (the fast path, which get -p makes the common case), or the same
// size and the same chunk-tree root (a digests request, and the local file hashed). A
// file that differs is replaced only with --force.
//
// One file failing does not stop the rest: it is reported, counted, and the exit
// status says "some files failed" (kExitPartial). Losing a connection stops everything.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/get_command.h"
#include "apps/reactorc/local_tree.h"
#include "apps/reactorc/options.h"
#include "apps/reactorc/partial_download.h"
#include "apps/reactorc/tree_report.h"
#include "reactor/event_loop.h"

namespace client {

class TreeGet final : public ConnectionListener, public TreeListObserver, public GetObserver {
 public:
  static constexpr size_t kWindowRequests = 64;
  static constexpr uint64_t kWindowBytes = 64ull << 20;
  static constexpr size_t kQueueHigh = 8192;  // files queued: the listing pauses above this
  static constexpr size_t kQueueLow = 2048;   // and goes on below this

  TreeGet(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
          std::shared_ptr<protocol::TlsContext> tls);
  ~TreeGet() override;

  // Whether this invocation is TreeGet's (get -r, or more than one source).
  static bool handles(const Options& options);

  bool prepare();
  void start(std::vector<reactor::SocketAddress> addresses);
  void interrupt(const char* signal_name);
  int exit_code() const { return exit_code_; }

  // ConnectionListener
  void on_ready(Connection& connection) override;
  void on_command_done(Connection& connection, Command& command) override;
  void on_failure(Connection& connection, Failure failure, const std::string& message) override;
  // TreeListObserver
  void on_tree_entries(const std::vector<std::string>& dir, std::vector<protocol::Entry>& entries) override;
  // GetObserver
  void on_file(const protocol::FileHeader&) override {}
  void on_received(uint64_t) override;

 private:
  struct Source {
    std::string remote;  // as given
    std::string prefix;  // remote, normalised: the paths beneath it are prefix/...
  };
  struct FileJob {
    std::string remote;
    SharedDir dir;
    std::string name;
    std::string local;  // for display
    uint64_t size = 0;
    int64_t mtime = 0;
    bool listed = false;  // from a listing: the size must match
    bool absent = false;  // start_job found no local file by that name
  };
  // What a flight's command is for.
  enum class Purpose {
    kGet,          // fetching the file (or, resumed, its rest)
    kQuickCheck,   // digests: is the local copy already the server's?
    kResumeCheck,  // digests: which chunks of a partial download can be kept?
  };
  struct Flight {
    // A file of more than a chunk goes into a partial download (partial_download.h),
    // kept if the run is cut short so that the next run resumes it. Heap-held, and
    // declared before the command so that it outlives it: the get refers to it.
    std::unique_ptr<PartialDownload> partial;
    std::unique_ptr<Command> command;
    FileJob job;
    Purpose purpose = Purpose::kGet;
  };

  void next_source();
  void on_stat(StatCommand& stat);
  void on_listed(TreeListCommand& list);
  // --links: recreates the link `entry` (in `dir` beneath the tree's top) in `local`.
  void make_link(const SharedDir& local, const std::vector<std::string>& dir, const protocol::Entry& entry,
                 const std::string& remote, const std::string& shown);
  void pump();
  void start_job(FileJob job);
  void submit_get(FileJob job);
  // A big file: opens its partial download and resumes it (a digests request first) or
  // starts it; false when it could not be opened (the file has failed).
  bool submit_partial_get(FileJob& job);
  void on_resume_check(Flight& flight);
  // Sends the get for `job` into `partial` from `offset`, the `leaves` of what is held verified.
  void submit_get_into(FileJob job, std::unique_ptr<PartialDownload> partial, uint64_t offset,
                       const std::vector<protocol::Digest>& leaves);
  void submit_flight(Flight flight);
  void on_data_done(Command& command);
  void on_quick_check(Flight& flight);
  void fail_file(const FileJob& job, const std::string& why);
  void keepalive();
  void maybe_finish();
  void finish(int status, const std::string& fatal = {});
  // Where source `source` lands: the directory to create it in and the name in it.
  bool target_for(const Source& source, SharedDir* parent, std::string* name, std::string* display,
                  std::string* err) const;

  reactor::EventLoop& loop_;
  const Options& options_;
  const app::Secret& secret_;
  std::shared_ptr<protocol::TlsContext> tls_;
  std::unique_ptr<Connection> lister_;
  std::unique_ptr<Connection> data_;
  size_t ready_ = 0;
  TreeReport report_;

  std::vector<Source> sources_;
  std::string dest_;        // as given
  bool into_dir_ = false;   // each source lands inside dest_ (it is an existing directory)
  SharedDir dest_dir_;      // into_dir_: dest_; else dest_'s parent
  std::string dest_name_;   // !into_dir_: the name in it
  size_t next_source_ = 0;
  bool sources_done_ = false;

  std::unique_ptr<Command> listing_step_;  // the stat or list in progress on lister_
  std::unique_ptr<LocalTree> tree_;        // the source being listed's copy
  std::vector<std::unique_ptr<LocalTree>> done_trees_;
  std::string tree_prefix_;
  std::vector<std::unique_ptr<Command>> keepalives_;
  reactor::EventLoop::TimerId keepalive_timer_ = 0;

  std::deque<FileJob> queue_;
  std::deque<Flight> flights_;
  uint64_t bytes_in_flight_ = 0;
  uint64_t received_before_ = 0;  // bytes of finished gets
  uint64_t received_now_ = 0;     // of the gets in flight, as GetObserver reports them

  reactor::EventLoop::TimerId tick_timer_ = 0;
  int exit_code_ = 1;
  bool done_ = false;
};

}  // namespace client
