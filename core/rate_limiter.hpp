// The buckets of the keys being rate limited in this process: exact for one instance, and the
// local replica of each key's bucket when several instances share a store.
//
// A bucket is created at a key's first limited request and dropped once it is full again and
// nothing about it waits to be shared, so the table holds only keys active within about one window.
// Sharded, one short mutex hold per request, no allocation once a key has its bucket.
//
// Several instances: each admits from its own replica, counts what it admitted (drain_admitted,
// shared every sync interval), and debits what the others admitted (debit) when their counts
// arrive. A replica can go into debt, which the key then pays back by waiting, so the global rate
// converges on the limit; while counts cannot be exchanged, set_share(n) holds each of the n
// instances to 1/n of every limit.
#pragma once

#include "core/key.hpp"
#include "core/rate_limit.hpp"
#include "core/token.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tokend::core {

class rate_limiter {
 public:
  // `capacity` bounds the buckets held; past it, the bucket closest to full is dropped (its key
  // starts again with a full bucket).
  explicit rate_limiter(std::size_t capacity, std::size_t shard_count = 64);
  ~rate_limiter();
  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  // One request of the key at `now_ns` (a monotonic clock, nanoseconds) under `limit`, which is not
  // unlimited. `owner` is kept for top_refused().
  [[nodiscard]] rate_decision admit(const key_digest& digest, user_id owner, const rate_limit& limit,
                                    std::int64_t now_ns);

  // Other instances admitted `count` requests of the key tagged `tag` (key_tag): its bucket here
  // is debited as if they had been admitted here, into debt if need be.
  void debit(std::uint64_t tag, std::uint32_t count, std::int64_t now_ns);

  struct admitted {
    std::uint64_t tag = 0;
    std::uint32_t count = 0;
  };
  // What this instance admitted since the last call, per key, for the other instances; the counts
  // restart from zero.
  [[nodiscard]] std::vector<admitted> drain_admitted();

  // Holds this instance to 1/instances of every limit (1: the whole limit; at most max_share). A
  // bucket keeps how full it was when its share changes. Any thread.
  void set_share(std::uint32_t instances) noexcept;
  [[nodiscard]] std::uint32_t share() const noexcept;

  // Drops the buckets that are full again and have nothing left to share, and the counts other
  // instances sent for keys not seen here once they are a day old (the longest window).
  void trim(std::int64_t now_ns);

  struct refused_key {
    key_digest digest{};  // to resolve the key's id and masked prefix; never shown
    user_id owner = 0;
    rate_limit limit;
    std::uint64_t refused = 0;   // since the bucket was created
    std::uint64_t admitted = 0;  // since the bucket was created
  };
  // The `n` keys with the most refusals among the buckets held, most first; keys never refused are
  // not listed.
  [[nodiscard]] std::vector<refused_key> top_refused(std::size_t n) const;

  [[nodiscard]] std::size_t size() const noexcept;

  static constexpr std::uint32_t max_share = 1U << 16;

 private:
  struct shard;
  [[nodiscard]] shard& shard_for(std::uint64_t tag) const noexcept;

  std::size_t capacity_;
  std::size_t shard_count_;
  std::unique_ptr<shard[]> shards_;
  std::atomic<std::uint32_t> share_{1};
};

}  // namespace tokend::core
