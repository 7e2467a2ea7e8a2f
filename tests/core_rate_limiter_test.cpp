// Unit tests for core/rate_limiter on a clock the test sets (plain nanoseconds): exact bursts and
// refills, the numbers of the RateLimit headers, changed limits, other instances' counts and debts,
// shares, trimming, the capacity bound, the most refused keys, extreme limits, and threads.
#define BOOST_TEST_MODULE core_rate_limiter_test
#include <boost/test/unit_test.hpp>

#include "core/rate_limiter.hpp"

#include <algorithm>
#include <cstdint>
#include <latch>
#include <limits>
#include <map>
#include <thread>
#include <vector>

namespace core = tokend::core;

namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t second = 1'000 * ms;
constexpr std::int64_t t0 = 1'000 * second;

core::key_digest digest(std::uint8_t n) {
  core::key_digest d{};
  d.fill(n);
  return d;
}

core::rate_limit per(std::uint32_t limit, std::uint32_t window_seconds, std::uint32_t burst = 0) {
  return {limit, window_seconds, burst};
}

// Admits `key` `n` times at `now`; how many were allowed.
int admit_times(core::rate_limiter& limiter, const core::key_digest& key, const core::rate_limit& limit,
                std::int64_t now, int n) {
  int allowed = 0;
  for (int i = 0; i < n; ++i) allowed += limiter.admit(key, 1, limit, now).allowed ? 1 : 0;
  return allowed;
}

bool allowed(core::rate_limiter& limiter, const core::key_digest& key, const core::rate_limit& limit,
             std::int64_t now) {
  return limiter.admit(key, 1, limit, now).allowed;
}

std::map<std::uint64_t, std::uint32_t> drained(core::rate_limiter& limiter) {
  std::map<std::uint64_t, std::uint32_t> out;
  for (const auto& a : limiter.drain_admitted()) out[a.tag] += a.count;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(one_instance)

BOOST_AUTO_TEST_CASE(exactly_the_burst_is_admitted_at_once) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 10) == 10);
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0));
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 100) == 0);
  // Another key has its own bucket.
  BOOST_TEST(admit_times(limiter, digest(2), limit, t0, 11) == 10);
  BOOST_TEST(limiter.size() == 2u);
}

BOOST_AUTO_TEST_CASE(the_bucket_refills_continuously) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);  // one request every 100 ms
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 10) == 10);
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 100 * ms - 1));
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 100 * ms));
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 100 * ms));
  // Refused requests take nothing: the next one still comes 100 ms after the last admitted.
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 199 * ms));
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 200 * ms));
  // A long pause fills the bucket, and no more than that.
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0 + 3600 * second, 20) == 10);
}

BOOST_AUTO_TEST_CASE(a_clock_going_back_refills_nothing) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 10) == 10);
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 - second));
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 99 * ms));  // counted from t0, not from the past
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 100 * ms));
}

BOOST_AUTO_TEST_CASE(the_header_numbers) {
  core::rate_limiter limiter(100);
  const auto limit = per(6, 60);  // one request every 10 s, 6 at most
  auto d = limiter.admit(digest(1), 1, limit, t0);
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.remaining == 5u);
  BOOST_TEST(d.reset_seconds == 10u);  // until full again
  BOOST_TEST(d.retry_after_seconds == 0u);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 5) == 5);
  d = limiter.admit(digest(1), 1, limit, t0);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.remaining == 0u);
  BOOST_TEST(d.reset_seconds == 60u);
  BOOST_TEST(d.retry_after_seconds == 10u);
  // 1.5 requests refilled: one admitted, half a request left.
  d = limiter.admit(digest(1), 1, limit, t0 + 15 * second);
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.remaining == 0u);
  BOOST_TEST(d.reset_seconds == 55u);
  d = limiter.admit(digest(1), 1, limit, t0 + 15 * second);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.retry_after_seconds == 5u);
  // Rounded up, and never 0 while refused.
  d = limiter.admit(digest(1), 1, limit, t0 + 19 * second + 500 * ms);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.retry_after_seconds == 1u);
  d = limiter.admit(digest(1), 1, limit, t0 + 20 * second - 1);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.retry_after_seconds == 1u);
  BOOST_TEST(d.reset_seconds == 51u);
  // Full again: reset 0 before this request, 10 after it.
  d = limiter.admit(digest(1), 1, limit, t0 + 3600 * second);
  BOOST_TEST(d.remaining == 5u);
  BOOST_TEST(d.reset_seconds == 10u);
}

