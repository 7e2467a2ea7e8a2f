// token_service on the memory store with a clock the test controls: expiry on the cache's hit and
// miss paths, rolls with and without overlap, last-use marking and its flushes, the expired-token
// sweep, rate limits (enforcement, changes, sharing with other processes, the most limited keys);
// the timers that drive them (background_jobs) and the app's last flush at shutdown; the bootstrap
// key's type.
#define BOOST_TEST_MODULE token_service_test
#include <boost/test/unit_test.hpp>

#include "core/error.hpp"
#include "core/key.hpp"
#include "core/token.hpp"
#include "server/background_jobs.hpp"
#include "server/bootstrap.hpp"
#include "server/config.hpp"
#include "server/token_service.hpp"
#include "storage/memory_store.hpp"
#include "storage/token_store.hpp"
#include "support/http_client.hpp"
#include "support/in_process_app.hpp"
#include "support/temp_dir.hpp"
#include "support/timing.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace core = tokend::core;
namespace net = boost::asio;
namespace server = tokend::server;
namespace storage = tokend::storage;
namespace test = tokend::test;
using boost::system::result;
using namespace std::chrono_literals;

namespace {

// A whole minute, so that t0 + 0..59 is one minute and t0 + 60 the next.
constexpr std::int64_t t0 = 1'700'000'040;
static_assert(t0 % 60 == 0);

// Forwards to a memory store, counting the use and sweep writes it passes on, and standing for a
// shared store's exchange of rate-limit counts: it records what is shared, answers share_error,
// and hands the service the counts a test says other processes sent.
class counting_store final : public storage::token_store {
 public:
  counting_store() : inner_(storage::make_memory_store()) {}

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    inner_->async_lookup(digest, std::move(handler));
  }
  void async_create(core::token_record record, create_handler handler) override {
    inner_->async_create(std::move(record), std::move(handler));
  }
  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    inner_->async_list(owner, offset, limit, std::move(handler));
  }
  void async_remove(storage::token_ref ref, remove_handler handler) override {
    inner_->async_remove(std::move(ref), std::move(handler));
  }
  void async_roll(storage::roll_request request, roll_handler handler) override {
    inner_->async_roll(std::move(request), std::move(handler));
  }
  void async_set_rate_limit(storage::token_ref ref, std::optional<core::rate_limit> limit,
                            remove_handler handler) override {
    inner_->async_set_rate_limit(ref, limit, std::move(handler));
  }
  void async_record_uses(std::vector<storage::key_use> uses, write_handler handler) override {
    {
      const std::lock_guard lock(mutex_);
      ++use_writes_;
      for (const auto& use : uses) uses_.push_back(use);
    }
    inner_->async_record_uses(std::move(uses), std::move(handler));
  }
  void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) override {
    {
      const std::lock_guard lock(mutex_);
      sweep_cutoffs_.push_back(cutoff);
    }
    inner_->async_remove_expired(cutoff, limit, std::move(handler));
  }
  void async_share_admits(std::vector<storage::admitted_requests> counts, write_handler handler) override {
    boost::system::error_code ec;
    {
      const std::lock_guard lock(mutex_);
      shares_.push_back(std::move(counts));
      ec = share_error_;
    }
    handler(ec);
  }
  void on_peer_admits(peer_admits_handler callback) override {
    const std::lock_guard lock(mutex_);
    peer_admits_ = std::move(callback);
  }
  [[nodiscard]] bool shared() const noexcept override { return shared_; }
  [[nodiscard]] bool ready() const noexcept override { return inner_->ready(); }
  [[nodiscard]] result<bool> empty() override { return inner_->empty(); }
  [[nodiscard]] storage::store_stats stats() const override { return inner_->stats(); }
  void close() override { inner_->close(); }

  [[nodiscard]] std::size_t use_writes() const {
    const std::lock_guard lock(mutex_);
    return use_writes_;
  }
  [[nodiscard]] std::vector<storage::key_use> uses() const {
    const std::lock_guard lock(mutex_);
    return uses_;
  }
  [[nodiscard]] std::vector<std::int64_t> sweep_cutoffs() const {
    const std::lock_guard lock(mutex_);
    return sweep_cutoffs_;
  }
  [[nodiscard]] std::vector<std::vector<storage::admitted_requests>> shares() const {
    const std::lock_guard lock(mutex_);
    return shares_;
  }
  void fail_shares(boost::system::error_code ec) {
    const std::lock_guard lock(mutex_);
    share_error_ = ec;
  }
  // Another process's counts arriving; false when no callback is registered.
  bool peer_sends(std::uint64_t sender, const std::vector<storage::admitted_requests>& counts) {
    peer_admits_handler callback;
    {
      const std::lock_guard lock(mutex_);
      callback = peer_admits_;
    }
    if (!callback) return false;
    callback(sender, counts);
    return true;
  }
  // Set before a service is made on it (it decides the list cache).
  void set_shared(bool shared) { shared_ = shared; }

 private:
  std::unique_ptr<storage::token_store> inner_;
  mutable std::mutex mutex_;
  std::vector<std::vector<storage::admitted_requests>> shares_;
  boost::system::error_code share_error_;
  peer_admits_handler peer_admits_;
  bool shared_ = false;
  std::size_t use_writes_ = 0;
  std::vector<storage::key_use> uses_;
  std::vector<std::int64_t> sweep_cutoffs_;
};

