#pragma once
// reactorc --tutorial get [LOCAL]: a download from the socket tutorial's server.py (or
// reactord --tutorial-listen), in that tutorial's wire format (see
// apps/reactord/tutorial_session.h and reactor-tutorial(7)), done the way the tutorial's
// client.py should have done it:
//   - the 4-byte length is read whole (recv(4) may return fewer), and bounded;
//   - the server's "filename" is never a path: LOCAL, or that name's last component if
//     it is a plain name;
//   - the bytes go to a temporary name, renamed only once exactly "filesize" of them
//     came, followed by the end of the stream, and their MD5 matched where the server
//     sent one: a corrupt download is deleted (status 6), never left under its name;
//   - the progress line and elapsed time of every other download.
// With --tutorial-auth, the HMAC-MD5 legitimacy check comes first.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "apps/common/body_sink.h"
#include "apps/common/secret.h"
#include "apps/reactorc/options.h"
#include "apps/reactorc/progress.h"
#include "reactor/connector.h"
#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/unique_fd.h"

namespace client {

class TutorialGet {
 public:
  // `secret`: the key of --tutorial-auth (may be null without it).
  TutorialGet(reactor::EventLoop& loop, const Options& options, const app::Secret* secret);
  ~TutorialGet();
  TutorialGet(const TutorialGet&) = delete;
  TutorialGet& operator=(const TutorialGet&) = delete;

  bool prepare();
  void start(std::vector<reactor::SocketAddress> addresses);
  void interrupt(const char* signal_name);
  int exit_code() const { return exit_code_; }

 private:
  enum class Step { kConnecting, kChallenge, kLength, kHeader, kBody, kEnd, kDone };

  void on_connected(reactor::UniqueFd fd, reactor::ConnectError error, const std::string& message);
  void on_events(uint32_t events);
  bool take(const char* data, size_t len);  // false: finished (either way)
  bool on_header(const std::string& text);
  bool open_destination(const std::string& server_name, std::string* err);
  void on_body_done();
  void fail(int code, const std::string& message);
  void finish(int code);

  reactor::EventLoop& loop_;
  const Options& options_;
  const app::Secret* secret_;
  std::unique_ptr<reactor::Connector> connector_;
  reactor::UniqueFd fd_;
  std::string peer_;
  Step step_ = Step::kConnecting;
  std::string pending_;  // the challenge, the length or the header, as it arrives
  size_t header_length_ = 0;
  uint64_t size_ = 0;
  uint64_t received_ = 0;
  std::string expected_md5_;  // empty: the basic variant, which sends none
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md5_;
  std::unique_ptr<app::BodySink> sink_;
  // LOCAL as given ("": the server's name), and the stream it names, if it is one.
  std::string local_;
  std::unique_ptr<Progress> progress_;
  reactor::EventLoop::TimerId tick_timer_ = 0;
  reactor::EventLoop::Clock::time_point last_activity_{};
  int exit_code_ = 1;
};

}  // namespace client
