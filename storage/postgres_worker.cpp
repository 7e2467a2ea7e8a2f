// The PostgreSQL store's statements, and the running of a batch of jobs on one connection.
#include "storage/postgres_worker.hpp"

#include "storage/pg_text.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

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

// Calls f with each typed job of the batch (all of type Job).
template <class Job, class F>
void each(std::vector<job>& batch, F f) {
  for (auto& j : batch) f(std::get<Job>(j));
}

}  // namespace

worker::worker(net::io_context& ioc, const postgres_options& options, const postgres_names& names,
               batch_counters& counters)
    : conn(ioc), backoff(ioc), options_(options), names_(names), counters_(counters) {
  conn.set_command_timeout(options.command_timeout);
}

net::awaitable<bool> worker::connect() {
  if (!co_await conn.connect(options_.conninfo, options_.connect_timeout)) co_return false;
  const std::string tokens = names_.table("tokend_tokens");
  // A vector, not an array: see docs/ARCHITECTURE.md#coroutine-rules.
  const std::vector<std::pair<const char*, std::string>> statements{
      {"lookup", "SELECT encode(digest, 'hex'), owner FROM " + tokens + " WHERE digest = ANY($1::bytea[])"},
      // ON CONFLICT: a digest already there fails only its own create (RETURNING omits it).
      {"create", "INSERT INTO " + tokens +
                     " (digest, display_prefix, description, type, created_at, owner)"
                     " SELECT d, p, s, t, c, o FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[],"
                     " $5::bigint[], $6::bigint[]) WITH ORDINALITY AS u(d, p, s, t, c, o, n) ORDER BY n"
                     " ON CONFLICT (digest) DO NOTHING RETURNING encode(digest, 'hex'), id"},
      // One statement, so one transaction: the row goes, the revocation is recorded and every
      // listener is notified at commit, or none of it happens.
      {"remove", "WITH gone AS (DELETE FROM " + tokens +
                     " WHERE digest = $1::bytea AND owner = $2 RETURNING digest),"
                     " revoked AS (INSERT INTO " +
                     names_.table("tokend_revocations") +
                     " (digest) SELECT digest FROM gone RETURNING seq, digest)"
                     " SELECT pg_notify($3, seq::text || ':' || encode(digest, 'hex')) FROM revoked"},
      {"list", "SELECT encode(digest, 'hex'), display_prefix, description, type, created_at, owner FROM " +
                   tokens + " WHERE owner = $1 ORDER BY id OFFSET $2 LIMIT $3"},
      {"empty", "SELECT NOT EXISTS (SELECT 1 FROM " + tokens + ")"},
  };
  co_return (co_await conn.prepare_all(statements)).ok();
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
    key_info info;  // STUB: type and expiry
    if (digest && parse_owner(r.cell(row, 1), info.owner)) found.emplace(*digest, info);
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
  array_builder digests, prefixes, descriptions, types, created, owners;
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
    ++rows;
  }
  if (rows > 0) {
    const std::vector<std::string> params{digests.str(), prefixes.str(), descriptions.str(),
                                          types.str(),   created.str(),  owners.str()};
    const reply r = co_await conn.exec_prepared("create", params);
    if (!r.ok()) {
      counters_.count_failure();
      each<create_job>(batch, [](create_job& j) { answer(j.handler, error(core::errc::unavailable)); });
      co_return;
    }
    for (int row = 0; row < r.rows(); ++row) {
      std::int64_t id = 0;
      if (const auto d = parse_digest_hex(r.cell(row, 0)); d && parse_integer(r.cell(row, 1), id))
        inserted.emplace(*d, static_cast<std::uint64_t>(id));
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      // Not inserted although sent: the digest existed already. Never overwritten.
      if (!results[i] && !inserted.contains(std::get<create_job>(batch[i]).record.digest))
        results[i] = error(core::errc::internal);
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

net::awaitable<void> worker::run_remove() {
  auto& j = std::get<remove_job>(batch.front());
  const auto* digest = std::get_if<core::key_digest>(&j.ref.which);
  if (!digest) {  // STUB: removal by id
    answer(j.handler, error(core::errc::not_found));
    co_return;
  }
  const std::vector<std::string> params{bytea_text(*digest), owner_text(j.ref.owner), names_.channel()};
  const reply r = co_await conn.exec_prepared("remove", params);
  if (!r.ok()) {
    counters_.count_failure();
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  counters_.count_batch(1);
  // Someone else's key is "not found" too: a caller must not learn which keys exist.
  if (r.rows() == 1) {
    answer(j.handler, *digest);
  } else {
    answer(j.handler, error(core::errc::not_found));
  }
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
  list_page page;
  const std::size_t n = static_cast<std::size_t>(r.rows());
  page.has_more = n > limit;
  page.tokens.reserve(std::min(n, limit));
  for (std::size_t row = 0; row < std::min(n, limit); ++row) {
    const int i = static_cast<int>(row);
    core::token_record t;
    const auto digest = parse_digest_hex(r.cell(i, 0));
    if (!digest || !parse_integer(r.cell(i, 4), t.created_at) || !parse_owner(r.cell(i, 5), t.owner)) {
      answer(j.handler, error(core::errc::internal));
      co_return;
    }
    t.digest = *digest;
    t.display_prefix = r.cell(i, 1);
    t.description = r.cell(i, 2);
    t.type = r.cell(i, 3);
    page.tokens.push_back(std::move(t));
  }
  answer(j.handler, std::move(page));
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

}  // namespace tokend::storage::pg
