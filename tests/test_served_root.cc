// Request-path syntax, checked before anything touches the file system (apps/reactord).
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <cerrno>
#include <cstring>
#include <string>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <memory>

#include "apps/reactord/served_root.h"
#include "protocol/error_code.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

using protocol::ErrorCode;

TestSuite(request_path, .timeout = 10);

namespace {

std::string normalized(const std::string& in) {
  std::string out;
  protocol::ProtocolError err;
  cr_assert(server::normalize_request_path(in, &out, &err), "\"%s\" refused: %s", in.c_str(), err.message.c_str());
  return out;
}

ErrorCode refusal(const std::string& in) {
  std::string out;
  protocol::ProtocolError err;
  cr_assert_not(server::normalize_request_path(in, &out, &err), "\"%s\" accepted as \"%s\"", in.c_str(), out.c_str());
  cr_assert_not(err.message.empty());
  return err.code;
}

}  // namespace

Test(request_path, empty_and_dot_components_are_dropped) {
  cr_assert(normalized("") == ".");
  cr_assert(normalized(".") == ".");
  cr_assert(normalized("./") == ".");
  cr_assert(normalized("a") == "a");
  cr_assert(normalized("a//b/./c/") == "a/b/c");
  cr_assert(normalized("..a/b..") == "..a/b..");  // dots inside names are ordinary
}

Test(request_path, escapes_are_forbidden_before_any_lookup) {
  cr_assert_eq(refusal("/etc/passwd"), ErrorCode::kForbidden);
  cr_assert_eq(refusal(".."), ErrorCode::kForbidden);
  cr_assert_eq(refusal("a/../../x"), ErrorCode::kForbidden);
  cr_assert_eq(refusal("a/.."), ErrorCode::kForbidden);
  cr_assert_eq(refusal("//x"), ErrorCode::kForbidden);
}

Test(request_path, malformed_paths_are_bad_path) {
  cr_assert_eq(refusal(std::string(256, 'n')), ErrorCode::kBadPath);
  cr_assert(normalized(std::string(255, 'n')) == std::string(255, 'n'));
  cr_assert_eq(refusal(std::string("a\0b", 3)), ErrorCode::kBadPath);
}

// ---------------------------------------------------------------- resolution beneath the root
// The same attack tree through both ways of resolving: openat2(RESOLVE_BENEATH) and the
// component-by-component walk used where openat2 is missing. The walk may refuse more
// (any symlink on the way), never less.

