#pragma once
// File helpers for tests: content generation, comparison and hashing, all streamed so that
// multi-GiB (sparse) files work in bounded memory.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace testsupport {

// a + "/" + b (no doubled slash; b absolute or a empty -> b).
std::string path_join(std::string_view a, std::string_view b);

// Creates or truncates PATH with exactly BYTES (mode 0644 before umask, or MODE).
bool write_file(const std::string& path, std::string_view bytes, std::string* err = nullptr);
bool write_file_with_mode(const std::string& path, std::string_view bytes, mode_t mode,
                          std::string* err = nullptr);

// Deterministic pseudo-random content: byte i of the stream for SEED depends only on
// (seed, i), so any slice can be recomputed with pattern_bytes without the file.
bool write_pattern_file(const std::string& path, uint64_t size, uint64_t seed,
                        std::string* err = nullptr);
std::string pattern_bytes(uint64_t offset, size_t length, uint64_t seed);

// A file of SIZE zero bytes that occupies no disk blocks (ftruncate).
bool make_sparse_file(const std::string& path, uint64_t size, std::string* err = nullptr);

// mkdir -p with mode 0755.
bool make_dirs(const std::string& path, std::string* err = nullptr);

std::optional<std::string> read_file(const std::string& path, std::string* err = nullptr);
std::optional<uint64_t> file_size(const std::string& path, std::string* err = nullptr);

// Streamed byte-for-byte comparison. False when they differ or one cannot be read; *why
// then says how ("differ at byte 123", "sizes differ: 5 vs 6", an open error).
bool files_equal(const std::string& a, const std::string& b, std::string* why = nullptr);

// Lowercase hex SHA-256 (OpenSSL EVP), streamed.
std::optional<std::string> sha256_file_hex(const std::string& path, std::string* err = nullptr);
std::string sha256_hex(std::string_view bytes);
// The chunk-tree root of reactor-protocol(7) (version 2's digest), written from the
// page's definition with OpenSSL directly, independently of protocol/content_hash.h:
// SHA-256 over the 1 MiB chunks' SHA-256s and the size as 8 big-endian bytes.
std::string tree_root_hex(std::string_view bytes);
std::optional<std::string> tree_root_file_hex(const std::string& path, std::string* err = nullptr);

// Whether anything (a dangling symbolic link too) has this name: lstat(2) succeeds.
bool exists(const std::string& path);
// What a symbolic link holds; "" if `path` is not one.
std::string link_at(const std::string& path);

// Entry names of a directory (without "." and ".."), sorted.
std::optional<std::vector<std::string>> list_dir(const std::string& path,
                                                 std::string* err = nullptr);

}  // namespace testsupport
