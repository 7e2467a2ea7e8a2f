// Tests of the storage layer: the token_store contract run against both backends (RocksDB and
// in-memory), RocksDB-only behaviour (persistence, group commit, back-pressure, failure recovery,
// open errors) and the fault-injecting decorator. Every wait has a deadline, so nothing can hang.
#define BOOST_TEST_MODULE storage_test
#include <boost/test/unit_test.hpp>

#include "core/error.hpp"
#include "core/key.hpp"
#include "core/token.hpp"
#include "storage/faulty_store.hpp"
#include "storage/memory_store.hpp"
#include "storage/pg_connection.hpp"
#include "storage/pg_text.hpp"
#include "storage/postgres_admits.hpp"
#include "storage/postgres_names.hpp"
#include "storage/postgres_store.hpp"
#include "storage/rocksdb_store.hpp"
#include "support/postgres.hpp"
#include "support/private_postgres.hpp"
#include "support/process.hpp"
#include "support/side_session.hpp"
#include "support/store_calls.hpp"
#include "support/temp_dir.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace core = tokend::core;
namespace storage = tokend::storage;
using boost::system::error_code;
using storage::token_store;

using tokend::test::temp_dir;
using namespace tokend::test::stores;

// Replaces the file's content atomically, so a reader never sees it half written.
void write_file(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
  }
  fs::rename(tmp, path);
}

