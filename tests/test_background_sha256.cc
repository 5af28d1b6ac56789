// apps/common/background_sha256: the same digest as a one-shot SHA-256 whatever the
// slicing, below, at and far beyond its chunk pool; no thread for small inputs; and a
// destructor that stops the worker mid-stream without waiting for the rest.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <cstdint>
#include <random>
#include <string>

#include "apps/common/background_sha256.h"
#include "protocol/hex.h"
#include "protocol/sha256.h"

using app::BackgroundSha256;

namespace {

constexpr size_t kChunk = BackgroundSha256::kChunk;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// Feeds `data` in seeded random slices of 1 byte to 300 KiB, as the socket would.
std::string hex_in_slices(const std::string& data, uint32_t seed, bool* threaded) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> slice(1, 300 * 1024);
  BackgroundSha256 hash;
  for (size_t at = 0; at < data.size();) {
    size_t n = std::min(slice(rng), data.size() - at);
    hash.update(data.data() + at, n);
    at += n;
  }
  if (threaded) *threaded = hash.threaded();
  return protocol::to_hex(hash.finish());
}

std::string reference_hex(const std::string& data) { return protocol::to_hex(protocol::sha256(data.data(), data.size())); }

}  // namespace

TestSuite(background_sha256, .timeout = 60);

Test(background_sha256, matches_one_shot_at_every_size_that_matters) {
  const size_t sizes[] = {0, 1, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk + 17,
                          BackgroundSha256::kChunks * kChunk, 11 * kChunk + 5};
  uint32_t seed = 1;
  for (size_t size : sizes) {
    std::string data = random_bytes(size, seed);
    bool threaded = false;
    std::string got = hex_in_slices(data, seed * 7, &threaded);
    cr_assert_eq(got, reference_hex(data), "size %zu", size);
    cr_assert_eq(threaded, size >= kChunk, "size %zu: threaded %d", size, threaded);
    ++seed;
  }
}

Test(background_sha256, empty_input_is_the_empty_digest) {
  BackgroundSha256 hash;
  cr_assert_eq(protocol::to_hex(hash.finish()),
               std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

Test(background_sha256, one_big_update_spanning_many_chunks) {
  std::string data = random_bytes(9 * kChunk + 123, 99);
  BackgroundSha256 hash;
  hash.update(data.data(), data.size());
  cr_assert(hash.threaded());
  cr_assert_eq(protocol::to_hex(hash.finish()), reference_hex(data));
}

// Abandoned with chunks still queued (a failed download): the destructor returns, the
// worker is joined, and nothing leaks (the ASan run would say so).
Test(background_sha256, abandoning_mid_stream_stops_the_worker) {
  std::string data = random_bytes(8 * kChunk, 5);
  for (int round = 0; round < 20; ++round) {
    BackgroundSha256 hash;
    hash.update(data.data(), data.size() - static_cast<size_t>(round) * 1000);
  }
}
