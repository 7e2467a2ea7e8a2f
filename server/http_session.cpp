// The connection loop: idle wait, header and body read under one request deadline, handler, write.
#include "server/http_session.hpp"

#include "server/api_response.hpp"
#include "server/request_reader.hpp"
#include "server/response_head.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <string>

namespace tokend::server {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct connection_tracker::connection {
  using clock = std::chrono::steady_clock;

  explicit connection(tcp::socket s) : socket(std::move(s)), executor(socket.get_executor()) {}

  // Owned here, not by the session: a close posted by the sweep or the drain may run after the
  // session has ended, and must then find a closed socket, not a freed one.
  tcp::socket socket;
  net::any_io_executor executor;
  bool busy = false;    // touched only on `executor`
  bool closed = false;  // the session has ended and closed `socket`; touched only on `executor`
  // When the sweep closes the connection, in clock ticks: written on `executor`, read by the sweep.
  std::atomic<clock::rep> deadline{clock::time_point::max().time_since_epoch().count()};

  void expires_after(clock::duration d) noexcept {
    deadline.store((clock::now() + d).time_since_epoch().count(), std::memory_order_relaxed);
  }
  void expires_never() noexcept {
    deadline.store(clock::time_point::max().time_since_epoch().count(), std::memory_order_relaxed);
  }
  [[nodiscard]] bool expired() const noexcept {
    return deadline.load(std::memory_order_relaxed) <= clock::now().time_since_epoch().count();
  }
};

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::string message_for_read_error(const beast::error_code& ec, unsigned status) {
  if (ec.category() == framing_category()) return ec.message();  // fixed texts, no request bytes
  switch (status) {
    case 413:
      return "Request body too large";
    case 431:
      return "Request header fields too large";
    default:
      return "Malformed HTTP request";
  }
}

// After refusing a request whose body we did not read (413, 431, 400), closing at once would
// make the kernel answer the client's unread bytes with a reset, which can destroy our response
// before the client reads it. So: stop sending, then discard what still arrives, within bounds.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-reference-coroutine-parameters): owned by the awaiting session
net::awaitable<void> linger(tcp::socket& socket, connection_tracker::connection& self) {
  beast::error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  self.expires_after(std::chrono::milliseconds(500));
  std::array<char, 8192> sink;
  for (std::size_t discarded = 0; discarded < (1u << 20);) {
    auto [rec, n] = co_await socket.async_read_some(net::buffer(sink), use_tuple);
    if (rec) break;
    discarded += n;
  }
}

// Reads one request through `reader`, which bounds every part of it. Once the header is complete
// and a body is to follow, an HTTP/1.1 client that expects it is told to go on (100-continue).
// NOLINTBEGIN(cppcoreguidelines-avoid-reference-coroutine-parameters): owned by the awaiting session
net::awaitable<beast::error_code> read_request(tcp::socket& socket, beast::flat_buffer& buffer,
                                               request_reader& reader) {
  // NOLINTEND(cppcoreguidelines-avoid-reference-coroutine-parameters)
  bool header_seen = false;
  for (;;) {
    beast::error_code ec = http::error::need_more;
    std::size_t used = 0;
    if (buffer.size() > 0) {
      used = reader.feed(buffer.data(), ec);
      buffer.consume(used);
    }
    if (ec && ec != http::error::need_more) co_return ec;  // refused
    if (reader.is_done()) co_return beast::error_code{};
    if (!header_seen && reader.is_header_done()) {
      header_seen = true;
      const auto& header = reader.get();
      // An HTTP/1.0 client does not know interim responses: its expectation is ignored (RFC 9110 10.1.1).
      if (header.version() >= 11 && beast::iequals(header[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, header.version()};
        auto [wec, wn] = co_await http::async_write(socket, cont, use_tuple);
        if (wec) co_return wec;
      }
    }
    if (!ec && used > 0 && buffer.size() > 0) continue;  // the parser stopped between two steps
    auto [rec, n] = co_await socket.async_read_some(buffer.prepare(8192), use_tuple);
    if (rec) co_return rec;
    buffer.commit(n);
  }
}

}  // namespace

connection_tracker::registration::~registration() {
  beast::error_code ignored;
  connection_->socket.shutdown(tcp::socket::shutdown_send, ignored);
  connection_->socket.close(ignored);
  connection_->closed = true;
  tracker_.remove(connection_);
}

connection_tracker::registration connection_tracker::add(tcp::socket socket) {
  auto c = std::make_shared<connection>(std::move(socket));
  {
    std::lock_guard lock(mutex_);
    connections_.insert(c);
    open_.fetch_add(1, std::memory_order_acq_rel);
  }
  return registration(*this, std::move(c));
}

void connection_tracker::remove(const std::shared_ptr<connection>& c) noexcept {
  std::lock_guard lock(mutex_);
  if (connections_.erase(c) > 0) open_.fetch_sub(1, std::memory_order_acq_rel);
}

void connection_tracker::for_each(const std::function<void(const std::shared_ptr<connection>&)>& f) {
  std::lock_guard lock(mutex_);
  for (const auto& c : connections_) f(c);
}

bool connection_tracker::idle_grace_over() const noexcept {
  return draining() && idle_grace_end_.load(std::memory_order_relaxed) <=
                           connection::clock::now().time_since_epoch().count();
}

void connection_tracker::begin_drain(std::chrono::steady_clock::duration idle_grace) {
  idle_grace_end_.store((connection::clock::now() + idle_grace).time_since_epoch().count(),
                        std::memory_order_relaxed);
  draining_.store(true, std::memory_order_release);
  close_expired();  // with no grace, the idle connections close now rather than at the next sweep
}

void connection_tracker::close_all() {
  for_each([](const std::shared_ptr<connection>& c) {
    net::post(c->executor, [c] {
      beast::error_code ignored;
      if (!c->closed) c->socket.close(ignored);
    });
  });
}

void connection_tracker::close_expired() {
  const bool grace_over = idle_grace_over();
  for_each([this, grace_over](const std::shared_ptr<connection>& c) {
    if (!c->expired() && !grace_over) return;
    net::post(c->executor, [this, c] {
      beast::error_code ignored;
      // Checked again here: the session may have moved on to a new deadline, or begun a request.
      if (c->closed) return;
      if (c->expired()) {
        c->socket.close(ignored);
      } else if (!c->busy && idle_grace_over()) {
        // A request may already wait in the socket, its read's completion still queued: a close
        // would reset it under the client. The idle wait is cancelled instead, and the session
        // serves what has arrived (run_session).
        c->socket.cancel(ignored);
      }
    });
  });
}

http_response json_error_response(unsigned status, std::string_view message) {
  http_response res{status, error_body(message)};
  res.insert(http::field::content_type, "application/json");
  return res;
}

unsigned status_for_read_error(const beast::error_code& ec) {
  // A coding tokend does not implement is 400, not the 501 RFC 9112 6.1 suggests: a client's bytes
  // never make a 5xx, which would count as the server's own failure on the dashboards.
  if (ec.category() == framing_category()) return ec == framing_error::trailer_too_large ? 431 : 400;
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == net::error::eof ||
      ec == net::error::operation_aborted || ec == net::error::connection_reset ||
      ec == net::error::bad_descriptor) {
    return 0;
  }
  // Every other parser error (bad method, target, version, field, length, chunk...) is the client's.
  static const auto& parser_category = http::make_error_code(http::error::bad_method).category();
  return ec.category() == parser_category ? 400 : 0;
}

