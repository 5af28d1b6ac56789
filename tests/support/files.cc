#include "tests/support/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "tests/support/fd.h"

namespace testsupport {
namespace {

constexpr size_t kChunk = 1 << 20;
constexpr uint64_t kMaxChunks = uint64_t{1} << 32;  // bounds every streaming loop (4 PiB)

void set_err(std::string* err, const char* what, const std::string& path, int e) {
  if (err) *err = std::string(what) + " \"" + path + "\": " + std::strerror(e);
}

bool write_all(int fd, const char* data, size_t len) {
  size_t done = 0;
  for (int i = 0; done < len && i < 1000000; ++i) {
    ssize_t n = ::write(fd, data + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (done < len) errno = EIO;
  return done == len;
}

// Reads up to len bytes, fewer only at end of file. -1 on error.
ssize_t read_full(int fd, char* data, size_t len) {
  size_t done = 0;
  for (int i = 0; done < len && i < 1000000; ++i) {
    ssize_t n = ::read(fd, data + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// pread until len bytes or end of file. -1 on error.
ssize_t pread_full(int fd, char* data, size_t len, uint64_t offset) {
  size_t done = 0;
  for (int i = 0; done < len && i < 1000000; ++i) {
    ssize_t n = ::pread(fd, data + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  errno = 0;
  return static_cast<ssize_t>(done);
}

// The end of the hole at OFFSET (the next data, or SIZE), or OFFSET if there is data there
// or the file system cannot tell.
uint64_t zeros_until(int fd, uint64_t offset, uint64_t size) {
  off_t data = lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  if (data < 0) return errno == ENXIO ? size : offset;
  return std::min(size, static_cast<uint64_t>(data));
}

// splitmix64's finalizer over a counter: random access into the stream.
uint64_t pattern_word(uint64_t seed, uint64_t index) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + (index + 1) * 0xD1B54A32D192ED03ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fill_pattern(char* out, uint64_t offset, size_t length, uint64_t seed) {
  size_t i = 0;
  while (i < length) {
    uint64_t pos = offset + i;
    uint64_t word = pattern_word(seed, pos / 8);
    size_t in_word = static_cast<size_t>(pos % 8);
    if (in_word == 0 && length - i >= 8) {
      for (size_t b = 0; b < 8; ++b) out[i + b] = static_cast<char>((word >> (8 * b)) & 0xff);
      i += 8;
    } else {
      out[i] = static_cast<char>((word >> (8 * in_word)) & 0xff);
      ++i;
    }
  }
}

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::string to_hex(const unsigned char* data, size_t len) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

}  // namespace

std::string path_join(std::string_view a, std::string_view b) {
  if (a.empty() || (!b.empty() && b[0] == '/')) return std::string(b);
  std::string out(a);
  if (b.empty()) return out;
  if (out.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

bool write_file_with_mode(const std::string& path, std::string_view bytes, mode_t mode,
                          std::string* err) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) {
    set_err(err, "open", path, errno);
    return false;
  }
  if (!write_all(fd.get(), bytes.data(), bytes.size())) {
    set_err(err, "write", path, errno);
    return false;
  }
  return true;
}

bool write_file(const std::string& path, std::string_view bytes, std::string* err) {
  return write_file_with_mode(path, bytes, 0644, err);
}

std::string pattern_bytes(uint64_t offset, size_t length, uint64_t seed) {
  std::string out(length, '\0');
  fill_pattern(out.data(), offset, length, seed);
  return out;
}

bool write_pattern_file(const std::string& path, uint64_t size, uint64_t seed,
                        std::string* err) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    set_err(err, "open", path, errno);
    return false;
  }
  std::unique_ptr<char[]> buf(new char[kChunk]);
  uint64_t done = 0;
  for (uint64_t i = 0; done < size && i < kMaxChunks; ++i) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - done));
    fill_pattern(buf.get(), done, n, seed);
    if (!write_all(fd.get(), buf.get(), n)) {
      set_err(err, "write", path, errno);
      return false;
    }
    done += n;
  }
  return true;
}

bool make_sparse_file(const std::string& path, uint64_t size, std::string* err) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    set_err(err, "open", path, errno);
    return false;
  }
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    set_err(err, "ftruncate", path, errno);
    return false;
  }
  return true;
}

