#include "apps/reactord/served_root.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "apps/common/body_sink.h"
#include "apps/common/symlink_at.h"
#include "reactor/errors.h"

namespace server {
namespace {

using protocol::ErrorCode;
using protocol::ProtocolError;

constexpr size_t kMaxComponent = 255;
// openat2 answers EAGAIN when a concurrent rename might have let a resolution escape;
// the kernel asks us to retry. A few retries make that vanishingly rare; past them the
// request fails with io_error rather than spinning.
constexpr int kOpenat2Retries = 8;

using protocol::refuse;
const auto& quoted = protocol::quote_path;

std::string_view last_component(std::string_view normalized) {
  size_t slash = normalized.rfind('/');
  return slash == std::string_view::npos ? normalized : normalized.substr(slash + 1);
}

long sys_openat2(int dirfd, const char* path, int flags) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

}  // namespace

bool normalize_request_path(std::string_view path, std::string* out, ProtocolError* err) {
  if (!path.empty() && path.front() == '/')
    return refuse(err, ErrorCode::kForbidden, "absolute path " + quoted(path) + " refused: paths are relative to the served root");
  std::string result;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view component = path.substr(start, slash - start);
    start = slash + 1;
    if (component.empty() || component == ".") continue;
    if (component == "..")
      return refuse(err, ErrorCode::kForbidden, "path " + quoted(path) + " refused: \"..\" is not allowed");
    if (component.size() > kMaxComponent)
      return refuse(err, ErrorCode::kBadPath, "path " + quoted(path) + " has a component longer than 255 bytes");
    if (component.find('\0') != std::string_view::npos)
      return refuse(err, ErrorCode::kBadPath, "path contains a NUL byte");
    if (!result.empty()) result += '/';
    result.append(component);
  }
  *out = result.empty() ? "." : result;
  return true;
}

ServedRoot::ServedRoot(reactor::UniqueFd root, std::string dir)
    : root_(std::move(root)), dir_(std::move(dir)) {}

std::unique_ptr<ServedRoot> ServedRoot::open(const std::string& dir, std::string* err, Resolution resolution) {
  reactor::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    *err = reactor::sys_error("open served root", dir);
    return nullptr;
  }
  std::unique_ptr<ServedRoot> root(new ServedRoot(std::move(fd), dir));
  root->have_openat2_ = resolution == Resolution::kAuto;
  return root;
}

void ServedRoot::hide(dev_t dev, ino_t ino) {
  hide_set_ = true;
  hidden_dev_ = dev;
  hidden_ino_ = ino;
}

bool ServedRoot::is_hidden(const struct stat& st) const {
  return hide_set_ && st.st_dev == hidden_dev_ && st.st_ino == hidden_ino_;
}

reactor::UniqueFd ServedRoot::resolve(const std::string& normalized, int flags, bool follow_final) const {
  flags |= O_CLOEXEC;
  // Without openat2 the walk refuses every symlink anyway.
  if (!follow_final || !have_openat2_) flags |= O_NOFOLLOW;
  // openat2 rejects flags that mean nothing for the open (EINVAL), and O_PATH opens
  // accept only a few; O_NOCTTY matters only for real opens.
  if ((flags & O_PATH) == 0) flags |= O_NOCTTY;
  if (have_openat2_) {
    for (int attempt = 0; attempt < kOpenat2Retries; ++attempt) {
      long fd = sys_openat2(root_.get(), normalized.c_str(), flags);
      if (fd >= 0) return reactor::UniqueFd(static_cast<int>(fd));
      if (errno == EAGAIN || errno == EINTR) continue;
      // ENOSYS: kernel too old. EPERM from a seccomp filter that denies unknown
      // syscalls looks the same; a real EPERM from openat2 cannot happen on open
      // for reading, so falling back is safe and stricter.
      if (errno == ENOSYS || errno == EPERM) {
        have_openat2_ = false;
        break;
      }
      return reactor::UniqueFd();
    }
    if (have_openat2_) {
      errno = EAGAIN;
      return reactor::UniqueFd();
    }
  }
  return resolve_by_walking(normalized, flags);
}

