// The PostgreSQL store's statements, prepared on each new session of a worker (worker::connect).
#include "storage/postgres_worker.hpp"

#include <string>
#include <utility>
#include <vector>

namespace tokend::storage::pg {

namespace net = boost::asio;

net::awaitable<bool> worker::connect() {
  if (!co_await conn.connect(options_.conninfo, options_.connect_timeout)) co_return false;
  const std::string tokens = names_.table("tokend_tokens");
  const std::string owners = names_.table("tokend_owners");
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
      // First the batch's owners' rows are locked, in owner order (the order every statement locks
      // them in, so none deadlocks), a missing one made: an upsert, because it sees and locks the
      // latest row even when another process committed it after this statement began, and answers
      // its count as of then. Then only the creates within their owner's bound are inserted, in
      // batch order (its own bound, else the default $11; 0: none); each one over it answers -1.
      // The triggers add the inserted to the counts before commit, so the next batch of any
      // process, waiting for these locks, counts them. ON CONFLICT (digest): a digest already
      // there fails only its own create (RETURNING omits it).
      {"create",
       "WITH u AS (SELECT d, p, s, t, c, o, e, l, w, b, n FROM unnest($1::bytea[], $2::text[], $3::text[],"
       " $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[])"
       " WITH ORDINALITY AS u(d, p, s, t, c, o, e, l, w, b, n)),"
       " held AS (INSERT INTO " +
           owners +
           " AS h (owner) SELECT DISTINCT o FROM u ORDER BY o"
           " ON CONFLICT (owner) DO UPDATE SET tokens = h.tokens"
           " RETURNING h.owner, h.tokens, coalesce(h.max_tokens, $11::bigint) AS bound),"
           " ranked AS (SELECT u.*, held.bound = 0"
           " OR held.tokens + row_number() OVER (PARTITION BY u.o ORDER BY u.n) <= held.bound AS fits"
           " FROM u JOIN held ON held.owner = u.o),"
           " fresh AS (INSERT INTO " +
           tokens +
           " (digest, display_prefix, description, type, created_at, owner, expires_at, rate_limit,"
           " rate_window, rate_burst)"
           " SELECT d, p, s, t, c, o, e, NULLIF(l, '')::integer, NULLIF(w, '')::integer,"
           " NULLIF(b, '')::integer FROM ranked WHERE fits ORDER BY n"
           " ON CONFLICT (digest) DO NOTHING RETURNING digest, id)"
           " SELECT encode(digest, 'hex'), id FROM fresh"
           " UNION ALL SELECT encode(d, 'hex'), -1 FROM ranked WHERE NOT fits"},
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
      // The owner's range of the (owner, id) index, skipping `offset`. Written as a range and
      // ordered by (owner, id) rather than owner = $1 ORDER BY id, which the primary key could serve
      // too, by scanning ids and filtering owners: a plan the statement's generic plan takes when
      // one owner holds most tokens, and then reads the whole table for any other owner. Only the
      // (owner, id) index yields this order without a sort.
      {"list",
       "SELECT encode(digest, 'hex'), display_prefix, description, type, created_at, owner, expires_at,"
       " last_used_at, id, rate_limit, coalesce(rate_window, 1), coalesce(rate_burst, 0) FROM " +
           tokens +
           " WHERE owner >= $1::bigint AND owner <= $1::bigint ORDER BY owner, id"
           " OFFSET $2::bigint LIMIT $3::bigint"},
      // A seek on the (owner, id) index to the position, however deep, ending at the owner's last
      // token; a range for the same reason as "list".
      {"list_after",
       "SELECT encode(digest, 'hex'), display_prefix, description, type, created_at, owner, expires_at,"
       " last_used_at, id, rate_limit, coalesce(rate_window, 1), coalesce(rate_burst, 0) FROM " +
           tokens +
           " WHERE (owner, id) > ($1::bigint, $2::bigint) AND owner <= $1::bigint ORDER BY owner, id"
           " LIMIT $3::bigint"},
      {"quota", "SELECT tokens, max_tokens FROM " + owners + " WHERE owner = $1::bigint"},
      // $2 "": back to the default. Not locked by creates' order rule: it locks one row only.
      {"set_max_tokens", "INSERT INTO " + owners +
                             " AS h (owner, max_tokens) VALUES ($1::bigint, NULLIF($2::text, '')::bigint)"
                             " ON CONFLICT (owner) DO UPDATE SET max_tokens = EXCLUDED.max_tokens"
                             " RETURNING h.tokens, h.max_tokens"},
      {"empty", "SELECT NOT EXISTS (SELECT 1 FROM " + tokens + ")"},
      // Every payload in one statement: one round trip, and delivered together at its commit.
      {"share_admits", "SELECT pg_notify($1::text, p) FROM unnest($2::text[]) AS p"},
  };
  co_return (co_await conn.prepare_all(statements)).ok();
}

}  // namespace tokend::storage::pg
