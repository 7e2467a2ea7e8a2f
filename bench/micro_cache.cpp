// Micro-benchmarks of core/token_cache at the production size (1M entries, 64 shards): lookups of
// present keys from one and two threads, lookups of absent keys, and inserts into a full cache
// (each one evicts). The digests are synthetic (splitmix64 of a counter): uniformly random, like
// SHA-256 digests, without paying for SHA-256 in the setup.
#include "core/key.hpp"
#include "core/token_cache.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace core = tokend::core;

namespace {

constexpr std::size_t cache_entries = 1'000'000;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

core::key_digest synthetic_digest(std::uint64_t i) {
  core::key_digest d;
  for (std::size_t w = 0; w < d.size() / 8; ++w) {
    const std::uint64_t v = splitmix64(i * 4 + w);
    std::memcpy(d.data() + w * 8, &v, sizeof(v));
  }
  return d;
}

// A full 1M cache and the digests it holds (in insertion order, which is random order for the
// cache's hash tables). Built once, on first use, shared by every lookup benchmark and thread.
struct lookup_setup {
  core::token_cache cache{cache_entries};
  std::vector<core::key_digest> present;

  lookup_setup() {
    present.reserve(cache_entries);
    for (std::uint64_t i = 0; i < cache_entries; ++i) {
      const auto d = synthetic_digest(i);
      cache.insert_known(d, i + 1);
      present.push_back(d);
    }
    // The shards split the capacity evenly and the keys do not split evenly, so a few hundred keys
    // were evicted: keep only what the cache holds, so that every "present" lookup is a hit.
    std::erase_if(present, [this](const core::key_digest& d) { return !cache.find(d); });
  }
};

lookup_setup& lookups() {
  static lookup_setup s;
  return s;
}

void BM_cache_find_present(benchmark::State& state) {
  auto& s = lookups();
  const std::size_t n = s.present.size();
  // Each thread walks its own part of the keys.
  std::size_t i =
      static_cast<std::size_t>(state.thread_index()) * n / static_cast<std::size_t>(state.threads());
  std::uint64_t found = 0;
  for (auto _ : state) {
    const auto e = s.cache.find(s.present[i]);
    found += e.has_value();
    benchmark::DoNotOptimize(e);
    if (++i == n) i = 0;
  }
  if (found != static_cast<std::uint64_t>(state.iterations()))
    state.SkipWithError("a present key was not found");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cache_find_present)->Threads(1)->Threads(2)->UseRealTime();

void BM_cache_find_absent(benchmark::State& state) {
  auto& s = lookups();
  // Digests beyond those inserted: absent from the cache (a 256-bit collision aside).
  std::uint64_t next = cache_entries * 16 + static_cast<std::uint64_t>(state.thread_index()) * (1ULL << 40);
  std::vector<core::key_digest> absent;
  absent.reserve(1 << 16);
  for (std::size_t k = 0; k < absent.capacity(); ++k) absent.push_back(synthetic_digest(next++));
  std::size_t i = 0;
  std::uint64_t found = 0;
  for (auto _ : state) {
    const auto e = s.cache.find(absent[i]);
    found += e.has_value();
    benchmark::DoNotOptimize(e);
    i = (i + 1) & (absent.size() - 1);
  }
  if (found != 0) state.SkipWithError("an absent key was found");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cache_find_absent)->Threads(1)->Threads(2)->UseRealTime();

// insert_known into a full 1M cache: every insert of a new key evicts one (CLOCK sweep included).
void BM_cache_insert_known_evicting(benchmark::State& state) {
  static core::token_cache cache(cache_entries);
  static std::uint64_t next = [] {
    // Fill until every shard is at its capacity, so that every insert below evicts.
    std::uint64_t i = 1ULL << 50;
    do {
      for (int k = 0; k < 4096; ++k) cache.insert_known(synthetic_digest(i++), 1);
    } while (cache.size() < cache_entries);
    return i;
  }();
  // Digests prepared outside the timed loop in blocks, so only insert_known is measured.
  std::vector<core::key_digest> fresh(1 << 12);
  std::size_t i = fresh.size();
  for (auto _ : state) {
    if (i == fresh.size()) {
      state.PauseTiming();
      for (auto& d : fresh) d = synthetic_digest(next++);
      i = 0;
      state.ResumeTiming();
    }
    cache.insert_known(fresh[i++], 7);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["entries"] = static_cast<double>(cache.size());
}
BENCHMARK(BM_cache_insert_known_evicting);

}  // namespace
