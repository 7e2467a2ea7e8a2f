// The API listener's endpoint: around the router (api_router.hpp), every request gets its id, the
// common response headers, its metrics and access line, and a 500 when the router throws. It also
// holds the API's connection cap.
#pragma once

#include "server/api_router.hpp"
#include "server/endpoint.hpp"
#include "server/metrics.hpp"
#include "server/response_budget.hpp"
#include "server/token_service.hpp"

#include <cstddef>
#include <functional>
#include <string_view>

namespace tokend::server {

struct api_endpoint_settings {
  session_options session;
  std::size_t max_connections = 0;  // open API connections; more are closed at once
  bool access_log = false;          // one line per request
  api_options api;                  // expiry of new keys, /verify's rate-limit status
};

class api_endpoint final : public endpoint {
 public:
  // Testing only: runs when a response is about to go out, and may throw.
  using response_hook = std::function<void(std::string_view target)>;

  // Every argument must outlive the endpoint; `after_response` may be empty, and is read per request.
  api_endpoint(const api_endpoint_settings& settings, token_service& service, response_budget& responses,
               metrics& counters, const response_hook& after_response);

  [[nodiscard]] std::string_view name() const noexcept override { return "api"; }
  [[nodiscard]] session_options options() const override { return settings_.session; }
  [[nodiscard]] request_handler handler() override;
  [[nodiscard]] protocol_error_observer observer() override;
  [[nodiscard]] bool admit() noexcept override;
  void closed() noexcept override;

 private:
  boost::asio::awaitable<http_response> respond(http_request& request, response_hold& hold);
  void refused_while_reading(unsigned status);

  api_endpoint_settings settings_;
  token_service& service_;
  response_budget& responses_;
  metrics& metrics_;
  const response_hook& after_response_;
};

}  // namespace tokend::server
