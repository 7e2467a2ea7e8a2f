// The PostgreSQL token store. One storage thread runs an io_context that drives every libpq
// connection through its socket: a pool of command connections taking work from one queue (creates
// and lookups batched into one statement each), and one connection that LISTENs for revocations and
// polls the revocations table. Nothing here runs on an io thread but the hand-off in submit().
#include "storage/postgres_store.hpp"

#include "core/error.hpp"
#include "storage/pg_connection.hpp"
#include "storage/pg_text.hpp"
#include "storage/postgres_schema.hpp"

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
#include <bit>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

[[nodiscard]] std::size_t batch_bucket(std::size_t n) noexcept {
  return std::min<std::size_t>(std::bit_width(n > 0 ? n - 1 : 0), batch_size_buckets - 1);
}

// Reconnection backoff: quick first retries (a restart takes about a second), capped so that a
// database that stays down is not hammered.
constexpr auto backoff_first = 50ms;
constexpr auto backoff_max = 2000ms;
// Sequence values are taken before commit, so a revocation can become visible after one with a
// higher seq: the poll re-reads revocations this recent below its high-water mark as well.
constexpr const char* late_commit_window = "10 seconds";
constexpr std::size_t catch_up_rows = 10000;
// Two processes starting together run the schema script one after the other.
constexpr const char* schema_lock = "7726150894436640359";

enum class job_kind { lookup, create, remove, list, empty };

struct job {
  job_kind kind;
  core::token_record record;  // create: the record; lookup and remove: digest (and owner)
  std::size_t offset = 0;
  std::size_t limit = 0;
  token_store::lookup_handler on_lookup;
  token_store::write_handler on_write;
  token_store::list_handler on_list;
  std::function<void(boost::system::result<bool>)> on_empty;
};

// Calls a job's handler, emptied first: the worker's exception boundary can then tell which jobs
// still wait for an answer, and no job is ever answered twice.
template <class Handler, class Value>
void answer(Handler& handler, Value&& value) {
  Handler h = std::move(handler);
  handler = nullptr;
  h(std::forward<Value>(value));
}

[[nodiscard]] bool answered(const job& j) noexcept {
  switch (j.kind) {
    case job_kind::lookup:
      return !j.on_lookup;
    case job_kind::create:
    case job_kind::remove:
      return !j.on_write;
    case job_kind::list:
      return !j.on_list;
    case job_kind::empty:
      return !j.on_empty;
  }
  return true;
}

// Answers a job with an error, unless it has been answered already.
void fail(job& j, core::errc e) {
  if (answered(j)) return;
  switch (j.kind) {
    case job_kind::lookup:
      answer(j.on_lookup, error(e));
      break;
    case job_kind::create:
    case job_kind::remove:
      answer(j.on_write, error(e));
      break;
    case job_kind::list:
      answer(j.on_list, error(e));
      break;
    case job_kind::empty:
      answer(j.on_empty, boost::system::result<bool>(boost::system::in_place_error, error(e)));
      break;
  }
}

[[nodiscard]] bool storable(const core::token_record& r) noexcept {
  // PostgreSQL text cannot hold NUL (valid UTF-8, so a description may contain it).
  const auto clean = [](const std::string& s) { return s.find('\0') == std::string::npos; };
  return clean(r.display_prefix) && clean(r.description) && clean(r.type);
}

