#pragma once
// A peer written in Python for a test (a lying server, an HTTP server, a banner): run
// as `python3 SCRIPT ARGS...`, it binds a loopback port of its choosing and prints the
// port as its first line, which is how the test learns where it is.

#include <string>
#include <vector>

#include "tests/support/process.h"

namespace testsupport {

// Starts it with its output in OUT_DIR, waits (at most 5 s) for that first line, and
// sets *port. Fails the test if it does not start.
Process start_python_peer(const std::string& out_dir, const std::string& script, const std::vector<std::string>& args,
                          int* port);

}  // namespace testsupport
