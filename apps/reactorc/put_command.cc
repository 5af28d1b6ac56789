#include "apps/reactorc/put_command.h"

#include "apps/reactorc/exit_codes.h"
#include "protocol/features.h"
#include "protocol/hex.h"

namespace client {
namespace {

using C = CommandState;

constexpr app::Edge<C> kEdges[] = {
    {C::kRequested, C::kSending}, {C::kRequested, C::kFailed}, {C::kSending, C::kVerifying},
    {C::kSending, C::kFailed},    {C::kVerifying, C::kDone},   {C::kVerifying, C::kFailed},
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
  return put;
}

const char* PutCommand::feature() const { return protocol::kFeaturePut; }

void PutCommand::on_fail() {
  // Mid-body, the server waits for the rest and an end that will not come.
  if (state() == C::kSending) broke_stream_ = true;
}

void PutCommand::on_message(protocol::Message& message) {
  if (finished()) return;
  switch (protocol::type_of(message)) {
    case protocol::MessageType::kError: {
      auto& error = std::get<protocol::ErrorMessage>(message);
      if (error.code == protocol::ErrorCode::kExists) return fail(kExitRemote, describe(error) + "; use --force to replace it");
      return fail(error.code == protocol::ErrorCode::kDigestMismatch ? kExitVerify : kExitRemote, describe(error));
    }
    case protocol::MessageType::kPutReady:
      if (state() != C::kRequested) return unexpected(message);
      return on_ready(std::get<protocol::PutReady>(message));
    case protocol::MessageType::kPutDone:
      if (state() != C::kVerifying) return unexpected(message);
      return on_done(std::get<protocol::PutDone>(message));
    default:
      return unexpected(message);
  }
}

void PutCommand::on_ready(const protocol::PutReady& ready) {
  // This client asks for no resume, so a server wanting anything but the whole file is
  // not answering this request.
  if (ready.offset != 0 || ready.path != remote_) return fail(kExitProtocol, "unexpected put_ready from the server");
  if (!transition(C::kSending)) return;
  if (observer_ != nullptr) observer_->on_put_ready(size(), ready.offset);
  source_ = std::make_unique<app::BodySource>(std::move(file_), st_, ready.offset, protocol::DigestKind::kTree);
  if (!outbox_->send(protocol::Data{source_->body_length()})) return;
  outbox_->start_producing(*source_);
}

void PutCommand::on_produced() {
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
