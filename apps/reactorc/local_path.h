#pragma once
// Where on this machine a download lands, and what an upload reads. The name is always
// the user's (LOCAL, or the last component of REMOTE), never one taken from the
// server's reply.

#include <sys/stat.h>

#include <string>

#include "reactor/unique_fd.h"

namespace client {

// The local name for a download: LOCAL if given (a directory means "inside it"), else
// the last component of REMOTE.
bool choose_local_path(const std::string& remote, const std::string& local, std::string* out, std::string* err);

// Opens the directory that will hold `path` (O_PATH: a descriptor to create files
// relative to) and splits off the name within it. False + *err if the directory cannot
// be opened or the path names no file ("dir/", "..").
bool open_parent(const std::string& path, reactor::UniqueFd* dir, std::string* name, std::string* err);

// LOCAL that is not a file to create: "-" (standard output), a character device or a
// FIFO, which are written through as the bytes arrive (the curl -o /dev/null habit must
// not replace /dev/null). *fd is left empty when LOCAL is none of those. False + *err
// for what cannot be written at all: a block device or a socket.
bool open_stream_destination(const std::string& local, reactor::UniqueFd* fd, std::string* display,
                             std::string* err);

// Where a download to `local` is renamed to. A symbolic link is never replaced: with
// `force`, the link is followed to the regular file it names, which is replaced and the
// link kept, provided that file's directory belongs to this user (a link planted in a
// shared directory must not aim root's download at /etc); without `force` it is left to
// the usual "exists; use --force" refusal. *target is `local` itself otherwise.
bool resolve_destination(const std::string& local, bool force, std::string* target, std::string* err);

// The remote name for an upload: REMOTE if given, with LOCAL's last component added
// when it ends in '/', else that component alone (in the served root).
bool choose_remote_path(const std::string& local, const std::string& remote, std::string* out, std::string* err);

// Opens LOCAL for an upload: a regular file, read-only, and its fstat. Standard input,
// devices, FIFOs and directories are refused with the reason: a put declares its size
// before the first byte.
bool open_upload_source(const std::string& local, reactor::UniqueFd* fd, struct stat* st, std::string* err);

}  // namespace client
