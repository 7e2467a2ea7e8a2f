// The token_store contract for a token's life beyond create and delete: ids, expiry, last use,
// rolling, removal by id, removal of long-expired tokens, a key's own rate limit, and data written by
// the previous record formats. Every case runs on the memory store (the reference), RocksDB and
// PostgreSQL.
#define BOOST_TEST_MODULE storage_life_test
#include <boost/test/unit_test.hpp>

#include "storage/pg_connection.hpp"
#include "support/store_calls.hpp"
#include "support/v1_fixtures.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <variant>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace tokend::test::stores;
using boost::system::result;
using tokend::test::temp_dir;

using create_result = result<std::uint64_t>;
using remove_result = result<core::key_digest>;
using roll_result = result<storage::rolled_token>;
using sweep_result = result<std::vector<storage::removed_token>>;

[[nodiscard]] std::uint64_t create_id(token_store& s, const core::token_record& r) {
  const auto id = finish(start<create_result>([&](auto handler) { s.async_create(r, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(id.has_value(), "create failed: " << id.error().message());
  return *id;
}

[[nodiscard]] remove_result remove_ref(token_store& s, storage::token_ref ref) {
  return finish(start<remove_result>([&](auto handler) { s.async_remove(ref, std::move(handler)); }));
}

[[nodiscard]] remove_result set_limit(token_store& s, storage::token_ref ref,
                                      std::optional<core::rate_limit> limit) {
  return finish(
      start<remove_result>([&](auto handler) { s.async_set_rate_limit(ref, limit, std::move(handler)); }));
}

[[nodiscard]] roll_result roll(token_store& s, storage::roll_request request) {
  return finish(start<roll_result>([&](auto handler) { s.async_roll(request, std::move(handler)); }));
}

void record_uses(token_store& s, std::vector<storage::key_use> uses) {
  const auto ec =
      finish(start<error_code>([&](auto handler) { s.async_record_uses(uses, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(!ec, "recording uses failed: " << ec.message());
}

[[nodiscard]] std::vector<storage::removed_token> remove_expired(token_store& s, std::int64_t cutoff,
                                                                 std::size_t limit) {
  const auto removed = finish(
      start<sweep_result>([&](auto handler) { s.async_remove_expired(cutoff, limit, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(removed.has_value(), "removing expired tokens failed: " << removed.error().message());
  return *removed;
}

[[nodiscard]] std::optional<storage::key_info> info(token_store& s, const core::key_digest& d) {
  const lookup_result r = finish(start_lookup(s, d));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "lookup failed: " << r.error().message());
  return *r;
}

// The owner's record with this digest, from a full list.
[[nodiscard]] std::optional<core::token_record> listed(token_store& s, core::user_id owner,
                                                       const core::key_digest& d) {
  for (auto& t : list(s, owner, 0, 1000).tokens) {
    if (t.digest == d) return t;
  }
  return std::nullopt;
}

[[nodiscard]] storage::roll_request roll_of(storage::token_ref old, std::int64_t now,
                                            std::int64_t old_expires_at, std::int64_t expires_at = 0) {
  const std::string key = core::generate_key();
  storage::roll_request request;
  request.old = old;
  request.digest = core::digest_key(key);
  request.display_prefix = key.substr(0, core::display_prefix_length);
  request.now = now;
  request.expires_at = expires_at;
  request.old_expires_at = old_expires_at;
  return request;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(contract)

BOOST_AUTO_TEST_CASE_TEMPLATE(ids_expiry_and_type_round_trip, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto plain = make_record(3, 1);
  auto expiring = make_record(3, 2);
  expiring.expires_at = 2'100'000'000;
  auto op = make_record(3, 3);
  op.type = std::string(core::operator_type);
  const std::uint64_t a = create_id(*store, plain);
  const std::uint64_t b = create_id(*store, expiring);
  const std::uint64_t c = create_id(*store, op);
  BOOST_TEST(a >= 1u);
  BOOST_TEST(a < b);
  BOOST_TEST(b < c);

  const auto page = list(*store, 3, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 3u);
  BOOST_TEST(page.tokens[0].id == a);
  BOOST_TEST(page.tokens[1].id == b);
  BOOST_TEST(page.tokens[2].id == c);
  BOOST_TEST(page.tokens[0].expires_at == 0);
  BOOST_TEST(page.tokens[1].expires_at == 2'100'000'000);
  BOOST_TEST(page.tokens[2].type == core::operator_type);
  for (const auto& t : page.tokens) BOOST_TEST(t.last_used_at == 0);
  check_same(page.tokens[1], expiring);

  const auto i = info(*store, expiring.digest);
  BOOST_REQUIRE(i.has_value());
  BOOST_TEST(i->owner == 3u);
  BOOST_TEST(i->expires_at == 2'100'000'000);
  BOOST_TEST(!i->operator_key);
  const auto o = info(*store, op.digest);
  BOOST_REQUIRE(o.has_value());
  BOOST_TEST(o->operator_key);
  BOOST_TEST(o->expires_at == 0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_expired_key_is_still_found, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto r = make_record(4, 1);
  r.expires_at = 1'000;  // long past: judging it is the caller's, with its own clock
  (void)create_id(*store, r);
  const auto i = info(*store, r.digest);
  BOOST_REQUIRE(i.has_value());
  BOOST_TEST(i->expires_at == 1'000);
  BOOST_TEST(listed(*store, 4, r.digest).has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(remove_by_id_and_by_digest_stay_within_the_owner, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  const auto mine = make_record(5, 1);
  const auto theirs = make_record(6, 2);
  const std::uint64_t mine_id = create_id(*store, mine);
  const std::uint64_t their_id = create_id(*store, theirs);

  // Another owner's token, by id or by digest, is not found, exactly like a token that never existed.
  for (const storage::token_ref& ref : {storage::token_ref{5, their_id}, storage::token_ref{5, theirs.digest},
                                        storage::token_ref{5, their_id + 1000}}) {
    const auto r = remove_ref(*store, ref);
    BOOST_REQUIRE(r.has_error());
    BOOST_TEST(r.error() == err(core::errc::not_found));
  }
  BOOST_TEST(info(*store, theirs.digest).has_value());

  const auto gone = remove_ref(*store, {5, mine_id});
  BOOST_REQUIRE(gone.has_value());
  BOOST_TEST((*gone == mine.digest));
  BOOST_TEST(!info(*store, mine.digest).has_value());
  BOOST_TEST(list(*store, 5, 0, 10).tokens.empty());
  const auto again = remove_ref(*store, {5, mine_id});
  BOOST_TEST(again.has_error());

  const auto by_digest = remove_ref(*store, {6, theirs.digest});
  BOOST_REQUIRE(by_digest.has_value());
  BOOST_TEST((*by_digest == theirs.digest));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(roll_replaces_a_key_and_shortens_the_old_ones_life, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto old = make_record(7, 1);
  old.type = std::string(core::operator_type);
  const std::uint64_t old_id = create_id(*store, old);

  const std::int64_t now = 1'900'000'000;
  const auto request = roll_of({7, old_id}, now, now + 3600, now + 86400);
  const auto done = roll(*store, request);
  BOOST_REQUIRE_MESSAGE(done.has_value(), "roll failed: " << done.error().message());
  BOOST_TEST((done->old_digest == old.digest));
  BOOST_TEST(done->old_id == old_id);
  BOOST_TEST(done->old_expires_at == now + 3600);
  const core::token_record& fresh = done->fresh;
  BOOST_TEST((fresh.digest == request.digest));
  BOOST_TEST(fresh.display_prefix == request.display_prefix);
  BOOST_TEST(fresh.description == old.description);
  BOOST_TEST(fresh.type == old.type);
  BOOST_TEST(fresh.owner == 7u);
  BOOST_TEST(fresh.created_at == now);
  BOOST_TEST(fresh.expires_at == now + 86400);
  BOOST_TEST(fresh.id > old_id);

  // Both are stored; the old one with its new expiry, in the list and for authentication alike.
  const auto old_info = info(*store, old.digest);
  BOOST_REQUIRE(old_info.has_value());
  BOOST_TEST(old_info->expires_at == now + 3600);
  const auto fresh_info = info(*store, fresh.digest);
  BOOST_REQUIRE(fresh_info.has_value());
  BOOST_TEST(fresh_info->operator_key);
  BOOST_TEST(fresh_info->expires_at == now + 86400);
  const auto page = list(*store, 7, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 2u);
  BOOST_TEST(page.tokens[0].id == old_id);
  BOOST_TEST(page.tokens[0].expires_at == now + 3600);
  BOOST_TEST(page.tokens[1].id == fresh.id);
  BOOST_TEST(page.tokens[1].description == old.description);

  // A later expiry never lengthens an old key's life: it keeps the earlier one.
  const auto second = roll(*store, roll_of({7, old.digest}, now + 1, now + 7200));
  BOOST_REQUIRE(second.has_value());
  BOOST_TEST(second->old_expires_at == now + 3600);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(roll_refuses_what_a_delete_would_and_expired_keys, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto expired = make_record(8, 1);
  expired.expires_at = 1'800'000'000;
  const std::uint64_t expired_id = create_id(*store, expired);
  const auto theirs = make_record(9, 2);
  const std::uint64_t their_id = create_id(*store, theirs);

  for (const auto& request :
       {roll_of({8, expired_id}, 1'800'000'000, 1'800'000'000),  // expired at that second
        roll_of({8, their_id}, 1'700'000'000, 1'700'000'000),
        roll_of({8, theirs.digest}, 1'700'000'000, 1'700'000'000),
        roll_of({8, their_id + 1000}, 1'700'000'000, 1'700'000'000)}) {
    const auto r = roll(*store, request);
    BOOST_REQUIRE(r.has_error());
    BOOST_TEST(r.error() == err(core::errc::not_found));
    BOOST_TEST(!info(*store, request.digest).has_value());  // nothing of the new key stored
  }
  BOOST_TEST(info(*store, theirs.digest)->expires_at == 0);
  BOOST_TEST(list(*store, 8, 0, 10).tokens.size() == 1u);
  // One second before its expiry the key can still be rolled.
  const auto in_time = roll(*store, roll_of({8, expired_id}, 1'799'999'999, 1'799'999'999));
  BOOST_TEST(in_time.has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(the_latest_use_wins, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  const auto a = make_record(10, 1);
  const auto b = make_record(10, 2);
  (void)create_id(*store, a);
  (void)create_id(*store, b);
  const auto unknown = make_record(10, 3);  // never stored: its use is ignored

  record_uses(*store, {{a.digest, 10, 1'700'000'040}, {unknown.digest, 10, 1'700'000'040}});
  BOOST_TEST(listed(*store, 10, a.digest)->last_used_at == 1'700'000'040);
  BOOST_TEST(listed(*store, 10, b.digest)->last_used_at == 0);
  // An older minute arriving late (another process, a delayed flush) never moves it back.
  record_uses(*store, {{a.digest, 10, 1'700'000'000}, {b.digest, 10, 1'700'000'100}});
  BOOST_TEST(listed(*store, 10, a.digest)->last_used_at == 1'700'000'040);
  BOOST_TEST(listed(*store, 10, b.digest)->last_used_at == 1'700'000'100);
  record_uses(*store, {{a.digest, 10, 1'700'000'160}, {a.digest, 10, 1'700'000'100}});
  BOOST_TEST(listed(*store, 10, a.digest)->last_used_at == 1'700'000'160);
  BOOST_TEST(!info(*store, unknown.digest).has_value());
  // A use changes nothing else.
  check_same(*listed(*store, 10, a.digest), a);
  BOOST_TEST(info(*store, a.digest)->owner == 10u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(remove_expired_takes_the_oldest_expiries_first_and_is_bounded, Backend,
                              backends) {
  Backend backend;
  const auto store = backend.open();
  std::vector<core::token_record> records;
  for (const std::int64_t expiry : {300, 100, 0, 200, 5'000}) {
    records.push_back(make_record(records.size() % 2 == 0 ? 11 : 12, static_cast<int>(records.size())));
    records.back().expires_at = expiry;
    (void)create_id(*store, records.back());
  }
  // Before any cutoff reaches an expiry nothing goes.
  BOOST_TEST(remove_expired(*store, 100, 10).empty());

  const auto first = remove_expired(*store, 250, 1);
  BOOST_REQUIRE_EQUAL(first.size(), 1u);
  BOOST_TEST((first[0].digest == records[1].digest));  // expiry 100
  BOOST_TEST(first[0].owner == 12u);
  const auto rest = remove_expired(*store, 250, 10);
  BOOST_REQUIRE_EQUAL(rest.size(), 1u);
  BOOST_TEST((rest[0].digest == records[3].digest));  // expiry 200
  BOOST_TEST(!info(*store, records[1].digest).has_value());
  BOOST_TEST(!info(*store, records[3].digest).has_value());
  BOOST_TEST(!listed(*store, 12, records[3].digest).has_value());
  // Expiry 300 is not before the cutoff 300; never-expiring tokens are never taken.
  BOOST_TEST(remove_expired(*store, 300, 10).empty());
  const auto all = remove_expired(*store, 1'000'000, 10);
  BOOST_REQUIRE_EQUAL(all.size(), 2u);
  BOOST_TEST(info(*store, records[2].digest).has_value());
  BOOST_TEST(list(*store, 11, 0, 10).tokens.size() == 1u);
  BOOST_TEST(list(*store, 12, 0, 10).tokens.empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_rolled_keys_new_expiry_is_what_removal_sees, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  const auto old = make_record(13, 1);
  const std::uint64_t old_id = create_id(*store, old);
  const auto done = roll(*store, roll_of({13, old_id}, 1'000, 1'500));
  BOOST_REQUIRE(done.has_value());
  const auto removed = remove_expired(*store, 2'000, 10);
  BOOST_REQUIRE_EQUAL(removed.size(), 1u);
  BOOST_TEST((removed[0].digest == old.digest));
  BOOST_TEST(info(*store, done->fresh.digest).has_value());
}

using limit = std::optional<core::rate_limit>;

BOOST_AUTO_TEST_CASE_TEMPLATE(a_keys_own_rate_limit_is_stored_listed_and_looked_up, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto limited = make_record(30, 1);
  limited.rate_limit = core::rate_limit{100, 60, 250};
  const auto plain = make_record(30, 2);  // follows the server's default
  auto exempt = make_record(30, 3);
  exempt.rate_limit = core::rate_limit{0, 1, 0};  // exempt from the default: not the same as none
  auto largest = make_record(30, 4);
  largest.rate_limit = core::rate_limit{core::max_rate_limit, core::max_rate_window_seconds, 0};
  const std::vector<core::token_record> records{limited, plain, exempt, largest};
  std::vector<std::uint64_t> ids;
  for (const auto& r : records) ids.push_back(create_id(*store, r));

  const auto page = list(*store, 30, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), records.size());
  for (std::size_t n = 0; n < records.size(); ++n) {
    BOOST_TEST_CONTEXT("token " << n) {
      BOOST_TEST((page.tokens[n].rate_limit == records[n].rate_limit));
      const auto i = info(*store, records[n].digest);
      BOOST_REQUIRE(i.has_value());
      BOOST_TEST((i->rate_limit == records[n].rate_limit));
      BOOST_TEST(i->id == ids[n]);
      BOOST_TEST(i->display_prefix == records[n].display_prefix);
      BOOST_TEST(i->owner == 30u);
    }
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(set_rate_limit_changes_and_clears_a_keys_limit, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto r = make_record(31, 1);
  r.expires_at = 2'100'000'000;
  const std::uint64_t id = create_id(*store, r);
  const auto other = make_record(31, 2);
  (void)create_id(*store, other);
  record_uses(*store, {{r.digest, 31, 1'700'000'040}});

  // By id, then by digest; each answers the key's digest.
  const auto by_id = set_limit(*store, {31, id}, core::rate_limit{5, 1, 10});
  BOOST_REQUIRE_MESSAGE(by_id.has_value(), "set failed: " << by_id.error().message());
  BOOST_TEST((*by_id == r.digest));
  BOOST_TEST((info(*store, r.digest)->rate_limit == limit{core::rate_limit{5, 1, 10}}));
  BOOST_TEST((listed(*store, 31, r.digest)->rate_limit == limit{core::rate_limit{5, 1, 10}}));
  const auto by_digest = set_limit(*store, {31, r.digest}, core::rate_limit{6000, 60, 0});
  BOOST_REQUIRE(by_digest.has_value());
  BOOST_TEST((*by_digest == r.digest));
  BOOST_TEST((info(*store, r.digest)->rate_limit == limit{core::rate_limit{6000, 60, 0}}));

  // Nothing else of the token changes, nor any other token.
  const auto now = listed(*store, 31, r.digest);
  BOOST_REQUIRE(now.has_value());
  check_same(*now, r);
  BOOST_TEST(now->id == id);
  BOOST_TEST(now->expires_at == 2'100'000'000);
  BOOST_TEST(now->last_used_at == 1'700'000'040);
  BOOST_TEST(info(*store, r.digest)->expires_at == 2'100'000'000);
  BOOST_TEST(!info(*store, other.digest)->rate_limit.has_value());
  BOOST_TEST(!listed(*store, 31, other.digest)->rate_limit.has_value());

  // Back to the server's default.
  const auto cleared = set_limit(*store, {31, id}, std::nullopt);
  BOOST_REQUIRE(cleared.has_value());
  BOOST_TEST((*cleared == r.digest));
  BOOST_TEST(!info(*store, r.digest)->rate_limit.has_value());
  BOOST_TEST(!listed(*store, 31, r.digest)->rate_limit.has_value());
  BOOST_TEST(list(*store, 31, 0, 10).tokens.size() == 2u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(set_rate_limit_stays_within_the_owner, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto theirs = make_record(33, 1);
  theirs.rate_limit = core::rate_limit{50, 1, 0};
  const std::uint64_t their_id = create_id(*store, theirs);
  const auto mine = make_record(32, 2);
  const std::uint64_t mine_id = create_id(*store, mine);
  const auto never = make_record(32, 3);

  // Another owner's token, by id or by digest, is not found, exactly like a token that never existed.
  for (const storage::token_ref& ref :
       {storage::token_ref{32, their_id}, storage::token_ref{32, theirs.digest},
        storage::token_ref{32, their_id + mine_id + 1000}, storage::token_ref{32, never.digest},
        storage::token_ref{32, std::uint64_t{0}}}) {
    const auto r = set_limit(*store, ref, core::rate_limit{1, 1, 1});
    BOOST_REQUIRE(r.has_error());
    BOOST_TEST(r.error() == err(core::errc::not_found));
  }
  BOOST_TEST(set_limit(*store, {33, their_id + mine_id + 1000}, std::nullopt).error() ==
             err(core::errc::not_found));
  BOOST_TEST((info(*store, theirs.digest)->rate_limit == limit{core::rate_limit{50, 1, 0}}));
  BOOST_TEST((listed(*store, 33, theirs.digest)->rate_limit == limit{core::rate_limit{50, 1, 0}}));
  BOOST_TEST(!info(*store, mine.digest)->rate_limit.has_value());
  BOOST_TEST(!info(*store, never.digest).has_value());  // nothing created by a refused set

  // A deleted token is gone for this too.
  BOOST_REQUIRE(remove_ref(*store, {32, mine_id}).has_value());
  BOOST_TEST(set_limit(*store, {32, mine_id}, core::rate_limit{1, 1, 1}).error() ==
             err(core::errc::not_found));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_roll_keeps_the_old_keys_limit_unless_told_otherwise, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  auto old = make_record(34, 1);
  old.rate_limit = core::rate_limit{100, 1, 200};
  const std::uint64_t old_id = create_id(*store, old);
  const std::int64_t now = 1'900'000'000;

  const auto kept = roll(*store, roll_of({34, old_id}, now, now + 3600));
  BOOST_REQUIRE_MESSAGE(kept.has_value(), "roll failed: " << kept.error().message());
  BOOST_TEST((kept->fresh.rate_limit == old.rate_limit));
  BOOST_TEST((info(*store, kept->fresh.digest)->rate_limit == old.rate_limit));
  BOOST_TEST((listed(*store, 34, kept->fresh.digest)->rate_limit == old.rate_limit));
  BOOST_TEST((info(*store, old.digest)->rate_limit == old.rate_limit));  // the old key keeps its own

  auto replace = roll_of({34, kept->fresh.digest}, now + 1, now + 3600);
  replace.rate_limit = {true, core::rate_limit{7, 60, 0}};
  const auto replaced = roll(*store, replace);
  BOOST_REQUIRE(replaced.has_value());
  BOOST_TEST((replaced->fresh.rate_limit == limit{core::rate_limit{7, 60, 0}}));
  BOOST_TEST((info(*store, replace.digest)->rate_limit == limit{core::rate_limit{7, 60, 0}}));
  BOOST_TEST((listed(*store, 34, replace.digest)->rate_limit == limit{core::rate_limit{7, 60, 0}}));
  BOOST_TEST((info(*store, kept->fresh.digest)->rate_limit == old.rate_limit));

  auto clear = roll_of({34, replaced->fresh.id}, now + 2, now + 3600);
  clear.rate_limit = {true, std::nullopt};
  const auto cleared = roll(*store, clear);
  BOOST_REQUIRE(cleared.has_value());
  BOOST_TEST(!cleared->fresh.rate_limit.has_value());
  BOOST_TEST(!info(*store, clear.digest)->rate_limit.has_value());
  BOOST_TEST(!listed(*store, 34, clear.digest)->rate_limit.has_value());

  // A key with no limit of its own rolls into one with none, and can be given one by the roll.
  const auto none = roll(*store, roll_of({34, clear.digest}, now + 3, now + 3600));
  BOOST_REQUIRE(none.has_value());
  BOOST_TEST(!none->fresh.rate_limit.has_value());
  BOOST_TEST(!info(*store, none->fresh.digest)->rate_limit.has_value());
  auto give = roll_of({34, none->fresh.digest}, now + 4, now + 3600);
  give.rate_limit = {true, core::rate_limit{0, 1, 0}};
  const auto given = roll(*store, give);
  BOOST_REQUIRE(given.has_value());
  BOOST_TEST((info(*store, give.digest)->rate_limit == limit{core::rate_limit{0, 1, 0}}));
  BOOST_TEST(list(*store, 34, 0, 10).tokens.size() == 6u);
}

BOOST_AUTO_TEST_SUITE_END()

// The previous record format: what its release wrote must load, unchanged in meaning.
BOOST_AUTO_TEST_SUITE(upgrade)

namespace {

// Opened on the fixture: every key authenticates as user 7's admin key that never expires, the list
// shows them in order, and every new operation works on them.
void check_v1_store(token_store& store, const std::vector<tokend::test::v1_key>& keys) {
  BOOST_REQUIRE_EQUAL(keys.size(), 4u);
  for (const auto& k : keys) {
    const auto i = info(store, core::digest_key(k.key));
    BOOST_REQUIRE_MESSAGE(i.has_value(), "a key of the previous version is lost: " << k.description);
    BOOST_TEST(i->owner == 7u);
    BOOST_TEST(!i->operator_key);
    BOOST_TEST(i->expires_at == 0);
    BOOST_TEST(!i->rate_limit.has_value());  // no limit of its own: the server's default applies
    BOOST_TEST(i->display_prefix == k.key.substr(0, core::display_prefix_length));
  }
  const auto page = list(store, 7, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), keys.size());
  std::uint64_t last_id = 0;
  for (std::size_t n = 0; n < keys.size(); ++n) {
    const auto& t = page.tokens[n];
    BOOST_TEST(!t.rate_limit.has_value());
    BOOST_TEST(info(store, core::digest_key(keys[n].key))->id == t.id);
    BOOST_TEST(t.description == keys[n].description);
    BOOST_TEST(t.type == "admin");
    BOOST_TEST(t.display_prefix == keys[n].key.substr(0, core::display_prefix_length));
    BOOST_TEST(t.expires_at == 0);
    BOOST_TEST(t.last_used_at == 0);
    BOOST_TEST(t.id > last_id);
    last_id = t.id;
  }
  const auto fresh = make_record(7, 1);
  BOOST_TEST(create_id(store, fresh) > last_id);
  record_uses(store, {{core::digest_key(keys[1].key), 7, 1'796'200'000}});
  BOOST_TEST(listed(store, 7, core::digest_key(keys[1].key))->last_used_at == 1'796'200'000);
  const auto rolled = roll(store, roll_of({7, core::digest_key(keys[2].key)}, 1'796'200'000, 1'796'200'060));
  BOOST_REQUIRE(rolled.has_value());
  BOOST_TEST(rolled->fresh.description == keys[2].description);
  BOOST_TEST(!rolled->fresh.rate_limit.has_value());
  BOOST_TEST(remove_ref(store, {7, page.tokens[3].id}).has_value());
  BOOST_TEST(list(store, 7, 0, 10).tokens.size() == 5u);  // 4 - 1 deleted + 1 created + 1 rolled
  // A key of the previous format takes a limit of its own (and keeps its last use).
  const auto used = core::digest_key(keys[1].key);
  BOOST_REQUIRE(set_limit(store, {7, page.tokens[1].id}, core::rate_limit{10, 1, 0}).has_value());
  BOOST_TEST((info(store, used)->rate_limit == std::optional<core::rate_limit>{core::rate_limit{10, 1, 0}}));
  BOOST_TEST(
      (listed(store, 7, used)->rate_limit == std::optional<core::rate_limit>{core::rate_limit{10, 1, 0}}));
  BOOST_TEST(listed(store, 7, used)->last_used_at == 1'796'200'000);
  BOOST_TEST(listed(store, 7, used)->description == keys[1].description);
}

// After check_v1_store, reopened: what it wrote is on disk.
void check_v1_store_again(token_store& store, const std::vector<tokend::test::v1_key>& keys) {
  BOOST_TEST(list(store, 7, 0, 10).tokens.size() == 5u);
  const auto used = core::digest_key(keys[1].key);
  BOOST_TEST((info(store, used)->rate_limit == std::optional<core::rate_limit>{core::rate_limit{10, 1, 0}}));
  BOOST_TEST(!info(store, core::digest_key(keys[0].key))->rate_limit.has_value());
}

}  // namespace

BOOST_AUTO_TEST_CASE(rocksdb_data_of_the_previous_format_loads) {
  temp_dir dir;
  const fs::path db = dir.path() / "db";
  fs::copy(tokend::test::v1_fixtures / "rocksdb-v1", db);
  auto options = rocksdb_options_in(dir);
  {
    const auto store = storage::open_rocksdb_store(options);
    check_v1_store(*store, tokend::test::v1_keys("rocksdb-v1"));
  }
  // And again after the upgrade wrote to it.
  const auto store = storage::open_rocksdb_store(options);
  check_v1_store_again(*store, tokend::test::v1_keys("rocksdb-v1"));
}

BOOST_AUTO_TEST_CASE(postgres_data_of_the_previous_format_loads) {
  std::string error;
  const std::string schema = tokend::test::load_postgres_v1(error);
  BOOST_REQUIRE_MESSAGE(!schema.empty(), "loading the fixture failed: " << error);
  {
    const auto store = storage::open_postgres_store(postgres_options_for(schema));
    check_v1_store(*store, tokend::test::v1_keys("postgres-v1"));
  }
  const auto store = storage::open_postgres_store(postgres_options_for(schema));
  check_v1_store_again(*store, tokend::test::v1_keys("postgres-v1"));
}

// A table of the release before rate limits (expiry and last use, no rate columns) gains them at
// start-up, its keys with no limit of their own.
BOOST_AUTO_TEST_CASE(postgres_data_of_the_release_before_rate_limits_loads) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  auto r = make_record(7, 1);
  r.expires_at = 2'100'000'000;
  const auto s = make_record(7, 2);
  std::uint64_t r_id = 0;
  {
    const auto store = storage::open_postgres_store(postgres_options_for(schema));
    r_id = create_id(*store, r);
    (void)create_id(*store, s);
  }
  {
    PGconn* conn = PQconnectdb(tokend::test::postgres_url().c_str());
    const std::string sql = "ALTER TABLE " + schema +
                            ".tokend_tokens DROP COLUMN rate_limit, DROP COLUMN rate_window,"
                            " DROP COLUMN rate_burst";
    PGresult* dropped = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, sql.c_str()) : nullptr;
    const bool ok = dropped && PQresultStatus(dropped) == PGRES_COMMAND_OK;
    const std::string message = PQerrorMessage(conn);
    PQclear(dropped);
    PQfinish(conn);
    BOOST_REQUIRE_MESSAGE(ok, "making the previous release's table failed: " << message);
  }
  const auto store = storage::open_postgres_store(postgres_options_for(schema));
  for (const core::token_record* t : std::vector<const core::token_record*>{&r, &s}) {
    const auto i = info(*store, t->digest);
    BOOST_REQUIRE(i.has_value());
    BOOST_TEST(!i->rate_limit.has_value());
    BOOST_TEST(i->display_prefix == t->display_prefix);
    BOOST_TEST(!listed(*store, 7, t->digest)->rate_limit.has_value());
  }
  BOOST_TEST(info(*store, r.digest)->id == r_id);
  BOOST_TEST(info(*store, r.digest)->expires_at == 2'100'000'000);
  BOOST_REQUIRE(set_limit(*store, {7, r_id}, core::rate_limit{3, 1, 0}).has_value());
  BOOST_TEST(
      (info(*store, r.digest)->rate_limit == std::optional<core::rate_limit>{core::rate_limit{3, 1, 0}}));
}

BOOST_AUTO_TEST_SUITE_END()
