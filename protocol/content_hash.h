#pragma once
// The digest a transfer is verified with: the SHA-256 of the whole file in protocol
// version 1, the root of its chunk tree in version 2 (reactor-protocol(7), CHUNK TREE).
//
//   leaf[i] = SHA-256(chunk i: bytes i*kChunkSize .. min((i+1)*kChunkSize, size) - 1)
//   root    = SHA-256(leaf[0] || ... || leaf[n-1] || uint64be(size))
//
// Both cost one SHA-256 pass over the data; the tree adds 32 bytes of hashing per MiB.
// What the tree buys is resume: each chunk already held is checked on its own, so a
// damaged or foreign chunk is fetched again and the rest is kept.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/sha256.h"
#include "protocol/types.h"

namespace protocol {

inline constexpr uint64_t kChunkSize = 1 << 20;

enum class DigestKind : uint8_t { kSha256, kTree };
// kSha256 for version 1, kTree from version 2 on.
DigestKind digest_kind_for(uint64_t protocol_version);
const char* to_string(DigestKind kind);  // "SHA-256", "chunk-tree root"

// Chunks of a file of `size` bytes: ceil(size / kChunkSize).
uint64_t chunk_count(uint64_t size);
// Bytes in chunk `index` of such a file (0 past the end).
uint64_t chunk_length(uint64_t size, uint64_t index);
// The root over `leaves`, which must be all chunk_count(size) of them.
Digest tree_root(const std::vector<Digest>& leaves, uint64_t size);

// Streaming: the digest of one file of either kind, fed in order.
// Errors are protocol::Sha256's: an OpenSSL failure makes ok() false and finish()
// return all zeros, which matches no file, so a verification fails closed.
class ContentHash {
 public:
  // `keep_leaves` (tree only): remember each chunk's digest, for leaves().
  explicit ContentHash(DigestKind kind, bool keep_leaves = false);

  // Tree only, before any update(): go on after `leaves`, the digests of chunks
  // 0 .. leaves.size() - 1, `bytes` in all, that the caller holds and has verified. The
  // data that follows starts at byte `bytes`; only the file's last chunk can be short,
  // so a `bytes` that is not a multiple of kChunkSize means nothing follows.
  void resume(const std::vector<Digest>& leaves, uint64_t bytes);

  void update(const void* data, size_t len);
  // The digest of everything (resumed chunks included). Once per object.
  Digest finish();

  DigestKind kind() const { return kind_; }
  uint64_t bytes() const { return bytes_; }
  // With keep_leaves, after finish(): every chunk's digest.
  const std::vector<Digest>& leaves() const { return leaves_; }
  bool ok() const;
  std::string error() const;

 private:
  void end_chunk();

  DigestKind kind_;
  bool keep_leaves_;
  Sha256 data_;   // the whole file (kSha256) or the current chunk (kTree)
  Sha256 root_;   // kTree: the leaves so far
  uint64_t bytes_ = 0;
  uint64_t in_chunk_ = 0;
  std::vector<Digest> leaves_;
};

}  // namespace protocol
