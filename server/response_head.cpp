// See response_head.hpp.
#include "server/response_head.hpp"

#include <boost/beast/http/status.hpp>

#include <array>
#include <charconv>

namespace tokend::server {

void write_response_head(const http_response& res, const response_framing& framing, std::string& out) {
  namespace http = boost::beast::http;
  const unsigned status = res.result_int();
  std::array<char, 20> digits{};
  out.assign(framing.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out.append(digits.data(), std::to_chars(digits.data(), digits.data() + digits.size(), status).ptr);
  out += ' ';
  out += http::obsolete_reason(static_cast<http::status>(status));
  out += "\r\n";
  out += res.fields();
  // Persistence is HTTP/1.1's default and not HTTP/1.0's (RFC 9112 9.3): only the exception is
  // said, by the request's version as Beast's keep_alive() and the request's own keep_alive() judge.
  if (framing.version < 11 && framing.keep_alive) out += "Connection: keep-alive\r\n";
  if (framing.version >= 11 && !framing.keep_alive) out += "Connection: close\r\n";
  if (status >= 200 && status != 204) {
    out += "Content-Length: ";
    out.append(digits.data(),
               std::to_chars(digits.data(), digits.data() + digits.size(), framing.content_length).ptr);
    out += "\r\n";
  }
  out += "\r\n";
}

}  // namespace tokend::server
