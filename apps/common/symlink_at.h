#pragma once
// Symbolic links for get --links and the symlink request: the one containment rule both
// ends apply to a link's target, and making a link atomically in a directory descriptor.

#include <optional>
#include <string>
#include <string_view>

namespace app {

// Whether `target`, read as a link `depth` directories below some top directory (0: a
// link in the top directory itself), stays beneath that top directory: relative, and
// never climbing above it, component by component (".." up one, "." and empty
// components nothing). Lexical only, by design: it never consults the file system, whose
// answer could change after the check. "a/../../x" at depth 1 stays; "../x" at depth 0
// does not; an absolute or empty target never does.
bool link_stays_within(size_t depth, std::string_view target);

// Why a target fails link_stays_within, for a message: "is absolute", or "leads out of "
// followed by `top` ("the copied tree", "the served root").
std::string link_escape_reason(std::string_view target, const char* top);

// The contents of the symbolic link `name` in `dir`, if the protocol can carry them as a
// "target": 1 to kMaxPathLen bytes of valid UTF-8 (a JSON string). nullopt otherwise,
// with *errnum the readlinkat error if that is why (0 when it read but cannot be carried).
std::optional<std::string> read_link_target(int dir, const char* name, int* errnum = nullptr);

// The number of directories a relative path's last component is below its top:
// "a" is 0, "a/b" 1, "a//b/c" 2.
size_t depth_of(std::string_view relative_path);

enum class SymlinkResult { kMade, kUnchanged, kExists, kIsDirectory, kFailed };

// Makes `name` in `dir` a symbolic link to `target`: made under a temporary name, then
// renamed over `name`, so the name never goes missing and a link already there is
// never followed. A link already there with this target is left alone (kUnchanged);
// anything else is replaced only if `replace` (a directory never is), and *replaced
// says whether something was. On kFailed, *err says why,
// e.g. `symlink "docs/latest": No space left on device` with `display` as the name.
SymlinkResult make_symlink_at(int dir, const std::string& name, const std::string& target, bool replace,
                              const std::string& display, bool* replaced, std::string* err);

}  // namespace app
