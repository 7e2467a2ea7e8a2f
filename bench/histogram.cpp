// Log-linear bucket arithmetic for tokend-bench's latency histogram (see histogram.hpp).
#include "bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace tokend::bench {
namespace {

// Values below 2 * half are their own bucket; above, every power-of-two range [2^m, 2^(m+1)) is cut
// into `half` equal buckets, so a bucket is at most 1/half of the values it holds.
constexpr unsigned half_bits = 7;
constexpr std::uint64_t half = std::uint64_t{1} << half_bits;  // 128
constexpr std::uint64_t linear = 2 * half;                     // 256

constexpr std::size_t index_of(std::uint64_t v) noexcept {
  if (v < linear) return static_cast<std::size_t>(v);
  const unsigned msb = static_cast<unsigned>(std::bit_width(v)) - 1;  // >= half_bits + 1
  const unsigned shift = msb - half_bits;                             // >= 1
  return static_cast<std::size_t>(linear + (shift - 1) * half + ((v >> shift) - half));
}

constexpr std::size_t bucket_total = index_of(histogram::highest_trackable) + 1;

}  // namespace

histogram::histogram() : counts_(bucket_total, 0) {}

std::size_t histogram::bucket_of(std::uint64_t value) noexcept {
  return index_of(std::min(value, highest_trackable));
}

std::uint64_t histogram::bucket_lowest(std::size_t bucket) noexcept {
  if (bucket < linear) return bucket;
  const std::size_t j = bucket - linear;
  const unsigned shift = static_cast<unsigned>(j / half) + 1;
  return (half + j % half) << shift;
}

std::uint64_t histogram::bucket_width(std::size_t bucket) noexcept {
  if (bucket < linear) return 1;
  return std::uint64_t{1} << ((bucket - linear) / half + 1);
}

std::size_t histogram::bucket_count() noexcept { return bucket_total; }

void histogram::record(std::uint64_t value) noexcept {
  ++counts_[bucket_of(value)];
  ++total_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<double>(value);
}

void histogram::merge(const histogram& other) noexcept {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double histogram::mean() const noexcept { return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_); }

std::uint64_t histogram::percentile(double p) const noexcept {
  if (total_ == 0) return 0;
  if (!(p > 0)) return min_;  // also catches NaN
  if (p >= 100) return max_;
  // The rank of the wanted value, 1-based; the small epsilon keeps 99.9 % of 1000 at rank 999.
  const double exact = p / 100.0 * static_cast<double>(total_);
  auto rank = static_cast<std::uint64_t>(std::ceil(exact - 1e-9 * exact));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t mid = bucket_lowest(i) + (bucket_width(i) - 1) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace tokend::bench
