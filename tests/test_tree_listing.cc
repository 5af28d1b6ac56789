// The client's checks on a recursive listing (protocol/tree_listing.h;
// reactor-protocol(7), list): every name one harmless component, and every frame in a
// directory the walk leads into. Each case a lying server could use is refused.
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <string>
#include <vector>

#include "protocol/messages.h"
#include "protocol/tree_listing.h"
#include "tests/support/assertions.h"

using protocol::EntryKind;
using protocol::Entries;
using protocol::TreeListingCheck;

TestSuite(tree_listing, .timeout = 30);

namespace {

protocol::Entry entry(const std::string& name, EntryKind kind = EntryKind::kFile) {
  protocol::Entry e;
  e.name = name;
  e.kind = kind;
  e.mode = 0644;
  return e;
}

Entries frame(const std::string& dir, std::vector<protocol::Entry> entries) {
  Entries f;
  f.dir = dir;
  f.entries = std::move(entries);
  return f;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

void accept(TreeListingCheck& check, const Entries& f, const std::string& expect_dir) {
  std::string why;
  cr_assert(check.accept(f, &why), "refused a frame for \"%s\": %s", f.dir->c_str(), why.c_str());
  ASSERT_STR_EQ(joined(check.dir()), expect_dir);
}

void refuse(TreeListingCheck& check, const Entries& f, const char* expect_in_why) {
  std::string why;
  cr_assert_not(check.accept(f, &why), "accepted a frame for \"%s\"", f.dir ? f.dir->c_str() : "(none)");
  cr_assert(why.find(expect_in_why) != std::string::npos, "why: %s (expected \"%s\")", why.c_str(), expect_in_why);
}

}  // namespace

Test(tree_listing, harmless_names_pass) {
  std::string why;
  for (const char* name : {"a", "a.txt", ".hidden", "...", "x y", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "-rf", "~"}) {
    cr_assert(protocol::valid_entry_name(name, &why), "%s: %s", name, why.c_str());
  }
  cr_assert(protocol::valid_entry_name(std::string(255, 'n'), &why));
}

Test(tree_listing, names_that_escape_or_hide_are_refused) {
  std::string why;
  const std::vector<std::string> bad = {
      "", ".", "..", "a/b", "/etc", "..\\..\\x", "a\\b", std::string("a\0b", 3), "line\nbreak", "bell\x07",
      "esc\x1b[2J", "del\x7f", "c1\xc2\x9b" "31m", "\xff\xfe", "\xc3", std::string(256, 'n')};
  for (const std::string& name : bad) {
    cr_assert_not(protocol::valid_entry_name(name, &why), "accepted a name of %zu bytes", name.size());
    cr_assert(!why.empty());
    for (char c : why) cr_assert(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "why is not printable: %s", why.c_str());
  }
}

Test(tree_listing, a_depth_first_walk_is_accepted) {
  TreeListingCheck check;
  accept(check, frame("", {entry("a"), entry("sub", EntryKind::kDir)}), "");
  accept(check, frame("sub", {entry("b"), entry("deeper", EntryKind::kDir)}), "sub");
  accept(check, frame("sub/deeper", {entry("c")}), "sub/deeper");
  accept(check, frame("sub/deeper", {entry("d")}), "sub/deeper");  // the same directory, another frame
  accept(check, frame("sub", {entry("e"), entry("empty", EntryKind::kDir)}), "sub");  // back up one level
  accept(check, frame("", {entry("f"), entry("other", EntryKind::kDir)}), "");  // "empty" had no frame
  accept(check, frame("other", {}), "other");
  accept(check, frame("", {entry("g")}), "");
}

Test(tree_listing, a_frame_without_dir_is_refused) {
  TreeListingCheck check;
  Entries f;
  f.entries.push_back(entry("a"));
  refuse(check, f, "without \"dir\"");
}

Test(tree_listing, a_directory_not_announced_is_refused) {
  TreeListingCheck check;
  accept(check, frame("", {entry("sub", EntryKind::kDir), entry("a")}), "");
  // "sub" was announced, but not as the frame's last entry: the server did not descend.
  refuse(check, frame("sub", {entry("x")}), "did not lead into");
  TreeListingCheck other;
  accept(other, frame("", {entry("sub", EntryKind::kDir)}), "");
  refuse(other, frame("elsewhere", {entry("x")}), "did not lead into");
  TreeListingCheck file;
  accept(file, frame("", {entry("sub", EntryKind::kFile)}), "");  // a file, not a directory
  refuse(file, frame("sub", {entry("x")}), "did not lead into");
}

Test(tree_listing, skipping_levels_or_going_back_into_a_left_directory_is_refused) {
  TreeListingCheck check;
  accept(check, frame("", {entry("a", EntryKind::kDir)}), "");
  refuse(check, frame("a/b", {entry("x")}), "did not lead into");  // two levels at once
  TreeListingCheck back;
  accept(back, frame("", {entry("a", EntryKind::kDir)}), "");
  accept(back, frame("a", {entry("x")}), "a");
  accept(back, frame("", {entry("y")}), "");
  refuse(back, frame("a", {entry("z")}), "did not lead into");  // left; not announced again
}

Test(tree_listing, hostile_dirs_and_names_are_refused) {
  for (const char* dir : {"..", "../x", "/etc", "a//b", "./a", "a/", "/"}) {
    TreeListingCheck check;
    accept(check, frame("", {entry("a", EntryKind::kDir)}), "");
    refuse(check, frame(dir, {entry("x")}), "");
  }
  TreeListingCheck names;
  refuse(names, frame("", {entry("ok"), entry("../../etc/passwd")}), "not one harmless path component");
  TreeListingCheck dots;
  refuse(dots, frame("", {entry("..", EntryKind::kDir)}), "\"..\"");
  TreeListingCheck empty;
  refuse(empty, frame("", {entry("")}), "empty name");
}

Test(tree_listing, a_refused_frame_changes_nothing) {
  TreeListingCheck check;
  accept(check, frame("", {entry("a", EntryKind::kDir)}), "");
  refuse(check, frame("a", {entry("bad/name")}), "harmless");
  // Still in the listed directory, and "a" still the way down.
  accept(check, frame("a", {entry("fine")}), "a");
}
