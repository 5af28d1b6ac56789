#include "apps/common/symlink_at.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/common/body_sink.h"
#include "protocol/messages.h"
#include "protocol/utf8.h"

namespace app {

bool link_stays_within(size_t depth, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  size_t start = 0;
  while (start <= target.size()) {
    size_t slash = target.find('/', start);
    if (slash == std::string_view::npos) slash = target.size();
    std::string_view component = target.substr(start, slash - start);
    start = slash + 1;
    if (component.empty() || component == ".") continue;
    if (component == "..") {
      if (depth == 0) return false;
      --depth;
    } else {
      ++depth;
    }
  }
  return true;
}

std::string link_escape_reason(std::string_view target, const char* top) {
  return !target.empty() && target.front() == '/' ? "is absolute" : std::string("leads out of ") + top;
}

std::optional<std::string> read_link_target(int dir, const char* name, int* errnum) {
  if (errnum != nullptr) *errnum = 0;
  char buf[protocol::kMaxPathLen + 1];
  ssize_t n = readlinkat(dir, name, buf, sizeof buf);
  if (n < 0 && errnum != nullptr) *errnum = errno;
  if (n <= 0 || static_cast<size_t>(n) > protocol::kMaxPathLen) return std::nullopt;
  std::string target(buf, static_cast<size_t>(n));
  if (!protocol::valid_utf8(target)) return std::nullopt;
  return target;
}

size_t depth_of(std::string_view relative_path) {
  size_t depth = 0;
  size_t start = 0;
  while (true) {
    size_t slash = relative_path.find('/', start);
    if (slash == std::string_view::npos) return depth;
    if (slash > start) ++depth;
    start = slash + 1;
  }
}

SymlinkResult make_symlink_at(int dir, const std::string& name, const std::string& target, bool replace,
                              const std::string& display, bool* replaced, std::string* err) {
  struct stat st {};
  *replaced = fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (*replaced && S_ISDIR(st.st_mode)) return SymlinkResult::kIsDirectory;
  if (*replaced && S_ISLNK(st.st_mode) && static_cast<size_t>(st.st_size) == target.size()) {
    std::string current(target.size() + 1, '\0');
    ssize_t n = readlinkat(dir, name.c_str(), current.data(), current.size());
    if (n >= 0 && static_cast<size_t>(n) == target.size() && current.compare(0, target.size(), target) == 0) {
      *replaced = false;
      return SymlinkResult::kUnchanged;
    }
  }
  if (*replaced && !replace) return SymlinkResult::kExists;
  // A few names, as mkstemp would try: a collision with another writer's temporary
  // is vanishingly rare, and EEXIST from symlinkat says it happened.
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string temp = temp_name_for(name);
    if (symlinkat(target.c_str(), dir, temp.c_str()) != 0) {
      if (errno == EEXIST) continue;
      *err = "symlink \"" + display + "\": " + std::strerror(errno);
      return SymlinkResult::kFailed;
    }
    // Without `replace`, RENAME_NOREPLACE closes the window in which another writer
    // could have made `name` since the fstatat above.
    int rc = replace ? renameat(dir, temp.c_str(), dir, name.c_str())
                     : renameat2(dir, temp.c_str(), dir, name.c_str(), RENAME_NOREPLACE);
    if (rc == 0) return SymlinkResult::kMade;
    int saved = errno;
    unlinkat(dir, temp.c_str(), 0);
    if (saved == EEXIST) return SymlinkResult::kExists;
    if (saved == EISDIR || saved == ENOTEMPTY) return SymlinkResult::kIsDirectory;
    *err = "symlink \"" + display + "\": " + std::strerror(saved);
    return SymlinkResult::kFailed;
  }
  *err = "symlink \"" + display + "\": no free temporary name";
  return SymlinkResult::kFailed;
}

}  // namespace app
