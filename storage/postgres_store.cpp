// The PostgreSQL token store. One storage thread runs an io_context that drives every libpq
// connection through its socket: a pool of command connections (postgres_worker) taking batches
// of jobs (postgres_jobs) from one queue, and the revocation listener (postgres_listener), which
// also hears the rate-limit counts other processes share (postgres_admits). Nothing here runs on
// an io thread but the hand-offs in submit() and async_share_admits().
#include "storage/postgres_store_impl.hpp"

#include "core/error.hpp"
#include "storage/postgres_session.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <future>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using boost::system::error_code;
using pg::job;
using clock = std::chrono::steady_clock;

[[nodiscard]] error_code error(core::errc e) noexcept { return core::make_error_code(e); }

}  // namespace

postgres_store::postgres_store(const postgres_options& options)
    : options_(sanitized(options)),
      names_(options_.schema),
      work_(net::make_work_guard(ioc_)),
      wake_(ioc_, clock::time_point::max()),
      init_conn_(ioc_),
      listener_(ioc_, options_, names_, sender_, [this](bool up) { set_listening(up); }) {
  for (std::size_t i = 0; i < options_.connections; ++i)
    workers_.push_back(std::make_unique<pg::worker>(ioc_, options_, names_, counters_, default_max_tokens_));
}

// NOLINTNEXTLINE(bugprone-exception-escape): close() throws only if it cannot allocate: terminate
postgres_store::~postgres_store() { close(); }

void postgres_store::async_lookup(const core::key_digest& digest, lookup_handler handler) {
  submit(pg::lookup_job{digest, std::move(handler)});
}

void postgres_store::async_create(core::token_record record, create_handler handler) {
  submit(pg::create_job{std::move(record), std::move(handler)});
}

void postgres_store::async_list(core::user_id owner, std::size_t offset, std::size_t limit,
                                list_handler handler) {
  submit(pg::list_job{owner, offset, limit, std::move(handler)});
}

void postgres_store::async_list_after(core::user_id owner, std::uint64_t after_id, std::size_t limit,
                                      list_handler handler) {
  submit(pg::list_after_job{owner, after_id, limit, std::move(handler)});
}

void postgres_store::async_quota(core::user_id owner, quota_handler handler) {
  submit(pg::quota_job{owner, std::move(handler)});
}

void postgres_store::async_set_max_tokens(core::user_id owner, std::optional<std::uint64_t> max_tokens,
                                          quota_handler handler) {
  submit(pg::set_max_tokens_job{owner, max_tokens, std::move(handler)});
}

void postgres_store::set_default_max_tokens(std::uint64_t max_tokens) {
  default_max_tokens_.store(max_tokens, std::memory_order_relaxed);
}

void postgres_store::async_remove(token_ref ref, remove_handler handler) {
  submit(pg::remove_job{ref, std::move(handler)});
}

void postgres_store::async_roll(roll_request request, roll_handler handler) {
  submit(pg::roll_job{std::move(request), std::move(handler)});
}

void postgres_store::async_set_rate_limit(token_ref ref, std::optional<core::rate_limit> limit,
                                          remove_handler handler) {
  submit(pg::set_rate_limit_job{ref, limit, std::move(handler)});
}

void postgres_store::async_record_uses(std::vector<key_use> uses, write_handler handler) {
  submit(pg::record_uses_job{std::move(uses), std::move(handler)});
}

void postgres_store::async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) {
  submit(pg::remove_expired_job{cutoff, limit, std::move(handler)});
}

// Ready while a pool connection is up and the revocation listener is connected and polling. Both
// follow the database within moments: idle sockets are watched (a server that stops or restarts
// closes them), and the listener's poll fails within command_timeout when the server stops
// answering without closing anything (a network partition).
bool postgres_store::ready() const noexcept {
  return !lifecycle_.closing() && connected_.load(std::memory_order_acquire) > 0 &&
         listening_.load(std::memory_order_acquire);
}

boost::system::result<bool> postgres_store::empty() {
  auto promise = std::make_shared<std::promise<boost::system::result<bool>>>();
  auto future = promise->get_future();
  submit(pg::empty_job{[promise](boost::system::result<bool> r) { promise->set_value(r); }});
  if (future.wait_for(options_.start_timeout) != std::future_status::ready) {
    return boost::system::result<bool>(boost::system::in_place_error, error(core::errc::unavailable));
  }
  return future.get();
}

store_stats postgres_store::stats() const {
  return counters_.snapshot(pending_.load(std::memory_order_relaxed));
}

void postgres_store::on_revoked(std::function<void(const core::key_digest&)> callback) {
  listener_.on_revoked(std::move(callback));
}

void postgres_store::on_peer_admits(peer_admits_handler callback) {
  listener_.on_peer_admits(std::move(callback));
}

void postgres_store::close() {
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

postgres_options postgres_store::sanitized(postgres_options o) {
  o.connections = std::max<std::size_t>(o.connections, 1);
  o.max_batch = std::max<std::size_t>(o.max_batch, 1);
  return o;
}

void postgres_store::submit(job j) {
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

void postgres_store::enqueue(job j) {
  if (connected_.load(std::memory_order_relaxed) == 0) {
    // Database unreachable: refuse now rather than hold the request until it comes back.
    pending_.fetch_sub(1, std::memory_order_relaxed);
    pg::fail(j, core::errc::unavailable);
    return;
  }
  queue_.push(std::move(j));
  wake_.cancel_one();
}

void postgres_store::fail_queued() {
  pending_.fetch_sub(queue_.size(), std::memory_order_relaxed);
  queue_.fail_all(core::errc::unavailable);
}

// The listener's session is up and its last poll succeeded: the store hears revocations.
void postgres_store::set_listening(bool up) {
  {
    const std::lock_guard lock(state_mutex_);
    listening_.store(up, std::memory_order_release);
  }
  state_cv_.notify_all();
}

void postgres_store::set_connected(int delta) {
  {
    const std::lock_guard lock(state_mutex_);
    connected_.fetch_add(delta, std::memory_order_acq_rel);
  }
  state_cv_.notify_all();
}

void postgres_store::log(bool is_error, const std::string& message) const noexcept {
  pg::report(options_, is_error, message);
}

std::unique_ptr<token_store> open_postgres_store(const postgres_options& options) {
  auto store = std::make_unique<postgres_store>(options);
  store->start();  // on failure the unique_ptr closes the half-started store
  return store;
}

}  // namespace tokend::storage
