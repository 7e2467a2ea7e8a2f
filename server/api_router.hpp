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

// The values of every Authorization header of the request, in order (for caller_key). Inline
// room for two: one is the rule, and a second already decides the answer.
using authorization_values = boost::container::small_vector<std::string_view, 2>;
[[nodiscard]] authorization_values authorization_headers(const http_request& request);

// With a budget, each list answer holds a share of it (api_reply::hold) or is refused with 503.
// `policy` decides the expiry of the keys created and rolled.
[[nodiscard]] boost::asio::awaitable<api_reply> handle_api(const http_request& request,
                                                           token_service& service,
                                                           response_budget* budget = nullptr,
                                                           core::expiry_policy policy = {});

}  // namespace tokend::server
