// Latency histogram for tokend-bench: HdrHistogram-like log-linear buckets over nanoseconds, exact
// below 256 ns and within 1/128 (< 0.8 %) relative bucket width up to 60 s. Recording is a few
// integer instructions with no allocation, so each io thread keeps its own copy and the copies are
// merged by addition once the run is over. Pure logic: no clock, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tokend::bench {

class histogram {
 public:
  // Values above this (60 s in nanoseconds) land in the top bucket; max() still reports them exactly.
  static constexpr std::uint64_t highest_trackable = 60'000'000'000ULL;

  histogram();

  void record(std::uint64_t value) noexcept;
  void merge(const histogram& other) noexcept;
  void reset() noexcept;

  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  [[nodiscard]] double mean() const noexcept;

  // The value at or below which p percent of the recorded values fall (p in [0, 100]), reported as
  // the middle of its bucket and clamped to [min, max]. 0 when nothing was recorded.
  [[nodiscard]] std::uint64_t percentile(double p) const noexcept;

  // Bucket geometry, exposed for tests: the bucket a value falls in, and that bucket's range.
  [[nodiscard]] static std::size_t bucket_of(std::uint64_t value) noexcept;
  [[nodiscard]] static std::uint64_t bucket_lowest(std::size_t bucket) noexcept;
  [[nodiscard]] static std::uint64_t bucket_width(std::size_t bucket) noexcept;
  [[nodiscard]] static std::size_t bucket_count() noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  double sum_ = 0;  // double: a 64-bit integer sum of nanoseconds could overflow on long runs
};

}  // namespace tokend::bench
