#pragma once
// A fault-injecting TCP proxy for tests, run in a forked child process (no threads: the
// test process forks its children, and Criterion forks the test). It listens on loopback
// port 0 and forwards each accepted connection to TARGET in both directions, applying
// FaultSpec to the server->client stream of each (or one) connection.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "tests/support/deadline.h"

namespace testsupport {

struct FaultSpec {
  // XOR flip_mask into the server->client byte at this absolute offset of the stream.
  std::optional<uint64_t> flip_at;
  uint8_t flip_mask = 0x01;
  // Forward exactly this many server->client bytes, then cut: the client gets FIN (or RST
  // with cut_with_reset) right after them; the server side is closed.
  std::optional<uint64_t> cut_after;
  bool cut_with_reset = false;
  // After this many server->client bytes nothing more passes in either direction, and no
  // close is propagated (a black hole), until the client closes or the proxy stops.
  std::optional<uint64_t> stall_after;
  // After this many client->server bytes nothing more is read from the client (an
  // upload's black hole); the other direction goes on.
  std::optional<uint64_t> c2s_stall_after;
  // Write server->client data in pieces of at most this many bytes (0: no limit), to
  // exercise a reader's partial reads.
  size_t max_chunk = 0;
  // The faults apply to every connection (-1) or only to the k-th accepted one (0-based).
  int only_connection = -1;
};

// Counters the proxy child keeps in memory shared with the test.
struct ProxyStats {
  uint64_t accepted = 0;          // client connections accepted
  uint64_t connect_failures = 0;  // connections to the target that failed
  uint64_t closed = 0;            // connection pairs finished (any way)
  uint64_t c2s_bytes = 0;         // forwarded client->server
  uint64_t s2c_bytes = 0;         // forwarded server->client
  uint64_t flips = 0;
  uint64_t cuts = 0;
  uint64_t stalls = 0;
};

class Proxy {
 public:
  // Concurrent connections the child handles; more are accepted and closed at once.
  static constexpr int kMaxConnections = 256;
  // The child exits by itself after this long (it also dies with the test process).
  static constexpr Millis kMaxLifetime{600000};

  // TARGET: "127.0.0.1:PORT" or "[::1]:PORT"; the proxy listens on the same family's
  // loopback address. The listening socket exists (connections queue) when this returns.
  static std::optional<Proxy> start(const std::string& target, const FaultSpec& faults = {},
                                    std::string* err = nullptr);

  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;
  Proxy(Proxy&& other) noexcept;
  Proxy& operator=(Proxy&& other) noexcept;
  ~Proxy();

  uint16_t port() const { return port_; }
  // "127.0.0.1:PORT" or "[::1]:PORT": what to give the client instead of the target.
  std::string address() const;
  ProxyStats stats() const;
  // Kills the proxy child (every proxied connection drops) and reaps it. Idempotent;
  // stats() stay readable.
  void stop();
  pid_t pid() const { return pid_; }

 private:
  Proxy() = default;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool v6_ = false;
  void* shared_ = nullptr;  // a MAP_SHARED page holding the counters
};

}  // namespace testsupport
