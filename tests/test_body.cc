// BodySource and BodySink (apps/common): a file body streamed out (hashing, offsets,
// zero copy through real sockets and a misbehaving transport, files that change while
// they are sent) and received (both hashing modes, the hidden temporary, verify, the
// no-replace commit and every refusal).
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "apps/common/body_sink.h"
#include "apps/common/body_source.h"
#include "protocol/error_code.h"
#include "protocol/hex.h"
#include "protocol/messages.h"
#include "protocol/sha256.h"
#include "reactor/buffer.h"
#include "reactor/transport.h"
#include "reactor/unique_fd.h"
#include "tests/support/assertions.h"
#include "tests/support/deadline.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"
#include "tests/support/loop_driver.h"
#include "tests/support/scripted_transport.h"
#include "tests/support/temp_dir.h"

using app::BodySink;
using app::BodySource;
using reactor::Buffer;
using reactor::UniqueFd;
using namespace testsupport;

TestSuite(body, .timeout = 60);

namespace {

constexpr size_t kChunk = BodySource::kChunk;
constexpr uint64_t kZeroCopyMin = BodySource::kZeroCopyMin;
// Every loop below is bounded by this many iterations.
constexpr int kMaxSteps = 200000;

TempDir make_temp() {
  std::string err;
  std::optional<TempDir> dir = TempDir::create("body", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  return std::move(*dir);
}

std::string make_file(const TempDir& dir, const std::string& name, uint64_t size, uint64_t seed = 7) {
  std::string path = dir.path(name);
  std::string err;
  cr_assert(write_pattern_file(path, size, seed, &err), "%s", err.c_str());
  return path;
}

std::string contents(const std::string& path) {
  std::string err;
  std::optional<std::string> data = read_file(path, &err);
  cr_assert(data.has_value(), "%s", err.c_str());
  return *data;
}

protocol::Digest digest_of(const std::string& bytes) { return protocol::sha256(bytes.data(), bytes.size()); }

protocol::Digest fake_digest() {
  protocol::Digest d;
  d.fill(0x5a);
  return d;
}

// An mtime nobody would give a file by writing it, so any write afterwards changes it
// whatever the timestamp granularity.
void set_old_mtime(const std::string& path) {
  struct timespec times[2] = {{1500000000, 0}, {1500000000, 0}};
  cr_assert_eq(utimensat(AT_FDCWD, path.c_str(), times, 0), 0, "utimensat: %s", std::strerror(errno));
}

struct Opened {
  UniqueFd fd;
  struct stat st;
};

Opened open_read(const std::string& path) {
  Opened o;
  o.fd.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  cr_assert(static_cast<bool>(o.fd), "open %s: %s", path.c_str(), std::strerror(errno));
  cr_assert_eq(fstat(o.fd.get(), &o.st), 0);
  return o;
}

std::unique_ptr<BodySource> source_for(const std::string& path, uint64_t offset,
                                       std::optional<protocol::Digest> cached = std::nullopt) {
  Opened o = open_read(path);
  return std::make_unique<BodySource>(std::move(o.fd), o.st, offset, protocol::DigestKind::kSha256, cached);
}

std::string hex(const protocol::Digest& d) { return protocol::to_hex(d); }

void assert_end(const protocol::Message& trailer, const protocol::Digest& want) {
  if (const auto* error = std::get_if<protocol::ErrorMessage>(&trailer))
    cr_assert_fail("trailer is an error (%s): %s", protocol::to_string(error->code), error->message.c_str());
  const auto* end = std::get_if<protocol::End>(&trailer);
  cr_assert(end != nullptr, "trailer is neither End nor ErrorMessage");
  cr_assert(end->sha256 && *end->sha256 == want, "trailer digest %s, want %s", end->sha256 ? hex(*end->sha256).c_str() : "none", hex(want).c_str());
}

void assert_error(const protocol::Message& trailer, protocol::ErrorCode code, const std::string& text) {
  const auto* error = std::get_if<protocol::ErrorMessage>(&trailer);
  cr_assert(error != nullptr, "trailer is not an error (End? %d)", std::holds_alternative<protocol::End>(trailer));
  cr_assert(error->code == code, "error code %s, want %s", protocol::to_string(error->code),
            protocol::to_string(code));
  ASSERT_CONTAINS(error->message, text);
}

// Calls produce() with `budget` until the source finishes, collecting the body.
// `before_step(body_so_far)` runs before every call (to change the file mid-send).
template <typename Hook>
std::string produce_all_with(BodySource& src, size_t budget, Hook before_step, uint64_t* processed = nullptr) {
  Buffer out;
  std::string body;
  uint64_t total = 0;
  int steps = 0;
  while (!src.finished()) {
    cr_assert_lt(++steps, kMaxSteps, "produce() does not finish (%zu body bytes so far)", body.size());
    before_step(body);
    size_t n = src.produce(out, budget);
    cr_assert_leq(n, budget, "produce(%zu) processed %zu", budget, n);
    cr_assert(n > 0 || src.finished(), "produce() made no progress with an empty buffer");
    total += n;
    body.append(out.view());
    out.consume_all();
  }
  // A finished source produces nothing more.
  cr_assert_eq(src.produce(out, budget), 0u);
  cr_assert(out.empty());
  if (processed != nullptr) *processed = total;
  return body;
}

std::string produce_all(BodySource& src, size_t budget, uint64_t* processed = nullptr) {
  return produce_all_with(src, budget, [](const std::string&) {}, processed);
}

void assert_bytes_equal(const std::string& got, const std::string& want) {
  cr_assert_eq(got.size(), want.size(), "body has %zu bytes, want %zu", got.size(), want.size());
  auto diff = std::mismatch(got.begin(), got.end(), want.begin());
  cr_assert(diff.first == got.end(), "bodies differ at byte %zu", static_cast<size_t>(diff.first - got.begin()));
}

// Drives a source the way FramedStream does, against the test's end `peer` of a
// socketpair: send_file() while zero_copy(), otherwise produce() and write through the
// transport; the peer is drained after every step so the socket never stays full.
// `before_step(received_so_far)` runs before every step.
template <typename Hook>
std::string send_all_with(BodySource& src, reactor::Transport& transport, int peer, size_t budget, Hook before_step,
                     uint64_t* send_file_bytes = nullptr) {
  std::string received;
  Buffer out;
  uint64_t zero_copied = 0;
  int steps = 0;
  while (!src.finished() || !out.empty()) {
    cr_assert_lt(++steps, kMaxSteps, "the body is not through (%zu bytes received)", received.size());
    before_step(received);
    if (out.empty() && src.zero_copy()) {
      reactor::IoResult r = src.send_file(transport, budget);
      if (r.bytes > 0) {
        cr_assert_leq(static_cast<size_t>(r.bytes), budget);
        zero_copied += static_cast<uint64_t>(r.bytes);
      }
      if (r.bytes < 0) cr_assert_eq(r.error, EAGAIN, "send_file: %s", std::strerror(r.error));
    } else {
      if (out.readable() < kChunk) src.produce(out, budget);
      if (!out.empty()) {
        reactor::IoResult w = transport.write(out, budget);
        if (w.bytes < 0) cr_assert_eq(w.error, EAGAIN, "write: %s", std::strerror(w.error));
      }
    }
    received += read_available(peer);
  }
  received += read_available(peer);
  if (send_file_bytes != nullptr) *send_file_bytes = zero_copied;
  return received;
}

std::string send_all(BodySource& src, reactor::Transport& transport, int peer, size_t budget,
                     uint64_t* send_file_bytes = nullptr) {
  return send_all_with(src, transport, peer, budget, [](const std::string&) {}, send_file_bytes);
}

struct Pair {
  Fd ours;  // non-blocking: the source's
  Fd peer;  // the receiving side
};

Pair socket_pair() {
  Pair p;
  std::string err;
  cr_assert(stream_socketpair(&p.ours, &p.peer, &err), "%s", err.c_str());
  return p;
}

// A transport whose send_file always fails with `error`, to reach the fallbacks.
class FailingSendFile final : public reactor::Transport {
 public:
  explicit FailingSendFile(int error) : error_(error) {}
  Handshake handshake(std::string*) override { return Handshake::kDone; }
  uint32_t handshake_interest() const override { return 0; }
  reactor::IoResult read(Buffer&, size_t) override { return {}; }
  reactor::IoResult write(Buffer&, size_t) override { return {}; }
  uint32_t read_interest() const override { return 0; }
  uint32_t write_interest() const override { return 0; }
  bool has_buffered_input() const override { return false; }
  bool can_send_file() const override { return true; }
  reactor::IoResult send_file(int, uint64_t*, size_t) override {
    ++calls;
    reactor::IoResult r;
    r.bytes = -1;
    r.error = error_;
    return r;
  }
  bool shutdown_write(std::string*) override { return true; }
  const char* name() const override { return "failing"; }
  int calls = 0;

 private:
  int error_;
};

// --- BodySink helpers ---

UniqueFd open_dir(const std::string& path, int extra = O_PATH) {
  UniqueFd fd(open(path.c_str(), O_DIRECTORY | O_CLOEXEC | extra));
  cr_assert(static_cast<bool>(fd), "open %s: %s", path.c_str(), std::strerror(errno));
  return fd;
}

std::vector<std::string> entries(const std::string& dir) {
  std::string err;
  std::optional<std::vector<std::string>> names = list_dir(dir, &err);
  cr_assert(names.has_value(), "%s", err.c_str());
  return *names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return "[" + s + "]";
}

bool is_part_of(const std::string& entry, const std::string& name) {
  std::string prefix = "." + name + ".";
  std::string suffix = ".part";
  return entry.size() == prefix.size() + 6 + suffix.size() && entry.compare(0, prefix.size(), prefix) == 0 &&
         entry.compare(entry.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void assert_entries(const std::string& dir, const std::vector<std::string>& want) {
  std::vector<std::string> got = entries(dir);
  ASSERT_STR_EQ(joined(got), joined(want));
}

void write_all(BodySink& sink, const std::string& data, size_t piece) {
  std::string err;
  uint64_t before = sink.written();
  for (size_t at = 0; at < data.size(); at += piece) {
    size_t n = std::min(piece, data.size() - at);
    cr_assert(sink.write(data.data() + at, n, &err), "write: %s", err.c_str());
  }
  cr_assert_eq(sink.written() - before, data.size());
}

}  // namespace

// ---------------------------------------------------------------------------
// BodySource, hashing mode

Test(body, hashing_produce_sends_the_file_and_its_digest_at_every_size) {
  TempDir dir = make_temp();
  const uint64_t sizes[] = {0, 1, kChunk - 1, kChunk, kChunk + 1, 3 * 1024 * 1024 + 7};
  const size_t budgets[] = {1000, 4096 + 3, kChunk, 1 << 20};
  for (uint64_t size : sizes) {
    std::string path = make_file(dir, "f" + std::to_string(size), size, size + 1);
    std::string data = contents(path);
    cr_assert_eq(data.size(), size);
    for (size_t budget : budgets) {
      if (size > kChunk + 1 && budget < 4096) continue;  // thousands of calls prove nothing more
      std::unique_ptr<BodySource> src = source_for(path, 0);
      cr_assert_eq(src->size(), size);
      cr_assert_eq(src->body_length(), size);
      cr_assert_not(src->planned_zero_copy());
      src->allow_zero_copy(true);
      cr_assert_not(src->zero_copy(), "no cached digest: never zero copy");
      uint64_t processed = 0;
      std::string body = produce_all(*src, budget, &processed);
      assert_bytes_equal(body, data);
      cr_assert_eq(processed, size);
      cr_assert_eq(src->body_sent(), size);
      protocol::Digest want = digest_of(data);
      assert_end(src->trailer(), want);
      std::optional<protocol::Digest> computed = src->computed_digest();
      cr_assert(computed.has_value(), "size %llu budget %zu: no computed digest", (unsigned long long)size, budget);
      cr_assert(*computed == want);
    }
  }
}

Test(body, an_empty_file_is_finished_at_once) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "empty", 0);
  std::unique_ptr<BodySource> src = source_for(path, 0);
  cr_assert(src->finished());
  Buffer out;
  cr_assert_eq(src->produce(out, 1000), 0u);
  cr_assert(out.empty());
  assert_end(src->trailer(), protocol::sha256("", 0));
  cr_assert(src->computed_digest() == protocol::sha256("", 0));
}

Test(body, an_offset_skips_the_prefix_but_the_digest_covers_the_whole_file) {
  TempDir dir = make_temp();
  const uint64_t size = 2 * kChunk + 12345;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  protocol::Digest whole = digest_of(data);
  const uint64_t offsets[] = {0, 1, kChunk - 1, kChunk, kChunk + 1, size - 1, size};
  for (uint64_t offset : offsets) {
    for (size_t budget : {size_t{777}, size_t{65536}, size_t{1} << 20}) {
      std::unique_ptr<BodySource> src = source_for(path, offset);
      cr_assert_eq(src->body_length(), size - offset);
      uint64_t processed = 0;
      std::string body = produce_all(*src, budget, &processed);
      assert_bytes_equal(body, data.substr(static_cast<size_t>(offset)));
      cr_assert_eq(processed, size, "offset %llu: the prefix is processed (hashed) too", (unsigned long long)offset);
      cr_assert_eq(src->body_sent(), size - offset);
      assert_end(src->trailer(), whole);
      cr_assert(src->computed_digest() == whole);
    }
  }
}

Test(body, produce_stops_when_the_buffer_is_full_and_resumes_after_it_drains) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "f", 300000);
  std::string data = contents(path);
  std::unique_ptr<BodySource> src = source_for(path, 0);
  Buffer out(64 * 1024);
  size_t total = 0;
  int calls = 0;
  size_t n;
  while ((n = src->produce(out, 16 * 1024)) > 0) {
    cr_assert_lt(++calls, 100);
    total += n;
  }
  cr_assert_not(src->finished());
  cr_assert_eq(total, 64u * 1024);
  cr_assert_eq(out.readable(), 64u * 1024, "a full buffer gets no more");
  std::string body(out.view());
  out.consume_all();
  while (!src->finished()) {
    cr_assert_lt(++calls, 1000);
    cr_assert_gt(src->produce(out, 16 * 1024), 0u);
    body.append(out.view());
    out.consume_all();
  }
  assert_bytes_equal(body, data);
  assert_end(src->trailer(), digest_of(data));
}

