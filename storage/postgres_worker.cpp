// The running of a batch of jobs on one connection: the lookups, creates, uses, sweeps, pages and
// shared counts (the changes to one token are in postgres_worker_changes.cpp, the per-owner bounds
// in postgres_worker_quota.cpp, the statements in postgres_statements.cpp).
#include "storage/postgres_worker.hpp"

#include "storage/pg_text.hpp"
#include "storage/postgres_rate_cells.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

namespace tokend::storage::pg {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

[[nodiscard]] bool storable(const core::token_record& r) noexcept {
  // PostgreSQL text cannot hold NUL (valid UTF-8, so a description may contain it).
  const auto clean = [](const std::string& s) { return s.find('\0') == std::string::npos; };
  return clean(r.display_prefix) && clean(r.description) && clean(r.type);
}

// Answers a page of the "list" or "list_after" statement, asked for `limit` tokens and one more.
void answer_page(token_store::list_handler& handler, const reply& r, std::size_t limit) {
  list_page page;
  const std::size_t n = static_cast<std::size_t>(r.rows());
  page.has_more = n > limit;
  page.tokens.reserve(std::min(n, limit));
  for (std::size_t row = 0; row < std::min(n, limit); ++row) {
    const int i = static_cast<int>(row);
    core::token_record t;
    const auto digest = parse_digest_hex(r.cell(i, 0));
    std::int64_t id = 0;
    if (!digest || !parse_integer(r.cell(i, 4), t.created_at) || !parse_owner(r.cell(i, 5), t.owner) ||
        !parse_integer(r.cell(i, 6), t.expires_at) || !parse_integer(r.cell(i, 7), t.last_used_at) ||
        !parse_integer(r.cell(i, 8), id) || !parse_rate_limit(r, i, 9, t.rate_limit)) {
      answer(handler, error(core::errc::internal));
      return;
    }
    t.digest = *digest;
    t.display_prefix = r.cell(i, 1);
    t.description = r.cell(i, 2);
    t.type = r.cell(i, 3);
    t.id = static_cast<std::uint64_t>(id);
    page.tokens.push_back(std::move(t));
  }
  answer(handler, std::move(page));
}

// Calls f with each typed job of the batch (all of type Job).
template <class Job, class F>
void each(std::vector<job>& batch, F f) {
  for (auto& j : batch) f(std::get<Job>(j));
}

}  // namespace

worker::worker(net::io_context& ioc, const postgres_options& options, const postgres_names& names,
               batch_counters& counters, const std::atomic<std::uint64_t>& default_max_tokens)
    : conn(ioc),
      backoff(ioc),
      options_(options),
      names_(names),
      counters_(counters),
      default_max_tokens_(default_max_tokens) {
  conn.set_command_timeout(options.command_timeout);
}

net::awaitable<void> worker::run() {
  // Each job type has its statement; the first job's type is the batch's.
  co_await std::visit(
      [this](const auto& first) {
        using type = std::decay_t<decltype(first)>;
        if constexpr (std::is_same_v<type, lookup_job>) {
          return run_lookups();
        } else if constexpr (std::is_same_v<type, create_job>) {
          return run_creates();
        } else if constexpr (std::is_same_v<type, remove_job>) {
          return run_remove();
        } else if constexpr (std::is_same_v<type, list_job>) {
          return run_list();
        } else if constexpr (std::is_same_v<type, list_after_job>) {
          return run_list_after();
        } else if constexpr (std::is_same_v<type, quota_job>) {
          return run_quota();
        } else if constexpr (std::is_same_v<type, set_max_tokens_job>) {
          return run_set_max_tokens();
        } else if constexpr (std::is_same_v<type, roll_job>) {
          return run_roll();
        } else if constexpr (std::is_same_v<type, set_rate_limit_job>) {
          return run_set_rate_limit();
        } else if constexpr (std::is_same_v<type, record_uses_job>) {
          return run_record_uses();
        } else if constexpr (std::is_same_v<type, remove_expired_job>) {
          return run_remove_expired();
        } else if constexpr (std::is_same_v<type, share_admits_job>) {
          return run_share_admits();
        } else {
          static_assert(std::is_same_v<type, empty_job>);
          return run_empty();
        }
      },
      batch.front());
}

