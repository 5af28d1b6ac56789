#pragma once
// put -r, and put with several sources: many files up one connection.
//
// The local tree is walked depth first (LocalWalk) as the upload goes, never listed
// whole: each directory becomes a mkdir before anything inside it, each file a stat of
// its remote name, which decides, then a put. Stats and mkdirs are pipelined (up to 64
// requests out at once); a put is exclusive on the connection (its body follows its
// request), so the requests behind it wait for it.
//
// The quick check mirrors get -r's: a remote file with the same size and modification
// time (put -p keeps the time, so a rerun with -p is the common case) is taken as
// unchanged; one with the same size and another time is compared by its chunk-tree
// root (a digests request, and the local file hashed); one that differs is replaced only
// with --force.
//
// One file failing does not stop the rest (kExitPartial); a lost connection stops all.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/local_walk.h"
#include "apps/reactorc/options.h"
#include "apps/reactorc/put_command.h"
#include "apps/reactorc/tree_report.h"
#include "reactor/event_loop.h"

namespace client {

class TreePut final : public ConnectionListener, public PutObserver {
 public:
  static constexpr size_t kWindowRequests = 64;
  static constexpr uint64_t kEagerLimit = 1 << 20;  // files sent without waiting for put_ready

  TreePut(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
          std::shared_ptr<protocol::TlsContext> tls);
  ~TreePut() override;

  // Whether this invocation is TreePut's (put -r, or more than one source).
  static bool handles(const Options& options);

  bool prepare();
  void start(std::vector<reactor::SocketAddress> addresses);
  void interrupt(const char* signal_name);
  int exit_code() const { return exit_code_; }

  // ConnectionListener
  void on_ready(Connection& connection) override;
  void on_command_done(Connection& connection, Command& command) override;
  void on_failure(Connection& connection, Failure failure, const std::string& message) override;
  // PutObserver
  void on_put_ready(uint64_t, uint64_t) override {}

 private:
  // One local file on its way: stat, perhaps digests, then put.
  struct Job {
    std::string local;   // for display
    std::string remote;
    SharedDir parent;    // the local directory it is in
    std::string name;
    struct stat st {};
    bool exists = false;  // the server has a file by that name
  };
  enum class Step { kDestination, kMkdir, kStat, kDigests, kPut, kSymlink, kDirTime };
  struct Flight {
    std::unique_ptr<Command> command;
    Step step;
    std::shared_ptr<Job> job;  // kStat, kDigests, kPut, kSymlink
    std::string what;          // kMkdir, kDirTime: the remote directory, for messages
    std::optional<int64_t> dir_mtime;  // kMkdir with -p: the time to give it at the end
  };
  struct DirTime {
    std::string remote;
    int64_t mtime;
  };

  void on_destination(StatCommand& stat);
  void pump();
  bool start_source();
  void submit(Step step, std::unique_ptr<Command> command, std::shared_ptr<Job> job, std::string what = {},
              std::optional<int64_t> dir_mtime = std::nullopt);
  void on_stat(const std::shared_ptr<Job>& job, StatCommand& stat);
  void on_digests(const std::shared_ptr<Job>& job, Command& digests);
  void submit_put(const std::shared_ptr<Job>& job);
  void submit_mkdir(const std::string& remote, const struct stat& st);
  // --links: a symbolic link met in the walk, made on the server if it stays inside the tree.
  void put_link(const LocalWalk::Item& item, const std::string& local, const std::string& remote);
  void maybe_finish();
  void finish(int status, const std::string& fatal = {});

  reactor::EventLoop& loop_;
  const Options& options_;
  const app::Secret& secret_;
  std::shared_ptr<protocol::TlsContext> tls_;
  std::unique_ptr<Connection> connection_;
  TreeReport report_;

  std::vector<std::string> sources_;
  std::string dest_;            // REMOTE, normalised; "" is the served root
  bool into_dir_ = true;        // each source lands inside dest_
  bool dest_is_file_ = false;   // one source, and dest_ names a file on the server
  size_t next_source_ = 0;
  std::unique_ptr<LocalWalk> walk_;  // the directory source being walked
  std::string walk_local_;      // its local path, for display
  std::string walk_remote_;     // where its top lands on the server
  bool started_ = false;

  std::map<Command*, Flight> flights_;
  // -p: the directories made, in walk order; their times are set last, deepest first,
  // once every file in them is in (each file put changes its directory's time).
  std::vector<DirTime> dir_times_;
  bool setting_times_ = false;  // every put, mkdir and symlink is answered: dir_times_ go now
  uint64_t bytes_before_ = 0;  // of finished puts
  reactor::EventLoop::TimerId tick_timer_ = 0;
  int exit_code_ = 1;
  bool done_ = false;
};

}  // namespace client