// Runs `op` on `io` from this thread until it completes (or fails the test after 10 s).
template <class T>
T run(net::io_context& io, net::awaitable<T> op) {
  io.restart();
  auto guard = net::make_work_guard(io);
  auto done = net::co_spawn(io, std::move(op), net::use_future);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (done.wait_for(0s) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
    io.run_one_for(5ms);
  BOOST_REQUIRE_MESSAGE(done.wait_for(0s) == std::future_status::ready, "the operation did not complete");
  return done.get();
}

// Waits for a flush's write to complete.
boost::system::error_code flush(server::token_service& service) {
  auto done = std::make_shared<std::promise<boost::system::error_code>>();
  auto written = done->get_future();
  service.flush_uses([done](boost::system::error_code ec) { done->set_value(ec); });
  BOOST_REQUIRE_MESSAGE(written.wait_for(10s) == std::future_status::ready, "the flush did not complete");
  return written.get();
}

// The test's clock: Unix seconds it sets.
struct manual_clock {
  std::shared_ptr<std::atomic<std::int64_t>> now = std::make_shared<std::atomic<std::int64_t>>(t0);
  void set(std::int64_t t) const { now->store(t); }
  [[nodiscard]] server::clock_function function() const {
    return [now = now] { return now->load(); };
  }
};

// A service over `store` on `clock`, its list cache on, recording uses unless told otherwise.
std::unique_ptr<server::token_service> make_service(storage::token_store& store, const manual_clock& clock,
                                                    bool record_uses = true) {
  auto service = std::make_unique<server::token_service>(store, 1000, 1000, clock.function());
  service->set_recording_uses(record_uses);
  return service;
}

net::awaitable<result<server::caller>> authenticate(server::token_service& service, std::string key) {
  co_return co_await service.authenticate(key);
}

// Authenticates `key` n times; how many were accepted.
net::awaitable<int> authenticate_times(server::token_service& service, std::string key, int n) {
  int accepted = 0;
  for (int i = 0; i < n; ++i) {
    if (co_await service.authenticate(key)) ++accepted;
  }
  co_return accepted;
}

net::awaitable<result<server::token_service::created>> create(server::token_service& service,
                                                              core::user_id owner, std::int64_t expires_at) {
  co_return co_await service.create(owner, "service test", std::string(core::admin_type), expires_at);
}

net::awaitable<result<storage::list_page>> list(server::token_service& service, core::user_id owner) {
  co_return co_await service.list(owner, 0, 100);
}

net::awaitable<result<server::token_service::rolled>> roll(server::token_service& service,
                                                           core::user_id owner, std::string key,
                                                           std::int64_t overlap) {
  co_return co_await service.roll(storage::token_ref{owner, core::digest_key(key)}, 0, overlap);
}

net::awaitable<result<std::size_t>> remove_expired(server::token_service& service, std::int64_t retention) {
  co_return co_await service.remove_expired(retention);
}

// Whether the service accepts `key` now.
bool accepted(net::io_context& io, server::token_service& service, const std::string& key) {
  const auto who = run(io, authenticate(service, key));
  if (!who) BOOST_TEST((who.error() == core::errc::unauthorized), who.error().message());
  return who.has_value();
}

// A key stored behind the service's back (so that its first authentication misses the cache).
std::string store_key(storage::token_store& store, core::user_id owner, std::int64_t expires_at,
                      std::string_view type = core::admin_type) {
  std::string key = core::generate_key();
  test::store_record(store, core::make_token_record(key, owner, "stored", std::string(type), t0, expires_at));
  return key;
}

// owner's tokens' last_used_at by display prefix.
std::map<std::string, std::int64_t> last_uses(net::io_context& io, server::token_service& service,
                                              core::user_id owner) {
  const auto page = run(io, list(service, owner));
  BOOST_REQUIRE(page.has_value());
  std::map<std::string, std::int64_t> out;
  for (const auto& r : page->tokens) out[r.display_prefix] = r.last_used_at;
  return out;
}

std::string prefix(const std::string& key) { return key.substr(0, core::display_prefix_length); }

}  // namespace

BOOST_AUTO_TEST_SUITE(expiry)

BOOST_AUTO_TEST_CASE(a_key_is_accepted_until_its_expiry_second_on_both_cache_paths) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const std::int64_t expiry = t0 + 100;

  const auto made = run(io, create(*service, 1, expiry));
  BOOST_REQUIRE(made.has_value());
  BOOST_TEST(made->record.expires_at == expiry);
  const std::string cached = made->key;                      // created here: in the cache
  const std::string uncached = store_key(store, 1, expiry);  // not yet
  BOOST_TEST(!service->cache().find(core::digest_key(uncached)).has_value());

  clock.set(expiry - 1);
  BOOST_TEST(accepted(io, *service, cached));  // hit
  clock.set(expiry);
  BOOST_TEST(!accepted(io, *service, cached));    // hit, refused from the expiry second on
  BOOST_TEST(!accepted(io, *service, uncached));  // miss: the store's expiry, judged by our clock
  BOOST_TEST(service->cache().find(core::digest_key(uncached)).has_value());
  BOOST_TEST(!accepted(io, *service, uncached));  // now a hit, refused as well
  clock.set(expiry + 1000);
  BOOST_TEST(!accepted(io, *service, cached));

  // The miss path accepts before the expiry (a fresh cache).
  auto fresh = make_service(store, clock);
  clock.set(expiry - 1);
  const std::string other = store_key(store, 2, expiry);
  BOOST_TEST(accepted(io, *fresh, other));
  BOOST_TEST(accepted(io, *fresh, other));  // and the hit path after it
  // A key without expiry never ends.
  const std::string forever = store_key(store, 2, 0);
  clock.set(std::int64_t{1} << 40);
  BOOST_TEST(accepted(io, *fresh, forever));
}