bool make_dirs(const std::string& path, std::string* err) {
  if (path.empty()) return true;
  size_t pos = 0;
  for (int i = 0; i < 100000 && pos != std::string::npos; ++i) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      set_err(err, "mkdir", prefix, errno);
      return false;
    }
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    set_err(err, "mkdir", path, errno ? errno : ENOTDIR);
    return false;
  }
  return true;
}

std::optional<std::string> read_file(const std::string& path, std::string* err) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    set_err(err, "open", path, errno);
    return std::nullopt;
  }
  std::string out;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  for (uint64_t i = 0; i < kMaxChunks; ++i) {
    ssize_t n = read_full(fd.get(), buf.get(), kChunk);
    if (n < 0) {
      set_err(err, "read", path, errno);
      return std::nullopt;
    }
    out.append(buf.get(), static_cast<size_t>(n));
    if (static_cast<size_t>(n) < kChunk) break;
  }
  return out;
}

std::optional<uint64_t> file_size(const std::string& path, std::string* err) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    set_err(err, "stat", path, errno);
    return std::nullopt;
  }
  return static_cast<uint64_t>(st.st_size);
}

bool files_equal(const std::string& a, const std::string& b, std::string* why) {
  Fd fa(open(a.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fa) {
    set_err(why, "open", a, errno);
    return false;
  }
  Fd fb(open(b.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fb) {
    set_err(why, "open", b, errno);
    return false;
  }
  struct stat sa {}, sb {};
  if (fstat(fa.get(), &sa) != 0 || fstat(fb.get(), &sb) != 0) {
    set_err(why, "fstat", a + "\" or \"" + b, errno);
    return false;
  }
  if (sa.st_size != sb.st_size) {
    if (why) {
      *why = "sizes differ: \"" + a + "\" has " + std::to_string(sa.st_size) + " bytes, \"" +
             b + "\" has " + std::to_string(sb.st_size);
    }
    return false;
  }
  const auto size = static_cast<uint64_t>(sa.st_size);
  posix_fadvise(fa.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  posix_fadvise(fb.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_ptr<char[]> ba(new char[kChunk]);
  std::unique_ptr<char[]> bb(new char[kChunk]);
  uint64_t offset = 0;
  for (uint64_t i = 0; offset < size && i < kMaxChunks; ++i) {
    // Holes read as zeros, slowly: where both files have one, there is nothing to compare,
    // and where one has, the other only has to be zero.
    uint64_t hole_a = zeros_until(fa.get(), offset, size);
    uint64_t hole_b = zeros_until(fb.get(), offset, size);
    if (hole_a > offset && hole_b > offset) {
      offset = std::min(hole_a, hole_b);
      continue;
    }
    uint64_t end = std::min(size, offset + kChunk);
    if (hole_a > offset) end = std::min(end, hole_a);
    if (hole_b > offset) end = std::min(end, hole_b);
    auto len = static_cast<size_t>(end - offset);
    if (hole_a > offset) {
      std::memset(ba.get(), 0, len);
    } else if (pread_full(fa.get(), ba.get(), len, offset) != static_cast<ssize_t>(len)) {
      set_err(why, "read", a, errno ? errno : EIO);
      return false;
    }
    if (hole_b > offset) {
      std::memset(bb.get(), 0, len);
    } else if (pread_full(fb.get(), bb.get(), len, offset) != static_cast<ssize_t>(len)) {
      set_err(why, "read", b, errno ? errno : EIO);
      return false;
    }
    if (std::memcmp(ba.get(), bb.get(), len) != 0) {
      size_t k = 0;
      while (k < len && ba[k] == bb[k]) ++k;
      if (why) *why = "files differ at byte " + std::to_string(offset + k);
      return false;
    }
    offset = end;
  }
  return true;
}

std::optional<std::string> sha256_file_hex(const std::string& path, std::string* err) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    set_err(err, "open", path, errno);
    return std::nullopt;
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    set_err(err, "fstat", path, errno);
    return std::nullopt;
  }
  posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    if (err) *err = "EVP_DigestInit_ex(sha256) failed";
    return std::nullopt;
  }
  std::unique_ptr<char[]> buf(new char[kChunk]);
  std::unique_ptr<char[]> zeros(new char[kChunk]());
  // Up to the size fstat reported, skipping the reads of holes; then to the real EOF, in
  // case the file grew meanwhile.
  const auto size = static_cast<uint64_t>(st.st_size);
  uint64_t offset = 0;
  for (uint64_t i = 0; i < kMaxChunks; ++i) {
    uint64_t hole = offset < size ? zeros_until(fd.get(), offset, size) : offset;
    size_t n = 0;
    const char* data = buf.get();
    if (hole > offset) {
      n = static_cast<size_t>(std::min<uint64_t>(kChunk, hole - offset));
      data = zeros.get();
    } else {
      ssize_t got = pread_full(fd.get(), buf.get(), kChunk, offset);
      if (got < 0) {
        set_err(err, "read", path, errno);
        return std::nullopt;
      }
      n = static_cast<size_t>(got);
    }
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx.get(), data, n) != 1) {
      if (err) *err = "EVP_DigestUpdate failed";
      return std::nullopt;
    }
    offset += n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &md_len) != 1) {
    if (err) *err = "EVP_DigestFinal_ex failed";
    return std::nullopt;
  }
  return to_hex(md, md_len);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &md_len, EVP_sha256(), nullptr) != 1) return {};
  return to_hex(md, md_len);
}

