// Request parsing rules; see api_parsing.hpp.
#include "server/api_parsing.hpp"

#include "core/description.hpp"
#include "core/key.hpp"
#include "server/json_members.hpp"
#include "server/text_rules.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace tokend::server {
namespace {

using text::iequals;
using text::trim;

// Parses a JSON object body; sets `problem` when it is not one.
std::optional<boost::json::object> parse_object(std::string_view body, std::string& problem,
                                                boost::json::storage_ptr storage = {}) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec, std::move(storage));
  if (ec) {
    problem = "Request body must be valid JSON";
    return std::nullopt;
  }
  if (!v.is_object()) {
    problem = "Request body must be a JSON object";
    return std::nullopt;
  }
  // boost::json keeps the last of two equal names silently; another reader may keep the first.
  if (has_duplicate_members(body)) {
    problem = "Request body must not name a member twice in one object";
    return std::nullopt;
  }
  return std::move(v.as_object());
}

// The string member `name` of a body's object; nullptr, with `problem` set, when it is missing or
// not a string.
const boost::json::string* string_member(const boost::json::object& obj, std::string_view name,
                                         std::string& problem) {
  const auto* member = obj.if_contains(name);
  if (!member) {
    problem = "Field '" + std::string(name) + "' is required";
    return nullptr;
  }
  if (!member->is_string()) {
    problem = "Field '" + std::string(name) + "' must be a string";
    return nullptr;
  }
  return &member->as_string();
}

// The optional integer member `name` into `out` (untouched when absent); false, with `problem`
// set, when it is there but not an integer that fits 64 signed bits.
bool read_integer(const boost::json::object& obj, std::string_view name, std::optional<std::int64_t>& out,
                  std::string& problem) {
  const auto* member = obj.if_contains(name);
  if (!member) return true;
  if (member->is_int64()) {
    out = member->get_int64();
    return true;
  }
  problem = "Field '" + std::string(name) + (member->is_uint64() ? "' is too large" : "' must be an integer");
  return false;
}

bool read_expiry(const boost::json::object& obj, core::expiry_request& out, std::string& problem) {
  return read_integer(obj, "expiresAt", out.expires_at, problem) &&
         read_integer(obj, "expiresIn", out.expires_in, problem);
}

// `token` or `id`, exactly one of them.
std::optional<token_selector> read_selector(const boost::json::object& obj, std::string& problem) {
  const auto* id = obj.if_contains("id");
  if (obj.contains("token") && id) {
    problem = "Give either 'token' or 'id', not both";
    return std::nullopt;
  }
  if (!id) {
    const auto* token = string_member(obj, "token", problem);
    if (!token) {
      if (!obj.contains("token")) problem = "Field 'token' or 'id' is required";
      return std::nullopt;
    }
    if (token->empty()) {
      problem = "Field 'token' must not be empty";
      return std::nullopt;
    }
    return token_selector{std::string(token->data(), token->size()), 0};
  }
  if (id->is_int64() && id->get_int64() > 0)
    return token_selector{std::nullopt, static_cast<std::uint64_t>(id->get_int64())};
  if (id->is_uint64()) return token_selector{std::nullopt, id->get_uint64()};
  problem = "Field 'id' must be a positive integer";
  return std::nullopt;
}

// One integer member of a `rateLimit` object into `out` (untouched when absent); false, with
// `problem` naming it, when it is not a non-negative integer. A value too large for 32 bits is
// kept as the largest one, which is out of bounds, for rate_limit_problem to name.
bool read_rate_member(const boost::json::object& obj, std::string_view name, std::uint32_t& out,
                      std::string& problem) {
  const auto* member = obj.if_contains(name);
  if (!member) return true;
  std::uint64_t value = 0;
  if (member->is_uint64()) {
    value = member->get_uint64();
  } else if (member->is_int64() && member->get_int64() >= 0) {
    value = static_cast<std::uint64_t>(member->get_int64());
  } else {
    problem = "Field 'rateLimit." + std::string(name) + "' must be a non-negative integer";
    return false;
  }
  out = static_cast<std::uint32_t>(std::min<std::uint64_t>(value, std::numeric_limits<std::uint32_t>::max()));
  return true;
}

// The longest member name a message repeats: far shorter than a key.
constexpr std::size_t max_echoed_name = 24;

