#include "apps/reactorc/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>

#include "apps/common/cli.h"
#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "apps/common/body_sink.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/get_command.h"
#include "apps/reactorc/exit_codes.h"

namespace client {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kExactBuckets = 1024;  // 0..1023 us, one bucket each
constexpr size_t kSubBuckets = 512;     // per power of two above that
constexpr size_t kPowers = 54;          // up to 2^63 us: anything a uint64_t holds
constexpr uint64_t kDefaultRequests = 10'000;

const char* mode_name(BenchMode mode) {
  switch (mode) {
    case BenchMode::kPing: return "ping";
    case BenchMode::kGet: return "get";
    case BenchMode::kStat: return "stat";
    case BenchMode::kHandshake: return "handshake";
    case BenchMode::kIdle: return "idle";
  }
  return "?";
}

uint64_t micros_since(SteadyClock::time_point start) {
  auto d = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count();
  return d < 0 ? 0 : static_cast<uint64_t>(d);
}

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// JSON string body: the path is the only free text that reaches the output.
std::string json_escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kExactBuckets + kPowers * kSubBuckets, 0) {}

size_t LatencyHistogram::index_of(uint64_t micros) {
  if (micros < kExactBuckets) return static_cast<size_t>(micros);
  int power = 63 - __builtin_clzll(micros);  // >= 10
  size_t sub = static_cast<size_t>((micros >> (power - 9)) & (kSubBuckets - 1));
  return kExactBuckets + static_cast<size_t>(power - 10) * kSubBuckets + sub;
}

uint64_t LatencyHistogram::lower_bound_of(size_t index) {
  if (index < kExactBuckets) return index;
  size_t power = (index - kExactBuckets) / kSubBuckets + 10;
  uint64_t sub = (index - kExactBuckets) % kSubBuckets;
  return (uint64_t{1} << power) | (sub << (power - 9));
}

void LatencyHistogram::record(uint64_t micros) {
  ++buckets_[std::min(index_of(micros), buckets_.size() - 1)];
  ++count_;
  max_ = std::max(max_, micros);
}

uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(lower_bound_of(i), max_);
  }
  return max_;
}

// One connection's worth of work. Its Connection calls back into it; it reports to Bench.
// The requests are the same Command state machines reactorc runs (get verifies every
// body against its trailer, hashing on the loop's thread, and drops it).
class BenchClient : public ConnectionListener {
 public:
  BenchClient(Bench& bench, size_t index) : bench_(bench), index_(index) {}

  void start() {
    connect_started_ = SteadyClock::now();
    connection_ = std::make_unique<Connection>(bench_.loop_, bench_.secret_, *this, bench_.tls_);
    const SourceRange& sources = bench_.options_.bench_sources;
    if (sources.empty()) {
      connection_->connect(bench_.addresses_, bench_.options_.timeout);
    } else {
      reactor::SocketAddress source = sources.at(bench_.connects_++);
      connection_->connect(bench_.addresses_, bench_.options_.timeout, &source);
    }
  }

  // Sends requests until the pipeline is full or the run allows no more.
  void fill() {
    while (inflight_.size() < bench_.options_.bench_pipeline && usable() && bench_.may_issue(*this)) {
      ++bench_.issued_[index_];
      send_one();
    }
  }

  void send_one() {
    std::unique_ptr<Command> command;
    switch (bench_.mode_) {
      case BenchMode::kGet:
        command = std::make_unique<GetCommand>(
            bench_.path_, std::make_unique<app::BodySink>(app::BodySink::Hashing::kInline, protocol::DigestKind::kTree));
        break;
      case BenchMode::kStat:
        command = std::make_unique<StatCommand>(bench_.path_);
        break;
      case BenchMode::kPing:
      case BenchMode::kHandshake:
      case BenchMode::kIdle:
        command = std::make_unique<PingCommand>();
        break;
    }
    inflight_.push_back(InFlight{std::move(command), SteadyClock::now()});
    connection_->submit(*inflight_.back().command);
  }

  void close() {
    if (connection_) connection_->close();
    finished_ = true;
  }

  size_t index() const { return index_; }
  size_t inflight() const { return inflight_.size(); }
  bool ready() const { return ready_; }
  bool finished() const { return finished_; }
  bool usable() const { return !finished_ && connection_ && connection_->state() == Connection::State::kReady; }

