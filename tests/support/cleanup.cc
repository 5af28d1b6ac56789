#include "tests/support/cleanup.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "tests/support/deadline.h"
#include "tests/support/temp_dir.h"

namespace testsupport {
namespace {

struct TrackedChild {
  pid_t owner;
  pid_t pid;
  bool kill_group;
};

struct TrackedDir {
  pid_t owner;
  std::string path;
};

struct Registry {
  std::mutex mu;
  std::vector<TrackedChild> children;
  std::vector<TrackedDir> dirs;
};

void run_at_exit() { cleanup_leftovers(); }

// Never destroyed: it must outlive every static destructor and atexit handler that might
// still create or release a child or directory.
Registry& registry() {
  static Registry* reg = [] {
    auto* r = new Registry;
    std::atexit(run_at_exit);
    return r;
  }();
  return *reg;
}

}  // namespace

void track_child(pid_t pid, bool kill_group) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  reg.children.push_back({getpid(), pid, kill_group});
}

void untrack_child(pid_t pid) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  pid_t self = getpid();
  reg.children.erase(std::remove_if(reg.children.begin(), reg.children.end(),
                                    [&](const TrackedChild& c) {
                                      return c.owner == self && c.pid == pid;
                                    }),
                     reg.children.end());
}

void track_dir(const std::string& path) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  reg.dirs.push_back({getpid(), path});
}

void untrack_dir(const std::string& path) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mu);
  pid_t self = getpid();
  reg.dirs.erase(std::remove_if(reg.dirs.begin(), reg.dirs.end(),
                                [&](const TrackedDir& d) {
                                  return d.owner == self && d.path == path;
                                }),
                 reg.dirs.end());
}

void cleanup_leftovers() {
  Registry& reg = registry();
  std::vector<TrackedChild> children;
  std::vector<TrackedDir> dirs;
  pid_t self = getpid();
  {
    std::lock_guard<std::mutex> lock(reg.mu);
    // A forked copy of this process inherits the lists; it only cleans what it made.
    auto mine = [&](pid_t owner) { return owner == self; };
    for (auto it = reg.children.begin(); it != reg.children.end();) {
      if (mine(it->owner)) {
        children.push_back(*it);
        it = reg.children.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = reg.dirs.begin(); it != reg.dirs.end();) {
      if (mine(it->owner)) {
        dirs.push_back(*it);
        it = reg.dirs.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& c : children) {
    if (c.kill_group) ::kill(-c.pid, SIGKILL);
    ::kill(c.pid, SIGKILL);
  }
  // Children go first: a server still running could be writing into a directory below.
  Deadline deadline(Millis(5000));
  for (const auto& c : children) {
    for (int i = 0; i < 5000; ++i) {
      pid_t r = waitpid(c.pid, nullptr, WNOHANG);
      if (r != 0 && !(r < 0 && errno == EINTR)) break;  // reaped, or not our child
      if (deadline.expired()) break;
      sleep_for(Millis(2));
    }
  }
  for (const auto& d : dirs) remove_tree(d.path);
}

}  // namespace testsupport
