// The batch counters every store reports through token_store::stats().
#include "storage/store_stats.hpp"

#include <algorithm>
#include <bit>

namespace tokend::storage {
namespace {

[[nodiscard]] std::size_t batch_bucket(std::size_t n) noexcept {
  // Bucket i holds sizes in (2^(i-1), 2^i]; bit_width(n - 1) is that i for n >= 1.
  return std::min<std::size_t>(std::bit_width(n > 0 ? n - 1 : 0), batch_size_buckets - 1);
}

}  // namespace

void batch_counters::count_batch(std::size_t writes) noexcept {
  batches_.fetch_add(1, std::memory_order_relaxed);
  batched_writes_.fetch_add(writes, std::memory_order_relaxed);
  batch_size_counts_[batch_bucket(writes)].fetch_add(1, std::memory_order_relaxed);
}

void batch_counters::count_failure() noexcept { write_failures_.fetch_add(1, std::memory_order_relaxed); }

store_stats batch_counters::snapshot(std::uint64_t queue_depth) const noexcept {
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

}  // namespace tokend::storage
