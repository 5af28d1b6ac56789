// Integration tests of many-file uploads (reactorc put -r, put with several sources;
// reactor-protocol(7), mkdir): a real, writable reactord and real reactorc processes.
// Every copy on the server is compared file by file with the local tree.

#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/client.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"

using namespace testsupport;

namespace {

ServeOptions writable(bool writes = true) {
  ServeOptions o;
  o.prefix = "tree-put-test";
  if (writes) o.extra_args = {"-w"};
  return o;
}

// A local tree in the test's directory ("src"): files at three levels, a big one, an
// empty directory, a link pointing out of the tree and a FIFO.
std::string make_local_tree(const Served& s) {
  std::string top = s.in_dir("src");
  cr_assert(make_dirs(top + "/sub/deep"));
  cr_assert(make_dirs(top + "/empty"));
  cr_assert(write_file(top + "/a.txt", "alpha\n"));
  cr_assert(write_file(top + "/sub/b.txt", "bravo\n"));
  cr_assert(write_file(top + "/sub/deep/c.txt", "charlie\n"));
  cr_assert(write_file(top + "/zero", ""));
  make_pattern(top + "/sub/big.bin", 2 * 1024 * 1024 + 3, 9);
  cr_assert_eq(symlink("/etc/passwd", (top + "/link").c_str()), 0);
  cr_assert_eq(mkfifo((top + "/pipe").c_str(), 0644), 0);
  return top;
}

const std::vector<std::string> kFiles = {"a.txt", "sub/b.txt", "sub/deep/c.txt", "zero", "sub/big.bin"};

void assert_copied(const std::string& local, const std::string& remote_copy) {
  for (const std::string& f : kFiles) {
    std::string why;
    cr_assert(files_equal(path_join(local, f), path_join(remote_copy, f), &why), "%s: %s", f.c_str(), why.c_str());
  }
  struct stat st {};
  cr_assert(lstat(path_join(remote_copy, "empty").c_str(), &st) == 0 && S_ISDIR(st.st_mode), "no empty directory");
  cr_assert_not(exists(path_join(remote_copy, "link")), "a link was uploaded");
  cr_assert_not(exists(path_join(remote_copy, "pipe")), "a FIFO was uploaded");
}

size_t puts_logged(const Served& s, size_t from) {
  std::string log = s.server.stderr_text();
  return from < log.size() ? count_in(log.substr(from), " put \"") : 0;
}

ClientResult run(const Served& s, const std::vector<std::string>& args) {
  return s.server.run_plain_client(args, Millis(60000));
}

std::string request(RawClient& c, const std::string& header) {
  cr_assert(c.send_frame(header));
  ReadResult r = c.read_frame(Millis(10000));
  cr_assert(r.ok(), "%s", r.describe().c_str());
  return r.frame.header;
}

}  // namespace

TestSuite(tree_put, .timeout = 120);