BOOST_AUTO_TEST_CASE(a_window_longer_than_a_second) {
  core::rate_limiter limiter(100);
  const auto limit = per(1, 86'400);
  const auto first = limiter.admit(digest(1), 1, limit, t0);
  BOOST_TEST(first.allowed);
  BOOST_TEST(first.reset_seconds == 86'400u);
  const auto refused = limiter.admit(digest(1), 1, limit, t0 + 1);
  BOOST_TEST(!refused.allowed);
  BOOST_TEST(refused.retry_after_seconds == 86'400u);
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 86'400 * second - 1));
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 86'400 * second));
}

BOOST_AUTO_TEST_CASE(a_burst_above_the_limit) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1, 30);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 40) == 30);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0 + second, 40) == 10);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0 + 4 * second, 40) == 30);
}

BOOST_AUTO_TEST_CASE(a_burst_below_the_limit) {
  core::rate_limiter limiter(100);
  const auto limit = per(100, 1, 5);  // one request every 10 ms, 5 at most
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 10) == 5);
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 10 * ms - 1));
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 10 * ms));
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0 + second, 10) == 5);
  // Over a whole second at the limit's pace: 100 more.
  int admitted = 0;
  for (std::int64_t t = t0 + second + 10 * ms; t <= t0 + 2 * second; t += 10 * ms)
    admitted += admit_times(limiter, digest(1), limit, t, 3);
  BOOST_TEST(admitted == 100);
}

BOOST_AUTO_TEST_CASE(a_changed_limit_keeps_the_requests_taken) {
  core::rate_limiter limiter(100);
  BOOST_TEST(admit_times(limiter, digest(1), per(10, 1), t0, 5) == 5);  // 5 taken
  const auto d = limiter.admit(digest(1), 1, per(20, 1), t0);
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.remaining == 14u);  // 20 less the 5 taken, less this one
  // A raised limit has its extra room at once, even for an exhausted key.
  BOOST_TEST(admit_times(limiter, digest(2), per(10, 1), t0, 10) == 10);
  BOOST_TEST(admit_times(limiter, digest(2), per(20, 1), t0, 20) == 10);
  BOOST_TEST(!allowed(limiter, digest(2), per(20, 1), t0 + 50 * ms - 1));
  BOOST_TEST(allowed(limiter, digest(2), per(20, 1), t0 + 50 * ms));
  // Changed at the time of the change: from 1 a day, exhausted, to 1000 a second.
  BOOST_TEST(admit_times(limiter, digest(4), per(1, 86400), t0, 1) == 1);
  limiter.reconfigure(digest(4), per(1000, 1, 10), t0 + ms);
  BOOST_TEST(admit_times(limiter, digest(4), per(1000, 1, 10), t0 + ms, 20) == 9);
  limiter.reconfigure(digest(4), core::rate_limit{}, t0 + ms);  // unlimited: the bucket goes
  BOOST_TEST(limiter.size() == 2u);
  // A lower limit does not hand out the old bucket: what was taken may exceed it (a debt).
  BOOST_TEST(admit_times(limiter, digest(3), per(100, 1), t0, 3) == 3);
  BOOST_TEST(admit_times(limiter, digest(3), per(2, 1), t0, 10) == 0);
  BOOST_TEST(!allowed(limiter, digest(3), per(2, 1), t0 + second - 1));  // a debt of one to pay first
  BOOST_TEST(allowed(limiter, digest(3), per(2, 1), t0 + second));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(several_instances)

