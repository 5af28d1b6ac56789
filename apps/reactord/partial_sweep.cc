#include "apps/reactord/partial_sweep.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "apps/common/body_sink.h"

namespace server {
namespace {

// Bounds on one walk: a tree deeper or larger than this is swept in part.
constexpr size_t kMaxDepth = 64;
constexpr uint64_t kMaxDirectories = 1'000'000;

void note_error(SweepResult* result, const std::string& what) {
  if (result->error.empty()) result->error = what + ": " + std::strerror(errno);
}

// A reserved name past its time, and not held by an upload, goes.
void consider(int dir, const char* name, std::chrono::seconds ttl, std::chrono::seconds stale_temp, time_t now,
              SweepResult* result) {
  bool resume = app::is_resume_name(name);
  if (!resume && !app::is_temp_name(name)) return;
  int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {};
  bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  auto age = std::chrono::seconds(now - st.st_mtim.tv_sec);
  // An upload that holds it has it locked; the lock is released with our descriptor.
  bool expired = regular && age >= (resume ? ttl : stale_temp) && flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (expired) {
    if (unlinkat(dir, name, 0) == 0) {
      ++result->removed;
    } else {
      note_error(result, std::string("remove ") + name);
    }
  }
  close(fd);
}

}  // namespace

SweepResult sweep_partials(int root_fd, std::chrono::seconds ttl, std::chrono::seconds stale_temp, time_t now) {
  SweepResult result;
  struct Level {
    DIR* dir;
  };
  std::vector<Level> stack;
  int top = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  DIR* first = top >= 0 ? fdopendir(top) : nullptr;
  if (first == nullptr) {
    note_error(&result, "open the served root");
    if (top >= 0) close(top);
    return result;
  }
  rewinddir(first);
  stack.push_back({first});
  ++result.directories;
  while (!stack.empty()) {
    DIR* dir = stack.back().dir;
    errno = 0;
    struct dirent* entry = readdir(dir);
    if (entry == nullptr) {
      if (errno != 0) note_error(&result, "read a directory");
      closedir(dir);
      stack.pop_back();
      continue;
    }
    const char* name = entry->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    int dfd = dirfd(dir);
    if (entry->d_type == DT_DIR || entry->d_type == DT_UNKNOWN) {
      if (stack.size() >= kMaxDepth || result.directories >= kMaxDirectories) continue;
      int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        DIR* child = fdopendir(sub);
        if (child != nullptr) {
          stack.push_back({child});
          ++result.directories;
          continue;
        }
        close(sub);
      } else if (errno != ENOTDIR && errno != ELOOP) {
        note_error(&result, std::string("open ") + name);
      }
      if (entry->d_type == DT_DIR) continue;
    }
    if (entry->d_type == DT_REG || entry->d_type == DT_UNKNOWN) consider(dfd, name, ttl, stale_temp, now, &result);
  }
  return result;
}

}  // namespace server