Test(tree_put, put_r_copies_a_tree_and_skips_links_and_special_files) {
  Served s = serve(writable());
  std::string local = make_local_tree(s);
  ClientResult r = run(s, {"put", "-r", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_copied(local, s.in_root("src"));
  ASSERT_CONTAINS(r.stderr_text, "symbolic link, which is not followed");
  ASSERT_CONTAINS(r.stderr_text, "5 files");
  // Into a directory that exists: inside it; to a name that does not: that name.
  cr_assert(make_dirs(s.in_root("backup")));
  r = run(s, {"put", "-r", local, "backup"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_copied(local, s.in_root("backup/src"));
  r = run(s, {"put", "-r", local, "renamed"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_copied(local, s.in_root("renamed"));
  stop_cleanly(s);
}

Test(tree_put, a_rerun_sends_nothing_and_a_difference_needs_force) {
  Served s = serve(writable());
  std::string local = make_local_tree(s);
  cr_assert(run(s, {"-p", "put", "-r", local}).exited_with(0));
  size_t mark = s.server.stderr_text().size();
  ClientResult r = run(s, {"-v", "-p", "put", "-r", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_eq(puts_logged(s, mark), 0u, "the rerun sent files again");
  ASSERT_CONTAINS(r.stderr_text, "unchanged (same size and modification time)");
  // Same size, other bytes: refused without --force, sent with it.
  cr_assert(write_file(local + "/a.txt", "ALPHA\n"));
  // Its time in whole seconds (the protocol's) must differ too, or it looks unchanged,
  // as it would to rsync.
  set_mtime(local + "/a.txt", kMtime);
  r = run(s, {"put", "-r", local});
  cr_assert(r.exited_with(11), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "exists on the server and differs; use --force");
  ASSERT_STR_EQ(*read_file(s.in_root("src/a.txt")), "alpha\n");
  r = run(s, {"-f", "put", "-r", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_copied(local, s.in_root("src"));
  stop_cleanly(s);
}

Test(tree_put, several_sources_go_into_a_directory_that_exists_on_the_server) {
  Served s = serve(writable());
  std::string local = make_local_tree(s);
  cr_assert(make_dirs(s.in_root("in")));
  ClientResult r = run(s, {"put", local + "/a.txt", local + "/sub/big.bin", "in"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string why;
  cr_assert(files_equal(local + "/a.txt", s.in_root("in/a.txt"), &why), "%s", why.c_str());
  cr_assert(files_equal(local + "/sub/big.bin", s.in_root("in/big.bin"), &why), "%s", why.c_str());
  r = run(s, {"put", local + "/a.txt", local + "/zero", "missing"});
  cr_assert(r.exited_with(5), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "is not a directory on the server");
  cr_assert_not(exists(s.in_root("missing")));
  // A directory among them without -r fails alone.
  r = run(s, {"put", local, local + "/zero", "in"});
  cr_assert(r.exited_with(11), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "use -r");
  cr_assert(exists(s.in_root("in/zero")));
  cr_assert_not(exists(s.in_root("in/src")));
  stop_cleanly(s);
}

Test(tree_put, p_keeps_modes_and_a_read_only_server_refuses_every_file) {
  Served s = serve(writable());
  std::string local = make_local_tree(s);
  cr_assert_eq(chmod((local + "/a.txt").c_str(), 0604), 0);
  cr_assert_eq(chmod((local + "/sub/deep").c_str(), 0751), 0);
  ClientResult r = run(s, {"-p", "put", "-r", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  struct stat st {};
  cr_assert_eq(stat(s.in_root("src/a.txt").c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0604u, "mode %o", st.st_mode & 07777);
  cr_assert_eq(stat(s.in_root("src/sub/deep").c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0751u, "mode %o", st.st_mode & 07777);
  stop_cleanly(s);

  Served ro = serve(writable(false));
  std::string tree = make_local_tree(ro);
  r = run(ro, {"put", "-r", tree});
  cr_assert(r.exited_with(11), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "read_only");
  cr_assert_not(exists(ro.in_root("src")));
  stop_cleanly(ro);
}

Test(tree_put, mkdir_makes_a_directory_beneath_the_root_and_nothing_else) {
  Served s = serve(writable());
  cr_assert(write_file(s.in_root("file"), "f"));
  cr_assert_eq(symlink("/tmp", s.in_root("link").c_str()), 0);
  RawClient c = connect_authenticated(s, 2);
  std::string reply = request(c, R"({"type":"mkdir","path":"made","mode":448})");
  ASSERT_CONTAINS(reply, "\"created\":true");
  struct stat st {};
  cr_assert_eq(stat(s.in_root("made").c_str(), &st), 0);
  cr_assert_eq(st.st_mode & 07777, 0700u, "mode %o: the umask must not apply", st.st_mode & 07777);
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"made"})"), "\"created\":false");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"made/inner"})"), "\"created\":true");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"file"})"), "\"code\":\"exists\"");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"link"})"), "\"code\":\"exists\"");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"no/such/parent"})"), "\"code\":\"not_found\"");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"../escape"})"), "\"code\":\"forbidden\"");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"link/through"})"), "\"code\":\"");
  cr_assert_not(exists("/tmp/through"), "mkdir went through a link out of the root");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"."})"), "\"code\":\"");
  c.close();
  // Version 1 has no mkdir.
  RawClient old = connect_authenticated(s, 1);
  ASSERT_CONTAINS(request(old, R"({"type":"mkdir","path":"v1"})"), "unexpected_message");
  old.close();
  cr_assert_not(exists(s.in_root("v1")));
  stop_cleanly(s);

  Served ro = serve(writable(false));
  RawClient r = connect_authenticated(ro, 2);
  ASSERT_CONTAINS(request(r, R"({"type":"mkdir","path":"x"})"), "\"code\":\"read_only\"");
  r.close();
  cr_assert_not(exists(ro.in_root("x")));
  stop_cleanly(ro);
}

