// Unit tests for core/token_cache: hits and misses, negative entries, the capacity bound, CLOCK's
// second chance, fill tickets racing with erase, and concurrent use from several threads.
#define BOOST_TEST_MODULE core_cache_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "core/token_cache.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace core = tokend::core;
using core::token_cache;

namespace {

// Digests of distinct texts: uniformly spread, like the digests of real keys.
core::key_digest digest_of(std::uint64_t i) { return core::digest_key("key-" + std::to_string(i)); }

std::vector<core::key_digest> digests(std::size_t n) {
  std::vector<core::key_digest> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(digest_of(i));
  return out;
}

// The owner a cached entry holds, or -1 for a miss and -2 for a negative entry: printable in checks.
long long probe(const token_cache& c, const core::key_digest& d) {
  const auto e = c.find(d);
  if (!e) return -1;
  if (!e->known) return -2;
  return static_cast<long long>(e->owner);
}

}  // namespace

BOOST_AUTO_TEST_CASE(miss_then_hit) {
  token_cache c(100);
  const auto d = digest_of(1);
  BOOST_TEST(probe(c, d) == -1);
  c.insert_known(d, 42);
  BOOST_TEST(probe(c, d) == 42);
  BOOST_TEST(probe(c, digest_of(2)) == -1);
  BOOST_TEST(c.size() == 1u);
  BOOST_TEST(c.capacity() == 100u);
}

BOOST_AUTO_TEST_CASE(negative_entries) {
  token_cache c(100);
  const auto d = digest_of(7);
  c.fill(d, c.ticket(d), token_cache::entry{false, 0});
  const auto e = c.find(d);
  BOOST_REQUIRE(e.has_value());
  BOOST_TEST(!e->known);
  BOOST_TEST(c.size() == 1u);
  // A later fill or create overwrites it in place.
  c.insert_known(d, 9);
  BOOST_TEST(probe(c, d) == 9);
  BOOST_TEST(c.size() == 1u);
}

