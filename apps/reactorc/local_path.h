#pragma once
// Where on this machine a download lands. The name is always the user's (LOCAL, or the
// last component of REMOTE), never one taken from the server's reply.

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

}  // namespace client