BOOST_AUTO_TEST_CASE(admits_are_drained_once_and_refusals_are_not_counted) {
  core::rate_limiter limiter(100);
  BOOST_TEST(admit_times(limiter, digest(1), per(2, 1), t0, 5) == 2);
  BOOST_TEST(admit_times(limiter, digest(2), per(10, 1), t0, 3) == 3);
  const auto counts = drained(limiter);
  BOOST_TEST(counts.size() == 2u);
  BOOST_TEST(counts.at(core::key_tag(digest(1))) == 2u);
  BOOST_TEST(counts.at(core::key_tag(digest(2))) == 3u);
  BOOST_TEST(drained(limiter).empty());
  BOOST_TEST(admit_times(limiter, digest(2), per(10, 1), t0, 1) == 1);
  BOOST_TEST(drained(limiter).at(core::key_tag(digest(2))) == 1u);
}

BOOST_AUTO_TEST_CASE(other_instances_counts_go_into_debt_which_is_paid_back) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);
  const std::uint64_t tag = core::key_tag(digest(1));
  BOOST_TEST(allowed(limiter, digest(1), limit, t0));  // 9 left
  limiter.debit(tag, 19, t0);                          // 10 in debt
  const auto d = limiter.admit(digest(1), 1, limit, t0);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.remaining == 0u);
  BOOST_TEST(d.retry_after_seconds == 2u);  // 11 requests to refill: 1.1 s
  BOOST_TEST(d.reset_seconds == 2u);        // 20 requests: 2 s
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 1100 * ms - 1));
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 1100 * ms));
  // Debits are not this instance's admits.
  BOOST_TEST(drained(limiter).at(tag) == 2u);
}

BOOST_AUTO_TEST_CASE(counts_of_a_key_not_seen_yet_wait_for_its_first_request) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);
  limiter.debit(core::key_tag(digest(1)), 4, t0);
  limiter.debit(core::key_tag(digest(1)), 3, t0);
  BOOST_TEST(limiter.admit(digest(1), 1, limit, t0).remaining == 2u);  // 10 - 7 - 1
  // Refilled from when they arrived.
  limiter.debit(core::key_tag(digest(2)), 6, t0);
  BOOST_TEST(limiter.admit(digest(2), 1, limit, t0 + 200 * ms).remaining == 5u);  // 10 - 6 + 2 - 1
  // More than the bucket: the first request is refused.
  limiter.debit(core::key_tag(digest(3)), 15, t0);
  const auto d = limiter.admit(digest(3), 1, limit, t0);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.retry_after_seconds == 1u);  // 6 requests to refill
  BOOST_TEST(limiter.top_refused(10).size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_share_holds_to_a_fraction_of_every_limit) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);
  BOOST_TEST(limiter.share() == 1u);
  limiter.set_share(2);
  BOOST_TEST(limiter.share() == 2u);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 10) == 5);     // half the bucket
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 200 * ms - 1));  // half the pace
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 200 * ms));
  // A bucket of one request is not shared down to nothing.
  BOOST_TEST(admit_times(limiter, digest(2), per(1, 1), t0, 5) == 1);
  BOOST_TEST(!allowed(limiter, digest(2), per(1, 1), t0 + 2 * second - 1));
  BOOST_TEST(allowed(limiter, digest(2), per(1, 1), t0 + 2 * second));
  // The whole limit again: a full bucket of 5 becomes a full one of 10.
  limiter.set_share(1);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0 + 10 * second, 20) == 10);
  // Out of bounds.
  limiter.set_share(0);
  BOOST_TEST(limiter.share() == 1u);
  limiter.set_share(std::numeric_limits<std::uint32_t>::max());
  BOOST_TEST(limiter.share() == core::rate_limiter::max_share);
}

BOOST_AUTO_TEST_CASE(a_share_keeps_how_full_a_bucket_was) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 6) == 6);  // 4 of 10 left
  limiter.set_share(2);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0, 10) == 2);  // 2 of 5
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(housekeeping)

