// token_service: lists by cursor, and the per-user bound on tokens.
#include "server/token_service.hpp"

#include "server/store_await.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace tokend::server {
namespace net = boost::asio;
using boost::system::result;

namespace {

token_service::quota_view view_of(const storage::token_quota& q, std::uint64_t default_max_tokens) {
  return {q.tokens, q.max_tokens.value_or(default_max_tokens), q.max_tokens.has_value()};
}

}  // namespace

net::awaitable<result<storage::list_page>> token_service::list_after(core::user_id owner,
                                                                     std::uint64_t after_id,
                                                                     std::size_t limit) {
  if (const auto cached = lists_.find(owner)) {
    // A cached list is in id order, as the store's: the first token past the cursor is found by
    // bisection, the page then copied.
    const auto begin =
        std::upper_bound(cached->begin(), cached->end(), after_id,
                         [](std::uint64_t id, const core::token_record& r) { return id < r.id; });
    const auto room = static_cast<std::size_t>(cached->end() - begin);
    const auto end = begin + static_cast<std::ptrdiff_t>(std::min(limit, room));
    storage::list_page page;
    page.tokens.assign(begin, end);
    page.has_more = end != cached->end();
    co_return page;
  }
  const auto ticket = lists_.ticket(owner);
  auto page = (co_await on_store<result<storage::list_page>>([this, owner, after_id, limit](
                                                                 storage::token_store::list_handler done) {
                store_.async_list_after(owner, after_id, limit, std::move(done));
              })).value;
  // From the first token with nothing after it: the user's whole list, as list() keeps it.
  if (page && after_id == 0 && !page->has_more) lists_.fill(owner, ticket, page->tokens);
  co_return page;
}

net::awaitable<result<token_service::quota_view>> token_service::quota(core::user_id owner) {
  const auto q =
      (co_await on_store<result<storage::token_quota>>([this,
                                                        owner](storage::token_store::quota_handler done) {
        store_.async_quota(owner, std::move(done));
      })).value;
  if (!q) co_return q.error();
  co_return view_of(*q, default_max_tokens_);
}

net::awaitable<result<token_service::quota_view>> token_service::set_max_tokens(
    core::user_id owner, std::optional<std::uint64_t> max_tokens) {
  const auto q =
      (co_await on_store<result<storage::token_quota>>([this, owner, max_tokens](
                                                           storage::token_store::quota_handler done) {
        store_.async_set_max_tokens(owner, max_tokens, std::move(done));
      })).value;
  if (!q) co_return q.error();
  co_return view_of(*q, default_max_tokens_);
}

void token_service::set_default_max_tokens(std::uint64_t max_tokens) {
  default_max_tokens_ = max_tokens;
  store_.set_default_max_tokens(max_tokens);
}

}  // namespace tokend::server
