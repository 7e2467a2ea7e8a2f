// Request decoration and connection counting of the API; see api_endpoint.hpp.
#include "server/api_endpoint.hpp"

#include "server/api_router.hpp"
#include "server/log.hpp"
#include "server/request_log.hpp"
#include "server/verify.hpp"

#include <boost/beast/http/field.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

namespace tokend::server {
namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

constexpr std::string_view request_id_header = "X-Request-Id";
constexpr std::string_view rate_limit_policy_header = "RateLimit-Policy";
constexpr std::string_view rate_limit_header = "RateLimit";

// A header value built in place, on the stack: no stream, no intermediate strings. Room for the
// longest value written here, `"key";q=4294967295;w=4294967295`.
class header_text {
 public:
  header_text& operator<<(std::string_view text) noexcept {
    const std::size_t n = std::min(text.size(), buf_.size() - size_);
    std::memcpy(buf_.data() + size_, text.data(), n);
    size_ += n;
    return *this;
  }
  header_text& operator<<(std::uint32_t value) noexcept {
    std::array<char, 10> digits{};
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
    return *this << std::string_view(digits.data(), static_cast<std::size_t>(end - digits.data()));
  }
  [[nodiscard]] std::string_view view() const noexcept { return {buf_.data(), size_}; }

 private:
  std::array<char, 48> buf_{};
  std::size_t size_ = 0;
};

// The headers of the IETF HTTPAPI rate-limit draft, on every answer to a limited key's request:
// one policy, named "key" (the limit is per key). Retry-After, on a refusal, comes with the reply's
// retry_after_seconds.
void add_rate_limit_headers(const rate_state& rate, http_response& res) {
  header_text policy;
  policy << R"("key";q=)" << rate.limit.limit << ";w=" << rate.limit.window_seconds;
  res.insert(rate_limit_policy_header, policy.view());
  header_text state;
  state << R"("key";r=)" << rate.decision.remaining << ";t=" << rate.decision.reset_seconds;
  res.insert(rate_limit_header, state.view());
}

}  // namespace

api_endpoint::api_endpoint(const api_endpoint_settings& settings, token_service& service,
                           response_budget& responses, metrics& counters, const response_hook& after_response)
    : settings_(settings),
      service_(service),
      responses_(responses),
      metrics_(counters),
      after_response_(after_response) {}

request_handler api_endpoint::handler() {
  // Not a coroutine itself, so it captures nothing a coroutine frame would have to keep (see
  // docs/ARCHITECTURE.md#coroutine-rules).
  return [this](http_request& request, response_hold& hold) { return respond(request, hold); };
}

protocol_error_observer api_endpoint::observer() {
  return [this](unsigned status) { refused_while_reading(status); };
}

bool api_endpoint::admit() noexcept {
  if (metrics_.open_connections() >= static_cast<std::int64_t>(settings_.max_connections)) {
    // At the cap the connection is closed at once rather than left in the listen backlog: the
    // client learns in a round trip that this instance is full (and may retry elsewhere)
    // instead of waiting out its own timeout, and the backlog cannot hide an overload. Never a
    // 5xx: writing a response would cost the very resources the cap protects.
    metrics_.connection_refused();
    return false;
  }
  metrics_.connection_opened();
  return true;
}

void api_endpoint::closed() noexcept { metrics_.connection_closed(); }

// The session owns the request and the hold, and awaits this coroutine at once.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-reference-coroutine-parameters): the session outlives it
net::awaitable<http_response> api_endpoint::respond(http_request& request, response_hold& hold) {
  const auto started = std::chrono::steady_clock::now();
  const std::string request_id = request_id_for(request[request_id_header]);
  api_reply reply;
  try {
    reply = co_await handle_api(request, service_, &responses_, settings_.api);
  } catch (const std::exception& e) {
    log::error("request failed", {{"error", loggable_text(e.what())}, {"request_id", request_id}});
    reply = error_reply(500, "Internal server error");
  }
  http_response res{reply.status, std::move(reply.body)};
  res.insert(http::field::content_type, "application/json");
  res.insert(http::field::cache_control, "no-store");
  res.insert(request_id_header, request_id);
  if (reply.method_not_allowed)
    res.insert(http::field::allow, reply.allow.empty() ? allowed_methods : reply.allow);
  if (reply.retry_after_seconds) {
    header_text seconds;
    seconds << reply.retry_after_seconds;
    res.insert(http::field::retry_after, seconds.view());
  }
  if (reply.rate) add_rate_limit_headers(*reply.rate, res);
  add_verify_headers(reply, res);
  hold = std::move(reply.hold);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  metrics_.observe(reply.route_label, reply.status, elapsed);
  if (reply.rate_limited) metrics_.rate_limited(reply.route_label);
  if (after_response_) after_response_(request.target());
  if (settings_.access_log) {
    log::access(access_fields({request.method_string(), request.target(), reply.status,
                               std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed), request_id,
                               res.body().size(), request.body().size()}));
  }
  co_return res;
}

void api_endpoint::refused_while_reading(unsigned status) {
  metrics_.observe(route::other, status, {});
  // Refused while reading (431, 413, 400): no method or path worth trusting, and no response
  // header of ours to carry an id; the line still counts the request.
  if (settings_.access_log) {
    log::access(
        {{"status", status}, {"request_id", new_request_id()}, {"refused", "while reading the request"}});
  }
  log::debug("request refused while reading", {{"status", status}});
}

}  // namespace tokend::server
