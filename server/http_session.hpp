// One HTTP/1.x connection: reads requests with deadlines and size limits, hands each complete
// request to a handler, writes the response, and keeps the connection alive while both sides want.
// Used by the API and the admin listener alike.
//
// Deadlines are not a timer per read and write (beast::tcp_stream): arming and cancelling those on
// every operation cost about 7% of throughput. Each connection keeps a deadline, and a periodic
// sweep (connection_tracker::close_expired) closes the connections past theirs.
#pragma once

#include "server/response_budget.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_set>

namespace tokend::server {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

struct session_options {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;
  std::chrono::milliseconds idle_timeout{60'000};     // between requests on a kept-alive connection
  std::chrono::milliseconds request_timeout{10'000};  // to read one whole request, or write a response
};

// What the handler wants kept until its response has been written (its share of the response
// budget); the session destroys it after the write.
using response_hold = response_budget::lease;
// Produces the response for a complete request. The session sets version, keep-alive and length.
using request_handler = std::function<boost::asio::awaitable<http_response>(http_request&, response_hold&)>;
// Told of requests refused before they reached the handler (431, 413, 400).
using protocol_error_observer = std::function<void(unsigned status)>;

// The connections of one listener, so a drain can close the idle ones and wait for the busy ones,
// and a sweep can close those past their deadline.
class connection_tracker {
 public:
  struct connection;

  [[nodiscard]] bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }
  [[nodiscard]] std::size_t open() const noexcept { return open_.load(std::memory_order_acquire); }

  // Stops keep-alive everywhere and closes connections that wait for their next request.
  void begin_drain();
  // Closes every connection, busy or not (the drain deadline has passed).
  void close_all();

  // Closes the connections whose deadline has passed; their pending read or write then fails.
  void close_expired();

  std::shared_ptr<connection> add(boost::asio::ip::tcp::socket& socket);
  void remove(const std::shared_ptr<connection>& c);

 private:
  void for_each(const std::function<void(const std::shared_ptr<connection>&)>& f);

  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> open_{0};
  std::mutex mutex_;
  std::unordered_set<std::shared_ptr<connection>> connections_;
};

[[nodiscard]] boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket,
                                                       session_options options, request_handler handler,
                                                       protocol_error_observer on_protocol_error,
                                                       connection_tracker& tracker);

// The status of the error response to a request that failed while being read (431, 413, or 400 for
// any other parser error), or 0 when the peer just went away or timed out: no response then.
[[nodiscard]] unsigned status_for_read_error(const boost::beast::error_code& ec);

// A JSON error response as every error of the service looks.
[[nodiscard]] http_response json_error_response(unsigned status, std::string_view message);

}  // namespace tokend::server
