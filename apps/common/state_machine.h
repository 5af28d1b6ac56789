#pragma once
// A state machine whose diagram is data: the edges it has, checked at every transition.
// Each protocol state machine (server::Session, client::Connection, the client's
// requests) keeps its state in one of these, so a change of state the diagram does not
// draw is refused and logged in one place instead of silently taken.
//
//   constexpr app::Edge<S> kEdges[] = {{S::kA, S::kB}, {S::kB, S::kC}};
//   app::StateMachine<S> machine_{S::kA, kEdges, to_string};
//   if (!machine_.transition(S::kC, [&] { return "session #7"; })) ...  // refused, logged

#include <cstddef>
#include <string>

#include "apps/common/log.h"

namespace app {

template <typename State>
struct Edge {
  State from;
  State to;
};

template <typename State>
class StateMachine {
 public:
  using Namer = const char* (*)(State);

  template <size_t N>
  constexpr StateMachine(State initial, const Edge<State> (&edges)[N], Namer name)
      : state_(initial), edges_(edges), edge_count_(N), name_(name) {}

  State state() const { return state_; }
  bool is(State state) const { return state_ == state; }

  bool has_edge(State from, State to) const {
    for (size_t i = 0; i < edge_count_; ++i)
      if (edges_[i].from == from && edges_[i].to == to) return true;
    return false;
  }

  // Moves to `next` if the diagram has that edge, logging the change at debug level as
  // "WHO: old -> new"; otherwise logs an error and stays put: false. `who` is called only
  // to log (it builds a string), so the common case costs no allocation.
  template <typename Who>
  bool transition(State next, Who&& who) {
    if (!has_edge(state_, next)) {
      log_error("%s: internal error: no transition %s -> %s", who().c_str(), name_(state_), name_(next));
      return false;
    }
    if (log_enabled(LogLevel::kDebug)) log_debug("%s: %s -> %s", who().c_str(), name_(state_), name_(next));
    state_ = next;
    return true;
  }

 private:
  State state_;
  const Edge<State>* edges_;
  size_t edge_count_;
  Namer name_;
};

}  // namespace app
