// The counters behind token_store::stats() that every store keeps alike: write batches by size,
// and failed batches. Any thread may count and read.
#pragma once

#include "storage/token_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace tokend::storage {

// Header-only, so that a store compiled on its own (the fuzzers' memory store) needs nothing more.
class batch_counters {
 public:
  // One committed batch of `writes` writes.
  void count_batch(std::size_t writes) noexcept {
    batches_.fetch_add(1, std::memory_order_relaxed);
    batched_writes_.fetch_add(writes, std::memory_order_relaxed);
    batch_size_counts_[bucket(writes)].fetch_add(1, std::memory_order_relaxed);
  }

  // One batch that failed as a whole.
  void count_failure() noexcept { write_failures_.fetch_add(1, std::memory_order_relaxed); }

  // The counters, with the store's own count of writes still waiting.
  [[nodiscard]] store_stats snapshot(std::uint64_t queue_depth) const noexcept {
    store_stats s;
    s.queue_depth = queue_depth;
    s.batches = batches_.load(std::memory_order_relaxed);
    s.batched_writes = batched_writes_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < batch_size_buckets; ++i) {
      s.batch_size_counts[i] = batch_size_counts_[i].load(std::memory_order_relaxed);
    }
    s.write_failures = write_failures_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // Bucket i holds sizes in (2^(i-1), 2^i]; bit_width(n - 1) is that i for n >= 1.
  [[nodiscard]] static std::size_t bucket(std::size_t n) noexcept {
    return std::min<std::size_t>(std::bit_width(n > 0 ? n - 1 : 0), batch_size_buckets - 1);
  }

  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> batched_writes_{0};
  std::array<std::atomic<std::uint64_t>, batch_size_buckets> batch_size_counts_{};
  std::atomic<std::uint64_t> write_failures_{0};
};

}  // namespace tokend::storage
