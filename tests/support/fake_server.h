#pragma once
// A reactord impostor for the client's tests: it holds the secret and speaks the plain
// protocol (version 2) honestly up to auth_ok, then answers each request the way the
// test's script says, lies included. Each connection it accepts is served by a thread of
// its own with blocking sockets; the destructor stops them all.
//
//   FakeServer fake(secret, [](FakePeer& peer, const Frame& request) { ... peer.send(...) });
//   reactorc --plain -s fake.address() ...

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fd.h"
#include "tests/support/raw_client.h"

namespace testsupport {

struct FakePeer {
  RawClient stream;
  size_t index = 0;  // which connection: 0 for the first accepted
  // Sends a frame with `header` (a JSON object's text) and `body`; false once the
  // client has gone.
  bool send(const std::string& header, const std::string& body = {});
};

class FakeServer {
 public:
  // Called for every request frame; it answers with peer.send(). Runs on the
  // connection's thread.
  using Script = std::function<void(FakePeer& peer, const Frame& request)>;

  // `secret_text`: the secret file's contents. `features`: what hello offers.
  FakeServer(std::string secret_text, Script script,
             std::vector<std::string> features = {"get", "stat", "list", "ping", "msg", "resume", "put", "digests",
                                                  "tree"});
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  const std::string& address() const { return address_; }
  // Requests received so far, in order, each as "type path" (path if it has one).
  std::vector<std::string> requests() const;

 private:
  void accept_loop();
  void serve(Fd fd, size_t index);

  std::string key_;
  Script script_;
  std::vector<std::string> features_;
  Fd listener_;
  std::string address_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::vector<int> open_fds_;
  std::vector<std::string> requests_;
};

}  // namespace testsupport
