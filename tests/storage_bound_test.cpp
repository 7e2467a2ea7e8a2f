// The token_store contract for lists that seek (async_list_after), the bound on tokens per owner
// (async_quota, async_set_max_tokens, set_default_max_tokens, quota_exceeded) and the list cursor
// secret. Every contract case runs on the memory store, RocksDB and PostgreSQL; then what only a
// shared store (two PostgreSQL stores on one database) or the RocksDB layout (counts of a store
// written before them) has.
#define BOOST_TEST_MODULE storage_bound_test
#include <boost/test/unit_test.hpp>

#include "storage/faulty_store.hpp"
#include "storage/record_codec.hpp"
#include "support/store_calls.hpp"
#include "support/v1_fixtures.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace tokend::test::stores;
using boost::system::result;
using tokend::test::temp_dir;
namespace codec = storage::codec;

using create_result = result<std::uint64_t>;
using quota_result = result<storage::token_quota>;

// Whether a store opened again sees what the last one wrote.
template <class Backend>
constexpr bool persists = !std::is_same_v<Backend, memory_backend>;

[[nodiscard]] create_result try_create(token_store& s, const core::token_record& r) {
  return finish(start<create_result>([&](auto handler) { s.async_create(r, std::move(handler)); }));
}

[[nodiscard]] std::uint64_t create_id(token_store& s, const core::token_record& r) {
  const auto id = try_create(s, r);
  BOOST_REQUIRE_MESSAGE(id.has_value(), "create failed: " << id.error().message());
  return *id;
}

// Creates every record at once (the stores batch them) and answers their ids, in the records' order.
[[nodiscard]] std::vector<std::uint64_t> create_all(token_store& s,
                                                    const std::vector<core::token_record>& rs) {
  std::vector<std::uint64_t> ids;
  constexpr std::size_t at_once = 2000;  // well under every store's queue
  for (std::size_t first = 0; first < rs.size(); first += at_once) {
    std::vector<std::future<outcome<create_result>>> pending;
    for (std::size_t n = first; n < std::min(rs.size(), first + at_once); ++n) {
      pending.push_back(
          start<create_result>([&](auto handler) { s.async_create(rs[n], std::move(handler)); }));
    }
    for (auto& f : pending) {
      const auto id = finish(std::move(f), where::storage_thread, 60s);
      BOOST_REQUIRE_MESSAGE(id.has_value(), "create failed: " << id.error().message());
      ids.push_back(*id);
    }
  }
  return ids;
}

