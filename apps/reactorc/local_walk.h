#pragma once
// put -r's walk of a local directory tree: depth first, pre-order, one open directory
// per level and nothing else, so a tree of any size is walked in memory bounded by its
// depth. Like reactord's listing (apps/reactord/dir_lister.h) it never follows a
// symbolic link (subdirectories are opened relative to their parent with O_NOFOLLOW), and
// refuses to enter a directory that is one of its own ancestors (a bind mount loop).

#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/reactorc/local_tree.h"
#include "reactor/unique_fd.h"

namespace client {

class LocalWalk {
 public:
  static constexpr size_t kMaxDepth = 64;

  struct Item {
    enum Kind { kDir, kFile, kOther, kUnreadable } kind = kOther;
    std::string path;  // relative to the top, names joined by '/'
    std::string name;  // the last of them
    SharedDir parent;  // the directory it is in, to open it relative to
    struct stat st {};
    std::string why;   // kOther, kUnreadable: what it is, why it is not walked
  };

  // `top`: the directory to walk, opened by the caller.
  explicit LocalWalk(reactor::UniqueFd top, std::string* err);
  bool ok() const { return !stack_.empty(); }

  // The next item; false at the end. A directory comes before what it holds, and is
  // entered right after it is returned (unless it is kUnreadable).
  bool next(Item* item);

 private:
  struct DirCloser {
    void operator()(DIR* dir) const { closedir(dir); }
  };
  struct Level {
    std::unique_ptr<DIR, DirCloser> dir;
    SharedDir fd;  // the same directory, for files to be opened in it later
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  bool enter(const Item& item, std::string* why);

  std::vector<Level> stack_;
};

}  // namespace client
