// The worker's per-owner bounds: how many tokens an owner holds (kept by the tokens table's
// triggers, see postgres_schema.sql) and the bound an operator gives it.
#include "storage/postgres_worker.hpp"

#include "storage/pg_text.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tokend::storage::pg {
namespace {

namespace net = boost::asio;

[[nodiscard]] boost::system::error_code error(core::errc e) noexcept { return core::make_error_code(e); }

// The quota of a "quota" or "set_max_tokens" reply: one row (count, own bound or NULL), or none for
// an owner that never held a token nor had a bound.
[[nodiscard]] boost::system::result<token_quota> parse_quota(const reply& r) {
  token_quota q;
  if (r.rows() == 0) return q;
  std::int64_t tokens = 0;
  if (r.rows() != 1 || !parse_integer(r.cell(0, 0), tokens)) return error(core::errc::internal);
  q.tokens = static_cast<std::uint64_t>(std::max<std::int64_t>(tokens, 0));
  if (const std::string_view own = r.cell(0, 1); !own.empty()) {  // NULL reads as empty
    std::int64_t bound = 0;
    if (!parse_integer(own, bound) || bound < 0) return error(core::errc::internal);
    q.max_tokens = static_cast<std::uint64_t>(bound);
  }
  return q;
}

}  // namespace

net::awaitable<void> worker::run_quota() {
  auto& j = std::get<quota_job>(batch.front());
  const std::vector<std::string> params{owner_text(j.owner)};
  const reply r = co_await conn.exec_prepared("quota", params);
  if (!r.ok()) {
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  answer(j.handler, parse_quota(r));
}

net::awaitable<void> worker::run_set_max_tokens() {
  auto& j = std::get<set_max_tokens_job>(batch.front());
  const std::vector<std::string> params{owner_text(j.owner), j.max_tokens ? bound_text(*j.max_tokens) : ""};
  const reply r = co_await conn.exec_prepared("set_max_tokens", params);
  if (!r.ok()) {
    counters_.count_failure();
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  counters_.count_batch(1);
  answer(j.handler, parse_quota(r));
}

}  // namespace tokend::storage::pg
