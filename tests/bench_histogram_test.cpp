// Unit tests for bench/histogram (tokend-bench's latency histogram): bucket geometry, percentiles of
// known distributions within 1 %, merging per-thread copies, exact max/min, the empty histogram and
// values beyond the 60 s range.
#define BOOST_TEST_MODULE bench_histogram_test
#include <boost/test/unit_test.hpp>

#include "bench/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using tokend::bench::histogram;

namespace {

// The exact percentile of a sorted sample, by the same nearest-rank rule the histogram uses.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

double relative_error(std::uint64_t got, std::uint64_t want) {
  return std::abs(static_cast<double>(got) - static_cast<double>(want)) / static_cast<double>(want);
}

void check_percentiles(const std::vector<std::uint64_t>& values, double tolerance) {
  histogram h;
  for (auto v : values) h.record(v);
  std::vector<std::uint64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99}) {
    const auto want = exact_percentile(sorted, p);
    const auto got = h.percentile(p);
    BOOST_TEST_INFO("p" << p << ": histogram " << got << ", exact " << want);
    BOOST_TEST(relative_error(got, want) <= tolerance);
  }
  BOOST_TEST(h.max() == sorted.back());
  BOOST_TEST(h.min() == sorted.front());
  BOOST_TEST(h.percentile(100) == sorted.back());
  BOOST_TEST(h.percentile(0) == sorted.front());
}

}  // namespace

BOOST_AUTO_TEST_CASE(buckets_tile_the_range_with_bounded_relative_width) {
  // Every bucket starts right where the previous one ends, and none is wider than 1/128 of its values.
  std::uint64_t expected_lowest = 0;
  for (std::size_t b = 0; b < histogram::bucket_count(); ++b) {
    BOOST_TEST_REQUIRE(histogram::bucket_lowest(b) == expected_lowest);
    const auto width = histogram::bucket_width(b);
    if (histogram::bucket_lowest(b) >= 256) {
      BOOST_TEST_REQUIRE(static_cast<double>(width) / static_cast<double>(histogram::bucket_lowest(b)) <=
                         1.0 / 128);
    } else {
      BOOST_TEST_REQUIRE(width == 1u);
    }
    BOOST_TEST_REQUIRE(histogram::bucket_of(histogram::bucket_lowest(b)) == b);
    BOOST_TEST_REQUIRE(histogram::bucket_of(histogram::bucket_lowest(b) + width - 1) == b);
    expected_lowest += width;
  }
  BOOST_TEST(expected_lowest > histogram::highest_trackable);
  BOOST_TEST(histogram::bucket_of(histogram::highest_trackable) == histogram::bucket_count() - 1);
  BOOST_TEST(histogram::bucket_count() < 5000u);  // small enough to keep one per thread and per kind
}

BOOST_AUTO_TEST_CASE(empty_histogram_reports_zeros) {
  histogram h;
  BOOST_TEST(h.count() == 0u);
  BOOST_TEST(h.min() == 0u);
  BOOST_TEST(h.max() == 0u);
  BOOST_TEST(h.mean() == 0.0);
  BOOST_TEST(h.percentile(50) == 0u);
  BOOST_TEST(h.percentile(99.9) == 0u);
  BOOST_TEST(h.percentile(100) == 0u);
}

BOOST_AUTO_TEST_CASE(single_value_is_every_percentile) {
  histogram h;
  h.record(1'234'567);  // 1.23 ms in ns, not on a bucket boundary
  for (double p : {0.0, 1.0, 50.0, 99.9, 100.0}) BOOST_TEST(h.percentile(p) == 1'234'567u);
  BOOST_TEST(h.max() == 1'234'567u);
  BOOST_TEST(h.min() == 1'234'567u);
  BOOST_TEST(h.mean() == 1'234'567.0);
}

BOOST_AUTO_TEST_CASE(uniform_microseconds_to_a_second) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> d(1'000, 1'000'000'000);
  std::vector<std::uint64_t> v(200'000);
  for (auto& x : v) x = d(rng);
  check_percentiles(v, 0.01);
}

