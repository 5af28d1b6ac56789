#pragma once
// `reactorc bench`: a load generator on the same event loop as everything else. Many
// authenticated connections from one thread (like redis-benchmark), each issuing requests
// back to back, or up to --pipeline at a time, until -n requests in all or -d seconds.
//
//   ping | get PATH | stat PATH   requests on persistent connections; get bodies are
//                                 hashed and checked against the trailer, then dropped
//   handshake                     connect, authenticate, ping, close, again
//   idle                          open and authenticate -c connections, hold them for -d
//                                 seconds, then ping each once to prove it still works
//
// Latencies go into a fixed-size log-linear histogram (under 0.2 % relative error), so
// memory does not grow with the number of requests.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/secret.h"
#include "apps/reactorc/options.h"
#include "protocol/tls.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"

namespace client {

enum class BenchMode { kPing, kGet, kStat, kHandshake, kIdle };

// Microsecond latencies: exact below 1024 us, then 512 sub-buckets per power of two.
class LatencyHistogram {
 public:
  LatencyHistogram();
  void record(uint64_t micros);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // The value at quantile q (0..1): the lower bound of the bucket holding it.
  uint64_t percentile(double q) const;

 private:
  static size_t index_of(uint64_t micros);
  static uint64_t lower_bound_of(size_t index);
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

class BenchClient;

class Bench {
 public:
  // `tls` null: the plain protocol.
  Bench(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
        std::shared_ptr<protocol::TlsContext> tls);
  ~Bench();

  // Checks the operands and raises RLIMIT_NOFILE's soft limit to the hard one. False:
  // exit_code() says why (a usage error has been printed).
  bool prepare();
  void start(std::vector<reactor::SocketAddress> addresses);
  void interrupt(const char* signal_name);
  int exit_code() const { return exit_code_; }

 private:
  friend class BenchClient;
  struct Totals {
    uint64_t completed = 0;
    uint64_t errors = 0;
    uint64_t connect_errors = 0;
    uint64_t bytes = 0;
  };

  // Whether this client may send another request (or, handshake, connect again).
  bool may_issue(BenchClient& client) const;
  void on_client_ready(BenchClient& client);
  void on_response(BenchClient& client, uint64_t micros, bool ok, uint64_t body_bytes);
  void on_client_failure(BenchClient& client, int code, const std::string& message);
  void on_client_idle(BenchClient& client);
  void replace_later(size_t index);
  void launch(size_t index);
  void hold_idle();
  void check_done();
  void finish();
  void report() const;

  reactor::EventLoop& loop_;
  const Options& options_;
  const app::Secret& secret_;
  std::shared_ptr<protocol::TlsContext> tls_;
  BenchMode mode_ = BenchMode::kPing;
  std::string path_;
  std::vector<reactor::SocketAddress> addresses_;
  std::vector<std::unique_ptr<BenchClient>> clients_;
  std::vector<uint64_t> quota_;  // -n split over the connections; unused with -d alone
  std::vector<uint64_t> issued_;  // per connection slot
  LatencyHistogram latency_;
  Totals totals_;
  std::chrono::steady_clock::time_point started_{};
  std::chrono::steady_clock::time_point ended_{};
  std::chrono::steady_clock::time_point all_ready_at_{};
  bool time_up_ = false;
  bool holding_ = false;  // idle: all connections are up and being held
  bool idle_pinging_ = false;
  bool done_ = false;
  size_t ready_ = 0;
  uint64_t connects_ = 0;  // connections started: picks the next --source address
  size_t live_ = 0;  // clients still running
  int first_failure_code_ = 0;
  std::string first_failure_;
  reactor::EventLoop::TimerId deadline_timer_ = 0;
  int exit_code_ = 1;
};

}  // namespace client
