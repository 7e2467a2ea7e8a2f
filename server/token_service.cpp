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

token_service::token_service(storage::token_store& store, std::size_t cache_capacity,
                             std::size_t list_cache_records)
    // A shared store is written by other processes too, which this list cache would never see.
    : store_(store), cache_(cache_capacity), lists_(store.shared() ? 0 : list_cache_records) {
  // Deletes made by any process (a shared store) leave this cache; erase() also drops any fill
  // that read the key before the delete, so the key cannot come back.
  store_.on_revoked([this](const core::key_digest& digest) { cache_.erase(digest); });
}

token_service::~token_service() { store_.on_revoked({}); }

net::awaitable<result<core::user_id>> token_service::authenticate(std::string_view key) {
  if (!core::is_well_formed_key(key)) co_return core::errc::unauthorized;
  const core::key_digest digest = core::digest_key(key);
  if (auto hit = cache_.find(digest)) {
    if (hit->known) co_return hit->owner;
    co_return core::errc::unauthorized;
  }
  const auto ticket = cache_.ticket(digest);
  auto found = (co_await on_store<result<std::optional<core::user_id>>>(
                    [this, digest](storage::token_store::lookup_handler done) {
                      store_.async_lookup(digest, std::move(done));
                    }))
                   .value;
  if (!found) co_return core::errc::unavailable;
  const std::optional<core::user_id>& owner = *found;
  if (!owner) {
    cache_.fill(digest, ticket, {false, 0});
    co_return core::errc::unauthorized;
  }
  cache_.fill(digest, ticket, {true, *owner});
  co_return *owner;
}

net::awaitable<result<token_service::created>> token_service::create(core::user_id owner,
                                                                     std::string description,
                                                                     std::string type) {
  created out;
  out.key = core::generate_key();
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  out.record = core::make_token_record(out.key, owner, std::move(description), std::move(type),
                                       std::chrono::duration_cast<std::chrono::seconds>(now).count());
  // Captured by reference, not by init-capture (see docs/ARCHITECTURE.md#coroutine-rules).
  core::token_record to_store = out.record;
  const error_code ec =
      (co_await on_store<error_code>([this, &to_store](storage::token_store::write_handler done) {
        store_.async_create(std::move(to_store), std::move(done));
      })).value;
  if (ec) co_return ec;
  cache_.insert_known(out.record.digest, owner);
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

net::awaitable<error_code> token_service::remove(core::user_id owner, std::string_view key) {
  if (!core::is_well_formed_key(key)) co_return core::errc::not_found;
  const core::key_digest digest = core::digest_key(key);
  const error_code ec =
      (co_await on_store<error_code>([this, owner, digest](storage::token_store::write_handler done) {
        store_.async_remove(owner, digest, std::move(done));
      })).value;
  if (!ec) {
    cache_.erase(digest);
    lists_.invalidate(owner);
  }
  co_return ec;
}

}  // namespace tokend::server
