// JSON bodies and error mapping; see api_response.hpp.
#include "server/api_response.hpp"

#include "core/error.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace tokend::server {
namespace {

boost::json::object token_json(std::string token, const core::token_record& r) {
  boost::json::object o;
  o["token"] = std::move(token);
  o["description"] = r.description;
  o["type"] = r.type;
  o["timestamp"] = std::to_string(r.created_at);  // a string, as the public API has it
  o["userId"] = r.owner;
  return o;
}

}  // namespace

unsigned status_for(const boost::system::error_code& ec) noexcept {
  if (ec.category() != core::error_category()) return 500;
  switch (static_cast<core::errc>(ec.value())) {
    case core::errc::unauthorized: return 401;
    case core::errc::not_found: return 404;
    case core::errc::bad_request: return 400;
    case core::errc::overloaded: return 503;
    case core::errc::unavailable: return 503;
    case core::errc::internal: return 500;
  }
  return 500;
}

std::string error_body(std::string_view message) {
  boost::json::object o;
  o["success"] = false;
  o["message"] = message;
  return boost::json::serialize(o);
}

api_reply error_reply(unsigned status, std::string_view message, route r) {
  return {status, error_body(message), r, false};
}

api_reply error_reply(const boost::system::error_code& ec, route r) {
  // Foreign categories (a bug, or a store passing through its own codes) must not leak their text.
  const bool ours = ec.category() == core::error_category();
  return error_reply(status_for(ec), ours ? ec.message() : "Internal server error", r);
}

std::string created_body(const token_service::created& token) {
  boost::json::object o;
  o["success"] = true;
  o["message"] = "Token created successfully";
  o["token"] = token_json(token.key, token.record);
  return boost::json::serialize(o);
}

std::string list_body(const storage::list_page& page, const page_request& paging) {
  boost::json::object o;
  o["success"] = true;
  o["message"] = "Success";
  boost::json::array tokens;
  tokens.reserve(page.tokens.size());
  for (const auto& r : page.tokens) tokens.emplace_back(token_json(core::masked_key(r.display_prefix), r));
  o["tokens"] = std::move(tokens);
  if (paging.explicit_paging) {
    o["page"] = paging.page;
    o["pageSize"] = paging.page_size;
    o["hasMore"] = page.has_more;
  }
  return boost::json::serialize(o);
}

std::string deleted_body() { return R"({"success":true,"message":"Token deleted successfully"})"; }

}  // namespace tokend::server