BOOST_AUTO_TEST_CASE(a_roll_with_overlap_keeps_the_old_key_until_then) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const auto made = run(io, create(*service, 3, 0));
  BOOST_REQUIRE(made.has_value());
  const std::string old = made->key;
  BOOST_TEST(accepted(io, *service, old));  // cached before the roll

  const auto rolled = run(io, roll(*service, 3, old, 300));
  BOOST_REQUIRE(rolled.has_value());
  BOOST_TEST(rolled->old_expires_at == t0 + 300);
  BOOST_TEST(rolled->old_id == made->record.id);
  const std::string fresh = rolled->fresh.key;
  BOOST_TEST(fresh != old);
  BOOST_TEST(rolled->fresh.record.owner == 3u);

  clock.set(t0 + 299);
  BOOST_TEST(accepted(io, *service, old));  // the roll dropped it from the cache: read anew
  BOOST_TEST(accepted(io, *service, old));
  BOOST_TEST(accepted(io, *service, fresh));
  clock.set(t0 + 300);
  BOOST_TEST(!accepted(io, *service, old));
  BOOST_TEST(accepted(io, *service, fresh));
  // Another instance (its own cache) agrees, from the store alone.
  auto other = make_service(store, clock);
  BOOST_TEST(!accepted(io, *other, old));
  BOOST_TEST(accepted(io, *other, fresh));
  // An expired key cannot be rolled again.
  const auto again = run(io, roll(*service, 3, old, 300));
  BOOST_TEST((!again && again.error() == core::errc::not_found));
}

BOOST_AUTO_TEST_CASE(a_roll_without_overlap_refuses_the_old_key_at_once) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const auto made = run(io, create(*service, 3, 0));
  BOOST_REQUIRE(made.has_value());
  BOOST_TEST(accepted(io, *service, made->key));
  const auto rolled = run(io, roll(*service, 3, made->key, 0));
  BOOST_REQUIRE(rolled.has_value());
  BOOST_TEST(rolled->old_expires_at == t0);
  BOOST_TEST(!accepted(io, *service, made->key));
  BOOST_TEST(accepted(io, *service, rolled->fresh.key));
  // Someone else's key is not found, whatever its state.
  const auto foreign = run(io, roll(*service, 4, rolled->fresh.key, 0));
  BOOST_TEST((!foreign && foreign.error() == core::errc::not_found));
  BOOST_TEST(accepted(io, *service, rolled->fresh.key));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(last_use)

BOOST_AUTO_TEST_CASE(one_write_per_key_per_minute) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const auto made = run(io, create(*service, 5, 0));
  BOOST_REQUIRE(made.has_value());
  const std::string key = made->key;

  BOOST_TEST(run(io, authenticate_times(*service, key, 1000)) == 1000);
  clock.set(t0 + 59);  // the same minute still
  BOOST_TEST(run(io, authenticate_times(*service, key, 10)) == 10);
  BOOST_TEST(!flush(*service));
  BOOST_TEST(store.use_writes() == 1u);
  auto uses = store.uses();
  BOOST_REQUIRE_EQUAL(uses.size(), 1u);
  BOOST_TEST((uses[0].digest == core::digest_key(key)));
  BOOST_TEST(uses[0].owner == 5u);
  BOOST_TEST(uses[0].minute == t0);
  BOOST_TEST(service->uses_recorded() == 1u);
  BOOST_TEST(last_uses(io, *service, 5).at(prefix(key)) == t0);

  // Nothing new: no write at all.
  BOOST_TEST(run(io, authenticate_times(*service, key, 10)) == 10);
  BOOST_TEST(!flush(*service));
  BOOST_TEST(store.use_writes() == 1u);

  clock.set(t0 + 60);
  BOOST_TEST(run(io, authenticate_times(*service, key, 1000)) == 1000);
  BOOST_TEST(!flush(*service));
  BOOST_TEST(store.use_writes() == 2u);
  uses = store.uses();
  BOOST_REQUIRE_EQUAL(uses.size(), 2u);
  BOOST_TEST(uses[1].minute == t0 + 60);
  BOOST_TEST(service->uses_recorded() == 2u);
  BOOST_TEST(last_uses(io, *service, 5).at(prefix(key)) == t0 + 60);
}

BOOST_AUTO_TEST_CASE(misses_are_marked_and_refusals_are_not) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const std::string uncached = store_key(store, 6, 0);
  const std::string expired = store_key(store, 6, t0);
  BOOST_TEST(accepted(io, *service, uncached));  // a miss, marked
  BOOST_TEST(accepted(io, *service, uncached));  // a hit in the same minute: not again
  BOOST_TEST(!accepted(io, *service, expired));
  BOOST_TEST(!accepted(io, *service, expired));
  BOOST_TEST(!accepted(io, *service, core::generate_key()));  // unknown
  BOOST_TEST(!flush(*service));
  const auto uses = store.uses();
  BOOST_REQUIRE_EQUAL(uses.size(), 1u);
  BOOST_TEST((uses[0].digest == core::digest_key(uncached)));
  const auto shown = last_uses(io, *service, 6);
  BOOST_TEST(shown.at(prefix(uncached)) == t0);
  BOOST_TEST(shown.at(prefix(expired)) == 0);
}

BOOST_AUTO_TEST_CASE(recording_off_marks_nothing) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock, false);
  const auto made = run(io, create(*service, 5, 0));
  BOOST_REQUIRE(made.has_value());
  const std::string uncached = store_key(store, 5, 0);
  BOOST_TEST(run(io, authenticate_times(*service, made->key, 100)) == 100);
  BOOST_TEST(run(io, authenticate_times(*service, uncached, 100)) == 100);
  BOOST_TEST(service->cache().find(core::digest_key(made->key))->used_minute == 0u);
  BOOST_TEST(!flush(*service));
  BOOST_TEST(store.use_writes() == 0u);
  BOOST_TEST(service->uses_recorded() == 0u);
  for (const auto& [shown, used] : last_uses(io, *service, 5)) BOOST_TEST(used == 0, shown);
}

