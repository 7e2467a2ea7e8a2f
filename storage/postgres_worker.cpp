// The PostgreSQL store's statements, and the running of a batch of jobs on one connection.
#include "storage/postgres_worker.hpp"

#include "storage/pg_text.hpp"

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

// The server's SQLSTATE when a row would duplicate a unique key (here: a digest).
constexpr const char* unique_violation = "23505";

// The parameter that names a token of `ref`: its digest as bytea, or its id; nullopt for an id no
// bigint holds, which no token has.
[[nodiscard]] std::optional<std::string> ref_text(const token_ref& ref) {
  if (const auto* digest = std::get_if<core::key_digest>(&ref.which)) return bytea_text(*digest);
  const std::uint64_t id = std::get<std::uint64_t>(ref.which);
  if (id > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return std::to_string(id);
}

// A key's own rate limit as three text parameters (limit, window, burst), each "" for none: the
// statements read "" as NULL, which a parameter of this connection cannot carry.
struct rate_limit_text {
  std::string limit, window, burst;
};
[[nodiscard]] rate_limit_text rate_text(const std::optional<core::rate_limit>& limit) {
  if (!limit) return {};
  return {std::to_string(limit->limit), std::to_string(limit->window_seconds), std::to_string(limit->burst)};
}

// The rate limit of three cells (limit, window, burst), an empty limit meaning none. False when a
// cell holds something no limit has.
[[nodiscard]] bool parse_rate_limit(const reply& r, int row, int column,
                                    std::optional<core::rate_limit>& out) {
  out.reset();
  if (r.cell(row, column).empty()) return true;
  core::rate_limit limit;
  if (!parse_integer(r.cell(row, column), limit.limit) ||
      !parse_integer(r.cell(row, column + 1), limit.window_seconds) ||
      !parse_integer(r.cell(row, column + 2), limit.burst))
    return false;
  out = limit;
  return true;
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
  // What a delete does besides deleting, in the same statement, so one transaction: the revocation
  // of each digest in `rows` is recorded and every listener is notified at commit, or none of it
  // happens. The statement's parameter `channel` names the NOTIFY channel.
  const auto revoke = [&](const char* rows) {
    return " revoked AS (INSERT INTO " + names_.table("tokend_revocations") +
           " (digest) SELECT digest FROM " + rows + " RETURNING seq, digest)";
  };
  const auto notify = [](const char* channel) {
    return "pg_notify(" + std::string(channel) +
           "::text, revoked.seq::text || ':' || encode(revoked.digest, 'hex'))";
  };
  // Removal of one owner's token, by digest or by id ($1); answers its digest.
  const auto remove = [&](const char* which) {
    return "WITH gone AS (DELETE FROM " + tokens + " WHERE " + which +
           " AND owner = $2::bigint RETURNING digest)," + revoke("gone") +
           " SELECT encode(revoked.digest, 'hex'), " + notify("$3") + " FROM revoked";
  };
  // A roll of one owner's unexpired token, by digest or by id ($2), at $3 (see roll_request). The old
  // row is locked first, so a concurrent delete or roll of it is seen: a token rolled with no
  // overlap a moment ago has expired. Its revocation makes every process re-read its new expiry. A
  // new digest that exists already fails the whole statement (unique_violation): nothing changes.
  // The new key's own rate limit is the old key's, or $10..$12 ("" for none) when $9 is true.
  const auto roll = [&](const char* which) {
    return "WITH old AS (SELECT id FROM " + tokens + " WHERE owner = $1::bigint AND " + which +
           " AND (expires_at = 0 OR expires_at > $3::bigint) FOR UPDATE),"
           " shortened AS (UPDATE " +
           tokens +
           " AS t SET expires_at = CASE WHEN t.expires_at = 0 OR $4::bigint < t.expires_at THEN $4::bigint"
           " ELSE t.expires_at END FROM old WHERE t.id = old.id"
           " RETURNING t.id, t.digest, t.expires_at, t.owner, t.type, t.description, t.rate_limit,"
           " t.rate_window, t.rate_burst),"
           " fresh AS (INSERT INTO " +
           tokens +
           " (digest, display_prefix, description, type, created_at, owner, expires_at, rate_limit,"
           " rate_window, rate_burst)"
           " SELECT $5::bytea, $6::text, description, type, $3::bigint, owner, $7::bigint,"
           " CASE WHEN $9::boolean THEN NULLIF($10::text, '')::integer ELSE rate_limit END,"
           " CASE WHEN $9::boolean THEN NULLIF($11::text, '')::integer ELSE rate_window END,"
           " CASE WHEN $9::boolean THEN NULLIF($12::text, '')::integer ELSE rate_burst END FROM shortened"
           " RETURNING id, rate_limit, rate_window, rate_burst)," +
           revoke("shortened") +
           " SELECT fresh.id, shortened.id, encode(shortened.digest, 'hex'), shortened.expires_at,"
           " shortened.type, shortened.description, " +
           notify("$8") +
           ", fresh.rate_limit, coalesce(fresh.rate_window, 1), coalesce(fresh.rate_burst, 0)"
           " FROM fresh, shortened, revoked";
  };
  // A change of one owner's token's own rate limit ($3..$5, "" for none), by digest or by id ($1);
  // answers its digest. Revoked like a delete, so that every process re-reads the key's limit.
  const auto set_rate_limit = [&](const char* which) {
    return "WITH changed AS (UPDATE " + tokens +
           " SET rate_limit = NULLIF($3::text, '')::integer, rate_window = NULLIF($4::text, '')::integer,"
           " rate_burst = NULLIF($5::text, '')::integer WHERE " +
           which + " AND owner = $2::bigint RETURNING digest)," + revoke("changed") +
           " SELECT encode(revoked.digest, 'hex'), " + notify("$6") + " FROM revoked";
  };
  // A vector, not an array: see docs/ARCHITECTURE.md#coroutine-rules.
  const std::vector<std::pair<const char*, std::string>> statements{
      // A window or burst missing beside a limit (a row edited by hand) reads as the defaults.
      {"lookup",
       "SELECT encode(digest, 'hex'), owner, type = 'operator', expires_at, rate_limit,"
       " coalesce(rate_window, 1), coalesce(rate_burst, 0), id, display_prefix FROM " +
           tokens + " WHERE digest = ANY($1::bytea[])"},
      // ON CONFLICT: a digest already there fails only its own create (RETURNING omits it).
      {"create", "INSERT INTO " + tokens +
                     " (digest, display_prefix, description, type, created_at, owner, expires_at, rate_limit,"
                     " rate_window, rate_burst)"
                     " SELECT d, p, s, t, c, o, e, NULLIF(l, '')::integer, NULLIF(w, '')::integer,"
                     " NULLIF(b, '')::integer FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[],"
                     " $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[])"
                     " WITH ORDINALITY AS u(d, p, s, t, c, o, e, l, w, b, n)"
                     " ORDER BY n ON CONFLICT (digest) DO NOTHING RETURNING encode(digest, 'hex'), id"},
      {"remove", remove("digest = $1::bytea")},
      {"remove_by_id", remove("id = $1::bigint")},
      {"roll", roll("digest = $2::bytea")},
      {"roll_by_id", roll("id = $2::bigint")},
      {"set_rate_limit", set_rate_limit("digest = $1::bytea")},
      {"set_rate_limit_by_id", set_rate_limit("id = $1::bigint")},
      // One row per token (the caller's), each with its latest minute: an UPDATE ... FROM matching a
      // row twice would apply either. Rows are locked in id order, so two processes recording
      // overlapping uses wait for each other instead of deadlocking; a row already as recent is not
      // written at all.
      {"record_uses",
       "WITH u AS (SELECT d, m FROM unnest($1::bytea[], $2::bigint[]) AS u(d, m)),"
       " locked AS (SELECT t.id, u.m FROM " +
           tokens +
           " AS t JOIN u ON t.digest = u.d WHERE t.last_used_at < u.m ORDER BY t.id FOR UPDATE OF t)"
           " UPDATE " +
           tokens +
           " AS t SET last_used_at = GREATEST(t.last_used_at, locked.m) FROM locked"
           " WHERE t.id = locked.id"},
      // Bounded by the partial index on expires_at. SKIP LOCKED: processes sweeping at once take
      // different rows rather than wait for each other (and a row being rolled is left for later).
      // No revocation: an expired key is refused by every process's clock already.
      {"remove_expired",
       "WITH gone AS (DELETE FROM " + tokens + " WHERE id IN (SELECT id FROM " + tokens +
           " WHERE expires_at > 0 AND expires_at < $1::bigint ORDER BY expires_at, id"
           " LIMIT $2::bigint FOR UPDATE SKIP LOCKED) RETURNING owner, digest, expires_at, id)"
           " SELECT owner, encode(digest, 'hex') FROM gone ORDER BY expires_at, id"},
      {"list",
       "SELECT encode(digest, 'hex'), display_prefix, description, type, created_at, owner, expires_at,"
       " last_used_at, id, rate_limit, coalesce(rate_window, 1), coalesce(rate_burst, 0) FROM " +
           tokens + " WHERE owner = $1 ORDER BY id OFFSET $2 LIMIT $3"},
      {"empty", "SELECT NOT EXISTS (SELECT 1 FROM " + tokens + ")"},
      // Every payload in one statement: one round trip, and delivered together at its commit.
      {"share_admits", "SELECT pg_notify($1::text, p) FROM unnest($2::text[]) AS p"},
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
    const std::vector<std::string> params{digests.str(), prefixes.str(), descriptions.str(), types.str(),
                                          created.str(), owners.str(),   expiries.str(),     limits.str(),
                                          windows.str(), bursts.str()};
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
  const auto which = ref_text(j.ref);
  if (!which) {  // an id beyond bigint: no such token
    answer(j.handler, error(core::errc::not_found));
    co_return;
  }
  const std::vector<std::string> params{*which, owner_text(j.ref.owner), names_.channel()};
  const reply r = co_await conn.exec_prepared(digest ? "remove" : "remove_by_id", params);
  if (!r.ok()) {
    counters_.count_failure();
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  counters_.count_batch(1);
  // Someone else's key is "not found" too: a caller must not learn which keys exist.
  if (r.rows() != 1) {
    answer(j.handler, error(core::errc::not_found));
  } else if (const auto gone = parse_digest_hex(r.cell(0, 0))) {
    answer(j.handler, *gone);
  } else {
    answer(j.handler, error(core::errc::internal));
  }
}

net::awaitable<void> worker::run_roll() {
  auto& j = std::get<roll_job>(batch.front());
  const roll_request& q = j.request;
  const auto which = ref_text(q.old);
  if (!which) {
    answer(j.handler, error(core::errc::not_found));
    co_return;
  }
  const rate_limit_text limit = rate_text(q.rate_limit.limit);
  const std::vector<std::string> params{owner_text(q.old.owner),
                                        *which,
                                        std::to_string(q.now),
                                        std::to_string(q.old_expires_at),
                                        bytea_text(q.digest),
                                        q.display_prefix,
                                        std::to_string(q.expires_at),
                                        names_.channel(),
                                        q.rate_limit.replace ? "t" : "f",
                                        limit.limit,
                                        limit.window,
                                        limit.burst};
  const bool by_digest = std::holds_alternative<core::key_digest>(q.old.which);
  const reply r = co_await conn.exec_prepared(by_digest ? "roll" : "roll_by_id", params);
  if (!r.ok()) {
    // The new digest exists already: a caller bug, as for a create.
    const bool taken = r.sqlstate == unique_violation;
    if (!taken) counters_.count_failure();
    answer(j.handler, error(taken ? core::errc::internal : core::errc::unavailable));
    co_return;
  }
  counters_.count_batch(1);
  if (r.rows() != 1) {  // no such token of this owner, or expired
    answer(j.handler, error(core::errc::not_found));
    co_return;
  }
  rolled_token out;
  std::int64_t fresh_id = 0;
  std::int64_t old_id = 0;
  const auto old_digest = parse_digest_hex(r.cell(0, 2));
  if (!parse_integer(r.cell(0, 0), fresh_id) || !parse_integer(r.cell(0, 1), old_id) || !old_digest ||
      !parse_integer(r.cell(0, 3), out.old_expires_at) || !parse_rate_limit(r, 0, 7, out.fresh.rate_limit)) {
    answer(j.handler, error(core::errc::internal));
    co_return;
  }
  out.old_digest = *old_digest;
  out.old_id = static_cast<std::uint64_t>(old_id);
  out.fresh.digest = q.digest;
  out.fresh.display_prefix = q.display_prefix;
  out.fresh.description = r.cell(0, 5);
  out.fresh.type = r.cell(0, 4);
  out.fresh.created_at = q.now;
  out.fresh.owner = q.old.owner;
  out.fresh.expires_at = q.expires_at;
  out.fresh.id = static_cast<std::uint64_t>(fresh_id);
  answer(j.handler, std::move(out));
}

net::awaitable<void> worker::run_set_rate_limit() {
  auto& j = std::get<set_rate_limit_job>(batch.front());
  const auto which = ref_text(j.ref);
  if (!which) {  // an id beyond bigint: no such token
    answer(j.handler, error(core::errc::not_found));
    co_return;
  }
  const rate_limit_text limit = rate_text(j.limit);
  const std::vector<std::string> params{*which,      owner_text(j.ref.owner), limit.limit, limit.window,
                                        limit.burst, names_.channel()};
  const bool by_digest = std::holds_alternative<core::key_digest>(j.ref.which);
  const reply r = co_await conn.exec_prepared(by_digest ? "set_rate_limit" : "set_rate_limit_by_id", params);
  if (!r.ok()) {
    counters_.count_failure();
    answer(j.handler, error(core::errc::unavailable));
    co_return;
  }
  counters_.count_batch(1);
  // Someone else's key is "not found" too: a caller must not learn which keys exist.
  if (r.rows() != 1) {
    answer(j.handler, error(core::errc::not_found));
  } else if (const auto changed = parse_digest_hex(r.cell(0, 0))) {
    answer(j.handler, *changed);
  } else {
    answer(j.handler, error(core::errc::internal));
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
      answer(j.handler, error(core::errc::internal));
      co_return;
    }
    t.digest = *digest;
    t.display_prefix = r.cell(i, 1);
    t.description = r.cell(i, 2);
    t.type = r.cell(i, 3);
    t.id = static_cast<std::uint64_t>(id);
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

net::awaitable<void> worker::run_share_admits() {
  auto& j = std::get<share_admits_job>(batch.front());
  array_builder payloads;
  for (const auto& p : j.payloads) payloads.add(p);
  const std::vector<std::string> params{names_.rate_channel(), payloads.str()};
  const reply r = co_await conn.exec_prepared("share_admits", params);
  answer(j.handler, r.ok() ? error_code{} : error(core::errc::unavailable));
}

}  // namespace tokend::storage::pg
