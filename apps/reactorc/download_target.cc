#include "apps/reactorc/download_target.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "reactor/errors.h"

namespace client {
namespace {

std::string last_component(const std::string& path) {
  size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return {};
  size_t start = path.find_last_of('/', end);
  start = start == std::string::npos ? 0 : start + 1;
  return path.substr(start, end - start + 1);
}

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

bool choose_local_path(const std::string& remote, const std::string& local, std::string* out,
                       std::string* err) {
  std::string base = last_component(remote);
  if (!local.empty() && !is_directory(local) && local.back() != '/') {
    *out = local;
    return true;
  }
  if (base.empty() || base == "." || base == "..") {
    *err = "cannot name the local file after \"" + remote + "\"; give LOCAL explicitly";
    return false;
  }
  *out = local.empty() ? base : (local.back() == '/' ? local + base : local + "/" + base);
  return true;
}

DownloadTarget::~DownloadTarget() { discard(); }

bool DownloadTarget::open(const std::string& final_path, bool overwrite, std::string* err) {
  final_path_ = final_path;
  overwrite_ = overwrite;
  struct stat st {};
  if (lstat(final_path.c_str(), &st) == 0) {
    if (!overwrite) {
      *err = "\"" + final_path + "\" exists; use --force to overwrite it";
      return false;
    }
    if (S_ISDIR(st.st_mode)) {
      *err = "\"" + final_path + "\" is a directory";
      return false;
    }
  }
  std::string dir = directory_of(final_path);
  std::string base = last_component(final_path);
  temp_path_ = (dir == "/" ? "/" : dir + "/") + "." + base + ".XXXXXX.part";
  // mkostemps creates the file O_EXCL with mode 0600, so nobody can read a half-written
  // download; commit() widens it to what the umask allows, like any new file.
  int fd = mkostemps(&temp_path_[0], 5, O_CLOEXEC);
  if (fd < 0) {
    *err = reactor::sys_error("create temporary file in", dir);
    temp_path_.clear();
    return false;
  }
  fd_.reset(fd);
  written_ = 0;
  return true;
}

bool DownloadTarget::write(const void* data, size_t len, std::string* err) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd_.get(), p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = reactor::sys_error("write", temp_path_);
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
  return true;
}

bool DownloadTarget::commit(int64_t mtime, std::string* err) {
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd_.get(), 0666 & ~mask) != 0) {
    *err = reactor::sys_error("chmod", temp_path_);
    return false;
  }
  struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(mtime), 0}};
  if (futimens(fd_.get(), times) != 0) {
    *err = reactor::sys_error("set modification time of", temp_path_);
    return false;
  }
  // close() is where NFS and friends report deferred write errors; check it before the
  // rename makes the file visible.
  if (close(fd_.release()) != 0) {
    *err = reactor::sys_error("close", temp_path_);
    return false;
  }
  int rc = overwrite_ ? rename(temp_path_.c_str(), final_path_.c_str())
                      : renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && !overwrite_ && (errno == EINVAL || errno == ENOSYS)) {
    // A file system without RENAME_NOREPLACE: link() also refuses to replace.
    rc = link(temp_path_.c_str(), final_path_.c_str());
    if (rc == 0) unlink(temp_path_.c_str());
  }
  if (rc != 0) {
    *err = errno == EEXIST ? "\"" + final_path_ + "\" appeared during the download; use --force to overwrite it"
                           : reactor::sys_error("rename to", final_path_);
    return false;
  }
  temp_path_.clear();
  return true;
}

void DownloadTarget::discard() {
  fd_.reset();
  if (!temp_path_.empty()) {
    unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

}  // namespace client