BOOST_AUTO_TEST_CASE(a_flush_invalidates_the_cached_lists_of_its_owners) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const auto mine = run(io, create(*service, 8, 0));
  const auto theirs = run(io, create(*service, 9, 0));
  BOOST_REQUIRE((mine && theirs));
  BOOST_TEST(last_uses(io, *service, 8).at(prefix(mine->key)) == 0);  // now cached
  BOOST_TEST(last_uses(io, *service, 9).at(prefix(theirs->key)) == 0);
  BOOST_TEST(accepted(io, *service, mine->key));
  BOOST_TEST(last_uses(io, *service, 8).at(prefix(mine->key)) == 0);  // not written yet
  BOOST_TEST(!flush(*service));
  // The store has the use, and the cached list of its owner was dropped, so the list shows it.
  BOOST_TEST(last_uses(io, *service, 8).at(prefix(mine->key)) == t0);
  BOOST_TEST(last_uses(io, *service, 9).at(prefix(theirs->key)) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(expired_sweep)

BOOST_AUTO_TEST_CASE(only_tokens_expired_longer_than_the_retention_go) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  constexpr std::int64_t retention = 3600;
  const auto soon = run(io, create(*service, 1, t0 + 10));
  const auto later = run(io, create(*service, 1, t0 + 100));
  const auto never = run(io, create(*service, 1, 0));
  const auto elsewhere = run(io, create(*service, 2, t0 + 10));
  BOOST_REQUIRE((soon && later && never && elsewhere));
  BOOST_TEST(last_uses(io, *service, 1).size() == 3u);  // cached list
  BOOST_TEST(last_uses(io, *service, 2).size() == 1u);

  // Expired exactly `retention` ago: kept (listed, refused).
  clock.set(t0 + 10 + retention);
  BOOST_TEST(run(io, remove_expired(*service, retention)).value() == 0u);
  BOOST_TEST(store.sweep_cutoffs().back() == t0 + 10);
  BOOST_TEST(last_uses(io, *service, 1).size() == 3u);
  BOOST_TEST(!accepted(io, *service, soon->key));

  clock.set(t0 + 11 + retention);
  BOOST_TEST(run(io, remove_expired(*service, retention)).value() == 2u);
  BOOST_TEST(service->expired_removed() == 2u);
  const auto left = last_uses(io, *service, 1);
  BOOST_TEST(left.size() == 2u);
  BOOST_TEST(left.contains(prefix(later->key)));
  BOOST_TEST(left.contains(prefix(never->key)));
  BOOST_TEST(last_uses(io, *service, 2).empty());
  BOOST_TEST(!service->cache().find(core::digest_key(soon->key)).has_value());  // left the cache too
  BOOST_TEST(!accepted(io, *service, soon->key));
  BOOST_TEST(accepted(io, *service, never->key));
  BOOST_TEST(!accepted(io, *service, later->key));  // expired, but within the retention: still stored
  BOOST_TEST(last_uses(io, *service, 1).contains(prefix(later->key)));
}

