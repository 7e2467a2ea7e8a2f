// Wiring of the service: one io_context per thread (no strands needed: a connection lives on one
// context), listeners on the first, a drain coroutine for graceful stop.
#include "server/app.hpp"

#include "server/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>

namespace tokend::server {
namespace net = boost::asio;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

session_options session_options_of(const config& c) {
  return {c.max_header_bytes, c.max_body_bytes, c.idle_timeout, c.request_timeout};
}

// Probes and scrapes have no body worth more than this.
session_options admin_session_options(const config& c) {
  session_options options = session_options_of(c);
  options.max_body_bytes = 1024;
  return options;
}

std::vector<std::unique_ptr<net::io_context>> make_contexts(std::size_t n) {
  std::vector<std::unique_ptr<net::io_context>> out;
  for (std::size_t i = 0; i < std::max<std::size_t>(n, 1); ++i)
    out.push_back(std::make_unique<net::io_context>(1));
  return out;
}

void log_exception(const std::exception_ptr& e) noexcept { log_failure("connection failed", e); }

}  // namespace

app::app(config cfg, std::unique_ptr<storage::token_store> store)
    : config_(std::move(cfg)),
      responses_(config_.max_response_bytes_in_flight),
      contexts_(make_contexts(config_.threads)),
      store_(std::move(store)),
      service_(*store_, config_.cache_capacity, config_.list_cache_tokens),
      jobs_(*contexts_.front(), service_,
            {config_.last_used_interval, config_.expired_sweep_interval, config_.expired_retention,
             config_.rate_limit_sync_interval}),
      api_endpoint_(
          {session_options_of(config_),
           config_.max_connections,
           config_.access_log,
           {{config_.token_ttl.count(), config_.token_max_ttl.count()}, config_.verify_rate_limited_status}},
          service_, responses_, metrics_, test_hooks_.after_api_handler),
      admin_endpoint_(admin_session_options(config_), config_.admin_max_connections,
                      admin_sources{[this] { return ready(); }, [this] { return metrics_text(); }}, metrics_),
      api_listener_(*contexts_.front(), api_endpoint_, api_connections_, metrics_,
                    [this]() -> net::io_context& { return next_context(); }),
      admin_listener_(*contexts_.front(), admin_endpoint_, admin_connections_, metrics_,
                      [this]() -> net::io_context& { return next_context(); }) {
  // Before any io thread runs: the settings are read by every request without a lock.
  service_.set_rate_limits({config_.rate_limit, steady_nanoseconds});
  service_.set_default_max_tokens(config_.max_tokens_per_user);
}

app::~app() {
  if (!threads_.empty() && !stopped_) {
    request_stop();
    wait();
  }
}