Test(body, a_file_that_shrinks_while_hashed_is_padded_and_reported) {
  TempDir dir = make_temp();
  const uint64_t size = 1 << 20;
  const uint64_t shrunk = 300000;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  for (uint64_t offset : {uint64_t{0}, uint64_t{200000}, uint64_t{500000}}) {
    cr_assert(write_pattern_file(path, size, 7));
    std::unique_ptr<BodySource> src = source_for(path, offset);
    bool truncated = false;
    size_t at_truncation = 0;
    std::string body = produce_all_with(*src, 50000, [&](const std::string& so_far) {
      if (!truncated && (so_far.size() >= 150000 || offset > shrunk)) {
        cr_assert_eq(truncate(path.c_str(), static_cast<off_t>(shrunk)), 0);
        truncated = true;
        at_truncation = so_far.size();
      }
    });
    cr_assert(truncated);
    cr_assert_eq(body.size(), size - offset, "offset %llu: the announced length is kept", (unsigned long long)offset);
    cr_assert_eq(src->body_sent(), size - offset);
    // Sent before the truncation, and what was left of the file after it.
    size_t real = std::max(at_truncation, static_cast<size_t>(std::max(shrunk, offset) - offset));
    assert_bytes_equal(body.substr(0, real), data.substr(static_cast<size_t>(offset), real));
    cr_assert(body.find_first_not_of('\0', real) == std::string::npos, "offset %llu: padding is zeros",
              (unsigned long long)offset);
    assert_error(src->trailer(), protocol::ErrorCode::kFileChanged, "shrank");
    cr_assert_not(src->computed_digest().has_value(), "a changed file's digest must not be cached");
  }
}

