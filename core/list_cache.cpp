// Per-user list cache with FIFO eviction by record budget; see list_cache.hpp.
#include "core/list_cache.hpp"

#include <algorithm>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace tokend::core {

struct list_cache::shard {
  mutable std::shared_mutex mutex;
  std::unordered_map<user_id, list> lists;
  std::deque<user_id> order;  // fill order; entries of users since invalidated are skipped
  std::size_t records = 0;
  std::size_t budget = 0;
  std::uint64_t epoch = 0;  // bumped by every invalidation; guarded by mutex

  // Each list also costs one record for its entry, so many empty lists stay bounded too.
  static std::size_t weight(const std::vector<token_record>& l) noexcept { return l.size() + 1; }

  // Caller holds the unique lock.
  void drop(user_id owner) {
    if (auto it = lists.find(owner); it != lists.end()) {
      records -= weight(*it->second);
      lists.erase(it);
    }
  }
};

list_cache::list_cache(std::size_t max_records, std::size_t shard_count)
    : shard_count_(std::max<std::size_t>(shard_count, 1)), shards_(std::make_unique<shard[]>(shard_count_)) {
  for (std::size_t i = 0; i < shard_count_; ++i) shards_[i].budget = max_records / shard_count_;
}

list_cache::~list_cache() = default;

list_cache::shard& list_cache::shard_for(user_id owner) const noexcept {
  // User ids are small consecutive numbers: mix them so neighbours land in different shards.
  return shards_[(owner * 0x9E3779B97F4A7C15ULL >> 32) % shard_count_];
}

list_cache::list list_cache::find(user_id owner) const {
  shard& s = shard_for(owner);
  std::shared_lock lock(s.mutex);
  auto it = s.lists.find(owner);
  return it == s.lists.end() ? nullptr : it->second;
}

list_cache::fill_ticket list_cache::ticket(user_id owner) const noexcept {
  shard& s = shard_for(owner);
  std::shared_lock lock(s.mutex);
  return s.epoch;
}

void list_cache::fill(user_id owner, fill_ticket ticket, std::vector<token_record> complete_list) {
  shard& s = shard_for(owner);
  if (shard::weight(complete_list) > s.budget) return;
  auto entry = std::make_shared<const std::vector<token_record>>(std::move(complete_list));
  std::unique_lock lock(s.mutex);
  if (s.epoch != ticket) return;  // a write for this shard committed since the read began
  s.drop(owner);
  while (s.records + shard::weight(*entry) > s.budget && !s.order.empty()) {
    s.drop(s.order.front());
    s.order.pop_front();
  }
  s.records += shard::weight(*entry);
  s.lists.emplace(owner, std::move(entry));
  s.order.push_back(owner);
  // Stale order entries (users invalidated or refilled) only cost a skipped drop; keep them bounded.
  if (s.order.size() > 2 * s.lists.size() + 64) {
    std::erase_if(s.order, [&s](user_id u) { return !s.lists.contains(u); });
  }
}

void list_cache::invalidate(user_id owner) {
  shard& s = shard_for(owner);
  std::unique_lock lock(s.mutex);
  ++s.epoch;
  s.drop(owner);
}

std::size_t list_cache::records() const noexcept {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shard_count_; ++i) {
    std::shared_lock lock(shards_[i].mutex);
    total += shards_[i].records;
  }
  return total;
}

}  // namespace tokend::core
