// The token operations the API needs, over the cache and a storage backend. Coroutine-friendly:
// each operation completes on the calling coroutine's executor, never on a storage thread.
#pragma once

#include "core/list_cache.hpp"
#include "core/rate_limiter.hpp"
#include "core/token.hpp"
#include "core/token_cache.hpp"
#include "storage/token_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tokend::server {

// A limited key's limit and what it said of this request.
struct rate_state {
  core::rate_limit limit;  // the effective one (the key's own or the default), never unlimited
  core::rate_decision decision;
};

// Who a key belongs to, once authenticated.
struct caller {
  core::user_id user = 0;
  bool operator_key = false;         // may act for any user
  std::optional<rate_state> rate{};  // set when the key is limited
  // Over its rate limit: the request must be answered 429 (or /verify's configured status) and
  // nothing else done for it.
  [[nodiscard]] bool rate_limited() const noexcept { return rate && !rate->decision.allowed; }
};

// Unix seconds now; tests pass a clock they control.
using clock_function = std::function<std::int64_t()>;
[[nodiscard]] std::int64_t system_seconds();
// Nanoseconds of a monotonic clock, for rate limits; tests pass one they control.
using monotonic_function = std::function<std::int64_t()>;
[[nodiscard]] std::int64_t steady_nanoseconds();

// How keys are rate limited.
struct rate_limit_settings {
  core::rate_limit default_limit;  // for keys without their own; unlimited by default
  monotonic_function clock = steady_nanoseconds;
};

class token_service {
 public:
  // list_cache_records bounds the records of cached complete lists (0: lists always come from the
  // store). Cached lists stay correct because every write goes through this service: a store
  // shared with other processes must disable it or invalidate it from their writes.
  // The list cache is off for a shared store (store.shared()), and the key cache follows the
  // store's revocations (on_revoked) so deletes made by other processes reach it.
  token_service(storage::token_store& store, std::size_t cache_capacity, std::size_t list_cache_records = 0,
                clock_function clock = system_seconds);
  ~token_service();
  token_service(const token_service&) = delete;
  token_service& operator=(const token_service&) = delete;

  [[nodiscard]] std::int64_t now() const { return clock_(); }

  // The key's owner, or core::errc::unauthorized (also from its expiry on). A malformed key never
  // reaches the cache or store; a cached key is answered without suspending on storage. A success
  // marks the key used this minute when recording (see flush_uses): a key already marked costs one
  // relaxed load, its first use in a minute one append to a queue under a mutex.
  // A limited key (its own limit or the default) takes one request from its bucket: the caller's
  // `rate` says whether it was admitted, and a refused one must not be served.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<caller>> authenticate(std::string_view key);

  struct created {
    std::string key;  // shown to the caller once, never stored
    core::token_record record;
  };
  // Durable before it returns success. expires_at: Unix seconds, 0 for never (policies are the
  // caller's: see core/expiry_policy.hpp).
  [[nodiscard]] boost::asio::awaitable<boost::system::result<created>> create(
      core::user_id owner, std::string description, std::string type, std::int64_t expires_at = 0,
      std::optional<core::rate_limit> limit = std::nullopt);

