#pragma once
// get REMOTE: the download state machine, the same for reactorc get and reactorc bench
// get. The body goes into a BodySink (a file, renamed into place only once verified; or,
// for the bench, nowhere) and the SHA-256 in the trailer decides.
//
//   Requested --file--> Receiving --end--> Verifying --match--> Committing --> Done
//   (any of them) --error, mismatch, local failure, lost connection--> Failed
//
// A failed get leaves nothing under the final name. A get into a partial download
// (partial_download.h) writes the note when the header arrives; cut short (abandoned:
// the connection lost, reactorc interrupted) it leaves the partial for a resume, and any
// other failure removes it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "apps/common/body_sink.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/partial_download.h"
#include "protocol/types.h"

namespace client {

// Told about a download's progress (reactorc's progress bar).
class GetObserver {
 public:
  virtual ~GetObserver() = default;
  virtual void on_file(const protocol::FileHeader& header) = 0;
  // Bytes of the file held so far: the body received, after what a resumed download
  // already had (the header's offset).
  virtual void on_received(uint64_t bytes) = 0;
};

class GetCommand final : public Command {
 public:
  // `offset`: the first byte wanted (a resumed download: the sink holds the rest).
  GetCommand(std::string remote, std::unique_ptr<app::BodySink> sink, GetObserver* observer = nullptr,
             uint64_t offset = 0);

  // The sink writes into `partial` (borrowed, outliving this command), which notes what
  // it is part of: `server` and the remote path, size and time.
  void use_partial(PartialDownload* partial, std::string server);
  // A file announced by a listing: the header's size must be `size` (a file that
  // changed since it was listed, or a server that lied, fails the get).
  void expect_size(uint64_t size) { listed_size_ = size; }
  // Give the file the mode the server sent (get -p), not 0666 less the umask.
  void keep_mode(bool keep) { keep_mode_ = keep; }
  // After failing: whether the partial download was kept for a resume, and its size.
  bool kept_partial() const { return kept_partial_; }
  // The first byte asked for: what a resumed download already held.
  uint64_t offset() const { return offset_; }

  protocol::Message request() const override;
  const char* feature() const override;
  const char* name() const override { return "get"; }
  void on_message(protocol::Message& message) override;
  void on_body(const char* data, size_t len, uint64_t remaining) override;

  // Whether a file header arrived (a transfer started, as opposed to a refusal).
  bool started() const { return started_; }
  uint64_t received() const { return received_; }
  // The file's bytes held: the offset asked from, and the body received since.
  uint64_t held() const { return offset_ + received_; }
  // The remote file's size, from the header (0 before it).
  uint64_t expected_size() const { return size_; }
  const protocol::Digest& digest() const { return digest_; }
  const app::BodySink& sink() const { return *sink_; }

 private:
  void on_fail() override;
  void on_file(const protocol::FileHeader& header);
  void on_end(const protocol::End& end);

  std::string remote_;
  std::unique_ptr<app::BodySink> sink_;
  GetObserver* observer_;
  uint64_t offset_;
  PartialDownload* partial_ = nullptr;
  std::string server_;
  bool kept_partial_ = false;
  bool started_ = false;
  uint64_t expected_ = 0;
  uint64_t size_ = 0;
  uint64_t received_ = 0;
  int64_t mtime_ = 0;
  uint32_t mode_ = 0;
  std::optional<uint64_t> listed_size_;
  bool keep_mode_ = false;
  protocol::Digest digest_{};
};

}  // namespace client
