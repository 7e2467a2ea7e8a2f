// The admin listener's requests: /healthz, /readyz and /metrics.
#pragma once

#include "server/http_session.hpp"

#include <functional>
#include <string>

namespace tokend::server {

struct admin_sources {
  std::function<bool()> ready;  // store open and healthy, not draining
  std::function<std::string()> metrics_text;
};

[[nodiscard]] http_response handle_admin(const http_request& request, const admin_sources& sources);

}  // namespace tokend::server