  // From the list cache when the caller's complete list is there, else from the store.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<storage::list_page>> list(core::user_id owner,
                                                                                       std::size_t offset,
                                                                                       std::size_t limit);

  // The tokens of `owner` with an id above `after_id`, by a seek in the store (never a skip), or
  // from the list cache when the caller's complete list is there.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<storage::list_page>> list_after(
      core::user_id owner, std::uint64_t after_id, std::size_t limit);

  // How many tokens `owner` holds and the bound that applies to it.
  struct quota_view {
    std::uint64_t tokens = 0;
    std::uint64_t max_tokens = 0;  // the bound that applies: its own, else the default (0: none)
    bool own_bound = false;        // an operator gave it its own
  };
  [[nodiscard]] boost::asio::awaitable<boost::system::result<quota_view>> quota(core::user_id owner);
  // Gives `owner` its own bound (0: none; nullopt: back to the default); the quota after it.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<quota_view>> set_max_tokens(
      core::user_id owner, std::optional<std::uint64_t> max_tokens);
  // The bound of owners without their own (0: none), passed on to the store. Call at start-up,
  // before the service is used from several threads.
  void set_default_max_tokens(std::uint64_t max_tokens);
  [[nodiscard]] std::uint64_t default_max_tokens() const noexcept { return default_max_tokens_; }
  // The key that signs list cursors (the store's: the same in every process and across restarts).
  [[nodiscard]] std::array<std::uint8_t, 32> cursor_secret() const { return store_.cursor_secret(); }

  // core::errc::not_found unless `ref` names one of its owner's tokens. The key has left the cache on
  // success.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> remove(storage::token_ref ref);

  struct rolled {
    created fresh;  // the new key, shown once
    std::uint64_t old_id = 0;
    std::int64_t old_expires_at = 0;
  };
  // Replaces `old` by a new key (same owner, type, description) expiring at `expires_at` (0: never);
  // the old key keeps working for `overlap_seconds` more (0: refused at once), or less if it
  // expired earlier anyway. core::errc::not_found as for remove, or when the old key has expired.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<rolled>> roll(
      storage::token_ref old, std::int64_t expires_at, std::int64_t overlap_seconds,
      core::rate_limit_update limit = {});

  // Sets the token's own rate limit (nullopt: the default). core::errc::not_found as for remove.
  // The key leaves the cache, so its next request reads the new limit.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> set_rate_limit(
      storage::token_ref ref, std::optional<core::rate_limit> limit);

  // Call before the service is used from several threads.
  void set_rate_limits(rate_limit_settings settings);
  [[nodiscard]] const core::rate_limit& default_rate_limit() const noexcept {
    return rate_settings_.default_limit;
  }

  // Shares with the other processes of a shared store what this one admitted since the last call,
  // and applies theirs as they arrive (registered at construction). While sharing fails, this
  // process holds itself to 1/n of every limit, n being the processes heard from in the last
  // `peer_memory_seconds` (itself included); the whole limit again once sharing works. Called by a
  // timer; `done`, if any, runs on a storage thread. Also drops the buckets no longer needed.
  void share_admits(std::function<void(boost::system::error_code)> done = {});
  static constexpr std::int64_t peer_memory_seconds = 10;
  // Only drops the buckets no longer needed, for a process that does not share (its admits counted
  // for sharing are dropped too).
  void trim_rate_limits();
  // Shares that failed since start (for /metrics).
  [[nodiscard]] std::uint64_t shares_failed() const noexcept {
    return shares_failed_.load(std::memory_order_relaxed);
  }

  // The keys refused most, most first, for the operator's view (resolved to id and masked prefix
  // through the store, never showing a key).
  struct limited_key {
    core::user_id owner = 0;
    std::uint64_t id = 0;
    std::string display_prefix;
    core::rate_limit limit;
    std::uint64_t refused = 0;
    std::uint64_t admitted = 0;
  };
  [[nodiscard]] boost::asio::awaitable<boost::system::result<std::vector<limited_key>>> top_limited(
      std::size_t n);

  [[nodiscard]] const core::rate_limiter& limiter() const noexcept { return limiter_; }

  // Whether authenticate marks uses (off until turned on: nothing then accumulates for a flush that
  // never comes). Call before the service is used from several threads.
  void set_recording_uses(bool on) noexcept { recording_uses_ = on; }

  // Hands the uses marked since the last call (at most one per key per minute) to the store in one
  // write, without waiting for it. Once written, the affected owners' cached lists are dropped;
  // a failed write's uses are kept for the next call. `done`, if any, then runs on a storage thread
  // (at once, here, when there is nothing to write).
  // Called by a timer, and once more at shutdown before the store closes; never on a request's path.
  void flush_uses(std::function<void(boost::system::error_code)> done = {});

  // Removes tokens that expired more than `retention_seconds` ago, in bounded store writes (while a
  // full batch comes back); they leave the key cache and their owners' cached lists. The number
  // removed.
  [[nodiscard]] boost::asio::awaitable<boost::system::result<std::size_t>> remove_expired(
      std::int64_t retention_seconds);

  // Tokens async_remove_expired removes per write.
  static constexpr std::size_t sweep_batch = 1000;

  [[nodiscard]] const core::token_cache& cache() const noexcept { return cache_; }
  [[nodiscard]] storage::token_store& store() noexcept { return store_; }

  // Uses the store accepted, and expired tokens removed, since start (for /metrics).
  [[nodiscard]] std::uint64_t uses_recorded() const noexcept {
    return uses_recorded_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t expired_removed() const noexcept {
    return expired_removed_.load(std::memory_order_relaxed);
  }

 private:
  // A successful authentication at `now`: queues the use unless the key was marked this minute.
  void mark_used(const core::key_digest& digest, core::user_id owner, std::int64_t now);
  // Puts uses back in the queue, as far as its bound allows.
  void requeue(const std::vector<storage::key_use>& uses);
  // Takes one request of a limited key from its bucket, telling `who` the answer.
  void limit_rate(caller& who, const core::key_digest& digest, const std::optional<core::rate_limit>& own);
  // Another process's admits, from the store.
  void peer_admits(std::uint64_t sender, const std::vector<storage::admitted_requests>& counts);
  // A share's outcome: the whole limits again, or this process's share of them.
  void shared(boost::system::error_code ec);
  // The processes heard from within peer_memory_seconds of `now_ns`, forgetting the others.
  [[nodiscard]] std::size_t peers_heard(std::int64_t now_ns);
  // Counts a store operation whose completion uses this service; the destructor waits for them.
  void begin_callback();
  void end_callback();

  storage::token_store& store_;
  clock_function clock_;
  core::token_cache cache_;
  core::rate_limiter limiter_;
  rate_limit_settings rate_settings_;
  core::list_cache lists_;
  std::uint64_t default_max_tokens_ = 0;

  bool recording_uses_ = false;
  std::mutex pending_mutex_;
  std::vector<storage::key_use> pending_;  // guarded by pending_mutex_
  // A key is queued once a minute while cached; one the cache cannot hold is queued at every use,
  // so the queue is bounded: past it, uses wait for the key's next minute.
  std::size_t max_pending_;

  // The destructor waits for flushes and shares in flight, whose completions use this service.
  std::mutex flush_mutex_;
  std::condition_variable flush_done_;
  std::size_t flushes_in_flight_ = 0;  // guarded by flush_mutex_

  std::mutex peers_mutex_;
  std::unordered_map<std::uint64_t, std::int64_t> peers_;  // sender -> when last heard (ns); guarded

  std::atomic<std::uint64_t> uses_recorded_{0};
  std::atomic<std::uint64_t> expired_removed_{0};
  std::atomic<std::uint64_t> shares_failed_{0};
};

// The reference to `key` among `owner`'s tokens, or nullopt for a malformed key (which names no
// token: callers answer it as not found).
[[nodiscard]] std::optional<storage::token_ref> token_ref_of_key(core::user_id owner, std::string_view key);

}  // namespace tokend::server
