// Repeated downloads: the server remembers the digest of a file it sent whole and sends
// it again with sendfile(2), without hashing (apps/reactord/digest_cache.h). The result
// must be indistinguishable: same bytes, same whole-file digest, and the same detection
// of a file that changes, between sends or during one.
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>

#include "tests/support/files.h"
#include "tests/support/raw_client.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

TestSuite(zero_copy, .timeout = 120);

namespace {

constexpr char kZeroCopyLog[] = "digest cached: zero-copy";

struct Served {
  TempDir dir;
  SecretFile secret;
  ServerProcess server;
  std::string in_root(const std::string& name) const { return dir.path("root/" + name); }
};

Served serve() {
  std::string err;
  std::optional<TempDir> dir = TempDir::create("zero-copy", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  cr_assert(make_dirs(dir->path("root"), &err), "%s", err.c_str());
  cr_assert(make_dirs(dir->path("downloads"), &err), "%s", err.c_str());
  std::optional<SecretFile> secret = write_secret(dir->path(), {}, &err);
  cr_assert(secret.has_value(), "%s", err.c_str());
  ServerOptions options;
  options.root = dir->path("root");
  options.secret_file = secret->path;
  std::optional<ServerProcess> server = ServerProcess::start(options, &err);
  cr_assert(server.has_value(), "%s", err.c_str());
  return Served{std::move(*dir), *secret, std::move(*server)};
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Downloads `name` with reactorc and checks the copy byte for byte. Zero copy is the
// plain transport's (TLS would need kernel TLS, which these machines lack): the plain
// listener, unless `tls`.
void download_and_compare(Served& s, const std::string& name, const std::string& local, bool tls = false) {
  std::string path = s.dir.path("downloads/" + local);
  ClientResult r = tls ? s.server.run_client({"--force", "get", name, path})
                       : s.server.run_plain_client({"--force", "get", name, path});
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  std::string why;
  cr_assert(files_equal(s.in_root(name), path, &why), "%s", why.c_str());
}

RawClient authenticated(const Served& s) {
  RawClient c;
  std::string err;
  cr_assert(c.connect(s.server.plain_address(), Millis(5000), &err), "%s", err.c_str());
  HandshakeResult h = c.handshake(s.secret.key, Millis(5000), 2);
  cr_assert(h.ok, "%s", h.error.c_str());
  return c;
}

// Reads one frame's length prefix and header only, leaving its body unread.
std::string read_header_only(RawClient& c) {
  std::string prefix;
  cr_assert_eq(c.read_bytes(4, &prefix, Millis(10000)), ReadStatus::kOk);
  uint32_t len = static_cast<uint32_t>(static_cast<unsigned char>(prefix[0])) << 24 |
                 static_cast<uint32_t>(static_cast<unsigned char>(prefix[1])) << 16 |
                 static_cast<uint32_t>(static_cast<unsigned char>(prefix[2])) << 8 |
                 static_cast<uint32_t>(static_cast<unsigned char>(prefix[3]));
  cr_assert_leq(len, 65536u);
  std::string header;
  cr_assert_eq(c.read_bytes(len, &header, Millis(10000)), ReadStatus::kOk);
  return header;
}

// A small receive buffer (it also turns off autotuning), so the server cannot run far
// ahead of a client that reads slowly.
void shrink_receive_buffer(RawClient& c) {
  int size = 64 * 1024;
  cr_assert_eq(setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
}

void stop_cleanly(Served& s) {
  ExitStatus status = s.server.stop();
  cr_assert(status.exited_with(0), "reactord: %s\n%s", status.describe().c_str(), s.server.stderr_text().c_str());
  cr_assert(s.server.stderr_text().find("Sanitizer") == std::string::npos, "%s", s.server.stderr_text().c_str());
}

}  // namespace

Test(zero_copy, a_repeated_download_is_sent_from_the_cache_and_verified) {
  Served s = serve();
  std::string err;
  cr_assert(write_pattern_file(s.in_root("big.bin"), (3u << 20) + 17, 41, &err), "%s", err.c_str());
  download_and_compare(s, "big.bin", "first");
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 0u, "the first send must hash");
  download_and_compare(s, "big.bin", "second");
  download_and_compare(s, "big.bin", "third");
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 2u, "%s", s.server.stderr_text().c_str());
  stop_cleanly(s);
}

// Over TLS without kernel TLS (these machines have no tls ULP) a cached body is
// encrypted in user space from the page cache: the digest is still not recomputed, the
// bytes are still verified, and each connection says which path it took.
Test(zero_copy, tls_without_kernel_tls_encrypts_cached_bodies_in_user_space) {
  Served s = serve();
  std::string err;
  cr_assert(write_pattern_file(s.in_root("big.bin"), (2u << 20) + 5, 42, &err), "%s", err.c_str());
  download_and_compare(s, "big.bin", "first", true);
  download_and_compare(s, "big.bin", "second", true);
  const std::string log = s.server.stderr_text();
  cr_assert_eq(count(log, kZeroCopyLog), 0u, "no sendfile through TLS without kernel TLS:\n%s", log.c_str());
  cr_assert_eq(count(log, "digest cached"), 1u, "the second send reuses the digest:\n%s", log.c_str());
  cr_assert_eq(count(log, "user-space encryption"), 2u, "%s", log.c_str());
  stop_cleanly(s);
}

// Below 64 KiB a cached body is copied, not sent with sendfile, so that header, body and
// trailer leave together: the log says the digest was cached but not zero-copy, and the
// three frames arrive whole and in order (what the one send() is for).
Test(zero_copy, a_small_cached_file_is_copied_with_its_frames) {
  Served s = serve();
  std::string err;
  const size_t size = 64 * 1024 - 1;
  cr_assert(write_pattern_file(s.in_root("small.bin"), size, 43, &err), "%s", err.c_str());
  download_and_compare(s, "small.bin", "first");
  download_and_compare(s, "small.bin", "second");
  std::string log = s.server.stderr_text();
  cr_assert_eq(count(log, "digest cached)"), 1u, "%s", log.c_str());
  cr_assert_eq(count(log, kZeroCopyLog), 0u, "%s", log.c_str());
  RawClient c = authenticated(s);
  cr_assert(c.send_frame(R"({"type":"get","path":"small.bin"})"));
  ReadResult header = c.read_frame(Millis(10000));
  cr_assert(header.ok(), "%s", header.describe().c_str());
  cr_assert_eq(header.frame.type(), "file");
  cr_assert_eq(header.frame.body.size(), size);
  ReadResult end = c.read_frame(Millis(10000));
  cr_assert(end.ok(), "%s", end.describe().c_str());
  cr_assert_eq(end.frame.type(), "end", "%s", end.frame.header.c_str());
  stop_cleanly(s);
}

Test(zero_copy, a_resumed_cached_send_still_carries_the_whole_file_root) {
  Served s = serve();
  std::string err;
  const uint64_t size = (1u << 20) + 333;
  cr_assert(write_pattern_file(s.in_root("r.bin"), size, 42, &err), "%s", err.c_str());
  download_and_compare(s, "r.bin", "warm");  // fills the cache
  RawClient c = authenticated(s);
  const uint64_t offset = 700001;
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"r.bin\",\"offset\":" + std::to_string(offset) + "}"));
  ReadResult file = c.read_frame(Millis(10000));
  cr_assert(file.ok(), "%s", file.describe().c_str());
  cr_assert(file.frame.type() == "file", "%s", file.frame.header.c_str());
  cr_assert(file.frame.body == pattern_bytes(offset, size - offset, 42), "the resumed body differs");
  ReadResult end = c.read_frame(Millis(10000));
  cr_assert(end.ok(), "%s", end.describe().c_str());
  cr_assert(end.frame.type() == "end", "%s", end.frame.header.c_str());
  std::optional<std::string> whole = tree_root_file_hex(s.in_root("r.bin"), &err);
  cr_assert(whole.has_value(), "%s", err.c_str());
  cr_assert(end.frame.string_field("root") == *whole, "trailer %s, file %s", end.frame.header.c_str(),
            whole->c_str());
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 1u, "%s", s.server.stderr_text().c_str());
  // Resumed this close to the end the body is under 64 KiB: copied, not sent with
  // sendfile, still from the offset and still with the whole file's digest.
  const uint64_t near_end = size - 1000;
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"r.bin\",\"offset\":" + std::to_string(near_end) + "}"));
  file = c.read_frame(Millis(10000));
  cr_assert(file.ok(), "%s", file.describe().c_str());
  cr_assert(file.frame.body == pattern_bytes(near_end, size - near_end, 42), "the resumed tail differs");
  end = c.read_frame(Millis(10000));
  cr_assert(end.ok(), "%s", end.describe().c_str());
  cr_assert(end.frame.string_field("root") == *whole, "trailer %s", end.frame.header.c_str());
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 1u, "%s", s.server.stderr_text().c_str());
  c.close();
  stop_cleanly(s);
}

