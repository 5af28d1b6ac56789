#include "reactor/errors.h"

#include <cerrno>
#include <cstring>

namespace reactor {

std::string errno_string(int errnum) {
  char buf[128];
  // _GNU_SOURCE selects the GNU strerror_r, which may return a static string instead of
  // filling buf; use whatever it returns.
  const char* text = ::strerror_r(errnum, buf, sizeof buf);
  return text != nullptr ? std::string(text) : "error " + std::to_string(errnum);
}

std::string sys_error(int errnum, std::string_view what, std::string_view object) {
  std::string out(what);
  if (!object.empty()) {
    out += " \"";
    out += object;
    out += '"';
  }
  out += ": ";
  out += errno_string(errnum);
  return out;
}

std::string sys_error(std::string_view what, std::string_view object) {
  int errnum = errno;  // before anything below can change it
  return sys_error(errnum, what, object);
}

bool set_error(std::string* err, std::string message) {
  if (err != nullptr) *err = std::move(message);
  return false;
}

}  // namespace reactor
