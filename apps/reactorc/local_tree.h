#pragma once
// Where get -r builds its copy: a directory tree beneath one destination directory,
// created and opened one component at a time relative to a descriptor, with
// O_NOFOLLOW, never by a path string. A symbolic link found in the destination
// (`dest/sub -> /etc`, planted before or during the copy) is never followed or written
// through: opening it as a directory fails, and so do the files meant to go inside.
//
// The walk of a listing is depth first, so the directories open at any time are one
// path from the top: they are kept open as such a path, and files queued in them hold
// their directory's descriptor (shared), however far the walk has moved on.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "reactor/unique_fd.h"

namespace client {

using SharedDir = std::shared_ptr<const reactor::UniqueFd>;

class LocalTree {
 public:
  // `top`: the directory the copy is made in (already created or checked by the
  // caller); `display`: its path as shown in messages.
  LocalTree(SharedDir top, std::string display);

  // The directory `dir` (components beneath the top), which must exist (make_dir made
  // it), or null + *err.
  SharedDir open(const std::vector<std::string>& dir, std::string* err);
  // Creates `name` in `parent` as a directory, unless one is already there; an
  // existing directory is fine, anything else (a file, a symbolic link) is refused.
  // `mode`, if not 0, is kept to be applied by finish() (get -p); the directory is
  // created with the default mode, so that the copy can write into it.
  bool make_dir(const SharedDir& parent, const std::vector<std::string>& parent_path, const std::string& name,
                uint32_t mode, int64_t mtime, bool preserve, std::string* err);
  // Remembers to give the directory `name` in `parent` (`shown` in messages) `mode` and
  // `mtime` in finish(): what make_dir does with `preserve`, for a directory made
  // otherwise (the top of the copy).
  void keep_meta(const SharedDir& parent, const std::string& name, const std::string& shown, uint32_t mode,
                 int64_t mtime);
  // get -p: gives the directories made their mode and modification time, innermost
  // first (creating files inside changed their times). Errors are reported, not fatal.
  void finish(std::vector<std::string>* errors);

  // "top/a/b": a path beneath the top, for messages.
  std::string display(const std::vector<std::string>& dir, const std::string& name = {}) const;

 private:
  struct Fixup {
    SharedDir parent;
    std::string name;
    std::string display;
    uint32_t mode;
    int64_t mtime;
  };
  SharedDir top_;
  std::string display_;
  std::vector<std::string> open_path_;  // components of the path held open
  std::vector<SharedDir> open_fds_;     // open_fds_[i]: the directory open_path_[0..i]
  std::vector<Fixup> fixups_;
};

// Creates `name` in the directory `parent` unless a directory is already there; anything
// else there (a file, a symbolic link, which is never followed) is refused. `shown`:
// the path in messages.
bool make_local_dir(int parent, const std::string& name, const std::string& shown, std::string* err);

// "a/b" + "c" -> "a/b/c"; "" + "c" -> "c".
std::string join_path(const std::string& dir, const std::string& name);
// A remote path as get -r and put -r build on it: "docs/", "./docs" -> "docs"; "", ".",
// "/" -> "" (the served root).
std::string normalise_remote(const std::string& remote);
// The last component: "a/b" -> "b", "a" -> "a".
std::string last_name(const std::string& path);

}  // namespace client
