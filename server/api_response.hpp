// Response bodies of the API, byte for byte as API.md shows them, and the one mapping from an
// error code to an HTTP status.
#pragma once

#include "server/api_parsing.hpp"
#include "server/response_budget.hpp"
#include "server/route.hpp"
#include "server/token_service.hpp"

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokend::server {

// What a handler decided; the session turns it into an HTTP response.
struct api_reply {
  api_reply() = default;
  api_reply(unsigned s, std::string b, route r = route::other, bool not_allowed = false)
      : status(s), body(std::move(b)), route_label(r), method_not_allowed(not_allowed) {}

  unsigned status = 200;
  std::string body;
  route route_label = route::other;
  bool method_not_allowed = false;   // adds `Allow: <allow>`
  std::string_view allow;            // the path's methods, when method_not_allowed
  unsigned retry_after_seconds = 0;  // adds `Retry-After` when not 0
  response_budget::lease hold;       // the body's share of the response budget, until it is written
  // /verify only: the verified key's owner on a 200 (X-Tokend-User-Id, X-Tokend-Token-Type), or
  // the Bearer challenge on a 401 (WWW-Authenticate); see verify.hpp.
  std::optional<caller> verified;
  bool bearer_challenge = false;
  // The caller's key is rate limited: RateLimit-Policy and RateLimit (and Retry-After on a
  // refusal) go out with whatever the answer is. Unset for unlimited keys: no header, no work.
  std::optional<rate_state> rate;
  bool rate_limited = false;  // refused for its rate limit (counted by route in metrics)
};

inline constexpr std::string_view allowed_methods = "GET, POST, DELETE, PATCH";
inline constexpr std::string_view roll_allowed_methods = "POST";
inline constexpr std::string_view limited_allowed_methods = "GET";
inline constexpr std::string_view quota_allowed_methods = "GET, PUT";

// The two refusals of a key acting beyond its rights (403).
inline constexpr std::string_view other_user_refusal = "Only an operator key may act for another user";
inline constexpr std::string_view operator_create_refusal = "Only an operator key may create an operator key";
// Operator-only operations of rate limits (403 to an admin key).
inline constexpr std::string_view generous_limit_refusal =
    "Only an operator key may give a key a more generous rate limit than the default";
inline constexpr std::string_view rate_limit_change_refusal = "Only an operator key may change a rate limit";
inline constexpr std::string_view limited_view_refusal = "Only an operator key may see limited keys";
inline constexpr std::string_view token_bound_change_refusal =
    "Only an operator key may change a token bound";
// The answer to a request over its key's rate limit (429 on the API; /verify's status is set).
inline constexpr std::string_view rate_limit_refusal = "Rate limit exceeded";

[[nodiscard]] unsigned status_for(const boost::system::error_code& ec) noexcept;

[[nodiscard]] std::string error_body(std::string_view message);
[[nodiscard]] api_reply error_reply(unsigned status, std::string_view message, route r = route::other);
// Status and message of a service error (the message of core::errc, never anything from a key).
[[nodiscard]] api_reply error_reply(const boost::system::error_code& ec, route r);

[[nodiscard]] std::string created_body(const token_service::created& token);
// `next_cursor`, when not empty, is the page's nextCursor (the page has more).
[[nodiscard]] std::string list_body(const storage::list_page& page, const page_request& paging,
                                    std::string_view next_cursor = {});
// 409 to a create past the user's bound, naming the bound that applies.
[[nodiscard]] api_reply token_limit_reply(std::uint64_t max_tokens, route r);
// GET and PUT /api/v2/tokens/quota.
[[nodiscard]] std::string quota_body(core::user_id user, const token_service::quota_view& quota);
// The new key (shown once, as in created_body) and what became of the old one.
[[nodiscard]] std::string rolled_body(const token_service::rolled& token);
[[nodiscard]] std::string deleted_body();
// PATCH /api/v2/tokens: the token's id and its own limit now (null: the server's default).
[[nodiscard]] std::string rate_limit_updated_body(std::uint64_t id,
                                                  const std::optional<core::rate_limit>& limit);
// GET /api/v2/tokens/limited: each key by owner, id and masked prefix, never the key.
[[nodiscard]] std::string limited_body(const std::vector<token_service::limited_key>& keys);
// A request refused for its key's rate limit, with its headers' figures; `status` is 429 on the
// API, /verify's configured one there.
[[nodiscard]] api_reply rate_limited_reply(unsigned status, const std::optional<rate_state>& rate, route r);

}  // namespace tokend::server
