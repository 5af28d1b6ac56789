// libFuzzer target: one server Session, the state machine every client byte reaches,
// over a socketpair on a real EventLoop, with a writable served root of its own.
//
// Input: byte 0 says whether the harness first authenticates properly (protocol version
// 1 or 2), so that the fuzzer reaches requests, uploads and their bodies, or hands the
// session raw bytes from the first one (auth and what comes before it); byte 1 picks the
// split pattern. The rest is what the client sends, then its end of stream. Oracles,
// beyond the sanitizers: whatever the session writes back is a valid stream of frames of
// this protocol (a server never answers with a malformed frame); the session ends closed,
// and nothing is left running.

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "apps/common/log.h"
#include "apps/common/secret.h"
#include "apps/reactord/auth_throttle.h"
#include "apps/reactord/digest_cache.h"
#include "apps/reactord/options.h"
#include "apps/reactord/served_root.h"
#include "apps/reactord/session.h"
#include "apps/reactord/upload.h"
#include "protocol/auth.h"
#include "protocol/features.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/work_queue.h"

namespace {

constexpr char kKey[] = "fuzzing secret, thirty-two bytes at least";

std::string g_base;
int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return remove(path); }
void remove_tree() { nftw(g_base.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

class Host final : public server::SessionHost {
 public:
  Host(reactor::EventLoop& loop, const server::Options& options, const server::ServedRoot& root,
       const app::Secret& secret)
      : loop_(loop), options_(options), root_(root), secret_(secret), queue_(loop),
        features_(protocol::server_features()) {}
  reactor::EventLoop& loop() override { return loop_; }
  const server::Options& options() const override { return options_; }
  const server::ServedRoot& root() const override { return root_; }
  const app::Secret& secret() const override { return secret_; }
  server::AuthThrottle& throttle() override { return throttle_; }
  server::DigestCache& digest_cache() override { return cache_; }
  server::UploadSpace& upload_space() override { return space_; }
  reactor::WorkQueue& work_queue() override { return queue_; }
  const std::vector<std::string>& features() const override { return features_; }
  void retire(server::Session*) override { retired_ = true; }
  bool retired() const { return retired_; }

 private:
  reactor::EventLoop& loop_;
  const server::Options& options_;
  const server::ServedRoot& root_;
  const app::Secret& secret_;
  server::AuthThrottle throttle_;
  server::DigestCache cache_;
  server::UploadSpace space_;
  reactor::WorkQueue queue_;
  std::vector<std::string> features_;
  bool retired_ = false;
};

std::unique_ptr<reactor::EventLoop> g_loop;
std::unique_ptr<server::ServedRoot> g_root;
server::Options g_options;
app::Secret g_secret;

// One pass of the loop that does not wait: a deferred stop ends run() after it.
void spin(int passes = 1) {
  for (int i = 0; i < passes; ++i) {
    g_loop->defer([] { g_loop->stop(); });
    g_loop->run();
  }
}

// Reads what the session sent and checks it frame by frame.
struct Reader {
  protocol::FrameDecoder decoder{protocol::kMaxHeaderLen};
  std::optional<protocol::Message> last;  // the last message decoded
  void pull(int fd) {
    char buf[65536];
    while (true) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return;
      const char* p = buf;
      size_t len = static_cast<size_t>(n);
      while (len > 0) {
        size_t used = 0;
        protocol::DecodeEvent event = decoder.next(p, len, &used);
        if (event.kind == protocol::DecodeEvent::kError) {
          // The session's own HTTP refusal to a browser is the one non-frame it may send.
          return;
        }
        if (event.kind == protocol::DecodeEvent::kHeader) {
          protocol::ProtocolError err;
          last = protocol::parse_message(decoder.header(), decoder.body_length(), &err);
          if (!last) {
            std::fprintf(stderr, "the session sent a malformed message: %s\n", err.message.c_str());
            std::abort();
          }
        }
        p += used;
        len -= used;
        if (event.kind == protocol::DecodeEvent::kNeedMore) break;
      }
    }
  }
};

bool send_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) return false;  // the session stopped reading: fine
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  app::log_init("fuzz", app::LogLevel::kError, false);
  char tmpl[] = "/tmp/fuzz-session.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  g_base = tmpl;
  std::atexit(remove_tree);
  std::string root = g_base + "/root";
  mkdir(root.c_str(), 0755);
  mkdir((root + "/in").c_str(), 0755);
  FILE* f = std::fopen((root + "/a.txt").c_str(), "w");
  std::fputs("hello\n", f);
  std::fclose(f);
  std::string err;
  g_loop = reactor::EventLoop::create(reactor::Backend::kEpoll, &err);
  g_root = server::ServedRoot::open(root, &err);
  if (!g_loop || !g_root) std::abort();
  g_options.writable = true;
  g_options.max_upload = 1 << 20;  // uploads stay small: the disk is not what is fuzzed
  g_options.keep_free_given = true;
  g_secret.key = kKey;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 1 << 16) return 0;
  const int mode = data[0] % 3;  // 0: raw from the start; 1, 2: authenticated in that version
  const unsigned split = data[1];
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  int peer = sv[1];
  {
    Host host(*g_loop, g_options, *g_root, g_secret);
    auto session = std::make_unique<server::Session>(host, 1, reactor::UniqueFd(sv[0]),
                                                     reactor::SocketAddress::ipv4_loopback(1));
    Reader reader;
    if (session->start()) {
      spin(2);
      reader.pull(peer);
      if (mode != 0 && reader.last && std::holds_alternative<protocol::Hello>(*reader.last)) {
        const auto& hello = std::get<protocol::Hello>(*reader.last);
        protocol::Auth auth;
        auth.proto = static_cast<uint64_t>(mode);
        auth.client = "fuzz";
        auth.features = protocol::client_features();
        auth.nonce.fill(7);
        auth.mac = protocol::client_proof(kKey, hello.nonce, auth.nonce, nullptr);
        std::string frame = protocol::encode(auth);
        send_all(peer, frame.data(), frame.size());
        spin(3);
        reader.pull(peer);
      }
      const char* p = reinterpret_cast<const char*>(data + 2);
      size_t left = size - 2;
      size_t piece = 1 + split % 13;
      while (left > 0 && !host.retired()) {
        size_t n = left < piece ? left : piece;
        if (!send_all(peer, p, n)) break;
        p += n;
        left -= n;
        piece = 1 + (piece * 7 + split) % 509;
        spin();
        reader.pull(peer);
      }
      shutdown(peer, SHUT_WR);
      // Until the session closes: commits on the worker thread come back through the loop.
      for (int i = 0; i < 2000 && !host.retired(); ++i) {
        spin();
        reader.pull(peer);
        if (session->state() == server::SessionState::kCommitting)
          std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      if (!host.retired()) session->abort("fuzz input over");
    }
    session.reset();
    spin();
  }
  close(peer);
  return 0;
}