Test(body, a_file_that_grows_while_hashed_is_reported) {
  TempDir dir = make_temp();
  const uint64_t size = 400000;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  std::unique_ptr<BodySource> src = source_for(path, 0);
  bool grown = false;
  std::string body = produce_all_with(*src, 60000, [&](const std::string& so_far) {
    if (!grown && so_far.size() >= 100000) {
      Fd fd(open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
      cr_assert(fd.valid());
      cr_assert_eq(::write(fd.get(), "more", 4), 4);
      grown = true;
    }
  });
  cr_assert(grown);
  assert_bytes_equal(body, data);
  assert_error(src->trailer(), protocol::ErrorCode::kFileChanged, "modified");
  cr_assert_not(src->computed_digest().has_value());
}

Test(body, a_file_rewritten_in_place_while_hashed_is_reported) {
  TempDir dir = make_temp();
  const uint64_t size = 600000;
  std::string path = make_file(dir, "f", size);
  set_old_mtime(path);
  std::unique_ptr<BodySource> src = source_for(path, 0);
  bool rewritten = false;
  produce_all_with(*src, 60000, [&](const std::string& so_far) {
    if (!rewritten && so_far.size() >= 100000) {
      Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
      cr_assert(fd.valid());
      cr_assert_eq(pwrite(fd.get(), "XXXXXXXX", 8, 500000), 8);
      rewritten = true;
    }
  });
  cr_assert(rewritten);
  assert_error(src->trailer(), protocol::ErrorCode::kFileChanged, "modified");
  cr_assert_not(src->computed_digest().has_value());
}

Test(body, a_touched_file_is_reported_even_with_the_same_bytes) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "f", 300000);
  set_old_mtime(path);
  std::unique_ptr<BodySource> src = source_for(path, 0);
  bool touched = false;
  produce_all_with(*src, 60000, [&](const std::string& so_far) {
    if (!touched && so_far.size() >= 60000) {
      struct timespec times[2] = {{0, UTIME_OMIT}, {1600000000, 0}};
      cr_assert_eq(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
      touched = true;
    }
  });
  cr_assert(touched);
  assert_error(src->trailer(), protocol::ErrorCode::kFileChanged, "modified");
}

