// Integration tests of resumed downloads (reactorc get -c; reactor-protocol(7), CHUNK
// TREE), end to end: a real reactord, real reactorc processes, partial downloads planted
// by the test or left by a transfer cut short (SIGINT, SIGKILL of the client, SIGKILL of
// the server, a proxy that stops forwarding). Every result is compared byte for byte,
// and the body bytes the server sent on the resume are counted from its log: a resume
// must fetch only what is missing or damaged, never trust what it holds unchecked.

#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/process.h"
#include "tests/support/proxy.h"
#include "tests/support/server.h"

using namespace testsupport;

namespace {

constexpr uint64_t kChunk = 1 << 20;

ServeOptions options() {
  ServeOptions o;
  o.prefix = "resume-test";
  o.files = {{"health.txt", kHealthText}};
  return o;
}

std::string partial_of(const Served& s, const std::string& local) {
  return s.in_downloads("." + local + ".reactor-partial");
}
std::string note_of(const Served& s, const std::string& local) {
  return s.in_downloads("." + local + ".reactor-partial.json");
}

void write_note(const Served& s, const std::string& local, const std::string& remote, uint64_t size, int64_t mtime) {
  std::string note = "{\"server\":" + json_quote(s.server.plain_address()) + ",\"path\":" + json_quote(remote) +
                     ",\"size\":\"" + std::to_string(size) + "\",\"mtime\":\"" + std::to_string(mtime) + "\"}\n";
  cr_assert(write_file(note_of(s, local), note));
}

ClientResult resume(const Served& s, const std::string& remote, const std::string& local,
                    const std::vector<std::string>& more = {}) {
  std::vector<std::string> args = {"-c", "get", remote, s.in_downloads(local)};
  args.insert(args.begin(), more.begin(), more.end());
  return s.server.run_plain_client(args, Millis(60000));
}

void assert_complete(const Served& s, const std::string& remote, const std::string& local) {
  std::string why;
  cr_assert(files_equal(s.in_root(remote), s.in_downloads(local), &why), "%s: %s", local.c_str(), why.c_str());
  cr_assert_not(exists(partial_of(s, local)), "%s: the partial is left", local.c_str());
  cr_assert_not(exists(note_of(s, local)), "%s: the note is left", local.c_str());
}

// Waits until the partial of `local` holds at least `bytes`.
void wait_for_partial(const Served& s, const std::string& local, uint64_t bytes, const Process& client) {
  bool reached = wait_until(
      [&] {
        std::optional<uint64_t> size = file_size(partial_of(s, local));
        return size && *size >= bytes;
      },
      Millis(30000));
  cr_assert(reached, "the partial of %s never reached %llu bytes: %s", local.c_str(),
            static_cast<unsigned long long>(bytes), client.stderr_text().c_str());
}

}  // namespace

TestSuite(resume, .timeout = 240);

// The matrix of sftp-resume.sh: partials of every interesting length, each with its
// note, resumed; only the chunks not wholly held are fetched.
Test(resume, every_length_of_partial_resumes_fetching_only_what_is_missing) {
  Served s = serve(options());
  const uint64_t size = 3 * kChunk + 12345;  // four chunks, the last one short
  make_pattern(s.in_root("f.bin"), size, 21);
  const std::string content = pattern_bytes(0, size, 21);
  const uint64_t lengths[] = {0, 1, 1024, kChunk - 1, kChunk, kChunk + 1, size - 1, size, size + 5000};
  int n = 0;
  for (uint64_t held : lengths) {
    std::string local = "c" + std::to_string(n++) + ".bin";
    std::string planted = held <= size ? content.substr(0, held) : content + std::string(held - size, 'x');
    cr_assert(write_file(partial_of(s, local), planted));
    write_note(s, local, "f.bin", size, kMtime);
    size_t mark = s.server.stderr_text().size();
    ClientResult r = resume(s, "f.bin", local);
    cr_assert(r.exited_with(0), "held %llu: %s", static_cast<unsigned long long>(held), r.describe().c_str());
    assert_complete(s, "f.bin", local);
    uint64_t kept = held >= size ? size : held / kChunk * kChunk;
    uint64_t sent = body_bytes_sent(s.server.stderr_text(), mark);
    cr_assert_eq(sent, size - kept, "held %llu: the server sent %llu body bytes, want %llu",
                 static_cast<unsigned long long>(held), static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(size - kept));
    if (held > 0) ASSERT_CONTAINS(r.stderr_text, "resuming");
  }
  stop_cleanly(s);
}

