// CLOCK-evicted sharded cache; see token_cache.hpp.
#include "core/token_cache.hpp"

#include <algorithm>
#include <mutex>

namespace tokend::core {

struct alignas(64) token_cache::shard {
  // An entry's fields, packed with the CLOCK bit and the use marker into 40 bytes (an entry as
  // such would pad its flags to 48 before either atomic was added): with the key and the map's
  // link, a node of 80 bytes, one of jemalloc's size classes.
  struct slot_value {
    user_id owner = 0;
    std::int64_t expires_at = 0;
    mutable std::atomic<std::uint32_t> used_minute{0};
    std::optional<rate_limit> own_limit;
    bool known = false;
    bool operator_key = false;
    mutable std::atomic<bool> referenced{false};

    explicit slot_value(const entry& v) { assign(v); }
    void assign(const entry& v) noexcept {
      owner = v.owner;
      expires_at = v.expires_at;
      own_limit = v.own_limit;
      known = v.known;
      operator_key = v.operator_key;
    }
    [[nodiscard]] entry value() const noexcept {
      return {known, owner, expires_at, operator_key, used_minute.load(std::memory_order_relaxed), own_limit};
    }
  };
  static_assert(sizeof(slot_value) <= 40, "a cached key's memory would grow");

  mutable std::shared_mutex mutex;
  std::unordered_map<key_digest, slot_value, key_digest_hash> map;
  std::vector<key_digest> ring;  // insertion slots swept by the clock hand
  std::size_t hand = 0;
  std::size_t capacity = 1;
  std::uint64_t epoch = 0;  // bumped by every erase; guarded by mutex
  mutable std::atomic<std::uint64_t> hits{0};
  mutable std::atomic<std::uint64_t> misses{0};

  // Caller holds the unique lock. Adds or overwrites `digest`.
  void put(const key_digest& digest, entry value) {
    if (auto it = map.find(digest); it != map.end()) {
      it->second.assign(value);  // the same key: its use marker stays
      return;
    }
    if (ring.size() < capacity) {
      ring.push_back(digest);
    } else {
      // Second chance: skip recently read entries once, evict the first one not read since.
      for (;;) {
        auto victim = map.find(ring[hand]);
        if (victim != map.end() && victim->second.referenced.exchange(false, std::memory_order_relaxed)) {
          hand = (hand + 1) % ring.size();
          continue;
        }
        if (victim != map.end()) map.erase(victim);
        ring[hand] = digest;
        hand = (hand + 1) % ring.size();
        break;
      }
    }
    map.emplace(std::piecewise_construct, std::forward_as_tuple(digest), std::forward_as_tuple(value));
  }
};

token_cache::token_cache(std::size_t capacity, std::size_t shard_count)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      shard_count_(std::clamp<std::size_t>(shard_count, 1, capacity_)),
      shards_(std::make_unique<shard[]>(shard_count_)) {
  for (std::size_t i = 0; i < shard_count_; ++i) {
    // Spread the remainder so the shards add up to exactly the configured capacity.
    shards_[i].capacity = capacity_ / shard_count_ + (i < capacity_ % shard_count_ ? 1 : 0);
    shards_[i].map.reserve(std::min<std::size_t>(shards_[i].capacity, 1024));
  }
}

token_cache::~token_cache() = default;

token_cache::shard& token_cache::shard_for(const key_digest& digest) const noexcept {
  // Bytes 8..15 pick the shard; bytes 0..7 feed the map's hash, so the two stay independent.
  std::uint64_t v;
  __builtin_memcpy(&v, digest.data() + 8, sizeof(v));
  return shards_[v % shard_count_];
}

std::optional<token_cache::entry> token_cache::find(const key_digest& digest) const noexcept {
  shard& s = shard_for(digest);
  std::shared_lock lock(s.mutex);
  auto it = s.map.find(digest);
  if (it == s.map.end()) {
    s.misses.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  if (!it->second.referenced.load(std::memory_order_relaxed)) {
    it->second.referenced.store(true, std::memory_order_relaxed);
  }
  s.hits.fetch_add(1, std::memory_order_relaxed);
  return it->second.value();
}

token_cache::use_mark token_cache::mark_used(const key_digest& digest, std::uint32_t minute) const noexcept {
  shard& s = shard_for(digest);
  std::shared_lock lock(s.mutex);
  const auto it = s.map.find(digest);
  if (it == s.map.end() || !it->second.known) return use_mark::not_cached;
  std::atomic<std::uint32_t>& marker = it->second.used_minute;
  std::uint32_t seen = marker.load(std::memory_order_relaxed);
  // Only the caller whose exchange moves the marker forward records the use.
  while (seen < minute) {
    if (marker.compare_exchange_weak(seen, minute, std::memory_order_relaxed)) return use_mark::first;
  }
  return use_mark::repeat;
}

token_cache::fill_ticket token_cache::ticket(const key_digest& digest) const noexcept {
  shard& s = shard_for(digest);
  std::shared_lock lock(s.mutex);
  return s.epoch;
}

void token_cache::fill(const key_digest& digest, fill_ticket ticket, entry value) {
  shard& s = shard_for(digest);
  std::unique_lock lock(s.mutex);
  if (s.epoch != ticket) return;  // a delete happened meanwhile: what we read may be stale
  s.put(digest, value);
}

void token_cache::insert_known(const key_digest& digest, entry value) {
  shard& s = shard_for(digest);
  std::unique_lock lock(s.mutex);
  s.put(digest, value);
}

void token_cache::erase(const key_digest& digest) {
  shard& s = shard_for(digest);
  std::unique_lock lock(s.mutex);
  ++s.epoch;
  s.map.erase(digest);  // its ring slot is reused when the hand reaches it
}

std::size_t token_cache::size() const noexcept {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::shared_lock lock(shards_[i].mutex);
    total += shards_[i].map.size();
  }
  return total;
}

std::uint64_t token_cache::hits() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) total += shards_[i].hits.load(std::memory_order_relaxed);
  return total;
}

std::uint64_t token_cache::misses() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) total += shards_[i].misses.load(std::memory_order_relaxed);
  return total;
}

}  // namespace tokend::core
