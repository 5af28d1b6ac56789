#pragma once
// A temporary directory that removes itself, and everything below it, when destroyed.

#include <optional>
#include <string>
#include <string_view>

#include "tests/support/files.h"

namespace testsupport {

class TempDir {
 public:
  // mkdtemp("$TMPDIR/PREFIX.XXXXXX"), /tmp when TMPDIR is unset or empty. The path is
  // absolute (a relative TMPDIR is resolved against the current directory).
  static std::optional<TempDir> create(std::string_view prefix = "reactor-test",
                                       std::string* err = nullptr);

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + relative.
  std::string path(std::string_view relative) const;

  // Removes the tree now (idempotent); afterwards path() is empty.
  bool remove(std::string* err = nullptr);
  // Keeps the directory on disk (e.g. to inspect after a failure); returns its path.
  std::string release();

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// rm -rf PATH without following symlinks; makes read-only and unreadable directories
// writable first. A missing PATH is success.
bool remove_tree(const std::string& path, std::string* err = nullptr);

}  // namespace testsupport
