// Micro-benchmarks of the group-commit writer of storage/rocksdb_store: per iteration, N creates
// are submitted at once (as N concurrent requests would) and the iteration ends when every handler
// has run. Items/s is creates per second, with fsync per batch (sync=true, the production setting)
// and without (sync=false, the writer's own cost). Each run uses a fresh store in a temporary dir.
#include "core/token.hpp"
#include "storage/rocksdb_store.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace core = tokend::core;
namespace storage = tokend::storage;

namespace {

constexpr auto iteration_deadline = std::chrono::seconds(30);

std::filesystem::path make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "tokend-micro-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// Distinct digests across every run in this process (each store is fresh anyway).
core::key_digest next_digest() {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t x = counter.fetch_add(1, std::memory_order_relaxed);
  core::key_digest d;
  for (std::size_t w = 0; w < d.size() / 8; ++w) {
    std::uint64_t z = x * 4 + w + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    std::memcpy(d.data() + w * 8, &z, sizeof(z));
  }
  return d;
}

// Outlives the iteration that created it, so a handler arriving after a timeout is harmless.
struct wave {
  std::atomic<std::int64_t> remaining;
  std::atomic<std::int64_t> failed{0};
  std::mutex mutex;
  std::condition_variable done;
  explicit wave(std::int64_t n) : remaining(n) {}
};

void BM_store_group_commit(benchmark::State& state, bool sync) {
  const auto creates = state.range(0);
  const auto dir = make_temp_dir();
  std::unique_ptr<storage::token_store> store;
  {
    storage::rocksdb_options options;
    options.data_dir = dir.string();
    options.sync = sync;
    store = storage::open_rocksdb_store(options);
  }
  std::int64_t user = 0;
  for (auto _ : state) {
    auto w = std::make_shared<wave>(creates);
    ++user;  // one user per wave, as if each wave were one client's burst
    for (std::int64_t i = 0; i < creates; ++i) {
      core::token_record record{next_digest(), "abcdef",   "bench " + std::to_string(i),
                                "admin",       1795837738, static_cast<core::user_id>(user)};
      store->async_create(std::move(record), [w](boost::system::result<std::uint64_t> id) {
        if (!id) w->failed.fetch_add(1, std::memory_order_relaxed);
        if (w->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          const std::lock_guard lock(w->mutex);
          w->done.notify_one();
        }
      });
    }
    std::unique_lock lock(w->mutex);
    if (!w->done.wait_for(lock, iteration_deadline, [&] { return w->remaining.load() == 0; })) {
      state.SkipWithError("creates did not complete before the deadline");
      break;
    }
    if (w->failed.load() != 0) {
      state.SkipWithError("some creates failed");
      break;
    }
  }
  const auto stats = store->stats();
  store->close();
  store.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);

  state.SetItemsProcessed(state.iterations() * creates);
  if (stats.batches > 0) {
    state.counters["writes_per_batch"] =
        static_cast<double>(stats.batched_writes) / static_cast<double>(stats.batches);
  }
}

void BM_store_create_sync(benchmark::State& state) { BM_store_group_commit(state, true); }
void BM_store_create_nosync(benchmark::State& state) { BM_store_group_commit(state, false); }

BENCHMARK(BM_store_create_sync)->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_store_create_nosync)->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