Test(zero_copy, a_file_rewritten_between_downloads_misses_the_cache) {
  Served s = serve();
  std::string err;
  cr_assert(write_pattern_file(s.in_root("f.bin"), 1u << 20, 1, &err), "%s", err.c_str());
  download_and_compare(s, "f.bin", "old");
  // Same size, same inode, new content: only mtime/ctime tell.
  int fd = open(s.in_root("f.bin").c_str(), O_WRONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  std::string fresh = pattern_bytes(0, 1u << 20, 2);
  cr_assert_eq(pwrite(fd, fresh.data(), fresh.size(), 0), static_cast<ssize_t>(fresh.size()));
  close(fd);
  download_and_compare(s, "f.bin", "new");
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 0u, "%s", s.server.stderr_text().c_str());
  download_and_compare(s, "f.bin", "new-again");  // and the new content is cached in turn
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 1u, "%s", s.server.stderr_text().c_str());
  stop_cleanly(s);
}

Test(zero_copy, a_file_shrinking_during_a_cached_send_is_padded_and_reported) {
  Served s = serve();
  std::string err;
  const uint64_t size = 24u << 20;
  const uint64_t shrunk = 1u << 20;
  cr_assert(write_pattern_file(s.in_root("s.bin"), size, 7, &err), "%s", err.c_str());
  download_and_compare(s, "s.bin", "warm");
  RawClient c = authenticated(s);
  shrink_receive_buffer(c);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"s.bin\"}"));
  std::string header = read_header_only(c);
  cr_assert(header.find("\"file\"") != std::string::npos, "%s", header.c_str());
  std::string body;
  cr_assert_eq(c.read_bytes(65536, &body, Millis(10000)), ReadStatus::kOk);
  cr_assert_eq(truncate(s.in_root("s.bin").c_str(), static_cast<off_t>(shrunk)), 0);
  cr_assert_eq(c.read_bytes(size - body.size(), &body, Millis(60000)), ReadStatus::kOk);
  std::string original = pattern_bytes(0, size, 7);
  size_t first_diff = 0;
  while (first_diff < size && body[first_diff] == original[first_diff]) ++first_diff;
  cr_assert_geq(first_diff, shrunk, "data before the new end damaged at %zu", first_diff);
  cr_assert_lt(first_diff, size, "the whole file went out before the truncate: the test read too slowly");
  for (size_t i = first_diff; i < size; ++i)
    if (body[i] != 0) cr_assert_fail("byte %zu after the padding start %zu is not zero", i, first_diff);
  ReadResult trailer = c.read_frame(Millis(10000));
  cr_assert(trailer.ok(), "%s", trailer.describe().c_str());
  cr_assert(trailer.frame.code() == "file_changed", "%s", trailer.frame.header.c_str());
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 1u, "%s", s.server.stderr_text().c_str());
  // The connection goes on.
  cr_assert(c.send_frame("{\"type\":\"ping\",\"token\":\"after\"}"));
  ReadResult pong = c.read_frame(Millis(10000));
  cr_assert(pong.ok() && pong.frame.type() == "pong", "%s", pong.describe().c_str());
  c.close();
  stop_cleanly(s);
}

