// The request (method, target, JSON body) of each `tokend token` subcommand; see token_cli.hpp.
#include "server/token_cli.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace tokend::server::cli {
namespace {

namespace json = boost::json;

std::string tokens_path(const options& o, std::string_view tail) {
  std::string target = o.url.prefix + "/api/v2/tokens";
  target += tail;
  if (o.user_id) target += "?userId=" + std::to_string(*o.user_id);
  return target;
}

void add_expiry(json::object& body, const options& o) {
  if (o.expires_in) body["expiresIn"] = *o.expires_in;
  if (o.expires_at) body["expiresAt"] = *o.expires_at;
}

// The API's rateLimit object; burst only when given.
json::object rate_limit_object(const core::rate_limit& limit) {
  json::object o;
  o["limit"] = limit.limit;
  if (limit.unlimited()) return o;
  o["window"] = limit.window_seconds;
  if (limit.burst != 0) o["burst"] = limit.burst;
  return o;
}

// `--rate-limit` as an object, `--default` as null, neither as no member.
void add_rate_limit(json::object& body, const options& o) {
  if (o.rate_limit) body["rateLimit"] = rate_limit_object(*o.rate_limit);
  if (o.default_limit) body["rateLimit"] = nullptr;
}

}  // namespace

request_plan plan_request(const options& o) {
  json::object body;
  switch (o.cmd) {
    case command::create:
      body["type"] = o.type;
      body["description"] = o.description.value_or("");
      add_expiry(body, o);
      add_rate_limit(body, o);
      return {"POST", tokens_path(o, ""), json::serialize(body)};
    case command::remove:
      body["id"] = o.id.value_or(0);
      return {"DELETE", tokens_path(o, ""), json::serialize(body)};
    case command::roll:
      body["id"] = o.id.value_or(0);
      if (o.overlap) body["overlap"] = *o.overlap;
      add_expiry(body, o);
      add_rate_limit(body, o);
      return {"POST", tokens_path(o, "/roll"), json::serialize(body)};
    case command::limit:
      if (o.id) {
        body["id"] = *o.id;
      } else {
        body["token"] = o.target_key;
      }
      add_rate_limit(body, o);
      return {"PATCH", tokens_path(o, ""), json::serialize(body)};
    case command::limited:
      return {"GET", tokens_path(o, "/limited") + (o.count ? "?n=" + std::to_string(*o.count) : ""), {}};
    case command::quota:
      if (!o.max_tokens && !o.default_limit) return {"GET", tokens_path(o, "/quota"), {}};
      // The body names the user: the query's userId is left out, so the two cannot disagree.
      body["userId"] = o.user_id.value_or(0);
      if (o.max_tokens) {
        body["maxTokens"] = *o.max_tokens;
      } else {
        body["maxTokens"] = nullptr;
      }
      return {"PUT", o.url.prefix + "/api/v2/tokens/quota", json::serialize(body)};
    case command::list:
      return o.page ? list_page_request(o, *o.page) : list_request(o, {});
    case command::none:
      break;
  }
  throw usage_error("missing command: " + std::string(command_names));
}

request_plan list_request(const options& o, std::string_view cursor) {
  std::string target = tokens_path(o, "");
  target += o.user_id ? '&' : '?';
  target += "pageSize=1000";
  // A cursor is base64url: nothing in it needs escaping in a query.
  if (!cursor.empty()) {
    target += "&cursor=";
    target += cursor;
  }
  return {"GET", std::move(target), {}};
}

request_plan list_page_request(const options& o, std::uint64_t page) {
  std::string target = tokens_path(o, "");
  target += o.user_id ? '&' : '?';
  target += "page=" + std::to_string(page) + "&pageSize=1000";
  return {"GET", std::move(target), {}};
}

}  // namespace tokend::server::cli
