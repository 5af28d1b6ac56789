#include "apps/common/regular_file.h"

#include <fcntl.h>

#include <cerrno>

#include "reactor/errors.h"

namespace app {

reactor::UniqueFd open_regular_file(const std::string& path, const char* what, int extra_flags, struct stat* st,
                                    int* open_errno, std::string* err) {
  *open_errno = 0;
  // Non-blocking: a FIFO put in the file's place must not hang the program at open.
  reactor::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | extra_flags));
  if (!fd) {
    *open_errno = errno;
    *err = reactor::sys_error(std::string("open ") + what, path);
    return {};
  }
  if (fstat(fd.get(), st) != 0) {
    *err = reactor::sys_error(std::string("stat ") + what, path);
    return {};
  }
  if (!S_ISREG(st->st_mode)) {
    *err = std::string(what) + " \"" + path + "\" is not a regular file";
    return {};
  }
  return fd;
}

}  // namespace app
