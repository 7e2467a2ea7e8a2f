// The PostgreSQL store's pool on the storage thread: each worker's connect-serve loop, its exception
// boundary, and the shutdown that lets the pool and the listener finish.
#include "storage/postgres_store_impl.hpp"

#include "core/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>

namespace tokend::storage {
namespace {

namespace net = boost::asio;
using pg::job;

}  // namespace

net::awaitable<void> postgres_store::work(std::size_t index) {
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
net::awaitable<bool> postgres_store::idle(std::size_t index) {
  using namespace net::experimental::awaitable_operators;
  pg::worker& w = *workers_[index];
  const auto woke = co_await (wake_.async_wait(net::as_tuple(net::use_awaitable)) || w.conn.idle_input());
  co_return woke.index() == 0 || std::get<1>(woke);
}

// Runs batches on one established session until it breaks, or the store stops with nothing queued.
net::awaitable<void> postgres_store::serve(std::size_t index) {
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

void postgres_store::fail_unanswered(std::vector<job>& batch) noexcept {
  for (auto& j : batch) {
    try {
      pg::fail(j, core::errc::unavailable);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a handler threw again: answered as far as it can be
    }
  }
}

net::awaitable<void> postgres_store::listen() {
  co_await listener_.run();
  listener_done_ = true;
  if (running_ == 0) finish_stop();
}

void postgres_store::begin_stop(std::shared_ptr<std::promise<void>> stopped) {
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

void postgres_store::finish_stop() {
  if (stopped_ && running_ == 0 && listener_done_) {
    stopped_->set_value();
    stopped_.reset();
  }
}

}  // namespace tokend::storage
