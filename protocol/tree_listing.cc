#include "protocol/tree_listing.h"

#include <algorithm>

#include "protocol/utf8.h"

namespace protocol {
namespace {

// A name as it may be shown: printable ASCII as is, anything else as \xNN.
std::string shown(std::string_view name) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < name.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (name.size() > 64) out += "...";
  return "\"" + out + "\"";
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

}  // namespace

bool valid_entry_name(std::string_view name, std::string* why) {
  if (name.empty()) {
    *why = "an empty name";
    return false;
  }
  if (name.size() > kMaxNameLen) {
    *why = "a name longer than 255 bytes";
    return false;
  }
  if (name == "." || name == "..") {
    *why = "the name " + shown(name);
    return false;
  }
  if (!valid_utf8(name)) {
    *why = "the name " + shown(name) + ", which is not valid UTF-8";
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    bool c1 = c == 0xc2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(name[i + 1]) <= 0x9f;
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f || c1) {
      *why = "the name " + shown(name) + ", which is not one harmless path component";
      return false;
    }
  }
  return true;
}

bool TreeListingCheck::accept(const Entries& frame, std::string* why) {
  if (!frame.dir) {
    *why = "a recursive listing's entries without \"dir\"";
    return false;
  }
  std::vector<std::string> dir;
  if (!frame.dir->empty()) {
    size_t start = 0;
    while (true) {
      size_t slash = frame.dir->find('/', start);
      std::string part = frame.dir->substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      std::string bad;
      if (!valid_entry_name(part, &bad)) {
        *why = "a listing of directory " + shown(*frame.dir) + ": it holds " + bad;
        return false;
      }
      dir.push_back(std::move(part));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  // Descending: exactly into the directory the last frame ended with.
  bool descends = !announced_.empty() && dir.size() == path_.size() + 1 && dir.back() == announced_ &&
                  std::equal(path_.begin(), path_.end(), dir.begin());
  // Coming back up, or going on: the current directory or one of its ancestors.
  bool within = dir.size() <= path_.size() && std::equal(dir.begin(), dir.end(), path_.begin());
  if (!descends && !within) {
    *why = "entries for directory " + shown(*frame.dir) + ", which the listing did not lead into";
    if (!path_.empty() || !announced_.empty()) *why += " (it was in " + shown(joined(path_)) + ")";
    return false;
  }
  for (const Entry& entry : frame.entries) {
    std::string bad;
    if (!valid_entry_name(entry.name, &bad)) {
      *why = "an entry in " + shown(*frame.dir) + " with " + bad;
      return false;
    }
  }
  path_ = std::move(dir);
  announced_.clear();
  if (!frame.entries.empty() && frame.entries.back().kind == EntryKind::kDir) announced_ = frame.entries.back().name;
  return true;
}

}  // namespace protocol