class postgres_store final : public token_store {
 public:
  explicit postgres_store(const postgres_options& options)
      : options_(sanitized(options)),
        work_(net::make_work_guard(ioc_)),
        wake_(ioc_, clock::time_point::max()),
        init_conn_(ioc_),
        listen_conn_(ioc_),
        listen_backoff_(ioc_) {
    listen_conn_.set_command_timeout(
        options_.command_timeout);  // its polls; waits for NOTIFY are not commands
    const std::string s = options_.schema;
    channel_ = s + ".tokend_revoked";
    for (std::size_t i = 0; i < options_.connections; ++i)
      workers_.push_back(std::make_unique<worker>(ioc_, options_.command_timeout));
  }

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
      for (auto& w : workers_) net::co_spawn(ioc_, work(*w), net::detached);
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
    job j{job_kind::lookup, {}, 0, 0, std::move(handler), {}, {}, {}};
    j.record.digest = digest;
    submit(std::move(j));
  }

  void async_create(core::token_record record, write_handler handler) override {
    submit(job{job_kind::create, std::move(record), 0, 0, {}, std::move(handler), {}, {}});
  }

  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    job j{job_kind::list, {}, offset, limit, {}, {}, std::move(handler), {}};
    j.record.owner = owner;
    submit(std::move(j));
  }

  void async_remove(core::user_id owner, const core::key_digest& digest, write_handler handler) override {
    job j{job_kind::remove, {}, 0, 0, {}, std::move(handler), {}, {}};
    j.record.owner = owner;
    j.record.digest = digest;
    submit(std::move(j));
  }

  // Ready while a pool connection is up and the revocation listener is connected and polling. Both
  // follow the database within moments: idle sockets are watched (a server that stops or restarts
  // closes them), and the listener's poll fails within command_timeout when the server stops
  // answering without closing anything (a network partition).
  [[nodiscard]] bool ready() const noexcept override {
    return !closing_.load(std::memory_order_acquire) && connected_.load(std::memory_order_acquire) > 0 &&
           listening_.load(std::memory_order_acquire);
  }

  [[nodiscard]] boost::system::result<bool> empty() override {
    auto promise = std::make_shared<std::promise<boost::system::result<bool>>>();
    auto future = promise->get_future();
    submit(job{job_kind::empty, {}, 0, 0, {}, {}, {}, [promise](boost::system::result<bool> r) {
                 promise->set_value(r);
               }});
    if (future.wait_for(options_.start_timeout) != std::future_status::ready) {
      return boost::system::result<bool>(boost::system::in_place_error, error(core::errc::unavailable));
    }
    return future.get();
  }

  [[nodiscard]] store_stats stats() const override {
    store_stats s;
    s.queue_depth = pending_.load(std::memory_order_relaxed);
    s.batches = batches_.load(std::memory_order_relaxed);
    s.batched_writes = batched_writes_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < batch_size_buckets; ++i) {
      s.batch_size_counts[i] = batch_size_counts_[i].load(std::memory_order_relaxed);
    }
    s.write_failures = write_failures_.load(std::memory_order_relaxed);
    return s;
  }

  [[nodiscard]] bool shared() const noexcept override { return true; }

  void on_revoked(std::function<void(const core::key_digest&)> callback) override {
    const std::lock_guard lock(revoked_mutex_);
    revoked_ = std::move(callback);
  }

  void close() override {
    const std::lock_guard serial(close_mutex_);
    {
      const std::unique_lock lifecycle(lifecycle_mutex_);
      if (closed_) return;
      closed_ = true;
    }
    closing_.store(true, std::memory_order_release);
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
    for (auto& j : queue_) fail(j, core::errc::unavailable);
    queue_.clear();
    for (auto& w : workers_) w->conn.close();
    listen_conn_.close();
    init_conn_.close();
    connected_.store(0, std::memory_order_release);
    listening_.store(false, std::memory_order_release);
  }

 private:
  struct worker {
    worker(net::io_context& ioc, std::chrono::milliseconds command_timeout) : conn(ioc), backoff(ioc) {
      conn.set_command_timeout(command_timeout);
    }
    pg::connection conn;
    net::steady_timer backoff;
    bool busy = false;  // running a command: shutdown lets it finish
  };

  [[nodiscard]] static postgres_options sanitized(postgres_options o) {
    o.connections = std::max<std::size_t>(o.connections, 1);
    o.max_batch = std::max<std::size_t>(o.max_batch, 1);
    if (const std::string problem = postgres_schema_problem(o.schema); !problem.empty()) {
      throw std::runtime_error("invalid PostgreSQL schema name: " + problem);
    }
    return o;
  }

  // Every identifier pasted into SQL is quoted: the schema name may be a reserved word, or anything.
  [[nodiscard]] std::string table(const char* name) const {
    return pg::quote_identifier(options_.schema) + "." + name;
  }

  // ---- submission (any thread) ----

  void submit(job j) {
    std::shared_lock lifecycle(lifecycle_mutex_);
    if (closed_) {
      lifecycle.unlock();
      fail(j, core::errc::unavailable);
      return;
    }
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= options_.max_queue) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      net::post(ioc_, [j = std::move(j)]() mutable { fail(j, core::errc::overloaded); });
      return;
    }
    net::post(ioc_, [this, j = std::move(j)]() mutable { enqueue(std::move(j)); });
  }

  // ---- the storage thread from here on ----

  void enqueue(job j) {
    if (connected_.load(std::memory_order_relaxed) == 0) {
      // Database unreachable: refuse now rather than hold the request until it comes back.
      pending_.fetch_sub(1, std::memory_order_relaxed);
      fail(j, core::errc::unavailable);
      return;
    }
    queue_.push_back(std::move(j));
    wake_.cancel_one();
  }

  void fail_queued() {
    pending_.fetch_sub(queue_.size(), std::memory_order_relaxed);
    std::deque<job> failed;
    failed.swap(queue_);
    for (auto& j : failed) fail(j, core::errc::unavailable);
  }

  // The first job that may run now, and with it every queued job of the same kind that shares its
  // statement. Empty when only creates wait and a create batch is in flight: creates commit one
  // batch at a time, so tokens list in the order their creates were submitted (as with RocksDB's
  // single writer), and the batch grows while the previous one commits.
  [[nodiscard]] std::vector<job> take() {
    std::vector<job> batch;
    auto first = queue_.begin();
    while (first != queue_.end() && first->kind == job_kind::create && create_in_flight_) ++first;
    if (first == queue_.end()) return batch;
    const job_kind kind = first->kind;
    const bool batches = kind == job_kind::create || kind == job_kind::lookup;
    for (auto it = first; it != queue_.end() && batch.size() < options_.max_batch;) {
      if (it->kind == kind) {
        batch.push_back(std::move(*it));
        it = queue_.erase(it);
        if (!batches) break;
      } else {
        ++it;
      }
    }
    pending_.fetch_sub(batch.size(), std::memory_order_relaxed);
    if (kind == job_kind::create) create_in_flight_ = true;
    return batch;
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
    const std::string schema = pg::quote_identifier(options_.schema);
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
    r = co_await init_conn_.exec("SELECT coalesce(max(seq), 0) FROM " + table("tokend_revocations"));
    if (!r.ok() || r.rows() != 1 || !pg::parse_integer(r.cell(0, 0), last_seq_)) {
      done->set_value("cannot read the revocations table: " + r.error);
      init_conn_.close();
      co_return;
    }
    init_conn_.close();
    done->set_value({});
  }

  [[nodiscard]] net::awaitable<bool> prepare_statements(pg::connection& c) {
    const std::string tokens = table("tokend_tokens");
    // A vector, not an array: GCC 12 cannot put an array initialiser in a coroutine frame.
    const std::vector<std::pair<const char*, std::string>> statements{
        {"lookup", "SELECT encode(digest, 'hex'), owner FROM " + tokens + " WHERE digest = ANY($1::bytea[])"},
        // ON CONFLICT: a digest already there fails only its own create (RETURNING omits it).
        {"create", "INSERT INTO " + tokens +
                       " (digest, display_prefix, description, type, created_at, owner)"
                       " SELECT d, p, s, t, c, o FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[],"
                       " $5::bigint[], $6::bigint[]) WITH ORDINALITY AS u(d, p, s, t, c, o, n) ORDER BY n"
                       " ON CONFLICT (digest) DO NOTHING RETURNING encode(digest, 'hex')"},
        // One statement, so one transaction: the row goes, the revocation is recorded and every
        // listener is notified at commit, or none of it happens.
        {"remove", "WITH gone AS (DELETE FROM " + tokens +
                       " WHERE digest = $1::bytea AND owner = $2 RETURNING digest),"
                       " revoked AS (INSERT INTO " +
                       table("tokend_revocations") +
                       " (digest) SELECT digest FROM gone RETURNING seq, digest)"
                       " SELECT pg_notify($3, seq::text || ':' || encode(digest, 'hex')) FROM revoked"},
        {"list", "SELECT encode(digest, 'hex'), display_prefix, description, type, created_at, owner FROM " +
                     tokens + " WHERE owner = $1 ORDER BY id OFFSET $2 LIMIT $3"},
        {"empty", "SELECT NOT EXISTS (SELECT 1 FROM " + tokens + ")"},
    };
    co_return (co_await c.prepare_all(statements)).ok();
  }

  [[nodiscard]] net::awaitable<void> sleep(net::steady_timer& timer, std::chrono::milliseconds& backoff) {
    timer.expires_after(backoff);
    (void)co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, backoff_max);
  }

  net::awaitable<void> work(worker& w) {
    std::chrono::milliseconds backoff = backoff_first;
    while (!stopping_) {
      bool up = false;
      try {
        up = co_await w.conn.connect(options_.conninfo, options_.connect_timeout) &&
             co_await prepare_statements(w.conn);
      } catch (const std::exception& e) {
        log(true, std::string("PostgreSQL store: connecting failed with an exception: ") + e.what());
      } catch (...) {
        log(true, "PostgreSQL store: connecting failed with an unknown exception");
      }
      if (!up) {
        w.conn.close();
        if (!stopping_) co_await sleep(w.backoff, backoff);  // a shutdown cancelled this attempt: no wait
        continue;
      }
      backoff = backoff_first;
      set_connected(+1);
      try {
        co_await serve(w);
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
  [[nodiscard]] net::awaitable<bool> idle(worker& w) {
    using namespace net::experimental::awaitable_operators;
    const auto woke = co_await (wake_.async_wait(net::as_tuple(net::use_awaitable)) || w.conn.idle_input());
    co_return woke.index() == 0 || std::get<1>(woke);
  }

  // Runs batches on one established session until it breaks, or the store stops with nothing queued.
  net::awaitable<void> serve(worker& w) {
    while (!(stopping_ && queue_.empty())) {
      if (queue_.empty()) {
        if (!co_await idle(w)) co_return;
        continue;
      }
      if (!w.conn.alive()) co_return;  // terminated while idle: reconnect before taking work
      std::vector<job> batch = take();
      if (batch.empty()) {  // only creates wait, behind the batch in flight
        if (!co_await idle(w)) co_return;
        continue;
      }
      const bool creates = batch.front().kind == job_kind::create;
      w.busy = true;
      bool failed = false;
      // The exception boundary: whatever throws (an allocation, a caller's handler), the jobs of the
      // batch not yet answered fail with unavailable, the create slot is released, and the session
      // is replaced unless it is between commands; the worker itself goes on.
      try {
        co_await run(w.conn, batch);
      } catch (const std::exception& e) {
        failed = true;
        log(true, std::string("PostgreSQL store: a batch failed with an exception: ") + e.what());
      } catch (...) {
        failed = true;
        log(true, "PostgreSQL store: a batch failed with an unknown exception");
      }
      w.busy = false;
      if (failed) fail_unanswered(batch);
      if (creates) {
        create_in_flight_ = false;
        wake_.cancel_one();  // the next create batch may go, on whichever connection is idle
      }
      if (failed ? !w.conn.between_commands() : !w.conn.ok()) co_return;
    }
  }

  void fail_unanswered(std::vector<job>& batch) noexcept {
    for (auto& j : batch) {
      try {
        fail(j, core::errc::unavailable);
      } catch (...) {  // a handler that throws again: its job is answered as far as it can be
      }
    }
  }

  void log(bool is_error, const std::string& message) const noexcept {
    try {
      if (options_.log) options_.log(is_error, message);
    } catch (...) {
    }
  }

  net::awaitable<void> run(pg::connection& c, std::vector<job>& batch) {
    switch (batch.front().kind) {
      case job_kind::lookup:
        co_await run_lookups(c, batch);
        break;
      case job_kind::create:
        co_await run_creates(c, batch);
        break;
      case job_kind::remove:
        co_await run_remove(c, batch.front());
        break;
      case job_kind::list:
        co_await run_list(c, batch.front());
        break;
      case job_kind::empty:
        co_await run_empty(c, batch.front());
        break;
    }
  }

  net::awaitable<void> run_lookups(pg::connection& c, std::vector<job>& batch) {
    pg::array_builder digests;
    for (const auto& j : batch) digests.add(pg::bytea_text(j.record.digest));
    const std::vector<std::string> params{digests.str()};
    const pg::reply r = co_await c.exec_prepared("lookup", params);
    if (!r.ok()) {
      for (auto& j : batch) fail(j, core::errc::unavailable);
      co_return;
    }
    std::unordered_map<core::key_digest, core::user_id, core::key_digest_hash> found;
    for (int row = 0; row < r.rows(); ++row) {
      const auto digest = pg::parse_digest_hex(r.cell(row, 0));
      core::user_id owner = 0;
      if (digest && pg::parse_owner(r.cell(row, 1), owner)) found.emplace(*digest, owner);
    }
    for (auto& j : batch) {
      const auto it = found.find(j.record.digest);
      answer(j.on_lookup,
             it == found.end() ? std::optional<core::user_id>{} : std::optional<core::user_id>{it->second});
    }
  }

  net::awaitable<void> run_creates(pg::connection& c, std::vector<job>& batch) {
    std::vector<error_code> results(batch.size());
    std::unordered_set<core::key_digest, core::key_digest_hash> seen;
    pg::array_builder digests, prefixes, descriptions, types, created, owners;
    std::size_t rows = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const core::token_record& r = batch[i].record;
      if (!storable(r)) {
        results[i] = error(core::errc::bad_request);
        continue;
      }
      // The same digest twice in one batch: a caller bug, and the second must not succeed.
      if (!seen.insert(r.digest).second) {
        results[i] = error(core::errc::internal);
        continue;
      }
      digests.add(pg::bytea_text(r.digest));
      prefixes.add(r.display_prefix);
      descriptions.add(r.description);
      types.add(r.type);
      created.add(std::to_string(r.created_at));
      owners.add(pg::owner_text(r.owner));
      ++rows;
    }
    if (rows > 0) {
      const std::vector<std::string> params{digests.str(), prefixes.str(), descriptions.str(),
                                            types.str(),   created.str(),  owners.str()};
      const pg::reply r = co_await c.exec_prepared("create", params);
      if (!r.ok()) {
        write_failures_.fetch_add(1, std::memory_order_relaxed);
        for (auto& j : batch) answer(j.on_write, error(core::errc::unavailable));
        co_return;
      }
      std::unordered_set<core::key_digest, core::key_digest_hash> inserted;
      for (int row = 0; row < r.rows(); ++row) {
        if (const auto d = pg::parse_digest_hex(r.cell(row, 0))) inserted.insert(*d);
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        // Not inserted although sent: the digest existed already. Never overwritten.
        if (!results[i] && !inserted.contains(batch[i].record.digest))
          results[i] = error(core::errc::internal);
      }
    }
    count_batch(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) answer(batch[i].on_write, results[i]);
  }

  net::awaitable<void> run_remove(pg::connection& c, job& j) {
    const std::vector<std::string> params{pg::bytea_text(j.record.digest), pg::owner_text(j.record.owner),
                                          channel_};
    const pg::reply r = co_await c.exec_prepared("remove", params);
    if (!r.ok()) {
      write_failures_.fetch_add(1, std::memory_order_relaxed);
      answer(j.on_write, error(core::errc::unavailable));
      co_return;
    }
    count_batch(1);
    // Someone else's key is "not found" too: a caller must not learn which keys exist.
    answer(j.on_write, r.rows() == 1 ? error_code{} : error(core::errc::not_found));
  }

  net::awaitable<void> run_list(pg::connection& c, job& j) {
    constexpr std::size_t most = std::size_t{1} << 62;  // bigint range
    const std::size_t limit = std::min(j.limit, most - 1);
    const std::vector<std::string> params{
        pg::owner_text(j.record.owner), std::to_string(std::min(j.offset, most)), std::to_string(limit + 1)};
    const pg::reply r = co_await c.exec_prepared("list", params);
    if (!r.ok()) {
      answer(j.on_list, error(core::errc::unavailable));
      co_return;
    }
    list_page page;
    const std::size_t n = static_cast<std::size_t>(r.rows());
    page.has_more = n > limit;
    page.tokens.reserve(std::min(n, limit));
    for (std::size_t row = 0; row < std::min(n, limit); ++row) {
      const int i = static_cast<int>(row);
      core::token_record t;
      const auto digest = pg::parse_digest_hex(r.cell(i, 0));
      if (!digest || !pg::parse_integer(r.cell(i, 4), t.created_at) ||
          !pg::parse_owner(r.cell(i, 5), t.owner)) {
        answer(j.on_list, error(core::errc::internal));
        co_return;
      }
      t.digest = *digest;
      t.display_prefix = r.cell(i, 1);
      t.description = r.cell(i, 2);
      t.type = r.cell(i, 3);
      page.tokens.push_back(std::move(t));
    }
    answer(j.on_list, std::move(page));
  }

  net::awaitable<void> run_empty(pg::connection& c, job& j) {
    const std::vector<std::string> none;
    const pg::reply r = co_await c.exec_prepared("empty", none);
    if (!r.ok() || r.rows() != 1) {
      fail(j, core::errc::unavailable);
      co_return;
    }
    answer(j.on_empty, r.cell(0, 0) == "t");
  }

  void count_batch(std::size_t n) {
    batches_.fetch_add(1, std::memory_order_relaxed);
    batched_writes_.fetch_add(n, std::memory_order_relaxed);
    batch_size_counts_[batch_bucket(n)].fetch_add(1, std::memory_order_relaxed);
  }

  // ---- revocations: LISTEN for the fast path, polling for what a NOTIFY may miss ----

  void revoke(const core::key_digest& digest) {
    const std::lock_guard lock(revoked_mutex_);
    if (revoked_) revoked_(digest);
  }

  [[nodiscard]] net::awaitable<bool> catch_up() {
    for (;;) {
      // Named, not a braced temporary: GCC 12 cannot keep an initializer_list across a co_await.
      std::vector<std::string> params;
      params.push_back(std::to_string(last_seq_));
      const pg::reply r = co_await listen_conn_.exec_prepared("after", params);
      if (!r.ok()) co_return false;
      for (int row = 0; row < r.rows(); ++row) {
        std::uint64_t seq = 0;
        const auto digest = pg::parse_digest_hex(r.cell(row, 1));
        if (!pg::parse_integer(r.cell(row, 0), seq) || !digest) continue;
        revoke(*digest);
        last_seq_ = std::max(last_seq_, seq);
      }
      if (static_cast<std::size_t>(r.rows()) < catch_up_rows) break;
    }
    std::vector<std::string> params;
    params.push_back(std::to_string(last_seq_));
    const pg::reply late = co_await listen_conn_.exec_prepared("late", params);
    if (!late.ok()) co_return false;
    for (int row = 0; row < late.rows(); ++row) {
      if (const auto digest = pg::parse_digest_hex(late.cell(row, 0))) revoke(*digest);
    }
    co_return true;
  }

  net::awaitable<void> listen() {
    std::chrono::milliseconds backoff = backoff_first;
    while (!stopping_) {
      bool served = false;
      try {
        served = co_await listen_session();
      } catch (const std::exception& e) {  // e.g. from an on_revoked callback: the listener goes on
        log(true, std::string("PostgreSQL store: the revocation listener failed: ") + e.what());
      } catch (...) {
        log(true, "PostgreSQL store: the revocation listener failed with an unknown exception");
      }
      set_listening(false);
      listen_conn_.close();
      if (served) {
        backoff = backoff_first;
      } else if (!stopping_) {
        co_await sleep(listen_backoff_, backoff);
      }
    }
    listener_done_ = true;
    if (running_ == 0) finish_stop();
  }

  // One session of the listener: LISTEN, catch up, then take notifications and poll until the
  // session breaks (the socket is watched, so a server that goes away is noticed at once) or a
  // poll fails. False when it could not be set up (the caller backs off).
  [[nodiscard]] net::awaitable<bool> listen_session() {
    const std::string revocations = table("tokend_revocations");
    const std::string after = "SELECT seq, encode(digest, 'hex') FROM " + revocations +
                              " WHERE seq > $1 ORDER BY seq LIMIT " + std::to_string(catch_up_rows);
    const std::string late = "SELECT encode(digest, 'hex') FROM " + revocations +
                             " WHERE seq <= $1 AND revoked_at > now() - interval '" + late_commit_window +
                             "' LIMIT " + std::to_string(catch_up_rows);
    const bool up = co_await listen_conn_.connect(options_.conninfo, options_.connect_timeout) &&
                    (co_await listen_conn_.exec("LISTEN " + pg::quote_identifier(channel_))).ok() &&
                    (co_await listen_conn_.prepare("after", after)).ok() &&
                    (co_await listen_conn_.prepare("late", late)).ok();
    // Deletes committed while this connection was down notified nobody here: read them now.
    if (!up || !co_await catch_up()) co_return false;
    set_listening(true);
    auto next_poll = clock::now() + options_.revocation_poll;
    bool healthy = true;
    while (healthy && !stopping_) {
      for (const auto& [channel, payload] : listen_conn_.take_notifications()) {
        // "<seq>:<hex digest>"; the seq is not taken as a high-water mark (commits may be out of order).
        const auto colon = payload.find(':');
        if (colon == std::string::npos) continue;
        const auto digest = pg::parse_digest_hex(std::string_view(payload).substr(colon + 1));
        if (digest) revoke(*digest);
      }
      if (clock::now() >= next_poll) {
        healthy = co_await catch_up();
        next_poll = clock::now() + options_.revocation_poll;
        continue;
      }
      healthy = co_await listen_conn_.poll_input(next_poll);
    }
    co_return true;
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
    listen_conn_.cancel();
    listen_backoff_.cancel();
    finish_stop();
  }

  void finish_stop() {
    if (stopped_ && running_ == 0 && listener_done_) {
      stopped_->set_value();
      stopped_.reset();
    }
  }

  const postgres_options options_;
  std::string channel_;
  net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;

  // Storage thread only.
  net::steady_timer wake_;  // never expires: cancel_one() wakes an idle worker
  std::deque<job> queue_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::size_t running_ = 0;  // worker coroutines not yet finished
  pg::connection init_conn_;
  pg::connection listen_conn_;
  net::steady_timer listen_backoff_;
  std::uint64_t last_seq_ = 0;
  bool stopping_ = false;
  bool create_in_flight_ = false;
  bool listener_done_ = true;  // until the listener is spawned
  std::shared_ptr<std::promise<void>> stopped_;

  std::mutex revoked_mutex_;
  std::function<void(const core::key_digest&)> revoked_;

  mutable std::shared_mutex lifecycle_mutex_;
  bool closed_ = false;
  std::mutex close_mutex_;
  std::mutex state_mutex_;
  std::condition_variable state_cv_;

  std::atomic<bool> closing_{false};
  std::atomic<int> connected_{0};
  std::atomic<bool> listening_{false};
  std::atomic<std::uint64_t> pending_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> batched_writes_{0};
  std::array<std::atomic<std::uint64_t>, batch_size_buckets> batch_size_counts_{};
  std::atomic<std::uint64_t> write_failures_{0};
};

}  // namespace

std::string postgres_schema_problem(std::string_view name) {
  // The NOTIFY channel is "<schema>.tokend_revoked"; a longer one is refused by pg_notify (63 bytes).
  constexpr std::size_t longest = 63 - std::string_view(".tokend_revoked").size();
  if (name.empty()) return "empty";
  if (name.size() > longest) return "longer than " + std::to_string(longest) + " bytes";
  if (!std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    return "not printable ASCII";
  }
  if (name.starts_with("pg_")) return "names starting with pg_ are reserved by PostgreSQL";
  return {};
}

std::unique_ptr<token_store> open_postgres_store(const postgres_options& options) {
  auto store = std::make_unique<postgres_store>(options);
  store->start();  // on failure the unique_ptr closes the half-started store
  return store;
}

}  // namespace tokend::storage
