// token_service: cache-first key validation and the storage round trips of create/list/delete.
#include "server/token_service.hpp"

#include "core/error.hpp"
#include "server/store_await.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace tokend::server {
namespace net = boost::asio;
using boost::system::error_code;
using boost::system::result;

namespace {

// The minute a use at `now` (Unix seconds) falls in, as the cache's markers count it: never 0,
// which means "unmarked".
[[nodiscard]] std::uint32_t minute_of(std::int64_t now) noexcept {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(now / 60, 1, UINT32_MAX));
}

// Room in the use queue whatever the cache's size.
constexpr std::size_t min_pending_bound = 1024;

}  // namespace

std::int64_t system_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t steady_nanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::optional<storage::token_ref> token_ref_of_key(core::user_id owner, std::string_view key) {
  if (!core::is_well_formed_key(key)) return std::nullopt;
  return storage::token_ref{owner, core::digest_key(key)};
}

token_service::token_service(storage::token_store& store, std::size_t cache_capacity,
                             std::size_t list_cache_records, clock_function clock)
    // A shared store is written by other processes too, which this list cache would never see.
    : store_(store),
      clock_(std::move(clock)),
      cache_(cache_capacity),
      limiter_(cache_capacity),
      lists_(store.shared() ? 0 : list_cache_records),
      max_pending_(std::max<std::size_t>(2 * cache_capacity, min_pending_bound)) {
  // Deletes made by any process (a shared store) leave this cache; erase() also drops any fill
  // that read the key before the delete, so the key cannot come back.
  store_.on_revoked([this](const core::key_digest& digest) { cache_.erase(digest); });
  // Other processes' admits debit this one's buckets.
  store_.on_peer_admits([this](std::uint64_t sender, const std::vector<storage::admitted_requests>& counts) {
    peer_admits(sender, counts);
  });
}

token_service::~token_service() {
  store_.on_revoked({});
  store_.on_peer_admits({});
  std::unique_lock lock(flush_mutex_);
  flush_done_.wait(lock, [this] { return flushes_in_flight_ == 0; });
}

net::awaitable<result<caller>> token_service::authenticate(std::string_view key) {
  if (!core::is_well_formed_key(key)) co_return core::errc::unauthorized;
  const core::key_digest digest = core::digest_key(key);
  if (auto hit = cache_.find(digest)) {
    if (!hit->known) co_return core::errc::unauthorized;
    const std::int64_t at = now();
    if (core::expired(hit->expires_at, at)) co_return core::errc::unauthorized;
    // Already marked this minute, the common case: nothing more than the marker's load in find().
    if (recording_uses_ && hit->used_minute < minute_of(at)) mark_used(digest, hit->owner, at);
    caller who{hit->owner, hit->operator_key, std::nullopt};
    limit_rate(who, digest, hit->own_limit);
    co_return who;
  }
  const auto ticket = cache_.ticket(digest);
  auto found = (co_await on_store<result<std::optional<storage::key_info>>>(
                    [this, digest](storage::token_store::lookup_handler done) {
                      store_.async_lookup(digest, std::move(done));
                    }))
                   .value;
  if (!found) co_return core::errc::unavailable;
  const std::optional<storage::key_info>& info = *found;
  if (!info) {
    cache_.fill(digest, ticket, {});
    co_return core::errc::unauthorized;
  }
  cache_.fill(digest, ticket, {true, info->owner, info->expires_at, info->operator_key, 0, info->rate_limit});
  const std::int64_t at = now();
  if (core::expired(info->expires_at, at)) co_return core::errc::unauthorized;
  if (recording_uses_) mark_used(digest, info->owner, at);
  caller who{info->owner, info->operator_key, std::nullopt};
  limit_rate(who, digest, info->rate_limit);
  co_return who;
}

void token_service::limit_rate(caller& who, const core::key_digest& digest,
                               const std::optional<core::rate_limit>& own) {
  const core::rate_limit limit = core::effective_rate_limit(own, rate_settings_.default_limit);
  // An unlimited key, the common case, costs this branch and nothing else.
  if (limit.unlimited()) return;
  who.rate = rate_state{limit, limiter_.admit(digest, who.user, limit, rate_settings_.clock())};
}

