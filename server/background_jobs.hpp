// The token service's periodic work, on an io_context: writing the marked key uses every
// --last-used-interval, removing tokens expired past --expired-retention every
// --expired-sweep-interval, and sharing rate-limit counts with the other processes of a shared
// store every --rate-limit-sync-interval. None blocks its io thread: a flush or a share only hands
// one batch to the store, and a sweep suspends on the store between its bounded writes.
#pragma once

#include "server/token_service.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>

namespace tokend::server {

struct background_intervals {
  std::chrono::milliseconds last_used{};  // 0: uses are not recorded, and no flush runs
  std::chrono::milliseconds sweep{};
  std::chrono::milliseconds retention{};
  // 0, or a store that is not shared: admits are not shared, and the buckets no longer needed are
  // dropped every second.
  std::chrono::milliseconds rate_sync{};
};

class background_jobs {
 public:
  // Turns use recording on in `service` when intervals.last_used is not 0. The loops run on `ctx`.
  background_jobs(boost::asio::io_context& ctx, token_service& service, background_intervals intervals);
  background_jobs(const background_jobs&) = delete;
  background_jobs& operator=(const background_jobs&) = delete;
  ~background_jobs() = default;

  // Starts the loops, each first running one interval from now. Once only.
  void start();

  // Ends the loops: no further flush or sweep starts (one under way finishes). Thread-safe,
  // idempotent.
  void stop();

  // Hands the uses marked since the last flush to the store. For shutdown: once no io thread runs
  // any more and before the store closes, which then completes the write.
  void final_flush();

 private:
  boost::asio::awaitable<void> flush_loop();
  boost::asio::awaitable<void> sweep_loop();
  boost::asio::awaitable<void> rate_loop();

  token_service& service_;
  background_intervals intervals_;
  boost::asio::io_context& context_;
  // Used on context_'s thread only (stop() posts their cancellation there).
  boost::asio::steady_timer flush_timer_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer rate_timer_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace tokend::server