Test(body, a_rewrite_that_restores_the_mtime_is_caught_by_the_ctime) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "f", 300000);
  std::unique_ptr<BodySource> src = source_for(path, 0);
  const struct stat opened = src->opened();
  // The ctime must be able to move past the one recorded at open, whatever the
  // file system's timestamp granularity (a jiffy at most).
  sleep_for(Millis(50));
  bool rewritten = false;
  produce_all_with(*src, 60000, [&](const std::string& so_far) {
    if (!rewritten && so_far.size() >= 60000) {
      Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
      cr_assert(fd.valid());
      cr_assert_eq(pwrite(fd.get(), "XXXXXXXX", 8, 200000), 8);
      struct timespec times[2] = {opened.st_atim, opened.st_mtim};
      cr_assert_eq(futimens(fd.get(), times), 0);
      rewritten = true;
    }
  });
  cr_assert(rewritten);
  struct stat now {};
  cr_assert_eq(stat(path.c_str(), &now), 0);
  cr_assert(now.st_mtim.tv_sec == opened.st_mtim.tv_sec && now.st_mtim.tv_nsec == opened.st_mtim.tv_nsec,
            "the test failed to restore the mtime");
  assert_error(src->trailer(), protocol::ErrorCode::kFileChanged, "modified");
}

// ---------------------------------------------------------------------------
// BodySource with a cached digest

Test(body, zero_copy_through_a_plain_socket_sends_the_file_unhashed) {
  TempDir dir = make_temp();
  const uint64_t size = 3 * 1024 * 1024 + 11;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  for (uint64_t offset : {uint64_t{0}, uint64_t{1}, uint64_t{100000}, size - kZeroCopyMin}) {
    // A digest no file has: the trailer can only carry it if nothing was hashed.
    std::unique_ptr<BodySource> src = source_for(path, offset, fake_digest());
    cr_assert(src->planned_zero_copy(), "offset %llu", (unsigned long long)offset);
    src->allow_zero_copy(true);
    cr_assert(src->zero_copy());
    Pair pair = socket_pair();
    std::unique_ptr<reactor::Transport> transport = reactor::make_socket_transport(pair.ours.get());
    cr_assert(transport->can_send_file());
    uint64_t zero_copied = 0;
    std::string got = send_all(*src, *transport, pair.peer.get(), 256 * 1024, &zero_copied);
    assert_bytes_equal(got, data.substr(static_cast<size_t>(offset)));
    cr_assert_eq(zero_copied, size - offset, "every byte went through send_file");
    cr_assert_eq(src->body_sent(), size - offset);
    cr_assert_not(src->zero_copy(), "finished");
    assert_end(src->trailer(), fake_digest());
    cr_assert_not(src->computed_digest().has_value(), "nothing was hashed");
  }
}

Test(body, zero_copy_through_a_scripted_transport_survives_short_writes_and_eagain) {
  TempDir dir = make_temp();
  const uint64_t size = 1024 * 1024 + 5;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  protocol::Digest cached = digest_of(data);
  std::unique_ptr<BodySource> src = source_for(path, 0, cached);
  src->allow_zero_copy(true);
  cr_assert(src->zero_copy());
  Pair pair = socket_pair();
  TransportCounters counters;
  std::unique_ptr<reactor::Transport> transport =
      scripted_transport(pair.ours.get(), TransportScript{SIZE_MAX, 40000, 3, true}, &counters);
  uint64_t zero_copied = 0;
  std::string got = send_all(*src, *transport, pair.peer.get(), 256 * 1024, &zero_copied);
  assert_bytes_equal(got, data);
  cr_assert_eq(zero_copied, size);
  cr_assert_geq(counters.send_files, size / 40000, "short sends: %llu calls",
                (unsigned long long)counters.send_files);
  cr_assert_gt(counters.injected_eagain, 0u);
  cr_assert_eq(counters.writes, 0u, "nothing was copied through write()");
  assert_end(src->trailer(), cached);
  cr_assert_not(src->computed_digest().has_value());
}

Test(body, allow_zero_copy_false_copies_without_hashing) {
  TempDir dir = make_temp();
  const uint64_t size = 700000;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  for (uint64_t offset : {uint64_t{0}, uint64_t{12345}}) {
    std::unique_ptr<BodySource> src = source_for(path, offset, fake_digest());
    cr_assert(src->planned_zero_copy());
    src->allow_zero_copy(false);
    cr_assert_not(src->zero_copy());
    src->allow_zero_copy(true);
    cr_assert_not(src->zero_copy(), "once refused, zero copy stays off");
    // Through a transport that cannot send files, as FramedStream would use it.
    Pair pair = socket_pair();
    TransportCounters counters;
    std::unique_ptr<reactor::Transport> transport =
        scripted_transport(pair.ours.get(), TransportScript{SIZE_MAX, 30000, 3, false}, &counters);
    uint64_t zero_copied = 0;
    std::string got = send_all(*src, *transport, pair.peer.get(), 64 * 1024, &zero_copied);
    assert_bytes_equal(got, data.substr(static_cast<size_t>(offset)));
    cr_assert_eq(zero_copied, 0u);
    cr_assert_eq(counters.send_files, 0u);
    cr_assert_gt(counters.writes, 0u);
    assert_end(src->trailer(), fake_digest());
    cr_assert_not(src->computed_digest().has_value(), "a cached digest is never recomputed");
  }
}