BOOST_AUTO_TEST_CASE(a_rolled_key_is_swept_once_its_overlap_is_past_the_retention) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const auto never = run(io, create(*service, 1, 0));              // gains an expiry by the roll
  const auto shortened = run(io, create(*service, 1, t0 + 5000));  // its expiry moves earlier
  BOOST_REQUIRE((never && shortened));
  const auto first = run(io, roll(*service, 1, never->key, 100));
  const auto second = run(io, roll(*service, 1, shortened->key, 100));
  BOOST_REQUIRE((first && second));
  BOOST_TEST(first->old_expires_at == t0 + 100);
  BOOST_TEST(second->old_expires_at == t0 + 100);
  clock.set(t0 + 100 + 60 + 1);
  BOOST_TEST(run(io, remove_expired(*service, 60)).value() == 2u);
  const auto left = last_uses(io, *service, 1);
  BOOST_TEST(left.size() == 2u);
  BOOST_TEST(left.contains(prefix(first->fresh.key)));
  BOOST_TEST(left.contains(prefix(second->fresh.key)));
  // Their old expiries are gone with them: a later sweep finds nothing (and trips on nothing).
  clock.set(t0 + 10'000);
  BOOST_TEST(run(io, remove_expired(*service, 60)).value() == 0u);
  BOOST_TEST(last_uses(io, *service, 1).size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_backlog_goes_in_bounded_batches) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  auto service = make_service(store, clock);
  const std::size_t backlog = 2 * server::token_service::sweep_batch + 500;
  for (std::size_t i = 0; i < backlog; ++i) (void)store_key(store, 10 + i % 3, t0 + 1);
  const std::string keeper = store_key(store, 10, 0);
  clock.set(t0 + 100);
  BOOST_TEST(run(io, remove_expired(*service, 50)).value() == backlog);
  BOOST_TEST(store.sweep_cutoffs().size() == 3u);  // full, full, short: then it stops
  BOOST_TEST(service->expired_removed() == backlog);
  BOOST_TEST(last_uses(io, *service, 10).size() == 1u);
  BOOST_TEST(last_uses(io, *service, 11).empty());
  BOOST_TEST(accepted(io, *service, keeper));
  // Nothing left: one write that finds nothing.
  BOOST_TEST(run(io, remove_expired(*service, 50)).value() == 0u);
  BOOST_TEST(store.sweep_cutoffs().size() == 4u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rate_limits)

constexpr std::int64_t ms_ns = 1'000'000;
constexpr std::int64_t second_ns = 1'000 * ms_ns;

// The test's monotonic clock: nanoseconds it sets.
struct manual_monotonic {
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(1'000 * second_ns);
  void advance(std::int64_t ns) const { now->fetch_add(ns); }
  [[nodiscard]] std::int64_t get() const { return now->load(); }
  [[nodiscard]] server::monotonic_function function() const {
    return [now = now] { return now->load(); };
  }
};

std::unique_ptr<server::token_service> make_limited(storage::token_store& store, const manual_clock& clock,
                                                    const manual_monotonic& mono,
                                                    core::rate_limit default_limit = {}) {
  auto service = make_service(store, clock);
  service->set_rate_limits({default_limit, mono.function()});
  return service;
}

// The callers of `n` authentications of `key`.
std::vector<result<server::caller>> callers(net::io_context& io, server::token_service& service,
                                            const std::string& key, int n) {
  std::vector<result<server::caller>> out;
  for (int i = 0; i < n; ++i) out.push_back(run(io, authenticate(service, key)));
  return out;
}

// How many of `n` authentications of `key` were admitted; each must authenticate, and a limited key
// must say so.
int admitted(net::io_context& io, server::token_service& service, const std::string& key, int n,
             bool limited = true) {
  int count = 0;
  for (const auto& who : callers(io, service, key, n)) {
    BOOST_TEST_REQUIRE(who.has_value());
    BOOST_TEST(who->rate.has_value() == limited);
    if (!who->rate_limited()) ++count;
  }
  return count;
}

std::string store_limited_key(storage::token_store& store, core::user_id owner,
                              std::optional<core::rate_limit> limit, std::int64_t expires_at = 0) {
  std::string key = core::generate_key();
  test::store_record(store, core::make_token_record(key, owner, "limited", std::string(core::admin_type), t0,
                                                    expires_at, limit));
  return key;
}

net::awaitable<result<server::token_service::created>> create_limited(server::token_service& service,
                                                                      core::user_id owner,
                                                                      std::optional<core::rate_limit> limit) {
  co_return co_await service.create(owner, "limited", std::string(core::admin_type), 0, limit);
}

net::awaitable<boost::system::error_code> set_limit(server::token_service& service, storage::token_ref ref,
                                                    std::optional<core::rate_limit> limit) {
  co_return co_await service.set_rate_limit(std::move(ref), limit);
}

net::awaitable<result<std::vector<server::token_service::limited_key>>> top_limited(
    server::token_service& service, std::size_t n) {
  co_return co_await service.top_limited(n);
}

net::awaitable<boost::system::error_code> remove(server::token_service& service, storage::token_ref ref) {
  co_return co_await service.remove(std::move(ref));
}

storage::token_ref ref_of(core::user_id owner, const std::string& key) {
  return {owner, core::digest_key(key)};
}

// Waits for a share's answer.
boost::system::error_code share(server::token_service& service) {
  auto done = std::make_shared<std::promise<boost::system::error_code>>();
  auto shared = done->get_future();
  service.share_admits([done](boost::system::error_code ec) { done->set_value(ec); });
  BOOST_REQUIRE_MESSAGE(shared.wait_for(10s) == std::future_status::ready, "the share did not complete");
  return shared.get();
}

BOOST_AUTO_TEST_CASE(a_keys_own_limit_refuses_past_its_burst_on_both_cache_paths) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono);
  const core::rate_limit limit{3, 1, 0};

  // Created here: cached with its limit, every request a hit.
  const auto made = run(io, create_limited(*service, 1, limit));
  BOOST_REQUIRE(made.has_value());
  const auto first = callers(io, *service, made->key, 4);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST_REQUIRE(first[i].has_value());
    BOOST_TEST_REQUIRE(first[i]->rate.has_value());
    BOOST_TEST((first[i]->rate->limit == limit));
    BOOST_TEST(first[i]->rate->decision.allowed);
    BOOST_TEST(first[i]->rate->decision.remaining == static_cast<std::uint32_t>(2 - i));
  }
  BOOST_TEST_REQUIRE(first[3].has_value());  // still the key's owner, but refused
  BOOST_TEST(first[3]->user == 1u);
  BOOST_TEST(first[3]->rate_limited());
  BOOST_TEST(first[3]->rate->decision.retry_after_seconds == 1u);
  mono.advance(1'000 * ms_ns / 3 + 1);  // one request refilled
  BOOST_TEST(admitted(io, *service, made->key, 2) == 1);

  // Stored behind the service's back: the first request misses the cache and reads the limit.
  const std::string stored = store_limited_key(store, 2, core::rate_limit{2, 1, 0});
  BOOST_TEST(!service->cache().find(core::digest_key(stored)).has_value());
  BOOST_TEST(admitted(io, *service, stored, 1) == 1);  // miss
  BOOST_TEST((service->cache().find(core::digest_key(stored))->own_limit == core::rate_limit{2, 1, 0}));
  BOOST_TEST(admitted(io, *service, stored, 2) == 1);  // hits: the burst's second, then refused
  // Out of the cache again (a change to the same limit): refused on the miss as well.
  BOOST_TEST(!run(io, set_limit(*service, ref_of(2, stored), core::rate_limit{2, 1, 0})));
  BOOST_TEST(!service->cache().find(core::digest_key(stored)).has_value());
  BOOST_TEST(admitted(io, *service, stored, 1) == 0);
}

BOOST_AUTO_TEST_CASE(the_default_limit_applies_to_keys_without_their_own) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono, {2, 1, 0});
  BOOST_TEST((service->default_rate_limit() == core::rate_limit{2, 1, 0}));
  const std::string plain = store_limited_key(store, 1, std::nullopt);
  BOOST_TEST(admitted(io, *service, plain, 5) == 2);
  const auto made = run(io, create_limited(*service, 1, std::nullopt));
  BOOST_REQUIRE(made.has_value());
  BOOST_TEST(admitted(io, *service, made->key, 5) == 2);
  // Its own limit, higher or lower, wins; its own {limit: 0} exempts it.
  BOOST_TEST(admitted(io, *service, store_limited_key(store, 1, core::rate_limit{4, 1, 0}), 6) == 4);
  BOOST_TEST(admitted(io, *service, store_limited_key(store, 1, core::rate_limit{1, 1, 0}), 6) == 1);
  const std::string exempt = store_limited_key(store, 1, core::rate_limit{0, 1, 0});
  BOOST_TEST(admitted(io, *service, exempt, 20, false) == 20);
  const auto exempt_made = run(io, create_limited(*service, 1, core::rate_limit{}));
  BOOST_REQUIRE(exempt_made.has_value());
  BOOST_TEST(admitted(io, *service, exempt_made->key, 20, false) == 20);
  BOOST_TEST(service->limiter().size() == 4u);  // the exempt keys have no bucket

  // No default: keys without a limit cost the limiter nothing.
  auto unlimited = make_limited(store, clock, mono);
  BOOST_TEST(admitted(io, *unlimited, plain, 20, false) == 20);
  BOOST_TEST(unlimited->limiter().size() == 0u);
}