[[nodiscard]] storage::list_page list_after(token_store& s, core::user_id owner, std::uint64_t after_id,
                                            std::size_t limit) {
  auto r = finish(start<list_result>(
      [&](auto handler) { s.async_list_after(owner, after_id, limit, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(r.has_value(), "list_after failed: " << r.error().message());
  return std::move(*r);
}

[[nodiscard]] storage::token_quota quota(token_store& s, core::user_id owner) {
  const auto q = finish(start<quota_result>([&](auto handler) { s.async_quota(owner, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(q.has_value(), "quota failed: " << q.error().message());
  return *q;
}

[[nodiscard]] storage::token_quota set_max(token_store& s, core::user_id owner,
                                           std::optional<std::uint64_t> max_tokens) {
  const auto q = finish(start<quota_result>(
      [&](auto handler) { s.async_set_max_tokens(owner, max_tokens, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(q.has_value(), "set_max_tokens failed: " << q.error().message());
  return *q;
}

[[nodiscard]] result<core::key_digest> remove_id(token_store& s, core::user_id owner, std::uint64_t id) {
  const auto remove_by_id = [&](auto handler) {
    s.async_remove(storage::token_ref{owner, id}, std::move(handler));
  };
  return finish(start<result<core::key_digest>>(remove_by_id));
}

[[nodiscard]] std::vector<std::uint64_t> ids_of(const storage::list_page& page) {
  std::vector<std::uint64_t> ids;
  for (const auto& t : page.tokens) ids.push_back(t.id);
  return ids;
}

void check_quota(const storage::token_quota& got, std::uint64_t tokens, std::optional<std::uint64_t> max) {
  BOOST_TEST(got.tokens == tokens);
  BOOST_TEST((got.max_tokens == max));
}

// Waits for `total` handlers, each of which counted itself, with a deadline.
class countdown {
 public:
  explicit countdown(int total) : left_(total) {}
  void done() {
    const std::lock_guard lock(mutex_);
    --left_;
    cv_.notify_all();
  }
  [[nodiscard]] bool wait() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 60s, [this] { return left_ <= 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int left_;
};

// Creates from `threads` threads at once, `per_thread` each, thread t for owners[t % size] through
// stores[t % size]; answers how many succeeded for each owner. Every other answer must be
// quota_exceeded.
[[nodiscard]] std::map<core::user_id, int> create_concurrently(const std::vector<token_store*>& stores,
                                                               const std::vector<core::user_id>& owners,
                                                               int threads, int per_thread) {
  std::vector<core::token_record> records;
  for (int n = 0; n < threads * per_thread; ++n)
    records.push_back(make_record(owners[static_cast<std::size_t>(n / per_thread) % owners.size()], n));
  std::mutex mutex;
  std::map<core::user_id, int> created;
  std::atomic<int> other{0};
  countdown all(threads * per_thread);
  {
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
      writers.emplace_back([&, t] {
        token_store& store = *stores[static_cast<std::size_t>(t) % stores.size()];
        for (int i = 0; i < per_thread; ++i) {
          const core::token_record& r = records[static_cast<std::size_t>(t * per_thread + i)];
          store.async_create(r, [&, owner = r.owner](const create_result& id) {
            if (id) {
              const std::lock_guard lock(mutex);
              ++created[owner];
            } else if (id.error() != err(core::errc::quota_exceeded)) {
              other.fetch_add(1);
            }
            all.done();
          });
        }
      });
    }
    for (auto& w : writers) w.join();
  }
  BOOST_REQUIRE(all.wait());
  BOOST_TEST(other.load() == 0);
  return created;
}

// Writes to the database directly, as a binary before the counts would have, with no store open.
void write_raw(const temp_dir& dir,
               const std::vector<std::pair<std::string, std::optional<std::string>>>& kv) {
  rocksdb::Options options;
  rocksdb::DB* raw = nullptr;
  BOOST_REQUIRE(rocksdb::DB::Open(options, rocksdb_options_in(dir).data_dir, &raw).ok());
  const std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions write;
  write.sync = true;
  for (const auto& [key, value] : kv) {
    BOOST_REQUIRE(value ? db->Put(write, key, *value).ok() : db->Delete(write, key).ok());
  }
  BOOST_REQUIRE(db->Close().ok());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(contract)

BOOST_AUTO_TEST_CASE_TEMPLATE(list_after_from_zero_the_middle_and_past_the_end, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  std::vector<std::uint64_t> mine;
  for (int i = 0; i < 10; ++i) {
    mine.push_back(create_id(*store, make_record(7, i)));
    (void)create_id(*store, make_record(8, i));  // ids of another owner in between
  }
  BOOST_REQUIRE(std::is_sorted(mine.begin(), mine.end()));

  const auto all = list_after(*store, 7, 0, 100);
  BOOST_TEST(ids_of(all) == mine);
  BOOST_TEST(!all.has_more);
  const auto first = list_after(*store, 7, 0, 4);
  BOOST_TEST(ids_of(first) == std::vector<std::uint64_t>(mine.begin(), mine.begin() + 4));
  BOOST_TEST(first.has_more);
  const auto middle = list_after(*store, 7, mine[3], 4);
  BOOST_TEST(ids_of(middle) == std::vector<std::uint64_t>(mine.begin() + 4, mine.begin() + 8));
  BOOST_TEST(middle.has_more);
  const auto last = list_after(*store, 7, mine[7], 4);
  BOOST_TEST(ids_of(last) == std::vector<std::uint64_t>(mine.begin() + 8, mine.end()));
  BOOST_TEST(!last.has_more);
  // An id between two of the owner's (another owner's, or one never given) is a position too.
  BOOST_TEST(ids_of(list_after(*store, 7, mine[5] + 1, 1)).front() == mine[6]);
  BOOST_TEST(ids_of(list_after(*store, 7, mine[5] - 1, 1)).front() == mine[5]);
  // A page holding exactly the rest says nothing follows.
  BOOST_TEST(!list_after(*store, 7, mine[5], 4).has_more);
  for (const std::uint64_t past :
       {mine.back(), mine.back() + 1000, std::uint64_t{1} << 62, std::numeric_limits<std::uint64_t>::max()}) {
    const auto none = list_after(*store, 7, past, 10);
    BOOST_TEST(none.tokens.empty());
    BOOST_TEST(!none.has_more);
  }
  // The page carries what a list shows.
  const auto page = list_after(*store, 7, 0, 1);
  BOOST_REQUIRE_EQUAL(page.tokens.size(), 1u);
  BOOST_TEST(page.tokens[0].owner == 7u);
  BOOST_TEST(page.tokens[0].description == list(*store, 7, 0, 1).tokens[0].description);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(list_after_never_returns_another_owners_tokens, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  constexpr core::user_id max_user = std::numeric_limits<core::user_id>::max();
  std::map<core::user_id, std::vector<std::uint64_t>> ids;
  for (int i = 0; i < 5; ++i) {
    for (const core::user_id owner : {core::user_id{0}, core::user_id{6}, core::user_id{7}, max_user})
      ids[owner].push_back(create_id(*store, make_record(owner, i)));
  }
  for (const auto& [owner, mine] : ids) {
    // From anywhere, also from another owner's ids, only the owner's own come back.
    for (const std::uint64_t after : {std::uint64_t{0}, ids[6][2], ids[7][2], ids[max_user][4]}) {
      for (const std::uint64_t id : ids_of(list_after(*store, owner, after, 100))) {
        BOOST_TEST((std::find(mine.begin(), mine.end(), id) != mine.end()));
        BOOST_TEST(id > after);
      }
    }
    BOOST_TEST(ids_of(list_after(*store, owner, 0, 100)) == mine);
  }
  BOOST_TEST(list_after(*store, 5, 0, 100).tokens.empty());
  BOOST_TEST(list_after(*store, 8, ids[7][0], 100).tokens.empty());
}

// A walk by list_after while tokens are deleted (ahead of the walk and behind it) and created: every
// token that existed throughout comes exactly once, in id order, and a token deleted before the
// walk reached it never does.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_walk_of_25000_tokens_sees_each_lasting_one_once_in_order, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  constexpr int count = 25'000;
  constexpr std::size_t page_size = 1000;
  std::vector<core::token_record> records;
  for (int n = 0; n < count; ++n) records.push_back(make_record(n % 50 == 0 ? 10 : 9, n));
  const std::vector<std::uint64_t> all_ids = create_all(*store, records);
  std::vector<std::uint64_t> originals;  // owner 9's
  for (std::size_t n = 0; n < records.size(); ++n) {
    if (records[n].owner == 9) originals.push_back(all_ids[n]);
  }
  std::sort(originals.begin(), originals.end());

  std::mt19937_64 random{18};
  std::set<std::uint64_t> deleted_ahead;   // before the walk reached them
  std::set<std::uint64_t> deleted_behind;  // after
  std::set<std::uint64_t> created;
  std::vector<std::uint64_t> walked;
  std::uint64_t cursor = 0;
  int pages = 0;
  for (;;) {
    const auto page = list_after(*store, 9, cursor, page_size);
    ++pages;
    BOOST_REQUIRE_LT(pages, 100);
    for (const std::uint64_t id : ids_of(page)) walked.push_back(id);
    if (!page.has_more) break;
    BOOST_REQUIRE_EQUAL(page.tokens.size(), page_size);
    cursor = page.tokens.back().id;

    // Between pages: 10 deletes ahead, 10 behind, 10 creates.
    const auto ahead_from = std::upper_bound(originals.begin(), originals.end(), cursor);
    for (int i = 0; i < 10 && ahead_from != originals.end(); ++i) {
      const auto span = static_cast<std::uint64_t>(originals.end() - ahead_from);
      const std::uint64_t id = *(ahead_from + static_cast<std::ptrdiff_t>(random() % span));
      if (deleted_ahead.insert(id).second) BOOST_REQUIRE(remove_id(*store, 9, id).has_value());
    }
    const auto behind_to = std::upper_bound(originals.begin(), originals.end(), cursor);
    for (int i = 0; i < 10; ++i) {
      const auto span = static_cast<std::uint64_t>(behind_to - originals.begin());
      const std::uint64_t id = originals[random() % span];
      if (!deleted_ahead.contains(id) && deleted_behind.insert(id).second)
        BOOST_REQUIRE(remove_id(*store, 9, id).has_value());
    }
    for (int i = 0; i < 10; ++i) created.insert(create_id(*store, make_record(9, count + pages * 10 + i)));
  }

  BOOST_TEST(std::is_sorted(walked.begin(), walked.end()));
  BOOST_TEST((std::adjacent_find(walked.begin(), walked.end()) == walked.end()));  // none twice
  const std::set<std::uint64_t> seen(walked.begin(), walked.end());
  std::size_t lasting = 0;
  for (const std::uint64_t id : originals) {
    if (deleted_ahead.contains(id)) {
      BOOST_TEST(!seen.contains(id));
    } else {
      ++lasting;
      BOOST_REQUIRE_MESSAGE(seen.contains(id), "token " << id << " existed throughout but was skipped");
    }
  }
  // Tokens created during the walk come after every original, at its end.
  for (const std::uint64_t id : created) BOOST_TEST(id > originals.back());
  for (const std::uint64_t id : walked) {
    BOOST_TEST((std::binary_search(originals.begin(), originals.end(), id) || created.contains(id)));
  }
  BOOST_TEST(walked.size() >= lasting);
  BOOST_TEST_MESSAGE(walked.size() << " tokens in " << pages << " pages");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(the_default_bound_refuses_exactly_at_it_and_deletes_free_room, Backend,
                              backends) {
  Backend backend;
  const auto store = backend.open();
  store->set_default_max_tokens(5);
  std::vector<core::token_record> mine;
  for (int i = 0; i < 5; ++i) {
    mine.push_back(make_record(3, i));
    (void)create_id(*store, mine.back());
  }
  check_quota(quota(*store, 3), 5, std::nullopt);
  const auto refused = make_record(3, 5);
  const auto answer = try_create(*store, refused);
  BOOST_REQUIRE(answer.has_error());
  BOOST_TEST(answer.error() == err(core::errc::quota_exceeded));
  // Nothing of it is stored.
  BOOST_TEST(!lookup(*store, refused.digest).has_value());
  BOOST_TEST(list(*store, 3, 0, 100).tokens.size() == 5u);
  check_quota(quota(*store, 3), 5, std::nullopt);
  // Another owner has its own room.
  (void)create_id(*store, make_record(4, 0));
  check_quota(quota(*store, 4), 1, std::nullopt);
  check_quota(quota(*store, 99), 0, std::nullopt);

  BOOST_REQUIRE_EQUAL(remove(*store, 3, mine[2].digest), error_code{});
  check_quota(quota(*store, 3), 4, std::nullopt);
  (void)create_id(*store, refused);
  BOOST_TEST((lookup(*store, refused.digest) == std::optional<core::user_id>{3}));
  BOOST_TEST(try_create(*store, make_record(3, 6)).error() == err(core::errc::quota_exceeded));
  check_quota(quota(*store, 3), 5, std::nullopt);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_sweep_of_expired_tokens_frees_room, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  store->set_default_max_tokens(3);
  for (int i = 0; i < 3; ++i) {
    auto r = make_record(3, i);
    r.expires_at = 1'800'000'000 + i;
    (void)create_id(*store, r);
  }
  BOOST_TEST(try_create(*store, make_record(3, 3)).error() == err(core::errc::quota_exceeded));
  const auto swept = finish(start<result<std::vector<storage::removed_token>>>(
      [&](auto handler) { store->async_remove_expired(1'800'000'002, 10, std::move(handler)); }));
  BOOST_REQUIRE(swept.has_value());
  BOOST_TEST(swept->size() == 2u);
  check_quota(quota(*store, 3), 1, std::nullopt);
  (void)create_id(*store, make_record(3, 4));
  (void)create_id(*store, make_record(3, 5));
  BOOST_TEST(try_create(*store, make_record(3, 6)).error() == err(core::errc::quota_exceeded));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_owners_own_bound_overrides_the_default, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  store->set_default_max_tokens(2);
  (void)create_id(*store, make_record(3, 0));
  (void)create_id(*store, make_record(3, 1));
  BOOST_TEST(try_create(*store, make_record(3, 2)).error() == err(core::errc::quota_exceeded));

  check_quota(set_max(*store, 3, 4), 2, 4);
  check_quota(quota(*store, 3), 2, 4);
  (void)create_id(*store, make_record(3, 3));
  (void)create_id(*store, make_record(3, 4));
  BOOST_TEST(try_create(*store, make_record(3, 5)).error() == err(core::errc::quota_exceeded));
  // Another owner still has the default.
  (void)create_id(*store, make_record(4, 0));
  (void)create_id(*store, make_record(4, 1));
  BOOST_TEST(try_create(*store, make_record(4, 2)).error() == err(core::errc::quota_exceeded));

  // 0: none for this owner, whatever the default.
  check_quota(set_max(*store, 3, 0), 4, 0);
  for (int i = 6; i < 10; ++i) (void)create_id(*store, make_record(3, i));
  check_quota(quota(*store, 3), 8, 0);
  // Lower than what it holds: nothing goes, but creates are refused until deletes bring it under.
  check_quota(set_max(*store, 3, 7), 8, 7);
  BOOST_TEST(list(*store, 3, 0, 100).tokens.size() == 8u);
  BOOST_TEST(try_create(*store, make_record(3, 10)).error() == err(core::errc::quota_exceeded));
  const auto held = list(*store, 3, 0, 100).tokens;
  BOOST_REQUIRE(remove_id(*store, 3, held[0].id).has_value());
  BOOST_TEST(try_create(*store, make_record(3, 11)).error() == err(core::errc::quota_exceeded));
  BOOST_REQUIRE(remove_id(*store, 3, held[1].id).has_value());
  (void)create_id(*store, make_record(3, 12));
  check_quota(quota(*store, 3), 7, 7);
  // Back to the default.
  check_quota(set_max(*store, 3, std::nullopt), 7, std::nullopt);
  BOOST_TEST(try_create(*store, make_record(3, 13)).error() == err(core::errc::quota_exceeded));
  // An owner with no token yet can be given a bound.
  check_quota(set_max(*store, 5, 1), 0, 1);
  (void)create_id(*store, make_record(5, 0));
  BOOST_TEST(try_create(*store, make_record(5, 1)).error() == err(core::errc::quota_exceeded));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(no_default_bound_means_none, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  std::vector<core::token_record> records;
  for (int i = 0; i < 300; ++i) records.push_back(make_record(3, i));
  (void)create_all(*store, records);  // the initial default: none
  store->set_default_max_tokens(0);
  (void)create_id(*store, make_record(3, 300));
  check_quota(quota(*store, 3), 301, std::nullopt);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_roll_is_never_refused_by_the_bound, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  store->set_default_max_tokens(2);
  const auto first = make_record(3, 0);
  (void)create_id(*store, first);
  (void)create_id(*store, make_record(3, 1));
  const std::string key = core::generate_key();
  storage::roll_request request;
  request.old = {3, first.digest};
  request.digest = core::digest_key(key);
  request.display_prefix = key.substr(0, core::display_prefix_length);
  request.now = 1'790'000'000;
  request.old_expires_at = 1'790'000'060;
  const auto rolled = finish(start<result<storage::rolled_token>>(
      [&](auto handler) { store->async_roll(request, std::move(handler)); }));
  BOOST_REQUIRE_MESSAGE(rolled.has_value(), "roll failed: " << rolled.error().message());
  BOOST_TEST((lookup(*store, request.digest) == std::optional<core::user_id>{3}));
  // The count is what the list holds (the old key stays until it expires and is swept).
  const auto held = list(*store, 3, 0, 100).tokens.size();
  check_quota(quota(*store, 3), held, std::nullopt);
  BOOST_TEST(try_create(*store, make_record(3, 2)).error() == err(core::errc::quota_exceeded));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_creates_never_overshoot_the_bound, Backend, backends) {
  Backend backend;
  const auto store = backend.open();
  store->set_default_max_tokens(100);
  (void)create_id(*store, make_record(3, -1));
  BOOST_TEST(create_concurrently({store.get()}, {3}, 8, 50)[3] == 99);
  BOOST_TEST(list(*store, 3, 0, 1000).tokens.size() == 100u);
  check_quota(quota(*store, 3), 100, std::nullopt);
  // With an own bound too, and another owner's creates among them.
  check_quota(set_max(*store, 4, 37), 0, 37);
  auto created = create_concurrently({store.get()}, {4, 5}, 8, 25);
  BOOST_TEST(created[4] == 37);
  BOOST_TEST(created[5] == 100);
  BOOST_TEST(list(*store, 4, 0, 1000).tokens.size() == 37u);
  check_quota(quota(*store, 5), 100, std::nullopt);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(quotas_and_own_bounds_survive_a_reopen, Backend, backends) {
  if constexpr (persists<Backend>) {
    Backend backend;
    {
      const auto store = backend.open();
      store->set_default_max_tokens(3);
      for (int i = 0; i < 3; ++i) (void)create_id(*store, make_record(3, i));
      (void)create_id(*store, make_record(4, 0));
      check_quota(set_max(*store, 4, 1), 1, 1);
      check_quota(set_max(*store, 5, 0), 0, 0);
      check_quota(set_max(*store, 6, 9), 0, 9);
      check_quota(set_max(*store, 6, std::nullopt), 0, std::nullopt);
    }
    const auto store = backend.open();
    store->set_default_max_tokens(3);
    check_quota(quota(*store, 3), 3, std::nullopt);
    check_quota(quota(*store, 4), 1, 1);
    check_quota(quota(*store, 5), 0, 0);
    check_quota(quota(*store, 6), 0, std::nullopt);
    BOOST_TEST(try_create(*store, make_record(3, 3)).error() == err(core::errc::quota_exceeded));
    BOOST_TEST(try_create(*store, make_record(4, 1)).error() == err(core::errc::quota_exceeded));
    for (int i = 0; i < 5; ++i) (void)create_id(*store, make_record(5, i));
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(the_cursor_secret_is_kept_across_a_reopen, Backend, backends) {
  Backend backend;
  std::array<std::uint8_t, 32> first{};
  {
    const auto store = backend.open();
    first = store->cursor_secret();
    BOOST_TEST((first != std::array<std::uint8_t, 32>{}));
    BOOST_TEST((store->cursor_secret() == first));
  }
  const auto store = backend.open();
  if constexpr (persists<Backend>) {
    BOOST_TEST((store->cursor_secret() == first));
  } else {
    BOOST_TEST((store->cursor_secret() != first));  // a store that dies with its process: random
  }
  Backend other;
  BOOST_TEST((other.open()->cursor_secret() != first));  // every store its own
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postgres)

BOOST_AUTO_TEST_CASE(two_stores_on_one_database_never_overshoot_the_bound) {
  postgres_backend backend;
  const auto one = backend.open();
  const auto two = backend.open();
  one->set_default_max_tokens(60);
  two->set_default_max_tokens(60);
  BOOST_TEST(create_concurrently({one.get(), two.get()}, {3}, 8, 25)[3] == 60);
  BOOST_TEST(list(*one, 3, 0, 1000).tokens.size() == 60u);
  check_quota(quota(*two, 3), 60, std::nullopt);
  // An own bound set through one holds in the other.
  check_quota(set_max(*one, 4, 10), 0, 10);
  BOOST_TEST(create_concurrently({one.get(), two.get()}, {4}, 4, 10)[4] == 10);
  check_quota(quota(*one, 4), 10, 10);
}

BOOST_AUTO_TEST_CASE(two_stores_on_one_database_share_the_cursor_secret) {
  postgres_backend backend;
  const auto one = backend.open();
  const auto two = backend.open();
  BOOST_TEST((one->cursor_secret() != std::array<std::uint8_t, 32>{}));
  BOOST_TEST((one->cursor_secret() == two->cursor_secret()));
}

BOOST_AUTO_TEST_CASE(counts_of_the_previous_release_are_made_at_start_up) {
  std::string error;
  const std::string schema = tokend::test::load_postgres_v1(error);
  BOOST_REQUIRE_MESSAGE(!schema.empty(), "loading the fixture failed: " << error);
  const auto store = storage::open_postgres_store(postgres_options_for(schema));
  store->set_default_max_tokens(5);
  check_quota(quota(*store, 7), 4, std::nullopt);
  (void)create_id(*store, make_record(7, 0));
  BOOST_TEST(try_create(*store, make_record(7, 1)).error() == err(core::errc::quota_exceeded));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rocksdb)

BOOST_AUTO_TEST_CASE(counts_are_made_for_a_store_of_the_previous_format) {
  temp_dir dir;
  fs::copy(tokend::test::v1_fixtures / "rocksdb-v1", dir.path() / "db");
  {
    const auto store = storage::open_rocksdb_store(rocksdb_options_in(dir));
    store->set_default_max_tokens(5);
    check_quota(quota(*store, 7), 4, std::nullopt);
    (void)create_id(*store, make_record(7, 0));
    BOOST_TEST(try_create(*store, make_record(7, 1)).error() == err(core::errc::quota_exceeded));
  }
  const auto store = storage::open_rocksdb_store(rocksdb_options_in(dir));
  check_quota(quota(*store, 7), 5, std::nullopt);
}

// A binary before the counts, run on a store that had them, created or deleted tokens: the counts
// are made again at the next open, the own bounds kept; a store only this release wrote is not
// counted again.
BOOST_AUTO_TEST_CASE(stale_counts_are_made_again_keeping_own_bounds) {
  temp_dir dir;
  std::mutex mutex;
  int recounts = 0;
  auto options = rocksdb_options_in(dir);
  options.log = [&](bool, std::string_view message) {
    const std::lock_guard lock(mutex);
    if (message.find("counted the tokens") != std::string_view::npos) ++recounts;
  };
  const auto recounted = [&] {
    const std::lock_guard lock(mutex);
    return std::exchange(recounts, 0);
  };
  core::token_record gone;
  std::uint64_t gone_id = 0;
  {
    const auto store = storage::open_rocksdb_store(options);
    for (int i = 0; i < 3; ++i) (void)create_id(*store, make_record(7, i));
    gone = make_record(7, 3);
    gone_id = create_id(*store, gone);
    (void)create_id(*store, make_record(8, 0));
    check_quota(set_max(*store, 7, 10), 4, 10);
    check_quota(set_max(*store, 9, 2), 0, 2);
  }
  BOOST_TEST(recounted() == 0);  // a new store: nothing to count
  {
    const auto store = storage::open_rocksdb_store(options);
    check_quota(quota(*store, 7), 4, 10);
    BOOST_TEST(remove_id(*store, 7, create_id(*store, make_record(7, 10))).has_value());
  }
  BOOST_TEST(recounted() == 0);  // written by this release only

  // The old binary's create: a count left wrong, another for an owner with no tokens, the sequence
  // moved; no marker.
  write_raw(dir, {{codec::count_key(8), codec::encode_count({50, std::nullopt})},
                  {codec::count_key(11), codec::encode_count({4, std::nullopt})},
                  {std::string(codec::sequence_key), codec::encode_sequence(1000)}});
  {
    const auto store = storage::open_rocksdb_store(options);
    check_quota(quota(*store, 7), 4, 10);
    check_quota(quota(*store, 8), 1, std::nullopt);
    check_quota(quota(*store, 9), 0, 2);
    check_quota(quota(*store, 11), 0, std::nullopt);  // no token and no bound: nothing kept
    BOOST_TEST(create_id(*store, make_record(7, 4)) > 1000u);
  }
  BOOST_TEST(recounted() == 1);

  // The old binary's delete, which creates nothing.
  write_raw(dir, {{codec::record_key(gone.digest), std::nullopt},
                  {codec::index_key(7, codec::sequence_of(gone_id)), std::nullopt}});
  {
    const auto store = storage::open_rocksdb_store(options);
    check_quota(quota(*store, 7), 4, 10);
  }
  BOOST_TEST(recounted() == 1);

  // No marker at all (a store of a binary before the counts): made too.
  write_raw(dir,
            {{std::string(codec::counts_marker_key), std::nullopt}, {codec::count_key(7), std::nullopt}});
  const auto store = storage::open_rocksdb_store(options);
  check_quota(quota(*store, 7), 4, std::nullopt);  // its own bound went with the deleted count
  check_quota(quota(*store, 9), 0, 2);
  BOOST_TEST(recounted() == 1);
}

// Creates of one batch count each other: a batch holding more creates than the room left stores
// only what fits.
BOOST_AUTO_TEST_CASE(one_batch_counts_its_own_creates) {
  temp_dir dir;
  auto options = rocksdb_options_in(dir);
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> calls{0};
  options.test_before_write = [&] {
    if (calls.fetch_add(1) == 0) {
      entered.set_value();
      (void)released.wait_for(deadline);
    }
    return true;
  };
  const auto store = storage::open_rocksdb_store(options);
  store->set_default_max_tokens(4);
  // The first write holds the writer, so the next ones make one batch.
  auto first = start<create_result>([&](auto h) { store->async_create(make_record(3, 0), std::move(h)); });
  BOOST_REQUIRE(entered.get_future().wait_for(deadline) == std::future_status::ready);
  std::vector<std::future<outcome<create_result>>> rest;
  for (int i = 1; i < 8; ++i) {
    rest.push_back(
        start<create_result>([&](auto h) { store->async_create(make_record(3, i), std::move(h)); }));
  }
  auto bound = start<quota_result>([&](auto h) { store->async_set_max_tokens(4, 1, std::move(h)); });
  auto after = start<create_result>([&](auto h) { store->async_create(make_record(4, 0), std::move(h)); });
  auto refused = start<create_result>([&](auto h) { store->async_create(make_record(4, 1), std::move(h)); });
  release.set_value();
  BOOST_TEST(finish(std::move(first)).has_value());
  int created = 0;
  for (auto& f : rest) {
    const auto id = finish(std::move(f));
    if (id) {
      ++created;
    } else {
      BOOST_TEST(id.error() == err(core::errc::quota_exceeded));
    }
  }
  BOOST_TEST(created == 3);
  BOOST_TEST(finish(std::move(bound)).has_value());
  BOOST_TEST(finish(std::move(after)).has_value());
  BOOST_TEST(finish(std::move(refused)).error() == err(core::errc::quota_exceeded));
  BOOST_TEST(calls.load() == 2);  // the held write, then one batch
  check_quota(quota(*store, 3), 4, std::nullopt);
  check_quota(quota(*store, 4), 1, 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(faulty)

BOOST_AUTO_TEST_CASE(every_new_operation_goes_to_the_inner_store) {
  temp_dir dir;
  const auto inner_secret = [&] {
    const auto inner = storage::open_rocksdb_store(rocksdb_options_in(dir));
    return inner->cursor_secret();
  }();
  const auto store = storage::make_faulty_store(storage::open_rocksdb_store(rocksdb_options_in(dir)),
                                                (dir.path() / "control").string());
  BOOST_TEST((store->cursor_secret() == inner_secret));
  store->set_default_max_tokens(2);
  const auto first = create_id(*store, make_record(3, 0));
  (void)create_id(*store, make_record(3, 1));
  BOOST_TEST(try_create(*store, make_record(3, 2)).error() == err(core::errc::quota_exceeded));
  check_quota(quota(*store, 3), 2, std::nullopt);
  check_quota(set_max(*store, 3, 3), 2, 3);
  (void)create_id(*store, make_record(3, 3));
  const auto page = list_after(*store, 3, first, 10);
  BOOST_TEST(page.tokens.size() == 2u);
  BOOST_TEST(!page.has_more);
  // A bound is a write: the control file fails it as it fails the others.
  {
    std::ofstream control(dir.path() / "control");
    control << "fail";
  }
  const auto failed = finish(
      start<quota_result>([&](auto handler) { store->async_set_max_tokens(3, 5, std::move(handler)); }));
  BOOST_REQUIRE(failed.has_error());
  BOOST_TEST(failed.error() == err(core::errc::unavailable));
  check_quota(quota(*store, 3), 3, 3);  // reads still pass
}

BOOST_AUTO_TEST_SUITE_END()
