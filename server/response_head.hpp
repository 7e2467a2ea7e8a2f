// The status line and header block of a response, written into a flat string.
//
// The session sends this string and the body as one gather write: Beast's generic serializer
// produces the same bytes at a much higher CPU cost (see docs/PERFORMANCE.md); tests hold the two
// to byte-for-byte equality.
#pragma once

#include "server/http_response.hpp"

#include <cstddef>
#include <string>

namespace tokend::server {

// How the session frames a response on its connection.
struct response_framing {
  unsigned version = 11;           // the request's (10 for HTTP/1.0)
  bool keep_alive = true;          // the connection stays open after this response
  std::size_t content_length = 0;  // the body's, also when a HEAD response goes without it
};

// Replaces `out` with "HTTP/1.x <code> <reason>\r\n", the response's fields, Connection where the
// version's default is not what `keep_alive` says, Content-Length (not on 1xx or 204, RFC 9110
// 8.6), and the blank line: what Beast writes after keep_alive() and prepare_payload().
void write_response_head(const http_response& res, const response_framing& framing, std::string& out);

}  // namespace tokend::server
