// The running service: io_context pool, API and admin listeners, graceful drain, store lifetime.
// main() and the integration tests both drive this class.
#pragma once

#include "server/admin.hpp"
#include "server/api_endpoint.hpp"
#include "server/background_jobs.hpp"
#include "server/config.hpp"
#include "server/http_session.hpp"
#include "server/listener.hpp"
#include "server/metrics.hpp"
#include "server/response_budget.hpp"
#include "server/token_service.hpp"
#include "storage/token_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

namespace tokend::server {

// Faults that tests inject into a running app; each, when set, runs at its point and may throw.
struct app_test_hooks {
  std::function<void(std::string_view target)> after_api_handler;  // an API response is about to go out
  std::function<void()> in_drain;                                  // the drain has begun
};

class app {
 public:
  app(config cfg, std::unique_ptr<storage::token_store> store);
  ~app();
  app(const app&) = delete;
  app& operator=(const app&) = delete;

  // Binds both listeners (throws boost::system::system_error) and starts the io threads. With
  // `handle_signals`, SIGTERM and SIGINT begin a graceful stop.
  void start(bool handle_signals);

  [[nodiscard]] std::uint16_t api_port() const noexcept { return api_listener_.port(); }
  [[nodiscard]] std::uint16_t admin_port() const noexcept { return admin_listener_.port(); }

  // Testing only; call before start().
  void set_test_hooks(app_test_hooks hooks) { test_hooks_ = std::move(hooks); }

  // Begins the drain: readiness fails and the API listener closes; each open connection's next
  // response says `Connection: close`; connections idle through the idle grace close; the rest
  // finish until the drain deadline, which closes what is left. Thread-safe, idempotent.
  void request_stop();

  // Blocks until the drain has finished (or failed: it is logged), then stops the io threads, hands
  // the key uses marked since the last flush to the store, and closes the store.
  void wait();

  [[nodiscard]] bool ready() const noexcept;
  // API connections with a session (open, or not yet unregistered).
  [[nodiscard]] std::size_t open_api_connections() const noexcept { return api_connections_.open(); }
  [[nodiscard]] token_service& service() noexcept { return service_; }
  [[nodiscard]] std::string metrics_text() const;

 private:
  boost::asio::io_context& next_context() noexcept;
  boost::asio::awaitable<void> close_expired_loop();  // the connections' deadlines (http_session.hpp)
  boost::asio::awaitable<void> drain();
  void drain_finished() noexcept;

  config config_;
  app_test_hooks test_hooks_;
  // Declared before the io_contexts so they outlive them: sessions whose frames are destroyed with
  // a context unregister from their tracker then (http_session.hpp).
  connection_tracker api_connections_;
  connection_tracker admin_connections_;
  // Shares of it are held by session frames, which may be destroyed with their context.
  response_budget responses_;
  // Declared before the store so they outlive it: the store's last callbacks post to them.
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::unique_ptr<storage::token_store> store_;
  token_service service_;
  // After the io_contexts, whose threads run its timers.
  background_jobs jobs_;
  metrics metrics_;
  api_endpoint api_endpoint_;
  admin_endpoint admin_endpoint_;
  // After the io_contexts, so that their sockets close before the contexts go.
  listener api_listener_;
  listener admin_listener_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_context_{0};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> drained_{false};
  bool stopped_ = false;
};

}  // namespace tokend::server
