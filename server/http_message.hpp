// The one request and response type of both listeners: whole messages with string bodies.
#pragma once

#include "server/http_response.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace tokend::server {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;

}  // namespace tokend::server
