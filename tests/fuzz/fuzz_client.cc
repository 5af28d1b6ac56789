// libFuzzer target: reactorc's side of a connection fed by a hostile server. A real
// client::Connection on a loop over a socketpair, with a get (into a file), a list, a stat,
// a ping and a put pipelined on it.
//
// Input: byte 0 says whether the harness first plays an honest server's handshake (hello
// in version 1 or 2, then a correct auth_ok), so that the fuzzer reaches the responses,
// or hands the client raw bytes from the first one; byte 1 picks the split pattern. The
// rest is what the server sends, then it closes. Oracles, beyond the sanitizers: the
// connection ends closed with every command finished; a get that succeeded left a file
// whose SHA-256 is the one the server's end carried, and no other file is left in the
// download directory (nothing unverified is ever kept).

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "apps/common/body_sink.h"
#include "apps/common/log.h"
#include "apps/common/secret.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/connection.h"
#include "apps/reactorc/get_command.h"
#include "apps/reactorc/put_command.h"
#include "protocol/auth.h"
#include "protocol/features.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "protocol/sha256.h"
#include "reactor/event_loop.h"
#include "reactor/transport.h"

namespace {

constexpr char kKey[] = "fuzzing secret, thirty-two bytes at least";

std::string g_base;
std::string g_downloads;
std::string g_upload;  // a small local file for the put
std::unique_ptr<reactor::EventLoop> g_loop;
app::Secret g_secret;

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return remove(path); }
void remove_tree() { nftw(g_base.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

struct Listener final : client::ConnectionListener {
  bool ready = false;
  bool failed = false;
  void on_ready(client::Connection&) override { ready = true; }
  void on_command_done(client::Connection&, client::Command&) override {}
  void on_failure(client::Connection&, client::Failure, const std::string&) override { failed = true; }
};

void spin() {
  g_loop->defer([] { g_loop->stop(); });
  g_loop->run();
}

// The next whole frame the client sent, if any (the client's frames are small).
std::optional<protocol::Message> read_client_frame(int fd, std::string* inbox) {
  char buf[8192];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) inbox->append(buf, static_cast<size_t>(n));
  protocol::FrameDecoder decoder;
  size_t used = 0;
  protocol::DecodeEvent event = decoder.next(inbox->data(), inbox->size(), &used);
  if (event.kind != protocol::DecodeEvent::kHeader) return std::nullopt;
  protocol::ProtocolError err;
  std::optional<protocol::Message> message = protocol::parse_message(decoder.header(), 0, &err);
  inbox->erase(0, used);
  return message;
}

void send_all(int fd, const std::string& bytes) {
  size_t off = 0;
  for (int tries = 0; off < bytes.size() && tries < 1000; ++tries) {
    ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) off += static_cast<size_t>(n);
    else if (n < 0 && errno != EAGAIN) return;
    spin();
  }
}

void drain(int fd) {
  char buf[65536];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

size_t files_in(const std::string& dir) {
  size_t count = 0;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (struct dirent* e = readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++count;
  closedir(d);
  return count;
}

protocol::Digest digest_of(const std::string& path) {
  protocol::Sha256 hash;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) std::abort();
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) hash.update(buf, n);
  std::fclose(f);
  return hash.finish();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  app::log_init("fuzz", app::LogLevel::kError, false);
  char tmpl[] = "/tmp/fuzz-client.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  g_base = tmpl;
  std::atexit(remove_tree);
  g_downloads = g_base + "/dl";
  mkdir(g_downloads.c_str(), 0755);
  g_upload = g_base + "/up.txt";
  FILE* f = std::fopen(g_upload.c_str(), "w");
  std::fputs("upload me\n", f);
  std::fclose(f);
  std::string err;
  g_loop = reactor::EventLoop::create(reactor::Backend::kEpoll, &err);
  if (!g_loop) std::abort();
  g_secret.key = kKey;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 1 << 16) return 0;
  const int mode = data[0] % 3;
  const unsigned split = data[1];
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  int server = sv[1];
  {
    Listener listener;
    client::Connection conn(*g_loop, g_secret, listener);
    conn.adopt(reactor::UniqueFd(sv[0]), reactor::make_socket_transport(sv[0]), std::chrono::seconds(30), "fuzz");

    auto sink = std::make_unique<app::BodySink>(app::BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
    std::string err;
    reactor::UniqueFd dir(open(g_downloads.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!sink->open_file(std::move(dir), "got", "got", true, &err)) std::abort();
    client::GetCommand get("a", std::move(sink));
    client::ListCommand list("");
    client::StatCommand stat("a");
    client::PingCommand ping;
    reactor::UniqueFd up(open(g_upload.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    fstat(up.get(), &st);
    client::PutCommand put(std::move(up), st, "in/up.txt", false, false);

    std::string inbox;
    if (mode != 0) {
      protocol::Hello hello;
      hello.proto = static_cast<uint64_t>(mode);
      hello.server = "fuzz";
      hello.features = protocol::server_features();
      hello.nonce.fill(3);
      send_all(server, protocol::encode(hello));
      std::optional<protocol::Message> auth;
      for (int i = 0; i < 50 && !auth; ++i) {
        spin();
        auth = read_client_frame(server, &inbox);
      }
      if (auth && std::holds_alternative<protocol::Auth>(*auth)) {
        protocol::AuthOk ok;
        ok.proto = static_cast<uint64_t>(mode);
        ok.mac = protocol::server_proof(kKey, hello.nonce, std::get<protocol::Auth>(*auth).nonce, nullptr);
        send_all(server, protocol::encode(ok));
        for (int i = 0; i < 20 && !listener.ready && !listener.failed; ++i) spin();
      }
    }
    if (listener.ready) {
      conn.submit(get);
      conn.submit(list);
      conn.submit(stat);
      conn.submit(ping);
      conn.submit(put);
    }
    const char* p = reinterpret_cast<const char*>(data + 2);
    size_t left = size - 2;
    size_t piece = 1 + split % 11;
    while (left > 0 && conn.state() != client::Connection::State::kClosed) {
      size_t n = left < piece ? left : piece;
      send_all(server, std::string(p, n));
      p += n;
      left -= n;
      piece = 1 + (piece * 3 + split) % 701;
      spin();
      drain(server);
    }
    shutdown(server, SHUT_WR);
    for (int i = 0; i < 200 && conn.state() != client::Connection::State::kClosed; ++i) {
      spin();
      drain(server);
    }
    if (conn.state() != client::Connection::State::kClosed) conn.close();
    // Every command is finished now: answered, failed, or abandoned with the connection.
    if (listener.ready) {
      for (const client::Command* c : {static_cast<const client::Command*>(&get), static_cast<const client::Command*>(&list),
                                       static_cast<const client::Command*>(&stat), static_cast<const client::Command*>(&ping),
                                       static_cast<const client::Command*>(&put)})
        if (!c->finished()) std::abort();
    }
    std::string got = g_downloads + "/got";
    if (get.succeeded()) {
      if (digest_of(got) != get.digest()) std::abort();  // kept what the end did not vouch for
      unlink(got.c_str());
    }
  }
  // The commands are gone: a get that did not succeed left nothing, not even a temporary.
  if (files_in(g_downloads) != 0) std::abort();
  close(server);
  return 0;
}