  void on_ready(Connection&) override {
    ready_ = true;
    bench_.on_client_ready(*this);
  }

  void on_command_done(Connection&, Command& command) override {
    if (finished_ || inflight_.empty() || inflight_.front().command.get() != &command) return;
    InFlight done = std::move(inflight_.front());
    inflight_.pop_front();
    bool ok = command.succeeded();
    if (!ok) note_error(command.result().exit_code, command.result().message);
    uint64_t bytes = 0;
    if (bench_.mode_ == BenchMode::kGet) bytes = static_cast<GetCommand&>(command).received();
    SteadyClock::time_point sent = bench_.mode_ == BenchMode::kHandshake ? connect_started_ : done.sent;
    bench_.on_response(*this, micros_since(sent), ok, bytes);
  }

  void on_failure(Connection&, Failure failure, const std::string& message) override {
    if (finished_) return;
    bench_.on_client_failure(*this, exit_code_for(failure), message);
  }

 private:
  struct InFlight {
    std::unique_ptr<Command> command;
    SteadyClock::time_point sent;
  };

  void note_error(int code, const std::string& message) {
    if (bench_.first_failure_code_ == 0) {
      bench_.first_failure_code_ = code;
      bench_.first_failure_ = message;
    }
  }

  Bench& bench_;
  size_t index_;
  std::unique_ptr<Connection> connection_;
  std::deque<InFlight> inflight_;
  SteadyClock::time_point connect_started_{};
  bool ready_ = false;
  bool finished_ = false;
};

Bench::Bench(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
             std::shared_ptr<protocol::TlsContext> tls)
    : loop_(loop), options_(options), secret_(secret), tls_(std::move(tls)) {}

Bench::~Bench() {
  if (deadline_timer_ != 0) loop_.cancel(deadline_timer_);
}

bool Bench::prepare() {
  const std::vector<std::string>& ops = options_.operands;
  std::string kind = ops.empty() ? "ping" : ops[0];
  size_t want_operands = 1;
  if (kind == "ping") {
    mode_ = BenchMode::kPing;
  } else if (kind == "get" || kind == "stat") {
    mode_ = kind == "get" ? BenchMode::kGet : BenchMode::kStat;
    want_operands = 2;
  } else if (kind == "handshake") {
    mode_ = BenchMode::kHandshake;
  } else if (kind == "idle") {
    mode_ = BenchMode::kIdle;
  } else {
    app::usage_error("reactorc", "unknown bench request '%s' (ping, get PATH, stat PATH, handshake or idle)",
                     app::escape_for_terminal(kind).c_str());
    exit_code_ = kExitUsage;
    return false;
  }
  if (!ops.empty() && ops.size() != want_operands) {
    app::usage_error("reactorc", "usage: reactorc bench %s", want_operands == 2 ? (kind + " PATH").c_str() : kind.c_str());
    exit_code_ = kExitUsage;
    return false;
  }
  if (want_operands == 2) {
    path_ = ops[1];
    if (path_.size() > protocol::kMaxPathLen) {
      app::usage_error("reactorc", "the path is %zu bytes; the protocol allows at most %zu", path_.size(),
                       protocol::kMaxPathLen);
      exit_code_ = kExitUsage;
      return false;
    }
  }
  if (mode_ == BenchMode::kIdle && options_.bench_requests != 0) {
    app::usage_error("reactorc", "%s", "bench idle takes -d (how long to hold), not -n");
    exit_code_ = kExitUsage;
    return false;
  }
  // Each connection is a descriptor: let the run use all the hard limit allows.
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0 && options_.verbosity > 0)
      app::log_warn("%s", "could not raise the open-file limit");
  }
  return true;
}

