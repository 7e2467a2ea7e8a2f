// Unit tests of core::list_cache: hits, invalidation, stale fills, and the record budget.
#define BOOST_TEST_MODULE core_list_cache_test
#include <boost/test/unit_test.hpp>

#include "core/list_cache.hpp"

#include <string>
#include <vector>

using tokend::core::list_cache;
using tokend::core::token_record;
using tokend::core::user_id;

namespace {

std::vector<token_record> tokens(user_id owner, std::size_t n) {
  std::vector<token_record> out;
  for (std::size_t i = 0; i < n; ++i) {
    token_record r;
    r.owner = owner;
    r.description = "token " + std::to_string(i);
    r.display_prefix = "abcdef";
    r.type = "admin";
    out.push_back(r);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(miss_then_fill_then_hit) {
  list_cache cache(1000, 1);
  BOOST_TEST(!cache.find(7));
  cache.fill(7, cache.ticket(7), tokens(7, 3));
  const auto hit = cache.find(7);
  BOOST_REQUIRE(hit);
  BOOST_TEST(hit->size() == 3u);
  BOOST_TEST(hit->at(2).description == "token 2");
  BOOST_TEST(!cache.find(8));
  BOOST_TEST(cache.records() == 4u);  // three tokens and the entry
}

BOOST_AUTO_TEST_CASE(invalidate_drops_the_list) {
  list_cache cache(1000);
  cache.fill(7, cache.ticket(7), tokens(7, 3));
  cache.invalidate(7);
  BOOST_TEST(!cache.find(7));
  BOOST_TEST(cache.records() == 0u);
}

BOOST_AUTO_TEST_CASE(a_fill_that_raced_a_write_is_dropped) {
  list_cache cache(1000);
  const auto before_write = cache.ticket(7);
  cache.invalidate(7);  // a create committed while the list was being read
  cache.fill(7, before_write, tokens(7, 3));
  BOOST_TEST(!cache.find(7));
  cache.fill(7, cache.ticket(7), tokens(7, 4));
  BOOST_REQUIRE(cache.find(7));
  BOOST_TEST(cache.find(7)->size() == 4u);
}

BOOST_AUTO_TEST_CASE(refill_replaces_and_keeps_the_count_right) {
  list_cache cache(1000, 1);
  cache.fill(7, cache.ticket(7), tokens(7, 3));
  cache.fill(7, cache.ticket(7), tokens(7, 5));
  BOOST_TEST(cache.find(7)->size() == 5u);
  BOOST_TEST(cache.records() == 6u);
}

BOOST_AUTO_TEST_CASE(the_record_budget_evicts_oldest_lists_first) {
  list_cache cache(10, 1);
  cache.fill(1, cache.ticket(1), tokens(1, 4));
  cache.fill(2, cache.ticket(2), tokens(2, 4));
  cache.fill(3, cache.ticket(3), tokens(3, 4));  // 3 x (4 + 1) > 10: user 1 goes
  BOOST_TEST(!cache.find(1));
  BOOST_TEST(cache.find(2));
  BOOST_TEST(cache.find(3));
  BOOST_TEST(cache.records() <= 10u);
}

BOOST_AUTO_TEST_CASE(a_list_larger_than_the_budget_is_not_kept) {
  list_cache cache(10, 1);
  cache.fill(1, cache.ticket(1), tokens(1, 10));  // 10 + 1 > 10
  BOOST_TEST(!cache.find(1));
}

BOOST_AUTO_TEST_CASE(zero_budget_disables_the_cache) {
  list_cache cache(0);
  cache.fill(1, cache.ticket(1), tokens(1, 1));
  BOOST_TEST(!cache.find(1));
  cache.fill(2, cache.ticket(2), {});  // an empty list costs nothing but is still not kept
  BOOST_TEST(cache.records() == 0u);
}
