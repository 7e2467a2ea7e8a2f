// Wiring of the service: one io_context per thread (no strands needed: a connection lives on one
// context), listeners on the first, a drain coroutine for graceful stop.
#include "server/app.hpp"

#include "server/admin.hpp"
#include "server/api_router.hpp"
#include "server/fd_limits.hpp"
#include "server/log.hpp"
#include "server/request_log.hpp"
#include "server/verify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>

#include <algorithm>
#include <exception>

namespace tokend::server {
namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::string_view request_id_header = "X-Request-Id";

std::vector<std::unique_ptr<net::io_context>> make_contexts(std::size_t n) {
  std::vector<std::unique_ptr<net::io_context>> out;
  for (std::size_t i = 0; i < std::max<std::size_t>(n, 1); ++i)
    out.push_back(std::make_unique<net::io_context>(1));
  return out;
}

// Logs what ended a coroutine, and never throws: an exception out of a completion handler would
// leave its io thread's run() and end the process.
void log_failure(const char* what, std::exception_ptr e) noexcept {
  if (!e) return;
  try {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error(what, {{"error", loggable_text(ex.what())}});
    } catch (...) {
      log::error(what, {{"error", "unknown exception"}});
    }
  } catch (...) {  // logging itself failed (out of memory): nothing better to do
  }
}

void log_exception(std::exception_ptr e) noexcept { log_failure("connection failed", e); }

}  // namespace

app::app(config cfg, std::unique_ptr<storage::token_store> store)
    : config_(std::move(cfg)),
      responses_(config_.max_response_bytes_in_flight),
      contexts_(make_contexts(config_.threads)),
      store_(std::move(store)),
      service_(*store_, config_.cache_capacity, config_.list_cache_tokens),
      api_acceptor_(*contexts_.front()),
      admin_acceptor_(*contexts_.front()) {}

app::~app() {
  if (!threads_.empty() && !stopped_) {
    request_stop();
    wait();
  }
}