// The tracker outlives every session: the app destroys it only after the drain saw them all end.
// NOLINTBEGIN(cppcoreguidelines-avoid-reference-coroutine-parameters): see the line above
net::awaitable<void> run_session(tcp::socket accepted, session_options options, request_handler handler,
                                 protocol_error_observer on_protocol_error, connection_tracker& tracker) {
  // NOLINTEND(cppcoreguidelines-avoid-reference-coroutine-parameters)
  beast::error_code option_ec;
  accepted.set_option(tcp::no_delay(true), option_ec);
  // Its destructor closes the socket and unregisters it, however this coroutine ends.
  const auto self = tracker.add(std::move(accepted));
  tcp::socket& socket = self->socket;
  beast::flat_buffer buffer;
  std::string header_out;  // reused across responses

  for (;;) {
    self->busy = false;
    // While draining, an idle connection still waits for its next request (answered with
    // `Connection: close`) until the tracker closes it at the end of the drain's idle grace.
    if (buffer.size() == 0) {
      // Idle between requests: a longer deadline than for reading a request once it has begun.
      self->expires_after(options.idle_timeout);
      auto [ec, n] = co_await socket.async_read_some(buffer.prepare(4096), use_tuple);
      if (ec) {
        // The drain's idle grace cancelled the wait: a request that reached the socket meanwhile is
        // still answered (with `Connection: close`) rather than reset.
        beast::error_code pending_ec;
        if (ec == net::error::operation_aborted && tracker.draining() && socket.available(pending_ec) > 0 &&
            !pending_ec) {
          continue;
        }
        break;
      }
      buffer.commit(n);
    }
    self->busy = true;

    request_reader reader(options.max_header_bytes, options.max_body_bytes);
    // One deadline for the whole request: headers that trickle in (slowloris) cannot extend it.
    self->expires_after(options.request_timeout);
    const beast::error_code ec = co_await read_request(socket, buffer, reader);
    if (ec) {
      if (const unsigned status = status_for_read_error(ec)) {
        if (on_protocol_error) on_protocol_error(status);
        const auto res = json_error_response(status, message_for_read_error(ec, status));
        write_response_head(res, {11, false, res.body().size()}, header_out);
        const std::array<net::const_buffer, 2> out{net::buffer(header_out), net::buffer(res.body())};
        co_await net::async_write(socket, out, use_tuple);
        co_await linger(socket, *self);
      }
      break;
    }

    http_request request = reader.release();
    // The handler's time is not the client's: a create waiting on its commit must not lose its
    // connection, and with it the answer, to the request deadline.
    self->expires_never();
    response_hold hold;  // declared first, so given back after the written body is freed
    http_response response = co_await handler(request, hold);
    const response_framing framing{request.version(), request.keep_alive() && !tracker.draining(),
                                   response.body().size()};
    // A response to HEAD announces its length but carries no content (RFC 9110 9.3.2): body bytes
    // would be read as the start of the next response by a keep-alive client.
    if (request.method() == http::verb::head) response.body().clear();
    self->expires_after(options.request_timeout);
    write_response_head(response, framing, header_out);
    const std::array<net::const_buffer, 2> out{net::buffer(header_out), net::buffer(response.body())};
    auto [wec, wn] = co_await net::async_write(socket, out, use_tuple);
    if (wec || !framing.keep_alive) break;
  }
}

}  // namespace tokend::server