Test(zero_copy, a_file_edited_in_place_during_a_cached_send_is_reported) {
  Served s = serve();
  std::string err;
  const uint64_t size = 24u << 20;
  cr_assert(write_pattern_file(s.in_root("e.bin"), size, 8, &err), "%s", err.c_str());
  download_and_compare(s, "e.bin", "warm");
  RawClient c = authenticated(s);
  shrink_receive_buffer(c);
  cr_assert(c.send_frame("{\"type\":\"get\",\"path\":\"e.bin\"}"));
  std::string header = read_header_only(c);
  cr_assert(header.find("\"file\"") != std::string::npos, "%s", header.c_str());
  std::string body;
  cr_assert_eq(c.read_bytes(65536, &body, Millis(10000)), ReadStatus::kOk);
  int fd = open(s.in_root("e.bin").c_str(), O_WRONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(pwrite(fd, "!", 1, 10), 1);  // a part already sent: only the metadata can tell
  close(fd);
  cr_assert_eq(c.read_bytes(size - body.size(), &body, Millis(60000)), ReadStatus::kOk);
  ReadResult trailer = c.read_frame(Millis(10000));
  cr_assert(trailer.ok(), "%s", trailer.describe().c_str());
  cr_assert(trailer.frame.code() == "file_changed", "a changed file was not reported: %s",
            trailer.frame.header.c_str());
  cr_assert_eq(count(s.server.stderr_text(), kZeroCopyLog), 1u, "%s", s.server.stderr_text().c_str());
  c.close();
  stop_cleanly(s);
}
