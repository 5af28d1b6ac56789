#include "apps/reactorc/local_walk.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "protocol/messages.h"
#include "reactor/errors.h"

namespace client {

LocalWalk::LocalWalk(reactor::UniqueFd top, std::string* err) {
  struct stat st {};
  int fd = fcntl(top.get(), F_DUPFD_CLOEXEC, 0);
  DIR* dir = fd >= 0 && fstat(top.get(), &st) == 0 ? fdopendir(fd) : nullptr;
  if (dir == nullptr) {
    *err = reactor::sys_error("read directory");
    if (fd >= 0) close(fd);
    return;
  }
  Level level;
  level.dir.reset(dir);
  level.fd = std::make_shared<const reactor::UniqueFd>(std::move(top));
  level.dev = st.st_dev;
  level.ino = st.st_ino;
  stack_.push_back(std::move(level));
}

bool LocalWalk::enter(const Item& item, std::string* why) {
  if (stack_.size() > kMaxDepth) {
    *why = "more than 64 directory levels deep";
    return false;
  }
  if (item.path.size() > protocol::kMaxPathLen) {
    *why = "its path is longer than the protocol's 4096 bytes";
    return false;
  }
  for (const Level& level : stack_) {
    if (level.dev == item.st.st_dev && level.ino == item.st.st_ino) {
      *why = "it is one of its own ancestors (a bind mount loop): not entered again";
      return false;
    }
  }
  int fd = openat(item.parent->get(), item.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    *why = std::strerror(errno);
    return false;
  }
  int second = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR* dir = second >= 0 ? fdopendir(second) : nullptr;
  if (dir == nullptr) {
    *why = std::strerror(errno);
    if (second >= 0) close(second);
    close(fd);
    return false;
  }
  Level level;
  level.dir.reset(dir);
  level.fd = std::make_shared<const reactor::UniqueFd>(fd);
  level.path = item.path;
  level.dev = item.st.st_dev;
  level.ino = item.st.st_ino;
  stack_.push_back(std::move(level));
  return true;
}

bool LocalWalk::next(Item* item) {
  while (!stack_.empty()) {
    Level& top = stack_.back();
    errno = 0;
    struct dirent* entry = readdir(top.dir.get());
    if (entry == nullptr) {
      int errnum = errno;
      std::string path = top.path;
      stack_.pop_back();
      if (errnum != 0) {
        *item = Item{};
        item->kind = Item::kUnreadable;
        item->path = path;
        item->why = std::string("reading it failed part way: ") + std::strerror(errnum);
        return true;
      }
      continue;
    }
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    *item = Item{};
    item->name = name;
    item->path = top.path.empty() ? name : top.path + "/" + name;
    item->parent = top.fd;
    if (fstatat(top.fd->get(), entry->d_name, &item->st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished
    if (S_ISREG(item->st.st_mode)) {
      item->kind = Item::kFile;
    } else if (S_ISDIR(item->st.st_mode)) {
      item->kind = Item::kDir;
      std::string why;
      if (!enter(*item, &why)) {
        item->kind = Item::kUnreadable;
        item->why = why;
      }
    } else {
      item->kind = Item::kOther;
      item->why = S_ISLNK(item->st.st_mode) ? "a symbolic link, which is not followed" : "not a regular file or directory";
    }
    return true;
  }
  return false;
}

}  // namespace client