BOOST_AUTO_TEST_CASE(insert_known_overwrites) {
  token_cache c(100);
  const auto d = digest_of(3);
  c.insert_known(d, 1);
  c.insert_known(d, 2);
  BOOST_TEST(probe(c, d) == 2);
  BOOST_TEST(c.size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_entry_carries_its_keys_own_rate_limit) {
  token_cache c(100);
  const auto d = digest_of(1);
  const core::rate_limit limit{100, 60, 250};
  c.fill(d, c.ticket(d), token_cache::entry{true, 5, 0, false, 0, limit});
  BOOST_TEST((c.find(d)->own_limit == limit));
  c.insert_known(d, token_cache::entry{true, 5, 0, false, 0, core::rate_limit{}});  // its own {limit: 0}
  BOOST_TEST((c.find(d)->own_limit == core::rate_limit{}));
  c.insert_known(d, 5);  // none: the server's default
  BOOST_TEST(!c.find(d)->own_limit.has_value());
}

BOOST_AUTO_TEST_CASE(erase_removes) {
  token_cache c(100);
  const auto a = digest_of(1);
  const auto b = digest_of(2);
  c.insert_known(a, 1);
  c.insert_known(b, 2);
  c.erase(a);
  BOOST_TEST(probe(c, a) == -1);
  BOOST_TEST(probe(c, b) == 2);
  BOOST_TEST(c.size() == 1u);
  c.erase(a);  // erasing what is absent is harmless
  c.erase(digest_of(99));
  BOOST_TEST(c.size() == 1u);
  // Negative entries are erased too.
  c.fill(a, c.ticket(a), token_cache::entry{false, 0});
  BOOST_TEST(probe(c, a) == -2);
  c.erase(a);
  BOOST_TEST(probe(c, a) == -1);
}

BOOST_AUTO_TEST_CASE(hit_and_miss_counters) {
  token_cache c(100);
  BOOST_TEST(c.hits() == 0u);
  BOOST_TEST(c.misses() == 0u);
  const auto d = digest_of(1);
  (void)c.find(d);
  (void)c.find(digest_of(2));
  BOOST_TEST(c.hits() == 0u);
  BOOST_TEST(c.misses() == 2u);
  c.insert_known(d, 5);
  for (int i = 0; i < 3; ++i) (void)c.find(d);
  c.fill(digest_of(3), c.ticket(digest_of(3)), token_cache::entry{false, 0});
  (void)c.find(digest_of(3));  // a negative entry found is a hit
  BOOST_TEST(c.hits() == 4u);
  BOOST_TEST(c.misses() == 2u);
  // Writes and tickets do not count.
  c.insert_known(digest_of(4), 1);
  (void)c.ticket(digest_of(5));
  c.erase(d);
  BOOST_TEST(c.hits() == 4u);
  BOOST_TEST(c.misses() == 2u);
}

BOOST_AUTO_TEST_CASE(mark_used_answers_first_once_per_minute) {
  using mark = token_cache::use_mark;
  token_cache c(100);
  const auto d = digest_of(1);
  BOOST_TEST((c.mark_used(d, 100) == mark::not_cached));  // absent
  c.fill(d, c.ticket(d), token_cache::entry{false, 0});
  BOOST_TEST((c.mark_used(d, 100) == mark::not_cached));  // a negative entry is no key to mark
  c.insert_known(d, 7);
  BOOST_TEST(c.find(d)->used_minute == 0u);
  BOOST_TEST((c.mark_used(d, 100) == mark::first));
  BOOST_TEST(c.find(d)->used_minute == 100u);
  for (int i = 0; i < 1000; ++i) BOOST_REQUIRE((c.mark_used(d, 100) == mark::repeat));
  BOOST_TEST((c.mark_used(d, 101) == mark::first));
  // A late caller with an earlier minute never moves the marker back.
  BOOST_TEST((c.mark_used(d, 100) == mark::repeat));
  BOOST_TEST(c.find(d)->used_minute == 101u);
  // Markers are per key.
  c.insert_known(digest_of(2), 7);
  BOOST_TEST((c.mark_used(digest_of(2), 101) == mark::first));
}

BOOST_AUTO_TEST_CASE(marker_survives_overwrite_and_resets_on_erase) {
  using mark = token_cache::use_mark;
  token_cache c(100);
  const auto d = digest_of(1);
  c.insert_known(d, 7);
  BOOST_TEST((c.mark_used(d, 100) == mark::first));
  // A refill of the same key (a new expiry, say) keeps its marker, whatever the value passed says.
  c.fill(d, c.ticket(d), token_cache::entry{true, 7, 5000, false, 0});
  BOOST_TEST(c.find(d)->expires_at == 5000);
  BOOST_TEST(c.find(d)->used_minute == 100u);
  BOOST_TEST((c.mark_used(d, 100) == mark::repeat));
  // An erased key starts over.
  c.erase(d);
  c.insert_known(d, token_cache::entry{true, 7, 0, true, 100});
  BOOST_TEST(c.find(d)->used_minute == 0u);
  BOOST_TEST(c.find(d)->operator_key);
  BOOST_TEST((c.mark_used(d, 100) == mark::first));
}

BOOST_AUTO_TEST_CASE(concurrent_marks_answer_first_once) {
  token_cache c(100);
  const auto d = digest_of(1);
  c.insert_known(d, 7);
  constexpr int threads = 4;
  constexpr std::uint32_t minutes = 200;
  std::atomic<int> firsts{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::uint32_t m = 1; m <= minutes; ++m) {
        for (int i = 0; i < 50; ++i) {
          if (c.mark_used(d, m) == token_cache::use_mark::first) firsts.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  // Each minute is won by one thread at most (a thread behind may find a later minute marked).
  BOOST_TEST(firsts.load() <= static_cast<int>(minutes));
  BOOST_TEST(firsts.load() >= 1);
  BOOST_TEST(c.find(d)->used_minute == minutes);
}

BOOST_AUTO_TEST_CASE(capacity_is_respected) {
  struct shape {
    std::size_t capacity;
    std::size_t shards;
  };
  for (const shape s : {shape{100, 64}, shape{100, 8}, shape{1000, 64}, shape{8, 1}, shape{3, 64},
                        shape{1, 1}, shape{37, 5}}) {
    token_cache c(s.capacity, s.shards);
    BOOST_TEST(c.capacity() == s.capacity);
    const auto keys = digests(10 * s.capacity);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i % 3 == 0) {
        c.fill(keys[i], c.ticket(keys[i]), token_cache::entry{false, 0});
      } else {
        c.insert_known(keys[i], i);
      }
      BOOST_TEST_REQUIRE(c.size() <= s.capacity, "capacity " << s.capacity << ", shards " << s.shards);
    }
    // Ten times the capacity spread over the shards fills every one of them.
    BOOST_TEST(c.size() >= s.capacity * 9 / 10, "capacity " << s.capacity << ", shards " << s.shards);
    // The most recent insert is always present.
    BOOST_TEST(probe(c, keys.back()) != -1);
  }
}

BOOST_AUTO_TEST_CASE(zero_capacity_still_holds_one) {
  token_cache c(0, 0);
  BOOST_TEST(c.capacity() == 1u);
  c.insert_known(digest_of(1), 1);
  c.insert_known(digest_of(2), 2);
  BOOST_TEST(c.size() == 1u);
  BOOST_TEST(probe(c, digest_of(2)) == 2);
}

BOOST_AUTO_TEST_CASE(capacity_holds_under_erase_churn) {
  // Erase leaves a ring slot behind; re-inserting must not let the map outgrow the capacity.
  token_cache c(16, 2);
  const auto keys = digests(64);
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    const std::size_t k = rng() % keys.size();
    switch (rng() % 3) {
      case 0:
        c.insert_known(keys[k], k + 1);
        break;
      case 1:
        c.erase(keys[k]);
        break;
      default: {
        const long long got = probe(c, keys[k]);
        BOOST_TEST_REQUIRE((got == -1 || got == static_cast<long long>(k + 1)),
                           "key " << k << " gave " << got);
      }
    }
    BOOST_TEST_REQUIRE(c.size() <= 16u);
  }
}

