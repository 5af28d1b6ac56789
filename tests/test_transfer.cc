// Integration tests of downloads and of the other requests, end to end: a real reactord on
// loopback, real reactorc processes, and RawClient for what the client program does not
// expose (pipelining, offsets, frame boundaries). Every file is verified byte for byte.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/support/assertions.h"
#include "tests/support/client.h"
#include "tests/support/deadline.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/hmac_auth.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

namespace {

constexpr uint64_t kChunk = 128 * 1024;  // FileSender::kChunk, the server's read size

// This file's fixture: an empty root, the secret beside it.
ServeOptions options() {
  ServeOptions o;
  o.prefix = "transfer-test";
  return o;
}

// The downloaded file equals the served one, byte for byte, and carries its mtime.
void assert_same_file(const std::string& served, const std::string& local) {
  std::string why;
  cr_assert(files_equal(served, local, &why), "%s vs %s: %s", served.c_str(), local.c_str(),
            why.c_str());
  struct stat a {}, b {};
  cr_assert_eq(stat(served.c_str(), &a), 0);
  cr_assert_eq(stat(local.c_str(), &b), 0);
  cr_assert_eq(b.st_mtim.tv_sec, a.st_mtim.tv_sec, "mtime %lld, the server's is %lld",
               static_cast<long long>(b.st_mtim.tv_sec), static_cast<long long>(a.st_mtim.tv_sec));
  cr_assert(S_ISREG(b.st_mode));
}

// The download directory holds exactly these names: nothing else, no ".*.part" left over.
void assert_downloads_are(const Served& s, std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  std::string err;
  auto listed = list_dir(s.downloads, &err);
  cr_assert(listed.has_value(), "%s", err.c_str());
  std::string got, want;
  for (const auto& n : *listed) got += n + " ";
  for (const auto& n : names) want += n + " ";
  ASSERT_STR_EQ(got, want);
}

uint64_t number(const Frame& f, const char* key) {
  auto v = f.number_field(key);
  cr_assert(v.has_value(), "no number \"%s\" in %s", key, f.header.c_str());
  return static_cast<uint64_t>(*v);
}

std::string get_header(const std::string& path, uint64_t offset) {
  return "{\"type\":\"get\",\"path\":" + json_quote(path) + ",\"offset\":" + std::to_string(offset) +
         "}";
}

// The name column of a `reactorc ls` line: what follows the last double space.
std::string ls_name(const std::string& line) {
  size_t pos = line.rfind("  ");
  cr_assert(pos != std::string::npos, "not an ls line: \"%s\"", line.c_str());
  return line.substr(pos + 2);
}

}  // namespace

// Every test in this binary has the same timeout: with --jobs=2, suites of different
// timeouts made Criterion's runner leak under LeakSanitizer.
TestSuite(transfer, .timeout = 120);

Test(transfer, sizes_around_the_chunk_size) {
  Served s = serve(options());
  const std::vector<uint64_t> sizes = {0, 1, kChunk - 1, kChunk, kChunk + 1, 3 * 1024 * 1024 + 17};
  std::vector<std::string> names;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string name = "f" + std::to_string(sizes[i]) + ".bin";
    make_pattern(s.in_root(name), sizes[i], 100 + i);
    ClientResult r = s.server.run_client({"get", name, s.in_downloads(name)}, Millis(60000));
    cr_assert(r.exited_with(0), "get %s: %s", name.c_str(), r.describe().c_str());
    assert_same_file(s.in_root(name), s.in_downloads(name));
    names.push_back(name);
  }
  assert_downloads_are(s, names);
  stop_cleanly(s);
}