net::awaitable<void> worker::run_lookups() {
  array_builder digests;
  each<lookup_job>(batch, [&](const lookup_job& j) { digests.add(bytea_text(j.digest)); });
  const std::vector<std::string> params{digests.str()};
  const reply r = co_await conn.exec_prepared("lookup", params);
  if (!r.ok()) {
    for (auto& j : batch) fail(j, core::errc::unavailable);
    co_return;
  }
  std::unordered_map<core::key_digest, key_info, core::key_digest_hash> found;
  for (int row = 0; row < r.rows(); ++row) {
    const auto digest = parse_digest_hex(r.cell(row, 0));
    key_info info;
    info.operator_key = r.cell(row, 2) == "t";
    std::int64_t id = 0;
    if (digest && parse_owner(r.cell(row, 1), info.owner) && parse_integer(r.cell(row, 3), info.expires_at) &&
        parse_rate_limit(r, row, 4, info.rate_limit) && parse_integer(r.cell(row, 7), id)) {
      info.id = static_cast<std::uint64_t>(id);
      info.display_prefix = r.cell(row, 8);
      found.emplace(*digest, std::move(info));
    }
  }
  each<lookup_job>(batch, [&](lookup_job& j) {
    const auto it = found.find(j.digest);
    answer(j.handler, it == found.end() ? std::optional<key_info>{} : std::optional<key_info>{it->second});
  });
}

net::awaitable<void> worker::run_creates() {
  std::vector<error_code> results(batch.size());
  std::unordered_set<core::key_digest, core::key_digest_hash> seen;
  std::unordered_map<core::key_digest, std::uint64_t, core::key_digest_hash> inserted;  // their ids
  array_builder digests, prefixes, descriptions, types, created, owners, expiries, limits, windows, bursts;
  std::size_t rows = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const core::token_record& r = std::get<create_job>(batch[i]).record;
    if (!storable(r)) {
      results[i] = error(core::errc::bad_request);
      continue;
    }
    // The same digest twice in one batch: a caller bug, and the second must not succeed.
    if (!seen.insert(r.digest).second) {
      results[i] = error(core::errc::internal);
      continue;
    }
    digests.add(bytea_text(r.digest));
    prefixes.add(r.display_prefix);
    descriptions.add(r.description);
    types.add(r.type);
    created.add(std::to_string(r.created_at));
    owners.add(owner_text(r.owner));
    expiries.add(std::to_string(r.expires_at));
    const rate_limit_text limit = rate_text(r.rate_limit);
    limits.add(limit.limit);
    windows.add(limit.window);
    bursts.add(limit.burst);
    ++rows;
  }
  if (rows > 0) {
    std::string bound = bound_text(default_max_tokens_.load(std::memory_order_relaxed));
    const std::vector<std::string> params{digests.str(), prefixes.str(), descriptions.str(), types.str(),
                                          created.str(), owners.str(),   expiries.str(),     limits.str(),
                                          windows.str(), bursts.str(),   std::move(bound)};
    const reply r = co_await conn.exec_prepared("create", params);
    if (!r.ok()) {
      counters_.count_failure();
      each<create_job>(batch, [](create_job& j) { answer(j.handler, error(core::errc::unavailable)); });
      co_return;
    }
    // An id of -1 answers a create its owner's bound refused.
    std::unordered_set<core::key_digest, core::key_digest_hash> refused;
    for (int row = 0; row < r.rows(); ++row) {
      std::int64_t id = 0;
      if (const auto d = parse_digest_hex(r.cell(row, 0)); d && parse_integer(r.cell(row, 1), id)) {
        if (id < 0) {
          refused.insert(*d);
        } else {
          inserted.emplace(*d, static_cast<std::uint64_t>(id));
        }
      }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      // Not inserted although sent and within the bound: the digest existed already. Never
      // overwritten.
      const core::key_digest& digest = std::get<create_job>(batch[i]).record.digest;
      if (!results[i] && !inserted.contains(digest))
        results[i] = error(refused.contains(digest) ? core::errc::quota_exceeded : core::errc::internal);
    }
  }
  counters_.count_batch(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& j = std::get<create_job>(batch[i]);
    if (results[i]) {
      answer(j.handler, results[i]);
    } else {
      answer(j.handler, inserted.at(j.record.digest));
    }
  }
}

