#include "apps/reactorc/local_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "reactor/errors.h"

namespace client {
namespace {

std::string describe_errno(const std::string& what, int errnum) {
  if (errnum == ELOOP) return what + " is a symbolic link, which is not followed";
  if (errnum == ENOTDIR) return what + " is not a directory";
  return what + ": " + std::strerror(errnum);
}

}  // namespace

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (name.empty()) return dir;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string normalise_remote(const std::string& remote) {
  std::string out;
  size_t i = 0;
  while (i <= remote.size()) {
    size_t slash = remote.find('/', i);
    if (slash == std::string::npos) slash = remote.size();
    std::string part = remote.substr(i, slash - i);
    if (!part.empty() && part != ".") out = join_path(out, part);
    i = slash + 1;
  }
  return out;
}

std::string last_name(const std::string& path) {
  size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return {};
  size_t slash = path.rfind('/', end);
  return slash == std::string::npos ? path.substr(0, end + 1) : path.substr(slash + 1, end - slash);
}

LocalTree::LocalTree(SharedDir top, std::string display) : top_(std::move(top)), display_(std::move(display)) {}

std::string LocalTree::display(const std::vector<std::string>& dir, const std::string& name) const {
  std::string out = display_;
  for (const std::string& part : dir) out = join_path(out, part);
  return name.empty() ? out : join_path(out, name);
}

SharedDir LocalTree::open(const std::vector<std::string>& dir, std::string* err) {
  size_t common = 0;
  while (common < dir.size() && common < open_path_.size() && dir[common] == open_path_[common]) ++common;
  open_path_.resize(common);
  open_fds_.resize(common);
  while (open_path_.size() < dir.size()) {
    const SharedDir& parent = open_fds_.empty() ? top_ : open_fds_.back();
    const std::string& name = dir[open_path_.size()];
    int fd = openat(parent->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      std::vector<std::string> shown(dir.begin(), dir.begin() + static_cast<long>(open_path_.size()) + 1);
      *err = describe_errno(display(shown), errno);
      return nullptr;
    }
    open_path_.push_back(name);
    open_fds_.push_back(std::make_shared<const reactor::UniqueFd>(fd));
  }
  return open_fds_.empty() ? top_ : open_fds_.back();
}

bool make_local_dir(int parent, const std::string& name, const std::string& shown, std::string* err) {
  bool created = mkdirat(parent, name.c_str(), 0777) == 0;
  if (!created) {
    int errnum = errno;
    struct stat st {};
    if (errnum != EEXIST || fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      *err = describe_errno("create directory " + shown, errnum);
      return false;
    }
    if (S_ISLNK(st.st_mode)) {
      *err = shown + " exists and is a symbolic link, which is not followed";
      return false;
    }
    if (!S_ISDIR(st.st_mode)) {
      *err = shown + " exists and is not a directory";
      return false;
    }
  }
  return true;
}

bool LocalTree::make_dir(const SharedDir& parent, const std::vector<std::string>& parent_path, const std::string& name,
                         uint32_t mode, int64_t mtime, bool preserve, std::string* err) {
  std::string shown = display(parent_path, name);
  if (!make_local_dir(parent->get(), name, shown, err)) return false;
  if (preserve) keep_meta(parent, name, shown, mode, mtime);
  return true;
}

void LocalTree::keep_meta(const SharedDir& parent, const std::string& name, const std::string& shown, uint32_t mode,
                          int64_t mtime) {
  fixups_.push_back(Fixup{parent, name, shown, mode & 07777, mtime});
}

void LocalTree::finish(std::vector<std::string>* errors) {
  for (auto it = fixups_.rbegin(); it != fixups_.rend(); ++it) {
    // fchmodat and utimensat do not follow a final symlink here: one swapped in for the
    // directory since it was made is left alone (AT_SYMLINK_NOFOLLOW; fchmodat has no
    // such flag on Linux, so the directory is opened first).
    int fd = openat(it->parent->get(), it->name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      errors->push_back(describe_errno("set the mode of " + it->display, errno));
      continue;
    }
    reactor::UniqueFd dir(fd);
    struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(it->mtime), 0}};
    if (fchmod(dir.get(), static_cast<mode_t>(it->mode)) != 0 || futimens(dir.get(), times) != 0)
      errors->push_back(describe_errno("set the mode and time of " + it->display, errno));
  }
  fixups_.clear();
}

}  // namespace client
