// A bounded, sharded in-memory cache of validated keys, keyed by digest.
//
// Positive entries map a key to its owner; negative entries remember well-formed keys the store
// does not have (a random 224-bit key that does not exist now will not be created later, so a
// negative entry can only go stale through eviction, never through a create).
//
// Reads take a shared lock on one of many shards and never allocate. Eviction is CLOCK
// (second chance), which approximates LRU without writing on the read path beyond one relaxed bit.
#pragma once

#include "core/key.hpp"
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
