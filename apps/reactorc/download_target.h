#pragma once
// Where a download lands: a temporary file beside the destination, renamed into place
// only once the digest has matched. Until commit() succeeds nothing exists under the
// final name; if the process fails, or the object is destroyed uncommitted, the
// temporary file is removed. (A SIGKILL can still leave one behind: it is named
// ".NAME.XXXXXX.part" so it is obviously debris, never mistaken for the file.)

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "reactor/unique_fd.h"

namespace client {

// The local name for a download: LOCAL if given (a directory means "inside it"), else
// the last component of REMOTE. Never a name taken from the server's reply.
bool choose_local_path(const std::string& remote, const std::string& local, std::string* out,
                       std::string* err);

class DownloadTarget {
 public:
  DownloadTarget() = default;
  ~DownloadTarget();
  DownloadTarget(const DownloadTarget&) = delete;
  DownloadTarget& operator=(const DownloadTarget&) = delete;

  // Fails early, before any byte is fetched, if `final_path` exists and !overwrite, or
  // its directory is not writable.
  bool open(const std::string& final_path, bool overwrite, std::string* err);
  bool write(const void* data, size_t len, std::string* err);
  // Sets the modification time the server reported, then renames into place: with
  // RENAME_NOREPLACE unless overwriting, so a file created meanwhile is never clobbered.
  bool commit(int64_t mtime, std::string* err);
  void discard();

  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }
  uint64_t written() const { return written_; }

 private:
  reactor::UniqueFd fd_;
  std::string final_path_;
  std::string temp_path_;
  bool overwrite_ = false;
  uint64_t written_ = 0;
};

}  // namespace client
