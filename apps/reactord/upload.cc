#include "apps/reactord/upload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/common/human_units.h"
#include "apps/common/locked_file.h"
#include "apps/reactord/options.h"
#include "apps/reactord/served_root.h"
#include "protocol/content_hash.h"
#include "protocol/hex.h"

namespace server {
namespace {

using protocol::ErrorCode;
using protocol::ProtocolError;

constexpr uint64_t kMaxDefaultKeepFree = uint64_t{1} << 30;

using protocol::refuse;
const auto& quoted = protocol::quote_path;

// The protocol's code for a failed system call while storing an upload.
ErrorCode code_for_errno(int errnum) {
  switch (errnum) {
    case ENOSPC:
    case EDQUOT:
      return ErrorCode::kNoSpace;
    case EEXIST:
      return ErrorCode::kExists;
    case EROFS:
      return ErrorCode::kReadOnly;
    case EACCES:
    case EPERM:
      return ErrorCode::kForbidden;
    default:
      return ErrorCode::kIoError;
  }
}

// Whatever is at `name` in `dir` may be replaced by this put: nothing, or (with force) a
// file or a link of any kind; never a directory or the server's secret.
bool check_target(int dir, const std::string& name, const protocol::PutRequest& request, const ServedRoot& root,
                  ProtocolError* err) {
  struct stat st {};
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return true;
    return refuse(err, ErrorCode::kIoError, "stat " + quoted(request.path) + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return refuse(err, ErrorCode::kIsDirectory, quoted(request.path) + " is a directory");
  if (root.is_hidden(st)) return refuse(err, ErrorCode::kForbidden, quoted(request.path) + " is the server's secret file");
  if (!request.force)
    return refuse(err, ErrorCode::kExists, quoted(request.path) + " exists");
  return true;
}

// *in_memory: the directory is on a file system with no disk behind it (tmpfs, ramfs),
// where fsync(2) returns at once.
bool check_space(int dir, const protocol::PutRequest& request, uint64_t needed, const Options& options,
                 const UploadSpace& space, bool* in_memory, ProtocolError* err) {
  if (options.max_upload != 0 && request.size > options.max_upload)
    return refuse(err, ErrorCode::kTooLarge,
                  quoted(request.path) + " is " + app::format_bytes(request.size) + "; this server takes at most " +
                      app::format_bytes(options.max_upload) + " per file");
  struct statfs fs {};
  if (fstatfs(dir, &fs) != 0)
    return refuse(err, ErrorCode::kIoError, std::string("statfs: ") + std::strerror(errno));
  *in_memory = fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
  uint64_t unit = fs.f_frsize != 0 ? static_cast<uint64_t>(fs.f_frsize) : static_cast<uint64_t>(fs.f_bsize);
  uint64_t available = static_cast<uint64_t>(fs.f_bavail) * unit;
  uint64_t total = static_cast<uint64_t>(fs.f_blocks) * unit;
  uint64_t keep = options.keep_free_given ? options.keep_free : default_keep_free(total);
  uint64_t committed = space.outstanding();
  uint64_t usable = available > committed ? available - committed : 0;
  usable = usable > keep ? usable - keep : 0;
  if (needed > usable) {
    std::string why = app::format_bytes(available) + " free";
    if (committed > 0) why += ", " + app::format_bytes(committed) + " promised to uploads in progress";
    why += ", " + app::format_bytes(keep) + " kept in reserve";
    return refuse(err, ErrorCode::kNoSpace,
                  "not enough space for " + quoted(request.path) + " (" + app::format_bytes(request.size) + "): " + why);
  }
  return true;
}

}  // namespace

uint64_t default_keep_free(uint64_t total) {
  uint64_t one_percent = total / 100;
  return one_percent < kMaxDefaultKeepFree ? one_percent : kMaxDefaultKeepFree;
}

void CommitJob::run() {
  if (!sink->verify(expected, &actual)) {
    error = {ErrorCode::kDigestMismatch, "the data of " + quoted(path) + " does not match its end: expected root " +
                                             protocol::to_hex(expected) + ", received " + protocol::to_hex(actual) +
                                             "; nothing was stored"};
    return;
  }
  std::string why;
  if (!sink->commit(options, &why)) {
    int errnum = sink->error_number();
    ErrorCode code = code_for_errno(errnum);
    if (code == ErrorCode::kExists) why = quoted(path) + " appeared during the upload";
    error = {code, why + "; nothing was stored"};
    sink->discard();
    return;
  }
  ok = true;
}

Upload::Upload(const protocol::PutRequest& request, UploadSpace& space)
    : sink_(std::make_unique<app::BodySink>(app::BodySink::Hashing::kBackground, protocol::DigestKind::kTree)),
      force_(request.force),
      space_(space),
      path_(request.path),
      size_(request.size) {
  options_.durable = true;
  options_.mtime = request.mtime;
  // Set-user-ID, set-group-ID and sticky bits are not the client's to give.
  if (request.mode) options_.mode = *request.mode & 0777;
}

Upload::~Upload() {
  cut_short();
  if (claimed_) space_.unclaim(partial_dev_, partial_ino_);
}

void Upload::cut_short() {
  if (resumable_ && sink_) {
    if (sink_->has_file() && start_ + sink_->written() > 0) {
      sink_->keep();  // the partial stays, under its reserved name, for a put -c
      sink_.reset();
    } else if (!sink_->has_file() && held_bytes_ == 0 && dir_) {
      unlinkat(dir_.get(), partial_name_.c_str(), 0);  // made for this put, never written: nothing was created
    }
  }
  abandon();
}

// The kept partial of this file, or a new one, locked; cut to the whole chunks it holds.
bool Upload::open_partial(reactor::UniqueFd dir, const std::string& name, const protocol::PutRequest& request,
                          std::chrono::milliseconds ttl, PartialHolder* holder, ProtocolError* err) {
  partial_name_ = app::resume_name_for(name, request.size, request.root);
  struct stat st {};
  app::LockOutcome outcome = app::open_locked(dir.get(), partial_name_, &partial_, &st);
  if (outcome == app::LockOutcome::kBusy || outcome == app::LockOutcome::kLockError) {
    // Held by a session of ours whose client went silent (the network dropped it, and
    // this is the client back): that one gives way, keeping what it received.
    PartialHolder* other = space_.holder_of(st.st_dev, st.st_ino);
    if (other != nullptr && other->stalled()) other->give_up("a newer resume of the same upload took over");
    if (app::try_lock(partial_.get(), &st) != app::LockOutcome::kLocked)
      return refuse(err, ErrorCode::kInProgress,
                    "another upload is resuming " + quoted(request.path) + " right now; try again when it ends");
  } else if (outcome == app::LockOutcome::kNotRegular) {
    return refuse(err, ErrorCode::kIoError, "the partial upload of " + quoted(request.path) + " is not a regular file");
  } else if (outcome == app::LockOutcome::kOpenError) {
    return refuse(err, code_for_errno(errno), "create the partial upload of " + quoted(request.path) + ": " +
                                                  std::strerror(errno));
  }
  int fd = partial_.get();
  if (holder != nullptr) {
    space_.claim(st.st_dev, st.st_ino, holder);
    claimed_ = true;
    partial_dev_ = st.st_dev;
    partial_ino_ = st.st_ino;
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  auto age = std::chrono::seconds(time(nullptr) - st.st_mtim.tv_sec);
  // Expired, or longer than the file: nothing held. Else the whole chunks, or all of it.
  uint64_t held = size > request.size || age > ttl ? 0 : size == request.size ? size : size / protocol::kChunkSize * protocol::kChunkSize;
  if (held != size && ftruncate(fd, static_cast<off_t>(held)) != 0)
    return refuse(err, code_for_errno(errno), "cut the partial upload of " + quoted(request.path) + ": " +
                                                  std::strerror(errno));
  held_bytes_ = held;
  dir_ = std::move(dir);
  name_ = name;
  resumable_ = true;
  return true;
}

bool Upload::start_body(uint64_t offset, const std::vector<protocol::Digest>& leaves, ProtocolError* err) {
  if (!resumable_) return true;  // the sink was opened by begin()
  uint64_t whole = offset / protocol::kChunkSize + (offset == size_ && offset % protocol::kChunkSize != 0 ? 1 : 0);
  if (whole > leaves.size())
    return refuse(err, ErrorCode::kInternal, "no digests for the chunks before offset " + std::to_string(offset));
  if (ftruncate(partial_.get(), static_cast<off_t>(offset)) != 0 ||
      lseek(partial_.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
    return refuse(err, code_for_errno(errno), "cut the partial upload of " + quoted(path_) + ": " + std::strerror(errno));
  int file = fcntl(partial_.get(), F_DUPFD_CLOEXEC, 0);
  if (file < 0) return refuse(err, ErrorCode::kIoError, std::string("dup: ") + std::strerror(errno));
  std::vector<protocol::Digest> kept(leaves.begin(), leaves.begin() + static_cast<std::ptrdiff_t>(whole));
  std::string why;
  if (!sink_->adopt(std::move(dir_), name_, path_, force_, partial_name_, reactor::UniqueFd(file), kept, offset, &why))
    return refuse(err, ErrorCode::kExists, why);
  start_ = offset;
  // What is already held is no longer promised free space.
  uint64_t done = offset < held_ ? offset : held_;
  held_ -= done;
  space_.release(done);
  return true;
}

std::unique_ptr<Upload> Upload::begin(const protocol::PutRequest& request, const ServedRoot& root,
                                      const Options& options, UploadSpace& space, PartialHolder* holder,
                                      ProtocolError* err) {
  std::string name;
  reactor::UniqueFd dir = root.open_parent(request.path, &name, err);
  if (!dir) return nullptr;
  if (!check_target(dir.get(), name, request, root, err)) return nullptr;
  std::unique_ptr<Upload> upload(new Upload(request, space));
  if (request.resume && options.partial_ttl.count() > 0) {
    if (!upload->open_partial(std::move(dir), name, request, options.partial_ttl, holder, err) ||
        !check_space(upload->dir_.get(), request, request.size - upload->held_bytes_, options, space,
                     &upload->in_memory_, err))
      return nullptr;
    upload->held_ = request.size - upload->held_bytes_;
    space.hold(upload->held_);
    return upload;
  }
  if (!check_space(dir.get(), request, request.size, options, space, &upload->in_memory_, err)) return nullptr;
  std::string why;
  if (!upload->sink_->open_file(std::move(dir), name, request.path, request.force, &why)) {
    int errnum = upload->sink_->error_number();
    ErrorCode code = code_for_errno(errnum);
    if (code == ErrorCode::kExists) code = ErrorCode::kIoError;  // a temporary name, not the target
    refuse(err, code, why);
    return nullptr;
  }
  upload->held_ = request.size;
  space.hold(upload->held_);
  return upload;
}

bool Upload::write(const char* data, size_t len, ProtocolError* err) {
  if (!sink_) return true;  // already over: the rest is discarded
  std::string why;
  if (!sink_->write(data, len, &why)) {
    refuse(err, code_for_errno(sink_->error_number()), why + "; nothing was stored");
    abandon();
    return false;
  }
  received_ += len;
  uint64_t done = len < held_ ? len : held_;
  held_ -= done;
  space_.release(done);
  return true;
}

std::shared_ptr<CommitJob> Upload::finish(const protocol::Digest& expected) {
  auto job = std::make_shared<CommitJob>();
  job->sink = std::move(sink_);
  job->expected = expected;
  job->options = options_;
  job->path = path_;
  job->size = start_ + received_;
  // Nothing of it can wait: no disk under it, no held prefix to hash, and the background
  // hash of at most one chunk is done or all but done.
  job->cannot_block = in_memory_ && start_ == 0 && job->size <= kCommitOnLoopMax;
  space_.release(held_);
  held_ = 0;
  return job;
}

void Upload::abandon() {
  if (sink_) {
    sink_->discard();
    sink_.reset();
  }
  space_.release(held_);
  held_ = 0;
}

}  // namespace server
