#pragma once
// The client's checks on a recursive listing (reactor-protocol(7), list): what a server
// may say, frame by frame, and nothing else. A listing is a lying server's best chance
// to plant a file where it was not asked to (CVE-2019-6111, CVE-2018-20685, rsync's
// CVE-2024-12087): every name must be one harmless path component, and a frame may only
// describe the directory the walk has just announced, or one it is still inside.
//
// The checker keeps the walk's current path, one entry per level, and the directory
// the last frame announced: memory grows with the depth, never with the entries.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"

namespace protocol {

// Whether `name` is one path component a client may create: 1 to 255 bytes of valid
// UTF-8, not "." or "..", without '/', '\', NUL or another control character (C0, DEL,
// C1). False + *why (safe to print) otherwise.
bool valid_entry_name(std::string_view name, std::string* why);

class TreeListingCheck {
 public:
  // The next entries frame. True: `frame` may be acted on, and dir() is the directory
  // its entries are in, as components beneath the listed one. False + *why (safe to
  // print): a protocol violation; the listing must be abandoned.
  bool accept(const Entries& frame, std::string* why);
  const std::vector<std::string>& dir() const { return path_; }
  size_t depth() const { return path_.size(); }

 private:
  std::vector<std::string> path_;  // the directory the last frame described
  std::string announced_;          // the last frame's last entry, if a directory; else empty
};

}  // namespace protocol
