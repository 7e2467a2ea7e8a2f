// The /api/v2/tokens endpoint: routing, authentication and the three operations.
#pragma once

#include "server/api_response.hpp"
#include "server/token_service.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace tokend::server {

using api_request = boost::beast::http::request<boost::beast::http::string_body>;

inline constexpr std::string_view tokens_path = "/api/v2/tokens";

// With a budget, each list answer holds a share of it (api_reply::hold) or is refused with 503.
[[nodiscard]] boost::asio::awaitable<api_reply> handle_api(const api_request& request, token_service& service,
                                                          response_budget* budget = nullptr);

}  // namespace tokend::server