namespace {

std::string raw_sha256(const void* data, size_t len) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(md), md_len);
}

std::string root_of(const std::string& leaves, uint64_t size) {
  std::string input = leaves;
  for (int shift = 56; shift >= 0; shift -= 8) input.push_back(static_cast<char>((size >> shift) & 0xff));
  std::string root = raw_sha256(input.data(), input.size());
  return to_hex(reinterpret_cast<const unsigned char*>(root.data()), root.size());
}

constexpr size_t kTreeChunk = 1 << 20;

}  // namespace

std::string tree_root_hex(std::string_view bytes) {
  std::string leaves;
  for (size_t at = 0; at < bytes.size(); at += kTreeChunk)
    leaves += raw_sha256(bytes.data() + at, std::min(kTreeChunk, bytes.size() - at));
  return root_of(leaves, bytes.size());
}

std::optional<std::string> tree_root_file_hex(const std::string& path, std::string* err) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    set_err(err, "open", path, errno);
    return std::nullopt;
  }
  std::unique_ptr<char[]> buf(new char[kTreeChunk]);
  std::string leaves;
  uint64_t size = 0;
  for (uint64_t i = 0; i < kMaxChunks; ++i) {
    ssize_t got = pread_full(fd.get(), buf.get(), kTreeChunk, size);
    if (got < 0) {
      set_err(err, "read", path, errno);
      return std::nullopt;
    }
    if (got == 0) break;
    leaves += raw_sha256(buf.get(), static_cast<size_t>(got));
    size += static_cast<uint64_t>(got);
    if (static_cast<size_t>(got) < kTreeChunk) break;
  }
  return root_of(leaves, size);
}

std::optional<std::vector<std::string>> list_dir(const std::string& path, std::string* err) {
  DIR* dir = opendir(path.c_str());
  if (!dir) {
    set_err(err, "opendir", path, errno);
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (int i = 0; i < 10000000; ++i) {
    errno = 0;
    dirent* ent = readdir(dir);
    if (!ent) {
      if (errno != 0) {
        set_err(err, "readdir", path, errno);
        closedir(dir);
        return std::nullopt;
      }
      break;
    }
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    names.emplace_back(ent->d_name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::string link_at(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

}  // namespace testsupport