net::awaitable<void> worker::run_record_uses() {
  auto& j = std::get<record_uses_job>(batch.front());
  std::unordered_map<core::key_digest, std::int64_t, core::key_digest_hash> latest;
  for (const key_use& use : j.uses) {
    const auto [it, added] = latest.try_emplace(use.digest, use.minute);
    if (!added) it->second = std::max(it->second, use.minute);
  }
  if (!latest.empty()) {
    array_builder digests, minutes;
    for (const auto& [digest, minute] : latest) {
      digests.add(bytea_text(digest));
      minutes.add(std::to_string(minute));
    }
    const std::vector<std::string> params{digests.str(), minutes.str()};
    const reply r = co_await conn.exec_prepared("record_uses", params);
    if (!r.ok()) {
      counters_.count_failure();
      answer(j.handler, error(core::errc::unavailable));
      co_return;
    }
  }
  counters_.count_batch(1);
  answer(j.handler, error_code{});
}

net::awaitable<void> worker::run_remove_expired() {
  auto& j = std::get<remove_expired_job>(batch.front());
  const std::size_t limit = std::min<std::size_t>(j.limit, std::numeric_limits<std::int64_t>::max());
  const std::vector<std::string> params{std::to_string(j.cutoff), std::to_string(limit)};
  const reply r = co_await conn.exec_prepared("remove_expired", params);
  if (!r.ok()) {
    counters_.count_failure();
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  counters_.count_batch(1);
  std::vector<removed_token> removed;
  removed.reserve(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) {
    removed_token gone;
    const auto digest = parse_digest_hex(r.cell(row, 1));
    if (!digest || !parse_owner(r.cell(row, 0), gone.owner)) {
      answer(j.handler, error(core::errc::internal));
      co_return;
    }
    gone.digest = *digest;
    removed.push_back(gone);
  }
  answer(j.handler, std::move(removed));
}

net::awaitable<void> worker::run_list() {
  auto& j = std::get<list_job>(batch.front());
  constexpr std::size_t most = std::size_t{1} << 62;  // bigint range
  const std::size_t limit = std::min(j.limit, most - 1);
  const std::vector<std::string> params{owner_text(j.owner), std::to_string(std::min(j.offset, most)),
                                        std::to_string(limit + 1)};
  const reply r = co_await conn.exec_prepared("list", params);
  if (!r.ok()) {
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  answer_page(j.handler, r, limit);
}

net::awaitable<void> worker::run_list_after() {
  auto& j = std::get<list_after_job>(batch.front());
  constexpr std::size_t most = std::size_t{1} << 62;  // bigint range
  const std::size_t limit = std::min(j.limit, most - 1);
  // No id is above bigint's range: a position beyond it is past every token.
  const std::uint64_t after = std::min<std::uint64_t>(j.after_id, std::numeric_limits<std::int64_t>::max());
  const std::vector<std::string> params{owner_text(j.owner), std::to_string(after),
                                        std::to_string(limit + 1)};
  const reply r = co_await conn.exec_prepared("list_after", params);
  if (!r.ok()) {
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  answer_page(j.handler, r, limit);
}

net::awaitable<void> worker::run_empty() {
  const std::vector<std::string> none;
  const reply r = co_await conn.exec_prepared("empty", none);
  if (!r.ok() || r.rows() != 1) {
    fail(batch.front(), core::errc::unavailable);
    co_return;
  }
  answer(std::get<empty_job>(batch.front()).handler, r.cell(0, 0) == "t");
}

net::awaitable<void> worker::run_share_admits() {
  auto& j = std::get<share_admits_job>(batch.front());
  array_builder payloads;
  for (const auto& p : j.payloads) payloads.add(p);
  const std::vector<std::string> params{names_.rate_channel(), payloads.str()};
  const reply r = co_await conn.exec_prepared("share_admits", params);
  answer(j.handler, r.ok() ? error_code{} : error(core::errc::unavailable));
}

}  // namespace tokend::storage::pg
