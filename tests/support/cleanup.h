#pragma once
// Leftovers of an aborted test. A failing cr_assert leaves the test with longjmp, so no
// destructor runs: every child process and temporary directory the support library
// creates is also recorded here, and whatever is still recorded when the test process
// exits is killed (SIGKILL, then reaped) and removed. Children also carry
// PR_SET_PDEATHSIG=SIGKILL for the case where the test process itself is killed
// (a Criterion timeout).

#include <sys/types.h>

#include <string>

namespace testsupport {

// kill_group: kill the child's whole process group (it leads one).
void track_child(pid_t pid, bool kill_group);
void untrack_child(pid_t pid);
void track_dir(const std::string& path);
void untrack_dir(const std::string& path);

// Kills and reaps the tracked children of this process, then removes its tracked
// directories. Runs at exit by itself; callable directly (a forked helper that leaves
// with _exit uses it).
void cleanup_leftovers();

}  // namespace testsupport
