// JSON bodies and error mapping; see api_response.hpp.
#include "server/api_response.hpp"

#include "core/enum_table.hpp"
#include "core/error.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tokend::server {
namespace {

// Success bodies are written straight into one string, because a boost::json::object per token
// dominated the CPU of a list request (see docs/PERFORMANCE.md). Member order is the public API's;
// Boost.JSON still does every escape that is needed.
void append_json_string(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
  }
}

// Digits written in place: a list writes several numbers per token, and std::to_string would
// build a string for each.
template <class Integer>
void append_integer(std::string& out, Integer value) {
  std::array<char, 24> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value).ptr;
  out.append(digits.data(), end);
}

// Unix seconds as a string, like `timestamp`, or null for 0 (never / not yet).
void append_optional_time(std::string& out, std::int64_t seconds) {
  if (seconds == 0) {
    out += "null";
    return;
  }
  out += '"';
  append_integer(out, seconds);
  out += '"';
}

// A key's own rate limit, its burst written out, or null when it follows the server's default.
void append_rate_limit(std::string& out, const std::optional<core::rate_limit>& limit) {
  if (!limit) {
    out += "null";
    return;
  }
  out += R"({"limit":)";
  append_integer(out, limit->limit);
  out += R"(,"window":)";
  append_integer(out, limit->window_seconds);
  out += R"(,"burst":)";
  append_integer(out, limit->bucket());
  out += '}';
}

void append_token_json(std::string& out, std::string_view token, const core::token_record& r) {
  out += R"({"token":)";
  append_json_string(out, token);
  out += R"(,"description":)";
  append_json_string(out, r.description);
  out += R"(,"type":)";
  append_json_string(out, r.type);
  out += R"(,"timestamp":")";  // a string, as the public API has it
  append_integer(out, r.created_at);
  out += R"(","userId":)";
  append_integer(out, r.owner);
  out += R"(,"id":)";
  append_integer(out, r.id);
  out += R"(,"expiresAt":)";
  append_optional_time(out, r.expires_at);
  out += R"(,"lastUsedAt":)";
  append_optional_time(out, r.last_used_at);
  out += R"(,"rateLimit":)";
  append_rate_limit(out, r.rate_limit);
  out += '}';
}

// The one mapping from an error code to an HTTP status.
constexpr core::enum_table<core::errc, unsigned, 7> statuses = {{{core::errc::unauthorized, 401},
                                                                 {core::errc::not_found, 404},
                                                                 {core::errc::bad_request, 400},
                                                                 {core::errc::overloaded, 503},
                                                                 {core::errc::unavailable, 503},
                                                                 {core::errc::internal, 500},
                                                                 {core::errc::quota_exceeded, 409}}};

}  // namespace

unsigned status_for(const boost::system::error_code& ec) noexcept {
  if (ec.category() != core::error_category()) return 500;
  return core::value_of(statuses, static_cast<core::errc>(ec.value()), 500U);
}

std::string error_body(std::string_view message) {
  // Built by hand around the escaped message, because every 4xx answer goes through here (see
  // docs/PERFORMANCE.md).
  std::string body = R"({"success":false,"message":)";
  body += boost::json::serialize(boost::json::string_view(message.data(), message.size()));
  body += '}';
  return body;
}

api_reply error_reply(unsigned status, std::string_view message, route r) {
  return {status, error_body(message), r, false};
}

api_reply error_reply(const boost::system::error_code& ec, route r) {
  // Foreign categories (a bug, or a store passing through its own codes) must not leak their text.
  const bool ours = ec.category() == core::error_category();
  if (ours && ec.value() == static_cast<int>(core::errc::unauthorized)) {
    // Every refused key (authfail, a gateway's failed check) answers this body: built once.
    static const std::string unauthorized = error_body(ec.message());
    return {401, unauthorized, r, false};
  }
  return error_reply(status_for(ec), ours ? ec.message() : "Internal server error", r);
}