Test(tree_put, p_gives_directories_their_times_once_their_files_are_in) {
  Served s = serve(writable());
  std::string local = make_local_tree(s);
  set_mtime(local + "/sub/deep", kMtime);
  set_mtime(local + "/sub", kMtime + 60);
  set_mtime(local + "/empty", kMtime + 120);
  set_mtime(local, kMtime + 180);
  ClientResult r = run(s, {"-p", "put", "-r", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  struct stat st {};
  for (const auto& [dir, want] : std::vector<std::pair<std::string, int64_t>>{
           {"src/sub/deep", kMtime}, {"src/sub", kMtime + 60}, {"src/empty", kMtime + 120}, {"src", kMtime + 180}}) {
    cr_assert_eq(stat(s.in_root(dir).c_str(), &st), 0);
    cr_assert_eq(st.st_mtime, want, "%s: time %ld, not %ld", dir.c_str(), long(st.st_mtime), long(want));
  }
  // Without -p the server's own times stand.
  r = run(s, {"put", "-r", local, "plain"});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert_eq(stat(s.in_root("plain/sub").c_str(), &st), 0);
  cr_assert_neq(st.st_mtime, kMtime + 60);
  stop_cleanly(s);
}

Test(tree_put, mkdir_with_mtime_sets_the_time_of_a_new_or_existing_directory) {
  Served s = serve(writable());
  cr_assert(make_dirs(s.in_root("there")));
  RawClient c = connect_authenticated(s, 2);
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"there","mtime":1000000000})"), "\"created\":false");
  ASSERT_CONTAINS(request(c, R"({"type":"mkdir","path":"new","mode":493,"mtime":1000000001})"), "\"created\":true");
  c.close();
  struct stat st {};
  cr_assert_eq(stat(s.in_root("there").c_str(), &st), 0);
  cr_assert_eq(st.st_mtime, 1000000000);
  cr_assert_eq(stat(s.in_root("new").c_str(), &st), 0);
  cr_assert_eq(st.st_mtime, 1000000001);
  stop_cleanly(s);
}

