// tokend-cache-memory: resident memory per cached key of core::token_cache, against the target of
// 150 bytes of resident memory per key at 1M keys, with the expiry, last-use and rate-limit state in
// the entry.
// Exits 1 above the target.
//
//   tokend-cache-memory [--keys N]     # N defaults to 1000000; the cache's capacity is N too
//
// Method. Two snapshots, one before the cache is constructed and one after N distinct keys were
// inserted with insert_known (positive entries; a negative entry costs the same):
//   - RSS: VmRSS from /proc/self/status, what the kernel holds resident for the process;
//   - heap: bytes handed out by malloc by its own statistics (core::allocated_bytes(): jemalloc's
//     stats.allocated, or glibc's mallinfo2()), i.e. without the memory malloc keeps free but
//     resident. The program runs on the allocator the service is built with (jemalloc by default).
// The differences divided by the number of entries the cache holds afterwards (cache.size(), a
// little below N: the capacity is split evenly over the shards and random keys are not) give the
// bytes per key. What is counted is everything the cache allocates: its hash maps (nodes, bucket
// arrays, the old arrays freed by rehashing while malloc keeps them resident), the CLOCK ring, the
// shards, and malloc's per-chunk overhead. The keys are random 32-byte digests (the cache only
// ever sees SHA-256 digests, which are uniformly random) generated one at a time on the stack from
// a PRNG: they are not stored anywhere else, so nothing has to be subtracted. Nothing is printed
// or allocated between the snapshots except by the cache itself.
#include "core/allocator.hpp"
#include "core/key.hpp"
#include "core/token_cache.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <string_view>

namespace core = tokend::core;

namespace {

constexpr double max_rss_bytes_per_key = 150;

// VmRSS in bytes, read without allocating (the snapshot must not disturb the heap it measures).
std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  std::size_t kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::strtoull(line + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
}

struct snapshot {
  std::size_t rss;
  std::size_t heap;
};

snapshot take_snapshot() { return {resident_bytes(), core::allocated_bytes()}; }

int usage(const char* problem) {
  std::fprintf(stderr, "tokend-cache-memory: %s\nusage: tokend-cache-memory [--keys N]\n", problem);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t keys = 1'000'000;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    if (arg == "--keys" && i + 1 < argc) {
      value = argv[++i];
    } else if (arg.starts_with("--keys=")) {
      value = arg.substr(7);
    } else if (arg == "--help" || arg == "-h") {
      std::printf("usage: tokend-cache-memory [--keys N]   (default 1000000)\n");
      return 0;
    } else {
      return usage("unknown argument");
    }
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), keys);
    if (ec != std::errc{} || ptr != value.data() + value.size() || keys == 0)
      return usage("--keys wants a positive integer");
  }

  // Fault in stdio's buffers and the /proc reader's before the first snapshot.
  const std::string_view allocator = core::allocator_name();
  std::printf("tokend-cache-memory: %zu keys, cache capacity %zu, %.*s malloc\n", keys, keys,
              static_cast<int>(allocator.size()), allocator.data());
  std::fflush(stdout);
  (void)take_snapshot();

  const snapshot before = take_snapshot();
  auto cache = std::make_unique<core::token_cache>(keys);
  std::mt19937_64 rng(0x70c3d);
  for (std::size_t i = 0; i < keys; ++i) {
    core::key_digest d;
    for (std::size_t w = 0; w < d.size(); w += 8) {
      const std::uint64_t v = rng();
      std::memcpy(d.data() + w, &v, sizeof(v));
    }
    cache->insert_known(d, i + 1);
  }
  const snapshot after = take_snapshot();
  const std::size_t held = cache->size();

  const auto per_key = [held](std::size_t a, std::size_t b) {
    return b > a ? static_cast<double>(b - a) / static_cast<double>(held) : 0.0;
  };
  const double rss_per_key = per_key(before.rss, after.rss);
  const double heap_per_key = per_key(before.heap, after.heap);
  std::printf("entries held   %zu of %zu inserted\n", held, keys);
  std::printf("RSS            %.1f MiB -> %.1f MiB: %.1f bytes/key\n", before.rss / 1048576.0,
              after.rss / 1048576.0, rss_per_key);
  std::printf("heap in use    %.1f MiB -> %.1f MiB: %.1f bytes/key\n", before.heap / 1048576.0,
              after.heap / 1048576.0, heap_per_key);
  if (held == 0 || rss_per_key > max_rss_bytes_per_key) {
    std::printf("FAIL: %.1f bytes of resident memory per key, target <= %.0f\n", rss_per_key,
                max_rss_bytes_per_key);
    return 1;
  }
  std::printf("ok: %.1f bytes of resident memory per key <= %.0f\n", rss_per_key, max_rss_bytes_per_key);
  return 0;
}