Test(resume, a_flipped_byte_costs_only_its_chunk) {
  Served s = serve(options());
  const uint64_t size = 3 * kChunk + 12345;
  make_pattern(s.in_root("f.bin"), size, 22);
  std::string planted = pattern_bytes(0, size - 1, 22);
  planted[kChunk + 4321] ^= 0x20;  // in chunk 1
  cr_assert(write_file(partial_of(s, "f.bin"), planted));
  write_note(s, "f.bin", "f.bin", size, kMtime);
  size_t mark = s.server.stderr_text().size();
  ClientResult r = resume(s, "f.bin", "f.bin");
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_complete(s, "f.bin", "f.bin");
  ASSERT_CONTAINS(r.stderr_text, "1 chunk(s) of 1048576 bytes fetched again");
  // Chunk 1 again, and chunk 3, which the partial held only in part.
  cr_assert_eq(body_bytes_sent(s.server.stderr_text(), mark), kChunk + 12345);
  stop_cleanly(s);
}

Test(resume, nothing_held_is_trusted_without_its_digest) {
  Served s = serve(options());
  const uint64_t size = 3 * kChunk;
  make_pattern(s.in_root("f.bin"), size, 23);
  // Another file's bytes, without a note (as a crash before the first header leaves it):
  // every chunk is checked, none matches, all are fetched again.
  cr_assert(write_file(partial_of(s, "f.bin"), pattern_bytes(0, size, 99)));
  size_t mark = s.server.stderr_text().size();
  ClientResult r = resume(s, "f.bin", "f.bin");
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_complete(s, "f.bin", "f.bin");
  ASSERT_CONTAINS(r.stderr_text, "3 chunk(s) of 3145728 bytes fetched again");
  cr_assert_eq(body_bytes_sent(s.server.stderr_text(), mark), size);
  stop_cleanly(s);
}

Test(resume, a_source_changed_since_starts_over_and_says_so) {
  Served s = serve(options());
  const uint64_t size = 2 * kChunk + 7;
  make_pattern(s.in_root("f.bin"), size, 24);
  // Held: the first chunk of the version of kMtime; the server now has another version.
  cr_assert(write_file(partial_of(s, "f.bin"), pattern_bytes(0, kChunk, 24)));
  write_note(s, "f.bin", "f.bin", size, kMtime);
  make_pattern(s.in_root("f.bin"), size, 25);
  set_mtime(s.in_root("f.bin"), kMtime + 3600);
  size_t mark = s.server.stderr_text().size();
  ClientResult r = resume(s, "f.bin", "f.bin");
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "was of another version of the file");
  ASSERT_CONTAINS(r.stderr_text, "starting over");
  assert_complete(s, "f.bin", "f.bin");
  cr_assert_eq(body_bytes_sent(s.server.stderr_text(), mark), size);
  // A partial of another remote path is not this file's either.
  cr_assert(write_file(partial_of(s, "g.bin"), pattern_bytes(0, kChunk, 25)));
  write_note(s, "g.bin", "other.bin", size, kMtime + 3600);
  r = resume(s, "f.bin", "g.bin");
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "was of \"other.bin\"");
  assert_complete(s, "f.bin", "g.bin");
  stop_cleanly(s);
}