Test(transfer, sparse_file_over_2_gib_has_64_bit_sizes_end_to_end) {
  Served s = serve(options());
  const uint64_t size = (uint64_t{1} << 31) + 5;
  // The served file is sparse, but the download is written out in full.
  struct statvfs fs {};
  if (statvfs(s.in_downloads("").c_str(), &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < size + (uint64_t{512} << 20))
    cr_skip_test("needs %llu free bytes in the temporary directory for the download",
                 static_cast<unsigned long long>(size + (uint64_t{512} << 20)));
  std::string served = s.in_root("huge.bin");
  std::string err;
  cr_assert(make_sparse_file(served, size, &err), "%s", err.c_str());
  // Data past 2^31 and right at the end: an offset or size cut to 32 bits loses it.
  {
    int fd = open(served.c_str(), O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "past2G", 6, static_cast<off_t>(uint64_t{1} << 31) - 1), 6);
    cr_assert_eq(pwrite(fd, "Z", 1, static_cast<off_t>(size - 1)), 1);
    cr_assert_eq(pwrite(fd, "head", 4, 0), 4);
    close(fd);
  }
  set_mtime(served, kMtime);

  // Sizes past 2^32 too, where a 32-bit unsigned size would wrap (metadata only: a
  // download that big would cost more time than it proves).
  cr_assert(make_sparse_file(s.in_root("huger.bin"), (uint64_t{1} << 32) + 7, &err), "%s", err.c_str());
  ClientResult st = s.server.run_client({"stat", "huge.bin"}, Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  ASSERT_CONTAINS(st.stdout_text, "size:  2147483653 ");
  st = s.server.run_client({"stat", "huger.bin"}, Millis(30000));
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  ASSERT_CONTAINS(st.stdout_text, "size:  4294967303 ");
  ClientResult ls = s.server.run_client({"ls", "-l"}, Millis(30000));
  cr_assert(ls.exited_with(0), "%s", ls.describe().c_str());
  ASSERT_CONTAINS(ls.stdout_text, " 2147483653  ");
  ASSERT_CONTAINS(ls.stdout_text, " 4294967303  ");

  ClientResult r = s.server.run_client({"get", "huge.bin", s.in_downloads("huge.bin")}, Millis(100000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string local = s.in_downloads("huge.bin");
  auto got_size = file_size(local, &err);
  cr_assert(got_size.has_value(), "%s", err.c_str());
  cr_assert_eq(*got_size, size);
  assert_same_file(served, local);
  auto want_hash = sha256_file_hex(served, &err);
  cr_assert(want_hash.has_value(), "%s", err.c_str());
  auto got_hash = sha256_file_hex(local, &err);
  cr_assert(got_hash.has_value(), "%s", err.c_str());
  ASSERT_STR_EQ(*got_hash, *want_hash);
  assert_downloads_are(s, {"huge.bin"});
  stop_cleanly(s);
}

// Past 2^32 bytes: a resumed get near the end of a 4 GiB + 7 sparse file returns the
// bytes written there and the digest of the whole file (the server reads and hashes the
// 4 GiB before the offset), and reactorc bench streams all of it through the client's
// decoder and checks it against the trailer. Nothing is written to disk.
Test(transfer, sparse_file_over_4_gib_streams_and_verifies) {
  Served s = serve(options());
  const uint64_t size = (uint64_t{1} << 32) + 7;
  std::string served = s.in_root("huger.bin");
  std::string err;
  cr_assert(make_sparse_file(served, size, &err), "%s", err.c_str());
  const uint64_t tail = (uint64_t{1} << 32) - 8;
  {
    int fd = open(served.c_str(), O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "below4G|above4G", 15, static_cast<off_t>(tail)), 15);
    close(fd);
  }
  auto want_hash = sha256_file_hex(served, &err);
  cr_assert(want_hash.has_value(), "%s", err.c_str());

  RawClient c = connect_authenticated(s);
  cr_assert(c.send_frame(R"({"type":"get","path":"huger.bin","offset":)" + std::to_string(tail) + "}"));
  ReadResult header = c.read_frame(Millis(60000));
  cr_assert(header.ok(), "%s", header.describe().c_str());
  cr_assert_eq(header.frame.type(), "file", "%s", header.frame.header.c_str());
  cr_assert_eq(header.frame.number_field("size").value_or(-1), static_cast<double>(size));
  ASSERT_STR_EQ(header.frame.body, "below4G|above4G");
  ReadResult end = c.read_frame(Millis(60000));
  cr_assert(end.ok(), "%s", end.describe().c_str());
  ASSERT_STR_EQ(end.frame.string_field("sha256").value_or(""), *want_hash);
  c.close();

  ClientResult r = s.server.run_client({"bench", "--json", "-c", "1", "-n", "1", "get", "huger.bin"}, Millis(100000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stdout_text, "\"bytes\":" + std::to_string(size));
  stop_cleanly(s);
}

namespace {

// Duplicates into this process the descriptor of reactord's end of connection `c` (the
// socket whose peer is c's local address), with pidfd_getfd(2). Invalid if not found.
Fd server_end_of(ServerProcess& server, const RawClient& c) {
  sockaddr_storage mine{};
  socklen_t mine_len = sizeof mine;
  cr_assert_eq(getsockname(c.fd(), reinterpret_cast<sockaddr*>(&mine), &mine_len), 0);
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, server.process().pid(), 0)));
  cr_assert(pidfd.valid(), "pidfd_open: %s", std::strerror(errno));
  for (int fd = 3; fd < 1024; ++fd) {
    Fd dup(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
    if (!dup.valid()) continue;
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    if (getpeername(dup.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0 && peer_len == mine_len &&
        std::memcmp(&peer, &mine, mine_len) == 0)
      return dup;
  }
  return Fd();
}

}  // namespace

// Small frames (a pong, a get's trailer) go out at once: Nagle's algorithm would hold each
// until the client's delayed ACK, ~40 ms. reactord sets TCP_NODELAY on its listeners and
// relies on Linux copying it to every accepted socket; this checks the copy is there.
Test(transfer, accepted_sockets_have_nodelay) {
  Served s = serve(options());
  RawClient c = connect_authenticated(s);
  Fd end = server_end_of(s.server, c);
  if (!end.valid()) cr_skip_test("%s", "cannot duplicate reactord's descriptors here (pidfd_getfd needs ptrace rights)");
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  cr_assert_eq(getsockopt(end.get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  cr_assert_neq(nodelay, 0, "TCP_NODELAY is off on an accepted connection");
  c.close();
  stop_cleanly(s);
}

Test(transfer, two_hundred_clients_at_once) {
  Served s = serve(options());
  const uint64_t size = 512 * 1024 + 333;
  make_pattern(s.in_root("shared.bin"), size, 7);
  std::string err;
  auto batch = ClientBatch::create({}, &err);
  cr_assert(batch.has_value(), "%s", err.c_str());
  const size_t n = 200;
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    std::string name = "copy-" + std::to_string(i);
    names.push_back(name);
    auto index = batch->start(s.server.client_args({"get", "shared.bin", s.in_downloads(name)}), &err);
    cr_assert(index.has_value(), "start client %zu: %s", i, err.c_str());
  }
  std::vector<ClientResult> results = batch->wait_all(Millis(100000));
  cr_assert_eq(results.size(), n);
  for (size_t i = 0; i < n; ++i) {
    cr_assert(results[i].exited_with(0), "client %zu: %s", i, results[i].describe().c_str());
    assert_same_file(s.in_root("shared.bin"), s.in_downloads(names[i]));
  }
  assert_downloads_are(s, names);
  cr_assert(s.server.running());
  stop_cleanly(s);
}

// ls -l shows a link as ls -l does, with its target; plain ls names it; ls of a link
// to a file describes the link, under its own name.
Test(transfer, ls_long_shows_links_with_their_targets) {
  Served s = serve(options());
  cr_assert(write_file(s.in_root("a.txt"), "hello\n"));
  cr_assert_eq(symlink("a.txt", s.in_root("lnk").c_str()), 0);
  ClientResult ls = s.server.run_client({"ls"});
  cr_assert(ls.exited_with(0), "%s", ls.describe().c_str());
  ASSERT_STR_EQ(ls.stdout_text, "a.txt\nlnk\n");
  ClientResult ll = s.server.run_client({"ls", "-l"});
  cr_assert(ll.exited_with(0), "%s", ll.describe().c_str());
  std::vector<std::string> lines = lines_of(ll.stdout_text);
  cr_assert_eq(lines.size(), 2u, "%s", ll.stdout_text.c_str());
  cr_assert(lines[1].rfind("lrwxrwxrwx ", 0) == 0, "%s", lines[1].c_str());
  ASSERT_CONTAINS(lines[1], "  lnk -> a.txt");
  ClientResult one = s.server.run_client({"ls", "lnk"});
  cr_assert(one.exited_with(0), "%s", one.describe().c_str());
  ASSERT_STR_EQ(one.stdout_text, "lnk\n");
  // A link operand with -l is the link, as ls -l shows it, and stat describes the link.
  ClientResult long_one = s.server.run_client({"ls", "-l", "lnk"});
  cr_assert(long_one.exited_with(0), "%s", long_one.describe().c_str());
  cr_assert(long_one.stdout_text.rfind("lrwxrwxrwx  5  ", 0) == 0, "%s", long_one.stdout_text.c_str());
  ASSERT_CONTAINS(long_one.stdout_text, "  lnk -> a.txt\n");
  ClientResult st = s.server.run_client({"stat", "lnk"});
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  ASSERT_CONTAINS(st.stdout_text, "kind:  link\n");
  ASSERT_CONTAINS(st.stdout_text, "\ntarget: a.txt\n");
  stop_cleanly(s);
}

Test(transfer, pipelined_requests_on_one_connection_are_answered_in_order) {
  Served s = serve(options());
  make_pattern(s.in_root("p.bin"), 300001, 3);
  cr_assert(write_file(s.in_root("note.txt"), "note\n"));
  std::string err;
  cr_assert(make_dirs(s.in_root("sub"), &err));
  cr_assert(write_file(s.in_root("sub/x.txt"), "x"));
  cr_assert(write_file(s.in_root("sub/y.txt"), "yy"));
  RawClient c = connect_authenticated(s);

  // Four requests in one write: the server must not lose or reorder any of them.
  std::string burst = encode_frame("{\"type\":\"stat\",\"path\":\"note.txt\"}") +
                      encode_frame("{\"type\":\"ping\",\"token\":\"first\"}") +
                      encode_frame(get_header("p.bin", 0)) +
                      encode_frame("{\"type\":\"list\",\"path\":\"sub\"}") +
                      encode_frame("{\"type\":\"ping\",\"token\":\"last\"}");
  cr_assert(c.send_raw(burst, &err), "%s", err.c_str());

  Frame stat = expect_frame(c, "stat_ok");
  ASSERT_STR_EQ(stat.string_field("path").value_or(""), "note.txt");
  ASSERT_STR_EQ(stat.string_field("kind").value_or(""), "file");
  cr_assert_eq(number(stat, "size"), 5u);

  Frame pong = expect_frame(c, "pong");
  ASSERT_STR_EQ(pong.string_field("token").value_or(""), "first");

  Frame file = expect_frame(c, "file");
  cr_assert_eq(number(file, "size"), 300001u);
  cr_assert_eq(number(file, "offset"), 0u);
  cr_assert_eq(number(file, "mtime"), static_cast<uint64_t>(kMtime));
  cr_assert(file.body == pattern_bytes(0, 300001, 3), "body differs (%zu bytes)", file.body.size());
  Frame end = expect_frame(c, "end");
  ASSERT_STR_EQ(end.string_field("sha256").value_or(""), *sha256_file_hex(s.in_root("p.bin")));

  std::set<std::string> listed;
  Frame next;
  for (int i = 0; i < 10; ++i) {
    ReadResult r = c.read_frame(Millis(10000));
    cr_assert(r.ok(), "%s", r.describe().c_str());
    next = r.frame;
    if (next.type() != "entries") break;
    JsonPtr json = next.parse();
    const cJSON* entries = cJSON_GetObjectItemCaseSensitive(json.get(), "entries");
    cr_assert(cJSON_IsArray(entries));
    const cJSON* e = nullptr;
    cJSON_ArrayForEach(e, entries) {
      const cJSON* name = cJSON_GetObjectItemCaseSensitive(e, "name");
      cr_assert(cJSON_IsString(name));
      listed.insert(name->valuestring);
    }
  }
  ASSERT_STR_EQ(next.type(), "list_end");
  cr_assert_eq(number(next, "count"), 2u);
  cr_assert(listed == (std::set<std::string>{"x.txt", "y.txt"}));

  Frame last = expect_frame(c, "pong");
  ASSERT_STR_EQ(last.string_field("token").value_or(""), "last");
  // Nothing more was sent than was asked for.
  ReadResult extra = c.read_frame(Millis(200));
  cr_assert_eq(extra.status, ReadStatus::kTimeout, "%s", extra.describe().c_str());
  c.close();
  stop_cleanly(s);
}

Test(transfer, get_with_an_offset) {
  Served s = serve(options());
  const uint64_t size = 3 * kChunk + 999;
  make_pattern(s.in_root("o.bin"), size, 9);
  const std::string whole_hash = *sha256_file_hex(s.in_root("o.bin"));
  RawClient c = connect_authenticated(s);
  for (uint64_t offset : {uint64_t{1}, kChunk, kChunk + 7, size - 1, size}) {
    cr_assert(c.send_frame(get_header("o.bin", offset)));
    Frame file = expect_frame(c, "file");
    cr_assert_eq(number(file, "size"), size);
    cr_assert_eq(number(file, "offset"), offset);
    cr_assert_eq(number(file, "body"), size - offset);
    cr_assert_eq(file.body.size(), size - offset);
    cr_assert(file.body == pattern_bytes(offset, static_cast<size_t>(size - offset), 9),
              "offset %llu: body differs", static_cast<unsigned long long>(offset));
    // The trailer's digest covers the whole file, not just the part sent.
    Frame end = expect_frame(c, "end");
    ASSERT_STR_EQ(end.string_field("sha256").value_or(""), whole_hash);
  }
  // Past the end: a per-request error; the connection stays usable.
  cr_assert(c.send_frame(get_header("o.bin", size + 1)));
  Frame bad = expect_frame(c, "error");
  ASSERT_STR_EQ(bad.code(), "bad_offset");
  cr_assert(c.send_frame("{\"type\":\"ping\"}"));
  Frame pong = expect_frame(c, "pong");
  cr_assert_not(pong.has_field("token"), "%s", pong.header.c_str());
  c.close();
  stop_cleanly(s);
}

Test(transfer, client_output_of_stat_ls_ping_and_send) {
  Served s = serve(options());
  std::string err;
  cr_assert(write_file(s.in_root("a.txt"), "hello\n"));
  cr_assert_eq(chmod(s.in_root("a.txt").c_str(), 0640), 0);
  set_mtime(s.in_root("a.txt"), kMtime);
  cr_assert(write_file(s.in_root("B.txt"), "b"));
  cr_assert(make_dirs(s.in_root("c-dir"), &err));
  cr_assert(make_dirs(s.in_root("0dir"), &err));
  // A name that would turn the terminal red if printed raw.
  const std::string evil = "a\x1b[31mb";
  cr_assert(write_file(s.in_root(evil), "evil"));

  ClientResult st = s.server.run_client({"stat", "a.txt"});
  cr_assert(st.exited_with(0), "%s", st.describe().c_str());
  ASSERT_STR_EQ(st.stdout_text,
                "path:  a.txt\nkind:  file\nsize:  6 (6 B)\nmtime: 2009-02-13 23:31:30 UTC\nmode:  0640\n");
  ClientResult sd = s.server.run_client({"stat", "c-dir"});
  cr_assert(sd.exited_with(0), "%s", sd.describe().c_str());
  ASSERT_CONTAINS(sd.stdout_text, "kind:  directory\n");

  ClientResult ls = s.server.run_client({"ls"});
  cr_assert(ls.exited_with(0), "%s", ls.describe().c_str());
  cr_assert(ls.stdout_text.find('\x1b') == std::string::npos, "raw ESC on stdout: %s",
            ls.stdout_text.c_str());
  // Names only, sorted bytewise (ESC sorts before '.'), directories marked with a
  // slash, the control character escaped.
  ASSERT_STR_EQ(ls.stdout_text, "0dir/\nB.txt\na\\x1b[31mb\na.txt\nc-dir/\n");

  // -l: type and mode, size (right-aligned to the widest), time to the minute, name.
  ClientResult ll = s.server.run_client({"ls", "-l"});
  cr_assert(ll.exited_with(0), "%s", ll.describe().c_str());
  std::vector<std::string> lines = lines_of(ll.stdout_text);
  std::vector<std::string> names;
  for (const auto& line : lines) names.push_back(ls_name(line));
  std::string got_joined;
  for (const auto& n : names) got_joined += n + "|";
  ASSERT_STR_EQ(got_joined, "0dir/|B.txt|a\\x1b[31mb|a.txt|c-dir/|");
  cr_assert(lines[0].rfind("drwx", 0) == 0, "%s", lines[0].c_str());
  cr_assert(lines[3].rfind("-rw-r----- ", 0) == 0, "%s", lines[3].c_str());
  ASSERT_CONTAINS(lines[3], " 6  2009-02-13 23:31  a.txt");
  // -h: sizes as ls -h prints them.
  cr_assert(write_file(s.in_root("B.txt"), std::string(3000, 'b')));
  ClientResult lh = s.server.run_client({"ls", "-lh"});
  cr_assert(lh.exited_with(0), "%s", lh.describe().c_str());
  ASSERT_CONTAINS(lh.stdout_text, " 3.0K  ");
  // A file operand is described, as ls does: by the path given.
  ClientResult lf = s.server.run_client({"ls", "a.txt"});
  cr_assert(lf.exited_with(0), "%s", lf.describe().c_str());
  ASSERT_STR_EQ(lf.stdout_text, "a.txt\n");
  lf = s.server.run_client({"ls", "-l", "a.txt"});
  cr_assert(lf.exited_with(0), "%s", lf.describe().c_str());
  ASSERT_STR_EQ(lf.stdout_text, "-rw-r-----  6  2009-02-13 23:31  a.txt\n");
  lf = s.server.run_client({"ls", "-l", "nothing-here"});
  cr_assert(lf.exited_with(5), "%s", lf.describe().c_str());
  ASSERT_CONTAINS(lf.stderr_text, "not_found");

  ClientResult ping = s.server.run_client({"ping"});
  cr_assert(ping.exited_with(0), "%s", ping.describe().c_str());
  ASSERT_CONTAINS(ping.stdout_text, "pong from " + s.server.address() + " (reactord/");
  cr_assert(ping.stdout_text.find(" ms\n") != std::string::npos, "%s", ping.stdout_text.c_str());

  ClientResult send = s.server.run_client({"send", "hello there \x1b[2J"});
  cr_assert(send.exited_with(0), "%s", send.describe().c_str());
  ASSERT_STR_EQ(send.stdout_text, "message delivered to " + s.server.address() + " (16 bytes)\n");
  cr_assert(s.server.wait_for_stderr("says: hello there \\x1b[2J", Millis(5000)), "%s",
            s.server.stderr_text().c_str());
  cr_assert(s.server.stderr_text().find('\x1b') == std::string::npos, "raw ESC in the server log");
  stop_cleanly(s);
}

Test(transfer, listing_larger_than_one_frame) {
  Served s = serve(options());
  std::string err;
  cr_assert(make_dirs(s.in_root("many"), &err));
  const size_t n = 3000;
  std::vector<std::string> want;
  for (size_t i = 0; i < n; ++i) {
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%05zu-", i);
    std::string name = prefix + std::string(100 - 6, 'n');
    cr_assert_eq(name.size(), 100u);
    cr_assert(write_file(s.in_root("many/" + name), ""), "create %zu", i);
    want.push_back(name);
  }
  // A name that is not UTF-8 cannot travel in JSON: skipped, and counted as such.
  cr_assert(write_file(s.in_root("many/bad-\xff\xfe-name"), ""));

  RawClient c = connect_authenticated(s);
  cr_assert(c.send_frame("{\"type\":\"list\",\"path\":\"many\"}"));
  std::vector<std::string> got;
  size_t frames = 0;
  Frame last;
  for (int i = 0; i < 1000; ++i) {
    ReadResult r = c.read_frame(Millis(10000));
    cr_assert(r.ok(), "%s", r.describe().c_str());
    if (r.frame.type() != "entries") {
      last = r.frame;
      break;
    }
    ++frames;
    cr_assert_leq(r.frame.header.size(), 65536u, "entries frame %zu has a %zu-byte header", frames,
                  r.frame.header.size());
    JsonPtr json = r.frame.parse();
    const cJSON* entries = cJSON_GetObjectItemCaseSensitive(json.get(), "entries");
    cr_assert(cJSON_IsArray(entries));
    const cJSON* e = nullptr;
    cJSON_ArrayForEach(e, entries) {
      const cJSON* name = cJSON_GetObjectItemCaseSensitive(e, "name");
      const cJSON* kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
      cr_assert(cJSON_IsString(name) && cJSON_IsString(kind));
      ASSERT_STR_EQ(kind->valuestring, "file");
      // Every listing carries the mode (ls -l shows it), not only a recursive one.
      cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(e, "mode")), "an entry without its mode");
      got.push_back(name->valuestring);
    }
  }
  ASSERT_STR_EQ(last.type(), "list_end");
  cr_assert_geq(frames, 2u, "3000 entries of 100-byte names should need several frames");
  cr_assert_eq(number(last, "count"), n);
  cr_assert_eq(number(last, "skipped"), 1u);
  std::sort(got.begin(), got.end());
  cr_assert_eq(got.size(), n);
  cr_assert(got == want, "the listed names differ from the created ones");

  ClientResult ls = s.server.run_client({"ls", "many"});
  cr_assert(ls.exited_with(0), "%s", ls.describe().c_str());
  std::vector<std::string> lines = lines_of(ls.stdout_text);
  cr_assert_eq(lines.size(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_STR_EQ(lines[i], want[i]);
  ASSERT_CONTAINS(ls.stderr_text, "1 name(s) not shown");
  c.close();
  stop_cleanly(s);
}

Test(transfer, default_local_name_and_subdirectory) {
  Served s = serve(options());
  std::string err;
  cr_assert(make_dirs(s.in_root("deep/er"), &err));
  make_pattern(s.in_root("deep/er/leaf.bin"), 70000, 21);
  RunOptions o;
  o.working_dir = s.downloads;
  // No LOCAL: the last component, in the current directory.
  ClientResult r = s.server.run_client({"get", "deep/er/leaf.bin"}, Millis(30000), o);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_same_file(s.in_root("deep/er/leaf.bin"), s.in_downloads("leaf.bin"));
  // LOCAL a directory: the file goes inside it.
  cr_assert(make_dirs(s.in_downloads("into"), &err));
  r = s.server.run_client({"get", "deep/er/leaf.bin", s.in_downloads("into")});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  assert_same_file(s.in_root("deep/er/leaf.bin"), s.in_downloads("into/leaf.bin"));
  assert_downloads_are(s, {"into", "leaf.bin"});
  stop_cleanly(s);
}
