#include "apps/reactorc/command.h"

#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
#include "protocol/features.h"

namespace client {
namespace {

using C = CommandState;

// The one-reply commands: stat, ping, msg.
constexpr app::Edge<C> kOneReply[] = {{C::kRequested, C::kDone}, {C::kRequested, C::kFailed}};

constexpr app::Edge<C> kStreamed[] = {
    {C::kRequested, C::kReceiving}, {C::kRequested, C::kDone}, {C::kRequested, C::kFailed},
    {C::kReceiving, C::kDone},      {C::kReceiving, C::kFailed},
};

constexpr app::Diagram<C> kOneReplyDiagram{kOneReply, to_string};
constexpr app::Diagram<C> kStreamedDiagram{kStreamed, to_string};

}  // namespace

const char* to_string(CommandState state) {
  switch (state) {
    case C::kRequested: return "requested";
    case C::kReceiving: return "receiving";
    case C::kSending: return "sending";
    case C::kVerifying: return "verifying";
    case C::kCommitting: return "committing";
    case C::kDone: return "done";
    case C::kFailed: return "failed";
  }
  return "?";
}

std::string describe(const protocol::ErrorMessage& error) {
  return std::string(protocol::to_string(error.code)) + ": " + app::escape_for_terminal(error.message);
}

bool Command::transition(CommandState next) {
  return machine_.transition(next, [this] { return std::string(name()); });
}

void Command::fail(int exit_code, std::string message) {
  if (finished()) return;
  on_fail();
  result_.exit_code = exit_code;
  result_.message = std::move(message);
  transition(C::kFailed);
}

void Command::refused(const protocol::ErrorMessage& error, const std::string& more) {
  if (finished()) return;
  result_.remote_code = error.code;
  fail(kExitRemote, describe(error) + more);
}

void Command::abandon(int exit_code, const std::string& message) {
  if (finished()) return;
  abandoned_ = true;
  fail(exit_code, message);
}

void Command::unexpected(const protocol::Message& message) {
  fail(kExitProtocol, std::string("unexpected reply from the server: ") + protocol::type_name(message));
}

void Command::on_body(const char*, size_t, uint64_t) { fail(kExitProtocol, "the server sent an unexpected body"); }

// ---- stat

StatCommand::StatCommand(std::string path) : Command(kOneReplyDiagram), path_(std::move(path)) {}

protocol::Message StatCommand::request() const {
  protocol::StatRequest stat;
  stat.path = path_;
  return stat;
}

const char* StatCommand::feature() const { return protocol::kFeatureStat; }

void StatCommand::on_message(protocol::Message& message) {
  auto* reply = expect_reply<protocol::StatReply>(message);
  if (reply == nullptr) return;
  reply_ = std::move(*reply);
  succeed();
}

// ---- ping

PingCommand::PingCommand() : Command(kOneReplyDiagram) {}

protocol::Message PingCommand::request() const { return protocol::PingRequest{}; }

const char* PingCommand::feature() const { return protocol::kFeaturePing; }

void PingCommand::on_message(protocol::Message& message) {
  if (expect_reply<protocol::Pong>(message) != nullptr) succeed();
}

// ---- msg

MsgCommand::MsgCommand(std::string text) : Command(kOneReplyDiagram), text_(std::move(text)) {}

protocol::Message MsgCommand::request() const {
  protocol::MsgRequest msg;
  msg.text = text_;
  return msg;
}

const char* MsgCommand::feature() const { return protocol::kFeatureMsg; }

void MsgCommand::on_message(protocol::Message& message) {
  auto* ok = expect_reply<protocol::MsgOk>(message);
  if (ok == nullptr) return;
  bytes_ = ok->bytes;
  succeed();
}

// ---- list

ListCommand::ListCommand(std::string path, bool links)
    : Command(kStreamedDiagram), path_(std::move(path)), links_(links) {}

protocol::Message ListCommand::request() const {
  protocol::ListRequest list;
  list.path = path_;
  list.links = links_;
  return list;
}

const char* ListCommand::feature() const { return protocol::kFeatureList; }

void ListCommand::on_message(protocol::Message& message) {
  if (finished()) return;
  if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) return refused(*error);
  if (auto* batch = std::get_if<protocol::Entries>(&message)) {
    if (entries_.size() + batch->entries.size() > kMaxEntries) {
      return fail(kExitProtocol, "the listing is larger than 10,000,000 entries; giving up");
    }
    if (state() == C::kRequested && !transition(C::kReceiving)) return;
    for (protocol::Entry& entry : batch->entries) entries_.push_back(std::move(entry));
    return;
  }
  if (auto* end = std::get_if<protocol::ListEnd>(&message)) {
    skipped_ = end->skipped;
    return succeed();
  }
  unexpected(message);
}

MkdirCommand::MkdirCommand(std::string path, std::optional<uint32_t> mode, std::optional<int64_t> mtime)
    : Command(kOneReplyDiagram), path_(std::move(path)), mode_(mode), mtime_(mtime) {}

protocol::Message MkdirCommand::request() const { return protocol::MkdirRequest{path_, mode_, mtime_}; }

const char* MkdirCommand::feature() const { return protocol::kFeatureMkdir; }

void MkdirCommand::on_message(protocol::Message& message) {
  auto* reply = expect_reply<protocol::MkdirOk>(message);
  if (reply == nullptr) return;
  if (reply->path != path_) return fail(kExitProtocol, "the server answered a mkdir for another path");
  succeed();
}

SymlinkCommand::SymlinkCommand(std::string path, std::string target, bool force)
    : Command(kOneReplyDiagram), path_(std::move(path)), target_(std::move(target)), force_(force) {}

protocol::Message SymlinkCommand::request() const { return protocol::SymlinkRequest{path_, target_, force_}; }

const char* SymlinkCommand::feature() const { return protocol::kFeatureLinks; }

void SymlinkCommand::on_message(protocol::Message& message) {
  auto* reply = expect_reply<protocol::SymlinkOk>(message);
  if (reply == nullptr) return;
  if (reply->path != path_) return fail(kExitProtocol, "the server answered a symlink for another path");
  unchanged_ = reply->unchanged;
  succeed();
}

TreeListCommand::TreeListCommand(std::string path, bool links, TreeListObserver& observer)
    : Command(kStreamedDiagram), path_(std::move(path)), links_(links), observer_(observer) {}

protocol::Message TreeListCommand::request() const {
  protocol::ListRequest list;
  list.path = path_;
  list.recursive = true;
  list.links = links_;
  return list;
}

const char* TreeListCommand::feature() const { return protocol::kFeatureTree; }

void TreeListCommand::on_message(protocol::Message& message) {
  if (finished()) return;
  if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) return refused(*error);
  if (auto* batch = std::get_if<protocol::Entries>(&message)) {
    std::string why;
    if (!check_.accept(*batch, &why)) return fail(kExitProtocol, "refused the server's listing: it sent " + why);
    if (state() == C::kRequested && !transition(C::kReceiving)) return;
    observer_.on_tree_entries(check_.dir(), batch->entries);
    return;
  }
  if (auto* end = std::get_if<protocol::ListEnd>(&message)) {
    end_ = *end;
    return succeed();
  }
  unexpected(message);
}

}  // namespace client
