#pragma once
// A state machine whose diagram is data: the edges it has, checked at every transition.
// Each protocol state machine (server::Session, client::Connection, the client's
// requests) keeps its state in one of these, so a change of state the diagram does not
// draw is refused and logged in one place instead of silently taken.
//
//   constexpr app::Edge<S> kEdges[] = {{S::kA, S::kB}, {S::kB, S::kC}};
//   constexpr app::Diagram<S> kDiagram{kEdges, to_string};
//   app::StateMachine<S> machine_{S::kA, kDiagram};
//   if (!machine_.transition(S::kC, [&] { return "session #7"; })) ...  // refused, logged

#include <cstddef>
#include <cstdint>
#include <string>

#include "apps/common/log.h"

namespace app {

// A state as a bit, for sets of states (a dispatch table's "allowed in").
template <typename State>
constexpr uint32_t state_bit(State state) {
  return 1u << static_cast<unsigned>(state);
}

template <typename State>
struct Edge {
  State from;
  State to;
};

// The diagram: its edges and how to name a state. One static object per kind of machine,
// so that a machine itself holds only its state and a pointer.
template <typename State>
struct Diagram {
  using Namer = const char* (*)(State);
  template <size_t N>
  constexpr Diagram(const Edge<State> (&edge_table)[N], Namer namer) : edges(edge_table), count(N), name(namer) {}
  const Edge<State>* edges;
  size_t count;
  Namer name;
};

template <typename State>
class StateMachine {
 public:
  // `diagram` must outlive the machine (it is a static table).
  constexpr StateMachine(State initial, const Diagram<State>& diagram) : state_(initial), diagram_(&diagram) {}

  State state() const { return state_; }
  bool is(State state) const { return state_ == state; }

  bool has_edge(State from, State to) const {
    for (size_t i = 0; i < diagram_->count; ++i)
      if (diagram_->edges[i].from == from && diagram_->edges[i].to == to) return true;
    return false;
  }

  // Moves to `next` if the diagram has that edge, logging the change at debug level as
  // "WHO: old -> new"; otherwise logs an error and stays put: false. `who` is called only
  // to log (it builds a string), so the common case costs no allocation.
  template <typename Who>
  bool transition(State next, Who&& who) {
    if (!has_edge(state_, next)) {
      log_error("%s: internal error: no transition %s -> %s", who().c_str(), diagram_->name(state_),
                diagram_->name(next));
      return false;
    }
    if (log_enabled(LogLevel::kDebug))
      log_debug("%s: %s -> %s", who().c_str(), diagram_->name(state_), diagram_->name(next));
    state_ = next;
    return true;
  }

 private:
  State state_;
  const Diagram<State>* diagram_;
};

}  // namespace app