net::io_context& app::next_context() noexcept {
  return *contexts_[next_context_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void app::listen(tcp::acceptor& acceptor, const endpoint_spec& where, std::uint16_t& port) {
  const tcp::endpoint endpoint(net::ip::make_address(where.host), where.port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(net::socket_base::max_listen_connections);
  port = acceptor.local_endpoint().port();
}

void app::start(bool handle_signals) {
  listen(api_acceptor_, config_.listen, api_port_);
  listen(admin_acceptor_, config_.admin_listen, admin_port_);
  net::io_context& first = *contexts_.front();
  net::co_spawn(first, accept_loop(api_acceptor_, false), log_exception);
  net::co_spawn(first, accept_loop(admin_acceptor_, true), log_exception);
  net::co_spawn(first, close_expired_loop(), log_exception);
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

net::awaitable<void> app::accept_loop(tcp::acceptor& acceptor, bool admin) {
  session_options options{config_.max_header_bytes, config_.max_body_bytes, config_.idle_timeout,
                          config_.request_timeout};
  request_handler handler;
  protocol_error_observer observer;
  if (admin) {
    options.max_body_bytes = 1024;
    handler = [this](http_request& req, response_hold&) -> net::awaitable<http_response> {
      co_return handle_admin(req,
                             admin_sources{[this] { return ready(); }, [this] { return metrics_text(); }});
    };
  } else {
    // Only `this` is captured: GCC 12 corrupts std::string init-captures of coroutine lambdas, so
    // per-request strings live in the coroutine frame as locals instead.
    handler = [this](http_request& req, response_hold& hold) -> net::awaitable<http_response> {
      const auto started = std::chrono::steady_clock::now();
      const std::string request_id = request_id_for(req[request_id_header]);
      api_reply reply;
      try {
        reply = co_await handle_api(req, service_, &responses_);
      } catch (const std::exception& e) {
        log::error("request failed", {{"error", loggable_text(e.what())}, {"request_id", request_id}});
        reply = error_reply(500, "Internal server error");
      }
      http_response res{static_cast<http::status>(reply.status), req.version()};
      res.set(http::field::content_type, "application/json");
      res.set(http::field::cache_control, "no-store");
      res.set(request_id_header, request_id);
      if (reply.method_not_allowed) res.set(http::field::allow, allowed_methods);
      if (reply.retry_after_seconds) {
        res.set(http::field::retry_after, std::to_string(reply.retry_after_seconds));
      }
      add_verify_headers(reply, res);
      res.body() = std::move(reply.body);
      hold = std::move(reply.hold);
      const auto elapsed = std::chrono::steady_clock::now() - started;
      metrics_.observe(reply.route_label, reply.status, elapsed);
      if (test_hooks_.after_api_handler) test_hooks_.after_api_handler(req.target());
      if (config_.access_log) {
        log::access(access_fields({req.method_string(), req.target(), reply.status,
                                   std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed), request_id,
                                   res.body().size(), req.body().size()}));
      }
      co_return res;
    };
    observer = [this](unsigned status) {
      metrics_.observe(route::other, status, {});
      // Refused while reading (431, 413, 400): no method or path worth trusting, and no response
      // header of ours to carry an id; the line still counts the request.
      if (config_.access_log) {
        log::access(
            {{"status", status}, {"request_id", new_request_id()}, {"refused", "while reading the request"}});
      }
      log::debug("request refused while reading", {{"status", status}});
    };
  }
  connection_tracker& tracker = admin ? admin_connections_ : api_connections_;
  net::steady_timer backoff(acceptor.get_executor());
  accept_failure_backoff failures;
  // Starts a session for an accepted connection, or closes it at the listener's cap.
  const auto admit = [&](tcp::socket socket) {
    // The admin listener's own cap: the API's was computed leaving it this many descriptors, so a
    // full API cannot starve the probes, nor a flood of admin connections the API.
    if (admin && admin_open_.load(std::memory_order_relaxed) >= config_.admin_max_connections) {
      metrics_.admin_connection_refused();
      boost::system::error_code ignored;
      socket.close(ignored);
      return;
    }
    if (!admin && metrics_.open_connections() >= static_cast<std::int64_t>(config_.max_connections)) {
      // At the cap the connection is closed at once rather than left in the listen backlog: the
      // client learns in a round trip that this instance is full (and may retry elsewhere)
      // instead of waiting out its own timeout, and the backlog cannot hide an overload. Never a
      // 5xx: writing a response would cost the very resources the cap protects.
      metrics_.connection_refused();
      boost::system::error_code ignored;
      socket.close(ignored);
      return;
    }
    if (!admin)
      metrics_.connection_opened();
    else
      admin_open_.fetch_add(1, std::memory_order_relaxed);
    if (log::enabled(log::level::debug)) {
      boost::system::error_code peer_ec;
      const auto peer = socket.remote_endpoint(peer_ec);
      log::debug("connection accepted",
                 {{"listener", admin ? "admin" : "api"},
                  {"peer", peer_ec ? std::string("unknown")
                                   : peer.address().to_string() + ":" + std::to_string(peer.port())}});
    }
    auto executor = socket.get_executor();
    net::co_spawn(executor, run_session(std::move(socket), options, handler, observer, tracker),
                  [this, admin](std::exception_ptr e) {
                    if (!admin)
                      metrics_.connection_closed();
                    else
                      admin_open_.fetch_sub(1, std::memory_order_relaxed);
                    log_exception(e);
                  });
  };
  for (;;) {
    if (!admin && api_listener_closing_.load(std::memory_order_acquire)) {
      // Connections the kernel has completed but we have not accepted yet would be reset by the
      // close, their requests perhaps already sent: they are taken first, and served as every
      // open connection is while draining (one answer, with `Connection: close`).
      boost::system::error_code ec;
      acceptor.non_blocking(true, ec);
      for (tcp::socket socket(next_context()); !ec; socket = tcp::socket(next_context())) {
        acceptor.accept(socket, ec);
        if (!ec) admit(std::move(socket));
      }
      acceptor.close(ec);
      break;
    }
    auto [ec, socket] = co_await acceptor.async_accept(next_context(), use_tuple);
    if (ec == net::error::operation_aborted && !admin &&
        api_listener_closing_.load(std::memory_order_acquire)) {
      continue;
    }
    if (!acceptor.is_open() || ec == net::error::operation_aborted) break;
    if (ec) {
      // Typically EMFILE, which the caps should prevent: back off (growing while it lasts) instead
      // of spinning on a full descriptor table, and say so once in a while, not per attempt.
      metrics_.accept_failed();
      const auto now = std::chrono::steady_clock::now();
      if (const auto suppressed = failures.failed(now)) {
        log::warn("accept failed", {{"listener", admin ? "admin" : "api"},
                                    {"error", ec.message()},
                                    {"failures_not_logged", *suppressed}});
      }
      backoff.expires_after(failures.delay());
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    failures.succeeded();
    admit(std::move(socket));
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
    net::co_spawn(*contexts_.front(), drain(), [this](std::exception_ptr e) {
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
  boost::system::error_code ignored;
  // The accept loop closes the listener once it has taken what the kernel already queued.
  api_listener_closing_.store(true, std::memory_order_release);
  api_acceptor_.cancel(ignored);
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
    return api_acceptor_.is_open() || api_connections_.open() > 0 || metrics_.open_connections() > 0;
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
    api_acceptor_.close(ignored);
    api_connections_.close_all();
  }
  admin_acceptor_.close(ignored);
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
  return metrics_.render(cached, store_->stats(), ready(), responses);
}

}  // namespace tokend::server
