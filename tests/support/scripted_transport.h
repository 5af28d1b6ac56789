#pragma once
// ScriptedTransport: a reactor::Transport over a real socket (one end of a socketpair)
// that misbehaves on purpose, the way a slow or busy network does, so that unit tests can
// drive a FramedStream, a Session or a Connection through every awkward split:
//   - each read and each write moves at most read_limit / write_limit bytes (1: every
//     frame arrives split at every byte);
//   - every eagain_every-th read and write call reports EAGAIN without touching the
//     socket, as if it were not ready (level-triggered readiness brings the caller back);
//   - can_send_file false makes a caller take its copying path.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "reactor/transport.h"

namespace testsupport {

struct TransportScript {
  size_t read_limit = SIZE_MAX;
  size_t write_limit = SIZE_MAX;
  unsigned eagain_every = 0;  // 0: never
  bool can_send_file = true;
};

struct TransportCounters {
  uint64_t reads = 0;       // read() calls that moved bytes
  uint64_t writes = 0;      // write() calls that moved bytes
  uint64_t send_files = 0;  // send_file() calls that moved bytes
  uint64_t injected_eagain = 0;
};

class ScriptedTransport final : public reactor::Transport {
 public:
  // `counters` (optional) outlives the transport and is updated as it works.
  ScriptedTransport(int fd, TransportScript script, TransportCounters* counters = nullptr);

  Handshake handshake(std::string*) override { return Handshake::kDone; }
  uint32_t handshake_interest() const override { return 0; }
  reactor::IoResult read(reactor::Buffer& in, size_t max) override;
  reactor::IoResult write(reactor::Buffer& out, size_t max) override;
  uint32_t read_interest() const override;
  uint32_t write_interest() const override;
  bool has_buffered_input() const override { return false; }
  bool can_send_file() const override { return script_.can_send_file; }
  reactor::IoResult send_file(int file_fd, uint64_t* offset, size_t len) override;
  bool shutdown_write(std::string* err) override;
  const char* name() const override { return "scripted"; }

 private:
  bool inject_eagain();

  int fd_;
  TransportScript script_;
  TransportCounters own_counters_;
  TransportCounters* counters_;
  uint64_t calls_ = 0;
};

std::unique_ptr<reactor::Transport> scripted_transport(int fd, TransportScript script,
                                                       TransportCounters* counters = nullptr);

}  // namespace testsupport
