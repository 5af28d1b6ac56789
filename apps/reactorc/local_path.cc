#include "apps/reactorc/local_path.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "reactor/errors.h"

namespace client {
namespace {

std::string last_component(const std::string& path) {
  size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return {};
  size_t start = path.find_last_of('/', end);
  start = start == std::string::npos ? 0 : start + 1;
  return path.substr(start, end - start + 1);
}

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

bool choose_local_path(const std::string& remote, const std::string& local, std::string* out, std::string* err) {
  std::string base = last_component(remote);
  if (!local.empty() && !is_directory(local) && local.back() != '/') {
    *out = local;
    return true;
  }
  if (base.empty() || base == "." || base == "..") {
    *err = "cannot name the local file after \"" + remote + "\"; give LOCAL explicitly";
    return false;
  }
  *out = local.empty() ? base : (local.back() == '/' ? local + base : local + "/" + base);
  return true;
}

bool open_parent(const std::string& path, reactor::UniqueFd* dir, std::string* name, std::string* err) {
  std::string base = last_component(path);
  if (base.empty() || base == "." || base == ".." || path.back() == '/') {
    *err = "\"" + path + "\" does not name a file";
    return false;
  }
  std::string parent = directory_of(path);
  reactor::UniqueFd fd(open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    *err = reactor::sys_error("create temporary file in", parent);
    return false;
  }
  *dir = std::move(fd);
  *name = base;
  return true;
}

}  // namespace client