// Polls `condition` until it holds or `limit` passes; how long it took, or nullopt.
template <class Condition>
[[nodiscard]] std::optional<std::chrono::milliseconds> within(std::chrono::milliseconds limit,
                                                              Condition condition) {
  using std::chrono::steady_clock;
  const auto since = steady_clock::now();
  for (;;) {
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - since);
    if (condition()) return took;
    if (took >= limit) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

// Holds a store's thread (the RocksDB writer inside its first batch, or the memory store's one
// thread) until open(), so that what queues behind it is known.
class gate {
 public:
  // Blocks the store thread that calls it first, until open() or the deadline; true: go on.
  bool hold_first() {
    if (calls_.fetch_add(1) == 0) {
      entered_.set_value();
      (void)released_.wait_for(deadline);
    }
    return true;
  }
  [[nodiscard]] bool entered() { return entered_future_.wait_for(deadline) == std::future_status::ready; }
  void open() { release_.set_value(); }

 private:
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  std::atomic<int> calls_{0};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(contract)

BOOST_AUTO_TEST_CASE_TEMPLATE(create_lookup_list_remove, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  BOOST_CHECK(store->ready());
  BOOST_CHECK(is_empty(*store));

  const auto r = make_record(42, 1);
  BOOST_CHECK_EQUAL(create(*store, r), error_code{});
  BOOST_CHECK(!is_empty(*store));
  BOOST_CHECK(lookup(*store, r.digest) == std::optional<core::user_id>{42});
  BOOST_CHECK(!lookup(*store, make_record(42, 2).digest).has_value());

  const auto page = list(*store, 42, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 1u);
  check_same(page.tokens[0], r);
  BOOST_CHECK(!page.has_more);
  BOOST_CHECK(list(*store, 41, 0, 10).tokens.empty());
  BOOST_CHECK(list(*store, 43, 0, 10).tokens.empty());

  BOOST_CHECK_EQUAL(remove(*store, 42, r.digest), error_code{});
  BOOST_CHECK(!lookup(*store, r.digest).has_value());
  BOOST_CHECK(list(*store, 42, 0, 10).tokens.empty());
  BOOST_CHECK(is_empty(*store));
  BOOST_CHECK_EQUAL(remove(*store, 42, r.digest), err(core::errc::not_found));
  BOOST_CHECK(store->ready());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(remove_checks_owner, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  const auto r = make_record(1, 1);
  BOOST_REQUIRE_EQUAL(create(*store, r), error_code{});

  BOOST_CHECK_EQUAL(remove(*store, 2, r.digest), err(core::errc::not_found));
  BOOST_CHECK(lookup(*store, r.digest) == std::optional<core::user_id>{1});
  BOOST_CHECK_EQUAL(list(*store, 1, 0, 10).tokens.size(), 1u);

  BOOST_CHECK_EQUAL(remove(*store, 1, make_record(1, 2).digest), err(core::errc::not_found));
  BOOST_CHECK_EQUAL(remove(*store, 1, r.digest), error_code{});
}

BOOST_AUTO_TEST_CASE_TEMPLATE(existing_digest_is_never_overwritten, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  const auto r = make_record(1, 1);
  BOOST_REQUIRE_EQUAL(create(*store, r), error_code{});
  auto thief = r;
  thief.owner = 2;
  BOOST_CHECK_EQUAL(create(*store, thief), err(core::errc::internal));
  BOOST_CHECK(lookup(*store, r.digest) == std::optional<core::user_id>{1});
  BOOST_CHECK(list(*store, 2, 0, 10).tokens.empty());
  BOOST_CHECK_EQUAL(list(*store, 1, 0, 10).tokens.size(), 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(list_order_and_pagination, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  constexpr int count = 60;
  constexpr core::user_id max_user = std::numeric_limits<core::user_id>::max();
  std::vector<core::token_record> mine;
  for (int i = 0; i < count; ++i) {
    mine.push_back(make_record(7, i));
    BOOST_REQUIRE_EQUAL(create(*store, mine.back()), error_code{});
    // Neighbouring owners (and the extreme ids) interleaved: a list must not spill into them.
    if (i % 3 == 0) BOOST_REQUIRE_EQUAL(create(*store, make_record(8, i)), error_code{});
    if (i % 20 == 0) BOOST_REQUIRE_EQUAL(create(*store, make_record(6, i)), error_code{});
  }
  BOOST_REQUIRE_EQUAL(create(*store, make_record(0, 0)), error_code{});
  BOOST_REQUIRE_EQUAL(create(*store, make_record(max_user, 0)), error_code{});

  const auto all = list(*store, 7, 0, 1000);
  BOOST_REQUIRE_EQUAL(all.tokens.size(), mine.size());
  BOOST_CHECK(!all.has_more);
  for (std::size_t i = 0; i < mine.size(); ++i) check_same(all.tokens[i], mine[i]);

  constexpr std::size_t page_size = 7;
  std::vector<core::token_record> paged;
  for (std::size_t offset = 0;; offset += page_size) {
    const auto page = list(*store, 7, offset, page_size);
    paged.insert(paged.end(), page.tokens.begin(), page.tokens.end());
    if (!page.has_more) {
      BOOST_CHECK_LE(page.tokens.size(), page_size);
      break;
    }
    BOOST_REQUIRE_EQUAL(page.tokens.size(), page_size);
    BOOST_REQUIRE_LT(offset, mine.size());
  }
  BOOST_REQUIRE_EQUAL(paged.size(), mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) BOOST_CHECK(paged[i].digest == mine[i].digest);

  const auto last = list(*store, 7, count - 1, 1);
  BOOST_REQUIRE_EQUAL(last.tokens.size(), 1u);
  BOOST_CHECK(last.tokens[0].digest == mine.back().digest);
  BOOST_CHECK(!last.has_more);
  BOOST_CHECK(list(*store, 7, count - 2, 1).has_more);
  const auto none = list(*store, 7, count, 10);
  BOOST_CHECK(none.tokens.empty());
  BOOST_CHECK(!none.has_more);
  BOOST_CHECK(!list(*store, 7, 100000, 10).has_more);
  const auto zero = list(*store, 7, 0, 0);
  BOOST_CHECK(zero.tokens.empty());
  BOOST_CHECK(zero.has_more);

  BOOST_CHECK_EQUAL(list(*store, 8, 0, 1000).tokens.size(), 20u);
  BOOST_CHECK_EQUAL(list(*store, 6, 0, 1000).tokens.size(), 3u);
  BOOST_CHECK_EQUAL(list(*store, 0, 0, 1000).tokens.size(), 1u);
  BOOST_CHECK_EQUAL(list(*store, max_user, 0, 1000).tokens.size(), 1u);

  // Removing from the middle keeps the others in order.
  BOOST_REQUIRE_EQUAL(remove(*store, 7, mine[30].digest), error_code{});
  mine.erase(mine.begin() + 30);
  const auto after = list(*store, 7, 0, 1000);
  BOOST_REQUIRE_EQUAL(after.tokens.size(), mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) BOOST_CHECK(after.tokens[i].digest == mine[i].digest);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_writers_complete_exactly_once, Backend, backends) {
  Backend backend;
  constexpr int threads = 8;
  constexpr int per_thread = 500;
  constexpr int total = threads * per_thread;

  std::vector<core::token_record> records;
  for (int t = 0; t < threads; ++t) {
    for (int i = 0; i < per_thread; ++i) records.push_back(make_record(100 + t, i));
  }
  std::vector<std::atomic<int>> calls(total);
  std::atomic<int> failures{0};
  std::mutex mutex;
  std::condition_variable cv;
  int done = 0;
  // Opened after the state its handlers use: should a check fail early, the store's destructor
  // still completes queued writes, whose handlers then find that state alive.
  const auto store = backend.open();

  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const int n = t * per_thread + i;
        store->async_create(records[n], [&, n](boost::system::result<std::uint64_t> id) {
          calls[n].fetch_add(1);
          if (!id) failures.fetch_add(1);
          const std::lock_guard lock(mutex);
          ++done;
          cv.notify_all();
        });
      }
    });
  }
  for (auto& w : writers) w.join();
  {
    std::unique_lock lock(mutex);
    BOOST_REQUIRE(cv.wait_for(lock, 60s, [&] { return done >= total; }));
  }
  BOOST_CHECK_EQUAL(failures.load(), 0);
  for (int n = 0; n < total; ++n) BOOST_CHECK_EQUAL(calls[n].load(), 1);

  // One submitting thread's creates keep its order: the queue is FIFO and sequences are global.
  for (int t = 0; t < threads; ++t) {
    const auto page = list(*store, 100 + t, 0, 1000);
    BOOST_REQUIRE_EQUAL(page.tokens.size(), static_cast<std::size_t>(per_thread));
    for (int i = 0; i < per_thread; ++i)
      BOOST_CHECK(page.tokens[i].digest == records[t * per_thread + i].digest);
  }
  for (int n = 0; n < total; n += 97) BOOST_CHECK(lookup(*store, records[n].digest) == records[n].owner);

  const auto stats = store->stats();
  BOOST_CHECK_EQUAL(stats.batched_writes, static_cast<std::uint64_t>(total));
  BOOST_CHECK_EQUAL(stats.queue_depth, 0u);
  BOOST_CHECK_EQUAL(
      std::accumulate(stats.batch_size_counts.begin(), stats.batch_size_counts.end(), std::uint64_t{0}),
      stats.batches);
  if constexpr (Backend::batches_writes) {
    BOOST_TEST_MESSAGE("rocksdb: " << total << " writes in " << stats.batches << " batches");
    BOOST_CHECK_LT(stats.batches, static_cast<std::uint64_t>(total));
  }
  BOOST_CHECK_EQUAL(stats.write_failures, 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(stats_count_each_batch, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  std::vector<core::token_record> records;
  // One write at a time: every batch holds exactly one write.
  for (int i = 0; i < 5; ++i) {
    records.push_back(make_record(3, i));
    BOOST_REQUIRE_EQUAL(create(*store, records.back()), error_code{});
  }
  BOOST_REQUIRE_EQUAL(remove(*store, 3, records[0].digest), error_code{});
  const auto stats = store->stats();
  BOOST_CHECK_EQUAL(stats.batches, 6u);
  BOOST_CHECK_EQUAL(stats.batched_writes, 6u);
  BOOST_CHECK_EQUAL(stats.batch_size_counts[0], 6u);
  for (std::size_t i = 1; i < storage::batch_size_buckets; ++i)
    BOOST_CHECK_EQUAL(stats.batch_size_counts[i], 0u);
  BOOST_CHECK_EQUAL(stats.queue_depth, 0u);
  BOOST_CHECK_EQUAL(stats.write_failures, 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(close_finishes_queued_writes_then_refuses, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  std::vector<core::token_record> records;
  std::vector<std::future<outcome<error_code>>> pending;
  for (int i = 0; i < 50; ++i) {
    records.push_back(make_record(5, i));
    pending.push_back(start_create(*store, records.back()));
  }
  store->close();
  // close() returns only once every queued write is committed and its handler has run.
  for (auto& f : pending) {
    BOOST_REQUIRE(f.wait_for(0s) == std::future_status::ready);
    BOOST_CHECK_EQUAL(f.get().value, error_code{});
  }
  store->close();  // idempotent
  BOOST_CHECK(!store->ready());

  // No storage thread is left, so refusals may run on the caller's thread.
  BOOST_CHECK_EQUAL(create(*store, make_record(5, 99), where::any_thread), err(core::errc::unavailable));
  BOOST_CHECK_EQUAL(remove(*store, 5, records[0].digest, where::any_thread), err(core::errc::unavailable));
  const auto looked_up = finish(start_lookup(*store, records[0].digest), where::any_thread);
  BOOST_REQUIRE(looked_up.has_error());
  BOOST_CHECK_EQUAL(looked_up.error(), err(core::errc::unavailable));
  const auto listed = finish(start_list(*store, 5, 0, 10), where::any_thread);
  BOOST_REQUIRE(listed.has_error());
  BOOST_CHECK_EQUAL(listed.error(), err(core::errc::unavailable));
  BOOST_CHECK(store->empty().has_error());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(handlers_are_released_after_running, Backend, backends) {
  Backend backend;
  // Every handler holds a copy; a handler the store kept (or leaked) after running keeps it alive.
  const auto token = std::make_shared<int>(0);
  // Handlers run on storage threads, where Boost.Test assertions are not safe: they only count.
  std::atomic<int> calls{0};
  std::atomic<int> wrong{0};
  std::vector<std::future<void>> pending;
  const auto store = backend.open();
  const auto track = [&](auto expected) {
    auto promise = std::make_shared<std::promise<void>>();
    pending.push_back(promise->get_future());
    return [token, promise, &calls, &wrong, expected](const auto& result) {
      calls.fetch_add(1);
      if (!expected(result)) wrong.fetch_add(1);
      promise->set_value();
    };
  };
  const auto ok = [](const auto& result) { return !!result; };
  const auto found = [](const lookup_result& r) { return r.has_value() && r->has_value(); };
  // The removals below may overtake the list (readers and the writer run in parallel).
  const auto listed = [](const list_result& r) { return r.has_value() && r->tokens.size() >= 10; };
  const auto refused = [](const auto& result) {
    if constexpr (std::is_same_v<std::decay_t<decltype(result)>, error_code>) {
      return result == err(core::errc::unavailable);
    } else {
      return !result && result.error() == err(core::errc::unavailable);
    }
  };
  const auto lookup_refused = [](const lookup_result& r) { return r.has_error(); };
  const auto list_refused = [](const list_result& r) { return r.has_error(); };

  std::vector<core::token_record> records;
  for (int i = 0; i < 20; ++i) {
    records.push_back(make_record(4, i));
    store->async_create(records.back(), track(ok));
  }
  for (const auto& f : pending) BOOST_REQUIRE(f.wait_for(deadline) == std::future_status::ready);
  for (int i = 10; i < 20; ++i) store->async_lookup(records[i].digest, track(found));
  store->async_list(4, 0, 100, track(listed));
  for (int i = 0; i < 10; ++i) store->async_remove({4, records[i].digest}, track(ok));
  store->close();
  // close() waited for every handler, and none is left behind in the store.
  for (const auto& f : pending) BOOST_CHECK(f.wait_for(0s) == std::future_status::ready);
  BOOST_CHECK_EQUAL(calls.load(), 20 + 10 + 1 + 10);
  BOOST_CHECK_EQUAL(token.use_count(), 1);

  // Refusals after close() release their handler too.
  store->async_create(make_record(4, 99), track(refused));
  store->async_remove({4, records[15].digest}, track(refused));
  store->async_lookup(records[15].digest, track(lookup_refused));
  store->async_list(4, 0, 10, track(list_refused));
  for (const auto& f : pending) BOOST_REQUIRE(f.wait_for(deadline) == std::future_status::ready);
  BOOST_CHECK_EQUAL(calls.load(), 20 + 10 + 1 + 10 + 4);
  BOOST_CHECK_EQUAL(wrong.load(), 0);
  BOOST_CHECK_EQUAL(token.use_count(), 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(memory)

BOOST_AUTO_TEST_CASE(full_queue_is_overloaded) {
  gate blocker;
  const auto store = storage::make_memory_store(2);

  // Holds the store's only thread, so the writes below wait deterministically.
  store->async_lookup(make_record(1, 0).digest, [&](const lookup_result&) { (void)blocker.hold_first(); });
  BOOST_REQUIRE(blocker.entered());
  const auto a = make_record(1, 1);
  const auto b = make_record(1, 2);
  const auto c = make_record(1, 3);
  auto first = start_create(*store, a);
  auto second = start_remove(*store, 1, b.digest);
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 2u);
  auto third = start_create(*store, c);  // refused: returns at once, completes on the store's thread
  auto fourth = start_remove(*store, 1, a.digest);
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 2u);

  blocker.open();
  BOOST_CHECK_EQUAL(finish(std::move(first)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(second)), err(core::errc::not_found));
  BOOST_CHECK_EQUAL(finish(std::move(third)), err(core::errc::overloaded));
  BOOST_CHECK_EQUAL(finish(std::move(fourth)), err(core::errc::overloaded));
  BOOST_CHECK(lookup(*store, a.digest) == std::optional<core::user_id>{1});
  BOOST_CHECK(!lookup(*store, c.digest).has_value());
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 0u);
  // With the queue drained, writes are accepted again.
  BOOST_CHECK_EQUAL(create(*store, c), error_code{});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rocksdb)

// Whole per-table filters and indexes outgrow a block-cache shard past about a million keys and
// are then re-read from the file on every lookup (creates fell from 40k/s to 6k/s); partitions
// keep them cached. RocksDB writes the options it runs with to OPTIONS-* in the data directory.
BOOST_AUTO_TEST_CASE(tables_keep_index_and_filters_in_partitions) {
  temp_dir dir;
  const auto options = rocksdb_options_in(dir);
  storage::open_rocksdb_store(options)->close();
  std::string text;
  for (const auto& entry : fs::directory_iterator(options.data_dir)) {
    if (entry.path().filename().string().starts_with("OPTIONS-"))
      text = tokend::test::read_file(entry.path());
  }
  BOOST_REQUIRE_MESSAGE(!text.empty(), "no OPTIONS file in " << options.data_dir);
  BOOST_TEST(text.find("index_type=kTwoLevelIndexSearch") != std::string::npos);
  BOOST_TEST(text.find("partition_filters=true") != std::string::npos);
  BOOST_TEST(text.find("pin_top_level_index_and_filter=true") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(persists_across_reopen_and_continues_sequence) {
  temp_dir dir;
  std::vector<core::token_record> mine;
  std::vector<core::token_record> theirs;
  {
    const auto store = storage::open_rocksdb_store(rocksdb_options_in(dir));
    for (int i = 0; i < 10; ++i) {
      mine.push_back(make_record(5, i));
      BOOST_REQUIRE_EQUAL(create(*store, mine.back()), error_code{});
    }
    for (int i = 0; i < 3; ++i) {
      theirs.push_back(make_record(6, i));
      BOOST_REQUIRE_EQUAL(create(*store, theirs.back()), error_code{});
    }
    BOOST_REQUIRE_EQUAL(remove(*store, 5, mine[4].digest), error_code{});
    store->close();
  }
  const auto removed = mine[4];
  mine.erase(mine.begin() + 4);

  const auto store = storage::open_rocksdb_store(rocksdb_options_in(dir));
  BOOST_CHECK(store->ready());
  BOOST_CHECK(!is_empty(*store));
  for (const auto& r : mine) BOOST_CHECK(lookup(*store, r.digest) == std::optional<core::user_id>{5});
  for (const auto& r : theirs) BOOST_CHECK(lookup(*store, r.digest) == std::optional<core::user_id>{6});
  BOOST_CHECK(!lookup(*store, removed.digest).has_value());

  // New tokens list after the old ones: the sequence counter survived the restart.
  for (int i = 10; i < 13; ++i) {
    mine.push_back(make_record(5, i));
    BOOST_REQUIRE_EQUAL(create(*store, mine.back()), error_code{});
  }
  const auto page = list(*store, 5, 0, 1000);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) check_same(page.tokens[i], mine[i]);
  BOOST_CHECK_EQUAL(list(*store, 6, 0, 1000).tokens.size(), theirs.size());
}

BOOST_AUTO_TEST_CASE(unsynced_writes_survive_a_clean_close) {
  temp_dir dir;
  auto options = rocksdb_options_in(dir);
  options.sync = false;
  const auto r = make_record(1, 1);
  {
    const auto store = storage::open_rocksdb_store(options);
    BOOST_REQUIRE_EQUAL(create(*store, r), error_code{});
  }  // the destructor closes
  const auto store = storage::open_rocksdb_store(options);
  BOOST_CHECK(lookup(*store, r.digest) == std::optional<core::user_id>{1});
}

BOOST_AUTO_TEST_CASE(full_queue_is_overloaded_at_once) {
  temp_dir dir;
  gate blocker;

  auto options = rocksdb_options_in(dir);
  options.max_queue = 1;
  // Holds the writer inside its first batch, so the queue fills deterministically.
  options.test_before_write = [&] { return blocker.hold_first(); };
  const auto store = storage::open_rocksdb_store(options);

  const auto a = make_record(1, 1);
  const auto b = make_record(1, 2);
  const auto c = make_record(1, 3);
  auto first = start_create(*store, a);
  BOOST_REQUIRE(blocker.entered());
  auto second = start_create(*store, b);  // fills the queue
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 1u);
  BOOST_CHECK_EQUAL(finish(start_create(*store, c)), err(core::errc::overloaded));
  // Removals share the queue.
  BOOST_CHECK_EQUAL(finish(start_remove(*store, 1, a.digest)), err(core::errc::overloaded));
  // Reads do not wait for the writer.
  BOOST_CHECK(!lookup(*store, a.digest).has_value());

  blocker.open();
  BOOST_CHECK_EQUAL(finish(std::move(first)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(second)), error_code{});
  BOOST_CHECK(lookup(*store, a.digest).has_value());
  BOOST_CHECK(lookup(*store, b.digest).has_value());
  BOOST_CHECK(!lookup(*store, c.digest).has_value());
  BOOST_CHECK_EQUAL(store->stats().batches, 2u);
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 0u);
}

BOOST_AUTO_TEST_CASE(one_batch_sees_its_own_earlier_writes) {
  temp_dir dir;
  gate blocker;

  auto options = rocksdb_options_in(dir);
  options.test_before_write = [&] { return blocker.hold_first(); };
  const auto store = storage::open_rocksdb_store(options);

  const auto x = make_record(9, 0);
  auto held = start_create(*store, x);
  BOOST_REQUIRE(blocker.entered());

  // All of these land in the second batch together.
  const auto a = make_record(1, 1);
  const auto b = make_record(1, 2);
  auto create_a = start_create(*store, a);
  auto remove_a_by_other = start_remove(*store, 2, a.digest);
  auto remove_a = start_remove(*store, 1, a.digest);
  auto remove_a_again = start_remove(*store, 1, a.digest);
  auto recreate_a = start_create(*store, a);
  auto create_b = start_create(*store, b);
  auto remove_b = start_remove(*store, 1, b.digest);
  auto duplicate_a = start_create(*store, a);
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 8u);
  blocker.open();

  BOOST_CHECK_EQUAL(finish(std::move(held)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(create_a)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(remove_a_by_other)), err(core::errc::not_found));
  BOOST_CHECK_EQUAL(finish(std::move(remove_a)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(remove_a_again)), err(core::errc::not_found));
  BOOST_CHECK_EQUAL(finish(std::move(recreate_a)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(create_b)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(remove_b)), error_code{});
  BOOST_CHECK_EQUAL(finish(std::move(duplicate_a)), err(core::errc::internal));

  BOOST_CHECK(lookup(*store, a.digest) == std::optional<core::user_id>{1});
  BOOST_CHECK(!lookup(*store, b.digest).has_value());
  // Exactly one index entry for a: the first one went with the removal.
  const auto page = list(*store, 1, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 1u);
  check_same(page.tokens[0], a);

  const auto stats = store->stats();
  BOOST_CHECK_EQUAL(stats.batches, 2u);
  BOOST_CHECK_EQUAL(stats.batched_writes, 9u);
  BOOST_CHECK_EQUAL(stats.batch_size_counts[0], 1u);  // {x}
  BOOST_CHECK_EQUAL(stats.batch_size_counts[3], 1u);  // 8 writes: 4 < 8 <= 8
}

BOOST_AUTO_TEST_CASE(failed_write_reports_unavailable_then_recovers) {
  temp_dir dir;
  std::atomic<int> hook_calls{0};
  auto options = rocksdb_options_in(dir);
  options.test_before_write = [&] { return hook_calls.fetch_add(1) != 0; };  // only the first batch fails
  const auto store = storage::open_rocksdb_store(options);
  BOOST_CHECK(store->ready());

  const auto a = make_record(1, 1);
  BOOST_CHECK_EQUAL(create(*store, a), err(core::errc::unavailable));
  BOOST_CHECK(!store->ready());
  BOOST_CHECK_EQUAL(store->stats().write_failures, 1u);
  BOOST_CHECK_EQUAL(store->stats().batches, 0u);
  BOOST_CHECK(!lookup(*store, a.digest).has_value());

  const auto b = make_record(1, 2);
  BOOST_CHECK_EQUAL(create(*store, b), error_code{});
  BOOST_CHECK(store->ready());
  BOOST_CHECK(lookup(*store, b.digest) == std::optional<core::user_id>{1});
  const auto page = list(*store, 1, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 1u);
  check_same(page.tokens[0], b);
}

BOOST_AUTO_TEST_CASE(open_failure_names_the_path) {
  temp_dir dir;
  const auto names_path = [](const std::string& path) {
    return [path](const std::runtime_error& e) {
      BOOST_TEST_MESSAGE("open error: " << e.what());
      return std::string(e.what()).find(path) != std::string::npos;
    };
  };

  // A regular file where the directory should be.
  const fs::path file = dir.path() / "not-a-dir";
  write_file(file, "x");
  storage::rocksdb_options on_file;
  on_file.data_dir = file.string();
  BOOST_CHECK_EXCEPTION((void)storage::open_rocksdb_store(on_file), std::runtime_error,
                        names_path(file.string()));

  // A directory another store holds open (RocksDB's LOCK file).
  const auto options = rocksdb_options_in(dir);
  const auto first = storage::open_rocksdb_store(options);
  BOOST_CHECK_EXCEPTION((void)storage::open_rocksdb_store(options), std::runtime_error,
                        names_path(options.data_dir));
}

namespace {

using create_result = boost::system::result<std::uint64_t>;
using remove_result = boost::system::result<core::key_digest>;
using roll_result = boost::system::result<storage::rolled_token>;
using sweep_result = boost::system::result<std::vector<storage::removed_token>>;

// Started, not waited for: writes started together while the writer is held share its next batch.
[[nodiscard]] std::future<outcome<create_result>> start_create_id(token_store& s,
                                                                  const core::token_record& r) {
  return start<create_result>([&](auto handler) { s.async_create(r, std::move(handler)); });
}

[[nodiscard]] std::future<outcome<remove_result>> start_remove_ref(token_store& s, storage::token_ref ref) {
  return start<remove_result>([&](auto handler) { s.async_remove(ref, std::move(handler)); });
}

[[nodiscard]] std::future<outcome<roll_result>> start_roll(token_store& s, storage::token_ref old,
                                                           std::int64_t now, std::int64_t old_expires_at) {
  const std::string key = core::generate_key();
  storage::roll_request request;
  request.old = old;
  request.digest = core::digest_key(key);
  request.display_prefix = key.substr(0, core::display_prefix_length);
  request.now = now;
  request.old_expires_at = old_expires_at;
  return start<roll_result>([&](auto handler) { s.async_roll(request, std::move(handler)); });
}

[[nodiscard]] std::future<outcome<error_code>> start_uses(token_store& s,
                                                          std::vector<storage::key_use> uses) {
  return start<error_code>([&](auto handler) { s.async_record_uses(uses, std::move(handler)); });
}

[[nodiscard]] std::future<outcome<sweep_result>> start_sweep(token_store& s, std::int64_t cutoff,
                                                             std::size_t limit) {
  return start<sweep_result>(
      [&](auto handler) { s.async_remove_expired(cutoff, limit, std::move(handler)); });
}

[[nodiscard]] storage::key_info info_of(token_store& s, const core::key_digest& d) {
  const lookup_result r = finish(start_lookup(s, d));
  BOOST_REQUIRE(r.has_value());
  BOOST_REQUIRE(r->has_value());
  return **r;
}

}  // namespace

// What format 2 adds (ids, expiry, operator type, last use, the expiry index) is on disk, not
// only in the writer's memory.
BOOST_AUTO_TEST_CASE(expiry_last_use_and_ids_persist_across_reopen) {
  temp_dir dir;
  auto expiring = make_record(5, 1);
  expiring.expires_at = 1'900'000'000;
  auto op = make_record(5, 2);
  op.type = std::string(core::operator_type);
  const auto doomed = make_record(6, 3);
  std::uint64_t expiring_id = 0;
  std::uint64_t op_id = 0;
  core::key_digest rolled{};
  {
    const auto store = storage::open_rocksdb_store(rocksdb_options_in(dir));
    expiring_id = *finish(start_create_id(*store, expiring));
    op_id = *finish(start_create_id(*store, op));
    BOOST_REQUIRE(finish(start_create_id(*store, doomed)).has_value());
    BOOST_REQUIRE_EQUAL(finish(start_uses(*store, {{op.digest, 5, 1'700'000'040}})), error_code{});
    // The operator key rolled: the old one now expires at 1'800'000'000, before `doomed`'s cutoff.
    const auto done = finish(start_roll(*store, {5, op_id}, 1'700'000'100, 1'800'000'000));
    BOOST_REQUIRE(done.has_value());
    rolled = done->fresh.digest;
  }

  const auto store = storage::open_rocksdb_store(rocksdb_options_in(dir));
  const auto page = list(*store, 5, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 3u);
  BOOST_TEST(page.tokens[0].id == expiring_id);
  BOOST_TEST(page.tokens[0].expires_at == 1'900'000'000);
  BOOST_TEST(page.tokens[0].last_used_at == 0);
  BOOST_TEST(page.tokens[1].id == op_id);
  BOOST_TEST(page.tokens[1].expires_at == 1'800'000'000);
  BOOST_TEST(page.tokens[1].last_used_at == 1'700'000'040);
  BOOST_TEST(page.tokens[2].id > op_id);
  BOOST_TEST((page.tokens[2].digest == rolled));
  BOOST_TEST(page.tokens[2].type == core::operator_type);
  BOOST_TEST(info_of(*store, op.digest).operator_key);
  BOOST_TEST(info_of(*store, op.digest).expires_at == 1'800'000'000);
  BOOST_TEST(info_of(*store, expiring.digest).expires_at == 1'900'000'000);
  BOOST_TEST(!info_of(*store, expiring.digest).operator_key);

  // The expiry index survived: the sweep finds the rolled key's new expiry, oldest first.
  const auto swept = finish(start_sweep(*store, 2'000'000'000, 10));
  BOOST_REQUIRE(swept.has_value());
  BOOST_REQUIRE_EQUAL(swept->size(), 2u);
  BOOST_TEST(((*swept)[0].digest == op.digest));
  BOOST_TEST(((*swept)[1].digest == expiring.digest));
  BOOST_TEST(list(*store, 5, 0, 10).tokens.size() == 1u);
  BOOST_TEST(list(*store, 6, 0, 10).tokens.size() == 1u);
  // And the sequence: ids keep increasing.
  BOOST_TEST(*finish(start_create_id(*store, make_record(5, 4))) > page.tokens[2].id);
}

// Writes of one batch see one another through ids too: a token created earlier in the batch can
// be rolled, used and removed by its id (predictable here: ids are given in submission order).
BOOST_AUTO_TEST_CASE(one_batch_rolls_uses_and_removes_by_id_what_it_created) {
  temp_dir dir;
  gate blocker;
  auto options = rocksdb_options_in(dir);
  options.test_before_write = [&] { return blocker.hold_first(); };
  const auto store = storage::open_rocksdb_store(options);

  const auto x = make_record(9, 0);
  auto held = start_create_id(*store, x);  // id 1, alone in the first batch
  BOOST_REQUIRE(blocker.entered());

  const auto a = make_record(1, 1);
  const auto b = make_record(1, 2);
  auto create_a = start_create_id(*store, a);                                      // id 2
  auto roll_a_by_other = start_roll(*store, {2, std::uint64_t{2}}, 1'000, 1'500);  // not theirs
  auto roll_a = start_roll(*store, {1, std::uint64_t{2}}, 1'000, 1'500);           // new key: id 3
  auto use_a = start_uses(*store, {{a.digest, 1, 1'700'000'040}});
  auto remove_fresh = start_remove_ref(*store, {1, std::uint64_t{3}});  // the rolled key
  auto remove_fresh_again = start_remove_ref(*store, {1, std::uint64_t{3}});
  auto create_b = start_create_id(*store, b);  // id 4
  auto remove_b_by_digest = start_remove_ref(*store, {1, b.digest});
  auto recreate_b = start_create_id(*store, b);                               // id 5
  auto remove_b_by_old_id = start_remove_ref(*store, {1, std::uint64_t{4}});  // gone with the first b
  auto remove_unborn = start_remove_ref(*store, {1, std::uint64_t{6}});       // no such id yet
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 11u);
  blocker.open();

  BOOST_TEST(*finish(std::move(held)) == 1u);
  BOOST_TEST(*finish(std::move(create_a)) == 2u);
  const auto other = finish(std::move(roll_a_by_other));
  BOOST_REQUIRE(other.has_error());
  BOOST_TEST(other.error() == err(core::errc::not_found));
  const auto rolled = finish(std::move(roll_a));
  BOOST_REQUIRE(rolled.has_value());
  BOOST_TEST(rolled->fresh.id == 3u);
  BOOST_TEST(rolled->old_id == 2u);
  BOOST_TEST(rolled->old_expires_at == 1'500);
  BOOST_TEST(rolled->fresh.description == a.description);
  BOOST_CHECK_EQUAL(finish(std::move(use_a)), error_code{});
  const auto gone = finish(std::move(remove_fresh));
  BOOST_REQUIRE(gone.has_value());
  BOOST_TEST((*gone == rolled->fresh.digest));
  BOOST_TEST(finish(std::move(remove_fresh_again)).error() == err(core::errc::not_found));
  BOOST_TEST(*finish(std::move(create_b)) == 4u);
  BOOST_TEST(finish(std::move(remove_b_by_digest)).has_value());
  BOOST_TEST(*finish(std::move(recreate_b)) == 5u);
  BOOST_TEST(finish(std::move(remove_b_by_old_id)).error() == err(core::errc::not_found));
  BOOST_TEST(finish(std::move(remove_unborn)).error() == err(core::errc::not_found));

  // a (rolled: expiry 1500, used) and the second b remain; the rolled key is gone.
  const auto page = list(*store, 1, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 2u);
  check_same(page.tokens[0], a);
  BOOST_TEST(page.tokens[0].id == 2u);
  BOOST_TEST(page.tokens[0].expires_at == 1'500);
  BOOST_TEST(page.tokens[0].last_used_at == 1'700'000'040);
  check_same(page.tokens[1], b);
  BOOST_TEST(page.tokens[1].id == 5u);
  BOOST_TEST(!lookup(*store, rolled->fresh.digest).has_value());
  BOOST_TEST(info_of(*store, a.digest).expires_at == 1'500);
  BOOST_CHECK_EQUAL(store->stats().batches, 2u);
}

// A limit set in the batch that created the token, by its id, and a roll in the same batch that
// copies it: each write sees the ones before it.
BOOST_AUTO_TEST_CASE(one_batch_sets_the_limit_of_what_it_created) {
  temp_dir dir;
  gate blocker;
  auto options = rocksdb_options_in(dir);
  options.test_before_write = [&] { return blocker.hold_first(); };
  const auto store = storage::open_rocksdb_store(options);
  const auto set = [&](storage::token_ref ref, std::optional<core::rate_limit> limit) {
    return start<remove_result>(
        [&](auto handler) { store->async_set_rate_limit(ref, limit, std::move(handler)); });
  };

  auto held = start_create_id(*store, make_record(9, 0));  // id 1, alone in the first batch
  BOOST_REQUIRE(blocker.entered());
  const auto a = make_record(1, 1);
  auto create_a = start_create_id(*store, a);                                 // id 2
  auto set_by_other = set({2, std::uint64_t{2}}, core::rate_limit{1, 1, 1});  // not theirs
  auto set_a = set({1, std::uint64_t{2}}, core::rate_limit{40, 1, 80});
  auto roll_a = start_roll(*store, {1, a.digest}, 1'000, 1'500);  // new key: id 3, a's limit
  auto set_a_again = set({1, a.digest}, core::rate_limit{3, 1, 0});
  auto set_unborn = set({1, std::uint64_t{4}}, core::rate_limit{1, 1, 1});
  blocker.open();

  BOOST_TEST(*finish(std::move(held)) == 1u);
  BOOST_TEST(*finish(std::move(create_a)) == 2u);
  BOOST_TEST(finish(std::move(set_by_other)).error() == err(core::errc::not_found));
  const auto done = finish(std::move(set_a));
  BOOST_REQUIRE(done.has_value());
  BOOST_TEST((*done == a.digest));
  const auto rolled = finish(std::move(roll_a));
  BOOST_REQUIRE(rolled.has_value());
  BOOST_TEST((rolled->fresh.rate_limit == std::optional<core::rate_limit>{core::rate_limit{40, 1, 80}}));
  BOOST_TEST(finish(std::move(set_a_again)).has_value());
  BOOST_TEST(finish(std::move(set_unborn)).error() == err(core::errc::not_found));

  BOOST_TEST(
      (info_of(*store, a.digest).rate_limit == std::optional<core::rate_limit>{core::rate_limit{3, 1, 0}}));
  BOOST_TEST(info_of(*store, a.digest).expires_at == 1'500);
  BOOST_TEST((info_of(*store, rolled->fresh.digest).rate_limit ==
              std::optional<core::rate_limit>{core::rate_limit{40, 1, 80}}));
  const auto page = list(*store, 1, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 2u);
  BOOST_TEST((page.tokens[0].rate_limit == std::optional<core::rate_limit>{core::rate_limit{3, 1, 0}}));
  BOOST_TEST(page.tokens[0].expires_at == 1'500);
  BOOST_TEST((page.tokens[1].rate_limit == std::optional<core::rate_limit>{core::rate_limit{40, 1, 80}}));
  BOOST_CHECK_EQUAL(store->stats().batches, 2u);

  // On disk, not only in the writer's memory.
  store->close();
  const auto reopened = storage::open_rocksdb_store(rocksdb_options_in(dir));
  BOOST_TEST((info_of(*reopened, a.digest).rate_limit ==
              std::optional<core::rate_limit>{core::rate_limit{3, 1, 0}}));
  BOOST_TEST(info_of(*reopened, a.digest).id == 2u);
  BOOST_TEST(info_of(*reopened, a.digest).display_prefix == a.display_prefix);
}

// A sweep queued behind other writes sees them: they are written first, in a batch of their own,
// and the writes queued after the sweep see what it removed.
BOOST_AUTO_TEST_CASE(a_sweep_in_a_batch_sees_the_writes_before_it) {
  temp_dir dir;
  gate blocker;
  auto options = rocksdb_options_in(dir);
  options.test_before_write = [&] { return blocker.hold_first(); };
  const auto store = storage::open_rocksdb_store(options);

  auto held = start_create_id(*store, make_record(9, 0));
  BOOST_REQUIRE(blocker.entered());
  auto a = make_record(1, 1);
  a.expires_at = 100;
  const auto b = make_record(1, 2);
  auto create_a = start_create_id(*store, a);
  auto create_b = start_create_id(*store, b);
  auto roll_b = start_roll(*store, {1, b.digest}, 50, 200);  // b now expires at 200
  auto sweep = start_sweep(*store, 1'000, 10);
  auto use_a = start_uses(*store, {{a.digest, 1, 1'700'000'040}});  // gone: ignored
  auto remove_b = start_remove_ref(*store, {1, b.digest});          // gone: not found
  blocker.open();

  BOOST_TEST(finish(std::move(held)).has_value());
  BOOST_TEST(finish(std::move(create_a)).has_value());
  BOOST_TEST(finish(std::move(create_b)).has_value());
  const auto rolled = finish(std::move(roll_b));
  BOOST_REQUIRE(rolled.has_value());
  const auto swept = finish(std::move(sweep));
  BOOST_REQUIRE(swept.has_value());
  BOOST_REQUIRE_EQUAL(swept->size(), 2u);
  BOOST_TEST(((*swept)[0].digest == a.digest));
  BOOST_TEST(((*swept)[1].digest == b.digest));
  BOOST_CHECK_EQUAL(finish(std::move(use_a)), error_code{});
  BOOST_TEST(finish(std::move(remove_b)).error() == err(core::errc::not_found));
  const auto page = list(*store, 1, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 1u);
  BOOST_TEST((page.tokens[0].digest == rolled->fresh.digest));
  BOOST_TEST(page.tokens[0].last_used_at == 0);
  BOOST_CHECK_EQUAL(store->stats().batches, 3u);  // the held create, the writes before the sweep, the rest
}

// With far more expired tokens than a sweep's limit, each sweep is one bounded write of the oldest
// expiries, and repeated sweeps take them all, never one that has not expired before the cutoff.
BOOST_AUTO_TEST_CASE(remove_expired_is_bounded_by_its_limit) {
  temp_dir dir;
  auto options = rocksdb_options_in(dir);
  options.sync = false;  // many creates; durability is not what this tests
  const auto store = storage::open_rocksdb_store(options);
  constexpr int expiring = 2'500;
  std::vector<core::token_record> records;
  std::vector<std::future<outcome<create_result>>> creates;
  for (int i = 0; i < expiring + 10; ++i) {
    records.push_back(make_record(static_cast<core::user_id>(1 + i % 3), i));
    // Expiries in reverse creation order, so that expiry order is not creation order; the last
    // ten never expire.
    if (i < expiring) records.back().expires_at = 10'000 - i;
  }
  for (const auto& r : records) creates.push_back(start_create_id(*store, r));
  for (auto& c : creates) BOOST_REQUIRE(finish(std::move(c)).has_value());

  const std::int64_t cutoff = 10'000 - 100;  // the 100 latest expiries are not before it
  std::vector<storage::removed_token> removed;
  for (int call = 0;; ++call) {
    BOOST_REQUIRE(call < 10);
    const auto batches = store->stats().batches;
    const auto some = finish(start_sweep(*store, cutoff, 1'000));
    BOOST_REQUIRE(some.has_value());
    BOOST_TEST(some->size() <= 1'000u);
    BOOST_TEST(store->stats().batches == batches + 1);
    removed.insert(removed.end(), some->begin(), some->end());
    if (some->size() < 1'000) break;
  }
  BOOST_REQUIRE_EQUAL(removed.size(), static_cast<std::size_t>(expiring - 101));
  for (std::size_t n = 0; n < removed.size(); ++n) {
    // Oldest expiry first: the last expiring record created comes first.
    const auto& want = records[static_cast<std::size_t>(expiring) - 1 - n];
    BOOST_TEST_CONTEXT("removed #" << n) {
      BOOST_TEST((removed[n].digest == want.digest));
      BOOST_TEST(removed[n].owner == want.owner);
    }
  }
  std::size_t left = 0;
  for (core::user_id owner = 1; owner <= 3; ++owner) {
    for (const auto& t : list(*store, owner, 0, 10'000).tokens) {
      BOOST_TEST((t.expires_at == 0 || t.expires_at >= cutoff));
      ++left;
    }
  }
  BOOST_TEST(left == 101u + 10u);
  BOOST_TEST(finish(start_sweep(*store, cutoff, 1'000))->empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(faulty)

// A `Backend` store behind the fault injector, controlled through the file `control`.
template <class Backend>
struct faulty_over {
  Backend backend;
  temp_dir control_dir;
  fs::path control = control_dir.path() / "control";
  std::unique_ptr<token_store> store = storage::make_faulty_store(backend.open(), control.string());
};

BOOST_AUTO_TEST_CASE_TEMPLATE(fail_then_recover, Backend, backends) {
  faulty_over<Backend> faulty;
  const auto& store = faulty.store;
  const auto& control = faulty.control;

  const auto p = make_record(1, 1);
  BOOST_REQUIRE_EQUAL(create(*store, p), error_code{});  // no control file: pass through
  BOOST_CHECK(store->ready());

  write_file(control, "fail\n");
  BOOST_CHECK(!store->ready());
  const auto q = make_record(1, 2);
  BOOST_CHECK_EQUAL(create(*store, q), err(core::errc::unavailable));
  BOOST_CHECK_EQUAL(remove(*store, 1, p.digest), err(core::errc::unavailable));
  BOOST_CHECK(!lookup(*store, q.digest).has_value());
  BOOST_CHECK(lookup(*store, p.digest) == std::optional<core::user_id>{1});
  BOOST_CHECK_EQUAL(list(*store, 1, 0, 10).tokens.size(), 1u);

  fs::remove(control);
  BOOST_CHECK(store->ready());
  BOOST_CHECK_EQUAL(create(*store, q), error_code{});
  BOOST_CHECK_EQUAL(remove(*store, 1, p.digest), error_code{});
  BOOST_CHECK(lookup(*store, q.digest) == std::optional<core::user_id>{1});
  BOOST_CHECK(!lookup(*store, p.digest).has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(stall_holds_writes_but_not_reads, Backend, backends) {
  faulty_over<Backend> faulty;
  const auto& store = faulty.store;
  const auto& control = faulty.control;

  const auto p = make_record(1, 1);
  BOOST_REQUIRE_EQUAL(create(*store, p), error_code{});

  write_file(control, "  stall \n");
  const auto q = make_record(1, 2);
  auto stalled = start_create(*store, q);
  // Not a wait for something to happen: checks that the write does not complete while stalled.
  BOOST_CHECK(stalled.wait_for(100ms) == std::future_status::timeout);
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 1u);

  // Reads complete promptly meanwhile.
  const auto found = finish(start_lookup(*store, p.digest), where::storage_thread, 2s);
  BOOST_REQUIRE(found.has_value());
  BOOST_CHECK(found->has_value() && (*found)->owner == 1);
  const auto not_yet = finish(start_lookup(*store, q.digest), where::storage_thread, 2s);
  BOOST_REQUIRE(not_yet.has_value());
  BOOST_CHECK(!not_yet->has_value());
  const auto page = finish(start_list(*store, 1, 0, 10), where::storage_thread, 2s);
  BOOST_REQUIRE(page.has_value());
  BOOST_CHECK_EQUAL(page->tokens.size(), 1u);
  BOOST_CHECK(stalled.wait_for(0s) == std::future_status::timeout);

  write_file(control, "");  // empty: pass through
  BOOST_CHECK_EQUAL(finish(std::move(stalled)), error_code{});
  BOOST_CHECK(lookup(*store, q.digest) == std::optional<core::user_id>{1});
  BOOST_CHECK_EQUAL(store->stats().queue_depth, 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(close_ends_a_stall, Backend, backends) {
  faulty_over<Backend> faulty;
  const auto& store = faulty.store;
  const auto& control = faulty.control;

  write_file(control, "stall");
  auto stalled = start_create(*store, make_record(1, 1));
  BOOST_CHECK(stalled.wait_for(50ms) == std::future_status::timeout);

  auto closing = std::async(std::launch::async, [&] { store->close(); });
  BOOST_REQUIRE(closing.wait_for(deadline) == std::future_status::ready);
  // The stalled write went through to the inner store before it closed.
  BOOST_CHECK_EQUAL(finish(std::move(stalled)), error_code{});
  BOOST_CHECK(!store->ready());
  BOOST_CHECK_EQUAL(create(*store, make_record(1, 2), where::any_thread), err(core::errc::unavailable));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postgres)

// Two stores on one schema stand for two processes on one database.
BOOST_AUTO_TEST_CASE(a_delete_reaches_the_other_store_through_on_revoked) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  BOOST_CHECK(a->shared());
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<core::key_digest> revoked;
  b->on_revoked([&](const core::key_digest& d) {
    const std::lock_guard lock(mutex);
    revoked.push_back(d);
    cv.notify_all();
  });

  const auto r = make_record(9, 1);
  BOOST_REQUIRE_EQUAL(create(*a, r), error_code{});
  BOOST_CHECK(lookup(*b, r.digest) == std::optional<core::user_id>{9});  // created on A, seen on B at once
  BOOST_REQUIRE_EQUAL(remove(*a, 9, r.digest), error_code{});
  std::unique_lock lock(mutex);
  BOOST_REQUIRE(cv.wait_for(lock, deadline, [&] { return !revoked.empty(); }));
  BOOST_CHECK(revoked.front() == r.digest);
  lock.unlock();
  BOOST_CHECK(!lookup(*b, r.digest).has_value());
  b->on_revoked({});
}

// A lost NOTIFY (here: a revocation row written without one) is found by the poll within its bound.
BOOST_AUTO_TEST_CASE(a_missed_notification_is_caught_by_the_poll) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto store = storage::open_postgres_store(postgres_options_for(schema));  // polls every 100ms
  std::mutex mutex;
  std::condition_variable cv;
  bool revoked = false;
  const auto r = make_record(12, 1);
  store->on_revoked([&](const core::key_digest& d) {
    const std::lock_guard lock(mutex);
    if (d == r.digest) revoked = true;
    cv.notify_all();
  });
  BOOST_REQUIRE_EQUAL(create(*store, r), error_code{});

  PGconn* conn = PQconnectdb(tokend::test::postgres_url().c_str());
  BOOST_REQUIRE_MESSAGE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
  std::string hex;
  for (const auto b : r.digest) {
    static constexpr char digits[] = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 0xF];
  }
  const std::string sql =
      "INSERT INTO " + schema + ".tokend_revocations (digest) VALUES (decode('" + hex + "', 'hex'))";
  const auto since = std::chrono::steady_clock::now();
  PGresult* result = PQexec(conn, sql.c_str());
  const bool inserted = PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  PQfinish(conn);
  BOOST_REQUIRE(inserted);

  std::unique_lock lock(mutex);
  BOOST_REQUIRE(cv.wait_for(lock, deadline, [&] { return revoked; }));
  const auto took = std::chrono::steady_clock::now() - since;
  const double took_ms = std::chrono::duration<double, std::milli>(took).count();
  BOOST_TEST_MESSAGE("caught by the poll after " << took_ms << " ms");
  BOOST_CHECK(took < 1s);  // poll interval 100ms plus a query
  lock.unlock();
  store->on_revoked({});
}

// A database that stops answering (here: a lock held by another session) fails commands with
// unavailable after command_timeout instead of holding them, and the store recovers afterwards.
BOOST_AUTO_TEST_CASE(an_unanswered_command_times_out_and_the_store_recovers) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  auto options = postgres_options_for(schema);
  options.command_timeout = 300ms;
  const auto store = storage::open_postgres_store(options);
  const auto r = make_record(13, 1);
  BOOST_REQUIRE_EQUAL(create(*store, r), error_code{});

  PGconn* conn = PQconnectdb(tokend::test::postgres_url().c_str());
  BOOST_REQUIRE_MESSAGE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
  const std::string lock_sql = "BEGIN; LOCK TABLE " + schema + ".tokend_tokens IN ACCESS EXCLUSIVE MODE";
  PGresult* locked = PQexec(conn, lock_sql.c_str());
  const bool holding = PQresultStatus(locked) == PGRES_COMMAND_OK;
  PQclear(locked);
  BOOST_REQUIRE(holding);

  const auto since = std::chrono::steady_clock::now();
  const auto blocked = finish(start_lookup(*store, r.digest));
  BOOST_REQUIRE(blocked.has_error());
  BOOST_CHECK_EQUAL(blocked.error(), err(core::errc::unavailable));
  BOOST_CHECK(std::chrono::steady_clock::now() - since < 3s);
  BOOST_CHECK_EQUAL(create(*store, make_record(13, 2)), err(core::errc::unavailable));

  PQclear(PQexec(conn, "ROLLBACK"));
  PQfinish(conn);
  // The dropped connections come back by themselves (poll: no sleeping on a guess).
  const auto deadline_at = std::chrono::steady_clock::now() + 10s;
  std::optional<core::user_id> found;
  while (std::chrono::steady_clock::now() < deadline_at) {
    const auto again = finish(start_lookup(*store, r.digest));
    if (again.has_value()) {
      if (again->has_value()) found = (*again)->owner;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  BOOST_CHECK(found == std::optional<core::user_id>{13});
  BOOST_CHECK(store->ready());
}

BOOST_AUTO_TEST_CASE(odd_text_round_trips_and_nul_is_refused) {
  postgres_backend backend;
  const auto store = backend.open();
  auto r = make_record(11, 1);
  r.description = R"(quote " backslash \ comma, {braces} NULL 'single' ☃)";
  BOOST_REQUIRE_EQUAL(create(*store, r), error_code{});
  const auto page = list(*store, 11, 0, 10);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 1u);
  check_same(page.tokens[0], r);

  auto nul = make_record(11, 2);
  nul.description = std::string("a\0b", 3);
  BOOST_CHECK_EQUAL(create(*store, nul), err(core::errc::bad_request));
}

BOOST_AUTO_TEST_CASE(unreachable_database_fails_open_without_the_url) {
  storage::postgres_options o;
  o.conninfo = "postgresql://tokend:secret-password@127.0.0.1:1/none?connect_timeout=2";
  o.start_timeout = 5s;
  try {
    (void)storage::open_postgres_store(o);
    BOOST_FAIL("opened a store on a closed port");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    BOOST_CHECK(what.find("PostgreSQL") != std::string::npos);
    BOOST_CHECK(what.find("secret-password") == std::string::npos);
  }
}

using tokend::test::side_session;

// Runs pg::connection::prepare_all for `statements` on a fresh session: the reply when it ends.
boost::asio::awaitable<void> prepare_on(storage::pg::connection* c, std::string url,
                                        std::vector<std::pair<const char*, std::string>> statements,
                                        std::promise<storage::pg::reply>* done) {
  if (!co_await c->connect(url, 5s)) {
    storage::pg::reply failed;
    failed.error = "connect: " + c->last_error();
    done->set_value(std::move(failed));
    co_return;
  }
  done->set_value(co_await c->prepare_all(statements));
}

// A stand-in server on 127.0.0.1 that accepts one libpq session, then answers the first command
// with a malformed message: libpq drops the session from inside its own parsing (a connection
// lost inside PQgetResult), the one way to reach that state without the socket reporting EOF.
class desynchronising_server {
 public:
  desynchronising_server() : listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    BOOST_REQUIRE(listener_ >= 0);
    BOOST_REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) == 0);
    BOOST_REQUIRE(::listen(listener_, 1) == 0);
    BOOST_REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~desynchronising_server() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  desynchronising_server(const desynchronising_server&) = delete;
  desynchronising_server& operator=(const desynchronising_server&) = delete;

  [[nodiscard]] std::string url() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) +
           " user=tokend dbname=tokend sslmode=disable gssencmode=disable connect_timeout=5";
  }

 private:
  // Waits (a bounded time, in slices so that the destructor is never held up) until `fd` is readable.
  bool readable(int fd) {
    for (int slice = 0; slice < 500 && !stop_; ++slice) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }

  void serve() {
    if (!readable(listener_)) return;
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    char buffer[4096];
    // The startup packet; then authentication OK and ready for query.
    if (readable(fd) && ::read(fd, buffer, sizeof buffer) > 0) {
      static constexpr char hello[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0, 'Z', 0, 0, 0, 5, 'I'};
      (void)!::write(fd, hello, sizeof hello);
      // The first command: answered by a message whose length (3) is impossible.
      if (readable(fd) && ::read(fd, buffer, sizeof buffer) > 0) {
        static constexpr char garbage[] = {'1', 0, 0, 0, 3};
        (void)!::write(fd, garbage, sizeof garbage);
      }
    }
    // The socket stays open: no EOF comes to rescue a client that missed the loss.
    while (!stop_) (void)readable(fd);
    ::close(fd);
  }

  int listener_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Runs prepare_all on a fresh pg::connection to `url` on a thread of its own and waits for the
// reply. Returns nullopt when it does not end within `limit`; the io_context, the connection and
// the stuck thread are then leaked on purpose, so that the test fails instead of hanging.
using statement_list = std::vector<std::pair<const char*, std::string>>;

std::optional<storage::pg::reply> prepare_all_within(const std::string& url, statement_list statements,
                                                     std::chrono::milliseconds limit,
                                                     const std::function<void()>& meanwhile = {}) {
  auto ioc = std::make_unique<boost::asio::io_context>();
  auto conn = std::make_unique<storage::pg::connection>(*ioc);  // no command timeout: no rescue from it
  auto done = std::make_unique<std::promise<storage::pg::reply>>();
  auto finished = done->get_future();
  boost::asio::co_spawn(*ioc, prepare_on(conn.get(), url, std::move(statements), done.get()),
                        boost::asio::detached);
  auto runner = std::make_unique<std::thread>([io = ioc.get()] { io->run(); });
  if (meanwhile) {
    try {
      meanwhile();
    } catch (...) {  // a failed requirement (already reported): still wait for the thread below
      BOOST_ERROR("the work done meanwhile failed");
    }
  }
  if (finished.wait_for(limit) != std::future_status::ready) {
    ioc->stop();
    runner->detach();
    (void)runner.release();
    (void)done.release();
    (void)conn.release();
    (void)ioc.release();
    return std::nullopt;
  }
  runner->join();
  storage::pg::reply r = finished.get();
  if (r.ok() && conn->ok())
    r.error.clear();
  else if (r.ok())
    r.error = "the reply was ok but the session is gone";
  return r;
}

BOOST_AUTO_TEST_CASE(a_session_lost_inside_libpq_fails_the_pipeline) {
  desynchronising_server server;
  const auto since = std::chrono::steady_clock::now();
  const auto r = prepare_all_within(server.url(), {{"first", "SELECT 1"}, {"second", "SELECT 2"}}, 5s);
  BOOST_REQUIRE_MESSAGE(r.has_value(), "the pipeline did not end after libpq lost the session (spinning)");
  const auto took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since);
  BOOST_TEST_MESSAGE("pipeline failed after " << took_ms.count() << " ms: " << r->error);
  BOOST_CHECK(!r->ok());
}

// A session lost while a pipeline waits for its results fails that pipeline at once (libpq then
// returns NULL for ever and no sync ever comes), rather than spinning the storage thread.
BOOST_AUTO_TEST_CASE(a_session_terminated_inside_a_pipeline_fails_the_pipeline) {
  const std::string url = tokend::test::postgres_url();
  const std::string schema = tokend::test::fresh_postgres_schema();
  side_session admin(url);
  admin.exec("CREATE SCHEMA " + schema + "; CREATE TABLE " + schema + ".blocker (x int)");
  side_session locker(url);
  locker.exec("BEGIN; LOCK TABLE " + schema + ".blocker IN ACCESS EXCLUSIVE MODE");

  // Parsing the second statement locks the table, so the pipeline waits there; then its backend is
  // terminated from another session.
  const std::string marker = "pipeline_probe_" + schema;
  std::vector<std::pair<const char*, std::string>> statements{
      {"first", "SELECT 1"},
      {"blocked", "SELECT x FROM " + schema + ".blocker WHERE '" + marker + "' <> ''"},
      {"third", "SELECT 2"}};
  std::chrono::steady_clock::time_point since;
  const auto terminate_it = [&] {
    std::string pid;
    const auto waiting_until = std::chrono::steady_clock::now() + deadline;
    while (pid.empty() && std::chrono::steady_clock::now() < waiting_until) {
      pid = admin.exec("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%" +
                       marker + "%' AND query NOT LIKE '%pg_stat_activity%'");
      if (pid.empty()) std::this_thread::sleep_for(10ms);
    }
    BOOST_REQUIRE_MESSAGE(!pid.empty(), "the pipeline never waited on the lock");
    since = std::chrono::steady_clock::now();
    admin.exec("SELECT pg_terminate_backend(" + pid + ")");
  };
  const auto r = prepare_all_within(url, statements, 2 * deadline, terminate_it);
  BOOST_REQUIRE_MESSAGE(r.has_value(), "the pipeline did not end after its session was terminated");
  const auto took = std::chrono::steady_clock::now() - since;
  const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  BOOST_TEST_MESSAGE("pipeline failed after " << took_ms << " ms: " << r->error);
  BOOST_CHECK(!r->ok());
  BOOST_CHECK(took < 5s);
  locker.exec("ROLLBACK");
  admin.exec("DROP SCHEMA " + schema + " CASCADE");
}

// Readiness follows the database, with no request needed to notice it: false within moments of a
// stop (fast: the server sends each session a notice and closes it; immediate: the sessions just
// close), and true again by itself once the server is back.
BOOST_AUTO_TEST_CASE(readiness_follows_the_database_down_and_back) {
  tokend::test::private_postgres db;
  auto options = postgres_options_for("public");
  options.conninfo = db.url();
  options.revocation_poll = 1s;  // the default: readiness must not hang on the poll alone
  const auto store = storage::open_postgres_store(options);
  BOOST_REQUIRE(store->ready());
  for (const bool fast : {true, false}) {
    BOOST_TEST_CONTEXT((fast ? "pg_ctl stop -m fast" : "pg_ctl stop -m immediate")) {
      if (fast) {
        db.stop_fast();
      } else {
        db.stop_immediate();
      }
      const auto down = within(2s, [&] { return !store->ready(); });
      BOOST_CHECK_MESSAGE(down.has_value(), "still ready 2 s after the database stopped");
      if (down) BOOST_TEST_MESSAGE("not ready " << down->count() << " ms after the stop");
      BOOST_CHECK_EQUAL(create(*store, make_record(21, 1)), err(core::errc::unavailable));

      db.start_again();
      const auto back = within(10s, [&] { return store->ready(); });
      BOOST_CHECK_MESSAGE(back.has_value(), "not ready again 10 s after the database restarted");
      if (back) BOOST_TEST_MESSAGE("ready " << back->count() << " ms after the restart");
      BOOST_CHECK_EQUAL(create(*store, make_record(21, fast ? 2 : 3)), error_code{});
    }
  }
}

// One exception on the storage thread (here: a caller's handler that throws) fails only the jobs
// it left unanswered; the worker, and the creates queued behind that batch, go on.
BOOST_AUTO_TEST_CASE(an_exception_in_a_batch_leaves_the_store_working) {
  std::vector<std::string> logged;
  std::mutex log_mutex;
  auto options = postgres_options_for(tokend::test::fresh_postgres_schema());
  options.connections = 1;  // the worker that met the exception must be the one that goes on
  options.log = [&](bool, std::string_view message) {
    const std::lock_guard lock(log_mutex);
    logged.emplace_back(message);
  };
  const auto store = storage::open_postgres_store(options);
  for (int round = 0; round < 3; ++round) {
    BOOST_TEST_CONTEXT("round " << round) {
      const auto thrower = make_record(22, 10 * round);
      store->async_create(
          thrower, [](boost::system::result<std::uint64_t>) { throw std::runtime_error("handler failure"); });
      auto beside = start_create(*store, make_record(22, 10 * round + 1));  // possibly in the same batch
      const error_code e = finish(std::move(beside));
      BOOST_CHECK(!e || e == err(core::errc::unavailable));
      // Behind it: answered at all (not stuck behind a create batch that never ended), and stored.
      const auto later = make_record(22, 10 * round + 2);
      BOOST_CHECK_EQUAL(create(*store, later), error_code{});
      BOOST_CHECK(lookup(*store, later.digest) == std::optional<core::user_id>{22});
    }
  }
  BOOST_CHECK(store->ready());
  const std::lock_guard lock(log_mutex);
  BOOST_CHECK(!logged.empty());
  for (const auto& line : logged) BOOST_TEST_MESSAGE("logged: " << line);
}

// An on_revoked callback that throws does not end the revocation listener: later deletes still arrive.
BOOST_AUTO_TEST_CASE(an_exception_in_the_listener_leaves_it_listening) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  auto options = postgres_options_for(schema);
  std::atomic<int> logged{0};
  options.log = [&](bool, std::string_view) { ++logged; };
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(options);
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<core::key_digest> revoked;
  bool thrown = false;
  b->on_revoked([&](const core::key_digest& d) {
    const std::lock_guard lock(mutex);
    if (!thrown) {
      thrown = true;
      throw std::runtime_error("callback failure");
    }
    revoked.push_back(d);
    cv.notify_all();
  });
  const auto first = make_record(23, 1);
  const auto second = make_record(23, 2);
  BOOST_REQUIRE_EQUAL(create(*a, first), error_code{});
  BOOST_REQUIRE_EQUAL(create(*a, second), error_code{});
  BOOST_REQUIRE_EQUAL(remove(*a, 23, first.digest), error_code{});
  BOOST_REQUIRE_EQUAL(remove(*a, 23, second.digest), error_code{});
  std::unique_lock lock(mutex);
  BOOST_CHECK(cv.wait_for(lock, deadline, [&] {
    return std::find(revoked.begin(), revoked.end(), second.digest) != revoked.end();
  }));
  BOOST_CHECK(thrown);
  lock.unlock();
  BOOST_CHECK(logged.load() > 0);
  BOOST_CHECK(within(5s, [&] { return b->ready(); }).has_value());
  b->on_revoked({});
}

// ---- rate-limit counts shared between processes (token_store::async_share_admits) ----

using admit_counts = std::vector<storage::admitted_requests>;
using tag_sums = std::map<std::uint64_t, std::uint64_t>;

[[nodiscard]] error_code share(token_store& s, admit_counts counts) {
  return finish(
      start<error_code>([&](auto handler) { s.async_share_admits(std::move(counts), std::move(handler)); }));
}

// What one store hears of its peers' counts. Filled on the store's thread under a mutex; the test's
// thread reads it (Boost.Test's log is not thread-safe, so nothing is checked in the callback).
class heard_admits {
 public:
  explicit heard_admits(token_store& store) : store_(store) {
    store_.on_peer_admits([this](std::uint64_t sender, const admit_counts& counts) {
      const auto now = std::chrono::steady_clock::now();
      const std::lock_guard lock(mutex_);
      ++calls_;
      senders_.insert(sender);
      for (const auto& c : counts) {
        sums_[c.tag] += c.count;
        first_heard_.try_emplace(c.tag, now);
      }
      cv_.notify_all();
    });
  }
  ~heard_admits() { store_.on_peer_admits({}); }
  heard_admits(const heard_admits&) = delete;
  heard_admits& operator=(const heard_admits&) = delete;

  // When `tag` was first heard, waiting for it up to `limit`; nullopt if it never was.
  std::optional<std::chrono::steady_clock::time_point> wait_for(std::uint64_t tag,
                                                                std::chrono::milliseconds limit = deadline) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, limit, [&] { return first_heard_.contains(tag); })) return std::nullopt;
    return first_heard_.at(tag);
  }
  [[nodiscard]] tag_sums sums() {
    const std::lock_guard lock(mutex_);
    return sums_;
  }
  [[nodiscard]] std::set<std::uint64_t> senders() {
    const std::lock_guard lock(mutex_);
    return senders_;
  }
  [[nodiscard]] std::size_t calls() {
    const std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  token_store& store_;
  std::mutex mutex_;
  std::condition_variable cv_;
  tag_sums sums_;
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> first_heard_;
  std::set<std::uint64_t> senders_;
  std::size_t calls_ = 0;
};

// A plain libpq session LISTENing on a channel, which can also NOTIFY on it: the raw payloads.
class channel_listener {
 public:
  channel_listener(const std::string& url, std::string channel)
      : session_(url), channel_(std::move(channel)) {
    session_.exec("LISTEN " + storage::pg::quote_identifier(channel_));
  }
  void notify(const std::string& payload) {
    session_.exec("SELECT pg_notify(" + literal(channel_) + ", " + literal(payload) + ")");
  }
  // Every payload received so far, waiting up to the deadline for one equal to `last`; false if none came.
  [[nodiscard]] bool receive_until(const std::string& last) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    PGconn* conn = session_.native();
    for (;;) {
      if (PQconsumeInput(conn) == 0) return false;
      while (PGnotify* n = PQnotifies(conn)) {
        received.emplace_back(n->extra);
        PQfreemem(n);
      }
      if (std::find(received.begin(), received.end(), last) != received.end()) return true;
      if (std::chrono::steady_clock::now() >= until) return false;
      pollfd p{PQsocket(conn), POLLIN, 0};
      (void)::poll(&p, 1, 20);
    }
  }
  std::vector<std::string> received;

 private:
  [[nodiscard]] std::string literal(const std::string& text) {
    char* quoted = PQescapeLiteral(session_.native(), text.data(), text.size());
    BOOST_REQUIRE(quoted != nullptr);
    std::string out(quoted);
    PQfreemem(quoted);
    return out;
  }
  side_session session_;
  std::string channel_;
};

// Tags the tests use to know that every earlier notification has been handled: a listener hears
// notifications in commit order, its own included.
constexpr std::uint64_t marker = 0xfeed000000000000ULL;

// A and B on one schema each hear exactly what the other shares, never their own counts; C and D
// on another schema of the same database hear only each other.
BOOST_AUTO_TEST_CASE(two_stores_share_admitted_counts_both_ways_and_never_hear_their_own) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const std::string other = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  const auto c = storage::open_postgres_store(postgres_options_for(other));
  const auto d = storage::open_postgres_store(postgres_options_for(other));
  heard_admits on_a(*a);
  heard_admits on_b(*b);
  heard_admits on_c(*c);
  const admit_counts from_a{{1, 5}, {2, 7}, {3, 4'294'967'295U}};
  const admit_counts from_b{{2, 11}, {100, 1}};
  for (int round = 0; round < 2; ++round) {
    BOOST_REQUIRE_EQUAL(share(*a, from_a), error_code{});
    BOOST_REQUIRE_EQUAL(share(*b, from_b), error_code{});
  }
  BOOST_CHECK_EQUAL(share(*a, {}), error_code{});  // nothing to send: answered all the same
  // A, B, A again: when A hears B's marker and B hears A's second one, both have handled all before.
  BOOST_REQUIRE_EQUAL(share(*a, {{marker + 1, 1}}), error_code{});
  BOOST_REQUIRE_EQUAL(share(*b, {{marker + 2, 1}}), error_code{});
  BOOST_REQUIRE_EQUAL(share(*a, {{marker + 3, 1}}), error_code{});
  BOOST_REQUIRE(on_a.wait_for(marker + 2));
  BOOST_REQUIRE(on_b.wait_for(marker + 3));
  BOOST_REQUIRE_EQUAL(share(*d, {{marker + 4, 1}}), error_code{});
  BOOST_REQUIRE(on_c.wait_for(marker + 4));

  const tag_sums a_heard{{2, 22}, {100, 2}, {marker + 2, 1}};
  const tag_sums b_heard{{1, 10}, {2, 14}, {3, 2 * 4'294'967'295ULL}, {marker + 1, 1}, {marker + 3, 1}};
  BOOST_CHECK(on_a.sums() == a_heard);
  BOOST_CHECK(on_b.sums() == b_heard);
  BOOST_CHECK(on_c.sums() == (tag_sums{{marker + 4, 1}}));
  const auto a_senders = on_a.senders();
  const auto b_senders = on_b.senders();
  BOOST_REQUIRE_EQUAL(a_senders.size(), 1U);
  BOOST_REQUIRE_EQUAL(b_senders.size(), 1U);
  BOOST_CHECK(*a_senders.begin() != *b_senders.begin());  // each heard the other, by a stable id
  BOOST_CHECK_EQUAL(on_c.senders().size(), 1U);
}

// The payloads themselves, without a database: their exact text, merging, and the bound on what waits.
BOOST_AUTO_TEST_CASE(admits_payloads_are_exact_and_what_waits_is_bounded) {
  namespace pg = storage::pg;
  pg::admits_outbox outbox(0xabc);
  BOOST_CHECK(outbox.take({}).empty());
  BOOST_CHECK(outbox.take({{7, 0}}).empty());  // nothing admitted: nothing to send
  const auto one = outbox.take({{1, 5}, {0xfedcba9876543210ULL, 4'294'967'295U}, {1, 2}});
  BOOST_REQUIRE_EQUAL(one.size(), 1U);
  BOOST_CHECK_EQUAL(one[0], "0000000000000abc 0000000000000001:7,fedcba9876543210:4294967295");
  const auto parsed = pg::parse_admits(one[0]);
  BOOST_REQUIRE(parsed.has_value());
  BOOST_CHECK_EQUAL(parsed->sender, 0xabcU);
  BOOST_REQUIRE_EQUAL(parsed->counts.size(), 2U);
  BOOST_CHECK_EQUAL(parsed->counts[1].tag, 0xfedcba9876543210ULL);
  BOOST_CHECK_EQUAL(parsed->counts[1].count, 4'294'967'295U);
  // The same key's counts saturate rather than wrap.
  const auto saturated = outbox.take({{9, 4'294'967'295U}, {9, 2}});
  BOOST_REQUIRE_EQUAL(saturated.size(), 1U);
  BOOST_CHECK_EQUAL(saturated[0], "0000000000000abc 0000000000000009:4294967295");

  // One-digit counts: 414 keys a payload, 64 payloads a call; beyond that and the waiting bound,
  // counts are dropped (and counted).
  constexpr std::size_t per_call = 64 * 414;
  std::vector<storage::admitted_requests> many;
  const std::size_t total = per_call + pg::admits_waiting_keys + 10;
  many.reserve(total);
  for (std::size_t i = 0; i < total; ++i) many.push_back({i + 1, 1});
  const auto first = outbox.take(std::move(many));
  BOOST_CHECK_EQUAL(first.size(), 64U);
  std::size_t sent = 0;
  for (const auto& p : first) {
    BOOST_CHECK_LE(p.size(), pg::admits_payload_bytes);
    const auto back = pg::parse_admits(p);
    BOOST_REQUIRE(back.has_value());
    sent += back->counts.size();
  }
  BOOST_CHECK_EQUAL(sent, per_call);
  BOOST_CHECK_EQUAL(outbox.waiting(), pg::admits_waiting_keys);
  BOOST_CHECK_EQUAL(outbox.dropped(), 10U);
  // The next call sends what waited first: the key after the last one sent.
  const auto second = outbox.take({{1, 1}});
  BOOST_REQUIRE_EQUAL(second.size(), 64U);
  BOOST_CHECK(second[0].starts_with("0000000000000abc " + std::string("0000000000006781:1,")));
  BOOST_CHECK_EQUAL(outbox.waiting(), pg::admits_waiting_keys - per_call + 1);
}

// How long a share takes to reach another process: written in the test log for the documented
// error of shared limits (the interval plus this delay).
BOOST_AUTO_TEST_CASE(shared_counts_arrive_within_moments) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  heard_admits on_b(*b);
  constexpr int calls = 200;
  std::vector<double> delays_ms;
  for (int i = 0; i < calls; ++i) {
    const std::uint64_t tag = marker + static_cast<std::uint64_t>(i);
    const auto since = std::chrono::steady_clock::now();
    BOOST_REQUIRE_EQUAL(share(*a, {{tag, 1}}), error_code{});
    const auto heard = on_b.wait_for(tag);
    BOOST_REQUIRE_MESSAGE(heard.has_value(), "share " << i << " never arrived");
    delays_ms.push_back(std::chrono::duration<double, std::milli>(*heard - since).count());
  }
  std::sort(delays_ms.begin(), delays_ms.end());
  const double p50 = delays_ms[calls / 2];
  const double p99 = delays_ms[calls * 99 / 100];
  BOOST_TEST_MESSAGE("share to the peer's callback over " << calls << " calls: p50 " << p50 << " ms, p99 "
                                                          << p99 << " ms, max " << delays_ms.back() << " ms");
  BOOST_CHECK_LT(p50, 500.0);
  BOOST_CHECK_EQUAL(on_b.sums().size(), static_cast<std::size_t>(calls));
}

// Many keys go out as several payloads of at most 7900 bytes, "<sender> <tag>:<count>,...", in
// one call; the peer gets every count exactly, the same key's counts merged.
BOOST_AUTO_TEST_CASE(many_counts_are_split_into_payloads_that_all_arrive) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  heard_admits on_b(*b);
  channel_listener raw(tokend::test::postgres_url(), storage::postgres_names(schema).rate_channel());
  admit_counts counts;
  tag_sums expected;
  for (std::uint32_t i = 1; i <= 3000; ++i) {
    const std::uint32_t n = i % 7 == 0 ? 4'294'967'295U : i;
    counts.push_back({i, n});
    expected[i] += n;
  }
  counts.push_back({5, 3});  // the same key twice in one call
  expected[5] += 3;
  BOOST_REQUIRE_EQUAL(share(*a, counts), error_code{});
  raw.notify("end of the first call");
  BOOST_REQUIRE_EQUAL(share(*a, {{marker, 1}}), error_code{});
  BOOST_REQUIRE(on_b.wait_for(marker));
  expected[marker] = 1;
  BOOST_CHECK(on_b.sums() == expected);

  BOOST_REQUIRE(raw.receive_until("end of the first call"));
  const auto end = std::find(raw.received.begin(), raw.received.end(), "end of the first call");
  const std::vector<std::string> payloads(raw.received.begin(), end);
  BOOST_REQUIRE_GE(payloads.size(), 2U);
  BOOST_CHECK_EQUAL(on_b.calls(), payloads.size() + 1);  // one callback per payload
  std::size_t entry_bytes = 0;
  std::size_t entries = 0;
  for (const auto& p : payloads) {
    BOOST_CHECK_LE(p.size(), 7900U);
    BOOST_REQUIRE_GT(p.size(), 17U);
    BOOST_CHECK_EQUAL(p.substr(0, 17), payloads.front().substr(0, 17));  // one sender, 16 hex digits
    BOOST_CHECK_EQUAL(p[16], ' ');
    entry_bytes += p.size() - 16;  // the space stands for the last entry's missing comma
    entries += static_cast<std::size_t>(std::count(p.begin(), p.end(), ','));
    ++entries;
  }
  BOOST_CHECK_EQUAL(entries, expected.size() - 1);
  // Filled before the next is begun: no more payloads than the bytes need, give or take one entry each.
  BOOST_CHECK_LE(payloads.size(), entry_bytes / (7900 - 17 - 28) + 1);
  BOOST_TEST_MESSAGE(payloads.size() << " payloads for " << entries << " keys, "
                                     << static_cast<double>(entry_bytes) / static_cast<double>(entries)
                                     << " bytes per key");
}

// One call sends at most 64 payloads; what does not fit goes with the next call, merged with
// that call's own counts of the same keys.
BOOST_AUTO_TEST_CASE(counts_beyond_64_payloads_go_with_the_next_call) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  heard_admits on_b(*b);
  channel_listener raw(tokend::test::postgres_url(), storage::postgres_names(schema).rate_channel());
  admit_counts counts;
  tag_sums expected;
  constexpr std::uint32_t keys = 30000;  // ten-digit counts: about 281 a payload
  for (std::uint32_t i = 1; i <= keys; ++i) {
    counts.push_back({i, 4'000'000'000U + i});
    expected[i] = 4'000'000'000U + i;
  }
  const auto since = std::chrono::steady_clock::now();
  BOOST_REQUIRE_EQUAL(share(*a, counts), error_code{});
  raw.notify("after the first call");
  BOOST_REQUIRE(raw.receive_until("after the first call"));
  const auto end = std::find(raw.received.begin(), raw.received.end(), "after the first call");
  BOOST_CHECK_EQUAL(end - raw.received.begin(), 64);
  BOOST_REQUIRE(within(deadline, [&] { return on_b.calls() >= 64; }).has_value());
  const auto took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since);
  BOOST_TEST_MESSAGE("64 payloads heard by the peer " << took.count() << " ms after the call");
  const tag_sums first = on_b.sums();
  BOOST_REQUIRE_LT(first.size(), expected.size());
  BOOST_REQUIRE_GT(first.size(), 64U * 250U);
  for (const auto& [tag, sum] : first) BOOST_CHECK_EQUAL(sum, expected.at(tag));

  // The next call: one key still waiting gets more, one is new.
  std::uint64_t waiting = 0;
  for (std::uint32_t i = 1; i <= keys && waiting == 0; ++i) {
    if (!first.contains(i)) waiting = i;
  }
  BOOST_REQUIRE_NE(waiting, 0U);
  BOOST_REQUIRE_EQUAL(share(*a, {{waiting, 5}, {keys + 1, 9}}), error_code{});
  expected[waiting] += 5;
  expected[keys + 1] = 9;
  BOOST_REQUIRE_EQUAL(share(*a, {{marker, 1}}), error_code{});
  expected[marker] = 1;
  BOOST_REQUIRE(on_b.wait_for(marker));
  BOOST_CHECK(on_b.sums() == expected);
}

// A payload that is not "<16 hex> <16 hex>:<count>,..." is ignored whole and counted (logged); the
// listener goes on, and a well-formed one written by hand is heard like any process's.
BOOST_AUTO_TEST_CASE(malformed_payloads_are_ignored_and_the_next_good_one_arrives) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  std::mutex log_mutex;
  std::vector<std::string> logged;
  auto options = postgres_options_for(schema);
  options.log = [&](bool, std::string_view message) {
    const std::lock_guard lock(log_mutex);
    logged.emplace_back(message);
  };
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(options);
  heard_admits on_b(*b);
  channel_listener raw(tokend::test::postgres_url(), storage::postgres_names(schema).rate_channel());
  const std::string sender = "0123456789abcdef";
  const std::string entry = "0000000000000001:1";
  const std::vector<std::string> malformed{
      "",
      "garbage",
      sender,
      sender + " ",
      sender + " " + entry + ",",
      sender + " " + entry + ",,0000000000000002:1",
      sender + "  " + entry,
      sender + "\t" + entry,
      sender + " " + entry + " ",
      sender + " " + entry + ",zz",
      "0123456789abcdeg " + entry,
      "0123456789ABCDEF " + entry,
      "123456789abcdef " + entry,
      "00123456789abcdef " + entry,
      sender + " 000000000000001:1",
      sender + " 00000000000000001:1",
      sender + " 0000000000000001",
      sender + " 0000000000000001:",
      sender + " 0000000000000001:4294967296",
      sender + " 0000000000000001:99999999999999999999999",
      sender + " 0000000000000001:-1",
      sender + " 0000000000000001:+1",
      sender + " 0000000000000001:1x",
      sender + " 0000000000000001::1",
      sender + " " + std::string(7900, '7'),
      sender + " " + entry + "," + std::string(7000, ','),
  };
  for (const auto& payload : malformed) raw.notify(payload);
  raw.notify("fedcba9876543210 00000000000000aa:3,00000000000000bb:4294967295");
  BOOST_REQUIRE_EQUAL(share(*a, {{marker, 1}}), error_code{});
  BOOST_REQUIRE(on_b.wait_for(marker));
  BOOST_CHECK(on_b.sums() == (tag_sums{{0xaa, 3}, {0xbb, 4'294'967'295U}, {marker, 1}}));
  const auto senders = on_b.senders();
  BOOST_CHECK_EQUAL(senders.size(), 2U);
  BOOST_CHECK(senders.contains(0xfedcba9876543210ULL));
  BOOST_CHECK(b->ready());
  const std::lock_guard lock(log_mutex);
  BOOST_CHECK(std::any_of(logged.begin(), logged.end(), [](const std::string& line) {
    return line.find("malformed") != std::string::npos;
  }));
  for (const auto& line : logged) BOOST_TEST_MESSAGE("logged: " << line);
}

// An on_peer_admits callback that throws loses those counts only: the listener goes on hearing
// (and shares go on succeeding), unlike a revocation, which the poll would find again.
BOOST_AUTO_TEST_CASE(a_throwing_peer_callback_loses_only_its_counts) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  std::atomic<int> errors_logged{0};
  auto options = postgres_options_for(schema);
  options.log = [&](bool error, std::string_view) {
    if (error) ++errors_logged;
  };
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(options);
  std::mutex mutex;
  std::condition_variable cv;
  tag_sums heard;
  bool thrown = false;
  b->on_peer_admits([&](std::uint64_t, const admit_counts& counts) {
    const std::lock_guard lock(mutex);
    if (!thrown) {
      thrown = true;
      throw std::runtime_error("callback failure");
    }
    for (const auto& c : counts) heard[c.tag] += c.count;
    cv.notify_all();
  });
  BOOST_REQUIRE_EQUAL(share(*a, {{1, 1}}), error_code{});
  BOOST_REQUIRE_EQUAL(share(*a, {{2, 2}}), error_code{});
  {
    std::unique_lock lock(mutex);
    BOOST_CHECK(cv.wait_for(lock, deadline, [&] { return heard.contains(2); }));
    BOOST_CHECK(thrown);
    BOOST_CHECK(heard == (tag_sums{{2, 2}}));
  }
  BOOST_CHECK_EQUAL(share(*b, {}), error_code{});
  BOOST_CHECK(b->ready());
  BOOST_CHECK_GT(errors_logged.load(), 0);
  b->on_peer_admits({});
}

// While the database is down a share answers an error (the caller then holds to its share of each
// limit), an empty one too; once it is back, shares succeed and counts flow again.
BOOST_AUTO_TEST_CASE(sharing_fails_while_the_database_is_down_and_recovers) {
  tokend::test::private_postgres db;
  auto options = postgres_options_for("public");
  options.conninfo = db.url();
  const auto a = storage::open_postgres_store(options);
  const auto b = storage::open_postgres_store(options);
  heard_admits on_b(*b);
  BOOST_REQUIRE_EQUAL(share(*a, {{1, 1}}), error_code{});
  BOOST_REQUIRE(on_b.wait_for(1));

  db.stop_fast();
  const auto failing = within(5s, [&] { return share(*a, {{2, 1}}) != error_code{}; });
  BOOST_CHECK_MESSAGE(failing.has_value(), "shares still succeed 5 s after the database stopped");
  if (failing) BOOST_TEST_MESSAGE("shares fail " << failing->count() << " ms after the stop");
  BOOST_CHECK(within(5s, [&] { return share(*b, {}) != error_code{}; }).has_value());

  db.start_again();
  std::uint64_t tag = marker;
  const auto flowing = within(20s, [&] {
    ++tag;
    return share(*a, {{tag, 1}}) == error_code{} && on_b.wait_for(tag, 200ms).has_value();
  });
  BOOST_REQUIRE_MESSAGE(flowing.has_value(), "counts do not flow 20 s after the database restarted");
  BOOST_TEST_MESSAGE("counts flow again " << flowing->count() << " ms after the restart");
  BOOST_CHECK(within(5s, [&] { return share(*b, {}) == error_code{}; }).has_value());
  BOOST_REQUIRE_EQUAL(share(*a, {{3, 9}}), error_code{});
  BOOST_REQUIRE(on_b.wait_for(3));
  BOOST_CHECK_EQUAL(on_b.sums().at(3), 9U);
}

BOOST_AUTO_TEST_CASE(invalid_schema_name_is_refused) {
  const std::vector<std::string> names{std::string(),          "pg_tokend",  std::string(49, 's'), "a\nb",
                                       std::string("a\0b", 3), "caf\xc3\xa9"};
  for (const auto& name : names) {
    BOOST_TEST_CONTEXT("schema '" << name << "'") {
      BOOST_CHECK(!storage::postgres_schema_problem(name).empty());
      storage::postgres_options o;
      o.conninfo = tokend::test::postgres_url();
      o.schema = name;
      BOOST_CHECK_THROW((void)storage::open_postgres_store(o), std::runtime_error);
    }
  }
}

BOOST_AUTO_TEST_CASE(identifiers_are_quoted) {
  BOOST_CHECK_EQUAL(storage::pg::quote_identifier("select"), "\"select\"");
  BOOST_CHECK_EQUAL(storage::pg::quote_identifier("MixedCase"), "\"MixedCase\"");
  BOOST_CHECK_EQUAL(storage::pg::quote_identifier("a\"b"), "\"a\"\"b\"");
  BOOST_CHECK_EQUAL(storage::pg::quote_identifier("\""), "\"\"\"\"");
}

// Any name the rule accepts is used exactly, quoted: reserved words, capitals, and names shaped
// like an injection, which must create a schema of that very name and run nothing else.
BOOST_AUTO_TEST_CASE(reserved_mixed_case_and_injection_shaped_schemas_work) {
  const std::string url = tokend::test::postgres_url();
  const std::string victim = tokend::test::fresh_postgres_schema();
  side_session admin(url);
  admin.exec("CREATE SCHEMA " + victim + "; CREATE TABLE " + victim + ".victim (x int)");
  const std::string suffix = victim.substr(victim.find('_'));  // so that runs on one server do not meet
  const std::vector<std::string> names{"select",
                                       "user",
                                       "order",
                                       "Mixed" + suffix,
                                       "x\"; DROP TABLE " + victim + ".victim; --",
                                       "y'; DROP TABLE " + victim + ".victim; --",
                                       "public.z" + suffix};
  std::mt19937_64 random{std::random_device{}()};
  for (const auto& name : names) {
    BOOST_TEST_CONTEXT("schema '" << name << "'") {
      BOOST_REQUIRE(storage::postgres_schema_problem(name).empty());
      // Two stores on the schema: creates, lookups, lists and deletes, and the revocation channel.
      const core::user_id owner = random() | 1;
      const auto a = storage::open_postgres_store(postgres_options_for(name));
      const auto b = storage::open_postgres_store(postgres_options_for(name));
      std::mutex mutex;
      std::condition_variable cv;
      std::optional<core::key_digest> revoked;
      b->on_revoked([&](const core::key_digest& d) {
        const std::lock_guard lock(mutex);
        revoked = d;
        cv.notify_all();
      });
      const auto r = make_record(owner, 1);
      BOOST_REQUIRE_EQUAL(create(*a, r), error_code{});
      BOOST_CHECK(lookup(*b, r.digest) == std::optional<core::user_id>{owner});
      BOOST_CHECK_EQUAL(list(*b, owner, 0, 10).tokens.size(), 1u);
      BOOST_REQUIRE_EQUAL(remove(*a, owner, r.digest), error_code{});
      std::unique_lock lock(mutex);
      BOOST_CHECK(cv.wait_for(lock, deadline, [&] { return revoked.has_value(); }));
      lock.unlock();
      b->on_revoked({});
      // The schema of exactly that name holds the tables; the injection ran nowhere.
      const std::string quoted_literal = [&] {
        std::string out = "'";
        for (const char c : name) out += c == '\'' ? std::string("''") : std::string(1, c);
        return out + "'";
      }();
      const std::string tables = "SELECT count(*) FROM pg_tables WHERE schemaname = ";
      BOOST_CHECK_EQUAL(admin.exec(tables + quoted_literal), "4");  // tokens, revocations, owners, secrets
      BOOST_CHECK_EQUAL(admin.exec(tables + "'" + victim + "'"), "1");
    }
  }
  for (const auto& name : names) {
    admin.exec("DROP SCHEMA IF EXISTS " + storage::pg::quote_identifier(name) + " CASCADE");
  }
  admin.exec("DROP SCHEMA " + victim + " CASCADE");
}

// ---- two processes on one database: roll, last use, removal of expired tokens ----

using roll_result = boost::system::result<storage::rolled_token>;
using sweep_result = boost::system::result<std::vector<storage::removed_token>>;

[[nodiscard]] std::uint64_t create_id(token_store& s, const core::token_record& r) {
  const auto id = finish(start<boost::system::result<std::uint64_t>>(
      [&](auto handler) { s.async_create(r, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(id.has_value(), "create failed: " << id.error().message());
  return *id;
}

[[nodiscard]] std::optional<storage::key_info> info(token_store& s, const core::key_digest& d) {
  const lookup_result r = finish(start_lookup(s, d));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "lookup failed: " << r.error().message());
  return *r;
}

[[nodiscard]] error_code record_uses(token_store& s, std::vector<storage::key_use> uses) {
  return finish(start<error_code>([&](auto handler) { s.async_record_uses(uses, std::move(handler)); }));
}

// A roll through A is a revocation of the old key on B, whose next lookup reads its new expiry.
BOOST_AUTO_TEST_CASE(a_roll_reaches_the_other_store_through_on_revoked) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<core::key_digest> revoked;
  b->on_revoked([&](const core::key_digest& d) {
    const std::lock_guard lock(mutex);
    revoked.push_back(d);
    cv.notify_all();
  });

  const auto old = make_record(21, 1);
  const std::uint64_t old_id = create_id(*a, old);
  BOOST_REQUIRE(info(*b, old.digest).has_value());
  BOOST_CHECK_EQUAL(info(*b, old.digest)->expires_at, 0);

  const std::int64_t now = 1'900'000'000;
  const std::string key = core::generate_key();
  storage::roll_request request;
  request.old = {21, old_id};
  request.digest = core::digest_key(key);
  request.display_prefix = key.substr(0, core::display_prefix_length);
  request.now = now;
  request.old_expires_at = now + 60;
  const auto rolled =
      finish(start<roll_result>([&](auto handler) { a->async_roll(request, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(rolled.has_value(), "roll failed: " << rolled.error().message());

  std::unique_lock lock(mutex);
  BOOST_REQUIRE(cv.wait_for(lock, deadline, [&] { return !revoked.empty(); }));
  BOOST_CHECK(revoked.front() == old.digest);
  BOOST_CHECK_EQUAL(revoked.size(), 1u);  // the new key is not revoked
  lock.unlock();
  const auto old_on_b = info(*b, old.digest);
  BOOST_REQUIRE(old_on_b.has_value());
  BOOST_CHECK_EQUAL(old_on_b->expires_at, now + 60);
  const auto fresh_on_b = info(*b, request.digest);
  BOOST_REQUIRE(fresh_on_b.has_value());
  BOOST_CHECK_EQUAL(fresh_on_b->owner, 21u);
  b->on_revoked({});
}

// A rate limit set through A is a revocation of the key on B, whose next lookup reads the new limit.
BOOST_AUTO_TEST_CASE(a_rate_limit_change_reaches_the_other_store_through_on_revoked) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<core::key_digest> revoked;  // a digest may come twice: notified, then polled
  b->on_revoked([&](const core::key_digest& d) {
    const std::lock_guard lock(mutex);
    revoked.push_back(d);
    cv.notify_all();
  });
  const auto heard = [&](const core::key_digest& d) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, deadline,
                       [&] { return std::find(revoked.begin(), revoked.end(), d) != revoked.end(); });
  };
  side_session side(tokend::test::postgres_url());
  const auto revocations = [&] {
    return side.exec("SELECT count(*) FROM " + schema + ".tokend_revocations");
  };

  auto r = make_record(27, 1);
  r.rate_limit = core::rate_limit{100, 1, 0};
  const auto bystander = make_record(27, 2);
  const std::uint64_t id = create_id(*a, r);
  (void)create_id(*a, bystander);
  BOOST_CHECK(info(*b, r.digest)->rate_limit == r.rate_limit);

  const auto set = [&](storage::token_ref ref, std::optional<core::rate_limit> limit) {
    return finish(start<boost::system::result<core::key_digest>>(
        [&](auto handler) { a->async_set_rate_limit(ref, limit, std::move(handler)); }));
  };
  const auto changed = set({27, id}, core::rate_limit{5, 60, 10});
  BOOST_REQUIRE_MESSAGE(changed.has_value(), "set failed: " << changed.error().message());
  BOOST_CHECK(*changed == r.digest);
  BOOST_REQUIRE(heard(r.digest));
  BOOST_CHECK_EQUAL(revocations(), "1");
  BOOST_CHECK(info(*b, r.digest)->rate_limit == (std::optional<core::rate_limit>{{5, 60, 10}}));
  BOOST_CHECK_EQUAL(info(*b, r.digest)->owner, 27u);  // revoked from caches, not deleted

  // Back to the default, by digest: revoked again. A refused change revokes nothing.
  BOOST_REQUIRE(set({27, r.digest}, std::nullopt).has_value());
  BOOST_CHECK_EQUAL(revocations(), "2");
  BOOST_CHECK(!info(*b, r.digest)->rate_limit.has_value());
  BOOST_CHECK(set({28, id}, core::rate_limit{1, 1, 1}).error() == err(core::errc::not_found));
  BOOST_CHECK(set({28, r.digest}, core::rate_limit{1, 1, 1}).error() == err(core::errc::not_found));
  BOOST_CHECK_EQUAL(revocations(), "2");

  // Only that key was revoked: the bystander is heard of when it is deleted, not before.
  BOOST_REQUIRE_EQUAL(remove(*a, 27, bystander.digest), error_code{});
  BOOST_REQUIRE(heard(bystander.digest));
  {
    const std::lock_guard lock(mutex);
    for (const auto& d : revoked) BOOST_CHECK(d == r.digest || d == bystander.digest);
    BOOST_CHECK(revoked.front() == r.digest);
  }
  b->on_revoked({});
}

// Two processes rolling one key at once with no overlap: the old row is locked, so the second sees
// it expired by the first and finds nothing to roll; one new key exists.
BOOST_AUTO_TEST_CASE(two_stores_rolling_one_key_at_once_roll_it_once) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  constexpr std::int64_t now = 1'900'000'000;
  for (int n = 0; n < 20; ++n) {
    const auto old = make_record(26, n);
    const std::uint64_t old_id = create_id(*a, old);
    std::vector<storage::roll_request> requests(2);
    for (auto& q : requests) {
      const std::string key = core::generate_key();
      q.old = {26, old_id};
      q.digest = core::digest_key(key);
      q.display_prefix = key.substr(0, core::display_prefix_length);
      q.now = now;
      q.old_expires_at = now;
    }
    auto on_a = start<roll_result>([&](auto handler) { a->async_roll(requests[0], std::move(handler)); });
    auto on_b = start<roll_result>([&](auto handler) { b->async_roll(requests[1], std::move(handler)); });
    const auto ra = finish(std::move(on_a));
    const auto rb = finish(std::move(on_b));
    BOOST_REQUIRE_MESSAGE(ra.has_value() != rb.has_value(), "exactly one roll succeeds");
    const auto& failed = ra.has_value() ? rb : ra;
    BOOST_CHECK(failed.error() == err(core::errc::not_found));
    BOOST_CHECK_EQUAL(info(*a, requests[0].digest).has_value(), ra.has_value());
    BOOST_CHECK_EQUAL(info(*a, requests[1].digest).has_value(), rb.has_value());
  }
  BOOST_CHECK_EQUAL(list(*b, 26, 0, 100).tokens.size(), 40u);
}

// Uses recorded by two processes, in either order and at the same time over the same tokens: every
// token ends with the latest minute, and neither write fails (rows are locked in one order).
BOOST_AUTO_TEST_CASE(uses_recorded_by_two_stores_keep_the_latest) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  constexpr std::int64_t minute = 1'800'000'000;
  const auto one = make_record(22, 1);
  (void)create_id(*a, one);
  BOOST_REQUIRE_EQUAL(record_uses(*a, {{one.digest, 22, minute + 60}}), error_code{});
  BOOST_REQUIRE_EQUAL(record_uses(*b, {{one.digest, 22, minute}}), error_code{});  // older, and later
  BOOST_CHECK_EQUAL(list(*b, 22, 0, 10).tokens.at(0).last_used_at, minute + 60);

  std::vector<core::token_record> records;
  for (int n = 0; n < 200; ++n) {
    records.push_back(make_record(23, n));
    (void)create_id(*a, records.back());
  }
  for (int round = 1; round <= 5; ++round) {
    std::vector<storage::key_use> early;
    std::vector<storage::key_use> late;
    for (const auto& r : records) {
      early.push_back({r.digest, 23, minute + 120 * round});
      late.push_back({r.digest, 23, minute + 120 * round + 60});
    }
    std::reverse(late.begin(), late.end());
    auto from_a = start<error_code>([&](auto handler) { a->async_record_uses(early, std::move(handler)); });
    auto from_b = start<error_code>([&](auto handler) { b->async_record_uses(late, std::move(handler)); });
    BOOST_REQUIRE_EQUAL(finish(std::move(from_a)), error_code{});
    BOOST_REQUIRE_EQUAL(finish(std::move(from_b)), error_code{});
    const auto page = list(*a, 23, 0, 1000);
    BOOST_REQUIRE_EQUAL(page.tokens.size(), records.size());
    for (const auto& t : page.tokens) BOOST_REQUIRE_EQUAL(t.last_used_at, minute + 120 * round + 60);
  }
}

// Two processes sweeping the same backlog at once: each expired token is removed, and answered, once.
BOOST_AUTO_TEST_CASE(two_stores_sweeping_at_once_remove_each_expired_token_once) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto b = storage::open_postgres_store(postgres_options_for(schema));
  std::vector<core::token_record> records;
  for (int n = 0; n < 300; ++n) {
    records.push_back(make_record(24 + n % 3, n));
    records.back().expires_at = 1'000 + n % 7;
    (void)create_id(*a, records.back());
  }
  const auto keeper = make_record(24, 1000);  // never expires
  (void)create_id(*b, keeper);

  // Each sweeps in batches until its answer is empty, as the service does while batches are full.
  // No Boost.Test macro on these threads (its log is not thread-safe): a sweep that times out or
  // fails just stops, and the counts checked below fail.
  const auto sweep = [](token_store& s) {
    std::vector<storage::removed_token> all;
    for (int calls = 0; calls < 1000; ++calls) {
      auto pending =
          start<sweep_result>([&](auto handler) { s.async_remove_expired(2'000, 16, std::move(handler)); });
      if (pending.wait_for(deadline) != std::future_status::ready) break;
      const auto batch = pending.get().value;
      if (!batch.has_value() || batch->empty()) break;
      all.insert(all.end(), batch->begin(), batch->end());
    }
    return all;
  };
  auto by_a = std::async(std::launch::async, [&] { return sweep(*a); });
  auto by_b = std::async(std::launch::async, [&] { return sweep(*b); });
  BOOST_REQUIRE(by_a.wait_for(deadline) == std::future_status::ready);
  BOOST_REQUIRE(by_b.wait_for(deadline) == std::future_status::ready);
  auto removed = by_a.get();
  const auto removed_by_b = by_b.get();
  BOOST_TEST_MESSAGE("A removed " << removed.size() << ", B removed " << removed_by_b.size());
  removed.insert(removed.end(), removed_by_b.begin(), removed_by_b.end());

  BOOST_REQUIRE_EQUAL(removed.size(), records.size());
  std::map<core::key_digest, core::user_id> answered;
  for (const auto& r : removed) BOOST_CHECK(answered.emplace(r.digest, r.owner).second);  // once each
  for (const auto& r : records) {
    const auto it = answered.find(r.digest);
    BOOST_REQUIRE(it != answered.end());
    BOOST_CHECK_EQUAL(it->second, r.owner);
  }
  BOOST_CHECK(finish(start<sweep_result>([&](auto handler) {
                a->async_remove_expired(2'000, 1000, std::move(handler));
              }))->empty());
  BOOST_CHECK(info(*a, keeper.digest).has_value());
  BOOST_CHECK_EQUAL(list(*b, 24, 0, 1000).tokens.size(), 1u);
}

// A process starting on an upgraded schema takes no lock that waits for readers: a long reader of
// the tokens table (a backup, say) must not hold its start-up, nor the other processes' lookups
// queued behind an exclusive lock.
BOOST_AUTO_TEST_CASE(starting_on_an_upgraded_schema_does_not_wait_for_readers) {
  const std::string schema = tokend::test::fresh_postgres_schema();
  const auto a = storage::open_postgres_store(postgres_options_for(schema));
  const auto r = make_record(25, 1);
  (void)create_id(*a, r);
  side_session reader(tokend::test::postgres_url());
  reader.exec("BEGIN; LOCK TABLE " + schema + ".tokend_tokens IN ACCESS SHARE MODE");
  auto options = postgres_options_for(schema);
  options.start_timeout = 3s;
  const auto b = storage::open_postgres_store(options);  // throws when it waits out start_timeout
  BOOST_CHECK(info(*b, r.digest).has_value());
  reader.exec("COMMIT");
}

BOOST_AUTO_TEST_SUITE_END()
