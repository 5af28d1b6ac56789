#pragma once
// One connection at a --tutorial-listen listener: the wire format of the socket
// tutorial reactor grew out of (reactor-tutorial(7)), spoken so that the tutorial's own
// server.py/client.py scripts work against reactord, on the same loop as everything
// else, without a thread per client.
//
//   [auth]   32 random bytes out; 32 hex digits in: HMAC-MD5(secret, bytes), compared
//            in constant time. Wrong: logged and closed.
//   download (--tutorial-file): a 4-byte length as struct.pack('i') packs it (native
//            byte order, signed), the JSON dict {"filename", "filesize"} (and with
//            --tutorial-md5 "filename_md5" and "buffer_size", after hashing the file on
//            the worker), the file's bytes, then close.
//   chat     (no file): "hello" out; each chunk the client sends is logged and answered
//            with "hello" again, as the socketserver lesson's server does.
//
// The byte order is the tutorial's, not the main protocol's (big-endian, unsigned):
// this listener exists to talk to those scripts, on the machine they run on.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "apps/reactord/served_root.h"
#include "reactor/buffer.h"
#include "reactor/event_loop.h"
#include "reactor/unique_fd.h"
#include "reactor/work_queue.h"

namespace server {

struct TutorialConfig {
  std::string file;  // inside the served root; empty: the chat
  bool md5 = false;
  bool auth = false;
  std::string key;  // the secret file's bytes, for auth
  std::chrono::milliseconds auth_timeout{10'000};
};

class TutorialSession {
 public:
  using Clock = reactor::EventLoop::Clock;
  // `on_closed` runs once, when the session is done; the owner destroys it later
  // (after the dispatch pass), not from inside the callback.
  TutorialSession(reactor::EventLoop& loop, reactor::WorkQueue& work, const ServedRoot& root,
                  const TutorialConfig& config, uint64_t id, reactor::UniqueFd fd, std::string peer,
                  std::function<void(TutorialSession*)> on_closed);
  ~TutorialSession();
  TutorialSession(const TutorialSession&) = delete;
  TutorialSession& operator=(const TutorialSession&) = delete;

  bool start();
  uint64_t id() const { return id_; }
  bool closed() const { return state_ == State::kClosed; }
  // The once-a-second sweep: the answer's deadline, and idleness.
  void check_timeouts(Clock::time_point now, Clock::duration idle_timeout);
  void close(const std::string& why);

 private:
  // kDraining: the file is out and our side shut; waiting for the client to close, so
  // that input it sent cannot turn our close into a reset that destroys the file's end.
  enum class State { kChallenge, kHashing, kSending, kDraining, kChat, kClosed };

  void on_events(uint32_t events);
  void read_answer();
  void read_chat();
  void read_until_end();
  void after_auth();
  void start_download();
  void send_header(const std::string& md5_hex);
  bool flush();  // false: closed
  void update_interest();
  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  reactor::EventLoop& loop_;
  reactor::WorkQueue& work_;
  const ServedRoot& root_;
  const TutorialConfig& config_;
  uint64_t id_;
  reactor::UniqueFd fd_;
  std::string peer_;
  std::function<void(TutorialSession*)> on_closed_;
  State state_ = State::kChallenge;
  reactor::Buffer out_;
  std::string challenge_;
  std::string answer_;
  std::shared_ptr<reactor::UniqueFd> file_;
  uint64_t file_size_ = 0;
  uint64_t file_offset_ = 0;  // the body: how far sendfile has gone
  bool body_queued_ = false;  // the header is queued and the body follows it
  reactor::WorkQueue::Id hash_job_ = 0;
  Clock::time_point started_{};
  Clock::time_point last_activity_{};
  Clock::time_point drain_deadline_{};
  uint32_t interest_ = 0;
};

}  // namespace server
