#pragma once
// What a transfer of many files (get -r, several sources) tells its user:
//
//   bar (a terminal):  12/40 files [=====>     ] 31% 12.0 MiB / 38.5 MiB 40.1 MiB/s 0.30 s ETA 0.66 s
//   with -v, a line per file above it:   ✓ photos/a.jpg  2.0 MiB
//                                        - photos/b.jpg  unchanged (same size and modification time)
//                                        ✗ photos/c.jpg: its size changed since it was listed
//   always, at the end:  ✓ 40 files  38.5 MiB in 0.96 s (40.1 MiB/s), 3 unchanged, 1 skipped
//                        ✗ 39 of 40 files; 1 failed (see above) ...
//
// The totals grow as the listing arrives, so the bar is honest about what it knows.
// Failures are always shown (stderr), whatever -v says; -q shows nothing but them.
//
// --progress=json writes, instead of all that, one JSON object per line on standard
// output, for scripts and GUIs:
//   {"event":"start","sources":["docs"],"destination":"out"}
//   {"event":"progress","files_done":3,"files_total":40,"bytes_done":1024,"bytes_total":4096,"elapsed":0.25}
//   {"event":"file_done","path":"docs/a.txt","local":"out/docs/a.txt","size":6}
//   {"event":"file_skipped","path":"docs/link","local":"out/docs/link","reason":"..."}
//   {"event":"file_failed","path":"docs/b.txt","local":"out/docs/b.txt","reason":"..."}
//   {"event":"file_resumed","path":"docs/big.iso","local":"out/docs/big.iso","held":5242880,"kept":4194304,"size":9999}
//   {"event":"link_done","path":"docs/latest","local":"out/docs/latest","target":"v2","unchanged":false}
//   {"event":"summary","files":40,"bytes":4096,"unchanged":3,"skipped":1,"failed":0,"links":1,"elapsed":0.96,"status":0}
// "progress" at most four times a second; every event on one line, flushed at once.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/reactorc/progress.h"

namespace client {

class TreeReport {
 public:
  // `verbosity` as in app::CommonOptions (-q: -1, -v: 1).
  TreeReport(ProgressStyle style, int verbosity);
  ~TreeReport();

  void start(const std::vector<std::string>& sources, const std::string& destination);
  // More of the listing: `files` regular files of `bytes` in all, to be looked at.
  void listed(uint64_t files, uint64_t bytes);
  // Body bytes received for the files in flight (a running count; it only grows).
  void received(uint64_t bytes);
  // A file transferred; skipped because it already matches (`unchanged` true) or
  // because it cannot be copied (a symbolic link, a special file: `unchanged` false);
  // failed. `remote` as asked of the server, `local` where it lands, both for display.
  void file_done(const std::string& remote, const std::string& local, uint64_t size);
  void file_unchanged(const std::string& remote, const std::string& local, uint64_t size, const std::string& why);
  void file_skipped(const std::string& remote, const std::string& local, const std::string& why);
  void file_failed(const std::string& remote, const std::string& local, const std::string& why);
  // A partial download left by an earlier run: `held` bytes of it, `kept` of them
  // verified and kept, the file `size` bytes. Said with -v.
  void file_resumed(const std::string& remote, const std::string& local, uint64_t held, uint64_t kept, uint64_t size);
  // A symbolic link recreated (--links), or found already there (`unchanged`).
  void link_done(const std::string& remote, const std::string& local, const std::string& target, bool unchanged);
  // Something that is not one file's: a source that cannot be fetched, a directory that
  // could not be listed. Counted as a failure.
  void failed(const std::string& what, const std::string& why);
  // Redraws the bar (a timer calls it) and emits a throttled "progress" event.
  void tick();
  // The last line. `status` is the exit status reactorc ends with.
  void finish(int status, const std::string& fatal = {});

  uint64_t failures() const { return failed_; }
  uint64_t files_done() const { return done_; }

 private:
  void say(const std::string& line);   // a line above the bar, on stderr
  void emit(const std::string& json);  // one JSON line on stdout
  void update_bar();
  double elapsed() const;

  ProgressStyle style_;
  int verbosity_;
  bool json_;
  bool tty_;
  std::unique_ptr<Progress> bar_;
  double started_ = 0;
  double last_event_ = -1;
  uint64_t files_total_ = 0;
  uint64_t bytes_total_ = 0;
  uint64_t done_ = 0;        // transferred
  uint64_t unchanged_ = 0;   // already there
  uint64_t skipped_ = 0;     // cannot be copied
  uint64_t failed_ = 0;
  uint64_t links_ = 0;       // symbolic links made or already there (--links)
  uint64_t bytes_done_ = 0;  // of files finished, transferred or unchanged
  uint64_t bytes_received_ = 0;
  uint64_t bytes_in_finished_ = 0;  // received bytes belonging to finished files
};

}  // namespace client
