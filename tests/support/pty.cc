#include "tests/support/pty.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>

namespace testsupport {

std::optional<Pty> open_pty(bool raw) {
  Pty pty;
  pty.master.reset(posix_openpt(O_RDWR | O_NOCTTY));
  if (!pty.master.valid()) return std::nullopt;
  cr_assert_eq(grantpt(pty.master.get()), 0);
  cr_assert_eq(unlockpt(pty.master.get()), 0);
  pty.tty.reset(open(ptsname(pty.master.get()), O_RDWR | O_NOCTTY));
  cr_assert(pty.tty.valid());
  if (raw) {
    struct termios mode;
    cr_assert_eq(tcgetattr(pty.tty.get(), &mode), 0);
    cfmakeraw(&mode);
    cr_assert_eq(tcsetattr(pty.tty.get(), TCSANOW, &mode), 0);
    cr_assert_eq(fcntl(pty.master.get(), F_SETFL, O_NONBLOCK), 0);
  }
  return pty;
}

}  // namespace testsupport
