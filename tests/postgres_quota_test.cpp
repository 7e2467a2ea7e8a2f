// The PostgreSQL store's cursor lists, per-owner bounds and cursor secret, beyond the store
// contract: the seek on the (owner, id) index, the bound held across processes sharing one database,
// the counts the tokens table's triggers keep on every path (an older binary's statements included)
// and after an upgrade, and the secret every process reads alike.
#define BOOST_TEST_MODULE postgres_quota_test
#include <boost/test/unit_test.hpp>

#include "storage/pg_text.hpp"
#include "support/side_session.hpp"
#include "support/store_calls.hpp"
#include "support/v1_fixtures.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace tokend::test::stores;
using boost::system::result;
using tokend::test::side_session;

using create_result = result<std::uint64_t>;
using quota_result = result<storage::token_quota>;
using sweep_result = result<std::vector<storage::removed_token>>;

constexpr auto long_deadline = std::chrono::seconds(120);

[[nodiscard]] std::future<outcome<create_result>> start_create_id(token_store& s,
                                                                  const core::token_record& r) {
  return start<create_result>([&](auto handler) { s.async_create(r, std::move(handler)); });
}

[[nodiscard]] create_result create_id(token_store& s, const core::token_record& r) {
  return finish(start_create_id(s, r));
}

using pending_creates = std::vector<std::future<outcome<create_result>>>;

// Submits every create at once, so the store batches them. No Boost.Test macro, so another thread
// may call it (Boost.Test's log is not thread-safe).
[[nodiscard]] pending_creates submit_all(token_store& s, const std::vector<core::token_record>& rs) {
  pending_creates pending;
  pending.reserve(rs.size());
  for (const auto& r : rs) pending.push_back(start_create_id(s, r));
  return pending;
}

// Waits for each answer; on the test's own thread.
[[nodiscard]] std::vector<create_result> finish_all(pending_creates pending) {
  std::vector<create_result> out;
  out.reserve(pending.size());
  for (auto& f : pending) out.push_back(finish(std::move(f), where::storage_thread, long_deadline));
  return out;
}

[[nodiscard]] std::vector<create_result> create_all(token_store& s,
                                                    const std::vector<core::token_record>& rs) {
  return finish_all(submit_all(s, rs));
}

[[nodiscard]] std::vector<core::token_record> records_of(core::user_id owner, int n, int first = 0) {
  std::vector<core::token_record> out;
  for (int i = 0; i < n; ++i) out.push_back(make_record(owner, first + i));
  return out;
}

