// Integration tests of resumed uploads (reactorc put -c; reactor-protocol(7), put with
// "resume"): a real writable reactord, real reactorc processes, partials planted by the
// test under the name the protocol derives from the file, or left by an upload cut short
// (kill -9 of either side, a proxy that stops forwarding), and RawClient for the frames
// reactorc never sends wrong. The bytes a resume sends are counted by a proxy: only what
// the server does not already hold, byte for byte the client's, may go again.

#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
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
#include "tests/support/raw_client.h"
#include "tests/support/server.h"

using namespace testsupport;

namespace {

constexpr uint64_t kChunk = 1 << 20;

ServeOptions writable(std::vector<std::string> more = {}) {
  ServeOptions o;
  o.prefix = "upload-resume-test";
  o.extra_args = {"-w"};
  o.extra_args.insert(o.extra_args.end(), more.begin(), more.end());
  o.files = {{"health.txt", kHealthText}};
  return o;
}

std::string raw_hex_to_bytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// ".NAME.<24 hex>.resume", from reactor-protocol(7)'s binding, computed here on its own:
// the first 12 bytes of SHA-256(uint64be(size) || root), in hex.
std::string resume_name(const std::string& name, uint64_t size, const std::string& root_hex) {
  std::string key;
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>((size >> shift) & 0xff));
  key += raw_hex_to_bytes(root_hex);
  return "." + name + "." + sha256_hex(key).substr(0, 24) + ".resume";
}

// The partial the server keeps for uploading `local` (a file in the test's directory) to
// `remote` (a name in the root).
std::string kept_partial(const Served& s, const std::string& remote, const std::string& local) {
  uint64_t size = file_size(local).value_or(0);
  return s.in_root(resume_name(remote, size, tree_root_file_hex(local).value_or("")));
}

Proxy proxy_to(const Served& s, const FaultSpec& f = {}) {
  std::string err;
  auto proxy = Proxy::start(s.server.plain_address(), f, &err);
  cr_assert(proxy.has_value(), "%s", err.c_str());
  return std::move(*proxy);
}

