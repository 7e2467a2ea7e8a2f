// Response bodies of the API, byte for byte as API.md shows them, and the one mapping from an
// error code to an HTTP status.
#pragma once

#include "server/api_parsing.hpp"
#include "server/response_budget.hpp"
#include "server/route.hpp"
#include "server/token_service.hpp"

#include <boost/system/error_code.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

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
};

inline constexpr std::string_view allowed_methods = "GET, POST, DELETE";
inline constexpr std::string_view roll_allowed_methods = "POST";

// The two refusals of a key acting beyond its rights (403).
inline constexpr std::string_view other_user_refusal = "Only an operator key may act for another user";
inline constexpr std::string_view operator_create_refusal = "Only an operator key may create an operator key";

[[nodiscard]] unsigned status_for(const boost::system::error_code& ec) noexcept;

[[nodiscard]] std::string error_body(std::string_view message);
[[nodiscard]] api_reply error_reply(unsigned status, std::string_view message, route r = route::other);
// Status and message of a service error (the message of core::errc, never anything from a key).
[[nodiscard]] api_reply error_reply(const boost::system::error_code& ec, route r);

[[nodiscard]] std::string created_body(const token_service::created& token);
[[nodiscard]] std::string list_body(const storage::list_page& page, const page_request& paging);
// The new key (shown once, as in created_body) and what became of the old one.
[[nodiscard]] std::string rolled_body(const token_service::rolled& token);
[[nodiscard]] std::string deleted_body();

}  // namespace tokend::server