// The member `rateLimit` of a body, which must be there: null (nullopt) or a limit within bounds.
// Nullopt with `problem` set when it is refused.
std::optional<std::optional<core::rate_limit>> read_rate_limit(const boost::json::value& member,
                                                               std::string& problem) {
  if (member.is_null()) return std::optional<core::rate_limit>{};
  if (!member.is_object()) {
    problem = "Field 'rateLimit' must be an object or null";
    return std::nullopt;
  }
  const auto& obj = member.as_object();
  for (const auto& field : obj) {
    const std::string_view name(field.key().data(), field.key().size());
    if (name != "limit" && name != "window" && name != "burst") {
      // The name is the client's text: quoted as JSON, so nothing in it can break the message,
      // and only when short, so that no key pasted there is ever echoed.
      problem = "Field 'rateLimit' has an unknown member";
      if (name.size() <= max_echoed_name) {
        problem += ' ';
        problem += boost::json::serialize(boost::json::string_view(name.data(), name.size()));
      }
      problem += " (its members are limit, window and burst)";
      return std::nullopt;
    }
  }
  if (!obj.contains("limit")) {
    problem = "Field 'rateLimit.limit' is required";
    return std::nullopt;
  }
  core::rate_limit limit;
  if (!read_rate_member(obj, "limit", limit.limit, problem) ||
      !read_rate_member(obj, "window", limit.window_seconds, problem) ||
      !read_rate_member(obj, "burst", limit.burst, problem)) {
    return std::nullopt;
  }
  if (const auto why = core::rate_limit_problem(limit)) {
    problem = std::string(*why);
    return std::nullopt;
  }
  return std::optional<core::rate_limit>{limit};
}

// The value of a media-type parameter: a token, or a quoted string with its escapes undone;
// nullopt when a quoted string is not closed where the value ends.
std::optional<std::string> parameter_value(std::string_view raw) {
  if (raw.empty() || raw.front() != '"') return std::string(raw);
  if (raw.size() < 2 || raw.back() != '"') return std::nullopt;
  std::string out;
  for (std::size_t i = 1; i + 1 < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 2 < raw.size()) ++i;
    out.push_back(raw[i]);
  }
  return out;
}

// Whether the parameters after the media type declare no charset other than UTF-8. A `;` inside a
// quoted value splits it here too: such a value then reads as malformed, which refuses the type
// rather than guessing.
bool charset_is_utf8(std::string_view parameters) {
  while (!parameters.empty()) {
    const auto end = parameters.find(';');
    const auto param = trim(parameters.substr(0, end));
    parameters = end == std::string_view::npos ? std::string_view{} : parameters.substr(end + 1);
    const auto eq = param.find('=');
    if (!iequals(trim(param.substr(0, eq)), "charset")) continue;
    if (eq == std::string_view::npos) return false;
    const auto value = parameter_value(trim(param.substr(eq + 1)));
    if (!value || !iequals(*value, "utf-8")) return false;
  }
  return true;
}

}  // namespace

parsed<create_body> parse_create_body(std::string_view body) {
  std::string problem;
  // Every create parses one: its values go into this buffer (the heap only past it), and what the
  // answer keeps is copied out below.
  std::array<unsigned char, 1024> buffer;
  boost::json::monotonic_resource resource(buffer.data(), buffer.size());
  const auto obj = parse_object(body, problem, &resource);
  if (!obj) return {std::nullopt, problem};
  const auto* type = string_member(*obj, "type", problem);
  if (!type) return {std::nullopt, problem};
  if (*type != core::admin_type && *type != core::operator_type) {
    return {std::nullopt, "Field 'type' must be \"admin\" or \"operator\""};
  }
  const auto* description = string_member(*obj, "description", problem);
  if (!description) return {std::nullopt, problem};
  const std::string_view text(description->data(), description->size());
  if (const char* why = core::description_problem(text)) return {std::nullopt, why};
  create_body out{std::string(type->data(), type->size()), std::string(text), {}, std::nullopt};
  if (!read_expiry(*obj, out.expiry, problem)) return {std::nullopt, problem};
  if (const auto* member = obj->if_contains("rateLimit")) {
    auto limit = read_rate_limit(*member, problem);
    if (!limit) return {std::nullopt, problem};
    out.rate_limit = *limit;
  }
  return {std::move(out), {}};
}