// put -c through a counting proxy: the client's bytes on the wire.
uint64_t resume_put(const Served& s, const std::string& local, const std::string& remote) {
  Proxy counter = proxy_to(s);
  ClientResult r = run_client(plain_args_via(s, counter.address(), {"-c", "put", local, remote}), Millis(120000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string why;
  cr_assert(files_equal(local, s.in_root(remote), &why), "%s: %s", remote.c_str(), why.c_str());
  cr_assert_not(exists(kept_partial(s, remote, local)), "the kept partial of %s is left", remote.c_str());
  return counter.stats().c2s_bytes;
}

// Frames around the body (handshake, put, data, end): well under this.
constexpr uint64_t kFrames = 4096;

void assert_sent_about(uint64_t sent, uint64_t body, const char* what) {
  cr_assert(sent >= body && sent <= body + kFrames, "%s: %llu bytes on the wire for a body of %llu", what,
            static_cast<unsigned long long>(sent), static_cast<unsigned long long>(body));
}

}  // namespace

TestSuite(upload_resume, .timeout = 240);

Test(upload_resume, a_kept_partial_of_every_length_is_resumed_sending_only_the_rest) {
  Served s = serve(writable());
  const uint64_t size = 3 * kChunk + 12345;
  std::string local = s.in_dir("src.bin");
  make_pattern(local, size, 41);
  const std::string content = pattern_bytes(0, size, 41);
  int n = 0;
  for (uint64_t held : {uint64_t{0}, uint64_t{1}, kChunk - 1, kChunk, kChunk + 1, size - 1, size}) {
    std::string remote = "r" + std::to_string(n++) + ".bin";
    cr_assert(write_file(kept_partial(s, remote, local), content.substr(0, held)));
    uint64_t kept = held == size ? size : held / kChunk * kChunk;
    assert_sent_about(resume_put(s, local, remote), size - kept, remote.c_str());
  }
  stop_cleanly(s);
}

Test(upload_resume, a_damaged_kept_chunk_is_sent_again_and_the_rest_kept) {
  Served s = serve(writable());
  const uint64_t size = 4 * kChunk;
  std::string local = s.in_dir("src.bin");
  make_pattern(local, size, 42);
  std::string held = pattern_bytes(0, 3 * kChunk, 42);
  held[kChunk + 77] ^= 0x01;  // chunk 1 of the three held
  cr_assert(write_file(kept_partial(s, "f.bin", local), held));
  // Chunk 0 is kept; 1 differs, so 1, 2 and 3 go.
  assert_sent_about(resume_put(s, local, "f.bin"), 3 * kChunk, "f.bin");
  stop_cleanly(s);
}

Test(upload_resume, another_file_does_not_find_the_partial) {
  Served s = serve(writable());
  const uint64_t size = 2 * kChunk;
  std::string old_version = s.in_dir("old.bin");
  std::string local = s.in_dir("new.bin");
  make_pattern(old_version, size, 43);
  make_pattern(local, size, 44);
  std::string planted = kept_partial(s, "f.bin", old_version);
  cr_assert(write_file(planted, pattern_bytes(0, kChunk, 43)));
  assert_sent_about(resume_put(s, local, "f.bin"), size, "f.bin");
  cr_assert(exists(planted), "another file's partial is not this upload's to remove");
  stop_cleanly(s);
}

Test(upload_resume, killed_at_10_50_and_99_percent_either_side_then_resumed) {
  Served s = serve(writable());
  const uint64_t size = 200 * kChunk;
  std::string local = s.in_dir("big.bin");
  make_pattern(local, size, 45);
  int round = 0;
  for (bool kill_server : {false, true}) {
    for (double fraction : {0.10, 0.50, 0.99}) {
      std::string remote = "k" + std::to_string(round++) + ".bin";
      std::string partial = kept_partial(s, remote, local);
      uint64_t at = static_cast<uint64_t>(static_cast<double>(size) * fraction);
      FaultSpec f;
      f.c2s_stall_after = at;  // the proxy stops taking the client's bytes here
      std::optional<Proxy> proxy = proxy_to(s, f);
      Process client = spawn_client(s, plain_args_via(s, proxy->address(), {"--retry", "0", "-c", "put", local, remote}));
      bool reached = wait_until(
          [&] {
            std::optional<uint64_t> held = file_size(partial);
            return held && *held + kFrames >= at;
          },
          Millis(60000));
      cr_assert(reached, "%s: the partial never reached %llu bytes: %s", remote.c_str(),
                static_cast<unsigned long long>(at), client.stderr_text().c_str());
      if (kill_server) {
        s.server.process().kill_and_wait();
        client.kill_and_wait();
        ServerOptions again;
        again.root = s.root;
        again.secret_file = s.secret.path;
        again.extra_args = {"-w"};
        std::string err;
        auto restarted = ServerProcess::start(again, &err);
        cr_assert(restarted.has_value(), "%s", err.c_str());
        s.server = std::move(*restarted);
      } else {
        size_t before = count_in(s.server.stderr_text(), "mid-upload");
        ExitStatus st = client.kill_and_wait();
        cr_assert(st.killed_by(SIGKILL), "%s", st.describe().c_str());
        proxy.reset();  // the proxy's end of the connection goes with the client
        cr_assert(wait_until([&] { return count_in(s.server.stderr_text(), "mid-upload") > before; }, Millis(10000)),
                  "%s", s.server.stderr_text().c_str());
        ASSERT_CONTAINS(s.server.stderr_text(), "what arrived is kept for a resume");
      }
      uint64_t held = file_size(partial).value_or(0);
      cr_assert(held + kFrames >= at, "%s: %llu held", remote.c_str(), static_cast<unsigned long long>(held));
      uint64_t missing = size - held;
      uint64_t sent = resume_put(s, local, remote);
      cr_assert(sent >= missing && sent <= missing + kChunk + kFrames, "%s: %llu bytes sent for %llu missing",
                remote.c_str(), static_cast<unsigned long long>(sent), static_cast<unsigned long long>(missing));
    }
  }
  stop_cleanly(s);
}

Test(upload_resume, two_resumes_of_one_file_cannot_interleave) {
  Served s = serve(writable());
  const uint64_t size = 16 * kChunk;
  std::string local = s.in_dir("src.bin");
  make_pattern(local, size, 46);
  FaultSpec f;
  f.c2s_stall_after = size / 4;
  std::optional<Proxy> proxy = proxy_to(s, f);
  Process first = spawn_client(s, plain_args_via(s, proxy->address(), {"-c", "put", local, "f.bin"}));
  std::string partial = kept_partial(s, "f.bin", local);
  cr_assert(wait_until([&] { return file_size(partial).value_or(0) + kFrames >= size / 4; }, Millis(60000)),
            "%s", first.stderr_text().c_str());
  ClientResult second = s.server.run_plain_client({"--retry", "0", "-c", "put", local, "f.bin"});
  cr_assert(second.exited_with(5), "%s", second.describe().c_str());
  ASSERT_CONTAINS(second.stderr_text, "in_progress");
  first.kill_and_wait();
  proxy.reset();
  // Once the first is gone, its lock is too (the server notices the closed connection).
  cr_assert(s.server.wait_for_stderr("kept for a resume", Millis(10000)), "%s", s.server.stderr_text().c_str());
  resume_put(s, local, "f.bin");
  stop_cleanly(s);
}

Test(upload_resume, a_partial_past_its_time_is_swept_at_start_and_not_used) {
  std::string err;
  Served s = serve(writable({"--partial-ttl", "60"}));
  const uint64_t size = 2 * kChunk;
  std::string local = s.in_dir("src.bin");
  make_pattern(local, size, 47);
  std::string partial = kept_partial(s, "f.bin", local);
  cr_assert(write_file(partial, pattern_bytes(0, kChunk, 47)));
  set_mtime(partial, time(nullptr) - 3600);
  // Used at once it is too old already: everything is sent again.
  assert_sent_about(resume_put(s, local, "f.bin"), size, "f.bin");
  // One planted before a start, with a temporary of a crashed upload, is swept then.
  ExitStatus st = s.server.stop(Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  cr_assert(write_file(partial, pattern_bytes(0, kChunk, 47)));
  set_mtime(partial, time(nullptr) - 3600);
  cr_assert(make_dirs(s.in_root("sub"), &err), "%s", err.c_str());
  std::string debris = s.in_root("sub/.g.bin.Ab12Cd.part");
  cr_assert(write_file(debris, "half"));
  set_mtime(debris, time(nullptr) - 7200);
  std::string fresh = s.in_root("sub/.h.bin.Zz99Yy.part");  // recent: it may still be written
  cr_assert(write_file(fresh, "busy"));
  ServerOptions again;
  again.root = s.root;
  again.secret_file = s.secret.path;
  again.extra_args = {"-w", "--partial-ttl", "60"};
  auto restarted = ServerProcess::start(again, &err);
  cr_assert(restarted.has_value(), "%s", err.c_str());
  s.server = std::move(*restarted);
  cr_assert(s.server.wait_for_stderr("removed 2 partial upload(s)", Millis(10000)), "%s",
            s.server.stderr_text().c_str());
  cr_assert_not(exists(partial));
  cr_assert_not(exists(debris));
  cr_assert(exists(fresh));
  stop_cleanly(s);
}

Test(upload_resume, refusals_create_nothing_and_mismatches_remove_what_was_kept) {
  Served s = serve(writable({"--max-upload", "1M"}));
  std::string local = s.in_dir("big.bin");
  make_pattern(local, 2 * kChunk, 48);
  ClientResult r = s.server.run_plain_client({"-c", "put", local, "big.bin"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "too_large");
  cr_assert_not(exists(kept_partial(s, "big.bin", local)), "a refused put -c created its partial");
  std::string small = s.in_dir("small.bin");
  make_pattern(small, 1000, 49);
  cr_assert(write_file(s.in_root("there.bin"), "old"));
  r = s.server.run_plain_client({"-c", "put", small, "there.bin"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  cr_assert_not(exists(kept_partial(s, "there.bin", small)));

  // A raw client lying about the data: the verdict is digest_mismatch and what the
  // server kept goes with it.
  std::string root = tree_root_file_hex(small).value_or("");
  std::string partial = kept_partial(s, "lie.bin", small);
  RawClient c = connect_authenticated(s, 2);
  cr_assert(c.send_frame(R"({"type":"put","path":"lie.bin","size":1000,"resume":true,"root":")" + root + "\"}"));
  Frame ready = expect_frame(c, "put_ready");
  cr_assert_eq(ready.number_field("offset").value_or(-1), 0.0);
  cr_assert(c.send_raw(encode_frame(R"({"type":"data","offset":0,"body":1000})", std::string(1000, 'x'))));
  cr_assert(c.send_frame("{\"type\":\"end\",\"root\":\"" + root + "\"}"));
  Frame verdict = expect_frame(c, "error");
  ASSERT_STR_EQ(verdict.code(), "digest_mismatch");
  cr_assert_not(exists(partial));
  cr_assert_not(exists(s.in_root("lie.bin")));

  // The data's offset must be what the server holds or a chunk boundary below it, and a
  // resume must name its root.
  cr_assert(write_file(partial, pattern_bytes(0, 1000, 49)));  // all of it held
  cr_assert(c.send_frame(R"({"type":"put","path":"lie.bin","size":1000,"resume":true,"root":")" + root + "\"}"));
  ready = expect_frame(c, "put_ready");
  cr_assert_eq(ready.number_field("offset").value_or(-1), 1000.0);
  cr_assert_eq(ready.number_field("count").value_or(-1), 1.0);
  cr_assert_eq(ready.body.size(), 32u);
  cr_assert(c.send_frame(R"({"type":"data","offset":500,"body":500})"));
  Frame fatal = expect_frame(c, "error");
  ASSERT_STR_EQ(fatal.code(), "bad_size");
  RawClient d = connect_authenticated(s, 2);
  cr_assert(d.send_frame(R"({"type":"put","path":"x.bin","size":1,"resume":true})"));
  ASSERT_STR_EQ(expect_frame(d, "error").code(), "missing_field");
  stop_cleanly(s);
}

// --retry with put -c: the upload stalls (the proxy takes no more), the client gives up on
// the silent server after -t, reconnects and sends only what the server did not keep.
Test(upload_resume, retry_continues_an_upload_from_what_the_server_kept) {
  Served s = serve(writable());
  const uint64_t size = 24 * kChunk;
  std::string local = s.in_dir("src.bin");
  make_pattern(local, size, 50);
  FaultSpec f;
  f.c2s_stall_after = size / 2;
  f.only_connection = 0;
  Proxy proxy = proxy_to(s, f);
  ClientResult r = run_client(plain_args_via(s, proxy.address(), {"-t", "2", "--retry", "1", "-c", "put", local, "f.bin"}),
                              Millis(120000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "retrying in 1 s (1/1)");
  ASSERT_CONTAINS(r.stderr_text, "resuming the upload");
  // The first connection, silent behind the proxy, gave way to the retry.
  ASSERT_CONTAINS(s.server.stderr_text(), "a newer resume of the same upload took over");
  std::string why;
  cr_assert(files_equal(local, s.in_root("f.bin"), &why), "%s", why.c_str());
  uint64_t sent = proxy.stats().c2s_bytes;
  cr_assert(sent <= size + size / 2 + kChunk + 2 * kFrames, "%llu bytes for a file of %llu",
            static_cast<unsigned long long>(sent), static_cast<unsigned long long>(size));
  stop_cleanly(s);
}

Test(upload_resume, kept_partials_are_never_listed_served_or_written) {
  Served s = serve(writable());
  std::string local = s.in_dir("src.bin");
  make_pattern(local, 3000, 51);
  std::string partial = kept_partial(s, "f.bin", local);
  std::string name = partial.substr(partial.rfind('/') + 1);
  cr_assert(write_file(partial, pattern_bytes(0, 1000, 51)));
  ClientResult r = s.server.run_plain_client({"ls"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_NOT_CONTAINS(r.stdout_text, ".resume");
  r = s.server.run_plain_client({"get", name, s.in_downloads("x")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "not_found");
  r = s.server.run_plain_client({"-f", "put", local, name});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "forbidden");
  cr_assert(read_file(partial).value_or("") == pattern_bytes(0, 1000, 51), "the partial was written through");
  stop_cleanly(s);
}
