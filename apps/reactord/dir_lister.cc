#include "apps/reactord/dir_lister.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/common/body_sink.h"
#include "apps/common/symlink_at.h"
#include "apps/reactord/served_root.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "protocol/utf8.h"
#include "reactor/errors.h"

namespace server {
namespace {

// The frame's size, or 0 if the output buffer refused it (it is at its 64 MiB limit:
// the stream stops producing until the socket drains, and the frame is built again).
size_t append(reactor::Buffer& out, const protocol::Message& message) {
  std::string frame = protocol::encode(message);
  return out.append(frame.data(), frame.size()) ? frame.size() : 0;
}

protocol::EntryKind kind_of(const struct stat& st) {
  return S_ISREG(st.st_mode)   ? protocol::EntryKind::kFile
         : S_ISDIR(st.st_mode) ? protocol::EntryKind::kDir
                               : protocol::EntryKind::kOther;
}

}  // namespace

std::unique_ptr<DirLister> DirLister::open(reactor::UniqueFd dir, const ServedRoot& root, Options options,
                                           std::string* err) {
  struct stat st {};
  if (fstat(dir.get(), &st) != 0) {
    *err = reactor::sys_error("read directory");
    return nullptr;
  }
  DIR* stream = fdopendir(dir.get());
  if (stream == nullptr) {
    *err = reactor::sys_error("read directory");
    return nullptr;
  }
  dir.release();  // the DIR stream owns the descriptor now
  Level top;
  top.dir.reset(stream);
  top.dev = st.st_dev;
  top.ino = st.st_ino;
  return std::unique_ptr<DirLister>(new DirLister(std::move(top), root, options));
}

DirLister::DirLister(Level top, const ServedRoot& root, Options options)
    : root_(root), recursive_(options.recursive), links_(options.links) {
  stack_.push_back(std::move(top));
}

std::string DirLister::child_path(const std::string& name) const {
  const std::string& parent = stack_.back().path;
  return parent.empty() ? name : parent + "/" + name;
}

void DirLister::open_subdir(const std::string& name, Pending* next) {
  bool too_deep = stack_.size() > kMaxDepth || child_path(name).size() > protocol::kMaxPathLen;
  int fd = too_deep ? -1
                    : openat(dirfd(stack_.back().dir.get()), name.c_str(),
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  struct stat st {};
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    bool loops = false;
    for (const Level& level : stack_) loops = loops || (level.dev == st.st_dev && level.ino == st.st_ino);
    if (!loops) {
      if (DIR* stream = fdopendir(fd)) {
        next->subdir.reset(stream);
        next->dev = st.st_dev;
        next->ino = st.st_ino;
        return;
      }
    }
  }
  if (fd >= 0) close(fd);
  ++unreadable_;  // listed, not descended into
}

bool DirLister::read_entry(Pending* next, int* read_error) {
  DIR* dir = stack_.back().dir.get();
  while (true) {
    errno = 0;
    struct dirent* entry = readdir(dir);
    if (entry == nullptr) {
      *read_error = errno;
      return false;
    }
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (app::is_temp_name(name)) continue;  // an upload in progress: not a file yet
    if (!protocol::valid_utf8(name)) {
      ++skipped_;  // JSON cannot carry it; list_end says how many were left out
      continue;
    }
    struct stat st {};
    if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ++vanished_;  // removed since readdir saw it (or unreadable in a way stat tells)
      continue;
    }
    if (root_.is_hidden(st)) continue;
    next->entry = protocol::Entry{};
    next->entry.name = std::move(name);
    next->entry.kind = kind_of(st);
    next->entry.size = static_cast<uint64_t>(st.st_size);
    next->entry.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
    next->subdir.reset();
    if (links_ && S_ISLNK(st.st_mode)) {
      // Replaced by something else since the stat: described as it was, kind other.
      next->entry.target = app::read_link_target(dirfd(dir), entry->d_name);
      if (next->entry.target) next->entry.kind = protocol::EntryKind::kLink;
    }
    next->entry.mode = static_cast<uint32_t>(st.st_mode & 07777);
    if (recursive_ && next->entry.kind == protocol::EntryKind::kDir) open_subdir(next->entry.name, next);
    ++count_;
    return true;
  }
}

size_t DirLister::produce(reactor::Buffer& out, size_t budget) {
  if (done_) return 0;
  if (yield_next_) {
    yield_next_ = false;
    return 0;
  }
  size_t produced = frames(out, budget);
  yield_next_ = produced > 0 && !done_;
  return produced;
}

size_t DirLister::frames(reactor::Buffer& out, size_t) {
  size_t produced = 0;
  while (!done_) {
    protocol::Entries frame;
    if (recursive_) frame.dir = stack_.back().path;
    // Exact header size as entries are added (see protocol::encoded_entry_size), so each
    // frame is packed up to the 64 KiB limit and never over it.
    size_t used = protocol::kEntriesHeaderBase + (recursive_ ? protocol::encoded_dir_size(*frame.dir) : 0);
    std::optional<Level> descend;
    int read_error = 0;
    bool level_ended = false;
    while (true) {
      Pending next;
      if (pending_) {
        next = std::move(*pending_);
        pending_.reset();
      } else if (!read_entry(&next, &read_error)) {
        level_ended = true;
        break;
      }
      size_t cost = protocol::encoded_entry_size(next.entry) + (frame.entries.empty() ? 0 : 1);
      bool full = used + cost > protocol::kMaxHeaderLen || frame.entries.size() >= kEntriesPerFrame;
      if (full && !frame.entries.empty()) {
        pending_ = std::move(next);  // opens the next frame
        break;
      }
      used += cost;
      std::string name = next.entry.name;
      frame.entries.push_back(std::move(next.entry));
      if (next.subdir) {
        // The entry that announces a directory ends its frame; the next frame is inside it.
        descend.emplace();
        descend->dir = std::move(next.subdir);
        descend->path = child_path(name);
        descend->dev = next.dev;
        descend->ino = next.ino;
        break;
      }
    }
    if (level_ended && read_error != 0 && !recursive_) {
      done_ = true;
      if (!frame.entries.empty()) produced += append(out, frame);
      produced += append(out, protocol::ErrorMessage{protocol::ErrorCode::kIoError,
                                                     std::string("reading the directory failed: ") +
                                                         std::strerror(read_error)});
      return produced;
    }
    if (!frame.entries.empty()) produced += append(out, frame);
    if (descend) {
      stack_.push_back(std::move(*descend));
      return produced;
    }
    if (!level_ended) return produced;  // a full frame
    if (read_error != 0) ++unreadable_;  // the entries already sent stand
    if (stack_.size() > 1) {
      stack_.pop_back();  // back up to the parent, which goes on where it was
      if (produced > 0) return produced;
      continue;
    }
    done_ = true;
    protocol::ListEnd end;
    end.count = count_;
    end.skipped = skipped_;
    end.unreadable = unreadable_;
    end.vanished = vanished_;
    produced += append(out, end);
  }
  return produced;
}

}  // namespace server
