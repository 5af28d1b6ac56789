#include "apps/common/body_sink.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "protocol/hex.h"
#include "protocol/sha256.h"
#include "reactor/errors.h"

namespace app {
namespace {

// 64 unpredictable bits, drawn once per process: a get -r of 10,000 files must not pay
// a getrandom(2) per file for names that only need to be unique and hard to guess.
uint64_t process_seed() {
  static const uint64_t seed = [] {
    uint64_t value = 0;
    if (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value))
      value = static_cast<uint64_t>(getpid()) * 2654435761u ^ static_cast<uint64_t>(time(nullptr));
    return value;
  }();
  return seed;
}

// splitmix64: each call's name differs, and without the seed none can be predicted.
uint64_t next_random() {
  static std::atomic<uint64_t> counter{0};
  uint64_t z = process_seed() + 0x9e3779b97f4a7c15ull * (counter.fetch_add(1, std::memory_order_relaxed) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

// Uniqueness, not secrecy, is what matters; O_EXCL catches a collision.
std::string temp_name_for(const std::string& name) {
  static const char kLetters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t random = next_random();
  std::string suffix;
  for (int i = 0; i < 6; ++i) {
    suffix += kLetters[random % (sizeof kLetters - 1)];
    random /= sizeof kLetters - 1;
  }
  return "." + name + "." + suffix + ".part";
}

namespace {

// The process's umask, read once: umask(2) can only be read by setting it, and doing
// that twice per file would cost two system calls each (and race another thread's
// file creation in between).
mode_t process_umask() {
  static const mode_t mask = [] {
    mode_t m = umask(0);
    umask(m);
    return m;
  }();
  return mask;
}

constexpr char kTempSuffix[] = ".part";
constexpr size_t kTempRandom = 6;

}  // namespace

bool is_resume_name(std::string_view name) {
  // "." STEM "." 24 hex digits ".resume"
  constexpr std::string_view kSuffix = ".resume";
  constexpr size_t kHex = 24;
  if (name.size() < 1 + 1 + 1 + kHex + kSuffix.size() || name.front() != '.') return false;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  std::string_view hex = name.substr(name.size() - kSuffix.size() - kHex, kHex);
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return name[name.size() - kSuffix.size() - kHex - 1] == '.';
}

std::string resume_name_for(const std::string& name, uint64_t size, const protocol::Digest& root) {
  unsigned char key[8 + 32];
  for (int i = 0; i < 8; ++i) key[i] = static_cast<unsigned char>(size >> (56 - 8 * i));
  std::memcpy(key + 8, root.data(), root.size());
  std::string hex = protocol::to_hex(protocol::sha256(key, sizeof key)).substr(0, 24);
  // Within NAME_MAX: a long name keeps its first 160 bytes and a hash of the whole.
  std::string stem = name.size() <= 200 ? name
                                        : name.substr(0, 160) + "~" +
                                              protocol::to_hex(protocol::sha256(name.data(), name.size())).substr(0, 16);
  return "." + stem + "." + hex + ".resume";
}

bool is_temp_name(std::string_view name) {
  if (is_resume_name(name)) return true;
  // "." NAME "." XXXXXX ".part", NAME at least one byte.
  const size_t suffix = sizeof kTempSuffix - 1;
  if (name.size() < 1 + 1 + 1 + kTempRandom + suffix || name.front() != '.') return false;
  if (name.substr(name.size() - suffix) != kTempSuffix) return false;
  std::string_view random = name.substr(name.size() - suffix - kTempRandom, kTempRandom);
  for (char c : random)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return name[name.size() - suffix - kTempRandom - 1] == '.';
}

BodySink::BodySink(Hashing hashing, protocol::DigestKind kind) : hashing_(hashing), kind_(kind), inline_hash_(kind) {
  if (hashing_ == Hashing::kBackground) background_hash_ = std::make_unique<BackgroundSha256>(kind);
}

void BodySink::set_digest_kind(protocol::DigestKind kind) {
  if (kind == kind_ || written_ > 0 || resumed_) return;
  kind_ = kind;
  inline_hash_ = protocol::ContentHash(kind);
  if (background_hash_) background_hash_ = std::make_unique<BackgroundSha256>(kind);
}

BodySink::~BodySink() { discard(); }

bool BodySink::open_file(reactor::UniqueFd dir, const std::string& name, const std::string& display, bool overwrite,
                         std::string* err) {
  return open_file(std::make_shared<const reactor::UniqueFd>(std::move(dir)), name, display, overwrite, false, err);
}

bool BodySink::open_file(std::shared_ptr<const reactor::UniqueFd> in, const std::string& name,
                         const std::string& display, bool overwrite, bool known_absent, std::string* err) {
  dir_ = std::move(in);
  if (known_absent) {
    name_ = name;
    display_ = display;
    overwrite_ = overwrite;
  } else if (!check_target(name, display, overwrite, err)) {
    return false;
  }
  // Mode 0600 while incomplete, so nobody can read a half-written file; commit() widens
  // it to what the umask allows, like any new file. O_NOFOLLOW: a symlink planted under
  // the temporary's name is refused, never written through.
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string candidate = temp_name_for(name);
    int fd = openat(dir(), candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      file_.reset(fd);
      temp_name_ = candidate;
      written_ = 0;
      return true;
    }
    if (errno != EEXIST) break;
  }
  errno_ = errno;
  size_t slash = display.find_last_of('/');
  std::string dir_display = slash == std::string::npos ? "." : slash == 0 ? "/" : display.substr(0, slash);
  *err = reactor::sys_error("create temporary file in", dir_display);
  dir_.reset();
  return false;
}

bool BodySink::check_target(const std::string& name, const std::string& display, bool overwrite, std::string* err) {
  name_ = name;
  display_ = display;
  overwrite_ = overwrite;
  struct stat st {};
  if (fstatat(dir(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    // A directory first: --force would not help, so do not suggest it.
    *err = S_ISDIR(st.st_mode) ? "\"" + display + "\" is a directory"
           : overwrite        ? std::string()
                              : "\"" + display + "\" exists; use --force to overwrite it";
    if (!err->empty()) {
      dir_.reset();
      return false;
    }
  }
  return true;
}

bool BodySink::adopt(reactor::UniqueFd dir, const std::string& name, const std::string& display, bool overwrite,
                     const std::string& temp, reactor::UniqueFd file, const std::vector<protocol::Digest>& leaves,
                     uint64_t held, std::string* err) {
  dir_ = std::make_shared<const reactor::UniqueFd>(std::move(dir));
  if (!check_target(name, display, overwrite, err)) return false;
  file_ = std::move(file);
  temp_name_ = temp;
  written_ = 0;
  if (!leaves.empty()) {
    resumed_ = true;
    if (background_hash_) {
      background_hash_->resume(leaves, held);
    } else {
      inline_hash_.resume(leaves, held);
    }
  }
  return true;
}

void BodySink::keep() {
  file_.reset();
  temp_name_.clear();
}

void BodySink::open_stream(reactor::UniqueFd fd, const std::string& display) {
  file_ = std::move(fd);
  display_ = display;
  streaming_ = true;
  written_ = 0;
}

void BodySink::hash(const char* data, size_t len) {
  if (hashing_ == Hashing::kByCaller) return;
  if (background_hash_) {
    background_hash_->update(data, len);
  } else {
    inline_hash_.update(data, len);
  }
}

bool BodySink::write(const char* data, size_t len, std::string* err) {
  hash(data, len);
  if (!file_) {
    written_ += len;
    return true;
  }
  while (len > 0) {
    ssize_t n = ::write(file_.get(), data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A stream left non-blocking by whoever shares it (a shell's pipe): wait, bounded
      // only by the reader, as a blocking write would.
      struct pollfd pfd = {file_.get(), POLLOUT, 0};
      if (poll(&pfd, 1, -1) >= 0 || errno == EINTR) continue;
    }
    if (n < 0) {
      errno_ = errno;
      *err = reactor::sys_error("write", display_);
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
  return true;
}

bool BodySink::verify(const protocol::Digest& expected, protocol::Digest* actual) {
  if (hashing_ == Hashing::kByCaller) {  // nothing was hashed: nothing can match
    verified_ = false;
    discard();
    return false;
  }
  protocol::Digest got = background_hash_ ? background_hash_->finish() : inline_hash_.finish();
  if (actual != nullptr) *actual = got;
  verified_ = got == expected;
  if (!verified_) discard();
  return verified_;
}

bool BodySink::commit(const CommitOptions& options, std::string* err) {
  if (!verified_) {
    errno_ = 0;
    *err = "internal error: commit before a successful verification";
    return false;
  }
  if (!file_) return true;
  auto fail = [this, err](const char* what) {
    errno_ = errno;
    *err = reactor::sys_error(what, display_);
    return false;
  };
  // A stream (standard output, a device, a FIFO) keeps its own mode and times.
  if (!streaming_) {
    mode_t mode = 0;
    if (options.mode) {
      mode = static_cast<mode_t>(*options.mode);
    } else {
      mode = 0666 & ~process_umask();
    }
    if (fchmod(file_.get(), mode) != 0) return fail("chmod");
    if (options.mtime) {
      struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(*options.mtime), 0}};
      if (futimens(file_.get(), times) != 0) return fail("set modification time of");
    }
    if (options.durable && fsync(file_.get()) != 0) return fail("fsync");
  }
  // close() is where NFS and friends report deferred write errors; check it before the
  // rename makes the file visible.
  if (close(file_.release()) != 0) return fail("close");
  if (streaming_) return true;  // nothing to rename
  int rc = overwrite_ ? renameat(dir(), temp_name_.c_str(), dir(), name_.c_str())
                      : renameat2(dir(), temp_name_.c_str(), dir(), name_.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && !overwrite_ && (errno == EINVAL || errno == ENOSYS)) {
    // A file system without RENAME_NOREPLACE: link() also refuses to replace.
    rc = linkat(dir(), temp_name_.c_str(), dir(), name_.c_str(), 0);
    if (rc == 0) unlinkat(dir(), temp_name_.c_str(), 0);
  }
  if (rc != 0) {
    errno_ = errno;
    *err = errno == EEXIST ? "\"" + display_ + "\" appeared during the download; use --force to overwrite it"
                           : reactor::sys_error("rename to", display_);
    return false;
  }
  temp_name_.clear();
  // The rename is durable only once the directory is: without this, a crash can bring
  // back the old name (ext4 and XFS document it).
  if (options.durable && fsync(dir()) != 0) return fail("fsync the directory of");
  return true;
}

void BodySink::discard() {
  file_.reset();
  if (!temp_name_.empty()) {
    unlinkat(dir(), temp_name_.c_str(), 0);
    temp_name_.clear();
  }
}

}  // namespace app