Test(body, a_small_body_with_a_cached_digest_is_copied_unhashed) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "f", kZeroCopyMin + 10);
  std::string data = contents(path);
  // Body kZeroCopyMin - 1 bytes: below the threshold.
  std::unique_ptr<BodySource> src = source_for(path, 11, fake_digest());
  cr_assert_eq(src->body_length(), kZeroCopyMin - 1);
  cr_assert_not(src->planned_zero_copy());
  src->allow_zero_copy(true);
  cr_assert_not(src->zero_copy());
  uint64_t processed = 0;
  std::string body = produce_all(*src, 10000, &processed);
  assert_bytes_equal(body, data.substr(11));
  cr_assert_eq(processed, kZeroCopyMin - 1, "the prefix is not even read");
  assert_end(src->trailer(), fake_digest());
  cr_assert_not(src->computed_digest().has_value());

  // Exactly kZeroCopyMin is worth it.
  std::unique_ptr<BodySource> big = source_for(path, 10, fake_digest());
  cr_assert(big->planned_zero_copy());
}

Test(body, a_cached_body_at_the_end_of_the_file_is_empty) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "f", 200000);
  std::unique_ptr<BodySource> src = source_for(path, 200000, fake_digest());
  cr_assert(src->finished());
  cr_assert_not(src->zero_copy());
  Buffer out;
  cr_assert_eq(src->produce(out, 1000), 0u);
  assert_end(src->trailer(), fake_digest());
}

Test(body, zero_copy_of_a_file_that_shrinks_is_padded_to_the_announced_length) {
  TempDir dir = make_temp();
  const uint64_t size = 1024 * 1024;
  const uint64_t shrunk = 300000;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  for (bool scripted : {false, true}) {
    cr_assert(write_pattern_file(path, size, 7));
    std::unique_ptr<BodySource> src = source_for(path, 0, fake_digest());
    src->allow_zero_copy(true);
    Pair pair = socket_pair();
    TransportCounters counters;
    std::unique_ptr<reactor::Transport> transport =
        scripted ? scripted_transport(pair.ours.get(), TransportScript{SIZE_MAX, 20000, 3, true}, &counters)
                 : reactor::make_socket_transport(pair.ours.get());
    bool truncated = false;
    uint64_t zero_copied = 0;
    std::string got = send_all_with(*src, *transport, pair.peer.get(), 64 * 1024, [&](const std::string&) {
      if (!truncated && src->body_sent() >= 100000) {
        cr_assert(src->zero_copy());
        cr_assert_eq(truncate(path.c_str(), static_cast<off_t>(shrunk)), 0);
        truncated = true;
      }
    }, &zero_copied);
    cr_assert(truncated);
    cr_assert_eq(got.size(), size, "scripted %d: the announced length is kept", scripted);
    cr_assert_eq(zero_copied, shrunk, "scripted %d: send_file sent what was left of the file", scripted);
    assert_bytes_equal(got.substr(0, shrunk), data.substr(0, shrunk));
    cr_assert(got.find_first_not_of('\0', shrunk) == std::string::npos, "padding is zeros");
    cr_assert_eq(src->body_sent(), size);
    assert_error(src->trailer(), protocol::ErrorCode::kFileChanged, "shrank");
    if (scripted) cr_assert_gt(counters.writes, 0u, "the padding was copied");
  }
}

Test(body, zero_copy_of_a_file_modified_in_place_is_reported) {
  TempDir dir = make_temp();
  const uint64_t size = 1024 * 1024;
  std::string path = make_file(dir, "f", size);
  for (int how = 0; how < 2; ++how) {  // 0: rewrite bytes, 1: futimens only
    cr_assert(write_pattern_file(path, size, 7));
    set_old_mtime(path);
    std::unique_ptr<BodySource> src = source_for(path, 0, fake_digest());
    src->allow_zero_copy(true);
    Pair pair = socket_pair();
    std::unique_ptr<reactor::Transport> transport = reactor::make_socket_transport(pair.ours.get());
    bool changed = false;
    uint64_t zero_copied = 0;
    std::string got = send_all_with(*src, *transport, pair.peer.get(), 64 * 1024, [&](const std::string&) {
      if (!changed && src->body_sent() >= 200000) {
        Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
        cr_assert(fd.valid());
        if (how == 0) {
          cr_assert_eq(pwrite(fd.get(), "XXXXXXXX", 8, 800000), 8);
        } else {
          struct timespec times[2] = {{0, UTIME_OMIT}, {1600000000, 0}};
          cr_assert_eq(futimens(fd.get(), times), 0);
        }
        changed = true;
      }
    }, &zero_copied);
    cr_assert(changed);
    cr_assert_eq(got.size(), size);
    cr_assert_eq(zero_copied, size);
    assert_error(src->trailer(), protocol::ErrorCode::kFileChanged, "modified");
  }
}

Test(body, send_file_unsupported_falls_back_to_copying) {
  TempDir dir = make_temp();
  const uint64_t size = 500000;
  std::string path = make_file(dir, "f", size);
  std::string data = contents(path);
  for (int error : {EINVAL, ENOSYS, EOPNOTSUPP}) {
    std::unique_ptr<BodySource> src = source_for(path, 1000, fake_digest());
    src->allow_zero_copy(true);
    FailingSendFile transport(error);
    reactor::IoResult r = src->send_file(transport, 65536);
    cr_assert_eq(r.bytes, 0, "%s: 0 means produce() takes over", std::strerror(error));
    cr_assert_eq(transport.calls, 1);
    cr_assert_not(src->zero_copy());
    cr_assert_not(src->finished());
    std::string body = produce_all(*src, 65536);
    assert_bytes_equal(body, data.substr(1000));
    assert_end(src->trailer(), fake_digest());
  }
}

