#pragma once
// A pseudo-terminal of the test's own, for code that behaves differently on a terminal
// (the progress line, colour).

#include <optional>

#include "tests/support/fd.h"

namespace testsupport {

struct Pty {
  Fd master;  // the end the test reads what was written
  Fd tty;     // the terminal end, for the code under test
};

// RAW: the terminal in raw mode (no newline translation) and the master non-blocking,
// for reading back exactly what was drawn. nullopt if this machine has no
// pseudo-terminals (the test then skips); any other failure fails the test.
std::optional<Pty> open_pty(bool raw);

}  // namespace testsupport
