// Pure parsing of API requests: the caller's key, list paging, the user acted for, and the JSON
// bodies of create, delete, roll and rate-limit changes. No I/O here, so every rule is unit-tested without a
// socket.
#pragma once

#include "core/expiry_policy.hpp"
#include "core/rate_limit.hpp"
#include "core/token.hpp"
#include "server/request_target.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tokend::server {

// Either a value or the reason it was refused (a message safe to show the client: never a key).
template <class T>
struct parsed {
  std::optional<T> value;
  std::string problem;
  [[nodiscard]] explicit operator bool() const noexcept { return value.has_value(); }
};

// The key of one `Authorization: Bearer <key>` value, whitespace around either trimmed; nullopt for
// another scheme or a Bearer without credentials.
[[nodiscard]] std::optional<std::string_view> bearer_key(std::string_view authorization) noexcept;

// The caller's key from `?token=` (percent-decoded, among any other parameters) and/or an
// `Authorization: Bearer` header, given as the values of every Authorization header of the request
// (empty ones are ignored). Nullopt when absent, when two keys differ, when there are two or more
// Authorization headers, or when the one there is not Bearer with a key: every ambiguity is a 401.
[[nodiscard]] std::optional<std::string> caller_key(const request_target& target,
                                                    std::span<const std::string_view> authorization_headers);

inline constexpr std::size_t max_page_size = 1000;
// The deepest a `page` may reach (page x pageSize): a page skips every token before it, so past
// this a client follows nextCursor, which seeks, instead.
inline constexpr std::size_t max_list_offset = 10'000;

inline constexpr std::string_view cursor_with_page_problem = "cursor and page cannot be used together";
inline constexpr std::string_view invalid_cursor_problem = "cursor is not valid";
inline constexpr std::string_view deep_page_problem =
    "page is too deep: past 10000 tokens, follow nextCursor instead";

struct page_request {
  std::size_t page = 0;
  std::size_t page_size = max_page_size;
  bool explicit_paging = false;  // page, pageSize or cursor was given: the response carries paging fields
  bool page_given = false;       // the response then also says which page
  std::optional<std::string> cursor;  // as given; the router checks its signature and owner
};
// Refuses a page deeper than max_list_offset, a cursor with a page, and a cursor given twice.
[[nodiscard]] parsed<page_request> parse_paging(const request_target& target);

// The largest user id the `userId` parameter names: 2^53, the largest integer every JSON reader
// (a JavaScript client's included) holds exactly.
inline constexpr core::user_id max_user_id = core::user_id{1} << 53;

// The `userId` query parameter: the user a request acts for, absent when not given (the caller's
// own). Refused when given twice or not an integer from 1 to max_user_id.
struct acting_user {
  std::optional<core::user_id> user;
};
[[nodiscard]] parsed<acting_user> parse_user_id(const request_target& target);

// The `n` of GET /api/v2/tokens/limited: how many keys, 1 to max_limited_keys, default 20.
inline constexpr std::size_t max_limited_keys = 100;
inline constexpr std::size_t default_limited_keys = 20;
[[nodiscard]] parsed<std::size_t> parse_limited_count(const request_target& target);

struct create_body {
  std::string type;  // core::admin_type or core::operator_type (who may ask for which is the router's)
  std::string description;
  core::expiry_request expiry;  // optional `expiresAt` / `expiresIn`, judged by core::decide_expiry
  // Optional `rateLimit` (see rate_limit_body): absent or null, the server's default applies.
  std::optional<core::rate_limit> rate_limit;
};
// Every body is refused when not a JSON object or when an object names a member twice.
[[nodiscard]] parsed<create_body> parse_create_body(std::string_view body);

// The token a delete or roll names: by its key (`token`, format checked by the service: a
// malformed key is "not found") or by the `id` a list shows; exactly one of them.
struct token_selector {
  std::optional<std::string> key;
  std::uint64_t id = 0;  // when key is absent: >= 1
};
[[nodiscard]] parsed<token_selector> parse_delete_body(std::string_view body);

// How long a rolled key may keep working at most: 30 days.
inline constexpr std::int64_t max_overlap_seconds = std::int64_t{30} * 86'400;

struct roll_body {
  token_selector old;
  std::int64_t overlap = 0;     // seconds the old key keeps working, 0 to max_overlap_seconds
  core::expiry_request expiry;  // the new key's
  // `rateLimit` absent: the new key keeps the old one's own limit; null or an object: replaced.
  core::rate_limit_update rate_limit;
};
[[nodiscard]] parsed<roll_body> parse_roll_body(std::string_view body);

// The body of PATCH /api/v2/tokens: the token (as a delete names it) and its new own limit, which
// is required (null: back to the server's default).
//
// `rateLimit`, wherever it appears, is null or `{"limit":N}` with optional `window` (seconds,
// default 1) and `burst` (0 or absent: the limit), integers within core/rate_limit.hpp's bounds,
// and no other member; anything else is refused naming the member.
struct rate_limit_body {
  token_selector target;
  std::optional<core::rate_limit> rate_limit;
};
[[nodiscard]] parsed<rate_limit_body> parse_rate_limit_body(std::string_view body);

// The body of PUT /api/v2/tokens/quota: `{"userId":N,"maxTokens":M}` with `maxTokens` null (back to
// the server's default) or 0 (none) to max_tokens_bound, both required and nothing else; anything
// else is refused naming the member.
inline constexpr std::uint64_t max_tokens_bound = 1'000'000'000;
struct quota_body {
  core::user_id user = 0;
  std::optional<std::uint64_t> max_tokens;
};
[[nodiscard]] parsed<quota_body> parse_quota_body(std::string_view body);

// Whether a Content-Type names JSON in UTF-8: application/json, or any application/*+json, with
// any parameters but a charset other than utf-8 (any case, quoted or not).
[[nodiscard]] bool is_json_content_type(std::string_view content_type);

}  // namespace tokend::server
