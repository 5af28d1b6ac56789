#include "tests/support/temp_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "tests/support/cleanup.h"
#include "tests/support/fd.h"

namespace testsupport {
namespace {

constexpr int kMaxDepth = 1024;

void set_err(std::string* err, const std::string& what, const std::string& path, int e) {
  if (err && err->empty()) *err = what + " \"" + path + "\": " + std::strerror(e);
}

// Names in the directory open as dir_fd (dir_fd stays open: fdopendir works on a dup).
bool read_names(int dir_fd, const std::string& shown, std::vector<std::string>* names,
                std::string* err) {
  int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    set_err(err, "dup", shown, errno);
    return false;
  }
  DIR* dir = fdopendir(dup_fd);
  if (!dir) {
    set_err(err, "fdopendir", shown, errno);
    ::close(dup_fd);
    return false;
  }
  for (int i = 0; i < 10000000; ++i) {
    errno = 0;
    dirent* ent = readdir(dir);
    if (!ent) break;
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    names->emplace_back(ent->d_name);
  }
  closedir(dir);
  return true;
}

// Removes the entry NAME of the directory open as parent_fd.
bool remove_at(int parent_fd, const std::string& name, const std::string& shown, int depth,
               std::string* err) {
  struct stat st {};
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return true;
    set_err(err, "stat", shown, errno);
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      set_err(err, "unlink", shown, errno);
      return false;
    }
    return true;
  }
  if (depth > kMaxDepth) {
    set_err(err, "remove (too deep)", shown, ELOOP);
    return false;
  }
  // A test may leave a directory read-only or unreadable (mode 0, 0500).
  if ((st.st_mode & 0700) != 0700) fchmodat(parent_fd, name.c_str(), 0700, 0);
  bool ok = true;
  Fd dir(openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    set_err(err, "open", shown, errno);
    ok = false;
  } else {
    std::vector<std::string> names;
    ok = read_names(dir.get(), shown, &names, err);
    for (const auto& child : names) {
      ok = remove_at(dir.get(), child, shown + "/" + child, depth + 1, err) && ok;
    }
  }
  dir.reset();
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    set_err(err, "rmdir", shown, errno);
    return false;
  }
  return ok;
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char buf[4096];
  if (!getcwd(buf, sizeof buf)) return path;
  return std::string(buf) + "/" + path;
}

}  // namespace

bool remove_tree(const std::string& path, std::string* err) {
  if (path.empty()) return true;
  std::string parent = ".";
  std::string name = path;
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos) {
    parent = slash == 0 ? "/" : path.substr(0, slash);
    name = path.substr(slash + 1);
  }
  if (name.empty() || name == "." || name == "..") {
    set_err(err, "remove_tree: refusing", path, EINVAL);
    return false;
  }
  Fd parent_fd(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd) {
    if (errno == ENOENT) return true;
    set_err(err, "open", parent, errno);
    return false;
  }
  return remove_at(parent_fd.get(), name, path, 0, err);
}

std::optional<TempDir> TempDir::create(std::string_view prefix, std::string* err) {
  const char* env = std::getenv("TMPDIR");
  std::string base = (env && *env) ? env : "/tmp";
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string templ = absolute(base) + "/" + std::string(prefix) + ".XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {
    set_err(err, "mkdtemp", templ, errno);
    return std::nullopt;
  }
  std::string path(buf.data());
  track_dir(path);
  return TempDir(std::move(path));
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, std::string())) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, std::string());
  }
  return *this;
}

TempDir::~TempDir() { remove(); }

std::string TempDir::path(std::string_view relative) const {
  return path_join(path_, relative);
}

bool TempDir::remove(std::string* err) {
  if (path_.empty()) return true;
  bool ok = remove_tree(path_, err);
  untrack_dir(path_);
  path_.clear();
  return ok;
}

std::string TempDir::release() {
  untrack_dir(path_);
  return std::exchange(path_, std::string());
}

}  // namespace testsupport
