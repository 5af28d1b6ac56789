#pragma once
// put LOCAL REMOTE: the upload state machine (reactor-protocol(7), "put").
//
//   Requested --put_ready--> Sending --body and end sent--> Verifying --put_done--> Done
//   Requested --put_ready with digests--> Receiving --digests--> Sending (put -c)
//   Requested --request sent--> Sending ... (eager: put_ready arrives while sending)
//   (any of them) --error, local failure, lost connection--> Failed
//
// The file is opened and checked (a regular file) before the connection starts, and
// read once: the BodySource hashes exactly the bytes it sends, and the end carries that
// digest. put_done must repeat it: the server stored what was sent, nothing else. A file
// that changes while it is sent fails the upload; the connection is then closed, since
// no end can be sent for a body the server would store.
//
// Resumed (put -c): the file is hashed whole before the connection starts, since the put
// names its root; the server answers with the digests of what it kept of an earlier
// attempt, the data starts at the first chunk whose digest differs from the file's, and
// is sent unhashed (the root is known; a file changed meanwhile is still caught).

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/common/body_source.h"
#include "apps/reactorc/command.h"
#include "protocol/types.h"
#include "reactor/unique_fd.h"

namespace client {

// Told about an upload's progress (reactorc's progress bar).
class PutObserver {
 public:
  virtual ~PutObserver() = default;
  // The server accepted the upload: `size` bytes from `offset`.
  virtual void on_put_ready(uint64_t size, uint64_t offset) = 0;
};

class PutCommand final : public Command {
 public:
  // `file`: LOCAL, open for reading, and its fstat. `preserve`: send its mode and mtime.
  PutCommand(reactor::UniqueFd file, const struct stat& st, std::string remote, bool force, bool preserve,
             PutObserver* observer = nullptr);
  // put -c: hashes the whole file (its chunk digests and root). False + *err when it
  // cannot be read.
  bool prepare_resume(std::string* err);
  // Send the data and end right behind the request, without waiting for put_ready
  // (reactor-protocol(7), eager_put): for small files of a tree, a round trip each
  // saved. Not with resume. A refusal then comes while the body goes out; the body and
  // end still go, and the server drops them.
  void set_eager(bool eager) { eager_ = eager && !resume_; }
  void on_body(const char* data, size_t len, uint64_t remaining) override;

  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "put"; }
  void on_message(protocol::Message& message) override;
  void on_produced() override;
  void on_sent() override;
  // Until its end is out: put_ready awaited, the digests received, the body produced.
  bool sending() const override {
    return producing_ || (!finished() && state() != CommandState::kVerifying);
  }
  bool broke_stream() const override { return broke_stream_; }

  uint64_t size() const { return static_cast<uint64_t>(st_.st_size); }
  // Bytes of the file the server has or was handed so far (a resumed upload's start included).
  uint64_t sent() const { return start_ + (source_ ? source_->body_sent() : 0); }
  // put -c: where the data started, and how many bytes the server held.
  uint64_t start() const { return start_; }
  uint64_t held_by_server() const { return ready_.offset; }
  // Refused because another upload is continuing the same file (worth a retry).
  bool refused_in_progress() const { return in_progress_; }
  const protocol::Digest& digest() const { return digest_; }
  const std::string& remote() const { return remote_; }

 private:
  void on_fail() override;
  void on_ready(const protocol::PutReady& ready);
  void send_from(uint64_t offset);
  void on_done(const protocol::PutDone& done);

  reactor::UniqueFd file_;
  struct stat st_;
  std::string remote_;
  bool force_;
  bool preserve_;
  PutObserver* observer_;
  std::unique_ptr<app::BodySource> source_;  // from put_ready on; kept until destroyed
  protocol::Digest digest_{};
  bool broke_stream_ = false;
  bool resume_ = false;
  std::vector<protocol::Digest> leaves_;  // put -c: the file's, computed before the request
  protocol::PutReady ready_;
  std::string server_digests_;            // put_ready's body
  uint64_t start_ = 0;
  bool in_progress_ = false;
  bool eager_ = false;
  bool ready_seen_ = false;
  bool producing_ = false;
};

}  // namespace client