Test(resume, a_mismatch_at_the_end_still_removes_the_partial) {
  Served s = serve(options());
  const uint64_t size = 3 * kChunk;
  make_pattern(s.in_root("f.bin"), size, 26);
  cr_assert(write_file(partial_of(s, "f.bin"), pattern_bytes(0, kChunk, 26)));
  write_note(s, "f.bin", "f.bin", size, kMtime);
  // A proxy flips a byte of the tail's body (plain protocol: nothing but the digest can
  // tell). The resume's own frames come first: digests_ok with one digest (32 bytes of
  // body), then the tail's header; well past them, inside the body.
  FaultSpec f;
  f.flip_at = 100000;
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  ClientResult r = run_client(plain_args_via(s, proxy->address(), {"-c", "get", "f.bin", s.in_downloads("f.bin")}), Millis(60000));
  cr_assert(r.exited_with(6), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "chunk-tree root mismatch");
  cr_assert_not(exists(partial_of(s, "f.bin")), "a partial that failed verification must go");
  cr_assert_not(exists(note_of(s, "f.bin")));
  cr_assert_not(exists(s.in_downloads("f.bin")));
  stop_cleanly(s);
}

// SIGINT mid-body keeps what arrived, and says how to resume.
Test(resume, an_interrupted_download_is_kept_and_resumed) {
  Served s = serve(options());
  const uint64_t size = 40 * kChunk;
  make_pattern(s.in_root("f.bin"), size, 27);
  FaultSpec f;
  f.stall_after = size / 2;
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  Process client = spawn_client(s, plain_args_via(s, proxy->address(), {"get", "f.bin", s.in_downloads("f.bin")}));
  wait_for_partial(s, "f.bin", size / 2 - 4096, client);
  cr_assert(client.send_signal(SIGINT));
  ExitStatus st = client.wait_exit(Millis(10000));
  cr_assert(st.exited_with(130), "%s: %s", st.describe().c_str(), client.stderr_text().c_str());
  ASSERT_CONTAINS(client.stderr_text(), "the partial download is kept: reactorc get -c resumes it");
  cr_assert(exists(partial_of(s, "f.bin")) && exists(note_of(s, "f.bin")));
  cr_assert_not(exists(s.in_downloads("f.bin")), "nothing unverified under the final name");
  uint64_t held = file_size(partial_of(s, "f.bin")).value_or(0);
  size_t mark = s.server.stderr_text().size();
  ClientResult r = resume(s, "f.bin", "f.bin");
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_complete(s, "f.bin", "f.bin");
  uint64_t sent = body_bytes_sent(s.server.stderr_text(), mark);
  cr_assert(sent >= size - held && sent <= size - held + kChunk, "sent %llu for %llu missing",
            static_cast<unsigned long long>(sent), static_cast<unsigned long long>(size - held));
  stop_cleanly(s);
}

// kill -9 of the client, and of the server, at 10 %, 50 % and 99 % of a 200 MiB
// download; then a resume: byte-identical, and within one chunk of the missing part.
Test(resume, killed_at_10_50_and_99_percent_either_side_then_resumed) {
  Served s = serve(options());
  const uint64_t size = 200 * kChunk;
  make_pattern(s.in_root("big.bin"), size, 28);
  int round = 0;
  for (bool kill_server : {false, true}) {
    for (double fraction : {0.10, 0.50, 0.99}) {
      std::string local = "k" + std::to_string(round++) + ".bin";
      uint64_t at = static_cast<uint64_t>(static_cast<double>(size) * fraction);
      FaultSpec f;
      f.stall_after = at;
      std::string err;
      auto proxy = Proxy::start(s.server.plain_address(), f, &err);
      cr_assert(proxy.has_value(), "%s", err.c_str());
      Process client =
          spawn_client(s, plain_args_via(s, proxy->address(), {"-t", "2", "--retry", "0", "get", "big.bin", s.in_downloads(local)}));
      wait_for_partial(s, local, at - 4096, client);
      if (kill_server) {
        // The server dies at once; the client, behind a proxy that forwards nothing more,
        // gives up after its 2 s of silence and keeps what it has.
        s.server.process().kill_and_wait();
        ExitStatus st = client.wait_exit(Millis(30000));
        cr_assert(st.exited_with(8), "%s: %s", st.describe().c_str(), client.stderr_text().c_str());
        ASSERT_CONTAINS(client.stderr_text(), "reactorc get -c resumes it");
        ServerOptions again;
        again.root = s.root;
        again.secret_file = s.secret.path;
        auto restarted = ServerProcess::start(again, &err);
        cr_assert(restarted.has_value(), "%s", err.c_str());
        s.server = std::move(*restarted);
      } else {
        ExitStatus st = client.kill_and_wait();
        cr_assert(st.killed_by(SIGKILL), "%s", st.describe().c_str());
      }
      uint64_t held = file_size(partial_of(s, local)).value_or(0);
      cr_assert(held >= at - 4096, "%s: %llu held", local.c_str(), static_cast<unsigned long long>(held));
      size_t mark = s.server.stderr_text().size();
      ClientResult r = resume(s, "big.bin", local);
      cr_assert(r.exited_with(0), "%s: %s", local.c_str(), r.describe().c_str());
      assert_complete(s, "big.bin", local);
      uint64_t sent = body_bytes_sent(s.server.stderr_text(), mark);
      cr_assert(sent >= size - held && sent <= size - held + kChunk, "%s: sent %llu for %llu missing", local.c_str(),
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(size - held));
    }
  }
  stop_cleanly(s);
}