[[nodiscard]] storage::list_page list_after(token_store& s, core::user_id owner, std::uint64_t after,
                                            std::size_t limit) {
  auto r = finish(
      start<list_result>([&](auto handler) { s.async_list_after(owner, after, limit, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "list_after failed: " << r.error().message());
  return std::move(*r);
}

// Every token of the owner, by pages of list_after.
[[nodiscard]] std::vector<core::token_record> walk(token_store& s, core::user_id owner) {
  std::vector<core::token_record> all;
  for (std::uint64_t after = 0;;) {
    auto page = list_after(s, owner, after, 1000);
    for (auto& t : page.tokens) all.push_back(std::move(t));
    if (!page.has_more) return all;
    BOOST_REQUIRE(!all.empty());
    after = all.back().id;
  }
}

[[nodiscard]] storage::token_quota quota(token_store& s, core::user_id owner) {
  const auto r = finish(start<quota_result>([&](auto handler) { s.async_quota(owner, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "quota failed: " << r.error().message());
  return *r;
}

[[nodiscard]] storage::token_quota set_max(token_store& s, core::user_id owner,
                                           std::optional<std::uint64_t> n) {
  const auto r = finish(
      start<quota_result>([&](auto handler) { s.async_set_max_tokens(owner, n, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "set_max_tokens failed: " << r.error().message());
  return *r;
}

[[nodiscard]] std::vector<storage::removed_token> remove_expired(token_store& s, std::int64_t cutoff) {
  const auto r = finish(
      start<sweep_result>([&](auto handler) { s.async_remove_expired(cutoff, 1000, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "remove_expired failed: " << r.error().message());
  return *r;
}

// The count the store keeps is the number of tokens it lists.
void check_count(token_store& s, core::user_id owner) {
  BOOST_TEST_CONTEXT("owner " << owner) { BOOST_TEST(quota(s, owner).tokens == walk(s, owner).size()); }
}

[[nodiscard]] std::size_t successes(const std::vector<create_result>& rs) {
  return static_cast<std::size_t>(
      std::count_if(rs.begin(), rs.end(), [](const auto& r) { return r.has_value(); }));
}

// Every failure is the bound's refusal.
void check_refusals(const std::vector<create_result>& rs) {
  for (const auto& r : rs) {
    if (!r) BOOST_TEST(r.error() == err(core::errc::quota_exceeded), r.error().message());
  }
}

// A row of the tokens table as an older binary inserts it: (digest, prefix, description, type,
// created_at, owner).
[[nodiscard]] std::string row_values(core::user_id owner) {
  const auto r = make_record(owner, 0);
  return "('" + storage::pg::bytea_text(r.digest) + "', 'abcdef', 'old', 'admin', 1, " +
         std::to_string(owner) + ")";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cursor_lists)

BOOST_AUTO_TEST_CASE(list_after_answers_the_owners_tokens_after_the_position_in_id_order) {
  postgres_backend backend;
  const auto store = backend.open();
  std::vector<core::token_record> mine, theirs;
  std::vector<std::uint64_t> my_ids, their_ids;
  for (int i = 0; i < 10; ++i) {
    mine.push_back(make_record(31, i));
    theirs.push_back(make_record(32, i));
    my_ids.push_back(create_id(*store, mine.back()).value());
    their_ids.push_back(create_id(*store, theirs.back()).value());
  }
  const auto first = list_after(*store, 31, 0, 4);
  BOOST_REQUIRE_EQUAL(first.tokens.size(), 4u);
  BOOST_TEST(first.has_more);
  for (std::size_t i = 0; i < 4; ++i) {
    BOOST_TEST(first.tokens[i].id == my_ids[i]);
    check_same(first.tokens[i], mine[i]);
  }
  const auto rest = list_after(*store, 31, my_ids[3], 100);
  BOOST_REQUIRE_EQUAL(rest.tokens.size(), 6u);
  BOOST_TEST(!rest.has_more);
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(rest.tokens[i].id == my_ids[4 + i]);
  // A page that ends exactly at the last token has no more.
  const auto exact = list_after(*store, 31, my_ids[5], 4);
  BOOST_TEST(exact.tokens.size() == 4u);
  BOOST_TEST(!exact.has_more);
  BOOST_TEST(list_after(*store, 31, my_ids[9], 10).tokens.empty());
  BOOST_TEST(!list_after(*store, 31, my_ids[9], 10).has_more);
  BOOST_TEST(list_after(*store, 31, std::numeric_limits<std::uint64_t>::max(), 10).tokens.empty());
  // Another owner's id is only a position: the page holds this owner's tokens after it.
  const auto from_theirs = list_after(*store, 31, their_ids[6], 100);
  BOOST_REQUIRE_EQUAL(from_theirs.tokens.size(), 3u);
  for (const auto& t : from_theirs.tokens) BOOST_TEST(t.owner == 31u);
  BOOST_TEST(from_theirs.tokens.front().id == my_ids[7]);
  BOOST_TEST(list_after(*store, 33, 0, 10).tokens.empty());
}

// Each token that exists throughout a walk comes exactly once, in creation order; tokens deleted
// before the walk reaches them never come, tokens created during it come at its end; another
// owner's never. And the page is a seek on the (owner, id) index, for the custom and the generic
// plan of the statement.
BOOST_AUTO_TEST_CASE(walking_25000_tokens_with_deletes_and_creates_during_the_walk) {
  postgres_backend backend;
  const auto store = backend.open();
  constexpr core::user_id owner = 41;
  std::vector<core::token_record> records;
  for (int i = 0; i < 25'000; ++i) records.push_back(make_record(i % 10 == 9 ? 42 : owner, i));
  const auto created = create_all(*store, records);
  std::map<std::uint64_t, core::key_digest> existing;  // the owner's, by id
  std::uint64_t last_id = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    BOOST_REQUIRE_MESSAGE(created[i].has_value(), created[i].error().message());
    BOOST_REQUIRE(*created[i] > last_id);  // ids follow submission order
    last_id = *created[i];
    if (records[i].owner == owner) existing.emplace(*created[i], records[i].digest);
  }
  BOOST_REQUIRE_EQUAL(existing.size(), 22'500u);

  std::set<std::uint64_t> deleted_ahead, created_during;
  std::size_t deleted_behind = 0;
  std::vector<std::uint64_t> listed;
  int fresh = 0;
  std::uint64_t after = 0;
  for (int page_number = 0;; ++page_number) {
    const auto page = list_after(*store, owner, after, 1000);
    for (const auto& t : page.tokens) {
      BOOST_REQUIRE(t.owner == owner);
      listed.push_back(t.id);
    }
    if (!page.has_more) break;
    BOOST_REQUIRE(!page.tokens.empty());
    after = page.tokens.back().id;
    // Between pages: delete tokens ahead of the walk and behind it, create new ones.
    std::vector<std::uint64_t> ahead;
    for (auto it = existing.upper_bound(after); it != existing.end() && ahead.size() < 7;
         std::advance(it, 13)) {
      ahead.push_back(it->first);
      if (std::distance(it, existing.end()) <= 13) break;
    }
    for (const auto id : ahead) {
      BOOST_REQUIRE(!remove(*store, owner, existing.at(id)));
      existing.erase(id);
      deleted_ahead.insert(id);
    }
    if (page_number % 3 == 0) {
      const auto behind = page.tokens.front().id;
      if (existing.contains(behind)) {
        BOOST_REQUIRE(!remove(*store, owner, existing.at(behind)));
        existing.erase(behind);
        ++deleted_behind;
      }
    }
    for (int i = 0; i < 5; ++i) {
      const auto r = make_record(owner, 100'000 + fresh++);
      const auto id = create_id(*store, r);
      BOOST_REQUIRE(id.has_value());
      existing.emplace(*id, r.digest);
      created_during.insert(*id);
    }
  }
  BOOST_TEST(std::is_sorted(listed.begin(), listed.end()));
  BOOST_TEST((std::adjacent_find(listed.begin(), listed.end()) == listed.end()));  // none twice
  const std::set<std::uint64_t> seen(listed.begin(), listed.end());
  for (const auto& [id, digest] : existing) {
    BOOST_TEST_CONTEXT("token " << id) { BOOST_TEST(seen.contains(id)); }
  }
  for (const auto id : deleted_ahead) BOOST_TEST(!seen.contains(id));
  BOOST_TEST(deleted_ahead.size() > 100u);
  BOOST_TEST(deleted_behind > 5u);
  BOOST_TEST(created_during.size() > 100u);
  // Only the tokens deleted behind the walk were listed and are gone.
  BOOST_TEST(listed.size() == existing.size() + deleted_behind);
  BOOST_TEST(quota(*store, owner).tokens == existing.size());
  BOOST_TEST(quota(*store, 42).tokens == 2'500u);

  // The plan of the store's statement: an index scan on (owner, id) bounded by the position and the
  // owner, no sort, no filter; also the generic plan, for which one owner holding 90% of the tokens
  // makes a scan of the primary key filtering owners look cheap.
  side_session side(tokend::test::postgres_url());
  const std::string tokens = "\"" + backend.schema + "\".tokend_tokens";
  side.exec("ANALYZE " + tokens);
  side.exec(
      "PREPARE list_after_plan(bigint, bigint, bigint) AS SELECT encode(digest, 'hex'), display_prefix,"
      " description, type, created_at, owner, expires_at, last_used_at, id, rate_limit,"
      " coalesce(rate_window, 1), coalesce(rate_burst, 0) FROM " +
      tokens +
      " WHERE (owner, id) > ($1::bigint, $2::bigint) AND owner <= $1::bigint ORDER BY owner, id"
      " LIMIT $3::bigint");
  side.exec(
      "PREPARE list_plan(bigint, bigint, bigint) AS SELECT encode(digest, 'hex'), display_prefix,"
      " description, type, created_at, owner, expires_at, last_used_at, id, rate_limit,"
      " coalesce(rate_window, 1), coalesce(rate_burst, 0) FROM " +
      tokens +
      " WHERE owner >= $1::bigint AND owner <= $1::bigint ORDER BY owner, id OFFSET $2::bigint"
      " LIMIT $3::bigint");
  for (const char* mode : {"force_custom_plan", "force_generic_plan"}) {
    side.exec(std::string("SET plan_cache_mode = ") + mode);
    for (const auto& [who, position] : {std::pair{41, std::uint64_t{0}}, std::pair{41, after},
                                        std::pair{42, std::uint64_t{0}}, std::pair{42, after}}) {
      std::string plan;
      for (const auto& line : side.column("EXPLAIN EXECUTE list_after_plan(" + std::to_string(who) + ", " +
                                          std::to_string(position) + ", 1001)"))
        plan += line + "\n";
      BOOST_TEST_CONTEXT(mode << " plan for " << who << " at " << position << ":\n" << plan) {
        BOOST_TEST(plan.find("Index Scan using tokend_tokens_owner_id") != std::string::npos);
        BOOST_TEST(plan.find("Index Cond: ((ROW(owner, id) > ROW(") != std::string::npos);
        BOOST_TEST(plan.find("(owner <= ") != std::string::npos);
        BOOST_TEST(plan.find("Sort") == std::string::npos);
        BOOST_TEST(plan.find("Filter") == std::string::npos);
      }
    }
    // The page by offset: the owner's range of the same index, never a scan of ids filtering owners.
    for (const int who : {41, 42}) {
      std::string plan;
      for (const auto& line :
           side.column("EXPLAIN EXECUTE list_plan(" + std::to_string(who) + ", 9000, 1001)"))
        plan += line + "\n";
      BOOST_TEST_CONTEXT(mode << " plan of a page by offset for " << who << ":\n" << plan) {
        // Only the owner's rows are read (sorted, when that is cheaper for a short list).
        BOOST_TEST(plan.find("tokend_tokens_owner_id") != std::string::npos);
        BOOST_TEST(plan.find("tokend_tokens_pkey") == std::string::npos);
        BOOST_TEST(plan.find("Filter") == std::string::npos);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bounds)

// Two processes creating for one owner at the same time end with exactly the bound: each create
// statement locks the owner's row and counts what the other committed.
BOOST_AUTO_TEST_CASE(two_store_instances_creating_at_once_end_with_exactly_the_bound) {
  postgres_backend backend;
  const auto a = backend.open();
  const auto b = backend.open();
  a->set_default_max_tokens(40);
  b->set_default_max_tokens(40);
  for (core::user_id owner = 51; owner < 56; ++owner) {
    BOOST_TEST_CONTEXT("owner " << owner) {
      // Each process gets its creates from a thread of its own, so the two submit in parallel.
      const auto records_b = records_of(owner, 60, 1000);
      pending_creates pending_b;
      std::thread other([&] { pending_b = submit_all(*b, records_b); });
      auto pending_a = submit_all(*a, records_of(owner, 60));
      other.join();
      const auto from_a = finish_all(std::move(pending_a));
      const auto from_b = finish_all(std::move(pending_b));
      check_refusals(from_a);
      check_refusals(from_b);
      BOOST_TEST(successes(from_a) + successes(from_b) == 40u);
      BOOST_TEST(quota(*a, owner).tokens == 40u);
      BOOST_TEST(walk(*b, owner).size() == 40u);
    }
  }
}

// A batch holding several creates of one owner inserts those that fit, in submission order, and
// refuses the rest; other owners' creates in it are not held back.
BOOST_AUTO_TEST_CASE(a_batch_keeps_the_creates_that_fit_and_refuses_the_rest) {
  postgres_backend backend;
  const auto store = backend.open();
  store->set_default_max_tokens(5);
  BOOST_TEST(successes(create_all(*store, records_of(61, 3))) == 3u);
  auto batch = records_of(61, 6, 10);
  for (const auto& r : records_of(62, 2)) batch.push_back(r);
  const auto answers = create_all(*store, batch);
  for (std::size_t i = 0; i < 6; ++i) {
    BOOST_TEST_CONTEXT("create " << i) {
      if (i < 2) {
        BOOST_TEST(answers[i].has_value());
      } else {
        BOOST_TEST((!answers[i] && answers[i].error() == err(core::errc::quota_exceeded)));
      }
    }
  }
  BOOST_TEST(answers[6].has_value());
  BOOST_TEST(answers[7].has_value());
  BOOST_TEST(quota(*store, 61).tokens == 5u);
  BOOST_TEST(!quota(*store, 61).max_tokens.has_value());
  BOOST_TEST(quota(*store, 62).tokens == 2u);
  // Nothing of the refused was stored.
  for (std::size_t i = 2; i < 6; ++i) BOOST_TEST(!lookup(*store, batch[i].digest).has_value());
}

BOOST_AUTO_TEST_CASE(own_bounds_none_and_deletes_free_room) {
  postgres_backend backend;
  auto store = backend.open();
  store->set_default_max_tokens(3);
  const auto held = records_of(63, 3);
  BOOST_TEST(successes(create_all(*store, held)) == 3u);
  BOOST_TEST(create_id(*store, make_record(63, 3)).error() == err(core::errc::quota_exceeded));
  // An owner's own bound overrides the default, either way.
  auto q = set_max(*store, 63, 5);
  BOOST_TEST(q.tokens == 3u);
  BOOST_TEST((q.max_tokens == std::optional<std::uint64_t>{5}));
  BOOST_TEST(successes(create_all(*store, records_of(63, 4, 10))) == 2u);
  BOOST_TEST(set_max(*store, 63, 0).tokens == 5u);  // none
  BOOST_TEST(successes(create_all(*store, records_of(63, 4, 20))) == 4u);
  // A bound under the count refuses creates and removes nothing.
  BOOST_TEST(set_max(*store, 64, 1).tokens == 0u);
  BOOST_TEST(set_max(*store, 63, 2).tokens == 9u);
  BOOST_TEST(create_id(*store, make_record(63, 30)).error() == err(core::errc::quota_exceeded));
  BOOST_TEST(walk(*store, 63).size() == 9u);
  // Durable: a reopened store keeps the bounds; back to the default.
  store.reset();
  store = backend.open();
  store->set_default_max_tokens(3);
  BOOST_TEST((quota(*store, 63).max_tokens == std::optional<std::uint64_t>{2}));
  BOOST_TEST((quota(*store, 64).max_tokens == std::optional<std::uint64_t>{1}));
  q = set_max(*store, 63, std::nullopt);
  BOOST_TEST(!q.max_tokens.has_value());
  BOOST_TEST(q.tokens == 9u);
  // Deletes free room: at 2 held, one more fits under the default of 3.
  const auto tokens = walk(*store, 63);
  for (std::size_t i = 0; i < 7; ++i) BOOST_REQUIRE(!remove(*store, 63, tokens[i].digest));
  BOOST_TEST(quota(*store, 63).tokens == 2u);
  BOOST_TEST(create_id(*store, make_record(63, 40)).has_value());
  BOOST_TEST(create_id(*store, make_record(63, 41)).error() == err(core::errc::quota_exceeded));
  // The default 0: none.
  store->set_default_max_tokens(0);
  BOOST_TEST(successes(create_all(*store, records_of(63, 10, 50))) == 10u);
  // A roll at the bound is never refused.
  store->set_default_max_tokens(13);
  const auto old = walk(*store, 63).front();
  storage::roll_request roll;
  const std::string key = core::generate_key();
  roll.old = {63, old.id};
  roll.digest = core::digest_key(key);
  roll.display_prefix = key.substr(0, core::display_prefix_length);
  roll.now = 1'800'000'000;
  roll.old_expires_at = 1'800'000'000;
  const auto rolled = finish(start<result<storage::rolled_token>>(
      [&](auto handler) { store->async_roll(roll, std::move(handler)); }));
  BOOST_TEST(rolled.has_value());
  check_count(*store, 63);
  BOOST_TEST(quota(*store, 65).tokens == 0u);  // never seen
  BOOST_TEST(!quota(*store, 65).max_tokens.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(counts)

// Every path that adds or removes a token moves the count, and nothing else does.
BOOST_AUTO_TEST_CASE(the_triggers_count_deletes_sweeps_and_an_older_binarys_writes) {
  postgres_backend backend;
  const auto store = backend.open();
  std::vector<core::token_record> rs = records_of(71, 6);
  rs[0].expires_at = 1'000;
  rs[1].expires_at = 1'500;
  rs[2].expires_at = 5'000;
  rs.push_back(make_record(72, 0));
  rs.back().expires_at = 1'200;
  std::vector<std::uint64_t> ids;
  for (const auto& r : create_all(*store, rs)) ids.push_back(r.value());
  BOOST_TEST(quota(*store, 71).tokens == 6u);
  BOOST_TEST(quota(*store, 72).tokens == 1u);
  const auto remove_fourth = [&](auto handler) {
    store->async_remove(storage::token_ref{71, ids[3]}, std::move(handler));
  };
  const auto by_id = finish(start<result<core::key_digest>>(remove_fourth));
  BOOST_TEST(by_id.has_value());
  BOOST_TEST(!remove(*store, 71, rs[4].digest));
  BOOST_TEST(quota(*store, 71).tokens == 4u);
  // Another owner's token and a missing one: nothing removed, nothing counted.
  BOOST_TEST(remove(*store, 72, rs[5].digest) == err(core::errc::not_found));
  BOOST_TEST(remove(*store, 71, rs[4].digest) == err(core::errc::not_found));
  BOOST_TEST(quota(*store, 71).tokens == 4u);
  // A sweep over two owners.
  BOOST_TEST(remove_expired(*store, 2'000).size() == 3u);
  BOOST_TEST(quota(*store, 71).tokens == 2u);
  BOOST_TEST(quota(*store, 72).tokens == 0u);
  // Uses and limits change no count.
  const auto ec = finish(start<error_code>([&](auto handler) {
    store->async_record_uses({{rs[2].digest, 71, 1'796'200'000}}, std::move(handler));
  }));
  BOOST_TEST(!ec);
  const auto limited = finish(start<result<core::key_digest>>([&](auto handler) {
    store->async_set_rate_limit({71, rs[2].digest}, core::rate_limit{5, 1, 0}, std::move(handler));
  }));
  BOOST_TEST(limited.has_value());
  check_count(*store, 71);

  // What an older binary does, which knows no counts: one statement inserting for several owners,
  // another deleting for several, as its create batches and sweeps do.
  side_session side(tokend::test::postgres_url());
  const std::string tokens = "\"" + backend.schema + "\".tokend_tokens";
  side.exec("INSERT INTO " + tokens +
            " (digest, display_prefix, description, type, created_at, owner) VALUES " + row_values(71) +
            ", " + row_values(73) + ", " + row_values(71) + ", " + row_values(74));
  BOOST_TEST(quota(*store, 71).tokens == 4u);
  BOOST_TEST(quota(*store, 73).tokens == 1u);
  BOOST_TEST(quota(*store, 74).tokens == 1u);
  side.exec("DELETE FROM " + tokens + " WHERE owner IN (73, 74) OR id = (SELECT max(id) FROM " + tokens +
            " WHERE owner = 71)");
  BOOST_TEST(quota(*store, 71).tokens == 3u);
  BOOST_TEST(quota(*store, 73).tokens == 0u);
  BOOST_TEST(quota(*store, 74).tokens == 0u);
  check_count(*store, 71);
  side.exec("TRUNCATE " + tokens);
  BOOST_TEST(quota(*store, 71).tokens == 0u);
}

// Creates, deletes and sweeps of several owners from two processes at once: none deadlocks (which
// PostgreSQL would break by failing a statement), and every count ends right.
BOOST_AUTO_TEST_CASE(concurrent_writes_of_several_owners_in_two_processes_never_deadlock) {
  postgres_backend backend;
  const auto a = backend.open();
  const auto b = backend.open();
  std::vector<core::token_record> first;
  for (int i = 0; i < 400; ++i) {
    first.push_back(make_record(static_cast<core::user_id>(91 + i % 5), i));
    if (i % 2 == 0) first.back().expires_at = 1'000 + i;
  }
  for (const auto& r : create_all(*a, first)) BOOST_REQUIRE(r.has_value());
  std::vector<std::future<outcome<error_code>>> removals;
  std::vector<std::future<outcome<sweep_result>>> sweeps;
  std::vector<core::token_record> records_b;
  for (int i = 0; i < 300; ++i)
    records_b.push_back(make_record(static_cast<core::user_id>(95 - i % 5), 1000 + i));
  pending_creates pending_b;
  std::thread other([&] { pending_b = submit_all(*b, records_b); });
  for (int i = 1; i < 400; i += 4)
    removals.push_back(start_remove(i % 8 == 1 ? *a : *b, first[i].owner, first[i].digest));
  for (int i = 0; i < 4; ++i) {
    sweeps.push_back(start<sweep_result>([&](auto handler) {
      (i % 2 == 0 ? *a : *b).async_remove_expired(1'000 + 100 * (i + 1), 30, std::move(handler));
    }));
  }
  std::vector<core::token_record> rs;
  for (int i = 0; i < 300; ++i) rs.push_back(make_record(static_cast<core::user_id>(91 + i % 5), 2000 + i));
  const auto from_a = create_all(*a, rs);
  other.join();
  const auto from_b = finish_all(std::move(pending_b));
  for (const auto& r : from_a) BOOST_TEST(r.has_value());
  for (const auto& r : from_b) BOOST_TEST(r.has_value());
  for (auto& f : removals) BOOST_TEST(!finish(std::move(f), where::storage_thread, long_deadline));
  for (auto& f : sweeps) BOOST_TEST(finish(std::move(f), where::storage_thread, long_deadline).has_value());
  for (core::user_id owner = 91; owner < 96; ++owner) check_count(*b, owner);
}

// The previous format's fixture gains its counts at start-up.
BOOST_AUTO_TEST_CASE(counts_of_the_previous_formats_data) {
  std::string error;
  const std::string schema = tokend::test::load_postgres_v1(error);
  BOOST_REQUIRE_MESSAGE(!schema.empty(), "loading the fixture failed: " << error);
  const auto store = storage::open_postgres_store(postgres_options_for(schema));
  BOOST_TEST(quota(*store, 7).tokens == 4u);
  BOOST_TEST(!quota(*store, 7).max_tokens.has_value());
  store->set_default_max_tokens(5);
  BOOST_TEST(create_id(*store, make_record(7, 1)).has_value());
  BOOST_TEST(create_id(*store, make_record(7, 2)).error() == err(core::errc::quota_exceeded));
  BOOST_TEST(walk(*store, 7).size() == 5u);
}

// A schema of the release before counts (this one without its owners table, triggers and secret),
// written to by that release's processes after this one stopped, gains right counts at start-up.
BOOST_AUTO_TEST_CASE(counts_of_the_release_before_counts) {
  postgres_backend backend;
  {
    const auto store = backend.open();
    BOOST_TEST(successes(create_all(*store, records_of(81, 3))) == 3u);
    BOOST_TEST(successes(create_all(*store, records_of(82, 2))) == 2u);
  }
  {
    side_session side(tokend::test::postgres_url());
    const std::string s = "\"" + backend.schema + "\".";
    side.exec("DROP TABLE " + s + "tokend_owners, " + s + "tokend_secrets; DROP FUNCTION " + s +
              "tokend_count_added, " + s + "tokend_count_removed, " + s + "tokend_count_truncated CASCADE");
    side.exec("INSERT INTO " + s +
              "tokend_tokens (digest, display_prefix, description, type, created_at, owner)"
              " VALUES " +
              row_values(81) + ", " + row_values(83));
    side.exec("DELETE FROM " + s + "tokend_tokens WHERE id = (SELECT min(id) FROM " + s +
              "tokend_tokens WHERE owner = 82)");
  }
  const auto store = backend.open();
  BOOST_TEST(quota(*store, 81).tokens == 4u);
  BOOST_TEST(quota(*store, 82).tokens == 1u);
  BOOST_TEST(quota(*store, 83).tokens == 1u);
  BOOST_TEST(store->cursor_secret() != (std::array<std::uint8_t, 32>{}));
  BOOST_TEST(!remove(*store, 81, walk(*store, 81).front().digest));
  BOOST_TEST(quota(*store, 81).tokens == 3u);
}

// Once a schema has its counts, a process starting on it takes no lock: a transaction holding a
// write on the tokens table (and an owner's row) does not hold its start-up.
BOOST_AUTO_TEST_CASE(starting_on_a_counted_schema_waits_for_no_writer) {
  postgres_backend backend;
  const auto a = backend.open();
  BOOST_TEST(create_id(*a, make_record(85, 1)).has_value());
  side_session writer(tokend::test::postgres_url());
  writer.exec("BEGIN; INSERT INTO \"" + backend.schema +
              "\".tokend_tokens (digest, display_prefix, description, type, created_at, owner) VALUES " +
              row_values(85));
  auto options = postgres_options_for(backend.schema);
  options.start_timeout = std::chrono::seconds(3);
  const auto b = storage::open_postgres_store(options);  // throws when it waits out start_timeout
  BOOST_TEST(quota(*b, 86).tokens == 0u);
  writer.exec("COMMIT");
  BOOST_TEST(quota(*b, 85).tokens == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(secret)

BOOST_AUTO_TEST_CASE(the_cursor_secret_is_the_same_in_every_process_and_after_a_reopen) {
  postgres_backend backend;
  auto a = backend.open();
  const auto b = backend.open();
  const auto secret = a->cursor_secret();
  BOOST_TEST(secret != (std::array<std::uint8_t, 32>{}));
  BOOST_TEST(b->cursor_secret() == secret);
  a.reset();
  a = backend.open();
  BOOST_TEST(a->cursor_secret() == secret);
  postgres_backend elsewhere;
  BOOST_TEST(elsewhere.open()->cursor_secret() != secret);
}

BOOST_AUTO_TEST_SUITE_END()

// Not a test: the figures of a deep list. Run with
// --run_test=measure/list_of_300000_tokens --log_level=message.
BOOST_AUTO_TEST_SUITE(measure, *boost::unit_test::disabled())

BOOST_AUTO_TEST_CASE(list_of_300000_tokens) {
  using clock = std::chrono::steady_clock;
  postgres_backend backend;
  const auto store = backend.open();
  constexpr core::user_id owner = 101;
  std::vector<std::uint64_t> ids;
  const auto creating = clock::now();
  for (int chunk = 0; chunk < 30; ++chunk) {
    for (const auto& r : create_all(*store, records_of(owner, 10'000, chunk * 10'000)))
      ids.push_back(r.value());
  }
  BOOST_TEST_MESSAGE("created 300000 tokens in "
                     << std::chrono::duration<double>(clock::now() - creating).count() << " s");
  side_session side(tokend::test::postgres_url());
  side.exec("VACUUM ANALYZE \"" + backend.schema + "\".tokend_tokens");
  const auto median_ms = [&](auto page) {
    std::vector<double> times;
    for (int i = 0; i < 5; ++i) {
      const auto since = clock::now();
      const auto got = page();
      times.push_back(std::chrono::duration<double, std::milli>(clock::now() - since).count());
      BOOST_TEST(got.tokens.size() == 1000u);
    }
    std::sort(times.begin(), times.end());
    return times[2];
  };
  const auto at = [&](std::size_t n) { return n == 0 ? std::uint64_t{0} : ids[n - 1]; };
  for (const std::size_t position : {std::size_t{0}, std::size_t{150'000}, std::size_t{299'000}}) {
    const double seek = median_ms([&] { return list_after(*store, owner, at(position), 1000); });
    const double skip = median_ms([&] { return list(*store, owner, position, 1000); });
    BOOST_TEST_MESSAGE("page at " << position << ": list_after " << seek << " ms, offset " << skip << " ms");
  }
}

BOOST_AUTO_TEST_SUITE_END()
