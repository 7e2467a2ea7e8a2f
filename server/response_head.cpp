// See response_head.hpp.
#include "server/response_head.hpp"

namespace tokend::server {

void write_response_head(const boost::beast::http::response<boost::beast::http::string_body>& res,
                         std::string& out) {
  out.clear();
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.result_int());
  out += ' ';
  out += res.reason();
  out += "\r\n";
  for (const auto& field : res) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
}

}  // namespace tokend::server
