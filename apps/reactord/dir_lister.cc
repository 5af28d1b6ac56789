#include "apps/reactord/dir_lister.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "apps/reactord/served_root.h"
#include "protocol/messages.h"
#include "protocol/utf8.h"
#include "reactor/errors.h"

namespace server {
namespace {

// Header budget per entries frame. An entry costs at most its name JSON-escaped (6
// bytes per byte in the worst case, \u00XX) plus its fixed fields; the estimate keeps
// every frame under the 65,536-byte header limit without encoding twice.
constexpr size_t kFrameBudget = 60 * 1024;
constexpr size_t kEntryOverhead = 96;

size_t worst_case_size(const std::string& name) { return name.size() * 6 + kEntryOverhead; }

bool append(reactor::Buffer& out, const protocol::Message& message) {
  std::string frame = protocol::encode(message);
  return out.append(frame.data(), frame.size());
}

}  // namespace

std::unique_ptr<DirLister> DirLister::open(reactor::UniqueFd dir, const ServedRoot& root, std::string* err) {
  DIR* stream = fdopendir(dir.get());
  if (stream == nullptr) {
    *err = reactor::sys_error("read directory");
    return nullptr;
  }
  dir.release();  // the DIR stream owns the descriptor now
  return std::unique_ptr<DirLister>(new DirLister(stream, root));
}

bool DirLister::produce(reactor::Buffer& out) {
  if (done_) return false;
  protocol::Entries frame;
  size_t used = 64;
  while (used < kFrameBudget) {
    errno = 0;
    struct dirent* entry = readdir(dir_.get());
    if (entry == nullptr) {
      if (errno != 0) {
        done_ = true;
        if (!frame.entries.empty()) append(out, frame);
        append(out, protocol::ErrorMessage{protocol::ErrorCode::kIoError,
                                           std::string("reading the directory failed: ") + std::strerror(errno)});
        return false;
      }
      done_ = true;
      break;
    }
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (!protocol::valid_utf8(name)) {
      ++skipped_;  // JSON cannot carry it; list_end says how many were left out
      continue;
    }
    struct stat st {};
    if (fstatat(dirfd(dir_.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished
    if (root_.is_hidden(st)) continue;
    protocol::Entry item;
    item.name = name;
    item.kind = S_ISREG(st.st_mode) ? protocol::EntryKind::kFile
              : S_ISDIR(st.st_mode) ? protocol::EntryKind::kDir
                                    : protocol::EntryKind::kOther;
    item.size = static_cast<uint64_t>(st.st_size);
    item.mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
    used += worst_case_size(name);
    frame.entries.push_back(std::move(item));
    ++count_;
  }
  if (!frame.entries.empty()) append(out, frame);
  if (done_) {
    protocol::ListEnd end;
    end.count = count_;
    end.skipped = skipped_;
    append(out, end);
    return false;
  }
  return true;
}

}  // namespace server
