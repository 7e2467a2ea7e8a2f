// The admin listener's requests: /healthz, /readyz and /metrics, and its endpoint.
#pragma once

#include "server/endpoint.hpp"
#include "server/http_session.hpp"
#include "server/metrics.hpp"

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

namespace tokend::server {

struct admin_sources {
  std::function<bool()> ready;  // store open and healthy, not draining
  std::function<std::string()> metrics_text;
};

[[nodiscard]] http_response handle_admin(const http_request& request, const admin_sources& sources);

// The admin listener's endpoint. Its connection cap is its own: the API's was computed leaving it
// this many descriptors, so a full API cannot starve the probes, nor a flood of admin connections
// the API.
class admin_endpoint final : public endpoint {
 public:
  // `counters` must outlive the endpoint.
  admin_endpoint(session_options options, std::size_t max_connections, admin_sources sources,
                 metrics& counters);

  [[nodiscard]] std::string_view name() const noexcept override { return "admin"; }
  [[nodiscard]] session_options options() const override { return options_; }
  [[nodiscard]] request_handler handler() override;
  [[nodiscard]] protocol_error_observer observer() override { return {}; }
  [[nodiscard]] bool admit() noexcept override;
  void closed() noexcept override { open_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  session_options options_;
  std::size_t max_connections_;
  admin_sources sources_;
  metrics& metrics_;
  std::atomic<std::size_t> open_{0};  // counted like metrics's open API connections
};

}  // namespace tokend::server
