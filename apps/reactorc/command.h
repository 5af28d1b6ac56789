#pragma once
// The client's requests, each a small explicit state machine that a Connection feeds
// with the frames of its response. reactorc runs one per invocation; reactorc bench
// runs thousands, several in flight per connection. Neither knows how a response is
// put together: the command does.
//
//   get:        Requested -> Receiving -> Verifying -> Committing -> Done
//   put:        Requested -> Sending -> Verifying -> Done
//   list:       Requested -> Receiving -> Done
//   stat, ping,
//   msg:        Requested -> Done
//
// and from every state but Done, -> Failed. Each command refuses (and logs) an edge its
// diagram does not draw.
//
// A command ends with a result: exit status 0, or the status reactorc exits with for
// that failure (exit_codes.h) and a message for the user, already safe to print.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "apps/common/state_machine.h"
#include "apps/reactorc/exit_codes.h"
#include "protocol/framed_stream.h"
#include "protocol/messages.h"
#include "protocol/tree_listing.h"

namespace client {

enum class CommandState { kRequested, kReceiving, kSending, kVerifying, kCommitting, kDone, kFailed };
const char* to_string(CommandState state);

struct CommandResult {
  int exit_code = 0;  // 0: success
  std::string message;
  std::optional<protocol::ErrorCode> remote_code;  // the server refused: its error code
};

// "not_found: \"x\" does not exist": a server's error as the user sees it, its text
// escaped for the terminal. The one place this is spelt out.
std::string describe(const protocol::ErrorMessage& error);

// How a command that sends more than its request (an upload's data and end) reaches
// the connection it runs on. Implemented by Connection.
class Outbox {
 public:
  virtual bool send(const protocol::Message& message) = 0;
  // `producer` (the command's) streams a body after the frame just sent; the command's
  // on_produced() runs when it has finished.
  virtual void start_producing(protocol::Producer& producer) = 0;

 protected:
  ~Outbox() = default;
};

class Command {
 public:
  virtual ~Command() = default;
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;

  // What to send, and the feature the server must offer for it.
  virtual protocol::Message request() const = 0;
  virtual const char* feature() const = 0;
  virtual const char* name() const = 0;

  // A frame of this command's response, in order.
  virtual void on_message(protocol::Message& message) = 0;
  // A chunk of a body the response announced; the default refuses it.
  virtual void on_body(const char* data, size_t len, uint64_t remaining);
  // Commands that send (put): the connection to send through, given when submitted;
  // the producer started through it has finished.
  void set_outbox(Outbox* outbox) { outbox_ = outbox; }
  // The protocol version of the connection it is sent on, given when submitted.
  void set_protocol_version(uint64_t version) { protocol_version_ = version; }
  uint64_t protocol_version() const { return protocol_version_; }
  virtual void on_produced() {}
  // The request has just gone out (an eager upload sends its data behind it now).
  virtual void on_sent() {}
  // Whether nothing may be pipelined behind this command yet: it still has frames of
  // its own to send after its request (an upload's data and end), which a request in
  // between would break.
  virtual bool sending() const { return false; }
  // After failing: whether the connection can no longer carry requests (an upload
  // stopped in the middle of its body).
  virtual bool broke_stream() const { return false; }
  // The connection ended before the response did, or reactorc was interrupted: fail
  // with this status and message. What was received is dropped, or kept for a resume
  // (a download: get_command.h). A finished command ignores it.
  void abandon(int exit_code, const std::string& message);
  bool abandoned() const { return abandoned_; }

  CommandState state() const { return machine_.state(); }
  bool finished() const { return state() == CommandState::kDone || state() == CommandState::kFailed; }
  bool succeeded() const { return state() == CommandState::kDone; }
  const CommandResult& result() const { return result_; }

 protected:
  explicit Command(const app::Diagram<CommandState>& diagram) : machine_(CommandState::kRequested, diagram) {}

