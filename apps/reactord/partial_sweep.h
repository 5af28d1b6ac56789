#pragma once
// What uploads leave behind in the served tree, removed: the ".NAME.XXXXXX.part"
// temporaries of uploads that never finished (a crash's debris: a live upload writes as
// its data arrives and is dropped after the idle timeout, so one untouched for
// `stale_temp` has no writer), and the ".NAME.<hex>.resume" partials of put -c kept
// longer than `ttl` that no upload holds (flock(2)). It walks the tree from `root_fd`
// without following a symbolic link and removes nothing but those two reserved forms.
//
// Blocking (readdir of every directory): reactord runs it on its worker thread, at start
// and then periodically, never on the event loop.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace server {

struct SweepResult {
  uint64_t directories = 0;
  uint64_t removed = 0;
  std::string error;  // the first failure met (the sweep goes on past it); empty if none
};

SweepResult sweep_partials(int root_fd, std::chrono::seconds ttl, std::chrono::seconds stale_temp, time_t now);

}  // namespace server
