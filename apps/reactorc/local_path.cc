#include "apps/reactorc/local_path.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

bool choose_local_path(const std::string& remote, const std::string& local, std::string* out, std::string* err) {
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

bool open_parent(const std::string& path, reactor::UniqueFd* dir, std::string* name, std::string* err) {
  std::string base = last_component(path);
  if (base.empty() || base == "." || base == ".." || path.back() == '/') {
    *err = "\"" + path + "\" does not name a file";
    return false;
  }
  std::string parent = directory_of(path);
  reactor::UniqueFd fd(open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    *err = reactor::sys_error("create temporary file in", parent);
    return false;
  }
  *dir = std::move(fd);
  *name = base;
  return true;
}

bool open_stream_destination(const std::string& local, reactor::UniqueFd* fd, std::string* display,
                             std::string* err) {
  if (local == "-") {
    reactor::UniqueFd out(fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
    if (!out) {
      *err = reactor::sys_error("duplicate", "standard output");
      return false;
    }
    *fd = std::move(out);
    *display = "standard output";
    return true;
  }
  struct stat st {};
  if (stat(local.c_str(), &st) != 0) return true;  // nothing there (yet): a file to create
  if (S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode)) {
    *err = "\"" + local + "\" is a " + (S_ISBLK(st.st_mode) ? "block device" : "socket") +
           "; reactorc writes regular files, character devices and FIFOs";
    return false;
  }
  if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) return true;
  // O_NOCTTY: writing to a terminal device must not make it our controlling terminal.
  reactor::UniqueFd out(open(local.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC));
  if (!out) {
    *err = reactor::sys_error("open", local);
    return false;
  }
  *fd = std::move(out);
  *display = local;
  return true;
}

bool resolve_destination(const std::string& local, bool force, std::string* target, std::string* err) {
  *target = local;
  struct stat st {};
  if (lstat(local.c_str(), &st) != 0 || !S_ISLNK(st.st_mode) || !force) return true;
  char resolved[PATH_MAX];
  if (realpath(local.c_str(), resolved) == nullptr) {
    *err = "\"" + local + "\" is a symbolic link to nothing that exists; give the file it should name as LOCAL";
    return false;
  }
  struct stat target_st {};
  if (stat(resolved, &target_st) != 0 || !S_ISREG(target_st.st_mode)) {
    *err = "\"" + local + "\" is a symbolic link to \"" + resolved + "\", which is not a regular file";
    return false;
  }
  std::string parent = directory_of(resolved);
  struct stat dir_st {};
  if (stat(parent.c_str(), &dir_st) != 0 || dir_st.st_uid != geteuid()) {
    *err = "\"" + local + "\" is a symbolic link into \"" + parent +
           "\", a directory another user owns; give the file itself as LOCAL";
    return false;
  }
  *target = resolved;
  return true;
}

bool choose_remote_path(const std::string& local, const std::string& remote, std::string* out, std::string* err) {
  if (!remote.empty() && remote.back() != '/') {
    *out = remote;
    return true;
  }
  std::string base = last_component(local);
  if (base.empty() || base == "." || base == ".." || local == "-") {
    *err = "cannot name the remote file after \"" + local + "\"; give REMOTE explicitly";
    return false;
  }
  *out = remote + base;
  return true;
}

bool open_upload_source(const std::string& local, reactor::UniqueFd* fd, struct stat* st, std::string* err) {
  if (local == "-") {
    *err = "put needs a regular file, not standard input: its size is sent before its first byte";
    return false;
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  reactor::UniqueFd file(open(local.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!file) {
    *err = reactor::sys_error("open", local);
    return false;
  }
  if (fstat(file.get(), st) != 0) {
    *err = reactor::sys_error("stat", local);
    return false;
  }
  if (S_ISDIR(st->st_mode)) {
    *err = "\"" + local + "\" is a directory; put sends one regular file";
    return false;
  }
  if (!S_ISREG(st->st_mode)) {
    *err = "\"" + local + "\" is not a regular file: put declares the size before the first byte";
    return false;
  }
  *fd = std::move(file);
  return true;
}

}  // namespace client
