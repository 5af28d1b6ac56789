#pragma once
// Listener: a listening TCP socket on the event loop that hands each accepted connection,
// already non-blocking and close-on-exec, to an AcceptHandler.
//
// Descriptor exhaustion (EMFILE/ENFILE) is the hard part. The listening socket stays
// readable while connections wait in the backlog, so a level-triggered loop that just
// returns on EMFILE would spin at full CPU. Two defences, in order:
//  1. A spare descriptor (an open /dev/null) is held in reserve. On EMFILE it is closed, the
//     pending connection accepted into the freed slot and closed at once, and the spare
//     reopened -- repeated until the backlog is empty. Clients are turned away with a clean
//     end of file instead of hanging in the backlog.
//  2. If that cannot help (no spare could be reopened, or the accept still fails), the
//     listener stops watching for 100 ms and then tries again: a few wakeups per second,
//     never a busy loop.
// The spare-descriptor trick is only safe single-threaded: another thread could take the
// freed slot. That is this program's model.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/unique_fd.h"

namespace reactor {

class Listener {
 public:
  using AcceptHandler = std::function<void(UniqueFd fd, const SocketAddress& peer)>;
  using ErrorHandler = std::function<void(const std::string& message)>;

  static constexpr int kMaxAcceptsPerWakeup = 64;  // then let other descriptors have a turn
  static constexpr std::chrono::milliseconds kBackoff{100};

  // socket + SO_REUSEADDR (a restarted server can bind while old connections linger in
  // TIME_WAIT) + IPV6_V6ONLY for IPv6 ("[::]" means IPv6 only, never also IPv4) + bind +
  // listen(SOMAXCONN), then watched on `loop`. Port 0 binds an ephemeral port; see
  // local_address(). nullptr + *err such as "bind 127.0.0.1:9000: Address already in use".
  static std::unique_ptr<Listener> open(EventLoop& loop, const SocketAddress& address,
                                        AcceptHandler on_accept, std::string* err);

  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Where it is really bound: the kernel's choice of port when asked for port 0.
  const SocketAddress& local_address() const { return local_; }
  int fd() const { return fd_.get(); }
  bool is_open() const { return static_cast<bool>(fd_); }

  // Stops / restarts accepting; connections meanwhile wait in the kernel's backlog.
  void pause();
  void resume();
  bool paused() const { return user_paused_; }
  // Whether an EMFILE back-off is in progress (accepting resumes by itself).
  bool backing_off() const { return backoff_timer_ != 0; }

  // Stops listening and closes the socket; further connects are refused. Safe from inside
  // the accept handler. Destroying the Listener from inside its own accept handler is not:
  // close() it there and destroy it later, e.g. from loop.defer().
  void close();

  // Receives accept failures worth a log line ("accept 0.0.0.0:9000: Too many open files").
  // Not rate-limited here: that is the logger's policy.
  void set_error_handler(ErrorHandler on_error) { on_error_ = std::move(on_error); }

 private:
  Listener(EventLoop& loop, UniqueFd fd, const SocketAddress& local, AcceptHandler on_accept);
  bool accepting() const { return fd_ && !user_paused_ && backoff_timer_ == 0; }
  bool watch(std::string* err);
  void on_readable();
  void on_exhausted(int errnum);
  void back_off();
  void update_watch();
  void reserve_spare();
  void report(const std::string& message);

  EventLoop& loop_;
  UniqueFd fd_;
  UniqueFd spare_;
  SocketAddress local_;
  AcceptHandler on_accept_;
  ErrorHandler on_error_;
  bool user_paused_ = false;
  TimerId backoff_timer_ = 0;
};

}  // namespace reactor