net::io_context& app::next_context() noexcept {
  return *contexts_[next_context_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void app::start(bool handle_signals) {
  api_listener_.listen(config_.listen);
  admin_listener_.listen(config_.admin_listen);
  net::io_context& first = *contexts_.front();
  net::co_spawn(first, api_listener_.accept_loop(), log_exception);
  net::co_spawn(first, admin_listener_.accept_loop(), log_exception);
  net::co_spawn(first, close_expired_loop(), log_exception);
  jobs_.start();
  if (handle_signals) {
    auto signals = std::make_shared<net::signal_set>(first, SIGTERM, SIGINT);
    signals->async_wait([this, signals](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      log::info("signal received, draining", {{"signal", signo}});
      request_stop();
    });
  }
  for (auto& ctx : contexts_) {
    threads_.emplace_back([&ctx] {
      // The guard keeps run() going between connections; wait() stops the context explicitly.
      auto guard = net::make_work_guard(*ctx);
      ctx->run();
    });
  }
}

net::awaitable<void> app::close_expired_loop() {
  // A deadline is overshot by at most one period: a quarter of the shortest timeout, 10-250 ms.
  const auto period = std::clamp<std::chrono::steady_clock::duration>(
      std::min(config_.idle_timeout, config_.request_timeout) / 4, std::chrono::milliseconds(10),
      std::chrono::milliseconds(250));
  net::steady_timer timer(co_await net::this_coro::executor);
  while (!drained_.load(std::memory_order_acquire)) {
    timer.expires_after(period);
    co_await timer.async_wait(use_tuple);
    // A failed sweep (out of memory) is logged and retried next period: ending this loop would
    // leave every deadline, and the drain's idle grace, unenforced.
    try {
      api_connections_.close_expired();
      admin_connections_.close_expired();
    } catch (const std::exception& e) {
      log::error("connection sweep failed", {{"error", e.what()}});
    }
  }
}

void app::request_stop() {
  if (stop_requested_.exchange(true)) return;
  try {
    // The completion handler runs however drain() ends, so wait() is released even if it throws.
    net::co_spawn(*contexts_.front(), drain(), [this](const std::exception_ptr& e) {
      log_failure("drain failed, stopping at once", e);
      drain_finished();
    });
  } catch (...) {
    log_failure("drain failed, stopping at once", std::current_exception());
    drain_finished();
  }
}

void app::drain_finished() noexcept {
  drained_.store(true, std::memory_order_release);
  drained_.notify_all();
}

net::awaitable<void> app::drain() {
  jobs_.stop();  // wait() flushes the last uses, once no request can mark one any more
  // The accept loop closes the listener once it has taken what the kernel already queued.
  api_listener_.begin_close();
  api_connections_.begin_drain(drain_idle_grace(config_));
  log::info("draining", {{"open_connections", api_connections_.open()},
                         {"idle_grace_ms", drain_idle_grace(config_).count()},
                         {"deadline_ms", config_.drain_timeout.count()}});
  if (test_hooks_.in_drain) test_hooks_.in_drain();
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + config_.drain_timeout;
  const auto grace_end = started + drain_idle_grace(config_);
  bool grace_swept = false;
  net::steady_timer timer(co_await net::this_coro::executor);
  // Until the accept loop has taken the backlog and closed the listener (on this same context),
  // and while any connection is counted: at accept, or registered by its session.
  const auto open = [this] {
    return api_listener_.is_open() || api_connections_.open() > 0 || metrics_.open_connections() > 0;
  };
  while (open() && std::chrono::steady_clock::now() < deadline) {
    if (!grace_swept && std::chrono::steady_clock::now() >= grace_end) {
      api_connections_.close_expired();  // the idle ones close now, not at the sweep's next period
      grace_swept = true;
    }
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(use_tuple);
  }
  if (open()) {
    log::warn("drain deadline passed, closing connections", {{"open", api_connections_.open()}});
    api_listener_.close();
    api_connections_.close_all();
  }
  admin_listener_.close();
  admin_connections_.close_all();
  // close_all() only posts the closes to each connection's context, and wait() stops the contexts
  // as soon as we are done: a close still queued then never runs, and its socket stays open until
  // the app is destroyed. A marker posted behind them on every context (one thread each, so FIFO)
  // tells us they have all run.
  auto unflushed = std::make_shared<std::atomic<std::size_t>>(contexts_.size());
  for (auto& ctx : contexts_)
    net::post(*ctx, [unflushed] { unflushed->fetch_sub(1, std::memory_order_acq_rel); });
  const auto flush_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (unflushed->load(std::memory_order_acquire) > 0 &&
         std::chrono::steady_clock::now() < flush_deadline) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(use_tuple);
  }
}

void app::wait() {
  drained_.wait(false, std::memory_order_acquire);
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  try {
    jobs_.final_flush();  // queued before the close, which commits it
  } catch (const std::exception& e) {
    log::error("writing the last key uses failed", {{"error", e.what()}});
  }
  store_->close();
  stopped_ = true;
  log::info("stopped");
}

bool app::ready() const noexcept {
  return !stop_requested_.load(std::memory_order_acquire) && store_->ready();
}

std::string app::metrics_text() const {
  const auto& cache = service_.cache();
  const response_figures responses{responses_.in_flight(), responses_.peak(), responses_.limit(),
                                   responses_.refused()};
  const metrics::cache_figures cached{cache.hits(), cache.misses(), cache.size(), cache.capacity()};
  const maintenance_figures maintenance{service_.uses_recorded(), service_.expired_removed()};
  const rate_limit_figures rate{service_.limiter().size(), service_.limiter().share(),
                                service_.shares_failed()};
  return metrics_.render(cached, store_->stats(), ready(), responses, maintenance, rate);
}

}  // namespace tokend::server