BOOST_AUTO_TEST_CASE(erased_keys_stay_gone_until_reinserted) {
  token_cache c(16, 2);
  const auto keys = digests(64);
  std::vector<bool> erased(keys.size(), false);
  std::mt19937_64 rng(777);
  for (int i = 0; i < 20000; ++i) {
    const std::size_t k = rng() % keys.size();
    switch (rng() % 3) {
      case 0:
        c.insert_known(keys[k], k + 1);
        erased[k] = false;
        break;
      case 1:
        c.erase(keys[k]);
        erased[k] = true;
        break;
      default:
        if (erased[k]) BOOST_TEST_REQUIRE(probe(c, keys[k]) == -1, "erased key " << k << " came back");
    }
  }
}

BOOST_AUTO_TEST_CASE(clock_gives_a_second_chance) {
  const auto keys = digests(200);
  const auto& hot = keys[0];
  const auto& cold = keys[1];

  token_cache c(8, 1);
  c.insert_known(hot, 1000);
  c.insert_known(cold, 1001);
  for (std::size_t i = 2; i < keys.size(); ++i) {
    c.insert_known(keys[i], i);
    BOOST_TEST_REQUIRE(probe(c, hot) == 1000,
                       "the entry read after every insert was evicted at insert " << i);
    BOOST_TEST_REQUIRE(c.size() <= 8u);
  }
  BOOST_TEST(probe(c, cold) == -1);  // never read: evicted by the wave
  BOOST_TEST(c.size() == 8u);

  // Control: without reads the same entry is evicted once the wave has gone round the ring.
  token_cache plain(8, 1);
  plain.insert_known(hot, 1000);
  for (std::size_t i = 2; i < 2 + 8; ++i) plain.insert_known(keys[i], i);
  BOOST_TEST(probe(plain, hot) == -1);
}

BOOST_AUTO_TEST_CASE(one_read_buys_one_pass) {
  // A read sets the reference bit once; it protects the entry through one sweep of the hand only.
  token_cache c(8, 1);
  const auto keys = digests(100);
  for (std::size_t i = 0; i < 8; ++i) c.insert_known(keys[i], i);
  BOOST_TEST(probe(c, keys[0]) == 0);  // referenced
  // The next insert finds the hand on keys[0]: skipped once, keys[1] is evicted instead.
  c.insert_known(keys[8], 8);
  BOOST_TEST(probe(c, keys[1]) == -1);
  // That pass cleared keys[0]'s bit and nothing reads it again: the next round evicts it.
  for (std::size_t i = 9; i < 9 + 8; ++i) c.insert_known(keys[i], i);
  BOOST_TEST(probe(c, keys[0]) == -1);
}

