#include "reactor/poller.h"

#include <cstdlib>

#include "reactor/epoll_poller.h"
#include "reactor/errors.h"
#include "reactor/poll_poller.h"

namespace reactor {

std::unique_ptr<Poller> make_poller(Backend backend, std::string* err) {
  switch (backend) {
    case Backend::kEpoll:
      return EpollPoller::create(err);
    case Backend::kPoll:
      return std::make_unique<PollPoller>();
  }
  set_error(err, "make_poller: unknown backend");
  return nullptr;
}

bool parse_backend(std::string_view name, Backend* out) {
  if (name == "epoll") {
    *out = Backend::kEpoll;
    return true;
  }
  if (name == "poll") {
    *out = Backend::kPoll;
    return true;
  }
  return false;
}

const char* backend_name(Backend backend) {
  return backend == Backend::kEpoll ? "epoll" : "poll";
}

bool backend_from_env(Backend* out, std::string* err) {
  const char* value = std::getenv("REACTOR_BACKEND");
  if (value == nullptr || *value == '\0') {
    *out = Backend::kEpoll;
    return true;
  }
  if (parse_backend(value, out)) return true;
  return set_error(err, std::string("REACTOR_BACKEND \"") + value +
                            "\": unknown backend (expected \"epoll\" or \"poll\")");
}

}  // namespace reactor
