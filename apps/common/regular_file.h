#pragma once
// Opening a small file of settings or keys that must be a regular file (the secret, the
// configuration file): the checks both share, with errors that name what the file is.

#include <sys/stat.h>

#include <string>

#include "reactor/unique_fd.h"

namespace app {

// Opens PATH read-only (O_CLOEXEC | O_NOCTTY | O_NONBLOCK, plus EXTRA_FLAGS such as
// O_NOFOLLOW) and fstats it into *st; only a regular file passes. On failure the
// descriptor is invalid, *err reads `open WHAT "PATH": ...` or `WHAT "PATH" is not a
// regular file`, and *open_errno is open(2)'s errno (0 if the open itself worked), so
// that a caller may treat ENOENT or ELOOP its own way.
reactor::UniqueFd open_regular_file(const std::string& path, const char* what, int extra_flags, struct stat* st,
                                    int* open_errno, std::string* err);

}  // namespace app
