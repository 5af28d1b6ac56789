#pragma once
// Connector: the client's non-blocking connect() with a time limit, trying each address of
// a resolve() result in turn until one connects.
//
// Each address gets the full timeout, so the worst case is addresses x timeout; in practice
// a refused or unreachable address fails at once and the next is tried immediately.
//
// The callback runs exactly once, always from the event loop (never from inside the
// constructor), with either a connected fd (TCP_NODELAY set, kNone, empty message; not
// registered with the loop, or registered for the new owner after hand_over()) or an
// empty fd, the kind of the last failure and a message naming every address tried:
//   connect 127.0.0.1:9: Connection refused
//   connect [::1]:9000: Connection refused; connect 127.0.0.1:9000: timed out after 5.0 s
// The callback may destroy the Connector. Destroying it earlier cancels the attempt and the
// callback is not called.
//
// With a `source` address, every attempt of that family is bound to it first (the port is
// still chosen by the kernel); attempts of the other family go out unbound.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "reactor/event_loop.h"
#include "reactor/socket_address.h"
#include "reactor/unique_fd.h"

namespace reactor {

enum class ConnectError { kNone, kRefused, kUnreachable, kTimedOut, kOther };

const char* to_string(ConnectError kind);

class Connector {
 public:
  using Clock = EventLoop::Clock;
  using Callback = std::function<void(UniqueFd fd, ConnectError kind, const std::string& err)>;

  // Starts at once: the first attempt is made from the loop's next deferred-task pass.
  Connector(EventLoop& loop, std::vector<SocketAddress> addresses, Clock::duration timeout,
            Callback on_done, const SocketAddress* source = nullptr);
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // Before the outcome: hand a connected fd over still registered with the loop, with
  // `events` and `handler` (EventLoop::replace), instead of unregistered: the new owner
  // then need not add() it, and the kernel is spared a DEL and an ADD per connection.
  void hand_over(uint32_t events, EventLoop::IoHandler handler);

  bool done() const { return done_; }
  // After a successful callback: the address the fd is connected to.
  const SocketAddress& peer() const { return addresses_[next_ - 1]; }

 private:
  void try_next();
  void on_writable();
  bool may_connect_to_itself(const SocketAddress& address) const;
  void on_timeout();
  void note(ConnectError kind, std::string message);
  void succeed(UniqueFd fd, bool registered);
  void finish(UniqueFd fd, ConnectError kind);
  void stop_waiting();

  EventLoop& loop_;
  std::vector<SocketAddress> addresses_;
  SocketAddress source_;  // AF_UNSPEC: no source binding
  size_t next_ = 0;  // index of the next address to try
  Clock::duration timeout_;
  Callback on_done_;
  UniqueFd fd_;  // the attempt in progress
  TimerId timer_ = 0;
  ConnectError last_kind_ = ConnectError::kOther;
  std::string errors_;
  bool done_ = false;
  uint32_t handover_events_ = 0;
  EventLoop::IoHandler handover_;  // empty: hand the fd over unregistered
  // Lets the deferred first attempt notice that the Connector was destroyed before it ran.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace reactor