Test(resume, two_downloads_into_one_destination_cannot_interleave) {
  Served s = serve(options());
  const uint64_t size = 8 * kChunk;
  make_pattern(s.in_root("f.bin"), size, 29);
  FaultSpec f;
  f.stall_after = size / 4;
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  Process first = spawn_client(s, plain_args_via(s, proxy->address(), {"get", "f.bin", s.in_downloads("f.bin")}));
  wait_for_partial(s, "f.bin", size / 4 - 4096, first);
  ClientResult second = resume(s, "f.bin", "f.bin");
  cr_assert(second.exited_with(7), "%s", second.describe().c_str());
  ASSERT_CONTAINS(second.stderr_text, "another reactorc is downloading into");
  first.kill_and_wait();
  ClientResult r = resume(s, "f.bin", "f.bin");
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_complete(s, "f.bin", "f.bin");
  stop_cleanly(s);
}

Test(resume, without_c_a_partial_is_discarded_and_said_so) {
  Served s = serve(options());
  const uint64_t size = 2 * kChunk;
  make_pattern(s.in_root("f.bin"), size, 30);
  cr_assert(write_file(partial_of(s, "f.bin"), pattern_bytes(0, kChunk, 30)));
  write_note(s, "f.bin", "f.bin", size, kMtime);
  size_t mark = s.server.stderr_text().size();
  ClientResult r = s.server.run_plain_client({"get", "f.bin", s.in_downloads("f.bin")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "discarding an earlier partial download");
  assert_complete(s, "f.bin", "f.bin");
  cr_assert_eq(body_bytes_sent(s.server.stderr_text(), mark), size);
  // -c with nothing held is a plain download; -c into standard output is refused.
  r = resume(s, "f.bin", "g.bin");
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_complete(s, "f.bin", "g.bin");
  ASSERT_NOT_CONTAINS(r.stderr_text, "resuming");
  r = s.server.run_plain_client({"-c", "get", "f.bin", "-"});
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "-c resumes a download into a file");
  // A symlink planted under the partial's name is refused, never followed.
  std::string outside = s.dir.path("outside");
  cr_assert(write_file(outside, "keep me"));
  cr_assert_eq(symlink(outside.c_str(), partial_of(s, "h.bin").c_str()), 0);
  r = resume(s, "f.bin", "h.bin");
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  cr_assert(read_file(outside).value_or("") == "keep me");
  stop_cleanly(s);
}

