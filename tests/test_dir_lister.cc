// reactord's directory listing (apps/reactord/dir_lister.h) on its own: frames packed
// to the limit, links described only when asked, and names that vanish between
// readdir and stat counted instead of failing the listing.
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "apps/reactord/dir_lister.h"
#include "apps/reactord/served_root.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "reactor/buffer.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

using protocol::Entries;
using protocol::EntryKind;
using protocol::ListEnd;

namespace {

struct Listing {
  std::vector<protocol::Entry> entries;
  ListEnd end;
  size_t frames = 0;
};

// Decodes every whole frame in `out` into `into`, leaving the buffer empty.
void take_frames(reactor::Buffer& out, Listing* into) {
  protocol::FrameDecoder decoder;
  std::string_view bytes = out.view();
  const char* data = bytes.data();
  size_t len = bytes.size();
  while (len > 0) {
    size_t used = 0;
    protocol::DecodeEvent ev = decoder.next(data, len, &used);
    data += used;
    len -= used;
    cr_assert(ev.kind != protocol::DecodeEvent::kError, "%s", decoder.error().message.c_str());
    cr_assert(ev.kind == protocol::DecodeEvent::kHeader, "a partial frame was produced");
    protocol::ProtocolError err;
    auto message = protocol::parse_message(decoder.header(), decoder.body_length(), &err);
    cr_assert(message.has_value(), "%s", err.message.c_str());
    if (auto* batch = std::get_if<Entries>(&*message)) {
      ++into->frames;
      for (auto& e : batch->entries) into->entries.push_back(e);
    } else if (auto* end = std::get_if<ListEnd>(&*message)) {
      into->end = *end;
    }
  }
  out.consume(bytes.size());
}

struct Fixture {
  testsupport::TempDir dir = *testsupport::TempDir::create("dir-lister");
  std::unique_ptr<server::ServedRoot> root;

  Fixture() {
    std::string err;
    root = server::ServedRoot::open(dir.path(), &err);
    cr_assert(root, "%s", err.c_str());
  }
  std::unique_ptr<server::DirLister> lister(server::DirLister::Options options) {
    protocol::ProtocolError perr;
    reactor::UniqueFd fd = root->open_directory("", &perr);
    cr_assert(static_cast<bool>(fd), "%s", perr.message.c_str());
    std::string err;
    auto l = server::DirLister::open(std::move(fd), *root, options, &err);
    cr_assert(l, "%s", err.c_str());
    return l;
  }
};

}  // namespace

TestSuite(dir_lister, .timeout = 60);

Test(dir_lister, names_removed_after_readdir_are_counted_as_vanished) {
  Fixture f;
  // Long names: a frame (64 KiB of JSON) holds about 430 of them and glibc reads about
  // 270 per getdents(2) (32 KiB), so after the first frame some names read from the
  // directory are still waiting in the stream's buffer: those are the ones that vanish.
  const size_t kNames = 2000;
  for (size_t i = 0; i < kNames; ++i) {
    std::string name = std::string(100, 'n') + std::to_string(i);
    cr_assert(testsupport::write_file(f.dir.path(name), ""));
  }
  auto lister = f.lister({});
  reactor::Buffer out;
  Listing seen;
  cr_assert_gt(lister->produce(out, 1 << 20), 0u);
  take_frames(out, &seen);
  cr_assert_eq(seen.frames, 1u);
  cr_assert_lt(seen.entries.size(), kNames);
  for (size_t i = 0; i < kNames; ++i) unlink(f.dir.path(std::string(100, 'n') + std::to_string(i)).c_str());
  for (int guard = 0; guard < 100 && !lister->finished(); ++guard) {
    lister->produce(out, 1 << 20);
    take_frames(out, &seen);
  }
  cr_assert(lister->finished());
  cr_assert_gt(lister->vanished(), 0u, "nothing counted as vanished");
  cr_assert_eq(seen.end.vanished, lister->vanished(), "list_end does not carry the count");
  cr_assert_eq(seen.end.count, seen.entries.size());
  cr_assert_leq(seen.entries.size() + seen.end.vanished, kNames);
}

Test(dir_lister, links_are_described_with_their_target_only_when_asked) {
  Fixture f;
  cr_assert(testsupport::write_file(f.dir.path("file"), "x"));
  cr_assert_eq(symlink("file", f.dir.path("to_file").c_str()), 0);
  cr_assert_eq(symlink("/etc/passwd", f.dir.path("out").c_str()), 0);
  std::string bad = "bad\xff";
  cr_assert_eq(symlink(bad.c_str(), f.dir.path("not_utf8").c_str()), 0);
  for (bool links : {false, true}) {
    server::DirLister::Options options;
    options.links = links;
    auto lister = f.lister(options);
    reactor::Buffer out;
    Listing seen;
    for (int guard = 0; guard < 10 && !lister->finished(); ++guard) lister->produce(out, 1 << 20);
    take_frames(out, &seen);
    cr_assert_eq(seen.entries.size(), 4u);
    for (const protocol::Entry& e : seen.entries) {
      if (e.name == "file") {
        cr_assert(e.kind == EntryKind::kFile && !e.target);
      } else if (!links || e.name == "not_utf8") {
        // A target JSON cannot carry leaves the link as kind other.
        cr_assert(e.kind == EntryKind::kOther && !e.target, "%s", e.name.c_str());
      } else {
        cr_assert(e.kind == EntryKind::kLink, "%s", e.name.c_str());
        cr_assert_str_eq(e.target->c_str(), e.name == "to_file" ? "file" : "/etc/passwd");
      }
    }
  }
}
