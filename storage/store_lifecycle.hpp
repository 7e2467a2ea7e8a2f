// The open/closing/closed life every store shares: work is handed to a storage thread only while
// the store is open, and close() runs its teardown exactly once, after every hand-off has finished.
#pragma once

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <utility>

namespace tokend::storage {

class store_lifecycle {
 public:
  // Calls `hand_off` (which posts or queues work for a storage thread) unless closing has begun;
  // false when it has, and then the caller refuses the work itself, on its own thread. close()
  // waits for a hand-off in progress, so no work reaches a thread that close() has joined.
  template <class HandOff>
  [[nodiscard]] bool while_open(HandOff&& hand_off) {
    const std::shared_lock lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) return false;
    std::forward<HandOff>(hand_off)();
    return true;
  }

  // Runs `teardown` on the first call only. A concurrent second call returns once the first has
  // finished; later calls return at once.
  template <class Teardown>
  void close(Teardown&& teardown) {
    const std::lock_guard serial(close_mutex_);
    {
      const std::unique_lock lock(mutex_);
      if (closed_.load(std::memory_order_relaxed)) return;
      closed_.store(true, std::memory_order_release);
    }
    std::forward<Teardown>(teardown)();
  }

  // True once close() has begun: a closing store is not ready.
  [[nodiscard]] bool closing() const noexcept { return closed_.load(std::memory_order_acquire); }

 private:
  std::shared_mutex mutex_;          // shared by hand-offs, exclusive while close() marks the store closed
  std::atomic<bool> closed_{false};  // written under mutex_; closing() reads it without the lock
  std::mutex close_mutex_;
};

}  // namespace tokend::storage
