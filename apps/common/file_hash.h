#pragma once
// Reading a file for its digest: the one loop that reactord's TreeJob (a file's chunk
// tree, on the worker), reactorc put -c (the local file's tree before the request) and
// get -c's chunk check (check_chunks) all need, with EINTR retried and a file that
// shrinks under the reader told apart from a read error.

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/content_hash.h"

namespace app {

enum class ReadOutcome { kOk, kShrank, kError, kCancelled };

// Reads exactly `len` bytes at `offset` into `buf`. kError leaves errno set.
ReadOutcome pread_full(int fd, char* buf, size_t len, uint64_t offset);

// Feeds bytes 0 .. size - 1 of `fd` to `hash`, 1 MiB at a time. `cancelled`, if given, is
// looked at before every chunk. kError leaves errno set.
ReadOutcome hash_file(int fd, uint64_t size, protocol::ContentHash* hash, const std::atomic<bool>* cancelled = nullptr);

// The chunk-tree root of the regular file `name` in directory `dir` (opened with
// O_NOFOLLOW), as reactord computes it: get -r's and put -r's quick check of a file of
// `size` bytes. False if it cannot be read, or shrank meanwhile.
bool tree_root_at(int dir, const std::string& name, uint64_t size, protocol::Digest* root);

}  // namespace app
