// The gateway endpoint /verify: nginx auth_request, ingress-nginx auth-url, Envoy ext_authz (HTTP)
// and Traefik ForwardAuth ask it whether the key of the request they are about to forward is good.
//
// The key may travel in any of five places; every one that is present must carry the same key, and
// anything ambiguous (a repeated header, a forwarded URI that does not parse) is refused, because
// the service behind the gateway might read the key from the place this check did not.
#pragma once

#include "core/key.hpp"
#include "server/api_response.hpp"
#include "server/http_session.hpp"
#include "server/token_service.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <cstddef>
#include <string_view>

namespace tokend::server {

inline constexpr std::string_view verify_path = "/verify";

// The forwarded-URI headers of the gateways: origin-form (nginx, Traefik) and absolute (ingress-nginx).
inline constexpr std::string_view original_uri_header = "X-Original-URI";
inline constexpr std::string_view original_url_header = "X-Original-URL";
inline constexpr std::string_view forwarded_uri_header = "X-Forwarded-Uri";

// Response headers of an allowed request, and the challenge of a refused one.
inline constexpr std::string_view user_id_header = "X-Tokend-User-Id";
inline constexpr std::string_view token_type_header = "X-Tokend-Token-Type";
inline constexpr std::string_view bearer_challenge = "Bearer realm=\"tokend\"";

// True for /verify and any path under /verify/ (not /verifyx), whatever the query.
[[nodiscard]] bool is_verify_target(std::string_view target) noexcept;

// Why no key came out of a request (every one of them is a 401).
enum class key_problem {
  none,             // a single key was found (it may still be malformed or unknown)
  missing,          // no source carries a key
  conflicting,      // two sources (or two `token` parameters) carry different keys
  repeated_header,  // Authorization or a forwarded-URI header appears more than once
  malformed_uri,    // a forwarded URI, or the request's own query, does not parse
  too_long,         // a candidate is longer than any key: it cannot be one
};

// The key a gateway's request carries, decoded into a buffer of its own: no allocation.
struct gateway_key {
  key_problem problem = key_problem::missing;
  std::array<char, core::key_hex_length> text{};
  std::size_t size = 0;

  [[nodiscard]] std::string_view key() const noexcept { return {text.data(), size}; }
  [[nodiscard]] explicit operator bool() const noexcept { return problem == key_problem::none; }
};

// The key from `Authorization: Bearer`, the request's own `token` query parameter, and the `token`
// parameter of X-Original-URI, X-Original-URL and X-Forwarded-Uri. Candidates are compared by
// digest, like caller_key's, so no comparison's timing depends on a key's characters.
[[nodiscard]] gateway_key gateway_key_of(const http_request& request) noexcept;

// The answer to a /verify request: 200 with the owner, 401 with the challenge, 503 when the store
// cannot answer for a key that is not cached. A cached key is answered without suspending. A key
// over its rate limit gets `rate_limited_status` (429, or 403/401 for gateways that turn any other
// refusal into a 500) without a challenge: the key is good, the client must wait.
[[nodiscard]] boost::asio::awaitable<api_reply> handle_verify(const http_request& request,
                                                              token_service& service,
                                                              unsigned rate_limited_status = 429);

// Adds the /verify headers a reply asks for (none for any other reply).
void add_verify_headers(const api_reply& reply, http_response& response);

}  // namespace tokend::server
