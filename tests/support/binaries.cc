#include "tests/support/binaries.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tests/support/files.h"

namespace testsupport {

std::string build_dir() {
  const char* env = std::getenv("REACTOR_BUILD_DIR");
  std::string dir = env && *env ? env : "build";
  if (dir[0] == '/') return dir;
  char buf[4096];
  if (!getcwd(buf, sizeof buf)) return dir;
  return path_join(buf, dir);
}

std::optional<std::string> find_binary(std::string_view name, std::string* err) {
  std::string path = path_join(build_dir(), name);
  struct stat st {};
  int e = 0;
  if (stat(path.c_str(), &st) != 0) {
    e = errno;
  } else if (!S_ISREG(st.st_mode)) {
    e = EISDIR;
  } else if (access(path.c_str(), X_OK) != 0) {
    e = errno;
  }
  if (e == 0) return path;
  if (err) {
    const char* env = std::getenv("REACTOR_BUILD_DIR");
    *err = std::string(name) + " not usable at \"" + path + "\": " + std::strerror(e) + " (" +
           (env && *env ? "REACTOR_BUILD_DIR=" + std::string(env)
                        : std::string("REACTOR_BUILD_DIR unset, so build/ under the current "
                                      "directory")) +
           "; build it with `make`, or run the tests through `make test`)";
  }
  return std::nullopt;
}

}  // namespace testsupport
