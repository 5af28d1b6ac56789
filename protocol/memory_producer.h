#pragma once
// MemoryProducer: a frame body already in memory (a digests_ok's chunk digests), sent
// through the stream's output like any other body, as the socket takes it.

#include <algorithm>
#include <cstring>
#include <string>

#include "protocol/framed_stream.h"

namespace protocol {

class MemoryProducer final : public Producer {
 public:
  explicit MemoryProducer(std::string bytes) : bytes_(std::move(bytes)) {}

  size_t produce(reactor::Buffer& out, size_t budget) override {
    size_t want = std::min(budget, bytes_.size() - pos_);
    char* dst = want == 0 ? nullptr : out.begin_write(want);
    if (dst == nullptr) return 0;
    std::memcpy(dst, bytes_.data() + pos_, want);
    out.commit(want);
    pos_ += want;
    return want;
  }
  bool finished() const override { return pos_ == bytes_.size(); }

 private:
  std::string bytes_;
  size_t pos_ = 0;
};

}  // namespace protocol