BOOST_AUTO_TEST_CASE(trim_drops_only_buckets_full_again_with_nothing_to_share) {
  core::rate_limiter limiter(100);
  const auto limit = per(10, 1);
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0 + 500 * ms, 10) == 10);  // empty
  BOOST_TEST(admit_times(limiter, digest(2), limit, t0 + 900 * ms, 1) == 1);
  (void)drained(limiter);
  BOOST_TEST(admit_times(limiter, digest(3), limit, t0 + 900 * ms, 1) == 1);  // not drained
  limiter.debit(core::key_tag(digest(4)), 1, t0);                             // an unseen key's count
  BOOST_TEST(limiter.size() == 4u);
  limiter.trim(t0 + 999 * ms);
  BOOST_TEST(limiter.size() == 4u);
  limiter.trim(t0 + 1000 * ms);  // key 2 full again
  BOOST_TEST(limiter.size() == 3u);
  limiter.trim(t0 + 1500 * ms - 1);
  BOOST_TEST(limiter.size() == 3u);
  limiter.trim(t0 + 10 * second);  // key 1 too; key 3 still has an admit to share
  BOOST_TEST(limiter.size() == 2u);
  (void)drained(limiter);
  limiter.trim(t0 + 10 * second);
  BOOST_TEST(limiter.size() == 1u);
  // The unseen key's count is kept a day.
  limiter.trim(t0 + 86'400 * second - 1);
  BOOST_TEST(limiter.size() == 1u);
  limiter.trim(t0 + 86'400 * second);
  BOOST_TEST(limiter.size() == 0u);
  // A dropped key starts full.
  BOOST_TEST(admit_times(limiter, digest(1), limit, t0 + 86'400 * second, 20) == 10);
}

BOOST_AUTO_TEST_CASE(past_its_capacity_the_fullest_bucket_goes) {
  core::rate_limiter limiter(4, 1);
  const auto limit = per(10, 1);
  for (std::uint8_t k = 0; k < 4; ++k) BOOST_TEST(admit_times(limiter, digest(k), limit, t0, k + 1) == k + 1);
  BOOST_TEST(limiter.size() == 4u);
  BOOST_TEST(admit_times(limiter, digest(4), limit, t0, 1) == 1);
  BOOST_TEST(limiter.size() == 4u);
  // Key 1 (8 left) is still held, key 0 (9 left) was dropped and starts full.
  BOOST_TEST(limiter.admit(digest(1), 1, limit, t0).remaining == 7u);
  BOOST_TEST(limiter.admit(digest(0), 1, limit, t0).remaining == 9u);
  BOOST_TEST(limiter.size() == 4u);
  // Many keys: never more than the capacity.
  core::rate_limiter many(100);
  for (int k = 0; k < 256; ++k) {
    (void)many.admit(digest(static_cast<std::uint8_t>(k)), 1, limit, t0);
    BOOST_TEST_REQUIRE(many.size() <= 100u);
  }
}

BOOST_AUTO_TEST_CASE(the_most_refused_keys_come_first) {
  core::rate_limiter limiter(100);
  BOOST_TEST(admit_times(limiter, digest(1), per(1, 1), t0, 6) == 1);  // 5 refused
  BOOST_TEST(admit_times(limiter, digest(2), per(2, 1), t0, 3) == 2);  // 1
  BOOST_TEST(admit_times(limiter, digest(3), per(3, 7), t0, 6) == 3);  // 3
  BOOST_TEST(admit_times(limiter, digest(4), per(9, 1), t0, 5) == 5);  // none
  const auto top = limiter.top_refused(2);
  BOOST_TEST_REQUIRE(top.size() == 2u);
  BOOST_TEST((top[0].digest == digest(1)));
  BOOST_TEST(top[0].refused == 5u);
  BOOST_TEST(top[0].admitted == 1u);
  BOOST_TEST((top[1].digest == digest(3)));
  BOOST_TEST(top[1].refused == 3u);
  BOOST_TEST((top[1].limit == per(3, 7)));
  BOOST_TEST(top[1].owner == 1u);
  const auto all = limiter.top_refused(100);
  BOOST_TEST_REQUIRE(all.size() == 3u);  // never refused: not listed
  BOOST_TEST((all[2].digest == digest(2)));
  BOOST_TEST(limiter.top_refused(0).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bounds)

BOOST_AUTO_TEST_CASE(the_largest_limit_and_burst) {
  core::rate_limiter limiter(100);
  const auto limit = per(core::max_rate_limit, 1, core::max_rate_limit);
  auto d = limiter.admit(digest(1), 1, limit, t0);
  BOOST_TEST(d.allowed);
  BOOST_TEST(d.remaining == core::max_rate_limit - 1);
  BOOST_TEST(d.reset_seconds == 1u);
  // One request per nanosecond.
  limiter.debit(core::key_tag(digest(1)), core::max_rate_limit - 1, t0);
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0));
  BOOST_TEST(allowed(limiter, digest(1), limit, t0 + 1));
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0 + 1));
  // The longest pause a clock can give.
  d = limiter.admit(digest(1), 1, limit, std::numeric_limits<std::int64_t>::max());
  BOOST_TEST(d.remaining == core::max_rate_limit - 1);
}

