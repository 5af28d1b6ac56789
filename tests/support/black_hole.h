#pragma once
// A loopback address where a TCP connect neither succeeds nor fails, for connect
// timeouts: a listener nobody accepts from, with its accept queue already full, so the
// kernel drops every further SYN (the connecting side keeps retrying until its own
// deadline). Loopback only, nothing leaves the machine.

#include <string>
#include <vector>

#include "tests/support/fd.h"

namespace testsupport {

class BlackHole {
 public:
  // False + *err if the queue could not be filled (it is, on Linux, within two connects).
  static bool open(BlackHole* out, std::string* err);

  // "127.0.0.1:PORT".
  const std::string& address() const { return address_; }

 private:
  Fd listener_;
  std::vector<Fd> queued_;  // the connects that filled the queue, and the first one left hanging
  std::string address_;
};

}  // namespace testsupport