api_reply rate_limited_reply(unsigned status, const std::optional<rate_state>& rate, route r) {
  api_reply reply = error_reply(status, rate_limit_refusal, r);
  reply.retry_after_seconds = std::max(1U, rate ? rate->decision.retry_after_seconds : 1U);
  reply.rate = rate;
  reply.rate_limited = true;
  return reply;
}

std::string created_body(const token_service::created& token) {
  std::string body;
  body.reserve(384);  // one allocation for a usual token
  body += R"({"success":true,"message":"Token created successfully","token":)";
  append_token_json(body, token.key, token.record);
  body += '}';
  return body;
}

std::string list_body(const storage::list_page& page, const page_request& paging,
                      std::string_view next_cursor) {
  std::string body;
  body.reserve(64 + page.tokens.size() * 240);
  body += R"({"success":true,"message":"Success","tokens":[)";
  for (std::size_t i = 0; i < page.tokens.size(); ++i) {
    if (i > 0) body += ',';
    const auto& r = page.tokens[i];
    append_token_json(body, core::masked_key(r.display_prefix), r);
  }
  body += ']';
  if (paging.explicit_paging) {
    // A cursor's page has no number; page or pageSize alone keep the page as before.
    if (!paging.cursor) {
      body += R"(,"page":)";
      append_integer(body, paging.page);
    }
    body += R"(,"pageSize":)";
    append_integer(body, paging.page_size);
    body += R"(,"hasMore":)";
    body += page.has_more ? "true" : "false";
  }
  if (!next_cursor.empty()) {
    body += R"(,"nextCursor":)";
    append_json_string(body, next_cursor);
  }
  body += '}';
  return body;
}

api_reply token_limit_reply(std::uint64_t max_tokens, route r) {
  std::string message = "Token limit reached: this user holds ";
  append_integer(message, max_tokens);
  message += " tokens, the most it may; delete some first";
  return error_reply(409, message, r);
}

std::string quota_body(core::user_id user, const token_service::quota_view& quota) {
  std::string body = R"({"success":true,"message":"Success","userId":)";
  append_integer(body, user);
  body += R"(,"tokens":)";
  append_integer(body, quota.tokens);
  body += R"(,"maxTokens":)";
  append_integer(body, quota.max_tokens);
  body += R"(,"ownBound":)";
  body += quota.own_bound ? "true" : "false";
  body += '}';
  return body;
}

std::string rolled_body(const token_service::rolled& token) {
  std::string body = R"({"success":true,"message":"Token rolled successfully","token":)";
  append_token_json(body, token.fresh.key, token.fresh.record);
  body += R"(,"previous":{"id":)";
  append_integer(body, token.old_id);
  body += R"(,"expiresAt":)";
  append_optional_time(body, token.old_expires_at);
  body += "}}";
  return body;
}

std::string deleted_body() { return R"({"success":true,"message":"Token deleted successfully"})"; }

std::string rate_limit_updated_body(std::uint64_t id, const std::optional<core::rate_limit>& limit) {
  std::string body = R"({"success":true,"message":"Rate limit updated","id":)";
  append_integer(body, id);
  body += R"(,"rateLimit":)";
  append_rate_limit(body, limit);
  body += '}';
  return body;
}

std::string limited_body(const std::vector<token_service::limited_key>& keys) {
  std::string body;
  body.reserve(32 + keys.size() * 160);
  body += R"({"success":true,"keys":[)";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const auto& k = keys[i];
    if (i > 0) body += ',';
    body += R"({"userId":)";
    append_integer(body, k.owner);
    body += R"(,"id":)";
    append_integer(body, k.id);
    body += R"(,"token":)";
    append_json_string(body, core::masked_key(k.display_prefix));
    body += R"(,"rateLimit":)";
    append_rate_limit(body, k.limit);
    body += R"(,"refused":)";
    append_integer(body, k.refused);
    body += R"(,"admitted":)";
    append_integer(body, k.admitted);
    body += '}';
  }
  body += "]}";
  return body;
}

}  // namespace tokend::server