BOOST_AUTO_TEST_CASE(unknown_and_expired_keys_are_refused_before_any_limit) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono, {1, 1, 0});
  const std::string unknown = core::generate_key();
  const std::string expired = store_limited_key(store, 1, core::rate_limit{1, 1, 0}, t0 + 10);
  clock.set(t0 + 10);
  for (int i = 0; i < 3; ++i) {  // a miss, then hits
    for (const std::string& key : {unknown, expired}) {
      const auto who = run(io, authenticate(*service, key));
      BOOST_TEST_REQUIRE(!who.has_value());
      BOOST_TEST((who.error() == core::errc::unauthorized));
    }
  }
  BOOST_TEST(service->limiter().size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_changed_limit_applies_from_the_next_request) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono);
  const auto made = run(io, create_limited(*service, 5, std::nullopt));
  BOOST_REQUIRE(made.has_value());
  BOOST_TEST(admitted(io, *service, made->key, 5, false) == 5);
  const auto before = run(io, list(*service, 5));  // cached
  BOOST_REQUIRE(before.has_value());
  BOOST_TEST(!before->tokens.at(0).rate_limit.has_value());

  // By id, as an operator would.
  BOOST_TEST(!run(io, set_limit(*service, {5, made->record.id}, core::rate_limit{1, 1, 0})));
  BOOST_TEST(admitted(io, *service, made->key, 3) == 1);
  const auto after = run(io, list(*service, 5));
  BOOST_REQUIRE(after.has_value());
  BOOST_TEST((after->tokens.at(0).rate_limit == core::rate_limit{1, 1, 0}));

  // Higher: the one request taken stays taken, the other nine are there at once, then the new pace.
  BOOST_TEST(!run(io, set_limit(*service, ref_of(5, made->key), core::rate_limit{10, 1, 0})));
  BOOST_TEST(admitted(io, *service, made->key, 10) == 9);
  mono.advance(100 * ms_ns);
  BOOST_TEST(admitted(io, *service, made->key, 2) == 1);

  // Back to the default (none here).
  BOOST_TEST(!run(io, set_limit(*service, ref_of(5, made->key), std::nullopt)));
  BOOST_TEST(admitted(io, *service, made->key, 5, false) == 5);

  // Not the owner's, or no such token.
  BOOST_TEST((run(io, set_limit(*service, ref_of(6, made->key), std::nullopt)) == core::errc::not_found));
  BOOST_TEST((run(io, set_limit(*service, {5, std::uint64_t{999}}, std::nullopt)) == core::errc::not_found));
}

BOOST_AUTO_TEST_CASE(a_roll_caches_the_new_keys_own_limit) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono);
  const auto made = run(io, create_limited(*service, 3, core::rate_limit{2, 1, 0}));
  BOOST_REQUIRE(made.has_value());
  const auto rolled = run(io, roll(*service, 3, made->key, 0));
  BOOST_REQUIRE(rolled.has_value());
  BOOST_TEST(
      (service->cache().find(core::digest_key(rolled->fresh.key))->own_limit == core::rate_limit{2, 1, 0}));
  BOOST_TEST(admitted(io, *service, rolled->fresh.key, 3) == 2);
}

BOOST_AUTO_TEST_CASE(admits_are_shared_and_other_processes_counts_debit) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono);
  const core::rate_limit limit{10, 1, 0};
  const std::string key = store_limited_key(store, 1, limit);
  const std::uint64_t tag = core::key_tag(core::digest_key(key));
  BOOST_TEST(admitted(io, *service, key, 3) == 3);
  BOOST_TEST(!share(*service));
  auto shares = store.shares();
  BOOST_TEST_REQUIRE(shares.size() == 1u);
  BOOST_TEST_REQUIRE(shares[0].size() == 1u);
  BOOST_TEST(shares[0][0].tag == tag);
  BOOST_TEST(shares[0][0].count == 3u);
  BOOST_TEST(!share(*service));  // nothing new
  BOOST_TEST(store.shares().at(1).empty());

  // Another process admitted 6: one left here.
  BOOST_TEST_REQUIRE(store.peer_sends(77, {{tag, 6}}));
  BOOST_TEST(admitted(io, *service, key, 3) == 1);
  // Counts for a key this process has not seen wait for its first request.
  const std::string other = store_limited_key(store, 1, limit);
  BOOST_TEST(store.peer_sends(77, {{core::key_tag(core::digest_key(other)), 8}}));
  BOOST_TEST(admitted(io, *service, other, 5) == 2);
  // A share after the bucket is full again leaves nothing behind.
  mono.advance(2 * second_ns);
  BOOST_TEST(!share(*service));
  BOOST_TEST(service->limiter().size() == 0u);
  // Gone with the service: no callback left registered.
  service.reset();
  BOOST_TEST(!store.peer_sends(77, {{tag, 1}}));
}

