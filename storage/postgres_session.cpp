// Reconnection backoff and failure reports of the PostgreSQL store's connections.
#include "storage/postgres_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace tokend::storage::pg {

boost::asio::awaitable<void> reconnect_backoff::wait() {
  timer_.expires_after(delay_);
  (void)co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  delay_ = std::min<std::chrono::milliseconds>(delay_ * 2, most);
}

void report(const postgres_options& options, bool is_error, const std::string& message) noexcept {
  try {
    if (options.log) options.log(is_error, message);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a log that throws loses its message, nothing else
  }
}

}  // namespace tokend::storage::pg