void token_service::mark_used(const core::key_digest& digest, core::user_id owner, std::int64_t now) {
  const std::uint32_t minute = minute_of(now);
  // A key the cache does not hold (evicted, or a fill dropped) is queued all the same.
  if (cache_.mark_used(digest, minute) == core::token_cache::use_mark::repeat) return;
  const std::lock_guard lock(pending_mutex_);
  if (pending_.size() < max_pending_) pending_.push_back({digest, owner, std::int64_t{minute} * 60});
}

net::awaitable<result<token_service::created>> token_service::create(core::user_id owner,
                                                                     std::string description,
                                                                     std::string type,
                                                                     std::int64_t expires_at,
                                                                     std::optional<core::rate_limit> limit) {
  created out;
  out.key = core::generate_key();
  out.record = core::make_token_record(out.key, owner, std::move(description), std::move(type), now(),
                                       expires_at, limit);
  // Captured by reference, not by init-capture (see docs/ARCHITECTURE.md#coroutine-rules).
  core::token_record to_store = out.record;
  const auto id =
      (co_await on_store<result<std::uint64_t>>([this, &to_store](storage::token_store::create_handler done) {
        store_.async_create(std::move(to_store), std::move(done));
      })).value;
  if (!id) co_return id.error();
  out.record.id = *id;
  cache_.insert_known(out.record.digest, {true, owner, out.record.expires_at,
                                          out.record.type == core::operator_type, 0, out.record.rate_limit});
  lists_.invalidate(owner);
  co_return out;
}

net::awaitable<result<storage::list_page>> token_service::list(core::user_id owner, std::size_t offset,
                                                               std::size_t limit) {
  if (const auto cached = lists_.find(owner)) {
    storage::list_page page;
    const std::size_t begin = std::min(offset, cached->size());
    const std::size_t end = begin + std::min(limit, cached->size() - begin);
    page.tokens.assign(cached->begin() + static_cast<std::ptrdiff_t>(begin),
                       cached->begin() + static_cast<std::ptrdiff_t>(end));
    page.has_more = end < cached->size();
    co_return page;
  }
  const auto ticket = lists_.ticket(owner);
  auto page = (co_await on_store<result<storage::list_page>>([this, owner, offset, limit](
                                                                 storage::token_store::list_handler done) {
                store_.async_list(owner, offset, limit, std::move(done));
              })).value;
  // A first page with nothing after it is the user's whole list.
  if (page && offset == 0 && !page->has_more) lists_.fill(owner, ticket, page->tokens);
  co_return page;
}

net::awaitable<error_code> token_service::remove(storage::token_ref ref) {
  const core::user_id owner = ref.owner;
  const auto removed =
      (co_await on_store<result<core::key_digest>>([this, &ref](storage::token_store::remove_handler done) {
        store_.async_remove(ref, std::move(done));
      })).value;
  if (!removed) co_return removed.error();
  cache_.erase(*removed);
  lists_.invalidate(owner);
  co_return error_code{};
}

net::awaitable<error_code> token_service::set_rate_limit(storage::token_ref ref,
                                                         std::optional<core::rate_limit> limit) {
  const core::user_id owner = ref.owner;
  const auto changed =
      (co_await on_store<result<core::key_digest>>([this, &ref,
                                                    &limit](storage::token_store::remove_handler done) {
        store_.async_set_rate_limit(ref, limit, std::move(done));
      })).value;
  if (!changed) co_return changed.error();
  // Its next request reads the new limit; the bucket re-scales to it without refilling.
  cache_.erase(*changed);
  lists_.invalidate(owner);  // they show the limit
  co_return error_code{};
}

