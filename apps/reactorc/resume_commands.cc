#include "apps/reactorc/resume_commands.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/reactorc/exit_codes.h"
#include "protocol/features.h"
#include "protocol/hex.h"
#include "reactor/errors.h"

namespace client {
namespace {

using C = CommandState;

constexpr app::Edge<C> kDigestsEdges[] = {
    {C::kRequested, C::kReceiving}, {C::kRequested, C::kDone}, {C::kRequested, C::kFailed},
    {C::kReceiving, C::kDone},      {C::kReceiving, C::kFailed},
};
constexpr app::Diagram<C> kDigestsDiagram{kDigestsEdges, to_string};

constexpr app::Edge<C> kChunkEdges[] = {
    {C::kRequested, C::kReceiving}, {C::kRequested, C::kFailed}, {C::kReceiving, C::kVerifying},
    {C::kReceiving, C::kFailed},    {C::kVerifying, C::kDone},   {C::kVerifying, C::kFailed},
};
constexpr app::Diagram<C> kChunkDiagram{kChunkEdges, to_string};

}  // namespace

// ---- digests

DigestsCommand::DigestsCommand(std::string path, uint64_t from, std::optional<uint64_t> count)
    : Command(kDigestsDiagram), path_(std::move(path)), from_(from), count_(count) {}

protocol::Message DigestsCommand::request() const { return protocol::DigestsRequest{path_, from_, count_}; }

const char* DigestsCommand::feature() const { return protocol::kFeatureDigests; }

void DigestsCommand::on_message(protocol::Message& message) {
  auto* reply = expect_reply<protocol::DigestsReply>(message);
  if (reply == nullptr) return;
  if (state() != C::kRequested || reply->path != path_ || reply->from != from_ ||
      (count_ && reply->count > *count_))
    return fail(kExitProtocol, "the server's digests answer another request");
  reply_ = std::move(*reply);
  if (reply_.count == 0) return succeed();
  body_.reserve(reply_.body_length());
  transition(C::kReceiving);
}

void DigestsCommand::on_body(const char* data, size_t len, uint64_t remaining) {
  if (finished()) return;
  if (state() != C::kReceiving) return fail(kExitProtocol, "the server sent an unexpected body");
  body_.append(data, len);
  if (remaining > 0) return;
  leaves_.resize(reply_.count);
  std::memcpy(leaves_.data(), body_.data(), body_.size());
  body_ = std::string();
  succeed();
}

// ---- chunk get

ChunkGetCommand::ChunkGetCommand(std::string path, int fd, const ChunkWanted& chunk)
    : Command(kChunkDiagram), path_(std::move(path)), fd_(fd), chunk_(chunk) {}

protocol::Message ChunkGetCommand::request() const {
  protocol::GetRequest get;
  get.path = path_;
  get.offset = chunk_.offset;
  get.length = chunk_.length;
  return get;
}

const char* ChunkGetCommand::feature() const { return protocol::kFeatureGet; }

void ChunkGetCommand::on_message(protocol::Message& message) {
  if (finished()) return;
  switch (protocol::type_of(message)) {
    case protocol::MessageType::kError:
      return refused(std::get<protocol::ErrorMessage>(message));
    case protocol::MessageType::kFile: {
      const auto& header = std::get<protocol::FileHeader>(message);
      if (state() != C::kRequested || header.offset != chunk_.offset || header.body_length() != chunk_.length)
        return fail(kExitProtocol, "unexpected file header from the server");
      if (header.size != chunk_.file_size || header.mtime != chunk_.mtime)
        return fail(kExitRemote, "\"" + path_ + "\" changed on the server while the download was resumed");
      transition(C::kReceiving);
      return;
    }
    case protocol::MessageType::kEnd: {
      if (state() != C::kReceiving || received_ != chunk_.length)
        return fail(kExitProtocol, "the server ended the transfer early");
      if (!transition(C::kVerifying)) return;
      const protocol::Digest* root = std::get<protocol::End>(message).digest(protocol::DigestKind::kTree);
      if (root == nullptr) return fail(kExitProtocol, "the server's end has no chunk-tree root");
      if (*root != chunk_.root)
        return fail(kExitRemote, "\"" + path_ + "\" changed on the server while the download was resumed");
      protocol::Digest got = hash_.finish();
      if (got != chunk_.leaf)
        return fail(kExitVerify, "verification failed: chunk " + std::to_string(chunk_.index) +
                                     " fetched again does not match its digest (expected " +
                                     protocol::to_hex(chunk_.leaf) + ", got " + protocol::to_hex(got) + ")");
      return succeed();
    }
    default:
      return unexpected(message);
  }
}

void ChunkGetCommand::on_body(const char* data, size_t len, uint64_t) {
  if (finished()) return;
  if (state() != C::kReceiving) return fail(kExitProtocol, "the server sent an unexpected body");
  if (len > chunk_.length - received_) return fail(kExitProtocol, "the server sent more body than it announced");
  hash_.update(data, len);
  while (len > 0) {
    ssize_t n = pwrite(fd_, data, len, static_cast<off_t>(chunk_.offset + received_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(kExitLocal, reactor::sys_error("write the partial download"));
    data += n;
    len -= static_cast<size_t>(n);
    received_ += static_cast<uint64_t>(n);
  }
}

}  // namespace client
