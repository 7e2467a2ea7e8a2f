// One HTTP/1.x connection: reads requests with deadlines and size limits, hands each complete
// request to a handler, writes the response, and keeps the connection alive while both sides want.
// Used by the API and the admin listener alike.
//
// Deadlines are not a timer per read and write (beast::tcp_stream), which cost throughput on every
// operation (see docs/PERFORMANCE.md): each connection keeps a deadline, and a periodic sweep
// (connection_tracker::close_expired) closes the connections past theirs.
#pragma once

#include "server/http_message.hpp"
#include "server/response_budget.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_set>

namespace tokend::server {

struct session_options {
  std::size_t max_header_bytes = std::size_t{8} * 1024;
  std::size_t max_body_bytes = std::size_t{16} * 1024;
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
//
// Each tracked connection owns its socket, and a session holds it through a `registration` whose
// destructor closes the socket and unregisters it: whichever way a session ends (return, exception,
// or its frame destroyed with its io_context), nothing is left that could close a freed socket, and
// open() comes back down. So a tracker must outlive the io_contexts its sessions run on.
class connection_tracker {
 public:
  struct connection;

  // A session's hold on its connection. Not copyable or movable: it lives in the session's frame.
  class registration {
   public:
    registration(connection_tracker& tracker, std::shared_ptr<connection> c) noexcept
        : tracker_(tracker), connection_(std::move(c)) {}
    ~registration();
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;

    [[nodiscard]] connection& operator*() const noexcept { return *connection_; }
    [[nodiscard]] connection* operator->() const noexcept { return connection_.get(); }

   private:
    connection_tracker& tracker_;
    std::shared_ptr<connection> connection_;
  };

  [[nodiscard]] bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }
  [[nodiscard]] std::size_t open() const noexcept { return open_.load(std::memory_order_acquire); }

  // The lame-duck drain: stops keep-alive everywhere (each connection's next response says
  // `Connection: close`), but leaves idle connections open for `idle_grace`, so that a request a
  // client sent down one at this very moment is answered instead of cut off; the sweep closes the
  // connections still idle after that. A zero grace closes the idle ones at once.
  void begin_drain(std::chrono::steady_clock::duration idle_grace);
  // Closes every connection, busy or not (the drain deadline has passed).
  void close_all();

  // Closes the connections whose deadline has passed, and, once a drain's idle grace is over, the
  // idle ones; their pending read or write then fails.
  void close_expired();

  // Takes the socket into a new tracked connection.
  [[nodiscard]] registration add(boost::asio::ip::tcp::socket socket);

 private:
  void remove(const std::shared_ptr<connection>& c) noexcept;
  void for_each(const std::function<void(const std::shared_ptr<connection>&)>& f);
  [[nodiscard]] bool idle_grace_over() const noexcept;

  std::atomic<bool> draining_{false};
  // When a drain's idle grace ends, in steady_clock ticks (valid once draining_ is set).
  std::atomic<std::chrono::steady_clock::rep> idle_grace_end_{0};
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
