// token_service: cache-first key validation and the storage round trips of create/list/delete.
#include "server/token_service.hpp"

#include "core/error.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

namespace tokend::server {
namespace net = boost::asio;
using boost::system::error_code;
using boost::system::result;

namespace {

// Starts a storage operation with a callback and suspends the coroutine until the callback runs;
// the coroutine resumes on its own executor, never on the storage thread that called back.
// The value travels in a wrapper so that an error_code is returned, not thrown, by use_awaitable.
// Deliberately not a coroutine itself (see docs/ARCHITECTURE.md#coroutine-rules).
template <class Value>
struct carried {
  Value value;
};

template <class Value, class Start>
net::awaitable<carried<Value>> on_store(Start start) {
  return net::async_initiate<decltype(net::use_awaitable), void(carried<Value>)>(
      [start = std::move(start)](auto handler) mutable {
        using handler_type = decltype(handler);
        // std::function needs a copyable callable; the awaitable handler is move-only.
        auto shared = std::make_shared<handler_type>(std::move(handler));
        start([shared](Value v) {
          auto ex = net::get_associated_executor(*shared);
          net::post(ex, [shared, v = std::move(v)]() mutable { (*shared)(carried<Value>{std::move(v)}); });
        });
      },
      net::use_awaitable);
}

}  // namespace

std::int64_t system_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
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
      lists_(store.shared() ? 0 : list_cache_records) {
  // Deletes made by any process (a shared store) leave this cache; erase() also drops any fill
  // that read the key before the delete, so the key cannot come back.
  store_.on_revoked([this](const core::key_digest& digest) { cache_.erase(digest); });
}

token_service::~token_service() { store_.on_revoked({}); }

net::awaitable<result<caller>> token_service::authenticate(std::string_view key) {
  if (!core::is_well_formed_key(key)) co_return core::errc::unauthorized;
  const core::key_digest digest = core::digest_key(key);
  if (auto hit = cache_.find(digest)) {
    if (!hit->known || core::expired(hit->expires_at, now())) co_return core::errc::unauthorized;
    co_return caller{hit->owner, hit->operator_key};
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
  cache_.fill(digest, ticket, {true, info->owner, info->expires_at, info->operator_key});
  if (core::expired(info->expires_at, now())) co_return core::errc::unauthorized;
  co_return caller{info->owner, info->operator_key};
}

net::awaitable<result<token_service::created>> token_service::create(core::user_id owner,
                                                                     std::string description,
                                                                     std::string type,
                                                                     std::int64_t expires_at) {
  created out;
  out.key = core::generate_key();
  out.record =
      core::make_token_record(out.key, owner, std::move(description), std::move(type), now(), expires_at);
  // Captured by reference, not by init-capture (see docs/ARCHITECTURE.md#coroutine-rules).
  core::token_record to_store = out.record;
  const auto id =
      (co_await on_store<result<std::uint64_t>>([this, &to_store](storage::token_store::create_handler done) {
        store_.async_create(std::move(to_store), std::move(done));
      })).value;
  if (!id) co_return id.error();
  out.record.id = *id;
  cache_.insert_known(out.record.digest,
                      {true, owner, out.record.expires_at, out.record.type == core::operator_type});
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
        store_.async_remove(std::move(ref), std::move(done));
      })).value;
  if (!removed) co_return removed.error();
  cache_.erase(*removed);
  lists_.invalidate(owner);
  co_return error_code{};
}

net::awaitable<result<token_service::rolled>> token_service::roll(storage::token_ref old,
                                                                  std::int64_t expires_at,
                                                                  std::int64_t overlap_seconds) {
  const core::user_id owner = old.owner;
  rolled out;
  out.fresh.key = core::generate_key();
  storage::roll_request request;
  request.old = std::move(old);
  request.digest = core::digest_key(out.fresh.key);
  request.display_prefix = out.fresh.key.substr(0, core::display_prefix_length);
  request.now = now();
  request.expires_at = expires_at;
  request.old_expires_at = request.now + std::max<std::int64_t>(overlap_seconds, 0);
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
  cache_.insert_known(out.fresh.record.digest, {true, owner, out.fresh.record.expires_at,
                                                out.fresh.record.type == core::operator_type});
  lists_.invalidate(owner);
  co_return out;
}

void token_service::flush_uses() {}  // STUB: uses are not marked yet

net::awaitable<result<std::size_t>> token_service::remove_expired(std::int64_t retention_seconds) {
  (void)retention_seconds;  // STUB
  co_return std::size_t{0};
}

}  // namespace tokend::server
