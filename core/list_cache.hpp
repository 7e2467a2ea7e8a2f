// A bounded in-memory cache of users' complete token lists, so that listing the tokens of a user
// whose list has not changed is answered on the io thread without a storage round trip.
//
// Only complete lists are cached (a user with more tokens than one store page is always read from
// the store). Any create or delete for a user invalidates that user's entry before its 200, and
// fill tickets keep a list read before such a write from re-entering the cache after it, so a
// caller always sees its own writes. The bound is on records, not users: one user with many tokens
// weighs as much as many users with few.
#pragma once

#include "core/token.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tokend::core {

class list_cache {
 public:
  using list = std::shared_ptr<const std::vector<token_record>>;
  using fill_ticket = std::uint64_t;

  // max_records 0 disables the cache: find() always misses and fill() keeps nothing.
  explicit list_cache(std::size_t max_records, std::size_t shard_count = 16);
  ~list_cache();
  list_cache(const list_cache&) = delete;
  list_cache& operator=(const list_cache&) = delete;

  // The user's complete list, oldest first, or nullptr.
  [[nodiscard]] list find(user_id owner) const;

  // Take before reading the store; fill() keeps the list only if no write for this user's shard
  // invalidated anything since.
  [[nodiscard]] fill_ticket ticket(user_id owner) const noexcept;
  void fill(user_id owner, fill_ticket ticket, std::vector<token_record> complete_list);

  // A create or delete for `owner` committed.
  void invalidate(user_id owner);

  // Records held, counting one more per cached list for its entry.
  [[nodiscard]] std::size_t records() const noexcept;

 private:
  struct shard;
  [[nodiscard]] shard& shard_for(user_id owner) const noexcept;

  std::size_t shard_count_;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace tokend::core
