#pragma once
// The requests a resumed download makes before its tail (reactor-protocol(7): digests,
// get with a length), each a small state machine like the other commands:
//
//   digests:    Requested -> Receiving (the digests' body) -> Done
//   chunk get:  Requested -> Receiving -> Verifying -> Done
//
// and from every state but Done, -> Failed.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "apps/reactorc/command.h"
#include "protocol/sha256.h"
#include "protocol/types.h"

namespace client {

// digests PATH: one digests_ok and the chunk digests in its body.
class DigestsCommand final : public Command {
 public:
  DigestsCommand(std::string path, uint64_t from, std::optional<uint64_t> count);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "digests"; }
  void on_message(protocol::Message& message) override;
  void on_body(const char* data, size_t len, uint64_t remaining) override;

  const protocol::DigestsReply& reply() const { return reply_; }
  const std::vector<protocol::Digest>& leaves() const { return leaves_; }

 private:
  std::string path_;
  uint64_t from_;
  std::optional<uint64_t> count_;
  protocol::DigestsReply reply_;
  std::string body_;
  std::vector<protocol::Digest> leaves_;
};

// What a chunk fetched again must be: its place and length in the remote file, its
// digest, and the file it belongs to (size, mtime and root, from the digests).
struct ChunkWanted {
  uint64_t index = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  protocol::Digest leaf{};
  protocol::Digest root{};
  uint64_t file_size = 0;
  int64_t mtime = 0;
};

// get PATH with the chunk's offset and length: the bytes are written into the partial
// download at their place and must match the chunk's digest, and the trailer's root the
// root the digests came with; otherwise the command fails and the chunk stays as it was
// (it will be checked again).
class ChunkGetCommand final : public Command {
 public:
  // `fd`: the partial download, borrowed; the caller keeps it open until this finishes.
  ChunkGetCommand(std::string path, int fd, const ChunkWanted& chunk);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "get"; }
  void on_message(protocol::Message& message) override;
  void on_body(const char* data, size_t len, uint64_t remaining) override;

  uint64_t received() const { return received_; }

 private:
  std::string path_;
  int fd_;
  ChunkWanted chunk_;
  uint64_t received_ = 0;
  protocol::Sha256 hash_;
};

}  // namespace client
