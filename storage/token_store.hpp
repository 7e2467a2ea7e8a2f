// The storage interface every backend implements: the RocksDB store (one process), the PostgreSQL
// store (shared by several processes), and the in-memory and fault-injecting stores of the tests.
//
// All operations are asynchronous: they return at once and call their handler later, on a storage
// thread. Callers must re-dispatch to their own executor. Nothing here may block the caller.
#pragma once

#include "core/error.hpp"
#include "core/key.hpp"
#include "core/token.hpp"

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tokend::storage {

struct list_page {
  std::vector<core::token_record> tokens;  // creation order
  bool has_more = false;                   // more tokens follow this page
};

// What authenticating a key needs to know of it. An expired key is still found: whether it is
// refused depends on the caller's clock, which the store does not share.
struct key_info {
  core::user_id owner = 0;
  bool operator_key = false;
  std::int64_t expires_at = 0;                   // 0: never
  std::optional<core::rate_limit> rate_limit{};  // the key's own; nullopt: the server's default
  std::uint64_t id = 0;
  std::string display_prefix{};  // for the operator's view of limited keys, which never shows a key
};

// One of `owner`'s tokens: by its key's digest (the caller holds the key) or by the id a list
// shows. A token of another owner is never reached through it.
struct token_ref {
  core::user_id owner = 0;
  std::variant<core::key_digest, std::uint64_t> which;
};

// Replaces a token by a new key with the same owner, type and description, in one atomic write.
struct roll_request {
  token_ref old;
  core::key_digest digest{};             // the new key's
  std::string display_prefix;            // the new key's
  std::int64_t now = 0;                  // the new key's created_at; an old key expired by then is not found
  std::int64_t expires_at = 0;           // the new key's; 0: never
  std::int64_t old_expires_at = 0;       // the old key then expires at the earlier of its own and this
  core::rate_limit_update rate_limit{};  // the new key's own limit: the old key's unless replaced
};

struct rolled_token {
  core::token_record fresh;  // the new key's record, id included
  core::key_digest old_digest{};
  std::uint64_t old_id = 0;
  std::int64_t old_expires_at = 0;  // what the old key's expiry now is
};

// A key was used during the minute starting at `minute` (Unix seconds, a multiple of 60).
struct key_use {
  core::key_digest digest{};
  core::user_id owner = 0;
  std::int64_t minute = 0;
};

struct removed_token {
  core::user_id owner = 0;
  core::key_digest digest{};
};

// Requests one process admitted under a key's rate limit since it last shared its counts.
struct admitted_requests {
  std::uint64_t tag = 0;  // core::key_tag of the key's digest
  std::uint32_t count = 0;
};

// How many tokens an owner holds, and the bound an operator gave it.
struct token_quota {
  std::uint64_t tokens = 0;
  std::optional<std::uint64_t> max_tokens{};  // the owner's own bound (0: none); nullopt: the default
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
  using lookup_handler = std::function<void(boost::system::result<std::optional<key_info>>)>;
  using create_handler = std::function<void(boost::system::result<std::uint64_t>)>;  // the new id
  using write_handler = std::function<void(boost::system::error_code)>;
  using remove_handler = std::function<void(boost::system::result<core::key_digest>)>;  // the removed key
  using roll_handler = std::function<void(boost::system::result<rolled_token>)>;
  using sweep_handler = std::function<void(boost::system::result<std::vector<removed_token>>)>;
  using list_handler = std::function<void(boost::system::result<list_page>)>;
  using quota_handler = std::function<void(boost::system::result<token_quota>)>;
  using peer_admits_handler =
      std::function<void(std::uint64_t sender, const std::vector<admitted_requests>&)>;

  virtual ~token_store() = default;

  // The key with this digest, or nullopt when no such key exists (expired keys are found).
  virtual void async_lookup(const core::key_digest& digest, lookup_handler handler) = 0;

  // Stores the record (its id is ignored) and answers the id it was given; success only once the
  // record is durable. Errors: core::errc::quota_exceeded when the owner already holds its bound of
  // tokens (its own, else the default of set_default_max_tokens; nothing is stored, and concurrent
  // creates never overshoot it, also across processes), core::errc::overloaded (queue full),
  // core::errc::unavailable (store failing/closed).
  virtual void async_create(core::token_record record, create_handler handler) = 0;

  // Tokens of `owner` in creation order, skipping `offset`, at most `limit`, with their expiry and
  // last use; expired tokens are listed until async_remove_expired removes them.
  virtual void async_list(core::user_id owner, std::size_t offset, std::size_t limit,
                          list_handler handler) = 0;

  // NOLINTBEGIN(performance-unnecessary-value-param): the stubs below take sinks, which stores move
  // Tokens of `owner` with an id above `after_id` (0: from the first), in id order, which is
  // creation order, at most `limit`: a seek to the position, so a page costs the same at any depth.
  // has_more as for async_list.
  virtual void async_list_after(core::user_id owner, std::uint64_t after_id, std::size_t limit,
                                list_handler handler) {
    (void)owner, (void)after_id, (void)limit;
    handler(core::make_error_code(core::errc::internal));
  }

  // How many tokens `owner` holds and its own bound, if an operator gave it one.
  virtual void async_quota(core::user_id owner, quota_handler handler) {
    (void)owner;
    handler(core::make_error_code(core::errc::internal));
  }

  // Gives `owner` a bound of its own (0: none; nullopt: back to the default) and answers the
  // quota after it. Success only once durable. A lower bound than the tokens held stores nothing
  // less: those tokens stay, and creates are refused until deletes bring the count under it.
  virtual void async_set_max_tokens(core::user_id owner, std::optional<std::uint64_t> max_tokens,
                                    quota_handler handler) {
    (void)owner, (void)max_tokens;
    handler(core::make_error_code(core::errc::internal));
  }
  // NOLINTEND(performance-unnecessary-value-param)

  // The bound async_create holds an owner without one of its own to; 0 (the initial value): none.
  // Called at start-up, before the first create.
  virtual void set_default_max_tokens(std::uint64_t max_tokens) { (void)max_tokens; }

  // The key that signs list cursors: the same in every process of the store and across restarts
  // (kept in the store, made when it is first opened), random for a store that dies with its
  // process.
  [[nodiscard]] virtual std::array<std::uint8_t, 32> cursor_secret() const { return {}; }

  // Deletes the token and answers its digest; core::errc::not_found when `ref.owner` has no such
  // token (whether or not another owner does). Success only once the delete is durable.
  virtual void async_remove(token_ref ref, remove_handler handler) = 0;

  // See roll_request. core::errc::not_found as for async_remove, or when the old key has expired.
  // Success only once durable; on a shared store, other processes drop the old key from their
  // caches as after a delete (on_revoked), so they read its new expiry.
  virtual void async_roll(roll_request request, roll_handler handler) = 0;

  // Sets the token's own rate limit (nullopt: back to the server's default) and answers its digest;
  // core::errc::not_found as for async_remove. Success only once durable; on a shared store, other
  // processes drop the key from their caches as after a delete (on_revoked), so they read the new
  // limit.
  virtual void async_set_rate_limit(token_ref ref, std::optional<core::rate_limit> limit,
                                    remove_handler handler) = 0;

  // Records uses: a token's last_used_at becomes the latest of its own and the use's minute (the
  // latest use wins, whichever process records it first). Uses of tokens gone are ignored.
  virtual void async_record_uses(std::vector<key_use> uses, write_handler handler) = 0;

  // Deletes at most `limit` tokens that expired before `cutoff` (expires_at != 0 and < cutoff),
  // oldest expiry first, and answers which. Each call is one bounded write, so a caller sweeping a
  // backlog calls again while the answer is full, and service never pauses.
  virtual void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) = 0;

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

  // A shared store: sends the counts this process admitted to every other process of the store
  // (never back to this one), at most once per call, without storing them. The handler's error
  // says they may not have reached the others, or that this process is not hearing theirs: the
  // caller then holds itself to its share of each limit. A store that is not shared answers success
  // at once and sends nothing.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): a sink, which shared stores move
  virtual void async_share_admits(std::vector<admitted_requests> counts, write_handler handler) {
    (void)counts;
    handler({});
  }

  // Registers the one callback told of the counts every other process shares, with an id of that
  // process (stable while it runs). Runs on a storage thread; must be quick and not throw.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): a sink, which shared stores move
  virtual void on_peer_admits(peer_admits_handler callback) { (void)callback; }

  // Blocking: refuses new operations with core::errc::unavailable from now on, finishes the queued
  // writes and waits for in-flight handlers. Idempotent.
  virtual void close() = 0;
};

}  // namespace tokend::storage