void Bench::start(std::vector<reactor::SocketAddress> addresses) {
  addresses_ = std::move(addresses);
  size_t count = static_cast<size_t>(options_.bench_connections);
  issued_.assign(count, 0);
  uint64_t total = options_.bench_requests;
  if (total == 0 && options_.bench_duration.count() == 0) total = kDefaultRequests;
  if (total != 0 && mode_ != BenchMode::kIdle) {
    // Split up front, so every connection does its share (1,000 clients each fetching one
    // file means each one, not whichever are fastest).
    quota_.assign(count, total / count);
    for (size_t i = 0; i < total % count; ++i) ++quota_[i];
  }
  started_ = SteadyClock::now();
  if (options_.bench_duration.count() > 0 && mode_ != BenchMode::kIdle)
    deadline_timer_ = loop_.run_after(options_.bench_duration, [this] {
      deadline_timer_ = 0;
      time_up_ = true;
    });
  clients_.resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (mode_ != BenchMode::kIdle && !quota_.empty() && quota_[i] == 0) continue;
    launch(i);
  }
  check_done();
}

void Bench::launch(size_t index) {
  if (mode_ == BenchMode::kHandshake) ++issued_[index];
  clients_[index] = std::make_unique<BenchClient>(*this, index);
  ++live_;
  clients_[index]->start();
}

bool Bench::may_issue(BenchClient& client) const {
  if (time_up_ || done_) return false;
  if (mode_ == BenchMode::kIdle) return false;
  if (!quota_.empty()) return issued_[client.index()] < quota_[client.index()];
  return true;
}

void Bench::on_client_ready(BenchClient& client) {
  if (done_) return;
  ++ready_;
  switch (mode_) {
    case BenchMode::kIdle:
      if (ready_ + totals_.connect_errors == clients_.size()) hold_idle();
      return;
    case BenchMode::kHandshake:
      if (time_up_) return on_client_idle(client);
      client.send_one();
      return;
    case BenchMode::kPing:
    case BenchMode::kGet:
    case BenchMode::kStat:
      client.fill();
      if (client.inflight() == 0) on_client_idle(client);
      return;
  }
}

void Bench::on_response(BenchClient& client, uint64_t micros, bool ok, uint64_t body_bytes) {
  ++totals_.completed;
  if (!ok) ++totals_.errors;
  totals_.bytes += body_bytes;
  latency_.record(micros);
  if (done_) return;
  switch (mode_) {
    case BenchMode::kIdle:
      return on_client_idle(client);
    case BenchMode::kHandshake:
      if (may_issue(client)) {
        client.close();
        --live_;
        replace_later(client.index());
        return;
      }
      return on_client_idle(client);
    case BenchMode::kPing:
    case BenchMode::kGet:
    case BenchMode::kStat:
      client.fill();
      if (client.inflight() == 0) on_client_idle(client);
      return;
  }
}

void Bench::on_client_failure(BenchClient& client, int code, const std::string& message) {
  if (client.finished()) return;
  if (first_failure_code_ == 0) {
    first_failure_code_ = code;
    first_failure_ = message;
  }
  if (!client.ready()) {
    ++totals_.connect_errors;
  } else {
    totals_.errors += client.inflight();
  }
  client.close();
  if (options_.verbosity > 0) app::log_warn("connection %zu: %s", client.index(), message.c_str());
  if (mode_ == BenchMode::kHandshake && !done_ && may_issue(client)) {
    --live_;
    replace_later(client.index());
    return;
  }
  if (mode_ == BenchMode::kIdle && !holding_ && !client.ready() &&
      ready_ + totals_.connect_errors == clients_.size())
    hold_idle();
  --live_;
  check_done();
}

// The client's work is over: close it and see whether the run is.
void Bench::on_client_idle(BenchClient& client) {
  if (client.finished()) return;
  client.close();
  --live_;
  check_done();
}

// A connection may not be destroyed inside its own callback, nor before the tasks it
// deferred (Connection defers dropping its connector) have run: the deferred task owns
// the dead client, and the loop destroys it with the rest of that batch of tasks.
void Bench::replace_later(size_t index) {
  std::shared_ptr<BenchClient> dead(std::move(clients_[index]));
  ++live_;  // the replacement counts from now, so the run cannot end in between
  loop_.defer([this, index, dead] {
    --live_;
    if (done_ || time_up_ || (!quota_.empty() && issued_[index] >= quota_[index])) {
      check_done();
      return;
    }
    launch(index);
  });
}

