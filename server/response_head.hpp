// The status line and header block of a response, written into a flat string.
//
// The session sends this string and the body as one gather write: Beast's generic serializer
// produces the same bytes at a much higher CPU cost (see docs/PERFORMANCE.md); tests hold the two
// to byte-for-byte equality.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

namespace tokend::server {

// Replaces `out` with "HTTP/1.x <code> <reason>\r\n", every field as "Name: value\r\n", and the
// blank line. Fields go out as they are: Content-Length and Connection must already be set
// (prepare_payload(), keep_alive()).
void write_response_head(const boost::beast::http::response<boost::beast::http::string_body>& res,
                         std::string& out);

}  // namespace tokend::server
