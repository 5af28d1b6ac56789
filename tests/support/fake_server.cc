#include "tests/support/fake_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "tests/support/address.h"
#include "tests/support/hmac_auth.h"

namespace testsupport {

bool FakePeer::send(const std::string& header, const std::string& body) { return stream.send_frame(header, body); }

FakeServer::FakeServer(std::string secret_text, Script script, std::vector<std::string> features)
    : key_(secret_key_from_text(secret_text)), script_(std::move(script)), features_(std::move(features)) {
  listener_ = Fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!listener_.valid() || bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener_.get(), 16) != 0)
    return;
  auto local = local_address(listener_.get());
  if (local) address_ = local->to_string();
  acceptor_ = std::thread([this] { accept_loop(); });
}

FakeServer::~FakeServer() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // wakes the threads blocked on them
  }
  for (std::thread& t : connections_) t.join();
}

std::vector<std::string> FakeServer::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

void FakeServer::accept_loop() {
  size_t index = 0;
  while (!stopping_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mutex_);
    open_fds_.push_back(fd);
    connections_.emplace_back([this, fd, index] { serve(Fd(fd), index); });
    ++index;
  }
}

void FakeServer::serve(Fd fd, size_t index) {
  FakePeer peer{RawClient(std::move(fd)), index};
  std::string server_nonce = random_bytes(kNonceBytes);
  std::string features;
  for (const std::string& f : features_) features += (features.empty() ? "\"" : ",\"") + f + "\"";
  if (!peer.send("{\"type\":\"hello\",\"proto\":2,\"server\":\"fake/0\",\"features\":[" + features +
                 "],\"nonce\":\"" + hex_encode(server_nonce) + "\"}"))
    return;
  ReadResult auth = peer.stream.read_frame(Millis(10000));
  if (!auth.ok() || auth.frame.type() != "auth") return;
  auto nonce = auth.frame.string_field("nonce");
  auto client_nonce = nonce ? hex_decode(*nonce) : std::nullopt;
  if (!client_nonce) return;
  if (!peer.send("{\"type\":\"auth_ok\",\"proto\":2,\"mac\":\"" + server_mac_hex(key_, server_nonce, *client_nonce) +
                 "\"}"))
    return;
  while (!stopping_) {
    ReadResult request = peer.stream.read_frame(Millis(200));
    if (request.status == ReadStatus::kTimeout) continue;
    if (!request.ok()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto path = request.frame.string_field("path");
      requests_.push_back(request.frame.type() + (path ? " " + *path : ""));
    }
    script_(peer, request.frame);
  }
}

}  // namespace testsupport