BOOST_AUTO_TEST_CASE(stale_fill_after_erase_is_dropped) {
  token_cache c(100);
  const auto d = digest_of(1);
  c.insert_known(d, 5);
  c.erase(d);
  // A lookup misses and takes a ticket; a delete commits and evicts before the lookup's fill.
  const auto t = c.ticket(d);
  c.erase(d);                                 // the delete commits and evicts
  c.fill(d, t, token_cache::entry{true, 5});  // what the lookup read before the delete
  BOOST_TEST(probe(c, d) == -1);
  BOOST_TEST(c.size() == 0u);

  // Same with a positive entry present when the delete lands.
  const auto t2 = c.ticket(d);
  c.insert_known(d, 5);
  c.erase(d);
  c.fill(d, t2, token_cache::entry{true, 5});
  BOOST_TEST(probe(c, d) == -1);
}

BOOST_AUTO_TEST_CASE(fresh_fill_is_kept) {
  token_cache c(100);
  const auto d = digest_of(1);
  c.fill(d, c.ticket(d), token_cache::entry{true, 77});
  BOOST_TEST(probe(c, d) == 77);

  // A ticket taken after the erase is fresh again.
  c.erase(d);
  const auto t = c.ticket(d);
  c.fill(d, t, token_cache::entry{false, 0});
  BOOST_TEST(probe(c, d) == -2);

  // Other keys' inserts do not spoil a ticket.
  const auto e = digest_of(2);
  const auto te = c.ticket(e);
  c.insert_known(digest_of(3), 3);
  c.fill(e, te, token_cache::entry{true, 2});
  BOOST_TEST(probe(c, e) == 2);
}

namespace {

// Boost.Test assertions are not thread-safe: worker threads record failures here and the main
// thread asserts on the record.
class failure_log {
 public:
  void report(const std::string& what) {
    if (count_.fetch_add(1) == 0) {
      std::lock_guard lock(mutex_);
      first_ = what;
    }
  }
  [[nodiscard]] int count() const { return count_.load(); }
  [[nodiscard]] std::string first() const {
    std::lock_guard lock(mutex_);
    return first_;
  }