namespace {

using server::ServedRoot;
using testsupport::TempDir;

struct Tree {
  TempDir dir;
  std::string root;
};

Tree attack_tree() {
  std::string err;
  std::optional<TempDir> dir = TempDir::create("served-root", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  std::string root = dir->path("root");
  cr_assert(testsupport::make_dirs(root + "/sub/deeper", &err), "%s", err.c_str());
  cr_assert(testsupport::make_dirs(dir->path("outside"), &err), "%s", err.c_str());
  cr_assert(testsupport::write_file(root + "/file.txt", "file\n"));
  cr_assert(testsupport::write_file(root + "/sub/inner.txt", "inner\n"));
  cr_assert(testsupport::write_file(root + "/hidden.key", "a secret\n"));
  cr_assert(testsupport::write_file(dir->path("outside/private.txt"), "private\n"));
  cr_assert_eq(symlink("/etc/passwd", (root + "/link-passwd").c_str()), 0);
  cr_assert_eq(symlink("../outside", (root + "/link-out").c_str()), 0);
  cr_assert_eq(symlink("file.txt", (root + "/link-in").c_str()), 0);
  cr_assert_eq(symlink("sub", (root + "/link-sub").c_str()), 0);
  cr_assert_eq(symlink("sub/inner.txt", (root + "/link-inner").c_str()), 0);
  cr_assert_eq(symlink("link-in", (root + "/link-to-link").c_str()), 0);
  cr_assert_eq(symlink("hidden.key", (root + "/link-hidden").c_str()), 0);
  cr_assert_eq(symlink("missing", (root + "/link-dangling").c_str()), 0);
  cr_assert_eq(symlink("sub/../../outside/private.txt", (root + "/link-up").c_str()), 0);
  // An upload's temporary file: not found by its name, nor through a link to it.
  cr_assert(testsupport::write_file(root + "/sub/.big.bin.Ab12Cd.part", "half an upload"));
  cr_assert_eq(symlink("sub/.big.bin.Ab12Cd.part", (root + "/link-temp").c_str()), 0);
  cr_assert_eq(symlink("../../../outside", (root + "/sub/deeper/up").c_str()), 0);
  cr_assert_eq(mkfifo((root + "/fifo").c_str(), 0644), 0);
  // A UNIX socket: open(2) says ENXIO, which is still "not a regular file".
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock_path = root + "/socket";
  cr_assert_lt(sock_path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock_path.c_str(), sock_path.size() + 1);
  cr_assert_eq(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0, "bind: %s", std::strerror(errno));
  close(sock);
  return Tree{std::move(*dir), root};
}

std::unique_ptr<ServedRoot> open_root(const Tree& t, ServedRoot::Resolution how) {
  std::string err;
  std::unique_ptr<ServedRoot> root = ServedRoot::open(t.root, &err, how);
  cr_assert(root != nullptr, "%s", err.c_str());
  struct stat st {};
  cr_assert_eq(stat((t.root + "/hidden.key").c_str(), &st), 0);
  root->hide(st.st_dev, st.st_ino);
  return root;
}

// "ok" or the error code's wire name.
std::string get_outcome(const ServedRoot& root, const char* path) {
  struct stat st {};
  protocol::ProtocolError err;
  reactor::UniqueFd fd = root.open_file(path, &st, &err);
  return fd ? "ok" : protocol::to_string(err.code);
}

std::string list_outcome(const ServedRoot& root, const char* path) {
  protocol::ProtocolError err;
  reactor::UniqueFd fd = root.open_directory(path, &err);
  return fd ? "ok" : protocol::to_string(err.code);
}

struct Case {
  const char* path;
  const char* with_openat2;
  const char* walking;
};

const Case kGets[] = {
    {"file.txt", "ok", "ok"},
    {"sub/inner.txt", "ok", "ok"},
    {"/etc/passwd", "forbidden", "forbidden"},
    {"../outside/private.txt", "forbidden", "forbidden"},
    {"link-passwd", "forbidden", "forbidden"},
    {"link-out/private.txt", "forbidden", "forbidden"},
    {"sub/deeper/up/private.txt", "forbidden", "forbidden"},
    // A final symlink is followed beneath the root, and what it leads to is checked as
    // if named; the walk, which cannot tell where a link leads, refuses every one.
    {"link-in", "ok", "forbidden"},
    {"link-inner", "ok", "forbidden"},
    {"link-to-link", "ok", "forbidden"},
    {"link-hidden", "forbidden", "forbidden"},
    {"link-temp", "not_found", "forbidden"},
    {"sub/.big.bin.Ab12Cd.part", "not_found", "not_found"},
    {"link-dangling", "not_found", "forbidden"},
    {"link-up", "forbidden", "forbidden"},
    {"link-sub", "is_directory", "forbidden"},
    {"link-sub/inner.txt", "ok", "forbidden"},    // inside the tree: only openat2 can tell
    {"hidden.key", "forbidden", "forbidden"},
    {"fifo", "not_regular", "not_regular"},
    {"socket", "not_regular", "not_regular"},
    {"sub", "is_directory", "is_directory"},
    {"file.txt/x", "not_directory", "not_directory"},
    {"missing", "not_found", "not_found"},
    {"sub/missing/x", "not_found", "not_found"},
};

const Case kLists[] = {
    {".", "ok", "ok"},
    {"sub", "ok", "ok"},
    {"link-out", "forbidden", "forbidden"},
    {"sub/deeper/up", "forbidden", "forbidden"},
    {"link-sub", "ok", "forbidden"},
    {"link-in", "not_directory", "forbidden"},
    {"link-passwd", "forbidden", "forbidden"},
    {"file.txt", "not_directory", "not_directory"},
    {"missing", "not_found", "not_found"},
};

template <size_t N, typename Outcome>
void check_cases(const ServedRoot& root, bool walking, const char* verb, const Case (&cases)[N], Outcome outcome) {
  for (const Case& c : cases) {
    std::string want = walking ? c.walking : c.with_openat2;
    std::string got = outcome(root, c.path);
    cr_assert_eq(got, want, "%s %s (%s): %s, expected %s", verb, c.path, walking ? "walk" : "openat2", got.c_str(),
                 want.c_str());
  }
}

void check_all(ServedRoot::Resolution how) {
  Tree t = attack_tree();
  std::unique_ptr<ServedRoot> root = open_root(t, how);
  bool walking = how == ServedRoot::Resolution::kWalk;
  cr_assert_eq(root->uses_openat2(), !walking);
  check_cases(*root, walking, "get", kGets, get_outcome);
  check_cases(*root, walking, "list", kLists, list_outcome);
}

}  // namespace

TestSuite(served_root, .timeout = 10);

Test(served_root, attacks_with_openat2) { check_all(ServedRoot::Resolution::kAuto); }

Test(served_root, attacks_with_the_fallback_walk) { check_all(ServedRoot::Resolution::kWalk); }
