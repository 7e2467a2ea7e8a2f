// The storage interface every backend implements: the RocksDB store (one process), the PostgreSQL
// store (shared by several processes), and the in-memory and fault-injecting stores of the tests.
//
// All operations are asynchronous: they return at once and call their handler later, on a storage
// thread. Callers must re-dispatch to their own executor. Nothing here may block the caller.
#pragma once

#include "core/key.hpp"
#include "core/token.hpp"

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace tokend::storage {

struct list_page {
  std::vector<core::token_record> tokens;  // creation order
  bool has_more = false;                   // more tokens follow this page
};

// Upper bounds of the batch-size histogram: 1, 2, 4, ..., 1024, then +Inf.
inline constexpr std::size_t batch_size_buckets = 12;

struct store_stats {
  std::uint64_t queue_depth = 0;                                      // writes waiting for the writer
  std::uint64_t batches = 0;                                          // committed write batches
  std::uint64_t batched_writes = 0;                                   // writes in those batches
  std::array<std::uint64_t, batch_size_buckets> batch_size_counts{};  // non-cumulative
  std::uint64_t write_failures = 0;
};

class token_store {
 public:
  using lookup_handler = std::function<void(boost::system::result<std::optional<core::user_id>>)>;
  using write_handler = std::function<void(boost::system::error_code)>;
  using list_handler = std::function<void(boost::system::result<list_page>)>;

  virtual ~token_store() = default;

  // Owner of the key with this digest, or nullopt when no such key exists.
  virtual void async_lookup(const core::key_digest& digest, lookup_handler handler) = 0;

  // Stores the record; the handler sees success only once the record is durable.
  // Errors: core::errc::overloaded (queue full), core::errc::unavailable (store failing/closed).
  virtual void async_create(core::token_record record, write_handler handler) = 0;

  // Tokens of `owner` in creation order, skipping `offset`, at most `limit`.
  virtual void async_list(core::user_id owner, std::size_t offset, std::size_t limit,
                          list_handler handler) = 0;

  // Deletes the key if it belongs to `owner`; core::errc::not_found otherwise (whether or not the
  // key exists for someone else). Success only once the delete is durable.
  virtual void async_remove(core::user_id owner, const core::key_digest& digest, write_handler handler) = 0;

  // True while the store is open and its last write did not fail.
  [[nodiscard]] virtual bool ready() const noexcept = 0;

  // Blocking; for start-up only: whether the store holds no token at all.
  [[nodiscard]] virtual boost::system::result<bool> empty() = 0;

  [[nodiscard]] virtual store_stats stats() const = 0;

  // True when other processes may write to the same data (a shared database): then this process
  // does not see every write, and caches that rely on it (the per-user list cache) must stay off.
  [[nodiscard]] virtual bool shared() const noexcept { return false; }

  // Registers the one callback told of every key deleted by any process (including this one), so
  // that caches can drop it. It runs on a storage thread and must be quick and not throw. A store
  // that is not shared never calls it: this process's own deletes are all there is.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): a sink, which the stores that keep it move
  virtual void on_revoked(std::function<void(const core::key_digest&)> callback) { (void)callback; }

  // Blocking: refuses new operations with core::errc::unavailable from now on, finishes the queued
  // writes and waits for in-flight handlers. Idempotent.
  virtual void close() = 0;
};

}  // namespace tokend::storage
