// The counters behind token_store::stats() that every store keeps alike: write batches by size,
// and failed batches. Any thread may count and read.
#pragma once

#include "storage/token_store.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tokend::storage {

class batch_counters {
 public:
  // One committed batch of `writes` writes.
  void count_batch(std::size_t writes) noexcept;
  // One batch that failed as a whole.
  void count_failure() noexcept;
  // The counters, with the store's own count of writes still waiting.
  [[nodiscard]] store_stats snapshot(std::uint64_t queue_depth) const noexcept;

 private:
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> batched_writes_{0};
  std::array<std::atomic<std::uint64_t>, batch_size_buckets> batch_size_counts_{};
  std::atomic<std::uint64_t> write_failures_{0};
};

}  // namespace tokend::storage
