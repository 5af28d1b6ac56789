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

GetCommand::GetCommand(std::string remote, std::unique_ptr<app::BodySink> sink, GetObserver* observer)
    : Command(kDiagram), remote_(std::move(remote)), sink_(std::move(sink)), observer_(observer) {}

protocol::Message GetCommand::request() const {
  protocol::GetRequest get;
  get.path = remote_;
  return get;
}

const char* GetCommand::feature() const { return protocol::kFeatureGet; }

void GetCommand::on_fail() { sink_->discard(); }

void GetCommand::on_message(protocol::Message& message) {
  if (finished()) return;
  switch (protocol::type_of(message)) {
    case protocol::MessageType::kError:
      // Before the header: a refusal (not_found, ...). After it: an error trailer
      // (file_changed, io_error), and what arrived is not the file.
      return fail(kExitRemote, describe(std::get<protocol::ErrorMessage>(message)));
    case protocol::MessageType::kFile:
      // reactorc never asks for an offset, so a header with one is not an answer to it.
      if (state() != C::kRequested || std::get<protocol::FileHeader>(message).offset != 0)
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
  if (!transition(C::kReceiving)) return;
  started_ = true;
  expected_ = header.body_length();
  mtime_ = header.mtime;
  if (observer_ != nullptr) observer_->on_file(header);
}

void GetCommand::on_body(const char* data, size_t len, uint64_t) {
  if (finished()) return;
  if (state() != C::kReceiving) return fail(kExitProtocol, "the server sent an unexpected body");
  if (len > expected_ - received_) return fail(kExitProtocol, "the server sent more body than it announced");
  std::string err;
  if (!sink_->write(data, len, &err)) return fail(kExitLocal, err);
  received_ += len;
  if (observer_ != nullptr) observer_->on_received(received_);
}

void GetCommand::on_end(const protocol::End& end) {
  if (!transition(C::kVerifying)) return;
  if (!sink_->verify(end.sha256, &digest_)) {
    return fail(kExitVerify, "verification failed: SHA-256 mismatch (expected " + protocol::to_hex(end.sha256) +
                                 ", got " + protocol::to_hex(digest_) + ")" +
                                 (sink_->streaming() ? "; what was written to " + sink_->display() + " is not the file"
                                                     : "; nothing was kept"));
  }
  if (!transition(C::kCommitting)) return;
  std::string err;
  if (!sink_->commit(mtime_, &err)) return fail(kExitLocal, err);
  succeed();
}

}  // namespace client
