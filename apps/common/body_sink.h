#pragma once
// BodySink: where a received frame body goes, for whichever side receives it (a
// download, in reactorc; an upload, in reactord). It hashes every byte as it arrives
// and, when it has a file, writes it into a temporary file created beside the
// destination, relative to a directory descriptor, so that a rename of the directory
// or a symlink planted at its path cannot redirect the writes. Only after verify() has
// matched the digest does commit() rename the temporary into place; until then nothing
// exists under the final name. If the sink is discarded or destroyed uncommitted, the
// temporary file is removed. (A SIGKILL can still leave one behind: it is named
// ".NAME.XXXXXX.part" so it is obviously debris, never mistaken for the file.)
//
// A sink can also stream (open_stream): into standard output, a character device or a
// FIFO, written through as the bytes arrive, with nothing to rename or delete. The digest
// is still checked at the end; a mismatch is then reported, not undone.
//
// Without a file the sink only hashes: reactorc bench verifies bodies and drops them.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apps/common/background_sha256.h"
#include "protocol/content_hash.h"
#include "protocol/types.h"
#include "reactor/unique_fd.h"

namespace app {

// Whether `name` has the form of a sink's temporary file, ".NAME.XXXXXX.part" with six
// letters or digits, or of a resumable upload's, ".NAME.<24 hex digits>.resume":
// reactord never lists, serves or overwrites such a name.
bool is_temp_name(std::string_view name);
// A fresh temporary name for `name`, ".NAME.XXXXXX.part", the six characters random as
// mkstemp(3) makes them: what a file (or link) is made under before it is renamed.
std::string temp_name_for(const std::string& name);
bool is_resume_name(std::string_view name);
// The name of the kept partial of a resumable upload (put -c) of a file of `size` bytes
// and chunk-tree `root` to `name`: derived from the three, so that only the same file
// finds it again, even after a restart.
std::string resume_name_for(const std::string& name, uint64_t size, const protocol::Digest& root);

class BodySink {
 public:
  // kBackground hashes on a second thread beside the event loop (see
  // BackgroundSha256), for one big stream; kInline on the caller's, for many small ones.
  // kByCaller: no SHA-256 at all; the caller checks the body its own way (the
  // tutorial's MD5) and says so with verified_by_caller().
  enum class Hashing { kInline, kBackground, kByCaller };

  // `kind`: the digest verify() compares, by protocol version (protocol/content_hash.h).
  BodySink(Hashing hashing, protocol::DigestKind kind);
  ~BodySink();
  BodySink(const BodySink&) = delete;
  BodySink& operator=(const BodySink&) = delete;

  // Gives the sink a file: a temporary in `dir` (a directory descriptor, O_PATH is
  // enough), to become `name` in it. `display` is how the final path is shown in
  // messages. Fails early, before any byte is fetched, if `name` exists and !overwrite,
  // if it is a directory, or if the directory is not writable.
  bool open_file(reactor::UniqueFd dir, const std::string& name, const std::string& display, bool overwrite,
                 std::string* err);
  // The same in a directory the caller shares (many files into one directory, as get -r
  // makes them: no descriptor is duplicated per file). `known_absent`: the caller has
  // just seen that `name` does not exist, so it is not looked up again (a file that
  // appears meanwhile is still not replaced: the rename refuses to).
  bool open_file(std::shared_ptr<const reactor::UniqueFd> dir, const std::string& name, const std::string& display,
                 bool overwrite, bool known_absent, std::string* err);

  // Like open_file, but the file is the caller's: `file`, named `temp` in `dir` (a
  // partial download, already created, locked and cut to its verified length), written
  // from where its offset stands. The digest goes on after `leaves`, the chunk digests
  // of the `held` bytes it already holds (checked by the caller; tree digests only).
  // discard() removes it like a temporary; keep() leaves it for a later resume.
  bool adopt(reactor::UniqueFd dir, const std::string& name, const std::string& display, bool overwrite,
             const std::string& temp, reactor::UniqueFd file, const std::vector<protocol::Digest>& leaves,
             uint64_t held, std::string* err);
  // Closes the file and leaves it on disk under its temporary name, unverified (an
  // interrupted download, kept for a resume).
  void keep();

  // Gives the sink a stream to write through: `fd` (owned; a dup of standard output, a
  // character device or a FIFO opened for writing). A non-blocking `fd` is waited on
  // with poll(2) when full: the bytes must all go, in order.
  void open_stream(reactor::UniqueFd fd, const std::string& display);

  // Before the first write: verify against a digest of this kind instead (a client
  // learns the protocol version only once connected).
  void set_digest_kind(protocol::DigestKind kind);
  protocol::DigestKind digest_kind() const { return kind_; }

  bool write(const char* data, size_t len, std::string* err);
  // The body is complete: the digest of everything written, compared with `expected`.
  // On a mismatch the file is discarded. *actual (if given) receives the digest.
  bool verify(const protocol::Digest& expected, protocol::Digest* actual = nullptr);
  // kByCaller: the caller has checked what was written; commit() may go ahead.
  void verified_by_caller() { verified_ = hashing_ == Hashing::kByCaller; }
  struct CommitOptions {
    std::optional<int64_t> mtime;  // absent: left as written
    std::optional<uint32_t> mode;  // absent: 0666 less the umask
    // fsync(2) the file before it gets its name and the directory after, so that a
    // crash leaves the old file or the new one, complete (the server's uploads).
    bool durable = false;
  };
  // After a successful verify() (refused otherwise): sets the mode and modification
  // time, closes (checked: close is where NFS reports deferred write errors) and
  // renames into place, with RENAME_NOREPLACE unless overwriting, so a file created
  // meanwhile is never clobbered. A sink without a file commits trivially. Safe to call
  // from another thread than the one that wrote, once that one has stopped touching the
  // sink (reactord commits on a worker thread).
  bool commit(const CommitOptions& options, std::string* err);
  bool commit(int64_t mtime, std::string* err) { return commit(CommitOptions{mtime, std::nullopt, false}, err); }
  void discard();

  bool has_file() const { return static_cast<bool>(dir_); }
  bool streaming() const { return streaming_; }
  const std::string& display() const { return display_; }
  const std::string& temp_name() const { return temp_name_; }
  // The errno of the last failure of open_file, write or commit (ENOSPC, EEXIST, EIO,
  // ...), 0 for a failure that was not a system call's.
  int error_number() const { return errno_; }
  uint64_t written() const { return written_; }

 private:
  void hash(const char* data, size_t len);
  bool check_target(const std::string& name, const std::string& display, bool overwrite, std::string* err);

  Hashing hashing_;
  protocol::DigestKind kind_;
  protocol::ContentHash inline_hash_;
  std::unique_ptr<BackgroundSha256> background_hash_;
  int dir() const { return dir_ ? dir_->get() : -1; }

  std::shared_ptr<const reactor::UniqueFd> dir_;
  reactor::UniqueFd file_;
  std::string name_;
  std::string display_;
  std::string temp_name_;  // empty: no temporary on disk
  bool overwrite_ = false;
  bool verified_ = false;
  bool streaming_ = false;
  bool resumed_ = false;
  uint64_t written_ = 0;
  int errno_ = 0;
};

}  // namespace app
