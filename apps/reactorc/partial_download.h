#pragma once
// PartialDownload: where a download to a file lives until it is verified.
//
// The body goes into ".NAME.reactor-partial" beside the destination, and a note,
// ".NAME.reactor-partial.json", says what it is part of: the server, the remote path,
// and the remote file's size and modification time. Once the digest matches, the
// partial is renamed into place and the note removed; a mismatch removes both (nothing
// unverified survives under any name a user would take for the file). A transfer cut
// short (lost connection, SIGINT, SIGKILL, a crash) leaves both behind, so that
// `reactorc get -c` can resume: it checks every chunk held against the server's chunk
// digests (reactor-protocol(7), CHUNK TREE), keeps what matches and fetches the rest.
// The note is only a hint for telling the user the file changed; nothing held is ever
// trusted without its digest.
//
// An exclusive flock(2) on the partial, held for the whole run, keeps two reactorc
// processes from writing into one partial at once.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/types.h"
#include "reactor/unique_fd.h"

namespace client {

// What a partial download is a part of.
struct PartialSource {
  std::string server;  // HOST:PORT as given
  std::string path;    // the remote path as requested
  uint64_t size = 0;
  int64_t mtime = 0;
  bool operator==(const PartialSource& other) const;
};

// The partial's and the note's names for destination `name` (long names are shortened
// with a hash of the name, so that both stay within NAME_MAX).
std::string partial_name_for(const std::string& name);
std::string note_name_for(const std::string& name);

class PartialDownload {
 public:
  // Opens the partial for `name` in `dir` (a directory descriptor), creating it empty if
  // there is none, and locks it. False + *err when another process holds it, when it is
  // not a regular file (a planted symlink or FIFO is refused, never followed), or when it
  // cannot be created. `display` is the destination as the user named it.
  static bool open(int dir, const std::string& name, const std::string& display, PartialDownload* out,
                   std::string* err);

  PartialDownload() = default;
  PartialDownload(PartialDownload&&) = default;
  PartialDownload& operator=(PartialDownload&&) = default;

  bool is_open() const { return static_cast<bool>(fd_); }
  const std::string& file_name() const { return file_name_; }
  // Bytes held when opened; 0 for a new partial.
  uint64_t held() const { return held_; }
  // The note found beside it, if there was a readable one.
  const std::optional<PartialSource>& note() const { return note_; }

  // Reads its size (held()) and note again: after an attempt that wrote into it.
  bool refresh(std::string* err);
  // Cuts the partial to `length` bytes and sets its offset there, for the body to go on.
  bool truncate(uint64_t length, std::string* err);
  // Writes the note (atomically: a new file renamed over the old).
  bool write_note(const PartialSource& source, std::string* err);
  // A descriptor of the partial, for the sink to write through (the lock stays with it).
  reactor::UniqueFd dup_fd(std::string* err) const;
  int fd() const { return fd_.get(); }
  // Removes the note; the partial itself is then the sink's to rename or remove.
  void forget_note();
  // Removes the partial and the note.
  void remove();

 private:
  int dir_ = -1;  // borrowed: the caller keeps the directory open
  std::string name_;
  std::string display_;
  std::string file_name_;
  reactor::UniqueFd fd_;
  uint64_t held_ = 0;
  std::optional<PartialSource> note_;
};

// Which chunks of a partial match: chunk i (of a file of `size` bytes) is checked when
// the partial holds all of it and `leaves` has its digest.
struct ChunkCheck {
  uint64_t checked = 0;          // chunks 0 .. checked - 1 were read and hashed
  std::vector<uint64_t> bad;     // those among them whose digest differs
  uint64_t bytes_hashed = 0;
};
bool check_chunks(int fd, uint64_t held, uint64_t size, const std::vector<protocol::Digest>& leaves,
                  ChunkCheck* out, std::string* err);

}  // namespace client