Test(tree_put, links_uploads_the_links_that_stay_inside_the_tree) {
  Served s = serve(writable());
  std::string local = make_local_tree(s);  // src/link -> /etc/passwd
  cr_assert_eq(symlink("a.txt", (local + "/to_a").c_str()), 0);
  cr_assert_eq(symlink("../a.txt", (local + "/sub/up").c_str()), 0);
  cr_assert_eq(symlink("../../x", (local + "/sub/climbs").c_str()), 0);
  ClientResult r = run(s, {"-v", "put", "-r", "--links", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(link_at(s.in_root("src/to_a")) == "a.txt", "the link is -> %s", link_at(s.in_root("src/to_a")).c_str());
  cr_assert(link_at(s.in_root("src/sub/up")) == "../a.txt", "the link is -> %s", link_at(s.in_root("src/sub/up")).c_str());
  cr_assert_not(exists(s.in_root("src/link")), "an absolute link was made");
  cr_assert_not(exists(s.in_root("src/sub/climbs")), "a link out of the tree was made");
  ASSERT_CONTAINS(r.stderr_text, "2 links");
  for (const std::string& f : kFiles) {
    std::string why;
    cr_assert(files_equal(path_join(local, f), s.in_root("src/" + f), &why), "%s: %s", f.c_str(), why.c_str());
  }
  // A rerun changes nothing; a changed link needs --force.
  size_t mark = s.server.stderr_text().size();
  r = run(s, {"-v", "put", "-r", "--links", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "unchanged (the same link)");
  cr_assert_eq(count_in(s.server.stderr_text().substr(mark), " symlink \""), 0u, "a rerun made links again");
  cr_assert_eq(unlink((local + "/to_a").c_str()), 0);
  cr_assert_eq(symlink("zero", (local + "/to_a").c_str()), 0);
  r = run(s, {"put", "-r", "--links", local});
  cr_assert(r.exited_with(11), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "exists");
  cr_assert(link_at(s.in_root("src/to_a")) == "a.txt", "the link is -> %s", link_at(s.in_root("src/to_a")).c_str());
  r = run(s, {"-f", "put", "-r", "--links", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  cr_assert(link_at(s.in_root("src/to_a")) == "zero", "the link is -> %s", link_at(s.in_root("src/to_a")).c_str());
  stop_cleanly(s);
}

Test(tree_put, a_link_whose_target_no_request_can_carry_is_skipped_and_the_rest_goes) {
  Served s = serve(writable());
  std::string local = make_local_tree(s);
  // Not valid UTF-8: a JSON string cannot hold it, so it must not reach the wire (the
  // server would take the frame for a broken one and end the connection).
  std::string bad = "caf\xe9";
  cr_assert_eq(symlink(bad.c_str(), (local + "/latin1").c_str()), 0);
  cr_assert_eq(symlink("a.txt", (local + "/to_a").c_str()), 0);
  ClientResult r = run(s, {"put", "-r", "--links", local});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "cannot carry");
  cr_assert_not(exists(s.in_root("src/latin1")));
  cr_assert(link_at(s.in_root("src/to_a")) == "a.txt", "the link is -> %s", link_at(s.in_root("src/to_a")).c_str());
  assert_copied(local, s.in_root("src"));
  stop_cleanly(s);
}

Test(tree_put, the_symlink_request_never_makes_a_link_out_of_the_root) {
  Served s = serve(writable());
  cr_assert(make_dirs(s.in_root("d/e")));
  cr_assert(write_file(s.in_root("file"), "f"));
  RawClient c = connect_authenticated(s, 2);
  ASSERT_CONTAINS(request(c, R"({"type":"symlink","path":"d/e/ok","target":"../../file"})"), "\"replaced\":false");
  cr_assert(link_at(s.in_root("d/e/ok")) == "../../file", "the link is -> %s", link_at(s.in_root("d/e/ok")).c_str());
  ASSERT_CONTAINS(request(c, R"({"type":"symlink","path":"d/e/ok","target":"../../file"})"), "\"unchanged\":true");
  for (const char* bad : {R"({"type":"symlink","path":"abs","target":"/etc/passwd"})",
                          R"({"type":"symlink","path":"d/up","target":"../../etc"})",
                          R"({"type":"symlink","path":"d/e/sneaky","target":"x/../../../../etc"})",
                          R"({"type":"symlink","path":"top","target":".."})"}) {
    ASSERT_CONTAINS(request(c, bad), "\"code\":\"forbidden\"");
  }
  cr_assert_not(exists(s.in_root("abs")));
  cr_assert_not(exists(s.in_root("d/up")));
  cr_assert_not(exists(s.in_root("d/e/sneaky")));
  cr_assert_not(exists(s.in_root("top")));
  ASSERT_CONTAINS(request(c, R"({"type":"symlink","path":"file","target":"d"})"), "\"code\":\"exists\"");
  cr_assert(read_file(s.in_root("file")) == std::optional<std::string>("f"), "the file was replaced without force");
  ASSERT_CONTAINS(request(c, R"({"type":"symlink","path":"d","target":"file"})"), "\"code\":\"is_directory\"");
  ASSERT_CONTAINS(request(c, R"({"type":"symlink","path":"d/e/ok","target":"../../d","force":true})"),
                  "\"replaced\":true");
  cr_assert(link_at(s.in_root("d/e/ok")) == "../../d", "the link is -> %s", link_at(s.in_root("d/e/ok")).c_str());
  ASSERT_CONTAINS(request(c, R"({"type":"symlink","path":"no/such/x","target":"y"})"), "\"code\":\"not_found\"");
  // A link that leads out of the root is never gone through to make another.
  cr_assert_eq(symlink(s.in_dir("").c_str(), s.in_root("out").c_str()), 0);
  ASSERT_CONTAINS(request(c, R"({"type":"symlink","path":"out/x","target":"y"})"), "\"code\":\"forbidden\"");
  cr_assert_not(exists(s.in_dir("x")));
  // No temporary is left behind.
  auto names = list_dir(s.in_root("d/e"));
  cr_assert(names && names->size() == 1, "d/e holds %zu names", names ? names->size() : 0);
  c.close();
  stop_cleanly(s);

  Served ro = serve(writable(false));
  RawClient r = connect_authenticated(ro, 2);
  ASSERT_CONTAINS(request(r, R"({"type":"symlink","path":"x","target":"y"})"), "\"code\":\"read_only\"");
  r.close();
  cr_assert_not(exists(ro.in_root("x")));
  stop_cleanly(ro);
}

namespace {

std::string eager_put(const std::string& path, const std::string& body) {
  return encode_frame("{\"type\":\"put\",\"path\":" + json_quote(path) + ",\"size\":" + std::to_string(body.size()) + "}") +
         encode_frame("{\"type\":\"data\",\"body\":" + std::to_string(body.size()) + "}", body) +
         encode_frame("{\"type\":\"end\",\"root\":\"" + tree_root_hex(body) + "\"}");
}

}  // namespace

Test(tree_put, an_eager_put_is_stored_and_a_refused_one_is_dropped_with_its_body) {
  Served s = serve(writable());
  cr_assert(write_file(s.in_root("taken"), "old"));
  RawClient c = connect_authenticated(s, 2);
  // Three puts back to back, each with its data and end, and a ping behind them: the
  // second is refused (exists), and its body and end must not be taken for requests.
  std::string body(300000, 'b');
  cr_assert(c.send_raw(eager_put("one", "first") + eager_put("taken", body) + eager_put("three", "third") +
                       encode_frame("{\"type\":\"ping\",\"token\":\"after\"}")));
  expect_frame(c, "put_ready");
  expect_frame(c, "put_done");
  Frame refused = expect_frame(c, "error");
  ASSERT_STR_EQ(refused.code(), "exists");
  expect_frame(c, "put_ready");
  expect_frame(c, "put_done");
  ASSERT_STR_EQ(expect_frame(c, "pong").string_field("token").value_or(""), "after");
  ASSERT_STR_EQ(*read_file(s.in_root("one")), "first");
  ASSERT_STR_EQ(*read_file(s.in_root("taken")), "old");
  ASSERT_STR_EQ(*read_file(s.in_root("three")), "third");
  // A client that waits after a refusal goes on with a request, as before.
  cr_assert(c.send_frame("{\"type\":\"put\",\"path\":\"taken\",\"size\":1}"));
  ASSERT_STR_EQ(expect_frame(c, "error").code(), "exists");
  cr_assert(c.send_frame("{\"type\":\"ping\"}"));
  expect_frame(c, "pong");
  // But a refused put's data followed by anything but its end is a protocol violation.
  cr_assert(c.send_raw(encode_frame("{\"type\":\"put\",\"path\":\"taken\",\"size\":1}") +
                       encode_frame("{\"type\":\"data\",\"body\":1}", "x") + encode_frame("{\"type\":\"ping\"}")));
  ASSERT_STR_EQ(expect_frame(c, "error").code(), "exists");
  ASSERT_STR_EQ(expect_frame(c, "error").code(), "unexpected_message");
  c.close();
  stop_cleanly(s);
}

Test(tree_put, a_refused_eager_upload_costs_only_its_own_file) {
  ServeOptions o = writable();
  o.extra_args = {"-w", "--max-upload", "4K"};
  Served s = serve(o);
  std::string top = s.in_dir("src");
  cr_assert(make_dirs(top));
  for (int i = 0; i < 20; ++i) cr_assert(write_file(top + "/f" + std::to_string(i), std::string(100, static_cast<char>('a' + i % 26))));
  make_pattern(top + "/f7", 600 * 1024, 3);  // too large for this server: refused while its body goes out
  ClientResult r = run(s, {"put", "-r", top});
  cr_assert(r.exited_with(11), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, "too_large");
  ASSERT_CONTAINS(r.stderr_text, "19 files");
  for (int i = 0; i < 20; ++i) {
    std::string name = "src/f" + std::to_string(i);
    if (i == 7) {
      cr_assert_not(exists(s.in_root(name)), "the refused file was stored");
    } else {
      ASSERT_STR_EQ(*read_file(s.in_root(name)), std::string(100, static_cast<char>('a' + i % 26)));
    }
  }
  stop_cleanly(s);
}
