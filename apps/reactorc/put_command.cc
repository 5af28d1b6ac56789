#include "apps/reactorc/put_command.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "apps/common/file_hash.h"
#include "apps/reactorc/exit_codes.h"
#include "protocol/content_hash.h"
#include "reactor/errors.h"
#include "protocol/features.h"
#include "protocol/hex.h"

namespace client {
namespace {

using C = CommandState;

constexpr app::Edge<C> kEdges[] = {
    {C::kRequested, C::kSending},   {C::kRequested, C::kFailed}, {C::kSending, C::kVerifying},
    {C::kSending, C::kFailed},      {C::kVerifying, C::kDone},   {C::kVerifying, C::kFailed},
    {C::kRequested, C::kReceiving}, {C::kReceiving, C::kSending}, {C::kReceiving, C::kFailed},
};

constexpr app::Diagram<C> kDiagram{kEdges, to_string};

}  // namespace

PutCommand::PutCommand(reactor::UniqueFd file, const struct stat& st, std::string remote, bool force, bool preserve,
                       PutObserver* observer)
    : Command(kDiagram),
      file_(std::move(file)),
      st_(st),
      remote_(std::move(remote)),
      force_(force),
      preserve_(preserve),
      observer_(observer) {}

protocol::Message PutCommand::request() const {
  protocol::PutRequest put;
  put.path = remote_;
  put.size = size();
  put.force = force_;
  if (preserve_) {
    put.mode = static_cast<uint32_t>(st_.st_mode & 07777);
    put.mtime = static_cast<int64_t>(st_.st_mtim.tv_sec);
  }
  put.resume = resume_;
  put.root = digest_;
  return put;
}

bool PutCommand::prepare_resume(std::string* err) {
  protocol::ContentHash hash(protocol::DigestKind::kTree, /*keep_leaves=*/true);
  app::ReadOutcome outcome = app::hash_file(file_.get(), size(), &hash);
  if (outcome != app::ReadOutcome::kOk) {
    *err = outcome == app::ReadOutcome::kShrank ? "\"" + remote_ + "\": the local file shrank while it was hashed"
                                                : reactor::sys_error("read");
    return false;
  }
  digest_ = hash.finish();
  leaves_ = hash.leaves();
  resume_ = true;
  return true;
}

const char* PutCommand::feature() const { return protocol::kFeaturePut; }

void PutCommand::on_fail() {
  // Mid-body, the server waits for the rest and an end that will not come; an eager
  // upload refused by the server sends them all the same (on_produced).
  if (state() == C::kSending && !(eager_ && producing_)) broke_stream_ = true;
}

void PutCommand::on_sent() {
  if (eager_) send_from(0);
}

void PutCommand::on_message(protocol::Message& message) {
  if (finished()) return;
  switch (protocol::type_of(message)) {
    case protocol::MessageType::kError: {
      auto& error = std::get<protocol::ErrorMessage>(message);
      if (error.code == protocol::ErrorCode::kExists) return refused(error, "; use --force to replace it");
      in_progress_ = error.code == protocol::ErrorCode::kInProgress;
      return fail(error.code == protocol::ErrorCode::kDigestMismatch ? kExitVerify : kExitRemote, describe(error));
    }
    case protocol::MessageType::kPutReady: {
      auto& ready = std::get<protocol::PutReady>(message);
      if (eager_ && !ready_seen_ && (state() == C::kSending || state() == C::kVerifying)) {
        // The body is on its way already: the go-ahead only has to be the one expected.
        if (ready.path != remote_ || ready.offset != 0 || ready.count != 0)
          return fail(kExitProtocol, "unexpected put_ready from the server");
        ready_seen_ = true;
        return;
      }
      if (state() != C::kRequested) return unexpected(message);
      ready_seen_ = true;
      return on_ready(ready);
    }
    case protocol::MessageType::kPutDone:
      if (state() != C::kVerifying || !ready_seen_) return unexpected(message);
      return on_done(std::get<protocol::PutDone>(message));
    default:
      return unexpected(message);
  }
}

void PutCommand::on_ready(const protocol::PutReady& ready) {
  // Without resume the server holds nothing; with it, never more than the file.
  if (ready.path != remote_ || ready.offset > size() || (!resume_ && ready.offset != 0))
    return fail(kExitProtocol, "unexpected put_ready from the server");
  ready_ = ready;
  if (ready.count == 0) return send_from(ready.offset == size() ? size() : 0);
  transition(C::kReceiving);  // the digests of what it holds come first
}

void PutCommand::on_body(const char* data, size_t len, uint64_t remaining) {
  if (finished()) return;
  if (state() != C::kReceiving) return fail(kExitProtocol, "the server sent an unexpected body");
  server_digests_.append(data, len);
  if (remaining > 0) return;
  // Keep what the server holds up to the first chunk that is not this file's.
  uint64_t same = 0;
  while (same < ready_.count && same < leaves_.size() &&
         std::memcmp(server_digests_.data() + same * sizeof(protocol::Digest), leaves_[same].data(),
                     sizeof(protocol::Digest)) == 0)
    ++same;
  send_from(same == ready_.count ? ready_.offset : same * protocol::kChunkSize);
}

void PutCommand::send_from(uint64_t offset) {
  if (!transition(C::kSending)) return;
  start_ = offset;
  if (observer_ != nullptr) observer_->on_put_ready(size(), offset);
  // Resumed, the root is known: the body goes unhashed (zero copy where it can), and a
  // file changed since it was hashed still fails at the end (BodySource checks).
  std::optional<protocol::Digest> known;
  if (resume_) known = digest_;
  source_ = std::make_unique<app::BodySource>(std::move(file_), st_, offset, protocol::DigestKind::kTree, known);
  protocol::Data data{source_->body_length(), std::nullopt};
  if (resume_) data.offset = offset;
  if (!outbox_->send(data)) return;
  producing_ = true;
  outbox_->start_producing(*source_);
}

void PutCommand::on_produced() {
  producing_ = false;
  if (finished() && eager_ && !broke_stream_) {
    // Refused while the body went out: the server drops this end with the body.
    protocol::Message trailer = source_->trailer();
    outbox_->send(std::holds_alternative<protocol::End>(trailer) ? trailer : protocol::Message(protocol::End{std::nullopt, protocol::Digest{}}));
    return;
  }
  if (finished() || state() != C::kSending) return;
  protocol::Message trailer = source_->trailer();
  if (auto* error = std::get_if<protocol::ErrorMessage>(&trailer)) {
    // The local file changed or could not be read while it was sent.
    return fail(kExitLocal, "upload of " + remote_ + " stopped: " + error->message);
  }
  digest_ = *std::get<protocol::End>(trailer).root;
  if (!transition(C::kVerifying)) return;
  outbox_->send(trailer);
}

void PutCommand::on_done(const protocol::PutDone& done) {
  if (done.root != digest_ || done.size != size())
    return fail(kExitVerify, "the server stored something else than was sent: root " + protocol::to_hex(done.root) +
                                 " (" + std::to_string(done.size) + " bytes), sent " + protocol::to_hex(digest_) + " (" +
                                 std::to_string(size()) + " bytes)");
  succeed();
}

}  // namespace client