 private:
  std::atomic<int> count_{0};
  mutable std::mutex mutex_;
  std::string first_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(concurrent_readers_and_writers) {
  // A tiny model of the service: a "store" of keys that exist (owner k+1), never existed (k % 4 == 0),
  // or get deleted during the run. Three reader threads look keys up, filling the cache on a miss the
  // way the service does (ticket, store read, fill); one writer thread creates, evicts and deletes
  // (store commit, cache erase, acknowledge). Every read is checked against the store.
  //
  // The dangerous interleaving is a fill whose store read happened before a delete landing after the
  // delete's erase. To make it happen on purpose, a third of the lookups go to the next key to be
  // deleted (the victim, which the writer keeps evicting), some of them with a slow store read that
  // waits for the delete; the writer waits until such a read of the victim is in flight before
  // deleting it. Another third go to the key deleted last, where a resurrected entry would show.
  // Every wait is bounded in time, so a bad schedule only weakens the test, never hangs it.
  constexpr std::size_t key_count = 2000;
  constexpr std::size_t first_deletable = 1501;  // 1501 % 4 != 0: itself deletable
  constexpr int min_reader_iterations = 50000;
  constexpr int writer_iterations = 50000;
  constexpr int delete_every = 500;
  constexpr auto max_wait = std::chrono::milliseconds(5);
  const auto wait_until = [max_wait](const auto& done) {
    const auto deadline = std::chrono::steady_clock::now() + max_wait;
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  };

  const auto keys = digests(key_count);
  const auto never_existed = [](std::size_t k) { return k % 4 == 0; };
  const auto deletable = [&](std::size_t k) { return k >= first_deletable && !never_existed(k); };

  // deleted: the store's state (committed first); acked: the delete's reply was sent (after erase).
  auto deleted = std::make_unique<std::atomic<bool>[]>(key_count);
  auto acked = std::make_unique<std::atomic<bool>[]>(key_count);
  for (std::size_t k = 0; k < key_count; ++k) {
    deleted[k] = false;
    acked[k] = false;
  }
  const auto store_lookup = [&](std::size_t k) -> token_cache::entry {
    if (never_existed(k) || deleted[k].load()) return {false, 0};
    return {true, k + 1};
  };

  token_cache cache(256, 8);
  failure_log failures;
  std::atomic<std::uint64_t> finds{0};
  std::atomic<std::size_t> victim{first_deletable};  // the next key to be deleted
  std::atomic<std::size_t> last_deleted{0};          // key 0 never existed: a harmless start
  std::atomic<std::uint64_t> deletes_done{0};
  std::atomic<std::size_t> slow_read_of{0};   // the last key a reader holds a slow store read of
  std::atomic<std::uint64_t> raced_fills{0};  // fills whose store read preceded a delete
  std::atomic<bool> writer_done{false};

  const auto reader = [&](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uint64_t my_finds = 0;
    for (int i = 0; i < min_reader_iterations || !writer_done.load(); ++i) {
      const auto pick = rng() % 3;
      const std::size_t k = pick == 0 ? victim.load() : pick == 1 ? last_deleted.load() : rng() % key_count;
      const bool acked_before = acked[k].load();
      const auto got = cache.find(keys[k]);
      ++my_finds;
      if (got) {
        if (got->known) {
          if (never_existed(k)) {
            failures.report("key " + std::to_string(k) + " never existed but the cache knows it");
          } else if (got->owner != k + 1) {
            failures.report("key " + std::to_string(k) + " has owner " + std::to_string(got->owner));
          } else if (acked_before) {
            failures.report("key " + std::to_string(k) + " still valid after its delete was acknowledged");
          }
        } else if (!never_existed(k) && !deleted[k].load()) {
          failures.report("key " + std::to_string(k) + " exists but the cache has a negative entry");
        }
        continue;
      }
      const auto ticket = cache.ticket(keys[k]);
      const std::uint64_t deletes_before = deletes_done.load();
      const auto value = store_lookup(k);
      if (pick == 0 && value.known && rng() % 2 == 0) {
        // A slow store read: announce it, then wait for the victim's delete to land.
        slow_read_of.store(k);
        wait_until([&] { return deletes_done.load() != deletes_before; });
        if (deletes_done.load() != deletes_before) raced_fills.fetch_add(1);
      }
      cache.fill(keys[k], ticket, value);
    }
    finds.fetch_add(my_finds);
  };

  const auto writer = [&](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::size_t next_delete = victim.load();
    for (int i = 0; i < writer_iterations; ++i) {
      if (i % delete_every == delete_every - 1 && next_delete < key_count) {
        // Wait for a reader to hold a store read of the victim, evicting it meanwhile so that
        // readers miss and read the store.
        wait_until([&] {
          cache.erase(keys[next_delete]);
          return slow_read_of.load() == next_delete;
        });
        // A delete: commit in the store, evict from the cache, then acknowledge.
        deleted[next_delete].store(true);
        cache.erase(keys[next_delete]);
        acked[next_delete].store(true);
        last_deleted.store(next_delete);
        do ++next_delete;
        while (next_delete < key_count && !deletable(next_delete));
        if (next_delete < key_count) victim.store(next_delete);
        deletes_done.fetch_add(1);
      }
      const std::size_t k = rng() % key_count;
      switch (rng() % 4) {
        case 0:  // a create: only for keys that exist and are not deleted
          if (!never_existed(k) && !deleted[k].load()) cache.insert_known(keys[k], k + 1);
          break;
        case 1:  // an eviction by erase: the store is unchanged, the next lookup refills
          cache.erase(keys[k]);
          break;
        case 2:  // keep the victim out of the cache so that readers keep reading the store
          if (next_delete < key_count) cache.erase(keys[next_delete]);
          break;
        default:
          (void)cache.size();
          (void)cache.hits();
      }
    }
    writer_done.store(true);
  };

  std::vector<std::thread> threads;
  threads.emplace_back(reader, 1);
  threads.emplace_back(reader, 2);
  threads.emplace_back(reader, 3);
  threads.emplace_back(writer, 4);
  for (auto& t : threads) t.join();

  BOOST_TEST(failures.count() == 0, "first failure: " << failures.first());
  BOOST_TEST(deletes_done.load() > 0u);
  BOOST_TEST_MESSAGE("deletes: " << deletes_done.load() << ", fills racing a delete: " << raced_fills.load());
  BOOST_TEST(cache.size() <= cache.capacity());
  BOOST_TEST(cache.hits() + cache.misses() == finds.load());
  BOOST_TEST(cache.hits() > 0u);

  // Afterwards every read agrees with the store, single-threaded.
  for (std::size_t k = 0; k < key_count; ++k) {
    const long long got = probe(cache, keys[k]);
    const auto expected = store_lookup(k);
    if (got == -1) continue;
    if (expected.known) {
      BOOST_TEST(got == static_cast<long long>(k + 1), "key " << k);
    } else {
      BOOST_TEST(got == -2, "key " << k << " should be unknown, the cache says owner " << got);
    }
  }
}
