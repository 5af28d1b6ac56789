// Integration tests of uploads (reactorc put, reactor-protocol(7) "put"), end to end: a
// real reactord on loopback, real reactorc processes, and RawClient for what reactorc
// never sends (a wrong digest, a body cut short, frames out of order). After every
// failure the target must hold what it held before and no temporary may be left.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

namespace {

constexpr uint64_t kChunk = 128 * 1024;  // the client's read size (BodySource::kChunk)

ServeOptions writable() {
  ServeOptions o;
  o.prefix = "upload-test";
  o.extra_args = {"-w"};
  return o;
}

// The names in DIR, sorted, space-separated: no ".*.part" may be among them.
std::string names_in(const std::string& dir) {
  std::string err;
  auto listed = list_dir(dir, &err);
  cr_assert(listed.has_value(), "%s", err.c_str());
  std::vector<std::string> names = *listed;
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

void assert_same_bytes(const std::string& a, const std::string& b) {
  std::string why;
  cr_assert(files_equal(a, b, &why), "%s vs %s: %s", a.c_str(), b.c_str(), why.c_str());
}

std::string put_header(const std::string& path, uint64_t size, const std::string& extra = "") {
  return "{\"type\":\"put\",\"path\":" + json_quote(path) + ",\"size\":" + std::to_string(size) + extra + "}";
}

std::string data_header(uint64_t length) {
  return length == 0 ? std::string("{\"type\":\"data\"}")
                     : "{\"type\":\"data\",\"body\":" + std::to_string(length) + "}";
}

std::string end_header(const std::string& root_hex) { return "{\"type\":\"end\",\"root\":\"" + root_hex + "\"}"; }

// A version-2 connection that has its put accepted.
RawClient start_raw_put(const Served& s, const std::string& path, uint64_t size, const std::string& extra = "") {
  RawClient c = connect_authenticated(s, 2);
  cr_assert(c.send_frame(put_header(path, size, extra)));
  Frame ready = expect_frame(c, "put_ready");
  ASSERT_STR_EQ(ready.string_field("path").value_or(""), path);
  cr_assert_eq(ready.number_field("offset").value_or(-1), 0.0);
  return c;
}

// The error that answers a request (per-request: the connection stays usable).
void expect_refusal(RawClient& c, const std::string& code) {
  Frame f = expect_frame(c, "error");
  ASSERT_STR_EQ(f.code(), code);
  cr_assert(!f.string_field("message").value_or("").empty(), "no message: %s", f.header.c_str());
}

void expect_ping_answered(RawClient& c) {
  cr_assert(c.send_frame(R"({"type":"ping","token":"after"})"));
  Frame pong = expect_frame(c, "pong");
  ASSERT_STR_EQ(pong.string_field("token").value_or(""), "after");
}

void expect_fatal(RawClient& c, const std::string& code) {
  Frame f = expect_frame(c, "error");
  ASSERT_STR_EQ(f.code(), code);
  cr_assert(c.read_until_closed(Millis(10000)), "the server kept the connection open after %s", code.c_str());
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  cr_assert_eq(lstat(path.c_str(), &st), 0, "stat %s: %s", path.c_str(), std::strerror(errno));
  return st.st_mode;
}

mode_t current_umask() {
  mode_t mask = umask(0);
  umask(mask);
  return mask;
}

}  // namespace

// Every test in this binary has the same timeout: with --jobs=2, suites of different
// timeouts made Criterion's runner leak under LeakSanitizer.
TestSuite(upload, .timeout = 120);

Test(upload, sizes_around_the_chunk_size_arrive_byte_for_byte) {
  Served s = serve(writable());
  const std::vector<uint64_t> sizes = {0, 1, kChunk - 1, kChunk, kChunk + 1, 3 * 1024 * 1024 + 17};
  std::string want;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string name = "u" + std::to_string(sizes[i]) + ".bin";
    make_pattern(s.in_dir(name), sizes[i], 200 + i);
    ClientResult r = s.server.run_client({"put", s.in_dir(name)}, Millis(60000));
    cr_assert(r.exited_with(0), "put %s: %s", name.c_str(), r.describe().c_str());
    assert_same_bytes(s.in_dir(name), s.in_root(name));
    // The server's default mode, and the time it was stored, not the source's.
    cr_assert_eq(mode_of(s.in_root(name)) & 07777, 0666 & ~current_umask(), "mode %o",
                 mode_of(s.in_root(name)) & 07777);
    struct stat st {};
    cr_assert_eq(stat(s.in_root(name).c_str(), &st), 0);
    cr_assert_neq(st.st_mtim.tv_sec, kMtime);
    want += name + " ";
  }
  ASSERT_STR_EQ(names_in(s.root), want);
  // And back: what was stored is what a get returns, verified.
  ClientResult r = s.server.run_client({"get", "u3145745.bin", s.in_downloads("back.bin")}, Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_same_bytes(s.in_dir("u3145745.bin"), s.in_downloads("back.bin"));
  stop_cleanly(s);
}

Test(upload, remote_names_follow_the_operands) {
  Served s = serve(writable());
  cr_assert(make_dirs(s.in_root("docs")));
  cr_assert(write_file(s.in_root("docs/.keep"), ""));
  cr_assert(write_file(s.in_dir("notes.txt"), "notes\n"));
  // No REMOTE: the last component, in the root. REMOTE ending in '/': inside it.
  ClientResult r = s.server.run_client({"put", s.in_dir("notes.txt")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  r = s.server.run_client({"put", s.in_dir("notes.txt"), "docs/"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  r = s.server.run_client({"put", s.in_dir("notes.txt"), "docs/renamed.txt"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(names_in(s.root), "docs notes.txt ");
  ASSERT_STR_EQ(names_in(s.in_root("docs")), ".keep notes.txt renamed.txt ");
  ASSERT_STR_EQ(read_file(s.in_root("docs/renamed.txt")).value_or(""), "notes\n");
  stop_cleanly(s);
}

Test(upload, a_read_only_server_refuses_before_any_byte) {
  ServeOptions o = writable();
  o.extra_args.clear();
  Served s = serve(o);
  cr_assert(write_file(s.in_dir("a.txt"), "a\n"));
  ClientResult r = s.server.run_client({"put", s.in_dir("a.txt")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "read_only");
  ASSERT_CONTAINS(r.stderr_text, "-w");
  ASSERT_STR_EQ(names_in(s.root), "");
  // Over the wire: refused instead of put_ready, and the connection goes on.
  RawClient c = connect_authenticated(s, 2);
  cr_assert(c.send_frame(put_header("b.txt", 2)));
  expect_refusal(c, "read_only");
  expect_ping_answered(c);
  ASSERT_STR_EQ(names_in(s.root), "");
  stop_cleanly(s);
}

Test(upload, an_existing_file_is_replaced_only_with_force) {
  ServeOptions o = writable();
  o.files = {{"a.txt", "old\n"}};
  Served s = serve(o);
  cr_assert(write_file(s.in_dir("a.txt"), "new\n"));
  ClientResult r = s.server.run_client({"put", s.in_dir("a.txt")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "exists");
  ASSERT_CONTAINS(r.stderr_text, "--force");
  ASSERT_STR_EQ(read_file(s.in_root("a.txt")).value_or(""), "old\n");
  r = s.server.run_client({"put", "-f", s.in_dir("a.txt")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(read_file(s.in_root("a.txt")).value_or(""), "new\n");
  ASSERT_STR_EQ(names_in(s.root), "a.txt ");
  stop_cleanly(s);
}

Test(upload, bad_targets_are_refused_and_nothing_is_created) {
  ServeOptions o = writable();
  o.files = {{"file.txt", "file\n"}};
  o.secret_in_root = true;
  Served s = serve(o);
  cr_assert(make_dirs(s.in_root("dir")));
  cr_assert(write_file(s.in_root("dir/inside.txt"), "inside\n"));
  cr_assert(make_dirs(s.in_dir("outside")));
  cr_assert_eq(symlink(s.in_dir("outside").c_str(), s.in_root("link-out").c_str()), 0);
  cr_assert_eq(symlink("../outside", s.in_root("link-up").c_str()), 0);
  cr_assert_eq(symlink("dir", s.in_root("link-in").c_str()), 0);
  RawClient c = connect_authenticated(s, 2);
  struct Case {
    std::string path;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"dir", "is_directory"},           // a directory, even with force
      {"", "is_directory"},              // the root
      {".", "is_directory"},
      {"missing/x.txt", "not_found"},    // the parent must exist
      {"file.txt/x.txt", "not_directory"},
      {"../x.txt", "forbidden"},
      {"/etc/x.txt", "forbidden"},
      {"secret", "forbidden"},           // the server's own secret, force or not
      {".x.txt.ABC123.part", "forbidden"},  // a temporary's name
      {"dir/.x.txt.ABC123.part", "forbidden"},
      {"link-out/x.txt", "forbidden"},   // a directory link that leads outside
      {"link-up/x.txt", "forbidden"},
      {std::string(256, 'n'), "bad_path"},
  };
  for (const Case& k : cases) {
    cr_assert(c.send_frame(put_header(k.path, 3, ",\"force\":true")));
    Frame f = expect_frame(c, "error");
    cr_assert(f.code() == k.code, "put \"%s\": expected %s, got %s", k.path.c_str(), k.code.c_str(), f.header.c_str());
  }
  expect_ping_answered(c);
  ASSERT_STR_EQ(names_in(s.root), "dir file.txt link-in link-out link-up secret ");
  ASSERT_STR_EQ(names_in(s.in_root("dir")), "inside.txt ");
  ASSERT_STR_EQ(names_in(s.in_dir("outside")), "");
  // A directory link that stays inside the root is followed, as for get.
  cr_assert(c.send_frame(put_header("link-in/via.txt", 2)));
  expect_frame(c, "put_ready");
  cr_assert(c.send_frame(data_header(2), "ok"));
  cr_assert(c.send_frame(end_header(tree_root_hex("ok"))));
  expect_frame(c, "put_done");
  ASSERT_STR_EQ(read_file(s.in_root("dir/via.txt")).value_or(""), "ok");
  stop_cleanly(s);
}

Test(upload, size_and_space_limits_refuse_before_any_byte) {
  ServeOptions o = writable();
  o.extra_args = {"-w", "--max-upload", "1M"};
  Served s = serve(o);
  RawClient c = connect_authenticated(s, 2);
  cr_assert(c.send_frame(put_header("big.bin", (1u << 20) + 1)));
  expect_refusal(c, "too_large");
  cr_assert(c.send_frame(put_header("ok.bin", 1u << 20)));
  expect_frame(c, "put_ready");
  c.close();

  // A reserve larger than any disk: every upload is refused for space.
  ServeOptions full = writable();
  full.extra_args = {"-w", "--keep-free", "1E"};
  Served t = serve(full);
  cr_assert(write_file(t.in_dir("a.txt"), "a\n"));
  ClientResult r = t.server.run_client({"put", t.in_dir("a.txt")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "no_space");
  ASSERT_CONTAINS(r.stderr_text, "kept in reserve");
  ASSERT_STR_EQ(names_in(t.root), "");
  stop_cleanly(t);
  // The connection that was accepted and dropped left nothing either.
  cr_assert(wait_until([&] { return names_in(s.root).empty(); }, Millis(5000)), "left: %s", names_in(s.root).c_str());
  stop_cleanly(s);
}

Test(upload, preserve_sends_mode_and_mtime_without_special_bits) {
  Served s = serve(writable());
  cr_assert(write_file_with_mode(s.in_dir("tool.sh"), "#!/bin/sh\n", 0750));
  set_mtime(s.in_dir("tool.sh"), kMtime);
  ClientResult r = s.server.run_client({"put", "-p", s.in_dir("tool.sh")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_eq(mode_of(s.in_root("tool.sh")) & 07777, 0750u);
  struct stat st {};
  cr_assert_eq(stat(s.in_root("tool.sh").c_str(), &st), 0);
  cr_assert_eq(st.st_mtim.tv_sec, kMtime);
  // Set-user-ID and sticky bits are not the client's to give.
  RawClient c = start_raw_put(s, "suid", 2, ",\"mode\":" + std::to_string(04755 | 01000) + ",\"mtime\":1");
  cr_assert(c.send_frame(data_header(2), "hi"));
  cr_assert(c.send_frame(end_header(tree_root_hex("hi"))));
  expect_frame(c, "put_done");
  cr_assert_eq(mode_of(s.in_root("suid")) & 07777, 0755u);
  stop_cleanly(s);
}

Test(upload, a_planted_symlink_or_hard_link_is_replaced_not_written_through) {
  Served s = serve(writable());
  cr_assert(write_file(s.in_dir("outside.txt"), "outside\n"));
  cr_assert_eq(symlink(s.in_dir("outside.txt").c_str(), s.in_root("link.txt").c_str()), 0);
  cr_assert_eq(link(s.in_dir("outside.txt").c_str(), s.in_root("hard.txt").c_str()), 0);
  cr_assert(write_file(s.in_dir("new.txt"), "new\n"));
  // Without force, a link is an existing name like any other.
  ClientResult r = s.server.run_client({"put", s.in_dir("new.txt"), "link.txt"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  for (const char* name : {"link.txt", "hard.txt"}) {
    r = s.server.run_client({"put", "-f", s.in_dir("new.txt"), name});
    cr_assert(r.exited_with(0), "%s: %s", name, r.describe().c_str());
    cr_assert(S_ISREG(mode_of(s.in_root(name))), "%s is not a regular file now", name);
    ASSERT_STR_EQ(read_file(s.in_root(name)).value_or(""), "new\n");
  }
  ASSERT_STR_EQ(read_file(s.in_dir("outside.txt")).value_or(""), "outside\n");
  struct stat st {};
  cr_assert_eq(stat(s.in_dir("outside.txt").c_str(), &st), 0);
  cr_assert_eq(st.st_nlink, 1u, "the outside file still has a link in the root");
  stop_cleanly(s);
}

Test(upload, a_wrong_digest_stores_nothing_and_the_connection_goes_on) {
  ServeOptions o = writable();
  o.files = {{"a.txt", "old\n"}};
  Served s = serve(o);
  RawClient c = start_raw_put(s, "a.txt", 4, ",\"force\":true");
  cr_assert(c.send_frame(data_header(4), "new\n"));
  cr_assert(c.send_frame(end_header(tree_root_hex("other"))));
  expect_refusal(c, "digest_mismatch");
  expect_ping_answered(c);
  ASSERT_STR_EQ(read_file(s.in_root("a.txt")).value_or(""), "old\n");
  ASSERT_STR_EQ(names_in(s.root), "a.txt ");
  // The same connection can then store it properly.
  cr_assert(c.send_frame(put_header("a.txt", 4, ",\"force\":true")));
  expect_frame(c, "put_ready");
  cr_assert(c.send_frame(data_header(4), "new\n"));
  cr_assert(c.send_frame(end_header(tree_root_hex("new\n"))));
  Frame done = expect_frame(c, "put_done");
  ASSERT_STR_EQ(done.string_field("root").value_or(""), tree_root_hex("new\n"));
  cr_assert_eq(done.number_field("size").value_or(-1), 4.0);
  ASSERT_STR_EQ(read_file(s.in_root("a.txt")).value_or(""), "new\n");
  stop_cleanly(s);
}

Test(upload, a_connection_lost_mid_body_stores_nothing) {
  ServeOptions o = writable();
  o.files = {{"a.bin", "old\n"}, {"health.txt", kHealthText}};
  Served s = serve(o);
  const uint64_t size = 4 * 1024 * 1024;
  std::string body = pattern_bytes(0, size, 7);
  for (bool reset : {false, true}) {
    RawClient c = start_raw_put(s, "a.bin", size, ",\"force\":true");
    cr_assert(c.send_raw(encode_frame(data_header(size), body.substr(0, size / 2))));
    // The half is on the disk, hidden, while the connection lives.
    if (reset) c.abort(); else c.close();
    cr_assert(wait_until([&] { return names_in(s.root) == "a.bin health.txt "; }, Millis(5000)), "left: %s",
              names_in(s.root).c_str());
    ASSERT_STR_EQ(read_file(s.in_root("a.bin")).value_or(""), "old\n");
  }
  cr_assert(s.server.wait_for_stderr("went away mid-upload; nothing stored", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  cr_assert(s.server.wait_for_stderr("connection lost mid-upload; nothing stored", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  assert_serves(s, s.downloads);
  stop_cleanly(s);
}

Test(upload, frames_out_of_order_are_fatal) {
  Served s = serve(writable());
  {
    // A request in the middle of an upload.
    RawClient c = start_raw_put(s, "a", 2);
    cr_assert(c.send_frame(R"({"type":"ping"})"));
    expect_fatal(c, "unexpected_message");
  }
  {
    // The end before the data.
    RawClient c = start_raw_put(s, "a", 2);
    cr_assert(c.send_frame(end_header(tree_root_hex("hi"))));
    expect_fatal(c, "unexpected_message");
  }
  {
    // Data of another length than announced.
    RawClient c = start_raw_put(s, "a", 2);
    cr_assert(c.send_frame(data_header(3), "abc"));
    expect_fatal(c, "bad_size");
  }
  {
    // Data or end outside an upload.
    RawClient c = connect_authenticated(s, 2);
    cr_assert(c.send_frame(data_header(1), "x"));
    expect_fatal(c, "unexpected_message");
  }
  {
    // A body on a frame that may not carry one.
    RawClient c = connect_authenticated(s, 2);
    cr_assert(c.send_frame(put_header("a", 2).insert(put_header("a", 2).size() - 1, ",\"body\":2"), "hi"));
    expect_fatal(c, "bad_size");
  }
  ASSERT_STR_EQ(names_in(s.root), "");
  stop_cleanly(s);
}

Test(upload, version_1_connections_cannot_put) {
  Served s = serve(writable());
  RawClient c = connect_authenticated(s, 1);
  cr_assert(c.send_frame(put_header("a", 2)));
  Frame f = expect_frame(c, "error");
  ASSERT_STR_EQ(f.code(), "unexpected_message");
  ASSERT_CONTAINS(f.string_field("message").value_or(""), "version 2");
  ASSERT_STR_EQ(names_in(s.root), "");
  stop_cleanly(s);
}

Test(upload, requests_pipelined_after_the_end_are_answered_after_put_done) {
  Served s = serve(writable());
  RawClient c = start_raw_put(s, "a.txt", 2);
  cr_assert(c.send_raw(encode_frame(data_header(2), "hi") + encode_frame(end_header(tree_root_hex("hi"))) +
                       encode_frame(R"({"type":"stat","path":"a.txt"})")));
  expect_frame(c, "put_done");
  Frame st = expect_frame(c, "stat_ok");
  cr_assert_eq(st.number_field("size").value_or(-1), 2.0);
  stop_cleanly(s);
}

Test(upload, temporaries_are_never_listed_served_or_described) {
  ServeOptions o = writable();
  o.files = {{".a.bin.Qx9Z2k.part", "half"}, {"a.bin", "whole"}};
  Served s = serve(o);
  ClientResult r = s.server.run_client({"ls"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(r.stdout_text.find(".part") == std::string::npos, "listed: %s", r.stdout_text.c_str());
  ASSERT_CONTAINS(r.stdout_text, "a.bin");
  r = s.server.run_client({"get", ".a.bin.Qx9Z2k.part", s.in_downloads("x")});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "not_found");
  r = s.server.run_client({"stat", ".a.bin.Qx9Z2k.part"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "not_found");
  // A name that only resembles one is an ordinary file.
  cr_assert(write_file(s.in_root(".a.bin.Qx9Z2.part"), "five"));
  r = s.server.run_client({"stat", ".a.bin.Qx9Z2.part"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  stop_cleanly(s);
}

Test(upload, concurrent_puts_to_one_name_leave_one_whole_file) {
  Served s = serve(writable());
  const int kPuts = 10;
  const uint64_t size = 2 * 1024 * 1024 + 3;
  std::set<std::string> digests;
  auto batch = ClientBatch::create();
  cr_assert(batch.has_value());
  for (int i = 0; i < kPuts; ++i) {
    std::string local = s.in_dir("v" + std::to_string(i));
    make_pattern(local, size, 1000 + i);
    digests.insert(sha256_file_hex(local).value_or(""));
    cr_assert(batch->start(s.server.client_args({"put", "-f", local, "same.bin"})).has_value());
  }
  std::vector<ClientResult> results = batch->wait_all(Millis(100000));
  for (const ClientResult& r : results) cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(names_in(s.root), "same.bin ");
  std::string got = sha256_file_hex(s.in_root("same.bin")).value_or("?");
  cr_assert(digests.count(got) == 1, "same.bin is none of the uploads: %s", got.c_str());
  stop_cleanly(s);
}

Test(upload, a_get_during_a_put_sees_the_whole_old_file_then_the_whole_new_one) {
  ServeOptions o = writable();
  Served s = serve(o);
  const uint64_t size = 1024 * 1024;
  make_pattern(s.in_root("f.bin"), size, 1);
  make_pattern(s.in_dir("old.bin"), size, 1);
  std::string body = pattern_bytes(0, size, 2);
  RawClient c = start_raw_put(s, "f.bin", size, ",\"force\":true");
  cr_assert(c.send_raw(encode_frame(data_header(size), body.substr(0, size / 2))));
  ClientResult r = s.server.run_client({"get", "f.bin", s.in_downloads("during")}, Millis(30000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_same_bytes(s.in_downloads("during"), s.in_dir("old.bin"));
  cr_assert(c.send_raw(body.substr(size / 2)));
  cr_assert(c.send_frame(end_header(tree_root_hex(body))));
  expect_frame(c, "put_done");
  r = s.server.run_client({"get", "f.bin", s.in_downloads("after")}, Millis(30000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_STR_EQ(read_file(s.in_downloads("after")).value_or(""), body);
  stop_cleanly(s);
}

// ENOSPC for real: a small tmpfs, filled up behind the server's back once it has
// accepted the upload. Needs CAP_SYS_ADMIN (root, outside a restricted container).
Test(upload, a_disk_that_fills_up_mid_body_is_no_space_and_stores_nothing) {
  Served s = serve(writable());
  std::string mnt = s.in_dir("small");
  cr_assert_eq(mkdir(mnt.c_str(), 0755), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=8m") != 0)
    cr_skip_test("cannot mount a tmpfs here (%s): needs root with CAP_SYS_ADMIN", std::strerror(errno));
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  // The served root is a directory inside the tmpfs: a second server for it.
  cr_assert_eq(mkdir((mnt + "/root").c_str(), 0755), 0);
  cr_assert(write_file(mnt + "/root/keep.bin", "old\n"));
  ServerOptions so;
  so.root = mnt + "/root";
  so.secret_file = s.secret.path;
  so.extra_args = {"-w", "--keep-free", "0"};
  std::string err;
  std::optional<ServerProcess> small = ServerProcess::start(so, &err);
  cr_assert(small.has_value(), "%s", err.c_str());
  const uint64_t size = 6 * 1024 * 1024;
  RawClient c;
  cr_assert(c.connect(small->plain_address(), Millis(5000), &err), "%s", err.c_str());
  HandshakeResult h = c.handshake(s.secret.key, Millis(10000), 2);
  cr_assert(h.ok, "%s", h.error.c_str());
  cr_assert(c.send_frame(put_header("keep.bin", size, ",\"force\":true")));
  expect_frame(c, "put_ready");
  // Another writer takes the space the check saw free.
  cr_assert(write_file(mnt + "/filler", std::string(6 * 1024 * 1024, 'x')));
  std::string body = pattern_bytes(0, size, 3);
  std::string sent_err;
  c.send_raw(encode_frame(data_header(size), body), &sent_err);  // may fail: the server may answer and close
  ReadResult r = c.read_frame(Millis(10000));
  cr_assert(r.ok(), "%s", r.describe().c_str());
  cr_assert(r.frame.type() == "error" && r.frame.code() == "no_space", "%s", r.frame.header.c_str());
  c.close();
  cr_assert(wait_until([&] { return names_in(mnt + "/root") == "keep.bin "; }, Millis(5000)), "left: %s",
            names_in(mnt + "/root").c_str());
  ASSERT_STR_EQ(read_file(mnt + "/root/keep.bin").value_or(""), "old\n");
  cr_assert(small->stop().exited_with(0));
  stop_cleanly(s);
}

Test(upload, local_sources_that_are_not_regular_files_are_refused) {
  Served s = serve(writable());
  ClientResult r = s.server.run_client({"put", "-", "x"});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "standard input");
  r = s.server.run_client({"put", s.downloads, "x"});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "is a directory");
  r = s.server.run_client({"put", s.in_dir("missing"), "x"});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "No such file");
  r = s.server.run_client({"put", "/dev/null", "x"});
  cr_assert(r.exited_with(7), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "not a regular file");
  r = s.server.run_client({"put", "-p"});
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
  r = s.server.run_client({"ls", "-p"});
  cr_assert(r.exited_with(2), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "applies to get and put only");
  ASSERT_STR_EQ(names_in(s.root), "");
  stop_cleanly(s);
}

Test(upload, a_verified_upload_is_stored_even_if_the_client_leaves_right_after_its_end) {
  Served s = serve(writable());
  const uint64_t size = 2 * 1024 * 1024;
  std::string body = pattern_bytes(0, size, 11);
  RawClient c = start_raw_put(s, "left.bin", size);
  cr_assert(c.send_raw(encode_frame(data_header(size), body) + encode_frame(end_header(tree_root_hex(body)))));
  c.close();  // without waiting for put_done
  cr_assert(wait_until([&] { return names_in(s.root) == "left.bin "; }, Millis(10000)), "left: %s",
            names_in(s.root).c_str());
  ASSERT_STR_EQ(read_file(s.in_root("left.bin")).value_or(""), body);
  stop_cleanly(s);
}

// Into tmpfs a small upload is committed on the loop itself (nothing there waits for a
// disk): the same rules hold. A wrong digest stores nothing, the requests pipelined
// behind an end are answered after its put_done, an existing file needs force, and a
// tree arrives whole; a file above one chunk still goes through the worker.
Test(upload, uploads_into_tmpfs_keep_every_rule) {
  struct statfs fs {};
  if (statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) cr_skip_test("no tmpfs at /dev/shm");
  cr_assert_eq(setenv("TMPDIR", "/dev/shm", 1), 0);
  ServeOptions o = writable();
  o.files = {{"a.txt", "old\n"}};
  Served s = serve(o);
  cr_assert(statfs(s.root.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC, "the root is not on tmpfs: %s",
            s.root.c_str());
  RawClient c = start_raw_put(s, "a.txt", 4, ",\"force\":true");
  cr_assert(c.send_frame(data_header(4), "new\n"));
  cr_assert(c.send_frame(end_header(tree_root_hex("other"))));
  expect_refusal(c, "digest_mismatch");
  ASSERT_STR_EQ(read_file(s.in_root("a.txt")).value_or(""), "old\n");
  cr_assert(c.send_frame(put_header("a.txt", 2)));
  expect_refusal(c, "exists");
  cr_assert(c.send_frame(put_header("b.txt", 2)));
  expect_frame(c, "put_ready");
  cr_assert(c.send_raw(encode_frame(data_header(2), "hi") + encode_frame(end_header(tree_root_hex("hi"))) +
                       encode_frame(R"({"type":"stat","path":"b.txt"})")));
  expect_frame(c, "put_done");
  Frame st = expect_frame(c, "stat_ok");
  cr_assert_eq(st.number_field("size").value_or(-1), 2.0);
  ASSERT_STR_EQ(names_in(s.root), "a.txt b.txt ");

  std::string err;
  cr_assert(make_dirs(s.in_dir("up/sub"), &err), "%s", err.c_str());
  for (int i = 0; i < 200; ++i) make_pattern(s.in_dir("up/sub/f" + std::to_string(i)), 4096 + i, i);
  make_pattern(s.in_dir("up/big.bin"), 3 * 1024 * 1024 + 1, 7);
  ClientResult r = s.server.run_client({"put", "-r", s.in_dir("up"), "/"}, Millis(60000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  for (int i = 0; i < 200; ++i) {
    std::string name = "up/sub/f" + std::to_string(i);
    cr_assert(files_equal(s.in_dir(name), s.in_root(name)), "%s", name.c_str());
  }
  cr_assert(files_equal(s.in_dir("up/big.bin"), s.in_root("up/big.bin")));
  stop_cleanly(s);
}