Test(body, send_file_read_error_pads_and_reports_io_error) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "f", 300000);
  std::unique_ptr<BodySource> src = source_for(path, 0, fake_digest());
  src->allow_zero_copy(true);
  FailingSendFile transport(EIO);
  reactor::IoResult r = src->send_file(transport, 65536);
  cr_assert_eq(r.bytes, 0);
  cr_assert_not(src->zero_copy());
  std::string body = produce_all(*src, 65536);
  cr_assert_eq(body.size(), 300000u);
  cr_assert(body.find_first_not_of('\0') == std::string::npos, "padding is zeros");
  assert_error(src->trailer(), protocol::ErrorCode::kIoError, "read failed");
}

Test(body, send_file_connection_errors_are_the_callers) {
  TempDir dir = make_temp();
  std::string path = make_file(dir, "f", 300000);
  std::unique_ptr<BodySource> src = source_for(path, 0, fake_digest());
  src->allow_zero_copy(true);
  for (int error : {EAGAIN, EPIPE}) {
    FailingSendFile transport(error);
    reactor::IoResult r = src->send_file(transport, 65536);
    cr_assert_eq(r.bytes, -1);
    cr_assert_eq(r.error, error);
    cr_assert(src->zero_copy(), "%s leaves the source as it was", std::strerror(error));
    cr_assert_eq(src->body_sent(), 0u);
  }
}

// ---------------------------------------------------------------------------
// BodySink

Test(body, sink_inline_and_background_hashing_match_sha256) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 20, (size_t{5} << 20) + 3}) {
    std::string data = pattern_bytes(0, size, size);
    protocol::Digest want = digest_of(data);
    for (BodySink::Hashing mode : {BodySink::Hashing::kInline, BodySink::Hashing::kBackground}) {
      for (size_t piece : {size_t{1} << 20, size_t{65536} + 17}) {
        if (size < 100000 && piece != 65536 + 17) continue;
        BodySink sink(mode, protocol::DigestKind::kSha256);
        cr_assert_not(sink.has_file());
        write_all(sink, data, piece);
        protocol::Digest got{};
        cr_assert(sink.verify(want, &got), "size %zu mode %d: %s", size, static_cast<int>(mode), hex(got).c_str());
        cr_assert(got == want);
        std::string err;
        cr_assert(sink.commit(0, &err), "a sink without a file commits trivially: %s", err.c_str());
      }
    }
  }
}

Test(body, sink_hash_only_detects_a_mismatch) {
  for (BodySink::Hashing mode : {BodySink::Hashing::kInline, BodySink::Hashing::kBackground}) {
    std::string data = pattern_bytes(0, 3 << 20, 3);
    BodySink sink(mode, protocol::DigestKind::kSha256);
    write_all(sink, data, 100000);
    protocol::Digest wrong = digest_of(data);
    wrong[31] ^= 1;
    protocol::Digest got{};
    cr_assert_not(sink.verify(wrong, &got));
    cr_assert(got == digest_of(data), "actual is the real digest");
  }
}

