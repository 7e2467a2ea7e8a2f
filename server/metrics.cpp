// Rendering of the metrics registry in the Prometheus text format.
#include "server/metrics.hpp"

#include "core/allocator.hpp"

#include <algorithm>
#include <cstdio>

#ifndef TOKEND_VERSION
#define TOKEND_VERSION "unknown"
#endif

namespace tokend::server {
namespace {

constexpr const char* route_names[route_count] = {"create", "list",    "delete", "roll", "verify",
                                                  "update", "limited", "quota",  "other"};

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

metrics::metrics() noexcept
    : start_time_seconds_(
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()) {}

void metrics::observe(route r, unsigned status, std::chrono::nanoseconds latency) noexcept {
  auto& s = routes_[static_cast<std::size_t>(r)];
  const auto it = std::find(statuses.begin(), statuses.end() - 1, status);
  s.by_status[static_cast<std::size_t>(it - statuses.begin())].fetch_add(1, std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(latency).count();
  const auto bucket =
      std::lower_bound(latency_bounds.begin(), latency_bounds.end(), seconds) - latency_bounds.begin();
  s.latency_buckets[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  s.latency_count.fetch_add(1, std::memory_order_relaxed);
  s.latency_sum_ns.fetch_add(static_cast<std::uint64_t>(latency.count()), std::memory_order_relaxed);
}

std::string metrics::render(const cache_figures& cache, const storage::store_stats& store, bool ready,
                            const response_figures& responses, const maintenance_figures& maintenance,
                            const rate_limit_figures& rate) const {
  std::string out;
  out.reserve(8192);
  const auto line = [&out](const std::string& l) {
    out += l;
    out += '\n';
  };

  line("# HELP tokend_http_requests_total API requests answered, by route and status.");
  line("# TYPE tokend_http_requests_total counter");
  for (std::size_t r = 0; r < route_count; ++r) {
    for (std::size_t i = 0; i < statuses.size(); ++i) {
      const auto n = routes_[r].by_status[i].load(std::memory_order_relaxed);
      if (n == 0) continue;
      const std::string code = statuses[i] ? std::to_string(statuses[i]) : "other";
      line(std::string("tokend_http_requests_total{route=\"") + route_names[r] + "\",status=\"" + code +
           "\"} " + std::to_string(n));
    }
  }

  line("# HELP tokend_http_request_duration_seconds Time from a complete request to its response.");
  line("# TYPE tokend_http_request_duration_seconds histogram");
  for (std::size_t r = 0; r < route_count; ++r) {
    const auto& s = routes_[r];
    const std::string label = std::string("route=\"") + route_names[r] + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < latency_bounds.size(); ++b) {
      cumulative += s.latency_buckets[b].load(std::memory_order_relaxed);
      line("tokend_http_request_duration_seconds_bucket{" + label + ",le=\"" + number(latency_bounds[b]) +
           "\"} " + std::to_string(cumulative));
    }
    cumulative += s.latency_buckets[latency_bounds.size()].load(std::memory_order_relaxed);
    line("tokend_http_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " +
         std::to_string(cumulative));
    line("tokend_http_request_duration_seconds_sum{" + label + "} " +
         number(static_cast<double>(s.latency_sum_ns.load(std::memory_order_relaxed)) / 1e9));
    line("tokend_http_request_duration_seconds_count{" + label + "} " + std::to_string(cumulative));
  }

  line("# HELP tokend_open_connections Client connections currently open on the API listener.");
  line("# TYPE tokend_open_connections gauge");
  line("tokend_open_connections " + std::to_string(open_connections()));
  line("# HELP tokend_http_connections_total Client connections accepted on the API listener.");
  line("# TYPE tokend_http_connections_total counter");
  line("tokend_http_connections_total " +
       std::to_string(accepted_connections_.load(std::memory_order_relaxed)));
  line(
      "# HELP tokend_http_connections_refused_total API connections closed unserved: --max-connections was "
      "reached.");
  line("# TYPE tokend_http_connections_refused_total counter");
  line("tokend_http_connections_refused_total " +
       std::to_string(refused_connections_.load(std::memory_order_relaxed)));
  line(
      "# HELP tokend_admin_connections_refused_total Admin connections closed unserved: "
      "--admin-max-connections was reached.");
  line("# TYPE tokend_admin_connections_refused_total counter");
  line("tokend_admin_connections_refused_total " +
       std::to_string(refused_admin_connections_.load(std::memory_order_relaxed)));
  line("# HELP tokend_accept_errors_total Failed accepts on either listener (out of descriptors, mostly).");
  line("# TYPE tokend_accept_errors_total counter");
  line("tokend_accept_errors_total " + std::to_string(accept_failures_.load(std::memory_order_relaxed)));
  line("# HELP tokend_response_in_flight_bytes Bytes of list answers built and not yet written.");
  line("# TYPE tokend_response_in_flight_bytes gauge");
  line("tokend_response_in_flight_bytes " + std::to_string(responses.in_flight_bytes));
  line("# HELP tokend_response_in_flight_peak_bytes Highest tokend_response_in_flight_bytes since start.");
  line("# TYPE tokend_response_in_flight_peak_bytes gauge");
  line("tokend_response_in_flight_peak_bytes " + std::to_string(responses.peak_bytes));
  line("# HELP tokend_response_in_flight_limit_bytes The bound on it: --max-response-bytes-in-flight.");
  line("# TYPE tokend_response_in_flight_limit_bytes gauge");
  line("tokend_response_in_flight_limit_bytes " + std::to_string(responses.limit_bytes));
  line("# HELP tokend_response_budget_refusals_total List requests answered 503: the bound was reached.");
  line("# TYPE tokend_response_budget_refusals_total counter");
  line("tokend_response_budget_refusals_total " + std::to_string(responses.refused));

  line("# HELP tokend_rate_limited_total Requests refused for their key's rate limit, by route.");
  line("# TYPE tokend_rate_limited_total counter");
  for (std::size_t r = 0; r < route_count; ++r) {
    // Unknown paths and methods are answered before any key is read: never rate limited.
    if (static_cast<route>(r) == route::other) continue;
    line(std::string("tokend_rate_limited_total{route=\"") + route_names[r] + "\"} " +
         std::to_string(rate_limited_[r].load(std::memory_order_relaxed)));
  }
  line("# HELP tokend_rate_limit_buckets Keys with a rate-limit bucket in this process.");
  line("# TYPE tokend_rate_limit_buckets gauge");
  line("tokend_rate_limit_buckets " + std::to_string(rate.buckets));
  line(
      "# HELP tokend_rate_limit_share 1, or n while counts cannot be shared and this process holds "
      "itself to 1/n of every limit.");
  line("# TYPE tokend_rate_limit_share gauge");
  line("tokend_rate_limit_share " + std::to_string(rate.share));
  line(
      "# HELP tokend_rate_limit_shares_failed_total Rounds of sharing admitted counts with the other "
      "processes that failed.");
  line("# TYPE tokend_rate_limit_shares_failed_total counter");
  line("tokend_rate_limit_shares_failed_total " + std::to_string(rate.shares_failed));

  line("# HELP tokend_cache_hits_total Key validations answered from the in-memory cache.");
  line("# TYPE tokend_cache_hits_total counter");
  line("tokend_cache_hits_total " + std::to_string(cache.hits));
  line("# HELP tokend_cache_misses_total Key validations that had to ask the store.");
  line("# TYPE tokend_cache_misses_total counter");
  line("tokend_cache_misses_total " + std::to_string(cache.misses));
  line("# HELP tokend_cache_entries Keys (positive and negative) held in the cache.");
  line("# TYPE tokend_cache_entries gauge");
  line("tokend_cache_entries " + std::to_string(cache.entries));
  line("# HELP tokend_cache_capacity Maximum number of cached keys.");
  line("# TYPE tokend_cache_capacity gauge");
  line("tokend_cache_capacity " + std::to_string(cache.capacity));

  line("# HELP tokend_store_write_batches_total Write batches committed by the group-commit writer.");
  line("# TYPE tokend_store_write_batches_total counter");
  line("tokend_store_write_batches_total " + std::to_string(store.batches));
  line("# HELP tokend_store_batched_writes_total Writes committed in those batches.");
  line("# TYPE tokend_store_batched_writes_total counter");
  line("tokend_store_batched_writes_total " + std::to_string(store.batched_writes));
  line("# HELP tokend_store_write_failures_total Write batches the store failed to commit.");
  line("# TYPE tokend_store_write_failures_total counter");
  line("tokend_store_write_failures_total " + std::to_string(store.write_failures));
  line("# HELP tokend_store_batch_size Writes per committed batch.");
  line("# TYPE tokend_store_batch_size histogram");
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < storage::batch_size_buckets; ++b) {
    cumulative += store.batch_size_counts[b];
    const std::string le = b + 1 < storage::batch_size_buckets ? std::to_string(1u << b) : "+Inf";
    line("tokend_store_batch_size_bucket{le=\"" + le + "\"} " + std::to_string(cumulative));
  }
  line("tokend_store_batch_size_sum " + std::to_string(store.batched_writes));
  line("tokend_store_batch_size_count " + std::to_string(cumulative));
  line("# HELP tokend_store_queue_depth Writes waiting for the group-commit writer.");
  line("# TYPE tokend_store_queue_depth gauge");
  line("tokend_store_queue_depth " + std::to_string(store.queue_depth));
  line(
      "# HELP tokend_key_uses_recorded_total Key uses written to the store (at most one per key per "
      "minute).");
  line("# TYPE tokend_key_uses_recorded_total counter");
  line("tokend_key_uses_recorded_total " + std::to_string(maintenance.uses_recorded));
  line("# HELP tokend_expired_tokens_removed_total Expired tokens removed by the sweep after the retention.");
  line("# TYPE tokend_expired_tokens_removed_total counter");
  line("tokend_expired_tokens_removed_total " + std::to_string(maintenance.expired_removed));
  line("# HELP tokend_ready 1 while the service accepts traffic (store open, not draining).");
  line("# TYPE tokend_ready gauge");
  line(std::string("tokend_ready ") + (ready ? "1" : "0"));
  line("# HELP tokend_start_time_seconds Start time of the process since the Unix epoch.");
  line("# TYPE tokend_start_time_seconds gauge");
  char start[32];
  std::snprintf(start, sizeof start, "%.3f", start_time_seconds_);
  line(std::string("tokend_start_time_seconds ") + start);
  line("# HELP tokend_build_info Always 1; the labels name the running build and its malloc.");
  line("# TYPE tokend_build_info gauge");
  line(std::string("tokend_build_info{version=\"") + TOKEND_VERSION + "\",allocator=\"" +
       std::string(core::allocator_name()) + "\"} 1");
  return out;
}

}  // namespace tokend::server
