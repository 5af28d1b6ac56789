#include "apps/reactorc/partial_download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>

#include <cjson/cJSON.h>

#include "apps/common/file_hash.h"
#include "apps/common/locked_file.h"
#include "protocol/content_hash.h"
#include "protocol/hex.h"
#include "protocol/json_header.h"
#include "protocol/sha256.h"
#include "reactor/errors.h"

namespace client {
namespace {

constexpr char kPartialSuffix[] = ".reactor-partial";
constexpr char kNoteSuffix[] = ".reactor-partial.json";
constexpr size_t kMaxNoteBytes = 16 * 1024;
// ".NAME.reactor-partial.json" within NAME_MAX (255): longer names keep their first
// 180 bytes and a hash of the whole.
constexpr size_t kMaxKeptName = 180;

std::string stem_for(const std::string& name) {
  if (name.size() <= kMaxKeptName) return "." + name;
  protocol::Digest d = protocol::sha256(name.data(), name.size());
  return "." + name.substr(0, kMaxKeptName) + "~" + protocol::to_hex(d).substr(0, 16);
}

bool read_all(int fd, std::string* out) {
  char buffer[4096];
  for (size_t total = 0; total <= kMaxNoteBytes;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buffer, static_cast<size_t>(n));
    total += static_cast<size_t>(n);
  }
  return false;  // far too big to be a note
}

std::optional<PartialSource> parse_note(const std::string& text) {
  protocol::JsonPtr json(cJSON_ParseWithLength(text.data(), text.size()));
  if (!json || !cJSON_IsObject(json.get())) return std::nullopt;
  const cJSON* server = cJSON_GetObjectItemCaseSensitive(json.get(), "server");
  const cJSON* path = cJSON_GetObjectItemCaseSensitive(json.get(), "path");
  const cJSON* size = cJSON_GetObjectItemCaseSensitive(json.get(), "size");
  const cJSON* mtime = cJSON_GetObjectItemCaseSensitive(json.get(), "mtime");
  if (!cJSON_IsString(server) || !cJSON_IsString(path) || !cJSON_IsString(size) || !cJSON_IsString(mtime))
    return std::nullopt;
  // Integers as decimal strings: a double cannot hold every 64-bit size.
  PartialSource source;
  source.server = server->valuestring;
  source.path = path->valuestring;
  errno = 0;
  char* end = nullptr;
  source.size = std::strtoull(size->valuestring, &end, 10);
  if (errno != 0 || end == size->valuestring || *end != '\0') return std::nullopt;
  source.mtime = std::strtoll(mtime->valuestring, &end, 10);
  if (errno != 0 || end == mtime->valuestring || *end != '\0') return std::nullopt;
  return source;
}

}  // namespace

bool PartialSource::operator==(const PartialSource& other) const {
  return server == other.server && path == other.path && size == other.size && mtime == other.mtime;
}

std::string partial_name_for(const std::string& name) { return stem_for(name) + kPartialSuffix; }
std::string note_name_for(const std::string& name) { return stem_for(name) + kNoteSuffix; }

bool PartialDownload::open(int dir, const std::string& name, const std::string& display, PartialDownload* out,
                           std::string* err) {
  PartialDownload p;
  p.dir_ = dir;
  p.name_ = name;
  p.display_ = display;
  p.file_name_ = partial_name_for(name);
  struct stat st {};
  switch (app::open_locked(dir, p.file_name_, &p.fd_, &st)) {
    case app::LockOutcome::kLocked:
      break;
    case app::LockOutcome::kBusy:
      *err = "another reactorc is downloading into \"" + display + "\"";
      return false;
    case app::LockOutcome::kNotRegular:
      *err = "the partial download of \"" + display + "\" (" + p.file_name_ + ") is not a regular file";
      return false;
    case app::LockOutcome::kOpenError:
      *err = reactor::sys_error("create the partial download of", display);
      return false;
    case app::LockOutcome::kLockError:
      *err = reactor::sys_error("lock the partial download of", display);
      return false;
  }
  p.held_ = static_cast<uint64_t>(st.st_size);
  int note = openat(dir, note_name_for(name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (note >= 0) {
    reactor::UniqueFd note_fd(note);
    std::string text;
    struct stat nst {};
    if (fstat(note, &nst) == 0 && S_ISREG(nst.st_mode) && read_all(note, &text)) p.note_ = parse_note(text);
  }
  *out = std::move(p);
  return true;
}

bool PartialDownload::refresh(std::string* err) {
  struct stat st {};
  if (fstat(fd_.get(), &st) != 0) {
    *err = reactor::sys_error("stat the partial download of", display_);
    return false;
  }
  held_ = static_cast<uint64_t>(st.st_size);
  return true;
}

bool PartialDownload::truncate(uint64_t length, std::string* err) {
  if (ftruncate(fd_.get(), static_cast<off_t>(length)) != 0 ||
      lseek(fd_.get(), static_cast<off_t>(length), SEEK_SET) < 0) {
    *err = reactor::sys_error("cut the partial download of", display_);
    return false;
  }
  return true;
}

bool PartialDownload::write_note(const PartialSource& source, std::string* err) {
  protocol::JsonPtr json(cJSON_CreateObject());
  if (!json) {
    *err = "out of memory";
    return false;
  }
  cJSON_AddStringToObject(json.get(), "server", source.server.c_str());
  cJSON_AddStringToObject(json.get(), "path", source.path.c_str());
  cJSON_AddStringToObject(json.get(), "size", std::to_string(source.size).c_str());
  cJSON_AddStringToObject(json.get(), "mtime", std::to_string(source.mtime).c_str());
  char* printed = cJSON_PrintUnformatted(json.get());
  if (printed == nullptr) {
    *err = "out of memory";
    return false;
  }
  std::string text = std::string(printed) + "\n";
  cJSON_free(printed);
  std::string note = note_name_for(name_);
  std::string temp = note + ".new";
  int fd = openat(dir_, temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    *err = reactor::sys_error("write the note of the partial download of", display_);
    return false;
  }
  reactor::UniqueFd owned(fd);
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || close(owned.release()) != 0 ||
      renameat(dir_, temp.c_str(), dir_, note.c_str()) != 0) {
    *err = reactor::sys_error("write the note of the partial download of", display_);
    unlinkat(dir_, temp.c_str(), 0);
    return false;
  }
  note_ = source;
  return true;
}

reactor::UniqueFd PartialDownload::dup_fd(std::string* err) const {
  int fd = fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) *err = reactor::sys_error("dup the partial download of", display_);
  return reactor::UniqueFd(fd);
}

