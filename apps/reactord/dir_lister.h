#pragma once
// Produces the frames answering a `list`: `entries` frames packed up to the 64 KiB header
// limit, then `list_end`. One frame per call, so a directory with a
// million names is streamed as the client reads it instead of being built in memory,
// and other connections get their turn between frames.

#include <dirent.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "protocol/framed_stream.h"
#include "protocol/messages.h"
#include "reactor/buffer.h"
#include "reactor/unique_fd.h"

namespace server {

class ServedRoot;

class DirLister final : public protocol::Producer {
 public:
  static std::unique_ptr<DirLister> open(reactor::UniqueFd dir, const ServedRoot& root, std::string* err);

  // Appends the next frame to `out` and returns its size; finished() once the final
  // frame (list_end, or an io_error if reading the directory failed) is appended.
  // `budget` is not split: a frame is at most one 64 KiB header.
  size_t produce(reactor::Buffer& out, size_t budget) override;
  bool finished() const override { return done_; }

 private:
  struct DirCloser {
    void operator()(DIR* dir) const { closedir(dir); }
  };
  DirLister(DIR* dir, const ServedRoot& root) : dir_(dir), root_(root) {}

  std::unique_ptr<DIR, DirCloser> dir_;
  const ServedRoot& root_;
  uint64_t count_ = 0;
  uint64_t skipped_ = 0;
  bool done_ = false;
  std::optional<protocol::Entry> pending_;  // read, but did not fit the last frame
};

}  // namespace server
