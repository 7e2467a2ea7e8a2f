// A listening socket and its accept loop, serving one endpoint (endpoint.hpp): each accepted
// connection is admitted by the endpoint, then served by a session on the next io_context.
#pragma once

#include "server/config.hpp"
#include "server/endpoint.hpp"
#include "server/http_session.hpp"
#include "server/metrics.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>

namespace tokend::server {

// Logs what ended a coroutine, and never throws: an exception out of a completion handler would
// leave its io thread's run() and end the process.
void log_failure(const char* what, const std::exception_ptr& e) noexcept;

class listener {
 public:
  // Picks the io_context of the next accepted connection.
  using context_picker = std::function<boost::asio::io_context&()>;

  // The socket is on `ctx`; `served`, `connections` and `counters` must outlive the listener.
  listener(boost::asio::io_context& ctx, endpoint& served, connection_tracker& connections, metrics& counters,
           context_picker next_context);

  // Binds and listens (throws boost::system::system_error).
  void listen(const endpoint_spec& where);
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  // Accepts until the socket is closed or cancelled; run it on the socket's context.
  boost::asio::awaitable<void> accept_loop();

  // Makes the accept loop take the connections the kernel has already queued, then close the socket.
  void begin_close();
  // On the socket's context: whether the socket is still open; close() closes it at once.
  [[nodiscard]] bool is_open() const { return acceptor_.is_open(); }
  void close() noexcept;

 private:
  void admit(boost::asio::ip::tcp::socket socket, const session_options& options,
             const request_handler& handler, const protocol_error_observer& observer);

  boost::asio::ip::tcp::acceptor acceptor_;
  endpoint& endpoint_;
  connection_tracker& connections_;
  metrics& metrics_;
  context_picker next_context_;
  std::uint16_t port_ = 0;
  std::atomic<bool> closing_{false};
};

}  // namespace tokend::server