// --retry: a connection lost mid-body is reconnected and resumed, chunk by chunk checked.
Test(resume, retry_resumes_a_download_cut_by_the_network) {
  Served s = serve(options());
  const uint64_t size = 30 * kChunk + 5;
  make_pattern(s.in_root("f.bin"), size, 31);
  FaultSpec f;
  f.cut_after = size * 2 / 5;
  f.only_connection = 0;  // the first connection is cut; the retry's goes through
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  size_t mark = s.server.stderr_text().size();
  ClientResult r = run_client(plain_args_via(s, proxy->address(), {"--retry", "2", "get", "f.bin", s.in_downloads("f.bin")}),
                              Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_complete(s, "f.bin", "f.bin");
  ASSERT_CONTAINS(r.stderr_text, "retrying in 1 s (1/2)");
  ASSERT_CONTAINS(r.stderr_text, "resuming");
  // The final line counts from the first attempt: past the 1 s pause, and not "resumed".
  size_t in = r.stderr_text.find("/f.bin  ");
  cr_assert_neq(in, std::string::npos, "%s", r.stderr_text.c_str());
  in = r.stderr_text.find(" in ", in);
  double seconds = 0.0;
  cr_assert(in != std::string::npos && std::sscanf(r.stderr_text.c_str() + in, " in %lf s", &seconds) == 1,
            "%s", r.stderr_text.c_str());
  cr_assert_geq(seconds, 1.0, "the elapsed time restarted at the retry: %s", r.stderr_text.c_str());
  ASSERT_NOT_CONTAINS(r.stderr_text, "resumed at");
  // The first get announced the whole file and was cut at 40 %; the resume's announce
  // the rest, within a chunk of it.
  uint64_t announced = body_bytes_sent(s.server.stderr_text(), mark);
  uint64_t cut = *f.cut_after;
  cr_assert(announced >= size && announced - size <= size - cut + kChunk + 4096, "%llu body bytes announced, file %llu",
            static_cast<unsigned long long>(announced), static_cast<unsigned long long>(size));
  stop_cleanly(s);
}

// A first attempt lost before any body byte has nothing to keep, and removes its empty
// partial: the retry must make its own, not write into the unlinked one and fail at
// the rename (seen under load as a handshake timeout, then "rename to ...: No such file").
Test(resume, retry_after_a_connection_lost_before_the_body_downloads_into_a_partial_of_its_own) {
  Served s = serve(options());
  const uint64_t size = 3 * kChunk + 17;
  make_pattern(s.in_root("f.bin"), size, 33);
  FaultSpec f;
  f.cut_after = 0;
  f.only_connection = 0;
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  ClientResult r = run_client(plain_args_via(s, proxy->address(), {"--retry", "1", "get", "f.bin", s.in_downloads("f.bin")}),
                              Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "retrying in 1 s (1/1)");
  cr_assert_eq(proxy->stats().accepted, 2u, "%s", r.stderr_text.c_str());
  assert_complete(s, "f.bin", "f.bin");
  stop_cleanly(s);
}

Test(resume, retry_gives_up_after_its_count_and_keeps_the_partial) {
  Served s = serve(options());
  const uint64_t size = 8 * kChunk;
  make_pattern(s.in_root("f.bin"), size, 32);
  FaultSpec f;
  f.cut_after = size / 4;  // every connection
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  ClientResult r = run_client(plain_args_via(s, proxy->address(), {"--retry", "2", "get", "f.bin", s.in_downloads("f.bin")}),
                              Millis(60000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "(1/2)");
  ASSERT_CONTAINS(r.stderr_text, "retrying in 2 s (2/2)");
  ASSERT_CONTAINS(r.stderr_text, "reactorc get -c resumes it");
  cr_assert_eq(proxy->stats().accepted, 3u, "one attempt and two retries");
  cr_assert(exists(partial_of(s, "f.bin")));
  // --retry 0: no second attempt.
  r = run_client(plain_args_via(s, proxy->address(), {"--retry", "0", "-c", "get", "f.bin", s.in_downloads("f.bin")}), Millis(60000));
  cr_assert(r.exited_with(8), "%s", r.describe().c_str());
  ASSERT_NOT_CONTAINS(r.stderr_text, "retrying");
  cr_assert_eq(proxy->stats().accepted, 4u);
  // A server never reached is not retried: the address is wrong, not the network.
  std::string closed = s.server.plain_address();
  stop_cleanly(s);
  r = run_client(plain_args_via(s, closed, {"--retry", "3", "get", "f.bin", s.in_downloads("g.bin")}), Millis(60000));
  cr_assert(r.exited_with(3), "%s", r.describe().c_str());
  ASSERT_NOT_CONTAINS(r.stderr_text, "retrying");
}
