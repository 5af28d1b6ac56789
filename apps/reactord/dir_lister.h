#pragma once
// Produces the frames answering a `list`: `entries` frames packed up to the 64 KiB header
// limit, then `list_end`. One frame per call, so a directory with a million names is
// streamed as the client reads it instead of being built in memory, and other
// connections get their turn between frames.
//
// A recursive listing (reactor-protocol(7), list) walks the tree depth first, keeping
// one open directory per level and nothing else: memory grows with the depth, never
// with the number of entries. A subdirectory is opened before it is announced, so the
// entry that announces it can end its frame and the next frame can begin inside it;
// one that cannot be opened, or would loop (a bind mount of an ancestor), or is too
// deep, is listed and counted as unreadable instead. Subdirectories are opened with
// O_NOFOLLOW relative to their parent: the walk never follows a symbolic link, so it
// cannot leave the served root. Asked for links, it reads each link's contents
// (readlinkat) to describe it, and still never follows one.
//
// A name readdir returned that is gone by the time it is described (stat) is left out
// and counted: a listing of a directory being changed under it is not an error.

#include <dirent.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/framed_stream.h"
#include "protocol/messages.h"
#include "reactor/buffer.h"
#include "reactor/unique_fd.h"

namespace server {

class ServedRoot;

class DirLister final : public protocol::Producer {
 public:
  // reactor-protocol(7), LIMITS AND TIMERS: levels descended beneath the listed
  // directory (each holds a descriptor while its subtree is listed).
  static constexpr size_t kMaxDepth = 64;
  // Entries in one frame at most, below what 64 KiB could hold: each costs a stat, and a
  // frame is the work of one pass of the loop, so this bounds how long another
  // connection waits behind a listing (a ping's p99: bench scenario L).
  static constexpr size_t kEntriesPerFrame = 256;

  struct Options {
    bool recursive = false;  // the whole tree (feature tree)
    bool links = false;      // symbolic links as kind link, with their target (feature links)
  };
  static std::unique_ptr<DirLister> open(reactor::UniqueFd dir, const ServedRoot& root, Options options,
                                         std::string* err);

  // Appends the next frame to `out` and returns its size; finished() once the final
  // frame (list_end, or an io_error if reading a plain listing's directory failed) is
  // appended. `budget` is not split: a frame is at most one 64 KiB header and
  // kEntriesPerFrame entries. After a frame the next call yields (returns 0), so that
  // the stream's pass ends and the loop serves the others before the next.
  size_t produce(reactor::Buffer& out, size_t budget) override;
  bool finished() const override { return done_; }

  uint64_t count() const { return count_; }
  uint64_t unreadable() const { return unreadable_; }
  uint64_t vanished() const { return vanished_; }

 private:
  struct DirCloser {
    void operator()(DIR* dir) const { closedir(dir); }
  };
  using DirStream = std::unique_ptr<DIR, DirCloser>;
  struct Level {
    DirStream dir;
    std::string path;  // relative to the listed directory, "" for itself
    dev_t dev = 0;
    ino_t ino = 0;
  };
  // An entry read but not yet sent (it did not fit the last frame), and the
  // subdirectory it opens, if the walk is to descend into it.
  struct Pending {
    protocol::Entry entry;
    DirStream subdir;
    dev_t dev = 0;
    ino_t ino = 0;
  };

  DirLister(Level top, const ServedRoot& root, Options options);
  // Reads the top level's next entry into *next; false at its end (or when reading it
  // failed: *read_error then holds the errno).
  bool read_entry(Pending* next, int* read_error);
  // The frames of one produce() call (one, or the last ones of the listing).
  size_t frames(reactor::Buffer& out, size_t budget);
  // For an entry of kind dir in a recursive listing: opens it to descend into, unless
  // it cannot be (then it is counted as unreadable).
  void open_subdir(const std::string& name, Pending* next);
  std::string child_path(const std::string& name) const;

  std::vector<Level> stack_;
  const ServedRoot& root_;
  bool recursive_;
  bool links_;
  uint64_t count_ = 0;
  uint64_t skipped_ = 0;
  uint64_t unreadable_ = 0;
  uint64_t vanished_ = 0;
  bool done_ = false;
  bool yield_next_ = false;
  std::optional<Pending> pending_;
};

}  // namespace server
