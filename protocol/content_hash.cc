#include "protocol/content_hash.h"

#include <algorithm>

namespace protocol {
namespace {

void feed_size(Sha256& root, uint64_t size) {
  unsigned char be[8];
  for (int i = 7; i >= 0; --i) {
    be[i] = static_cast<unsigned char>(size & 0xff);
    size >>= 8;
  }
  root.update(be, sizeof be);
}

}  // namespace

DigestKind digest_kind_for(uint64_t protocol_version) {
  return protocol_version >= 2 ? DigestKind::kTree : DigestKind::kSha256;
}

const char* to_string(DigestKind kind) { return kind == DigestKind::kTree ? "chunk-tree root" : "SHA-256"; }

uint64_t chunk_count(uint64_t size) { return size / kChunkSize + (size % kChunkSize != 0 ? 1 : 0); }

uint64_t chunk_length(uint64_t size, uint64_t index) {
  uint64_t start = index * kChunkSize;
  if (index >= chunk_count(size)) return 0;
  return std::min(kChunkSize, size - start);
}

Digest tree_root(const std::vector<Digest>& leaves, uint64_t size) {
  Sha256 root;
  for (const Digest& leaf : leaves) root.update(leaf.data(), leaf.size());
  feed_size(root, size);
  return root.finish();
}

ContentHash::ContentHash(DigestKind kind, bool keep_leaves)
    : kind_(kind), keep_leaves_(keep_leaves && kind == DigestKind::kTree) {}

void ContentHash::resume(const std::vector<Digest>& leaves, uint64_t bytes) {
  if (kind_ != DigestKind::kTree || bytes_ != 0) return;
  for (const Digest& leaf : leaves) root_.update(leaf.data(), leaf.size());
  if (keep_leaves_) leaves_ = leaves;
  bytes_ = bytes;
}

void ContentHash::update(const void* data, size_t len) {
  if (kind_ == DigestKind::kSha256) {
    data_.update(data, len);
    bytes_ += len;
    return;
  }
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(len, kChunkSize - in_chunk_));
    data_.update(p, take);
    p += take;
    len -= take;
    in_chunk_ += take;
    bytes_ += take;
    if (in_chunk_ == kChunkSize) end_chunk();
  }
}

void ContentHash::end_chunk() {
  Digest leaf = data_.finish();
  root_.update(leaf.data(), leaf.size());
  if (keep_leaves_) leaves_.push_back(leaf);
  in_chunk_ = 0;
}

Digest ContentHash::finish() {
  if (kind_ == DigestKind::kSha256) return data_.finish();
  if (in_chunk_ > 0) end_chunk();
  feed_size(root_, bytes_);
  Digest root = root_.finish();
  if (!ok()) root.fill(0);
  return root;
}

bool ContentHash::ok() const { return data_.ok() && root_.ok(); }

std::string ContentHash::error() const { return !data_.ok() ? data_.error() : root_.error(); }

}  // namespace protocol
