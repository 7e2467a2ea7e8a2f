// What the PostgreSQL store's connections share: the backoff between reconnection attempts, and
// reporting a failure to the operator's log.
#pragma once

#include "storage/postgres_store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <string>

namespace tokend::storage::pg {

// Quick first retries (a restart takes about a second), capped so that a database that stays down
// is not hammered.
class reconnect_backoff {
 public:
  explicit reconnect_backoff(boost::asio::io_context& ioc) : timer_(ioc) {}

  // Waits the current delay (less if cancel() is called), then doubles it up to the cap.
  [[nodiscard]] boost::asio::awaitable<void> wait();
  // After a session that served: the next failure retries quickly again.
  void reset() noexcept { delay_ = first; }
  void cancel() { timer_.cancel(); }

 private:
  static constexpr std::chrono::milliseconds first{50};
  static constexpr std::chrono::milliseconds most{2000};
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds delay_ = first;
};

// Passes `message` to options.log, if set; a log that throws loses the message, nothing else.
void report(const postgres_options& options, bool is_error, const std::string& message) noexcept;

}  // namespace tokend::storage::pg
