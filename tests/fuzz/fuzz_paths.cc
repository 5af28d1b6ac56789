// libFuzzer target: request path validation and resolution beneath the served root,
// with openat2 and with the component walk, over a tree that holds every kind of trap:
// symlinks in, out and up, a FIFO, the secret (hidden), a temporary's name, files beside
// the root. Oracles, beyond the sanitizers: whatever either resolver opens lies beneath
// the root and is never the secret or a file outside; what the stricter walk opens,
// openat2 opens too, and it is the same file.

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "apps/reactord/served_root.h"

namespace {

std::string g_root;       // realpath of the root, with a trailing '/'
struct stat g_secret;     // hidden, inside the root
struct stat g_outside;    // beside the root
std::unique_ptr<server::ServedRoot> g_auto;
std::unique_ptr<server::ServedRoot> g_walk;
std::string g_base;  // the temporary tree, removed at exit

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return remove(path); }
void remove_tree() { nftw(g_base.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

void must(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::abort();
  }
}

void write(const std::string& path, const char* text) {
  FILE* f = std::fopen(path.c_str(), "w");
  must(f != nullptr, path.c_str());
  std::fputs(text, f);
  std::fclose(f);
}

// The descriptor's file is beneath the root (or is the root).
void check_beneath(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char target[4096];
  ssize_t n = readlink(link, target, sizeof target - 1);
  must(n > 0, "readlink");
  target[n] = '\0';
  std::string path(target);
  if (path + "/" != g_root && path.compare(0, g_root.size(), g_root) != 0) {
    std::fprintf(stderr, "escaped the root: %s\n", target);
    std::abort();
  }
  struct stat st {};
  must(fstat(fd, &st) == 0, "fstat");
  if ((st.st_dev == g_outside.st_dev && st.st_ino == g_outside.st_ino) ||
      (st.st_dev == g_secret.st_dev && st.st_ino == g_secret.st_ino)) {
    std::fprintf(stderr, "opened the secret or the outside file: %s\n", target);
    std::abort();
  }
}

void same_file(int a, int b) {
  struct stat sa {}, sb {};
  must(fstat(a, &sa) == 0 && fstat(b, &sb) == 0, "fstat");
  if (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino) {
    std::fprintf(stderr, "the walk and openat2 opened different files\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/fuzz-paths.XXXXXX";
  must(mkdtemp(tmpl) != nullptr, "mkdtemp");
  std::string base = tmpl;
  g_base = base;
  std::atexit(remove_tree);
  std::string root = base + "/root";
  must(mkdir(root.c_str(), 0755) == 0, "mkdir root");
  must(mkdir((base + "/outside").c_str(), 0755) == 0, "mkdir outside");
  write(base + "/outside/private.txt", "private\n");
  write(root + "/file.txt", "file\n");
  write(root + "/secret", "0123456789abcdef0123456789abcdef\n");
  write(root + "/.file.txt.AbC123.part", "half\n");
  must(mkdir((root + "/sub").c_str(), 0755) == 0, "mkdir sub");
  must(mkdir((root + "/sub/deeper").c_str(), 0755) == 0, "mkdir deeper");
  write(root + "/sub/inner.txt", "inner\n");
  write(root + "/sub/deeper/x", "x\n");
  must(symlink("file.txt", (root + "/link-in").c_str()) == 0, "symlink");
  must(symlink("sub", (root + "/link-dir").c_str()) == 0, "symlink");
  must(symlink("/etc", (root + "/link-out").c_str()) == 0, "symlink");
  must(symlink("../outside", (root + "/link-up").c_str()) == 0, "symlink");
  must(symlink("../../outside/private.txt", (root + "/sub/link-private").c_str()) == 0, "symlink");
  must(symlink("loop", (root + "/loop").c_str()) == 0, "symlink");
  must(mkfifo((root + "/fifo").c_str(), 0644) == 0, "mkfifo");
  must(stat((root + "/secret").c_str(), &g_secret) == 0, "stat secret");
  must(stat((base + "/outside/private.txt").c_str(), &g_outside) == 0, "stat outside");
  char* real = realpath(root.c_str(), nullptr);
  must(real != nullptr, "realpath");
  g_root = std::string(real) + "/";
  std::free(real);
  std::string err;
  g_auto = server::ServedRoot::open(root, &err, server::ServedRoot::Resolution::kAuto);
  g_walk = server::ServedRoot::open(root, &err, server::ServedRoot::Resolution::kWalk);
  must(g_auto && g_walk, err.c_str());
  g_auto->hide(g_secret.st_dev, g_secret.st_ino);
  g_walk->hide(g_secret.st_dev, g_secret.st_ino);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 5000) return 0;
  std::string path(reinterpret_cast<const char*>(data), size);
  std::string normalized;
  protocol::ProtocolError err;
  if (!server::normalize_request_path(path, &normalized, &err)) return 0;
  if (normalized.empty() || normalized.front() == '/') std::abort();

  struct stat st_auto {}, st_walk {};
  reactor::UniqueFd a = g_auto->open_file(path, &st_auto, &err);
  reactor::UniqueFd w = g_walk->open_file(path, &st_walk, &err);
  if (a) check_beneath(a.get());
  if (w) {
    check_beneath(w.get());
    if (!a) std::abort();  // the walk is the stricter of the two
    same_file(a.get(), w.get());
  }
  reactor::UniqueFd da = g_auto->open_directory(path, &err);
  reactor::UniqueFd dw = g_walk->open_directory(path, &err);
  if (da) check_beneath(da.get());
  if (dw) {
    check_beneath(dw.get());
    if (!da) std::abort();
    same_file(da.get(), dw.get());
  }
  std::string name;
  reactor::UniqueFd pa = g_auto->open_parent(path, &name, &err);
  if (pa) {
    check_beneath(pa.get());
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") std::abort();
  }
  struct stat st {};
  if (g_auto->stat_path(path, &st, &err)) {
    if ((st.st_dev == g_outside.st_dev && st.st_ino == g_outside.st_ino) ||
        (st.st_dev == g_secret.st_dev && st.st_ino == g_secret.st_ino))
      std::abort();
  }
  return 0;
}