BOOST_AUTO_TEST_CASE(the_smallest_rate_with_the_largest_burst) {
  core::rate_limiter limiter(100);
  const auto limit = per(1, core::max_rate_window_seconds, core::max_rate_limit);
  auto d = limiter.admit(digest(1), 1, limit, 0);
  BOOST_TEST(d.remaining == core::max_rate_limit - 1);
  BOOST_TEST(d.reset_seconds == 86'400u);
  limiter.debit(core::key_tag(digest(1)), core::max_rate_limit, 0);
  d = limiter.admit(digest(1), 1, limit, 0);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.retry_after_seconds == 2u * 86'400u);  // one request in debt, and one to take
  BOOST_TEST(d.reset_seconds == std::numeric_limits<std::uint32_t>::max());  // ~1e9 days: clamped
  d = limiter.admit(digest(1), 1, limit, std::numeric_limits<std::int64_t>::max());
  BOOST_TEST(d.allowed);
}

BOOST_AUTO_TEST_CASE(debts_and_shares_at_their_limits_do_not_overflow) {
  core::rate_limiter limiter(100);
  const auto limit = per(core::max_rate_limit, core::max_rate_window_seconds, core::max_rate_limit);
  limiter.set_share(core::rate_limiter::max_share);
  BOOST_TEST(allowed(limiter, digest(1), limit, t0));
  for (int i = 0; i < 10'000; ++i)
    limiter.debit(core::key_tag(digest(1)), std::numeric_limits<std::uint32_t>::max(), t0);
  const auto d = limiter.admit(digest(1), 1, limit, t0);
  BOOST_TEST(!d.allowed);
  BOOST_TEST(d.remaining == 0u);
  BOOST_TEST(d.retry_after_seconds == std::numeric_limits<std::uint32_t>::max());
  limiter.set_share(1);
  BOOST_TEST(!allowed(limiter, digest(1), limit, t0));
  // Unseen keys' counts too.
  for (int i = 0; i < 10'000; ++i)
    limiter.debit(core::key_tag(digest(2)), std::numeric_limits<std::uint32_t>::max(), t0);
  BOOST_TEST(!allowed(limiter, digest(2), limit, t0));
  BOOST_TEST(allowed(limiter, digest(3), limit, std::numeric_limits<std::int64_t>::min()));
}

BOOST_AUTO_TEST_SUITE_END()

// Threads admitting one key at one instant never get more than the burst between them (a burst
// large enough for unguarded updates to collide). Results are gathered and checked here:
// Boost.Test's macros are not for other threads.
BOOST_AUTO_TEST_CASE(threads_admitting_one_key_get_exactly_the_burst) {
  core::rate_limiter limiter(1000);
  constexpr int threads = 4;
  constexpr int attempts = 100'000;
  constexpr std::uint32_t burst = 250'000;
  const auto limit = per(10, 3600, burst);  // the next refill is minutes away
  std::vector<int> admitted(threads, 0);
  std::latch start(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&limiter, &admitted, &start, limit, i] {
      start.arrive_and_wait();
      for (int n = 0; n < attempts; ++n) {
        if (limiter.admit(digest(1), 1, limit, t0).allowed) ++admitted[static_cast<std::size_t>(i)];
        if (n % 16 == 0) (void)limiter.admit(digest(static_cast<std::uint8_t>(10 + i)), 1, limit, t0);
      }
    });
  }
  for (auto& t : pool) t.join();
  int total = 0;
  for (const int a : admitted) total += a;
  BOOST_TEST(total == static_cast<int>(burst));
  const auto top = limiter.top_refused(1);
  BOOST_TEST_REQUIRE(top.size() == 1u);
  BOOST_TEST(top[0].refused == std::uint64_t{threads * attempts - burst});
  BOOST_TEST(top[0].admitted == burst);
}
