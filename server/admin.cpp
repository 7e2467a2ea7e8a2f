// Probes and metrics. /healthz only says the process answers; /readyz says it should get traffic.
#include "server/admin.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <utility>

namespace tokend::server {
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

http_response json_response(unsigned status, std::string body) {
  http_response res{status, std::move(body)};
  res.insert(http::field::content_type, "application/json");
  return res;
}

net::awaitable<http_response> already(http_response res) { co_return res; }

}  // namespace

http_response handle_admin(const http_request& request, const admin_sources& sources) {
  const auto target = request.target();
  const auto path = target.substr(0, target.find('?'));
  if (path != "/healthz" && path != "/readyz" && path != "/metrics") {
    return json_error_response(404, "Not Found");
  }
  if (request.method() != http::verb::get) {
    auto res = json_error_response(405, "Method Not Allowed");
    res.insert(http::field::allow, "GET");
    return res;
  }
  http_response res;
  if (path == "/healthz") {
    res = json_response(200, R"({"status":"ok"})");
  } else if (path == "/readyz") {
    res = sources.ready() ? json_response(200, R"({"status":"ready"})")
                          : json_response(503, R"({"status":"not ready"})");
  } else {
    res = http_response{200, sources.metrics_text()};
    res.insert(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  }
  return res;
}

admin_endpoint::admin_endpoint(session_options options, std::size_t max_connections, admin_sources sources,
                               metrics& counters)
    : options_(options),
      max_connections_(max_connections),
      sources_(std::move(sources)),
      metrics_(counters) {}

request_handler admin_endpoint::handler() {
  // Answered without suspending: the response is made at once and handed over as an awaitable.
  return [this](http_request& request, response_hold&) { return already(handle_admin(request, sources_)); };
}

bool admin_endpoint::admit() noexcept {
  if (open_.load(std::memory_order_relaxed) >= max_connections_) {
    metrics_.admin_connection_refused();
    return false;
  }
  open_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace tokend::server
