#include "apps/reactord/upload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "apps/common/human_units.h"
#include "apps/reactord/options.h"
#include "apps/reactord/served_root.h"
#include "protocol/hex.h"

namespace server {
namespace {

using protocol::ErrorCode;
using protocol::ProtocolError;

constexpr uint64_t kMaxDefaultKeepFree = uint64_t{1} << 30;

bool refuse(ProtocolError* err, ErrorCode code, std::string message) {
  err->code = code;
  err->message = std::move(message);
  return false;
}

std::string quoted(const std::string& path) { return "\"" + path + "\""; }

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

bool check_space(int dir, const protocol::PutRequest& request, const Options& options, const UploadSpace& space,
                 ProtocolError* err) {
  if (options.max_upload != 0 && request.size > options.max_upload)
    return refuse(err, ErrorCode::kTooLarge,
                  quoted(request.path) + " is " + app::format_bytes(request.size) + "; this server takes at most " +
                      app::format_bytes(options.max_upload) + " per file");
  struct statvfs fs {};
  if (fstatvfs(dir, &fs) != 0)
    return refuse(err, ErrorCode::kIoError, std::string("statvfs: ") + std::strerror(errno));
  uint64_t unit = fs.f_frsize != 0 ? fs.f_frsize : fs.f_bsize;
  uint64_t available = static_cast<uint64_t>(fs.f_bavail) * unit;
  uint64_t total = static_cast<uint64_t>(fs.f_blocks) * unit;
  uint64_t keep = options.keep_free_given ? options.keep_free : default_keep_free(total);
  uint64_t committed = space.outstanding();
  uint64_t usable = available > committed ? available - committed : 0;
  usable = usable > keep ? usable - keep : 0;
  if (request.size > usable) {
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
      space_(space),
      path_(request.path),
      size_(request.size) {
  options_.durable = true;
  options_.mtime = request.mtime;
  // Set-user-ID, set-group-ID and sticky bits are not the client's to give.
  if (request.mode) options_.mode = *request.mode & 0777;
}

Upload::~Upload() {
  abandon();
}

std::unique_ptr<Upload> Upload::begin(const protocol::PutRequest& request, const ServedRoot& root,
                                      const Options& options, UploadSpace& space, ProtocolError* err) {
  std::string name;
  reactor::UniqueFd dir = root.open_parent(request.path, &name, err);
  if (!dir) return nullptr;
  if (!check_target(dir.get(), name, request, root, err) || !check_space(dir.get(), request, options, space, err))
    return nullptr;
  std::unique_ptr<Upload> upload(new Upload(request, space));
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
