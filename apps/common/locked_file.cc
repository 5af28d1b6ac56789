#include "apps/common/locked_file.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

namespace app {

LockOutcome try_lock(int fd, struct stat* st) {
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return errno == EWOULDBLOCK ? LockOutcome::kBusy : LockOutcome::kLockError;
  // Described once the lock is ours: a writer before us may have changed it.
  if (fstat(fd, st) != 0) return LockOutcome::kOpenError;
  return LockOutcome::kLocked;
}

LockOutcome open_locked(int dir, const std::string& name, reactor::UniqueFd* fd, struct stat* st) {
  fd->reset(openat(dir, name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!*fd) return LockOutcome::kOpenError;
  if (fstat(fd->get(), st) != 0) return LockOutcome::kOpenError;
  if (!S_ISREG(st->st_mode)) return LockOutcome::kNotRegular;
  int flags = fcntl(fd->get(), F_GETFL);
  if (flags >= 0) fcntl(fd->get(), F_SETFL, flags & ~O_NONBLOCK);
  return try_lock(fd->get(), st);
}

}  // namespace app
