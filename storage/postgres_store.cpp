// The PostgreSQL token store. One storage thread runs an io_context that drives every libpq
// connection through its socket: a pool of command connections (postgres_worker) taking batches
// of jobs (postgres_jobs) from one queue, and the revocation listener (postgres_listener), which
// also hears the rate-limit counts other processes share (postgres_admits). Nothing here runs on
// an io thread but the hand-offs in submit() and async_share_admits().
#include "storage/postgres_store.hpp"

#include "core/error.hpp"
#include "storage/pg_connection.hpp"
#include "storage/pg_text.hpp"
#include "storage/postgres_admits.hpp"
#include "storage/postgres_jobs.hpp"
#include "storage/postgres_listener.hpp"
#include "storage/postgres_names.hpp"
#include "storage/postgres_schema.hpp"
#include "storage/postgres_session.hpp"
#include "storage/postgres_worker.hpp"
#include "storage/store_lifecycle.hpp"
#include "storage/store_stats.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using pg::job;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

// Two processes starting together run the schema script one after the other.
constexpr const char* schema_lock = "7726150894436640359";

class postgres_store final : public token_store {
 public:
  explicit postgres_store(const postgres_options& options)
      : options_(sanitized(options)),
        names_(options_.schema),
        work_(net::make_work_guard(ioc_)),
        wake_(ioc_, clock::time_point::max()),
        init_conn_(ioc_),
        listener_(ioc_, options_, names_, sender_, [this](bool up) { set_listening(up); }) {
    for (std::size_t i = 0; i < options_.connections; ++i)
      workers_.push_back(std::make_unique<pg::worker>(ioc_, options_, names_, counters_));
  }

  // NOLINTNEXTLINE(bugprone-exception-escape): close() throws only if it cannot allocate: terminate
  ~postgres_store() override { close(); }
  postgres_store(const postgres_store&) = delete;
  postgres_store& operator=(const postgres_store&) = delete;

