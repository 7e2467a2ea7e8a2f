// Micro-benchmarks of core/key: generating a key (CSPRNG + CRC32 + hex), checking its format and
// checksum (done on every request before any lookup), and its SHA-256 digest (every lookup).
#include "core/key.hpp"

#include <benchmark/benchmark.h>

#include <string>

namespace core = tokend::core;

namespace {

void BM_generate_key(benchmark::State& state) {
  for (auto _ : state) {
    std::string key = core::generate_key();
    benchmark::DoNotOptimize(key);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_generate_key);

void BM_is_well_formed_key(benchmark::State& state) {
  const std::string key = core::generate_key();
  for (auto _ : state) {
    benchmark::DoNotOptimize(key.data());
    bool ok = core::is_well_formed_key(key);
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_is_well_formed_key);

// A key of the right shape whose checksum fails: the cost of refusing a typo or a guess.
void BM_is_well_formed_key_bad_checksum(benchmark::State& state) {
  std::string key = core::generate_key();
  key.back() = key.back() == '0' ? '1' : '0';
  for (auto _ : state) {
    benchmark::DoNotOptimize(key.data());
    bool ok = core::is_well_formed_key(key);
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_is_well_formed_key_bad_checksum);

void BM_digest_key(benchmark::State& state) {
  const std::string key = core::generate_key();
  for (auto _ : state) {
    benchmark::DoNotOptimize(key.data());
    core::key_digest d = core::digest_key(key);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_digest_key);

}  // namespace
