// One listener's side of the service as its accept loop (listener.hpp) sees it: which connections
// it takes, and how their requests are answered.
#pragma once

#include "server/http_session.hpp"

#include <string_view>

namespace tokend::server {

class endpoint {
 public:
  endpoint() = default;
  virtual ~endpoint() = default;
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;
  endpoint(endpoint&&) = delete;
  endpoint& operator=(endpoint&&) = delete;

  // Names the listener in log lines ("api", "admin").
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  [[nodiscard]] virtual session_options options() const = 0;
  // Both are copied into every session and use the endpoint, which must outlive the sessions.
  [[nodiscard]] virtual request_handler handler() = 0;
  [[nodiscard]] virtual protocol_error_observer observer() = 0;
  // Counts a newly accepted connection in; at the endpoint's cap, counts its refusal instead and
  // returns false, and the connection is closed at once.
  [[nodiscard]] virtual bool admit() noexcept = 0;
  // A connection admit() counted in has ended.
  virtual void closed() noexcept = 0;
};

}  // namespace tokend::server
