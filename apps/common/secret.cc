#include "apps/common/secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <openssl/rand.h>

#include "apps/common/regular_file.h"
#include "reactor/errors.h"
#include "reactor/unique_fd.h"

namespace app {
namespace {

// Largest secret file read; a secret is a few dozen bytes, so anything bigger is a
// mistake (a wrong path), not a key.
constexpr size_t kMaxSecretFile = 4096;

bool is_trailing_space(char c) { return c == '\n' || c == '\r' || c == ' ' || c == '\t'; }

bool make_parents(const std::string& path, std::string* err) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      *err = reactor::sys_error("mkdir", dir);
      return false;
    }
  }
  return true;
}

}  // namespace

std::string config_path(const char* name, std::string* err) {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  // The XDG spec says a relative value is invalid and must be ignored.
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/reactor/" + name;
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') return std::string(home) + "/.config/reactor/" + name;
  *err = std::string("cannot find the default ") + name + " file: neither $XDG_CONFIG_HOME nor $HOME is an absolute path";
  return {};
}

std::string default_secret_path(std::string* err) {
  std::string path = config_path("secret", err);
  if (path.empty()) *err += "; use -k FILE";
  return path;
}

bool load_secret(const std::string& path, Secret* out, std::string* err) {
  // Like sshd's StrictModes and rsync's strict modes: a secret that someone else could
  // swap for one of their own is not a secret. So no final symlink (whoever can write
  // the link's directory can point it elsewhere), and no file owned by another user.
  struct stat st {};
  int open_errno = 0;
  reactor::UniqueFd fd = open_regular_file(path, "secret file", O_NOFOLLOW, &st, &open_errno, err);
  if (!fd) {
    if (open_errno == ELOOP) *err = "secret file \"" + path + "\" is a symbolic link: give the file itself";
    return false;
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    *err = "secret file \"" + path + "\" belongs to uid " + std::to_string(st.st_uid) +
           ", not to this user (uid " + std::to_string(geteuid()) + ") or root";
    return false;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *err = "secret file \"" + path + "\" has mode " + mode +
           ": it must not be accessible by group or others (chmod 600 \"" + path + "\")";
    return false;
  }
  if (static_cast<size_t>(st.st_size) > kMaxSecretFile) {
    *err = "secret file \"" + path + "\" is larger than 4096 bytes; is it the right file?";
    return false;
  }
  std::string key(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < key.size()) {
    ssize_t n = read(fd.get(), &key[got], key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = reactor::sys_error("read secret file", path);
      return false;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  key.resize(got);
  while (!key.empty() && is_trailing_space(key.back())) key.pop_back();
  if (key.size() < kMinSecretLength) {
    *err = "secret in \"" + path + "\" is " + std::to_string(key.size()) +
           " bytes long; at least " + std::to_string(kMinSecretLength) + " are required";
    return false;
  }
  out->key = std::move(key);
  out->path = path;
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  return true;
}

bool create_secret(const std::string& path, std::string* err) {
  if (!make_parents(path, err)) return false;
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    *err = "cannot generate a secret: OpenSSL's random generator failed";
    return false;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string text;
  for (unsigned char byte : raw) {
    text += kHex[byte >> 4];
    text += kHex[byte & 0xf];
  }
  text += '\n';
  OPENSSL_cleanse(raw, sizeof raw);
  reactor::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) {
    *err = reactor::sys_error("create secret file", path);
    return false;
  }
  // The umask can only remove bits, but a default ACL could add some: set it exactly.
  if (fchmod(fd.get(), 0600) != 0) {
    *err = reactor::sys_error("chmod secret file", path);
    unlink(path.c_str());
    return false;
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = reactor::sys_error("write secret file", path);
      unlink(path.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) {
    *err = reactor::sys_error("fsync secret file", path);
    unlink(path.c_str());
    return false;
  }
  OPENSSL_cleanse(&text[0], text.size());
  return true;
}

}  // namespace app
