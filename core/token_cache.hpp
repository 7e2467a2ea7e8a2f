// A bounded, sharded in-memory cache of validated keys, keyed by digest.
//
// Positive entries map a key to its owner; negative entries remember well-formed keys the store
// does not have (a random 224-bit key that does not exist now will not be created later, so a
// negative entry can only go stale through eviction, never through a create).
//
// Reads take a shared lock on one of many shards and never allocate. Eviction is CLOCK
// (second chance), which approximates LRU without writing on the read path beyond one relaxed bit.
//
// Each positive entry also carries the last minute its key was marked used (mark_used), so that a
// key's uses reach the store at most once a minute without a write per request, and the key's own
// rate limit, so that a cached key is limited without a store read.
#pragma once

#include "core/key.hpp"
#include "core/rate_limit.hpp"
#include "core/token.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace tokend::core {

class token_cache {
 public:
  struct entry {
    bool known = false;  // false: a negative entry
    user_id owner = 0;
    std::int64_t expires_at = 0;  // Unix seconds; 0: never
    bool operator_key = false;
    // The last minute (Unix seconds / 60) mark_used recorded for the key, 0 for none. Filled in by
    // find(); fill() and insert_known() ignore it: only mark_used moves a key's marker.
    std::uint32_t used_minute = 0;
    std::optional<rate_limit> own_limit{};  // the key's own rate limit; nullopt: the server's default
  };

  enum class use_mark {
    first,       // the key's first marking in that minute: the caller records the use
    repeat,      // already marked in that minute (or a later one): nothing to record
    not_cached,  // no positive entry for the key: the cache cannot tell
  };

  // Fill tickets guard against a lookup that raced with a delete: a value read from the store
  // before the delete committed must not re-enter the cache after the delete evicted it.
  using fill_ticket = std::uint64_t;

  explicit token_cache(std::size_t capacity, std::size_t shard_count = 64);
  ~token_cache();
  token_cache(const token_cache&) = delete;
  token_cache& operator=(const token_cache&) = delete;

  [[nodiscard]] std::optional<entry> find(const key_digest& digest) const noexcept;

  // Take before reading the store on a miss; pass to fill() with what the store said.
  [[nodiscard]] fill_ticket ticket(const key_digest& digest) const noexcept;
  void fill(const key_digest& digest, fill_ticket ticket, entry value);

  // A key just created and durable.
  void insert_known(const key_digest& digest, entry value);
  void insert_known(const key_digest& digest, user_id owner) { insert_known(digest, entry{true, owner}); }

  // Marks the key used in `minute` (Unix seconds / 60, at least 1). Markers only move forward, and
  // a repeat costs one relaxed load, so concurrent uses of a key in one minute answer `first` once.
  [[nodiscard]] use_mark mark_used(const key_digest& digest, std::uint32_t minute) const noexcept;

  // A key just deleted: leaves the cache, and any fill that started earlier is dropped.
  void erase(const key_digest& digest);

  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::uint64_t hits() const noexcept;
  [[nodiscard]] std::uint64_t misses() const noexcept;

 private:
  struct shard;
  [[nodiscard]] shard& shard_for(const key_digest& digest) const noexcept;

  std::size_t capacity_;
  std::size_t shard_count_;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace tokend::core
