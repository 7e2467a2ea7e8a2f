// Prometheus metrics for the API: request counts by route and status, latency histograms,
// connections, plus the cache and store figures handed in at scrape time. Lock-free on the request
// path; rendered to text on scrape. Names follow the Prometheus conventions: tokend_ prefix, base
// units (seconds), counters end in _total.
#pragma once

#include "server/route.hpp"
#include "storage/token_store.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace tokend::server {

// The response budget's figures (response_budget.hpp), handed in at scrape time.
struct response_figures {
  std::uint64_t in_flight_bytes = 0, peak_bytes = 0, limit_bytes = 0, refused = 0;
};

// What the token service did in the background (token_service.hpp), handed in at scrape time.
struct maintenance_figures {
  std::uint64_t uses_recorded = 0;    // key uses the store accepted (at most one per key per minute)
  std::uint64_t expired_removed = 0;  // expired tokens the sweep removed
};

// The rate limiter's figures (core/rate_limiter.hpp), handed in at scrape time.
struct rate_limit_figures {
  std::uint64_t buckets = 0;        // keys with a bucket in this process
  std::uint64_t share = 1;          // 1, or n while this process holds itself to 1/n of every limit
  std::uint64_t shares_failed = 0;  // sharing rounds that failed since start
};

class metrics {
 public:
  void observe(route r, unsigned status, std::chrono::nanoseconds latency) noexcept;
  metrics() noexcept;

  void connection_opened() noexcept {
    open_connections_.fetch_add(1, std::memory_order_relaxed);
    accepted_connections_.fetch_add(1, std::memory_order_relaxed);
  }
  void connection_closed() noexcept { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
  // A request refused for its key's rate limit (counted besides observe()).
  void rate_limited(route r) noexcept {
    rate_limited_[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  void connection_refused() noexcept { refused_connections_.fetch_add(1, std::memory_order_relaxed); }
  void admin_connection_refused() noexcept {
    refused_admin_connections_.fetch_add(1, std::memory_order_relaxed);
  }
  void accept_failed() noexcept { accept_failures_.fetch_add(1, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t open_connections() const noexcept {
    return open_connections_.load(std::memory_order_relaxed);
  }

  struct cache_figures {
    std::uint64_t hits = 0, misses = 0, entries = 0, capacity = 0;
  };
  // Text exposition format 0.0.4.
  [[nodiscard]] std::string render(const cache_figures& cache, const storage::store_stats& store, bool ready,
                                   const response_figures& responses = {},
                                   const maintenance_figures& maintenance = {},
                                   const rate_limit_figures& rate = {}) const;

  // Statuses we count individually; anything else lands in the last slot.
  static constexpr std::array<unsigned, 15> statuses = {200, 400, 401, 403, 404, 405, 408, 413,
                                                        415, 429, 431, 500, 503, 505, 0};
  // Latency bucket upper bounds in seconds.
  static constexpr std::array<double, 16> latency_bounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

 private:
  struct route_series {
    std::array<std::atomic<std::uint64_t>, statuses.size()> by_status{};
    std::array<std::atomic<std::uint64_t>, latency_bounds.size() + 1> latency_buckets{};
    std::atomic<std::uint64_t> latency_count{0};
    std::atomic<std::uint64_t> latency_sum_ns{0};
  };
  std::array<route_series, route_count> routes_{};
  std::array<std::atomic<std::uint64_t>, route_count> rate_limited_{};
  std::atomic<std::int64_t> open_connections_{0};
  std::atomic<std::uint64_t> accepted_connections_{0};
  std::atomic<std::uint64_t> refused_connections_{0};        // closed at once: --max-connections reached
  std::atomic<std::uint64_t> refused_admin_connections_{0};  // --admin-max-connections reached
  std::atomic<std::uint64_t> accept_failures_{0};            // accept() errors: out of descriptors, mostly
  double start_time_seconds_ = 0;  // Unix time of construction, i.e. of process start
};

}  // namespace tokend::server