Test(body, sink_writes_a_hidden_private_temporary_then_commits_it) {
  TempDir dir = make_temp();
  umask(027);
  std::string data = pattern_bytes(0, 2 * 1024 * 1024 + 9, 11);
  for (BodySink::Hashing mode : {BodySink::Hashing::kInline, BodySink::Hashing::kBackground}) {
    std::string name = mode == BodySink::Hashing::kInline ? "inline.bin" : "background.bin";
    BodySink sink(mode, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert(sink.open_file(open_dir(dir.path()), name, "shown/" + name, false, &err), "%s", err.c_str());
    cr_assert(sink.has_file());
    ASSERT_STR_EQ(sink.display(), "shown/" + name);
    std::string temp = sink.temp_name();
    cr_assert(is_part_of(temp, name), "temporary name \"%s\"", temp.c_str());
    write_all(sink, data.substr(0, 1000000), 65536);

    // While incomplete: only the temporary, mode 0600, nothing under the final name.
    std::vector<std::string> names = entries(dir.path());
    cr_assert(std::find(names.begin(), names.end(), temp) != names.end(), "%s", joined(names).c_str());
    cr_assert(std::find(names.begin(), names.end(), name) == names.end(), "%s", joined(names).c_str());
    struct stat st {};
    cr_assert_eq(stat(dir.path(temp).c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600u, "temporary mode %o", st.st_mode & 07777);

    write_all(sink, data, 65536 * 3 + 1);  // written() counts from open_file
    cr_assert_eq(sink.written(), 1000000 + data.size());
    std::string expected = data.substr(0, 1000000) + data;
    cr_assert(sink.verify(digest_of(expected)));
    cr_assert(sink.commit(1234567890, &err), "%s", err.c_str());
    cr_assert(sink.temp_name().empty());

    std::string final_path = dir.path(name);
    assert_bytes_equal(contents(final_path), expected);
    cr_assert_eq(stat(final_path.c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0640u, "mode %o, want 0666 & ~umask", st.st_mode & 07777);
    cr_assert_eq(st.st_mtim.tv_sec, 1234567890);
    cr_assert_eq(st.st_mtim.tv_nsec, 0);
  }
  assert_entries(dir.path(), {"background.bin", "inline.bin"});
}

Test(body, sink_verify_mismatch_leaves_nothing) {
  TempDir dir = make_temp();
  for (BodySink::Hashing mode : {BodySink::Hashing::kInline, BodySink::Hashing::kBackground}) {
    BodySink sink(mode, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert(sink.open_file(open_dir(dir.path()), "x", "x", false, &err), "%s", err.c_str());
    std::string data = pattern_bytes(0, 1500000, 5);
    write_all(sink, data, 100000);
    protocol::Digest wrong = digest_of(data);
    wrong[0] ^= 0x80;
    protocol::Digest got{};
    cr_assert_not(sink.verify(wrong, &got));
    cr_assert(got == digest_of(data));
    assert_entries(dir.path(), {});
    cr_assert(sink.temp_name().empty());
  }
}

Test(body, sink_destroyed_or_discarded_uncommitted_removes_the_temporary) {
  TempDir dir = make_temp();
  {
    BodySink sink(BodySink::Hashing::kBackground, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert(sink.open_file(open_dir(dir.path()), "a", "a", false, &err), "%s", err.c_str());
    write_all(sink, pattern_bytes(0, 3000000, 1), 1 << 20);
    cr_assert_eq(entries(dir.path()).size(), 1u);
  }
  assert_entries(dir.path(), {});
  {
    BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert(sink.open_file(open_dir(dir.path()), "b", "b", false, &err), "%s", err.c_str());
    write_all(sink, "partial", 3);
    cr_assert(sink.verify(digest_of("partial")));  // verified but never committed
    sink.discard();
    assert_entries(dir.path(), {});
    sink.discard();  // idempotent
  }
  assert_entries(dir.path(), {});
}

Test(body, sink_refuses_an_existing_name_without_overwrite) {
  TempDir dir = make_temp();
  cr_assert(write_file(dir.path("taken"), "original"));
  cr_assert_eq(symlink("/nonexistent/target", dir.path("dangling").c_str()), 0);
  for (const char* name : {"taken", "dangling"}) {
    BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert_not(sink.open_file(open_dir(dir.path()), name, std::string("dl/") + name, false, &err), "%s", name);
    ASSERT_CONTAINS(err, "--force");
    ASSERT_CONTAINS(err, std::string("\"dl/") + name + "\"");
    cr_assert(sink.temp_name().empty());
  }
  assert_entries(dir.path(), {"dangling", "taken"});
  ASSERT_STR_EQ(contents(dir.path("taken")), "original");
}

Test(body, sink_refuses_a_directory_even_with_overwrite) {
  TempDir dir = make_temp();
  cr_assert(make_dirs(dir.path("sub")));
  for (bool overwrite : {true, false}) {
    BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert_not(sink.open_file(open_dir(dir.path()), "sub", "sub", overwrite, &err));
    // Either way the same words: --force would not help, so it is not suggested.
    ASSERT_CONTAINS(err, "is a directory");
    cr_assert(err.find("--force") == std::string::npos, "%s", err.c_str());
    cr_assert_not(sink.has_file(), "a refused sink has no file");
  }
  assert_entries(dir.path(), {"sub"});
  assert_entries(dir.path("sub"), {});
}

Test(body, sink_refuses_an_unwritable_directory_as_non_root) {
  if (geteuid() == 0) cr_skip_test("root ignores directory permissions");
  TempDir dir = make_temp();
  cr_assert(make_dirs(dir.path("ro")));
  cr_assert_eq(chmod(dir.path("ro").c_str(), 0500), 0);
  BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
  std::string err;
  bool ok = sink.open_file(open_dir(dir.path("ro")), "f", "ro/f", false, &err);
  chmod(dir.path("ro").c_str(), 0700);
  cr_assert_not(ok);
  ASSERT_CONTAINS(err, "create temporary file in \"ro\"");
  ASSERT_CONTAINS(err, std::strerror(EACCES));
  cr_assert_not(sink.has_file());
  assert_entries(dir.path("ro"), {});
}

Test(body, sink_refuses_an_immutable_directory_as_root) {
  if (geteuid() != 0) cr_skip_test("needs CAP_LINUX_IMMUTABLE (the permission case covers non-root)");
  TempDir dir = make_temp();
  cr_assert(make_dirs(dir.path("ro")));
  Fd ro(open(dir.path("ro").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  cr_assert(ro.valid());
  int flags = 0;
  if (ioctl(ro.get(), FS_IOC_GETFLAGS, &flags) != 0) cr_skip_test("no inode flags here: %s", std::strerror(errno));
  int immutable = flags | FS_IMMUTABLE_FL;
  if (ioctl(ro.get(), FS_IOC_SETFLAGS, &immutable) != 0)
    cr_skip_test("cannot make a directory immutable here: %s", std::strerror(errno));
  // No assertion until the flag is cleared again: the directory must stay removable.
  BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
  std::string err;
  bool ok = sink.open_file(open_dir(dir.path("ro")), "f", "/abs/ro/f", false, &err);
  int cleared = ioctl(ro.get(), FS_IOC_SETFLAGS, &flags);
  cr_assert_eq(cleared, 0, "could not clear the immutable flag of %s", dir.path("ro").c_str());
  cr_assert_not(ok);
  ASSERT_CONTAINS(err, "create temporary file in \"/abs/ro\"");
  cr_assert_not(sink.has_file());
  assert_entries(dir.path("ro"), {});
}

Test(body, sink_refuses_a_removed_directory) {
  TempDir dir = make_temp();
  cr_assert(make_dirs(dir.path("gone")));
  UniqueFd gone = open_dir(dir.path("gone"));
  cr_assert_eq(rmdir(dir.path("gone").c_str()), 0);
  BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
  std::string err;
  cr_assert_not(sink.open_file(std::move(gone), "f", "f", false, &err));
  ASSERT_CONTAINS(err, "create temporary file in \".\"");
  cr_assert_not(sink.has_file());
  assert_entries(dir.path(), {});
}

Test(body, sink_commit_never_replaces_a_name_that_appeared_meanwhile) {
  TempDir dir = make_temp();
  for (BodySink::Hashing mode : {BodySink::Hashing::kInline, BodySink::Hashing::kBackground}) {
    {
      BodySink sink(mode, protocol::DigestKind::kSha256);
      std::string err;
      cr_assert(sink.open_file(open_dir(dir.path()), "late", "dl/late", false, &err), "%s", err.c_str());
      std::string data = pattern_bytes(0, 1200000, 9);
      write_all(sink, data, 300000);
      cr_assert(write_file(dir.path("late"), "someone else's"));
      cr_assert(sink.verify(digest_of(data)));
      cr_assert_not(sink.commit(1000000000, &err));
      ASSERT_CONTAINS(err, "appeared during the download");
      ASSERT_CONTAINS(err, "\"dl/late\"");
      ASSERT_STR_EQ(contents(dir.path("late")), "someone else's");
      sink.discard();  // what GetCommand does when the commit fails
      assert_entries(dir.path(), {"late"});
    }
    ASSERT_STR_EQ(contents(dir.path("late")), "someone else's");
    assert_entries(dir.path(), {"late"});
    cr_assert_eq(unlink(dir.path("late").c_str()), 0);
  }
}

Test(body, sink_destructor_after_a_failed_commit_leaves_no_debris) {
  TempDir dir = make_temp();
  {
    BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert(sink.open_file(open_dir(dir.path()), "late", "late", false, &err), "%s", err.c_str());
    write_all(sink, "body", 4);
    cr_assert(write_file(dir.path("late"), "other"));
    cr_assert(sink.verify(digest_of("body")));
    cr_assert_not(sink.commit(0, &err));
  }
  assert_entries(dir.path(), {"late"});
  ASSERT_STR_EQ(contents(dir.path("late")), "other");
}

Test(body, sink_overwrite_replaces_files_and_symlinks_not_their_targets) {
  TempDir dir = make_temp();
  umask(022);
  cr_assert(make_dirs(dir.path("dl")));
  cr_assert(write_file_with_mode(dir.path("dl/file"), "old contents", 0400));
  cr_assert(write_file(dir.path("outside"), "do not touch"));
  cr_assert_eq(symlink(dir.path("outside").c_str(), dir.path("dl/link").c_str()), 0);
  for (const char* name : {"file", "link"}) {
    BodySink sink(BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
    std::string err;
    cr_assert(sink.open_file(open_dir(dir.path("dl")), name, name, true, &err), "%s: %s", name, err.c_str());
    std::string data = std::string("new contents of ") + name;
    write_all(sink, data, 5);
    cr_assert(sink.verify(digest_of(data)));
    cr_assert(sink.commit(1100000000, &err), "%s: %s", name, err.c_str());
    std::string path = dir.path(std::string("dl/") + name);
    struct stat st {};
    cr_assert_eq(lstat(path.c_str(), &st), 0);
    cr_assert(S_ISREG(st.st_mode), "%s is a regular file now", name);
    cr_assert_eq(st.st_mode & 07777, 0644u, "%s: mode %o", name, st.st_mode & 07777);
    cr_assert_eq(st.st_mtim.tv_sec, 1100000000);
    ASSERT_STR_EQ(contents(path), data);
  }
  ASSERT_STR_EQ(contents(dir.path("outside")), "do not touch");
  assert_entries(dir.path("dl"), {"file", "link"});
}

Test(body, sink_overwrite_creates_a_missing_name_too) {
  TempDir dir = make_temp();
  umask(0);
  BodySink sink(BodySink::Hashing::kBackground, protocol::DigestKind::kSha256);
  std::string err;
  cr_assert(sink.open_file(open_dir(dir.path(), O_RDONLY), "new", "new", true, &err), "%s", err.c_str());
  write_all(sink, "abc", 1);
  cr_assert(sink.verify(protocol::sha256("abc", 3)));
  cr_assert(sink.commit(42, &err), "%s", err.c_str());
  struct stat st {};
  cr_assert_eq(stat(dir.path("new").c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0666u);
  cr_assert_eq(st.st_mtim.tv_sec, 42);
  assert_entries(dir.path(), {"new"});
}

// A stream sink writes through, in order, waiting on a full non-blocking pipe rather
// than failing with EAGAIN; a wrong digest is reported, and there is nothing to delete.
Test(body, sink_stream_writes_through_a_full_nonblocking_pipe) {
  for (bool right_digest : {true, false}) {
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    reactor::UniqueFd read_end(fds[0]);
    std::string data(1 << 20, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
    std::string received;
    std::thread reader([&] {
      char buf[4096];
      for (int spins = 0; spins < 200000 && received.size() < data.size(); ++spins) {
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n > 0) received.append(buf, static_cast<size_t>(n));
        if (n == 0) break;
        if (n < 0) usleep(50);
      }
    });
    BodySink sink(BodySink::Hashing::kBackground, protocol::DigestKind::kSha256);
    sink.open_stream(reactor::UniqueFd(fds[1]), "the pipe");
    cr_assert(sink.streaming() && !sink.has_file());
    std::string err;
    cr_assert(sink.write(data.data(), data.size(), &err), "%s", err.c_str());
    protocol::Digest want = right_digest ? digest_of(data) : digest_of("something else");
    cr_assert_eq(sink.verify(want), right_digest);
    if (right_digest) cr_assert(sink.commit(0, &err), "%s", err.c_str());
    sink.discard();
    reader.join();
    cr_assert(received == data, "%zu of %zu bytes arrived in order", received.size(), data.size());
  }
}

// ---------------------------------------------------------------------------
// The two together: what a source sends, a sink receives and verifies.

Test(body, source_to_sink_round_trip) {
  TempDir dir = make_temp();
  cr_assert(make_dirs(dir.path("out")));
  const uint64_t size = 2 * 1024 * 1024 + 321;
  std::string path = make_file(dir, "src", size);
  std::unique_ptr<BodySource> src = source_for(path, 0);
  BodySink sink(BodySink::Hashing::kBackground, protocol::DigestKind::kSha256);
  std::string err;
  cr_assert(sink.open_file(open_dir(dir.path("out")), "copy", "out/copy", false, &err), "%s", err.c_str());
  Buffer out;
  int steps = 0;
  while (!src->finished()) {
    cr_assert_lt(++steps, kMaxSteps);
    src->produce(out, 100000);
    cr_assert(sink.write(out.peek(), out.readable(), &err), "%s", err.c_str());
    out.consume_all();
  }
  protocol::Message trailer = src->trailer();
  const auto* end = std::get_if<protocol::End>(&trailer);
  cr_assert(end != nullptr);
  cr_assert(sink.verify(*end->sha256));
  cr_assert(sink.commit(src->opened().st_mtim.tv_sec, &err), "%s", err.c_str());
  std::string why;
  cr_assert(files_equal(path, dir.path("out/copy"), &why), "%s", why.c_str());
  assert_entries(dir.path("out"), {"copy"});
}