reactor::UniqueFd ServedRoot::resolve_by_walking(const std::string& normalized, int flags) const {
  if (normalized == ".") return reactor::UniqueFd(openat(root_.get(), ".", flags));
  reactor::UniqueFd dir;  // invalid means "the root itself"
  size_t start = 0;
  while (true) {
    size_t slash = normalized.find('/', start);
    std::string component = normalized.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    int base = dir ? dir.get() : root_.get();
    if (slash == std::string::npos) return reactor::UniqueFd(openat(base, component.c_str(), flags));
    struct stat st {};
    if (fstatat(base, component.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return reactor::UniqueFd();
    if (S_ISLNK(st.st_mode)) {
      errno = EXDEV;  // any symlink might lead outside; without openat2 we cannot tell
      return reactor::UniqueFd();
    }
    reactor::UniqueFd next(openat(base, component.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return next;
    dir = std::move(next);
    start = slash + 1;
  }
}

reactor::UniqueFd ServedRoot::resolve_through_final_link(const std::string& normalized, int flags) const {
  if (!have_openat2_) {
    errno = ELOOP;
    return {};
  }
  reactor::UniqueFd fd = resolve(normalized, flags, /*follow_final=*/true);
  if (!have_openat2_) {  // found missing by this very call: the walk followed nothing
    errno = ELOOP;
    return {};
  }
  if (!fd) return fd;
  // Where the link led, by the kernel's own account of the descriptor. Unknowable (no
  // /proc): refused as the link it is, rather than served unchecked.
  char proc_path[40];
  std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd.get());
  char target[PATH_MAX];
  ssize_t n = readlink(proc_path, target, sizeof target);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof target) {
    errno = ELOOP;
    return {};
  }
  if (app::is_temp_name(last_component(std::string_view(target, static_cast<size_t>(n))))) {
    errno = ENOENT;
    return {};
  }
  return fd;
}

bool ServedRoot::fail_from_errno(int saved_errno, std::string_view path, ProtocolError* err) const {
  std::string what = quoted(path);
  switch (saved_errno) {
    case ENOENT:
      return refuse(err, ErrorCode::kNotFound, "no such file or directory: " + what);
    case EXDEV:
      return refuse(err, ErrorCode::kForbidden, what + " leads outside the served root");
    case ELOOP:
      return refuse(err, ErrorCode::kForbidden, what + " is a symbolic link");
    case ENOTDIR:
      return refuse(err, ErrorCode::kNotDirectory, "a component of " + what + " is not a directory");
    case EACCES:
    case EPERM:
      return refuse(err, ErrorCode::kForbidden, "permission denied: " + what);
    case ENAMETOOLONG:
      return refuse(err, ErrorCode::kBadPath, "path too long: " + what);
    case ENXIO:  // open(2) of a UNIX socket, or of a device with no driver behind it
      return refuse(err, ErrorCode::kNotRegular, what + " is not a regular file");
    default:
      return refuse(err, ErrorCode::kIoError, "open " + what + ": " + std::strerror(saved_errno));
  }
}

reactor::UniqueFd ServedRoot::open_file(std::string_view path, struct stat* st, ProtocolError* err) const {
  std::string normalized;
  if (!normalize_request_path(path, &normalized, err)) return {};
  if (app::is_temp_name(last_component(normalized))) {
    fail_from_errno(ENOENT, path, err);
    return {};
  }
  // O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer comes.
  reactor::UniqueFd fd = resolve(normalized, O_RDONLY | O_NONBLOCK);
  if (!fd && errno == ELOOP) fd = resolve_through_final_link(normalized, O_RDONLY | O_NONBLOCK);
  if (!fd) {
    fail_from_errno(errno, path, err);
    return {};
  }
  if (fstat(fd.get(), st) != 0) {
    refuse(err, ErrorCode::kIoError, reactor::sys_error("stat", path));
    return {};
  }
  if (is_hidden(*st)) {
    refuse(err, ErrorCode::kForbidden, quoted(path) + " is the server's secret file");
    return {};
  }
  if (S_ISDIR(st->st_mode)) {
    refuse(err, ErrorCode::kIsDirectory, quoted(path) + " is a directory");
    return {};
  }
  if (!S_ISREG(st->st_mode)) {
    refuse(err, ErrorCode::kNotRegular, quoted(path) + " is not a regular file");
    return {};
  }
  return fd;
}

reactor::UniqueFd ServedRoot::open_directory(std::string_view path, ProtocolError* err) const {
  std::string normalized;
  if (!normalize_request_path(path, &normalized, err)) return {};
  // Resolve without O_DIRECTORY first so a non-directory gets not_directory rather than
  // the ENOTDIR that also means "a middle component is not a directory".
  reactor::UniqueFd probe = resolve(normalized, O_PATH);
  if (!probe) {
    fail_from_errno(errno, path, err);
    return {};
  }
  struct stat st {};
  if (fstat(probe.get(), &st) != 0) {
    refuse(err, ErrorCode::kIoError, reactor::sys_error("stat", path));
    return {};
  }
  if (S_ISLNK(st.st_mode)) {
    probe = resolve_through_final_link(normalized, O_PATH);
    if (!probe) {
      fail_from_errno(errno, path, err);
      return {};
    }
    if (fstat(probe.get(), &st) != 0) {
      refuse(err, ErrorCode::kIoError, reactor::sys_error("stat", path));
      return {};
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    refuse(err, ErrorCode::kNotDirectory, quoted(path) + " is not a directory");
    return {};
  }
  // Re-open the very directory the probe found: "." relative to an O_PATH descriptor.
  reactor::UniqueFd dir(openat(probe.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail_from_errno(errno, path, err);
  return dir;
}

bool ServedRoot::stat_path(std::string_view path, struct stat* st, ProtocolError* err,
                           std::optional<std::string>* link_target) const {
  std::string normalized;
  if (!normalize_request_path(path, &normalized, err)) return false;
  if (app::is_temp_name(last_component(normalized))) return fail_from_errno(ENOENT, path, err);
  reactor::UniqueFd fd = resolve(normalized, O_PATH);
  if (!fd) return fail_from_errno(errno, path, err);
  if (fstat(fd.get(), st) != 0) return refuse(err, ErrorCode::kIoError, reactor::sys_error("stat", path));
  if (is_hidden(*st)) return refuse(err, ErrorCode::kForbidden, quoted(path) + " is the server's secret file");
  // An O_PATH descriptor of a link is the link: readlinkat with an empty name reads it.
  if (link_target != nullptr && S_ISLNK(st->st_mode)) *link_target = app::read_link_target(fd.get(), "");
  return true;
}

reactor::UniqueFd ServedRoot::open_parent(std::string_view path, std::string* name, ProtocolError* err) const {
  std::string normalized;
  if (!normalize_request_path(path, &normalized, err)) return {};
  if (normalized == ".") {
    refuse(err, ErrorCode::kIsDirectory, "the served root is a directory: name a file to put");
    return {};
  }
  size_t slash = normalized.rfind('/');
  *name = slash == std::string::npos ? normalized : normalized.substr(slash + 1);
  std::string parent = slash == std::string::npos ? "." : normalized.substr(0, slash);
  if (app::is_temp_name(*name)) {
    refuse(err, ErrorCode::kForbidden, quoted(path) + " has the form of a temporary upload file's name");
    return {};
  }
  reactor::UniqueFd dir = resolve(parent, O_RDONLY | O_DIRECTORY, /*follow_final=*/true);
  if (!dir) {
    int saved = errno;
    std::string where = quoted(parent == "." ? std::string_view(".") : std::string_view(parent));
    if (saved == ENOENT) {
      refuse(err, ErrorCode::kNotFound, "no such directory: " + where);
    } else if (saved == ENOTDIR) {
      refuse(err, ErrorCode::kNotDirectory, where + " is not a directory");
    } else {
      fail_from_errno(saved, parent, err);
    }
    return {};
  }
  return dir;
}

bool ServedRoot::make_directory(std::string_view path, uint32_t mode, std::optional<int64_t> mtime, bool* created,
                                ProtocolError* err) const {
  std::string name;
  reactor::UniqueFd parent = open_parent(path, &name, err);
  if (!parent) return false;
  *created = mkdirat(parent.get(), name.c_str(), 0700) == 0;
  if (!*created) {
    int saved = errno;
    struct stat st {};
    if (saved != EEXIST || fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (saved == ENOSPC || saved == EDQUOT) return refuse(err, ErrorCode::kNoSpace, "no space for " + quoted(path));
      return fail_from_errno(saved, path, err);
    }
    if (!S_ISDIR(st.st_mode)) {
      return refuse(err, ErrorCode::kExists,
                    quoted(path) + (S_ISLNK(st.st_mode) ? " is a symbolic link" : " exists and is not a directory"));
    }
    if (!mtime) return true;
  }
  // O_NOFOLLOW: a link swapped in since mkdirat or fstatat is refused, never followed.
  reactor::UniqueFd dir(openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return refuse(err, ErrorCode::kIoError, reactor::sys_error("open", path));
  // Made 0700, then given its mode: the umask must not decide what the client asked for.
  if (*created && fchmod(dir.get(), static_cast<mode_t>(mode & 0777)) != 0)
    return refuse(err, ErrorCode::kIoError, reactor::sys_error("set the mode of", path));
  if (mtime) {
    struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(*mtime), 0}};
    if (futimens(dir.get(), times) != 0) return refuse(err, ErrorCode::kIoError, reactor::sys_error("set the time of", path));
  }
  return true;
}

bool ServedRoot::make_symlink(std::string_view path, const std::string& target, bool force, bool* replaced,
                              bool* unchanged, ProtocolError* err) const {
  std::string normalized;
  if (!normalize_request_path(path, &normalized, err)) return false;
  if (!app::link_stays_within(app::depth_of(normalized), target)) {
    return refuse(err, ErrorCode::kForbidden,
                  "symbolic link " + quoted(path) + " -> " + quoted(target) + " refused: its target " +
                      app::link_escape_reason(target, "the served root"));
  }
  std::string name;
  reactor::UniqueFd parent = open_parent(normalized, &name, err);
  if (!parent) return false;
  struct stat st {};
  if (fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && is_hidden(st))
    return refuse(err, ErrorCode::kForbidden, quoted(path) + " is the server's secret file");
  std::string why;
  switch (app::make_symlink_at(parent.get(), name, target, force, std::string(path), replaced, &why)) {
    case app::SymlinkResult::kMade:
      return true;
    case app::SymlinkResult::kUnchanged:
      *unchanged = true;
      return true;
    case app::SymlinkResult::kExists:
      return refuse(err, ErrorCode::kExists, quoted(path) + " exists; force replaces it");
    case app::SymlinkResult::kIsDirectory:
      return refuse(err, ErrorCode::kIsDirectory, quoted(path) + " is a directory");
    case app::SymlinkResult::kFailed:
      break;
  }
  return refuse(err, ErrorCode::kIoError, why);
}

}  // namespace server
