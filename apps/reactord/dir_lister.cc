#include "apps/reactord/dir_lister.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "apps/common/body_sink.h"
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

size_t DirLister::produce(reactor::Buffer& out, size_t) {
  if (done_) return 0;
  size_t produced = 0;
  protocol::Entries frame;
  // Exact header size as entries are added (see protocol::encoded_entry_size), so each
  // frame is packed up to the 64 KiB limit and never over it.
  size_t used = protocol::kEntriesHeaderBase;
  if (pending_) {
    used += protocol::encoded_entry_size(*pending_);
    frame.entries.push_back(std::move(*pending_));
    pending_.reset();
  }
  while (true) {
    errno = 0;
    struct dirent* entry = readdir(dir_.get());
    if (entry == nullptr) {
      if (errno != 0) {
        int errnum = errno;
        done_ = true;
        if (!frame.entries.empty()) produced += append(out, frame);
        produced += append(out, protocol::ErrorMessage{protocol::ErrorCode::kIoError,
                                                       std::string("reading the directory failed: ") +
                                                           std::strerror(errnum)});
        return produced;
      }
      done_ = true;
      break;
    }
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (app::is_temp_name(name)) continue;  // an upload in progress: not a file yet
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
    ++count_;
    size_t cost = protocol::encoded_entry_size(item) + (frame.entries.empty() ? 0 : 1);
    if (used + cost > protocol::kMaxHeaderLen) {
      pending_ = std::move(item);  // opens the next frame
      break;
    }
    used += cost;
    frame.entries.push_back(std::move(item));
  }
  if (!frame.entries.empty()) produced += append(out, frame);
  if (done_) {
    protocol::ListEnd end;
    end.count = count_;
    end.skipped = skipped_;
    produced += append(out, end);
  }
  return produced;
}

}  // namespace server