parsed<token_selector> parse_delete_body(std::string_view body) {
  std::string problem;
  const auto obj = parse_object(body, problem);
  if (!obj) return {std::nullopt, problem};
  auto selector = read_selector(*obj, problem);
  if (!selector) return {std::nullopt, problem};
  return {std::move(selector), {}};
}

parsed<roll_body> parse_roll_body(std::string_view body) {
  std::string problem;
  const auto obj = parse_object(body, problem);
  if (!obj) return {std::nullopt, problem};
  auto selector = read_selector(*obj, problem);
  if (!selector) return {std::nullopt, problem};
  roll_body out{std::move(*selector), 0, {}, {}};
  std::optional<std::int64_t> overlap;
  if (!read_integer(*obj, "overlap", overlap, problem)) return {std::nullopt, problem};
  if (overlap && (*overlap < 0 || *overlap > max_overlap_seconds)) {
    return {std::nullopt, "Field 'overlap' must be an integer from 0 to " +
                              std::to_string(max_overlap_seconds) + " (seconds)"};
  }
  out.overlap = overlap.value_or(0);
  if (!read_expiry(*obj, out.expiry, problem)) return {std::nullopt, problem};
  if (const auto* member = obj->if_contains("rateLimit")) {
    auto limit = read_rate_limit(*member, problem);
    if (!limit) return {std::nullopt, problem};
    out.rate_limit = {true, *limit};
  }
  return {std::move(out), {}};
}

parsed<rate_limit_body> parse_rate_limit_body(std::string_view body) {
  std::string problem;
  const auto obj = parse_object(body, problem);
  if (!obj) return {std::nullopt, problem};
  auto selector = read_selector(*obj, problem);
  if (!selector) return {std::nullopt, problem};
  const auto* member = obj->if_contains("rateLimit");
  if (!member) return {std::nullopt, "Field 'rateLimit' is required (null: the server's default)"};
  auto limit = read_rate_limit(*member, problem);
  if (!limit) return {std::nullopt, problem};
  return {rate_limit_body{std::move(*selector), *limit}, {}};
}

parsed<quota_body> parse_quota_body(std::string_view body) {
  std::string problem;
  const auto obj = parse_object(body, problem);
  if (!obj) return {std::nullopt, problem};
  for (const auto& field : *obj) {
    const std::string_view name(field.key().data(), field.key().size());
    if (name == "userId" || name == "maxTokens") continue;
    // Quoted as JSON and only when short, as for rateLimit: never a key pasted there.
    problem = "Request body has an unknown member";
    if (name.size() <= max_echoed_name) {
      problem += ' ';
      problem += boost::json::serialize(boost::json::string_view(name.data(), name.size()));
    }
    problem += " (its members are userId and maxTokens)";
    return {std::nullopt, problem};
  }
  quota_body out;
  const auto* user = obj->if_contains("userId");
  const std::string user_range = "an integer from 1 to " + std::to_string(max_user_id);
  if (!user) return {std::nullopt, "Field 'userId' is required (" + user_range + ")"};
  if (!user->is_int64() || user->get_int64() < 1 ||
      static_cast<std::uint64_t>(user->get_int64()) > max_user_id)
    return {std::nullopt, "Field 'userId' must be " + user_range};
  out.user = static_cast<core::user_id>(user->get_int64());
  const auto* max = obj->if_contains("maxTokens");
  const std::string max_range = "null or an integer from 0 to " + std::to_string(max_tokens_bound);
  if (!max) return {std::nullopt, "Field 'maxTokens' is required (" + max_range + ")"};
  if (!max->is_null()) {
    if (!max->is_int64() || max->get_int64() < 0 ||
        static_cast<std::uint64_t>(max->get_int64()) > max_tokens_bound)
      return {std::nullopt, "Field 'maxTokens' must be " + max_range};
    out.max_tokens = static_cast<std::uint64_t>(max->get_int64());
  }
  return {out, {}};
}

bool is_json_content_type(std::string_view content_type) {
  const auto semicolon = content_type.find(';');
  auto media = trim(content_type.substr(0, semicolon));
  const bool json = iequals(media, "application/json") ||
                    (media.size() > 17 && iequals(media.substr(0, 12), "application/") &&
                     iequals(media.substr(media.size() - 5), "+json"));
  // The body is read as UTF-8 whatever it says: a body declared in another charset is refused
  // rather than misread.
  return json && (semicolon == std::string_view::npos || charset_is_utf8(content_type.substr(semicolon + 1)));
}

}  // namespace tokend::server