  bool transition(CommandState next);
  void succeed() { transition(CommandState::kDone); }
  void fail(int exit_code, std::string message);
  // The server's error answered the request: fails with status kExitRemote, the error
  // described (and `more` after it), and its code in result().remote_code.
  void refused(const protocol::ErrorMessage& error, const std::string& more = {});
  // A reply this command does not expect at this point.
  void unexpected(const protocol::Message& message);
  // For a command answered by one message: that message as a Reply, or nullptr when the
  // command is already finished or the message fails it (the server's error, or any other
  // message).
  template <typename Reply>
  Reply* expect_reply(protocol::Message& message) {
    if (finished()) return nullptr;
    if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) {
      refused(*error);
      return nullptr;
    }
    auto* reply = std::get_if<Reply>(&message);
    if (reply == nullptr) unexpected(message);
    return reply;
  }
  // Called once when the command fails, before the state changes: drop partial work.
  virtual void on_fail() {}

  Outbox* outbox_ = nullptr;
  uint64_t protocol_version_ = protocol::kProtocolVersion;

 private:
  bool abandoned_ = false;
  app::StateMachine<CommandState> machine_;
  CommandResult result_;
};

// stat PATH: one stat_ok.
class StatCommand final : public Command {
 public:
  explicit StatCommand(std::string path);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "stat"; }
  void on_message(protocol::Message& message) override;
  const protocol::StatReply& reply() const { return reply_; }

 private:
  std::string path_;
  protocol::StatReply reply_;
};

// ping: one pong.
class PingCommand final : public Command {
 public:
  PingCommand();
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "ping"; }
  void on_message(protocol::Message& message) override;
};

// send TEXT (the msg request): one msg_ok.
class MsgCommand final : public Command {
 public:
  explicit MsgCommand(std::string text);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "msg"; }
  void on_message(protocol::Message& message) override;
  uint64_t bytes() const { return bytes_; }

 private:
  std::string text_;
  uint64_t bytes_ = 0;
};

// ls [PATH]: entries frames, then list_end. Collected whole, to be sorted for display.
class ListCommand final : public Command {
 public:
  // A hostile server could stream entries forever; a listing bigger than this is not
  // something a terminal user wants either.
  static constexpr size_t kMaxEntries = 10'000'000;

  // `links`: ask for links as kind link, with their targets (ls -l's "name -> target").
  explicit ListCommand(std::string path, bool links = false);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "list"; }
  void on_message(protocol::Message& message) override;
  std::vector<protocol::Entry>& entries() { return entries_; }
  uint64_t skipped() const { return skipped_; }

 private:
  std::string path_;
  bool links_;
  std::vector<protocol::Entry> entries_;
  uint64_t skipped_ = 0;
};

// mkdir PATH (put -r): one mkdir_ok. With `mtime`, also (or only: the directory is
// there already) sets the directory's time, as put -r -p does once its files are in.
class MkdirCommand final : public Command {
 public:
  MkdirCommand(std::string path, std::optional<uint32_t> mode, std::optional<int64_t> mtime = std::nullopt);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "mkdir"; }
  void on_message(protocol::Message& message) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::optional<uint32_t> mode_;
  std::optional<int64_t> mtime_;
};

// symlink PATH TARGET (put -r --links): one symlink_ok.
class SymlinkCommand final : public Command {
 public:
  SymlinkCommand(std::string path, std::string target, bool force);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "symlink"; }
  void on_message(protocol::Message& message) override;
  const std::string& target() const { return target_; }
  bool unchanged() const { return unchanged_; }

 private:
  std::string path_;
  std::string target_;
  bool force_;
  bool unchanged_ = false;
};

// Told about a recursive listing as it streams in, frame by frame, each already checked
// (protocol::TreeListingCheck).
class TreeListObserver {
 public:
  virtual ~TreeListObserver() = default;
  // `entries` are in `dir` (components beneath the listed directory); the observer may
  // take them.
  virtual void on_tree_entries(const std::vector<std::string>& dir, std::vector<protocol::Entry>& entries) = 0;
};

// get -r: `list` with "recursive", streamed to an observer instead of collected, so that
// a tree of a million files flows through in bounded memory. A frame the checks refuse
// fails the command (a lying server): nothing after it is acted on.
class TreeListCommand final : public Command {
 public:
  // `links`: ask for symbolic links as kind link with their targets (feature links).
  TreeListCommand(std::string path, bool links, TreeListObserver& observer);
  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "list"; }
  void on_message(protocol::Message& message) override;
  const protocol::ListEnd& end() const { return end_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool links_;
  TreeListObserver& observer_;
  protocol::TreeListingCheck check_;
  protocol::ListEnd end_;
};

}  // namespace client