BOOST_AUTO_TEST_CASE(exponential_latencies) {
  std::mt19937_64 rng(2);
  std::exponential_distribution<double> d(1.0 / 500'000);  // mean 500 us
  std::vector<std::uint64_t> v(200'000);
  for (auto& x : v) x = 1'000 + static_cast<std::uint64_t>(d(rng));
  check_percentiles(v, 0.01);
}

BOOST_AUTO_TEST_CASE(lognormal_latencies_with_a_long_tail) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> d(std::log(200'000.0), 1.5);  // median 200 us, tail to seconds
  std::vector<std::uint64_t> v(200'000);
  for (auto& x : v)
    x = std::min<std::uint64_t>(1'000 + static_cast<std::uint64_t>(d(rng)), 59'000'000'000ULL);
  check_percentiles(v, 0.01);
}

BOOST_AUTO_TEST_CASE(known_percentiles_of_one_to_one_million) {
  histogram h;
  for (std::uint64_t v = 1; v <= 1'000'000; ++v) h.record(v * 1'000);  // 1 us .. 1 s
  BOOST_TEST(relative_error(h.percentile(50), 500'000'000) <= 0.01);
  BOOST_TEST(relative_error(h.percentile(90), 900'000'000) <= 0.01);
  BOOST_TEST(relative_error(h.percentile(99), 990'000'000) <= 0.01);
  BOOST_TEST(relative_error(h.percentile(99.9), 999'000'000) <= 0.01);
  BOOST_TEST(h.max() == 1'000'000'000u);
  BOOST_TEST(h.min() == 1'000u);
  BOOST_TEST(h.count() == 1'000'000u);
  BOOST_TEST(std::abs(h.mean() - 500'000'500.0) < 1.0);
}

BOOST_AUTO_TEST_CASE(small_values_are_exact) {
  histogram h;
  for (std::uint64_t v = 0; v < 100; ++v) h.record(v);
  BOOST_TEST(h.percentile(50) == 49u);
  BOOST_TEST(h.percentile(1) == 0u);
  BOOST_TEST(h.percentile(99) == 98u);
}

BOOST_AUTO_TEST_CASE(merge_equals_recording_everything_in_one) {
  std::mt19937_64 rng(4);
  std::lognormal_distribution<double> d(std::log(300'000.0), 1.0);
  histogram parts[4];
  histogram all;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = 1'000 + static_cast<std::uint64_t>(d(rng));
    parts[i % 4].record(v);
    all.record(v);
  }
  histogram merged;
  for (const auto& p : parts) merged.merge(p);
  BOOST_TEST(merged.count() == all.count());
  BOOST_TEST(merged.max() == all.max());
  BOOST_TEST(merged.min() == all.min());
  BOOST_TEST(std::abs(merged.mean() - all.mean()) <= all.mean() * 1e-12);
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) BOOST_TEST(merged.percentile(p) == all.percentile(p));
}

BOOST_AUTO_TEST_CASE(merging_an_empty_histogram_changes_nothing) {
  histogram h;
  h.record(5'000);
  h.record(7'000);
  const histogram empty;
  h.merge(empty);
  BOOST_TEST(h.count() == 2u);
  BOOST_TEST(h.min() == 5'000u);
  BOOST_TEST(h.max() == 7'000u);

  histogram e;
  e.merge(h);
  BOOST_TEST(e.count() == 2u);
  BOOST_TEST(e.min() == 5'000u);
  BOOST_TEST(e.percentile(100) == 7'000u);
}

BOOST_AUTO_TEST_CASE(max_is_exact_and_values_beyond_range_are_kept) {
  histogram h;
  for (int i = 0; i < 1000; ++i) h.record(100'000);
  h.record(123'456'789'012ULL);  // about 123 s: beyond the 60 s of buckets
  BOOST_TEST(h.max() == 123'456'789'012ULL);
  BOOST_TEST(h.percentile(100) == 123'456'789'012ULL);
  // Rank 1000 of 1001 is still the common value, reported within its bucket's precision.
  BOOST_TEST(relative_error(h.percentile(50), 100'000) <= 0.01);
  BOOST_TEST(relative_error(h.percentile(99.9), 100'000) <= 0.01);
  BOOST_TEST(h.count() == 1001u);
}

BOOST_AUTO_TEST_CASE(reset_empties) {
  histogram h;
  h.record(42'000);
  h.reset();
  BOOST_TEST(h.count() == 0u);
  BOOST_TEST(h.max() == 0u);
  BOOST_TEST(h.percentile(50) == 0u);
  h.record(7);
  BOOST_TEST(h.percentile(50) == 7u);
}
