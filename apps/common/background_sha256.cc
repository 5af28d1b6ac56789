#include "apps/common/background_sha256.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <system_error>

namespace app {

BackgroundSha256::BackgroundSha256(protocol::DigestKind kind) : hash_(kind) { chunks_[0].reset(new char[kChunk]); }

BackgroundSha256::~BackgroundSha256() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_one();
  worker_.join();
}

void BackgroundSha256::update(const void* data, size_t len) {
  const char* from = static_cast<const char*>(data);
  while (len > 0) {
    size_t take = std::min(len, kChunk - used_);
    std::memcpy(chunks_[current_].get() + used_, from, take);
    used_ += take;
    from += take;
    len -= take;
    if (used_ == kChunk) hand_over();
  }
}

void BackgroundSha256::hand_over() {
  if (!worker_.joinable() && !inline_ && !start_worker()) inline_ = true;
  if (inline_) {  // slower, not wrong
    hash_.update(chunks_[current_].get(), used_);
    used_ = 0;
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  filled_.push_back(Filled{current_, used_});
  work_ready_.notify_one();
  used_ = 0;
  if (free_.empty() && allocated_ < kChunks) {
    lock.unlock();
    current_ = allocated_++;
    chunks_[current_].reset(new char[kChunk]);
    return;
  }
  chunk_free_.wait(lock, [this] { return !free_.empty(); });
  current_ = free_.back();
  free_.pop_back();
}

bool BackgroundSha256::start_worker() {
  // The new thread inherits the signal mask in force when it is created: block
  // everything around its creation so that no signal is ever delivered to it.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  bool started = true;
  try {
    worker_ = std::thread([this] { work(); });
  } catch (const std::system_error&) {
    started = false;
  }
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return started;
}

void BackgroundSha256::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return stop_ || closing_ || !filled_.empty(); });
    if (stop_ || filled_.empty()) return;  // stopped, or closing with nothing left
    Filled next = filled_.front();
    filled_.pop_front();
    lock.unlock();
    hash_.update(chunks_[next.chunk].get(), next.size);
    lock.lock();
    free_.push_back(next.chunk);
    chunk_free_.notify_one();
  }
}

protocol::Digest BackgroundSha256::finish() {
  if (worker_.joinable()) {
    if (used_ > 0) hand_over();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    work_ready_.notify_one();
    worker_.join();  // returns once every queued chunk is hashed
  } else if (used_ > 0) {
    hash_.update(chunks_[current_].get(), used_);
  }
  used_ = 0;
  return hash_.finish();
}

}  // namespace app
