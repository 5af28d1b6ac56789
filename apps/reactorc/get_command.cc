#include "apps/reactorc/get_command.h"

#include "apps/reactorc/exit_codes.h"
#include "protocol/features.h"
#include "protocol/hex.h"

namespace client {
namespace {

using C = CommandState;

constexpr app::Edge<C> kEdges[] = {
    {C::kRequested, C::kReceiving}, {C::kRequested, C::kFailed},   {C::kReceiving, C::kVerifying},
    {C::kReceiving, C::kFailed},    {C::kVerifying, C::kCommitting}, {C::kVerifying, C::kFailed},
    {C::kCommitting, C::kDone},     {C::kCommitting, C::kFailed},
};

constexpr app::Diagram<C> kDiagram{kEdges, to_string};

}  // namespace

GetCommand::GetCommand(std::string remote, std::unique_ptr<app::BodySink> sink, GetObserver* observer,
                       uint64_t offset)
    : Command(kDiagram), remote_(std::move(remote)), sink_(std::move(sink)), observer_(observer), offset_(offset) {}

void GetCommand::use_partial(PartialDownload* partial, std::string server) {
  partial_ = partial;
  server_ = std::move(server);
}

protocol::Message GetCommand::request() const {
  protocol::GetRequest get;
  get.path = remote_;
  get.offset = offset_;
  return get;
}

const char* GetCommand::feature() const { return protocol::kFeatureGet; }

void GetCommand::on_fail() {
  if (partial_ != nullptr && abandoned() && sink_->written() + offset_ > 0) {
    // Cut short: what arrived stays for get -c, which verifies it before using any of it.
    sink_->keep();
    kept_partial_ = true;
    return;
  }
  sink_->discard();
  if (partial_ != nullptr) partial_->forget_note();
}

void GetCommand::on_message(protocol::Message& message) {
  if (finished()) return;
  switch (protocol::type_of(message)) {
    case protocol::MessageType::kError:
      // Before the header: a refusal (not_found, ...). After it: an error trailer
      // (file_changed, io_error), and what arrived is not the file.
      return refused(std::get<protocol::ErrorMessage>(message));
    case protocol::MessageType::kFile:
      // A header from another offset, or for less than the rest, answers another request.
      if (state() != C::kRequested || std::get<protocol::FileHeader>(message).offset != offset_ ||
          std::get<protocol::FileHeader>(message).length)
        return fail(kExitProtocol, "unexpected file header from the server");
      return on_file(std::get<protocol::FileHeader>(message));
    case protocol::MessageType::kEnd:
      if (state() != C::kReceiving || received_ != expected_)
        return fail(kExitProtocol, "the server ended the transfer early");
      return on_end(std::get<protocol::End>(message));
    default:
      return unexpected(message);
  }
}

void GetCommand::on_file(const protocol::FileHeader& header) {
  // The file asked for and no other: a server must not answer with another name.
  if (header.path != remote_) return fail(kExitProtocol, "the server sent a file under another name than asked");
  if (listed_size_ && header.size != *listed_size_) {
    return fail(kExitRemote, "its size changed since it was listed (" + std::to_string(*listed_size_) + " then " +
                                 std::to_string(header.size) + " bytes)");
  }
  if (!transition(C::kReceiving)) return;
  started_ = true;
  sink_->set_digest_kind(protocol::digest_kind_for(protocol_version()));
  expected_ = header.body_length();
  size_ = header.size;
  mtime_ = header.mtime;
  mode_ = header.mode;
  if (partial_ != nullptr) {
    std::string err;
    if (!partial_->write_note(PartialSource{server_, remote_, header.size, header.mtime}, &err))
      return fail(kExitLocal, err);
  }
  if (observer_ != nullptr) observer_->on_file(header);
}

void GetCommand::on_body(const char* data, size_t len, uint64_t) {
  if (finished()) return;
  if (state() != C::kReceiving) return fail(kExitProtocol, "the server sent an unexpected body");
  if (len > expected_ - received_) return fail(kExitProtocol, "the server sent more body than it announced");
  std::string err;
  if (!sink_->write(data, len, &err)) return fail(kExitLocal, err);
  received_ += len;
  if (observer_ != nullptr) observer_->on_received(held());
}

void GetCommand::on_end(const protocol::End& end) {
  if (!transition(C::kVerifying)) return;
  protocol::DigestKind kind = sink_->digest_kind();
  const protocol::Digest* expected = end.digest(kind);
  if (expected == nullptr)
    return fail(kExitProtocol, std::string("the server's end has no ") + protocol::to_string(kind));
  if (!sink_->verify(*expected, &digest_)) {
    return fail(kExitVerify, std::string("verification failed: ") + protocol::to_string(kind) + " mismatch (expected " +
                                 protocol::to_hex(*expected) + ", got " + protocol::to_hex(digest_) + ")" +
                                 (sink_->streaming() ? "; what was written to " + sink_->display() + " is not the file"
                                                     : "; nothing was kept"));
  }
  if (!transition(C::kCommitting)) return;
  std::string err;
  app::BodySink::CommitOptions commit;
  commit.mtime = mtime_;
  if (keep_mode_) commit.mode = mode_ & 07777;
  if (!sink_->commit(commit, &err)) return fail(kExitLocal, err);
  if (partial_ != nullptr) partial_->forget_note();
  succeed();
}

}  // namespace client