BOOST_AUTO_TEST_CASE(a_failed_share_holds_to_a_share_of_each_limit_among_the_processes_heard) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono);
  const std::int64_t start = mono.get();
  BOOST_TEST(store.peer_sends(7, {}));
  mono.advance(5 * second_ns);
  BOOST_TEST(store.peer_sends(8, {}));
  BOOST_TEST(store.peer_sends(8, {}));  // one process, heard twice
  store.fail_shares(core::make_error_code(core::errc::unavailable));
  mono.now->store(start + 10 * second_ns - 1);
  BOOST_TEST((share(*service) == core::errc::unavailable));
  BOOST_TEST(service->limiter().share() == 3u);
  BOOST_TEST(service->shares_failed() == 1u);
  // Its limits are shared three ways.
  const std::string key = store_limited_key(store, 1, core::rate_limit{9, 1, 0});
  BOOST_TEST(admitted(io, *service, key, 9) == 3);

  // While sharing fails, nobody is forgotten: nothing is heard from anyone during an outage, and
  // forgetting would hand this process the whole limit again.
  mono.now->store(start + 60 * second_ns);
  BOOST_TEST((share(*service) == core::errc::unavailable));
  BOOST_TEST(service->limiter().share() == 3u);
  BOOST_TEST(store.peer_sends(9, {}));  // a process heard during the failure counts as well
  BOOST_TEST((share(*service) == core::errc::unavailable));
  BOOST_TEST(service->limiter().share() == 4u);
  BOOST_TEST(service->shares_failed() == 3u);

  store.fail_shares({});
  BOOST_TEST(!share(*service));
  BOOST_TEST(service->limiter().share() == 1u);
  BOOST_TEST(service->shares_failed() == 3u);
  // Once sharing works, the processes not heard for peer_memory_seconds are forgotten: 7 and 8 go.
  BOOST_TEST(!share(*service));
  store.fail_shares(core::make_error_code(core::errc::unavailable));
  BOOST_TEST((share(*service) == core::errc::unavailable));
  BOOST_TEST(service->limiter().share() == 2u);
}

