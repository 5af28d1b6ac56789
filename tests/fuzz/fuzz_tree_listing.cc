// libFuzzer target: the client's checks on a recursive listing (protocol/tree_listing.h),
// fed a hostile server's frames, one JSON header per line. Oracle, beyond the
// sanitizers: whatever a frame the checker accepts would make the client create, the
// directory and each name joined under the destination, is a relative path of harmless
// components, no deeper than the walk has gone by one level per frame, and the first
// refusal ends the listing (the client acts on nothing after it).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/json_header.h"
#include "protocol/messages.h"
#include "protocol/tree_listing.h"

namespace {

void must(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "oracle: %s\n", what);
    std::abort();
  }
}

// A path the client would build: components joined by '/', each harmless.
void check_components(const std::vector<std::string>& dir) {
  std::string why;
  for (const std::string& part : dir) must(protocol::valid_entry_name(part, &why), "a directory component is not harmless");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  protocol::TreeListingCheck check;
  size_t previous_depth = 0;
  size_t at = 0;
  int frames = 0;
  while (at < input.size() && frames < 256) {
    size_t end = input.find('\n', at);
    if (end == std::string_view::npos) end = input.size();
    std::string_view line = input.substr(at, end - at);
    at = end + 1;
    protocol::ProtocolError err;
    protocol::JsonPtr header = protocol::parse_header(line, &err);
    if (!header) continue;  // the frame decoder would have refused it: not the checker's
    std::optional<protocol::Message> message = protocol::parse_message(*header, 0, &err);
    if (!message) continue;
    auto* entries = std::get_if<protocol::Entries>(&*message);
    if (entries == nullptr) continue;
    ++frames;
    std::string why;
    if (!check.accept(*entries, &why)) {
      must(!why.empty(), "a refusal without a reason");
      return 0;  // the client abandons the listing here
    }
    check_components(check.dir());
    must(check.depth() <= previous_depth + 1, "the walk went down more than one level in one frame");
    previous_depth = check.depth();
    for (const protocol::Entry& entry : entries->entries)
      must(protocol::valid_entry_name(entry.name, &why), "an accepted entry's name is not harmless");
  }
  return 0;
}