net::awaitable<result<token_service::rolled>> token_service::roll(storage::token_ref old,
                                                                  std::int64_t expires_at,
                                                                  std::int64_t overlap_seconds,
                                                                  core::rate_limit_update limit) {
  const core::user_id owner = old.owner;
  rolled out;
  out.fresh.key = core::generate_key();
  storage::roll_request request;
  request.old = old;
  request.digest = core::digest_key(out.fresh.key);
  request.display_prefix = out.fresh.key.substr(0, core::display_prefix_length);
  request.now = now();
  request.expires_at = expires_at;
  request.old_expires_at = request.now + std::max<std::int64_t>(overlap_seconds, 0);
  request.rate_limit = limit;
  auto done =
      (co_await on_store<result<storage::rolled_token>>([this, &request](
                                                            storage::token_store::roll_handler handler) {
        store_.async_roll(std::move(request), std::move(handler));
      })).value;
  if (!done) co_return done.error();
  // The old key's cached expiry is out of date: its next use reads the new one from the store.
  cache_.erase(done->old_digest);
  out.fresh.record = std::move(done->fresh);
  out.old_id = done->old_id;
  out.old_expires_at = done->old_expires_at;
  cache_.insert_known(out.fresh.record.digest,
                      {true, owner, out.fresh.record.expires_at, out.fresh.record.type == core::operator_type,
                       0, out.fresh.record.rate_limit});
  lists_.invalidate(owner);
  co_return out;
}

void token_service::flush_uses(std::function<void(error_code)> done) {
  std::vector<storage::key_use> uses;
  {
    const std::lock_guard lock(pending_mutex_);
    uses.swap(pending_);
  }
  if (uses.empty()) {
    if (done) done({});
    return;
  }
  // The write takes the uses; a copy stays here in case it fails, with the owners to invalidate.
  struct in_flight {
    std::vector<storage::key_use> uses;
    std::vector<core::user_id> owners;
  };
  auto flight = std::make_shared<in_flight>();
  flight->uses = uses;
  flight->owners.reserve(uses.size());
  for (const storage::key_use& use : uses) flight->owners.push_back(use.owner);
  std::sort(flight->owners.begin(), flight->owners.end());
  flight->owners.erase(std::unique(flight->owners.begin(), flight->owners.end()), flight->owners.end());
  auto written = [this, flight, done = std::move(done)](error_code ec) {
    if (ec) {
      requeue(flight->uses);
    } else {
      uses_recorded_.fetch_add(flight->uses.size(), std::memory_order_relaxed);
      for (const core::user_id owner : flight->owners) lists_.invalidate(owner);  // they show the uses now
    }
    if (done) done(ec);
    end_callback();  // last: the destructor may run from then on
  };
  begin_callback();
  try {
    store_.async_record_uses(std::move(uses), std::move(written));
  } catch (...) {
    end_callback();  // not started: nothing will call back
    throw;
  }
}

void token_service::begin_callback() {
  const std::lock_guard lock(flush_mutex_);
  ++flushes_in_flight_;
}

void token_service::end_callback() {
  const std::lock_guard lock(flush_mutex_);
  --flushes_in_flight_;
  flush_done_.notify_all();
}

void token_service::requeue(const std::vector<storage::key_use>& uses) {
  const std::lock_guard lock(pending_mutex_);
  const std::size_t room = max_pending_ - std::min(max_pending_, pending_.size());
  pending_.insert(pending_.end(), uses.begin(),
                  uses.begin() + static_cast<std::ptrdiff_t>(std::min(room, uses.size())));
}

net::awaitable<result<std::size_t>> token_service::remove_expired(std::int64_t retention_seconds) {
  const std::int64_t cutoff = now() - std::max<std::int64_t>(retention_seconds, 0);
  std::size_t total = 0;
  for (;;) {
    auto removed = (co_await on_store<result<std::vector<storage::removed_token>>>(
                        [this, cutoff](storage::token_store::sweep_handler done) {
                          store_.async_remove_expired(cutoff, sweep_batch, std::move(done));
                        }))
                       .value;
    if (!removed) co_return removed.error();
    for (const storage::removed_token& token : *removed) {
      cache_.erase(token.digest);
      lists_.invalidate(token.owner);
    }
    total += removed->size();
    expired_removed_.fetch_add(removed->size(), std::memory_order_relaxed);
    // A short batch: nothing expired before the cutoff is left.
    if (removed->size() < sweep_batch) break;
  }
  co_return total;
}

}  // namespace tokend::server