BOOST_AUTO_TEST_CASE(the_most_limited_keys_are_named_by_id_and_prefix) {
  net::io_context io;
  counting_store store;
  manual_clock clock;
  manual_monotonic mono;
  auto service = make_limited(store, clock, mono, {2, 1, 0});
  const auto most = run(io, create_limited(*service, 1, core::rate_limit{1, 60, 0}));
  const auto some = run(io, create_limited(*service, 2, std::nullopt));
  const auto gone = run(io, create_limited(*service, 3, core::rate_limit{1, 1, 0}));
  const auto never = run(io, create_limited(*service, 4, std::nullopt));
  BOOST_REQUIRE((most && some && gone && never));
  BOOST_TEST(admitted(io, *service, most->key, 5) == 1);   // 4 refused
  BOOST_TEST(admitted(io, *service, some->key, 3) == 2);   // 1
  BOOST_TEST(admitted(io, *service, gone->key, 10) == 1);  // 9, then deleted
  BOOST_TEST(admitted(io, *service, never->key, 2) == 2);  // none
  BOOST_TEST(!run(io, remove(*service, ref_of(3, gone->key))));

  const auto top = run(io, top_limited(*service, 20));
  BOOST_REQUIRE(top.has_value());
  BOOST_TEST_REQUIRE(top->size() == 2u);
  const auto& first = top->at(0);
  BOOST_TEST(first.owner == 1u);
  BOOST_TEST(first.id == most->record.id);
  BOOST_TEST(first.display_prefix == prefix(most->key));
  BOOST_TEST((first.limit == core::rate_limit{1, 60, 0}));
  BOOST_TEST(first.refused == 4u);
  BOOST_TEST(first.admitted == 1u);
  const auto& second = top->at(1);
  BOOST_TEST(second.owner == 2u);
  BOOST_TEST(second.id == some->record.id);
  BOOST_TEST(second.display_prefix == prefix(some->key));
  BOOST_TEST((second.limit == core::rate_limit{2, 1, 0}));  // the default it ran under
  BOOST_TEST(second.refused == 1u);
  for (const auto& k : *top) {
    for (const std::string& key : {most->key, some->key, gone->key, never->key})
      BOOST_TEST(k.display_prefix.find(key) == std::string::npos);
  }
  const auto one = run(io, top_limited(*service, 1));
  BOOST_REQUIRE(one.has_value());
  BOOST_TEST_REQUIRE(one->size() == 1u);
  BOOST_TEST(one->at(0).id == most->record.id);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(timers_and_shutdown)

// The timers on an io_context, with the system clock: they flush and sweep on their own, and stop.
BOOST_AUTO_TEST_CASE(background_jobs_flush_sweep_and_stop) {
  net::io_context io;
  counting_store store;
  server::token_service service(store, 1000, 1000);
  server::background_jobs jobs(io, service, {20ms, 20ms, 0ms});
  const std::string key = store_key(store, 1, 0);
  jobs.start();
  BOOST_TEST(accepted(io, service, key));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((store.uses().empty() || store.sweep_cutoffs().empty()) &&
         std::chrono::steady_clock::now() < deadline)
    io.run_one_for(5ms);
  BOOST_TEST(store.uses().size() == 1u);
  BOOST_TEST(!store.sweep_cutoffs().empty());
  jobs.stop();
  // Both loops end: the context runs out of work on its own.
  io.restart();
  io.run_for(5s);
  BOOST_TEST(io.stopped());
}

// Every interval on a shared store; never on one that is not, nor with an interval of 0 (which
// still trims the buckets every second).
BOOST_AUTO_TEST_CASE(background_jobs_share_rate_limit_counts_on_a_shared_store) {
  for (const bool shared : {true, false}) {
    for (const auto interval : {20ms, 0ms}) {
      net::io_context io;
      counting_store store;
      store.set_shared(shared);
      server::token_service service(store, 1000, 1000);
      auto steady = std::make_shared<std::atomic<std::int64_t>>(0);
      service.set_rate_limits({{5, 1, 0}, [steady] { return steady->load(); }});
      server::background_jobs jobs(io, service, {0ms, 60s, 0ms, interval});
      const std::string key = store_key(store, 1, 0);
      jobs.start();
      BOOST_TEST(accepted(io, service, key));
      BOOST_TEST(service.limiter().size() == 1u);
      steady->store(std::int64_t{1'000'000'000});  // the bucket is full again
      const bool sharing = shared && interval.count() > 0;
      const auto shared_count = [&store] {
        std::uint32_t total = 0;
        for (const auto& counts : store.shares()) {
          for (const auto& c : counts) total += c.count;
        }
        return total;
      };
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while ((service.limiter().size() != 0 || (sharing && shared_count() == 0)) &&
             std::chrono::steady_clock::now() < deadline)
        io.run_one_for(5ms);
      BOOST_TEST(shared_count() == (sharing ? 1u : 0u));
      if (!sharing) BOOST_TEST(store.shares().empty());
      BOOST_TEST(service.limiter().size() == 0u, "shared " << shared << " interval " << interval.count());
      jobs.stop();
      io.restart();
      io.run_for(5s);
      BOOST_TEST(io.stopped());
    }
  }
}

BOOST_AUTO_TEST_CASE(recording_off_starts_no_flush) {
  net::io_context io;
  counting_store store;
  server::token_service service(store, 1000, 1000);
  service.set_recording_uses(true);
  server::background_jobs jobs(io, service, {0ms, 60s, 0ms});  // turns recording off
  const std::string key = store_key(store, 1, 0);
  jobs.start();
  BOOST_TEST(accepted(io, service, key));
  jobs.final_flush();
  BOOST_TEST(service.cache().find(core::digest_key(key))->used_minute == 0u);
  jobs.stop();
  io.restart();
  io.run_for(5s);
  BOOST_TEST(io.stopped());
  BOOST_TEST(store.use_writes() == 0u);
}

// The drain's last flush: uses marked since the last timer flush reach the store before it closes.
BOOST_AUTO_TEST_CASE(stopping_the_app_writes_the_last_uses) {
  for (const bool recording : {true, false}) {
    test::temp_dir dir;
    auto owned = std::make_unique<counting_store>();
    counting_store& store = *owned;
    const std::string key = store_key(store, 4, 0);
    server::config cfg;
    if (!recording) cfg.last_used_interval = 0ms;
    test::in_process_app app(cfg, dir.path(), std::move(owned));
    for (int i = 0; i < 3; ++i) {
      const auto r = test::request(app.api_port(), boost::beast::http::verb::get, "/verify", {},
                                   {{"Authorization", "Bearer " + key}});
      BOOST_REQUIRE_MESSAGE(r.status == 200u, r.status << " " << r.body);
    }
    BOOST_TEST(store.use_writes() == 0u);  // the timer's minute has not come
    app.stop();
    BOOST_TEST(store.use_writes() == (recording ? 1u : 0u), "recording " << recording);
    BOOST_TEST(store.uses().size() == (recording ? 1u : 0u));
  }
}

BOOST_AUTO_TEST_CASE(the_app_exposes_the_counters) {
  server::config cfg;
  cfg.threads = 1;
  server::app app(cfg, storage::make_memory_store());
  const std::string text = app.metrics_text();
  BOOST_TEST(text.find("\ntokend_key_uses_recorded_total 0\n") != std::string::npos);
  BOOST_TEST(text.find("\ntokend_expired_tokens_removed_total 0\n") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bootstrap_type)

std::optional<storage::key_info> lookup(storage::token_store& store, const std::string& key) {
  // Shared so that an answer arriving after the deadline still has a live promise.
  auto found = std::make_shared<std::promise<result<std::optional<storage::key_info>>>>();
  auto answer = found->get_future();
  store.async_lookup(core::digest_key(key), [found](auto r) { found->set_value(std::move(r)); });
  BOOST_REQUIRE(answer.wait_for(10s) == std::future_status::ready);
  auto r = answer.get();
  BOOST_REQUIRE(r.has_value());
  return *r;
}

server::env_lookup environment(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

BOOST_AUTO_TEST_CASE(the_bootstrap_key_is_admin_unless_told_operator) {
  test::temp_dir dir;
  server::config cfg;
  cfg.data_dir = dir.path().string();
  auto store = storage::make_memory_store();
  const std::string admin = core::generate_key();
  const std::string op = core::generate_key();
  server::bootstrap(*store, cfg, environment({{"TOKEND_BOOTSTRAP_TOKEN", admin}}));
  server::bootstrap(*store, cfg,
                    environment({{"TOKEND_BOOTSTRAP_TOKEN", op}, {"TOKEND_BOOTSTRAP_TYPE", "operator"}}));
  const auto a = lookup(*store, admin);
  const auto o = lookup(*store, op);
  BOOST_REQUIRE((a && o));
  BOOST_TEST(!a->operator_key);
  BOOST_TEST(o->operator_key);
  const std::string explicit_admin = core::generate_key();
  server::bootstrap(
      *store, cfg,
      environment({{"TOKEND_BOOTSTRAP_TOKEN", explicit_admin}, {"TOKEND_BOOTSTRAP_TYPE", "admin"}}));
  BOOST_TEST(!lookup(*store, explicit_admin)->operator_key);
}

BOOST_AUTO_TEST_CASE(a_bad_bootstrap_type_is_a_config_error_naming_the_variable) {
  test::temp_dir dir;
  server::config cfg;
  cfg.data_dir = dir.path().string();
  auto store = storage::make_memory_store();
  for (const char* bad : {"Operator", "root", "admin ", "operator,admin"}) {
    const std::string key = core::generate_key();
    try {
      server::bootstrap(*store, cfg,
                        environment({{"TOKEND_BOOTSTRAP_TOKEN", key}, {"TOKEND_BOOTSTRAP_TYPE", bad}}));
      BOOST_ERROR("accepted TOKEND_BOOTSTRAP_TYPE=" << bad);
    } catch (const server::config_error& e) {
      BOOST_TEST(std::string(e.what()).find("TOKEND_BOOTSTRAP_TYPE") != std::string::npos);
    }
    BOOST_TEST(!lookup(*store, key).has_value(), bad);  // nothing stored
  }
  // Also without a bootstrap key (and nothing written then either).
  BOOST_CHECK_THROW(server::bootstrap(*store, cfg, environment({{"TOKEND_BOOTSTRAP_TYPE", "x"}})),
                    server::config_error);
  BOOST_TEST(!std::filesystem::exists(dir.path() / "admin-token"));
}

BOOST_AUTO_TEST_SUITE_END()