void Bench::hold_idle() {
  holding_ = true;
  all_ready_at_ = SteadyClock::now();
  if (options_.verbosity >= 0) {
    std::fprintf(stderr, "reactorc: bench: %zu connections authenticated in %.3f s; holding for %.1f s\n", ready_,
                 seconds_between(started_, all_ready_at_), std::chrono::duration<double>(options_.bench_duration).count());
    std::fflush(stderr);
  }
  deadline_timer_ = loop_.run_after(options_.bench_duration, [this] {
    deadline_timer_ = 0;
    idle_pinging_ = true;
    // Prove each held connection still works.
    for (std::unique_ptr<BenchClient>& client : clients_)
      if (client && client->ready() && !client->finished()) client->send_one();
  });
}

void Bench::check_done() {
  if (done_ || live_ > 0) return;
  finish();
}

void Bench::finish() {
  if (done_) return;
  done_ = true;
  ended_ = SteadyClock::now();
  if (deadline_timer_ != 0) {
    loop_.cancel(deadline_timer_);
    deadline_timer_ = 0;
  }
  for (std::unique_ptr<BenchClient>& client : clients_)
    if (client) client->close();
  report();
  if (exit_code_ != kExitInterrupted) {
    bool clean = totals_.errors == 0 && totals_.connect_errors == 0 && totals_.completed > 0;
    exit_code_ = clean ? kExitOk : (first_failure_code_ != 0 ? first_failure_code_ : kExitFailure);
    if (!clean && !first_failure_.empty()) app::log_error("bench: first failure: %s", first_failure_.c_str());
  }
  loop_.stop();
}

void Bench::interrupt(const char* signal_name) {
  if (done_) return;
  app::log_error("interrupted by %s", signal_name);
  exit_code_ = kExitInterrupted;
  finish();
}

void Bench::report() const {
  double elapsed = seconds_between(started_, ended_);
  double rate = elapsed > 0 ? static_cast<double>(totals_.completed) / elapsed : 0.0;
  double mb_per_s = elapsed > 0 ? static_cast<double>(totals_.bytes) / 1e6 / elapsed : 0.0;
  double setup = holding_ ? seconds_between(started_, all_ready_at_) : 0.0;
  auto ms = [this](double q) { return static_cast<double>(latency_.percentile(q)) / 1000.0; };
  double max_ms = static_cast<double>(latency_.max()) / 1000.0;
  if (options_.json) {
    std::printf(
        "{\"mode\":\"%s\",\"path\":\"%s\",\"connections\":%zu,\"pipeline\":%llu,\"requests\":%llu,"
        "\"errors\":%llu,\"connect_errors\":%llu,\"ready\":%zu,\"elapsed_s\":%.6f,\"requests_per_s\":%.1f,"
        "\"bytes\":%llu,\"mb_per_s\":%.1f,\"established_s\":%.6f,"
        "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
        mode_name(mode_), json_escape(path_).c_str(), clients_.size(),
        static_cast<unsigned long long>(options_.bench_pipeline), static_cast<unsigned long long>(totals_.completed),
        static_cast<unsigned long long>(totals_.errors), static_cast<unsigned long long>(totals_.connect_errors),
        ready_, elapsed, rate, static_cast<unsigned long long>(totals_.bytes), mb_per_s, setup, ms(0.50), ms(0.90),
        ms(0.99), max_ms);
  } else if (options_.verbosity >= 0) {
    std::printf("mode:         %s%s%s (connections %zu, pipeline %llu)\n", mode_name(mode_), path_.empty() ? "" : " ",
                app::escape_for_terminal(path_).c_str(), clients_.size(),
                static_cast<unsigned long long>(options_.bench_pipeline));
    std::printf("requests:     %llu\n", static_cast<unsigned long long>(totals_.completed));
    std::printf("errors:       %llu (connect/auth failures: %llu)\n", static_cast<unsigned long long>(totals_.errors),
                static_cast<unsigned long long>(totals_.connect_errors));
    if (mode_ == BenchMode::kIdle) std::printf("established:  %zu in %.3f s\n", ready_, setup);
    std::printf("elapsed:      %.3f s\n", elapsed);
    std::printf("%-13s %.1f\n", mode_ == BenchMode::kHandshake ? "handshakes/s:" : "requests/s:", rate);
    if (mode_ == BenchMode::kGet) std::printf("MB/s:         %.1f\n", mb_per_s);
    std::printf("latency ms:   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", ms(0.50), ms(0.90), ms(0.99), max_ms);
  }
  std::fflush(stdout);
}

}  // namespace client