  // Blocking, once: schema, then the pool and the listener; throws when the database is not there.
  void start() {
    thread_ = std::thread([this] { ioc_.run(); });
    auto init = std::make_shared<std::promise<std::string>>();
    auto initialized = init->get_future();
    net::co_spawn(ioc_, initialize(init), net::detached);
    if (initialized.wait_for(options_.start_timeout) != std::future_status::ready) {
      throw std::runtime_error("cannot open PostgreSQL store: no answer within the start-up timeout");
    }
    if (const std::string problem = initialized.get(); !problem.empty()) {
      throw std::runtime_error("cannot open PostgreSQL store: " + problem);
    }
    net::post(ioc_, [this] {
      // Counted here, on the storage thread, so that a shutdown before this point waits for none.
      running_ = workers_.size();
      listener_done_ = false;
      for (std::size_t i = 0; i < workers_.size(); ++i) net::co_spawn(ioc_, work(i), net::detached);
      net::co_spawn(ioc_, listen(), net::detached);
    });
    std::unique_lock lock(state_mutex_);
    const auto up = [this] { return connected_.load() > 0 && listening_.load(); };
    if (!state_cv_.wait_for(lock, options_.start_timeout, up)) {
      throw std::runtime_error(
          "cannot open PostgreSQL store: no pool connection or revocation listener "
          "within the start-up timeout");
    }
  }

  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    submit(pg::lookup_job{digest, std::move(handler)});
  }

  void async_create(core::token_record record, create_handler handler) override {
    submit(pg::create_job{std::move(record), std::move(handler)});
  }

  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    submit(pg::list_job{owner, offset, limit, std::move(handler)});
  }

  void async_remove(token_ref ref, remove_handler handler) override {
    submit(pg::remove_job{ref, std::move(handler)});
  }

  void async_roll(roll_request request, roll_handler handler) override {
    submit(pg::roll_job{std::move(request), std::move(handler)});
  }

  void async_set_rate_limit(token_ref ref, std::optional<core::rate_limit> limit,
                            remove_handler handler) override {
    submit(pg::set_rate_limit_job{ref, limit, std::move(handler)});
  }

  void async_record_uses(std::vector<key_use> uses, write_handler handler) override {
    submit(pg::record_uses_job{std::move(uses), std::move(handler)});
  }

  void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) override {
    submit(pg::remove_expired_job{cutoff, limit, std::move(handler)});
  }

  // Ready while a pool connection is up and the revocation listener is connected and polling. Both
  // follow the database within moments: idle sockets are watched (a server that stops or restarts
  // closes them), and the listener's poll fails within command_timeout when the server stops
  // answering without closing anything (a network partition).
  [[nodiscard]] bool ready() const noexcept override {
    return !lifecycle_.closing() && connected_.load(std::memory_order_acquire) > 0 &&
           listening_.load(std::memory_order_acquire);
  }

  [[nodiscard]] boost::system::result<bool> empty() override {
    auto promise = std::make_shared<std::promise<boost::system::result<bool>>>();
    auto future = promise->get_future();
    submit(pg::empty_job{[promise](boost::system::result<bool> r) { promise->set_value(r); }});
    if (future.wait_for(options_.start_timeout) != std::future_status::ready) {
      return boost::system::result<bool>(boost::system::in_place_error, error(core::errc::unavailable));
    }
    return future.get();
  }

  [[nodiscard]] store_stats stats() const override {
    return counters_.snapshot(pending_.load(std::memory_order_relaxed));
  }

  [[nodiscard]] bool shared() const noexcept override { return true; }

  void on_revoked(std::function<void(const core::key_digest&)> callback) override {
    listener_.on_revoked(std::move(callback));
  }

  // Sent from the storage thread (share()), which builds the payloads.
  void async_share_admits(std::vector<admitted_requests> counts, write_handler handler) override {
    const bool open = lifecycle_.while_open([&] {
      net::post(ioc_, [this, counts = std::move(counts), handler = std::move(handler)]() mutable {
        share(counts, std::move(handler));
      });
    });
    if (!open) handler(error(core::errc::unavailable));
  }

  void on_peer_admits(peer_admits_handler callback) override {
    listener_.on_peer_admits(std::move(callback));
  }

  void close() override {
    lifecycle_.close([this] {
      if (thread_.joinable()) {
        // Let the pool finish what is queued and in flight, within a deadline (a hung database must
        // not hang shutdown), then stop the thread.
        auto stopped = std::make_shared<std::promise<void>>();
        auto future = stopped->get_future();
        net::post(ioc_, [this, stopped] { begin_stop(stopped); });
        (void)future.wait_for(options_.start_timeout);
        work_.reset();
        ioc_.stop();
        thread_.join();
      }
      // Only after a forced stop is anything left; no storage thread remains, so refuse it here.
      queue_.fail_all(core::errc::unavailable);
      for (auto& w : workers_) w->conn.close();
      listener_.close();
      init_conn_.close();
      connected_.store(0, std::memory_order_release);
      listening_.store(false, std::memory_order_release);
    });
  }

 private:
  [[nodiscard]] static postgres_options sanitized(postgres_options o) {
    o.connections = std::max<std::size_t>(o.connections, 1);
    o.max_batch = std::max<std::size_t>(o.max_batch, 1);
    return o;
  }

  // ---- submission (any thread) ----

  void submit(job j) {
    const bool open = lifecycle_.while_open([&] {
      if (pending_.fetch_add(1, std::memory_order_relaxed) >= options_.max_queue) {
        pending_.fetch_sub(1, std::memory_order_relaxed);
        net::post(ioc_, [j = std::move(j)]() mutable { pg::fail(j, core::errc::overloaded); });
        return;
      }
      net::post(ioc_, [this, j = std::move(j)]() mutable { enqueue(std::move(j)); });
    });
    if (!open) pg::fail(j, core::errc::unavailable);
  }

  // ---- the storage thread from here on ----

  void enqueue(job j) {
    if (connected_.load(std::memory_order_relaxed) == 0) {
      // Database unreachable: refuse now rather than hold the request until it comes back.
      pending_.fetch_sub(1, std::memory_order_relaxed);
      pg::fail(j, core::errc::unavailable);
      return;
    }
    queue_.push(std::move(j));
    wake_.cancel_one();
  }

  void fail_queued() {
    pending_.fetch_sub(queue_.size(), std::memory_order_relaxed);
    queue_.fail_all(core::errc::unavailable);
  }

  // Counts that waited (the previous call had more than it could send) go out first; the answer
  // also says whether this process hears the others' counts, even when there was nothing to send.
  void share(const std::vector<admitted_requests>& counts, write_handler handler) {
    std::vector<std::string> payloads = outbox_.take(counts);
    if (outbox_.dropped() > dropped_reported_) {
      log(false, "PostgreSQL store: rate-limit counts of " +
                     std::to_string(outbox_.dropped() - dropped_reported_) +
                     " keys were not shared: more keys than the sharing interval can carry");
      dropped_reported_ = outbox_.dropped();
    }
    if (payloads.empty()) {
      try {
        handler(hearing());
      } catch (...) {  // NOLINT(bugprone-empty-catch): as any handler's: the storage thread goes on
      }
      return;
    }
    submit(pg::share_admits_job{std::move(payloads), [this, handler = std::move(handler)](error_code e) {
                                  handler(e ? e : hearing());
                                }});
  }

  [[nodiscard]] error_code hearing() const noexcept {
    return listening_.load(std::memory_order_acquire) ? error_code{} : error(core::errc::unavailable);
  }

  // The listener's session is up and its last poll succeeded: the store hears revocations.
  void set_listening(bool up) {
    {
      const std::lock_guard lock(state_mutex_);
      listening_.store(up, std::memory_order_release);
    }
    state_cv_.notify_all();
  }

  void set_connected(int delta) {
    {
      const std::lock_guard lock(state_mutex_);
      connected_.fetch_add(delta, std::memory_order_acq_rel);
    }
    state_cv_.notify_all();
  }

  net::awaitable<void> initialize(std::shared_ptr<std::promise<std::string>> done) {
    if (!co_await init_conn_.connect(options_.conninfo, options_.connect_timeout)) {
      done->set_value("cannot connect: " + init_conn_.last_error());
      co_return;
    }
    const std::string schema = names_.quoted_schema();
    const std::string script = "BEGIN; SELECT pg_advisory_xact_lock(" + std::string(schema_lock) +
                               "); CREATE SCHEMA IF NOT EXISTS " + schema + "; SET LOCAL search_path TO " +
                               schema + ";\n" + std::string(postgres_schema_sql()) + "\nCOMMIT;";
    auto r = co_await init_conn_.exec(script);
    if (!r.ok()) {
      done->set_value("cannot create the schema: " + r.error);
      init_conn_.close();
      co_return;
    }
    // A fresh process has an empty cache: older revocations concern nothing it holds.
    r = co_await init_conn_.exec("SELECT coalesce(max(seq), 0) FROM " + names_.table("tokend_revocations"));
    std::uint64_t last_seq = 0;
    if (!r.ok() || r.rows() != 1 || !pg::parse_integer(r.cell(0, 0), last_seq)) {
      done->set_value("cannot read the revocations table: " + r.error);
      init_conn_.close();
      co_return;
    }
    listener_.start_after(last_seq);
    init_conn_.close();
    done->set_value({});
  }

  void log(bool is_error, const std::string& message) const noexcept {
    pg::report(options_, is_error, message);
  }

  // ---- the pool ----

  net::awaitable<void> work(std::size_t index) {
    pg::worker& w = *workers_[index];
    while (!stopping_) {
      bool up = false;
      try {
        up = co_await w.connect();
      } catch (const std::exception& e) {
        log(true, std::string("PostgreSQL store: connecting failed with an exception: ") + e.what());
      } catch (...) {
        log(true, "PostgreSQL store: connecting failed with an unknown exception");
      }
      if (!up) {
        w.conn.close();
        if (!stopping_) co_await w.backoff.wait();  // a shutdown cancelled this attempt: no wait
        continue;
      }
      w.backoff.reset();
      set_connected(+1);
      try {
        co_await serve(index);
      } catch (const std::exception& e) {  // serve() answers its batch itself; this keeps the worker
        log(true, std::string("PostgreSQL store: a storage worker failed: ") + e.what());
      } catch (...) {
        log(true, "PostgreSQL store: a storage worker failed with an unknown exception");
      }
      w.busy = false;
      w.conn.close();
      set_connected(-1);
      if (connected_.load() == 0) {
        fail_queued();
      } else if (!queue_.empty()) {
        wake_.cancel_one();  // a wake-up this worker took is passed on
      }
    }
    if (--running_ == 0) finish_stop();
  }

  // Waits for work on an idle session, watching its socket meanwhile: a server that ends the
  // session (stopped, restarted, the backend terminated) is noticed at once, so readiness follows
  // the database rather than the next request. False when the session is gone.
  [[nodiscard]] net::awaitable<bool> idle(std::size_t index) {
    using namespace net::experimental::awaitable_operators;
    pg::worker& w = *workers_[index];
    const auto woke = co_await (wake_.async_wait(net::as_tuple(net::use_awaitable)) || w.conn.idle_input());
    co_return woke.index() == 0 || std::get<1>(woke);
  }

  // Runs batches on one established session until it breaks, or the store stops with nothing queued.
  net::awaitable<void> serve(std::size_t index) {
    pg::worker& w = *workers_[index];
    while (!(stopping_ && queue_.empty())) {
      if (queue_.empty()) {
        if (!co_await idle(index)) co_return;
        continue;
      }
      if (!w.conn.alive()) co_return;  // terminated while idle: reconnect before taking work
      w.batch = queue_.take(options_.max_batch);
      pending_.fetch_sub(w.batch.size(), std::memory_order_relaxed);
      if (w.batch.empty()) {  // only creates wait, behind the batch in flight
        if (!co_await idle(index)) co_return;
        continue;
      }
      const bool creates = std::holds_alternative<pg::create_job>(w.batch.front());
      w.busy = true;
      bool failed = false;
      // The exception boundary: whatever throws (an allocation, a caller's handler), the jobs of the
      // batch not yet answered fail with unavailable, the create slot is released, and the session
      // is replaced unless it is between commands; the worker itself goes on.
      try {
        co_await w.run();
      } catch (const std::exception& e) {
        failed = true;
        log(true, std::string("PostgreSQL store: a batch failed with an exception: ") + e.what());
      } catch (...) {
        failed = true;
        log(true, "PostgreSQL store: a batch failed with an unknown exception");
      }
      w.busy = false;
      if (failed) fail_unanswered(w.batch);
      w.batch.clear();
      if (creates) {
        queue_.create_batch_done();
        wake_.cancel_one();  // the next create batch may go, on whichever connection is idle
      }
      if (failed ? !w.conn.between_commands() : !w.conn.ok()) co_return;
    }
  }

  static void fail_unanswered(std::vector<job>& batch) noexcept {
    for (auto& j : batch) {
      try {
        pg::fail(j, core::errc::unavailable);
      } catch (...) {  // NOLINT(bugprone-empty-catch): a handler threw again: answered as far as it can be
      }
    }
  }

  net::awaitable<void> listen() {
    co_await listener_.run();
    listener_done_ = true;
    if (running_ == 0) finish_stop();
  }

  // ---- shutdown ----

  void begin_stop(std::shared_ptr<std::promise<void>> stopped) {
    stopping_ = true;
    stopped_ = std::move(stopped);
    wake_.cancel();  // idle workers see stopping_ and an empty queue
    for (auto& w : workers_) {
      if (!w->busy) {
        w->conn.cancel();
        w->backoff.cancel();
      }
    }
    listener_.stop();
    finish_stop();
  }

  void finish_stop() {
    if (stopped_ && running_ == 0 && listener_done_) {
      stopped_->set_value();
      stopped_.reset();
    }
  }

  const postgres_options options_;
  const postgres_names names_;
  const std::uint64_t sender_ = pg::random_sender_id();  // this process among those sharing counts
  net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
  batch_counters counters_;

  // Storage thread only.
  net::steady_timer wake_;  // never expires: cancel_one() wakes an idle worker
  pg::job_queue queue_;
  std::vector<std::unique_ptr<pg::worker>> workers_;
  std::size_t running_ = 0;  // worker coroutines not yet finished
  pg::connection init_conn_;
  pg::revocation_listener listener_;
  bool stopping_ = false;
  bool listener_done_ = true;  // until the listener is spawned
  std::shared_ptr<std::promise<void>> stopped_;
  pg::admits_outbox outbox_{sender_};
  std::uint64_t dropped_reported_ = 0;  // keys whose counts outbox_ dropped, already logged

  store_lifecycle lifecycle_;
  std::mutex state_mutex_;
  std::condition_variable state_cv_;

  std::atomic<int> connected_{0};
  std::atomic<bool> listening_{false};
  std::atomic<std::uint64_t> pending_{0};
};

}  // namespace

std::unique_ptr<token_store> open_postgres_store(const postgres_options& options) {
  auto store = std::make_unique<postgres_store>(options);
  store->start();  // on failure the unique_ptr closes the half-started store
  return store;
}

}  // namespace tokend::storage
