#pragma once
// A partial transfer's file, opened for one writer: reactorc's partial download
// (apps/reactorc/partial_download.h) and reactord's kept upload (apps/reactord/upload.h)
// both open it the same way. It is created (mode 0600) if missing, never opened through
// a symbolic link planted under its name (O_NOFOLLOW, and O_NONBLOCK so a FIFO there
// cannot hang the open), refused unless it is a regular file, never truncated before the
// lock is taken, and locked with an exclusive flock(2), which other processes and other
// descriptors of this one respect.

#include <sys/stat.h>

#include <string>

#include "reactor/unique_fd.h"

namespace app {

enum class LockOutcome {
  kLocked,      // *fd open, locked; *st describes it
  kBusy,        // *fd open and unlocked: another writer holds it (try_lock() again later)
  kNotRegular,  // something else than a regular file has the name
  kOpenError,   // errno says why
  kLockError,   // flock(2) failed otherwise; errno says why
};

LockOutcome open_locked(int dir, const std::string& name, reactor::UniqueFd* fd, struct stat* st);
// After kBusy: the lock again, and *st afresh.
LockOutcome try_lock(int fd, struct stat* st);

}  // namespace app
