// The /api/v2/tokens endpoint: routing, authentication and the three operations.
#pragma once

#include "server/api_response.hpp"
#include "server/token_service.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string_view>
#include <vector>

namespace tokend::server {

using api_request = boost::beast::http::request<boost::beast::http::string_body>;

inline constexpr std::string_view tokens_path = "/api/v2/tokens";

// The values of every Authorization header of the request, in order (for caller_key).
[[nodiscard]] std::vector<std::string_view> authorization_headers(const api_request& request);

[[nodiscard]] boost::asio::awaitable<api_reply> handle_api(const api_request& request, token_service& service);

}  // namespace tokend::server
