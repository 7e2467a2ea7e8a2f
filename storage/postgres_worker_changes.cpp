// The worker's changes to one token (delete, roll, set its rate limit): each is revoked, so that
// every process re-reads the key.
#include "storage/postgres_rate_cells.hpp"
#include "storage/postgres_worker.hpp"

#include "storage/pg_text.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tokend::storage::pg {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

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

// The digest of the one row a delete or a change of one token returned. Someone else's key is
// "not found" too: a caller must not learn which keys exist.
void answer_changed_digest(token_store::remove_handler& handler, const reply& r) {
  if (r.rows() != 1) {
    answer(handler, error(core::errc::not_found));
  } else if (const auto digest = parse_digest_hex(r.cell(0, 0))) {
    answer(handler, *digest);
  } else {
    answer(handler, error(core::errc::internal));
  }
}

}  // namespace

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
  answer_changed_digest(j.handler, r);
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
  answer_changed_digest(j.handler, r);
}

}  // namespace tokend::storage::pg
