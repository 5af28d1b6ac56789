#pragma once
// The directory tree reactord serves, and the only way request paths are opened.
//
// Every open starts from a descriptor on the root and resolves with openat2(2) and
// RESOLVE_BENEATH, so the kernel itself refuses any resolution that would leave the
// tree: "..", absolute paths and symlinks pointing outside all fail with EXDEV, with no
// check-then-open race. Where openat2 is missing (Linux < 5.6, or a seccomp filter that
// blocks it) the fallback walks one component at a time with O_NOFOLLOW and refuses
// every symlink, which is stricter but equally safe.
//
// The final component is never followed: a get of a symlink is refused, and only
// regular files are served, so a FIFO or device under the root cannot hang the loop.
// Names of upload temporaries (app::is_temp_name) are neither served nor described.

#include <sys/stat.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/error_code.h"
#include "reactor/unique_fd.h"

namespace server {

// Checks a request path's syntax and returns it normalised: empty and "." components
// dropped, "." for the root itself. A leading '/' or any ".." component is forbidden
// (refused before touching the file system, whatever the tree holds).
bool normalize_request_path(std::string_view path, std::string* out, protocol::ProtocolError* err);

class ServedRoot {
 public:
  // kAuto: openat2 where the kernel has it, else the walk. kWalk: always the walk (for
  // tests: the fallback must refuse what openat2 refuses).
  enum class Resolution { kAuto, kWalk };

  static std::unique_ptr<ServedRoot> open(const std::string& dir, std::string* err,
                                          Resolution resolution = Resolution::kAuto);

  // Never serve, stat or list this file (the server's own secret).
  void hide(dev_t dev, ino_t ino);
  bool is_hidden(const struct stat& st) const;

  // For get: a regular file opened read-only and non-blocking, and its fstat.
  reactor::UniqueFd open_file(std::string_view path, struct stat* st,
                              protocol::ProtocolError* err) const;
  // For list: a directory opened for reading.
  reactor::UniqueFd open_directory(std::string_view path, protocol::ProtocolError* err) const;
  // For stat: what the path names, without following a final symlink.
  // Describes the path itself, a final symbolic link included (lstat); a link's
  // contents go to *link_target when asked for (nullopt if unreadable or not UTF-8).
  bool stat_path(std::string_view path, struct stat* st, protocol::ProtocolError* err,
                 std::optional<std::string>* link_target = nullptr) const;
  // For put: the directory the path's last component is to be created in, opened for
  // reading (an fsync of it needs that), and that component. The directory must exist
  // beneath the root; the root itself, a temporary's name and the secret's are refused.
  // Nothing is created.
  reactor::UniqueFd open_parent(std::string_view path, std::string* name, protocol::ProtocolError* err) const;
  // For mkdir: makes the directory with exactly `mode` (the umask does not apply),
  // in a parent found as open_parent finds it. A directory already there is fine
  // (*created false); anything else there is refused with exists. With `mtime`, the
  // directory, made or found, is given that modification time.
  bool make_directory(std::string_view path, uint32_t mode, std::optional<int64_t> mtime, bool* created,
                      protocol::ProtocolError* err) const;
  // For symlink: makes `path` a symbolic link to `target`, in a parent found as
  // open_parent finds it. The target must be relative and, read from the link's
  // directory, stay beneath the root (forbidden otherwise); a directory at the path is
  // refused with is_directory, a file or link with exists unless `force`, the secret
  // file always.
  // The same link already there is left as it is (*unchanged).
  bool make_symlink(std::string_view path, const std::string& target, bool force, bool* replaced, bool* unchanged,
                    protocol::ProtocolError* err) const;

  const std::string& display_path() const { return dir_; }
  bool uses_openat2() const { return have_openat2_; }

 private:
  ServedRoot(reactor::UniqueFd root, std::string dir);
  // Resolves `normalized` beneath the root with `flags` (O_NOFOLLOW is always added).
  // Returns an invalid fd with errno set on failure.
  // `follow_final`: a final symlink is followed (still beneath the root), for the
  // parent directory of a put, which is a middle component of its path.
  reactor::UniqueFd resolve(const std::string& normalized, int flags, bool follow_final = false) const;
  reactor::UniqueFd resolve_by_walking(const std::string& normalized, int flags) const;
  // get and list of a final symlink: followed beneath the root, then checked for what
  // it leads to as if that were named (an upload's temporary file is not found). Only
  // with openat2, which alone can tell a link that stays inside: ELOOP otherwise.
  reactor::UniqueFd resolve_through_final_link(const std::string& normalized, int flags) const;
  bool fail_from_errno(int saved_errno, std::string_view path, protocol::ProtocolError* err) const;

  reactor::UniqueFd root_;
  std::string dir_;
  mutable bool have_openat2_ = true;
  bool hide_set_ = false;
  dev_t hidden_dev_ = 0;
  ino_t hidden_ino_ = 0;
};

}  // namespace server