void PartialDownload::forget_note() {
  if (dir_ < 0) return;
  unlinkat(dir_, note_name_for(name_).c_str(), 0);
  note_.reset();
}

void PartialDownload::remove() {
  if (dir_ < 0) return;
  unlinkat(dir_, file_name_.c_str(), 0);
  forget_note();
}

namespace {

// Hashes chunks first, first + stride, ... below `count` into bad[] (1: differs), with a
// buffer of its own: one of check_chunks' threads.
void check_some(int fd, uint64_t size, const std::vector<protocol::Digest>& leaves, uint64_t count, uint64_t first,
                uint64_t stride, std::vector<char>* bad, std::string* err) {
  std::vector<char> buffer(protocol::kChunkSize);
  for (uint64_t i = first; i < count; i += stride) {
    size_t length = static_cast<size_t>(protocol::chunk_length(size, i));
    app::ReadOutcome outcome = app::pread_full(fd, buffer.data(), length, i * protocol::kChunkSize);
    if (outcome != app::ReadOutcome::kOk) {
      *err = outcome == app::ReadOutcome::kShrank ? std::string("the partial download shrank while it was checked")
                                                  : reactor::sys_error("read the partial download");
      return;
    }
    (*bad)[i] = protocol::sha256(buffer.data(), length) != leaves[i] ? 1 : 0;
  }
}

}  // namespace

bool check_chunks(int fd, uint64_t held, uint64_t size, const std::vector<protocol::Digest>& leaves,
                  ChunkCheck* out, std::string* err) {
  *out = ChunkCheck{};
  // The chunks held whole and described: 0 .. count - 1.
  uint64_t count = 0;
  while (count < leaves.size()) {
    uint64_t length = protocol::chunk_length(size, count);
    if (length == 0 || count * protocol::kChunkSize + length > held) break;
    ++count;
  }
  // Hashing is the whole cost (SHA-256 of what is held, at one core's speed): spread it
  // over the cores, each thread its own chunks, so the check runs at the machine's speed
  // rather than one core's. The threads block every signal: they are the event loop's.
  unsigned cores = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  uint64_t threads = std::min<uint64_t>(cores, std::max<uint64_t>(1, count / 8));
  std::vector<char> bad(count, 0);
  std::vector<std::string> errors(threads);
  std::vector<std::thread> workers;
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  for (uint64_t t = 1; t < threads; ++t) {
    try {
      workers.emplace_back(check_some, fd, size, std::cref(leaves), count, t, threads, &bad, &errors[t]);
    } catch (const std::system_error&) {
      // No thread: this one does that share too.
      check_some(fd, size, leaves, count, t, threads, &bad, &errors[t]);
    }
  }
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  check_some(fd, size, leaves, count, 0, threads, &bad, &errors[0]);
  for (std::thread& worker : workers) worker.join();
  for (const std::string& e : errors) {
    if (!e.empty()) {
      *err = e;
      return false;
    }
  }
  for (uint64_t i = 0; i < count; ++i) {
    if (bad[i]) out->bad.push_back(i);
    out->bytes_hashed += protocol::chunk_length(size, i);
  }
  out->checked = count;
  return true;
}

}  // namespace client
