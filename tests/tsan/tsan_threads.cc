// The project's threads under ThreadSanitizer: the hashing thread beside the event loop
// (BackgroundSha256, a BodySink hashing in the background) and the worker that runs
// reactord's commits (WorkQueue, a BodySink verified and committed on the worker as
// reactord does). A plain program, not Criterion, which does not run under TSan; it exits
// 0 when every check passes, and TSan makes it exit non-zero on any data race.

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/common/background_sha256.h"
#include "apps/common/body_sink.h"
#include "apps/reactorc/partial_download.h"
#include "protocol/content_hash.h"
#include "protocol/sha256.h"
#include "reactor/event_loop.h"
#include "reactor/work_queue.h"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tsan_threads: FAILED: %s\n", what);
    ++failures;
  }
}

std::string pattern(size_t size, unsigned seed) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

protocol::Digest inline_digest(const std::string& data) {
  protocol::Sha256 hash;
  hash.update(data.data(), data.size());
  return hash.finish();
}

// Slices of irregular sizes, as a socket returns them.
template <typename Feed>
void feed_sliced(const std::string& data, Feed feed) {
  size_t pos = 0;
  size_t slice = 1;
  while (pos < data.size()) {
    size_t n = std::min(slice, data.size() - pos);
    feed(data.data() + pos, n);
    pos += n;
    slice = slice * 7 % 300000 + 1;
  }
}

void background_hash() {
  const std::string data = pattern(20 << 20, 1);
  app::BackgroundSha256 hash;
  feed_sliced(data, [&](const char* p, size_t n) { hash.update(p, n); });
  check(hash.threaded(), "20 MiB started the hashing thread");
  check(hash.finish() == inline_digest(data), "background digest equals the inline one");
  // Destroyed with chunks still queued: the worker stops and is joined.
  for (int i = 0; i < 20; ++i) {
    app::BackgroundSha256 dropped;
    feed_sliced(data.substr(0, 6 << 20), [&](const char* p, size_t n) { dropped.update(p, n); });
  }
}

std::unique_ptr<reactor::EventLoop> make_loop() {
  std::string err;
  std::unique_ptr<reactor::EventLoop> loop = reactor::EventLoop::create_from_env(&err);
  if (!loop) {
    std::fprintf(stderr, "tsan_threads: %s\n", err.c_str());
    std::exit(1);
  }
  return loop;
}

// Runs the loop until done() or 20 s.
bool run_until(reactor::EventLoop& loop, const std::function<bool()>& done) {
  bool ok = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  reactor::EventLoop::TimerId timer = loop.run_every(std::chrono::milliseconds(1), [&] {
    if (done()) {
      ok = true;
      loop.stop();
    } else if (std::chrono::steady_clock::now() > deadline) {
      loop.stop();
    }
  });
  std::string err;
  loop.run(&err);
  loop.cancel(timer);
  return ok;
}

void work_queue() {
  auto loop = make_loop();
  reactor::WorkQueue queue(*loop);
  struct Job {
    std::vector<int> data;
    long sum = 0;
  };
  std::vector<std::shared_ptr<Job>> jobs;
  std::vector<reactor::WorkQueue::Id> ids;
  int completed = 0;
  long total = 0;
  std::string err;
  for (int i = 0; i < 500; ++i) {
    auto job = std::make_shared<Job>();
    job->data.assign(1000, i);  // written here, read by the worker
    jobs.push_back(job);
    ids.push_back(queue.submit([job] { for (int v : job->data) job->sum += v; },
                               [job, &completed, &total] {  // read back here
                                 ++completed;
                                 total += job->sum;
                               },
                               &err));
  }
  for (size_t i = 0; i < ids.size(); i += 5) queue.cancel(ids[i]);  // 100 cancelled
  check(run_until(*loop, [&] { return queue.pending() == 0; }), "every job completed or was cancelled");
  check(completed == 400, "400 completions");
  long want = 0;
  for (int i = 0; i < 500; ++i)
    if (i % 5 != 0) want += 1000L * i;
  check(total == want, "the sums computed on the worker arrive intact");
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return remove(path); }

// reactord's upload: written and hashed (in the background) on the loop thread, then
// verified and committed on the worker, the result read back on the loop.
void upload_commit() {
  char tmpl[] = "/tmp/tsan-threads.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    check(false, "mkdtemp");
    return;
  }
  std::string dir = tmpl;
  auto loop = make_loop();
  reactor::WorkQueue queue(*loop);
  for (int round = 0; round < 4; ++round) {
    const std::string data = pattern((5 << 20) + round * 12345, 10 + round);
    auto sink = std::make_shared<app::BodySink>(app::BodySink::Hashing::kBackground, protocol::DigestKind::kSha256);
    std::string err;
    reactor::UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    std::string name = "f" + std::to_string(round);
    check(sink->open_file(std::move(dfd), name, name, true, &err), "open the sink");
    feed_sliced(data, [&](const char* p, size_t n) { sink->write(p, n, &err); });
    protocol::Digest expected = round == 3 ? protocol::Digest{} : inline_digest(data);  // the last one lies
    auto ok = std::make_shared<bool>(false);
    bool done = false;
    queue.submit(
        [sink, expected, ok] {
          std::string why;
          app::BodySink::CommitOptions options;
          options.durable = true;
          *ok = sink->verify(expected) && sink->commit(options, &why);
        },
        [&done] { done = true; }, &err);
    check(run_until(*loop, [&] { return done; }), "the commit completed");
    struct stat st {};
    bool stored = stat((dir + "/" + name).c_str(), &st) == 0;
    check(*ok == (round != 3), "the digest decides");
    check(stored == (round != 3), "stored exactly when verified");
    if (stored) check(static_cast<size_t>(st.st_size) == data.size(), "stored whole");
  }
  nftw(dir.c_str(), remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

}  // namespace

// get -c's check of a partial, its chunks hashed on several threads at once.
void chunk_check() {
  char tmpl[] = "/tmp/tsan-chunks.XXXXXX";
  int fd = mkstemp(tmpl);
  check(fd >= 0, "mkstemp");
  if (fd < 0) return;
  unlink(tmpl);
  const std::string data = pattern(40 * protocol::kChunkSize + 99, 7);
  protocol::ContentHash hash(protocol::DigestKind::kTree, /*keep_leaves=*/true);
  hash.update(data.data(), data.size());
  hash.finish();
  std::string damaged = data;
  damaged[17 * protocol::kChunkSize + 5] ^= 1;
  check(pwrite(fd, damaged.data(), damaged.size(), 0) == static_cast<ssize_t>(damaged.size()), "write the partial");
  client::ChunkCheck result;
  std::string err;
  check(client::check_chunks(fd, damaged.size(), data.size(), hash.leaves(), &result, &err), "check_chunks");
  check(result.checked == 41 && result.bad.size() == 1 && result.bad[0] == 17, "only the damaged chunk differs");
  close(fd);
}

int main() {
  background_hash();
  work_queue();
  upload_commit();
  chunk_check();
  if (failures != 0) return 1;
  std::printf("ok    tsan threads: hashing thread, work queue, background-hashed upload committed on the worker, "
              "chunk check\n");
  return 0;
}
