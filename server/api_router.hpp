// The /api/v2/tokens endpoints: routing, authentication, who a request acts for, and the operations.
#pragma once

#include "core/expiry_policy.hpp"
#include "server/api_response.hpp"
#include "server/http_message.hpp"
#include "server/token_service.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include <string_view>

namespace tokend::server {

inline constexpr std::string_view tokens_path = "/api/v2/tokens";
inline constexpr std::string_view roll_path = "/api/v2/tokens/roll";
inline constexpr std::string_view limited_path = "/api/v2/tokens/limited";
inline constexpr std::string_view quota_path = "/api/v2/tokens/quota";

// What the API's answers depend on beyond the request and the service.
struct api_options {
  core::expiry_policy expiry;                 // of the keys created and rolled
  unsigned verify_rate_limited_status = 429;  // /verify's answer to a key over its rate limit
};

// The values of every Authorization header of the request, in order (for caller_key). Inline
// room for two: one is the rule, and a second already decides the answer.
using authorization_values = boost::container::small_vector<std::string_view, 2>;
[[nodiscard]] authorization_values authorization_headers(const http_request& request);

// With a budget, each list answer holds a share of it (api_reply::hold) or is refused with 503.
// A key over its rate limit is answered at once after authentication (429, or /verify's status);
// every answer to a limited key carries its rate_state for the headers.
[[nodiscard]] boost::asio::awaitable<api_reply> handle_api(const http_request& request,
                                                           token_service& service,
                                                           response_budget* budget = nullptr,
                                                           api_options options = {});

}  // namespace tokend::server
