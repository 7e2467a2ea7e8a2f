// The accept loop; see listener.hpp.
#include "server/listener.hpp"

#include "server/fd_limits.hpp"
#include "server/log.hpp"
#include "server/request_log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string>
#include <utility>

namespace tokend::server {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

}  // namespace

void log_failure(const char* what, const std::exception_ptr& e) noexcept {
  if (!e) return;
  try {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error(what, {{"error", loggable_text(ex.what())}});
    } catch (...) {
      log::error(what, {{"error", "unknown exception"}});
    }
    // NOLINTNEXTLINE(bugprone-empty-catch): logging itself failed (out of memory); nothing is left to do
  } catch (...) {
  }
}

listener::listener(net::io_context& ctx, endpoint& served, connection_tracker& connections, metrics& counters,
                   context_picker next_context)
    : acceptor_(ctx),
      endpoint_(served),
      connections_(connections),
      metrics_(counters),
      next_context_(std::move(next_context)) {}

void listener::listen(const endpoint_spec& where) {
  const tcp::endpoint endpoint(net::ip::make_address(where.host), where.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(net::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

void listener::begin_close() {
  closing_.store(true, std::memory_order_release);
  boost::system::error_code ignored;
  acceptor_.cancel(ignored);
}

void listener::close() noexcept {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void listener::admit(tcp::socket socket, const session_options& options, const request_handler& handler,
                     const protocol_error_observer& observer) {
  if (!endpoint_.admit()) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  if (log::enabled(log::level::debug)) {
    boost::system::error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec);
    log::debug("connection accepted",
               {{"listener", endpoint_.name()},
                {"peer", peer_ec ? std::string("unknown")
                                 : peer.address().to_string() + ":" + std::to_string(peer.port())}});
  }
  auto executor = socket.get_executor();
  net::co_spawn(executor, run_session(std::move(socket), options, handler, observer, connections_),
                [this](const std::exception_ptr& e) {
                  endpoint_.closed();
                  log_failure("connection failed", e);
                });
}

net::awaitable<void> listener::accept_loop() {
  const session_options options = endpoint_.options();
  const request_handler handler = endpoint_.handler();
  const protocol_error_observer observer = endpoint_.observer();
  net::steady_timer backoff(acceptor_.get_executor());
  accept_failure_backoff failures;
  for (;;) {
    if (closing_.load(std::memory_order_acquire)) {
      // Connections the kernel has completed but we have not accepted yet would be reset by the
      // close, their requests perhaps already sent: they are taken first, and served as every
      // open connection is while draining (one answer, with `Connection: close`).
      boost::system::error_code ec;
      acceptor_.non_blocking(true, ec);
      for (tcp::socket socket(next_context_()); !ec; socket = tcp::socket(next_context_())) {
        acceptor_.accept(socket, ec);
        if (!ec) admit(std::move(socket), options, handler, observer);
      }
      acceptor_.close(ec);
      break;
    }
    auto [ec, socket] = co_await acceptor_.async_accept(next_context_(), use_tuple);
    if (ec == net::error::operation_aborted && closing_.load(std::memory_order_acquire)) continue;
    if (!acceptor_.is_open() || ec == net::error::operation_aborted) break;
    if (ec) {
      // Typically EMFILE, which the caps should prevent: back off (growing while it lasts) instead
      // of spinning on a full descriptor table, and say so once in a while, not per attempt.
      metrics_.accept_failed();
      const auto now = std::chrono::steady_clock::now();
      if (const auto suppressed = failures.failed(now)) {
        log::warn(
            "accept failed",
            {{"listener", endpoint_.name()}, {"error", ec.message()}, {"failures_not_logged", *suppressed}});
      }
      backoff.expires_after(failures.delay());
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    failures.succeeded();
    admit(std::move(socket), options, handler, observer);
  }
}

}  // namespace tokend::server
