// Probes and metrics. /healthz only says the process answers; /readyz says it should get traffic.
#include "server/admin.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

namespace tokend::server {
namespace http = boost::beast::http;

namespace {

http_response json_response(http::status status, std::string body) {
  http_response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

}  // namespace

http_response handle_admin(const http_request& request, const admin_sources& sources) {
  const auto target = request.target();
  const auto path = target.substr(0, target.find('?'));
  if (path != "/healthz" && path != "/readyz" && path != "/metrics") {
    return json_error_response(404, "Not Found");
  }
  if (request.method() != http::verb::get) {
    auto res = json_error_response(405, "Method Not Allowed");
    res.set(http::field::allow, "GET");
    return res;
  }
  http_response res;
  if (path == "/healthz") {
    res = json_response(http::status::ok, R"({"status":"ok"})");
  } else if (path == "/readyz") {
    res = sources.ready() ? json_response(http::status::ok, R"({"status":"ready"})")
                          : json_response(http::status::service_unavailable, R"({"status":"not ready"})");
  } else {
    res = http_response{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = sources.metrics_text();
  }
  return res;
}

}  // namespace tokend::server
