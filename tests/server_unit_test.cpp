// Unit tests for the pure logic of server/: request parsing (caller key, paging, bodies, content
// type), response bodies and the error→status mapping, configuration parsing and the admin
// endpoints. No sockets, no io_context: every rule of API.md that can be checked without I/O.
#define BOOST_TEST_MODULE server_unit_test
#include <boost/test/unit_test.hpp>

#include "core/error.hpp"
#include "core/key.hpp"
#include "core/token.hpp"
#include "server/admin.hpp"
#include "server/api_parsing.hpp"
#include "server/api_response.hpp"
#include "server/config.hpp"
#include "server/response_head.hpp"
#include "server/store_await.hpp"
#include "storage/completion_batch.hpp"
#include "support/configure.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/system/errc.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace server = tokend::server;
namespace core = tokend::core;
namespace storage = tokend::storage;
namespace json = boost::json;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

namespace {

// caller_key over a request target (kept alive by the caller: request_target points into it).
std::optional<std::string> key_of(const std::string& target,
                                  std::vector<std::string_view> authorization = {}) {
  const auto url = server::parse_request_target(target);
  BOOST_REQUIRE_MESSAGE(url.has_value(), "unparseable target " << target);
  return server::caller_key(*url, authorization);
}
std::optional<std::string> key_of(const std::string& target, const char* authorization) {
  return key_of(target, std::vector<std::string_view>{authorization});
}

server::parsed<server::page_request> paging_of(const std::string& target) {
  const auto url = server::parse_request_target(target);
  BOOST_REQUIRE_MESSAGE(url.has_value(), "unparseable target " << target);
  return server::parse_paging(*url);
}

std::string repeat(std::string_view unit, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += unit;
  return out;
}

std::string create_json(std::string_view description) {
  return R"({"type":"admin","description":")" + std::string(description) + R"("})";
}

bool mentions(const std::string& text, std::string_view word) { return text.find(word) != std::string::npos; }

using tokend::test::configure;

bool config_refused(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {}) {
  try {
    (void)configure(args, env);
  } catch (const server::config_error& e) {
    BOOST_TEST_MESSAGE("refused: " << e.what());
    BOOST_TEST(std::string(e.what()).size() > 0u);
    return true;
  }
  return false;
}

core::token_record record(std::string_view key, core::user_id owner, std::string description,
                          std::int64_t at) {
  return core::make_token_record(key, owner, std::move(description), "admin", at);
}

server::http_request admin_request(http::verb method, std::string_view target) {
  server::http_request req{method, target, 11};
  return req;
}

// An exact object comparison that does not depend on field order.
void check_token_json(const json::value& v, const std::string& token, const std::string& description,
                      const std::string& timestamp, std::uint64_t user) {
  BOOST_REQUIRE(v.is_object());
  const auto& o = v.as_object();
  BOOST_TEST(o.size() == 9u);
  BOOST_REQUIRE(o.contains("token") && o.at("token").is_string());
  BOOST_TEST(o.at("token").as_string() == token);
  BOOST_REQUIRE(o.contains("description") && o.at("description").is_string());
  BOOST_TEST(o.at("description").as_string() == description);
  BOOST_REQUIRE(o.contains("type") && o.at("type").is_string());
  BOOST_TEST(o.at("type").as_string() == "admin");
  BOOST_REQUIRE(o.contains("timestamp"));
  BOOST_TEST(o.at("timestamp").is_string());  // a string, as the public API has it
  if (o.at("timestamp").is_string()) BOOST_TEST(o.at("timestamp").as_string() == timestamp);
  BOOST_REQUIRE(o.contains("userId"));
  BOOST_TEST((o.at("userId").is_uint64() || o.at("userId").is_int64()));  // a number, not a string
  if (o.at("userId").is_number()) BOOST_TEST(o.at("userId").to_number<std::uint64_t>() == user);
  BOOST_REQUIRE(o.contains("id"));
  BOOST_TEST(o.at("id").is_int64());
  BOOST_REQUIRE(o.contains("expiresAt"));
  BOOST_TEST((o.at("expiresAt").is_null() || o.at("expiresAt").is_string()));
  BOOST_REQUIRE(o.contains("lastUsedAt"));
  BOOST_TEST((o.at("lastUsedAt").is_null() || o.at("lastUsedAt").is_string()));
  BOOST_REQUIRE(o.contains("rateLimit"));
  BOOST_TEST((o.at("rateLimit").is_null() || o.at("rateLimit").is_object()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(caller_key)

BOOST_AUTO_TEST_CASE(query_token_is_percent_decoded) {
  BOOST_TEST(key_of("/api/v2/tokens?token=abc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens?token=%61bc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens?token=%61%62%63").value_or("<none>") == "abc");
  // the name is decoded too, and '+' is a space in both, as in a form
  BOOST_TEST(key_of("/api/v2/tokens?tok%65n=abc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens?%74%6F%6B%65%6E=abc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens?token=a+b%2Bc").value_or("<none>") == "a b+c");
  BOOST_TEST(!key_of("/api/v2/tokens?token+=abc").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?tok%65n=abc&token=abd").has_value());
  BOOST_TEST(key_of("/api/v2/tokens?token").value_or("<none>").empty());
  BOOST_TEST(!key_of("/api/v2/tokens?").has_value());
}

BOOST_AUTO_TEST_CASE(query_token_among_other_parameters) {
  BOOST_TEST(key_of("/api/v2/tokens?page=1&token=abc&pageSize=2").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens?x=1&token=abc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens?token=abc&x=1").value_or("<none>") == "abc");
  // a parameter whose name merely contains "token" is not the key
  BOOST_TEST(!key_of("/api/v2/tokens?mytoken=abc").has_value());
}

BOOST_AUTO_TEST_CASE(bearer_header) {
  BOOST_TEST(key_of("/api/v2/tokens", "Bearer abc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens", "bearer abc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens", "BEARER abc").value_or("<none>") == "abc");
  BOOST_TEST(key_of("/api/v2/tokens", "BeArEr abc").value_or("<none>") == "abc");
  BOOST_TEST(!key_of("/api/v2/tokens", "Basic YWxhZGRpbjpvcGVuc2VzYW1l").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens", "Bearer").has_value());
}

BOOST_AUTO_TEST_CASE(both_sources) {
  BOOST_TEST(key_of("/api/v2/tokens?token=abc", "Bearer abc").value_or("<none>") == "abc");
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc", "Bearer abd").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?token=abd", "bearer abc").has_value());
}

// Two Authorization headers, or a key beside another scheme's credentials, are ambiguous: which
// one is meant is a guess a proxy in front may make differently. Every such request is refused.
BOOST_AUTO_TEST_CASE(several_authorization_headers_are_refused) {
  BOOST_TEST(!key_of("/api/v2/tokens", {"Bearer abc", "Bearer abd"}).has_value());
  BOOST_TEST(!key_of("/api/v2/tokens", {"Bearer abc", "Bearer abc"}).has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc", {"Bearer abc", "Bearer abc"}).has_value());
  BOOST_TEST(!key_of("/api/v2/tokens", {"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer abc"}).has_value());
  BOOST_TEST(!key_of("/api/v2/tokens", {"Bearer abc", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}).has_value());
  BOOST_TEST(
      !key_of("/api/v2/tokens?token=abd", {"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer abc"}).has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc", {"Bearer abc", "Bearer abd"}).has_value());
  // An empty header carries nothing and is not counted.
  BOOST_TEST(key_of("/api/v2/tokens", {"", "Bearer abc", "  "}).value_or("<none>") == "abc");
}

BOOST_AUTO_TEST_CASE(another_scheme_beside_a_key_is_refused) {
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc", "Basic YWxhZGRpbjpvcGVuc2VzYW1l").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc", "Token abc").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc", "Bearer").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc", "abc").has_value());
}

BOOST_AUTO_TEST_CASE(repeated_query_tokens) {
  BOOST_TEST(!key_of("/api/v2/tokens?token=abc&token=abd").has_value());
  BOOST_TEST(key_of("/api/v2/tokens?token=abc&token=abc").value_or("<none>") == "abc");
}

BOOST_AUTO_TEST_CASE(none) {
  BOOST_TEST(!key_of("/api/v2/tokens").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens?page=1").has_value());
  BOOST_TEST(!key_of("/api/v2/tokens", "").has_value());
  BOOST_TEST(key_of("/api/v2/tokens?token=abc", "").value_or("<none>") == "abc");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parse_paging)

BOOST_AUTO_TEST_CASE(defaults) {
  const auto p = paging_of("/api/v2/tokens?token=abc");
  BOOST_REQUIRE(p);
  BOOST_TEST(p.value->page == 0u);
  BOOST_TEST(p.value->page_size == 1000u);
  BOOST_TEST(p.value->page_size == server::max_page_size);
  BOOST_TEST(!p.value->explicit_paging);
}

BOOST_AUTO_TEST_CASE(explicit_page_or_page_size) {
  const auto a = paging_of("/api/v2/tokens?page=3");
  BOOST_REQUIRE(a);
  BOOST_TEST(a.value->page == 3u);
  BOOST_TEST(a.value->page_size == 1000u);
  BOOST_TEST(a.value->explicit_paging);

  const auto b = paging_of("/api/v2/tokens?pageSize=25");
  BOOST_REQUIRE(b);
  BOOST_TEST(b.value->page == 0u);
  BOOST_TEST(b.value->page_size == 25u);
  BOOST_TEST(b.value->explicit_paging);

  const auto c = paging_of("/api/v2/tokens?token=x&page=0&pageSize=2");
  BOOST_REQUIRE(c);
  BOOST_TEST(c.value->page == 0u);
  BOOST_TEST(c.value->page_size == 2u);
  BOOST_TEST(c.value->explicit_paging);
}

BOOST_AUTO_TEST_CASE(page_size_bounds) {
  const auto max = paging_of("/api/v2/tokens?pageSize=1000");
  BOOST_REQUIRE(max);
  BOOST_TEST(max.value->page_size == 1000u);
  const auto one = paging_of("/api/v2/tokens?pageSize=1");
  BOOST_REQUIRE(one);
  BOOST_TEST(one.value->page_size == 1u);
  for (const char* bad :
       {"/api/v2/tokens?pageSize=0", "/api/v2/tokens?pageSize=1001", "/api/v2/tokens?pageSize=99999"}) {
    const auto p = paging_of(bad);
    BOOST_TEST(!p, bad);
    BOOST_TEST(!p.problem.empty(), bad);
  }
}

BOOST_AUTO_TEST_CASE(invalid_values) {
  for (const char* bad : {"/api/v2/tokens?page=-1", "/api/v2/tokens?pageSize=-5", "/api/v2/tokens?page=abc",
                          "/api/v2/tokens?pageSize=abc",
                          "/api/v2/tokens?page=", "/api/v2/tokens?pageSize=", "/api/v2/tokens?page=1x",
                          "/api/v2/tokens?page=1.5", "/api/v2/tokens?pageSize=%2D1"}) {
    const auto p = paging_of(bad);
    BOOST_TEST(!p, bad);
    BOOST_TEST(!p.problem.empty(), bad);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parse_user_id)

server::parsed<server::acting_user> user_of(std::string_view target) {
  return server::parse_user_id(*server::parse_request_target(target));
}

BOOST_AUTO_TEST_CASE(absent_means_the_caller) {
  for (const char* t : {"/api/v2/tokens", "/api/v2/tokens?page=1", "/api/v2/tokens?userid=5&user=3"}) {
    const auto u = user_of(t);
    BOOST_REQUIRE(u);
    BOOST_TEST(!u.value->user, t);
  }
}

BOOST_AUTO_TEST_CASE(valid_values) {
  BOOST_TEST(*user_of("/api/v2/tokens?userId=42").value->user == 42u);
  BOOST_TEST(*user_of("/api/v2/tokens?page=0&userId=1&pageSize=5").value->user == 1u);
  BOOST_TEST(*user_of("/api/v2/tokens?userId=9007199254740992").value->user == 9007199254740992u);
  BOOST_TEST(*user_of("/api/v2/tokens?userId=%34%32").value->user == 42u);  // percent-decoded
  BOOST_TEST(*user_of("/api/v2/tokens?user%49d=7&&x").value->user == 7u);   // the name too
}

BOOST_AUTO_TEST_CASE(malformed_or_repeated_refused) {
  for (const char* bad : {"/api/v2/tokens?userId=", "/api/v2/tokens?userId", "/api/v2/tokens?userId=0",
                          "/api/v2/tokens?userId=-1", "/api/v2/tokens?userId=+4", "/api/v2/tokens?userId=4x",
                          "/api/v2/tokens?userId=1.0", "/api/v2/tokens?userId=9007199254740993",
                          "/api/v2/tokens?userId=99999999999999999999999", "/api/v2/tokens?userId=%2042",
                          "/api/v2/tokens?userId=4&userId=4", "/api/v2/tokens?userId=4&userId=5"}) {
    const auto u = user_of(bad);
    BOOST_TEST(!u, bad);
    BOOST_TEST(mentions(u.problem, "userId"), bad << " -> " << u.problem);
  }
  BOOST_TEST(mentions(user_of("/api/v2/tokens?userId=1&userId=1").problem, "once"));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parse_create_body)

BOOST_AUTO_TEST_CASE(valid) {
  const auto b = server::parse_create_body(R"({"type":"admin","description":"Main app"})");
  BOOST_REQUIRE(b);
  BOOST_TEST(b.value->type == "admin");
  BOOST_TEST(b.value->description == "Main app");
  BOOST_TEST(b.problem.empty());
}

BOOST_AUTO_TEST_CASE(unknown_fields_are_ignored) {
  const auto b = server::parse_create_body(R"({"description":"x","extra":[1,2],"type":"admin","userId":7})");
  BOOST_REQUIRE(b);
  BOOST_TEST(b.value->description == "x");
  BOOST_TEST(b.value->type == "admin");
}

BOOST_AUTO_TEST_CASE(not_json_or_not_an_object) {
  for (const char* bad : {"", "not json", "{", R"({"type":"admin","description":"x"} trailing)", "[]",
                          R"([{"type":"admin","description":"x"}])", "\"admin\"", "42", "null"}) {
    const auto b = server::parse_create_body(bad);
    BOOST_TEST(!b, bad);
    BOOST_TEST(!b.problem.empty(), bad);
  }
}

BOOST_AUTO_TEST_CASE(type_rules) {
  const auto missing = server::parse_create_body(R"({"description":"x"})");
  BOOST_TEST(!missing);
  BOOST_TEST(mentions(missing.problem, "type"));
  const auto number = server::parse_create_body(R"({"type":1,"description":"x"})");
  BOOST_TEST(!number);
  BOOST_TEST(mentions(number.problem, "type"));
  const auto null = server::parse_create_body(R"({"type":null,"description":"x"})");
  BOOST_TEST(!null);
  const auto user = server::parse_create_body(R"({"type":"user","description":"x"})");
  BOOST_TEST(!user);
  BOOST_TEST(mentions(user.problem, "type"));
  const auto upper = server::parse_create_body(R"({"type":"ADMIN","description":"x"})");
  BOOST_TEST(!upper);
  // Whether the caller may ask for an operator key is the router's decision.
  const auto op = server::parse_create_body(R"({"type":"operator","description":"x"})");
  BOOST_REQUIRE(op);
  BOOST_TEST(op.value->type == "operator");
}

// A Vida body (type and description only) asks for no expiry.
BOOST_AUTO_TEST_CASE(no_expiry_unless_asked) {
  const auto b = server::parse_create_body(R"({"type":"admin","description":"Main app"})");
  BOOST_REQUIRE(b);
  BOOST_TEST(!b.value->expiry.expires_at);
  BOOST_TEST(!b.value->expiry.expires_in);
}

BOOST_AUTO_TEST_CASE(expiry_fields) {
  const auto at = server::parse_create_body(R"({"type":"admin","description":"x","expiresAt":1900000000})");
  BOOST_REQUIRE(at);
  BOOST_TEST(*at.value->expiry.expires_at == 1900000000);
  BOOST_TEST(!at.value->expiry.expires_in);
  const auto in = server::parse_create_body(R"({"type":"admin","description":"x","expiresIn":3600})");
  BOOST_REQUIRE(in);
  BOOST_TEST(*in.value->expiry.expires_in == 3600);
  // Values are judged by core::decide_expiry (past, zero, both given), not here.
  const auto both =
      server::parse_create_body(R"({"type":"admin","description":"x","expiresIn":-1,"expiresAt":0})");
  BOOST_REQUIRE(both);
  BOOST_TEST(*both.value->expiry.expires_in == -1);
  BOOST_TEST(*both.value->expiry.expires_at == 0);
  for (const char* bad : {R"({"type":"admin","description":"x","expiresAt":"1900000000"})",
                          R"({"type":"admin","description":"x","expiresAt":1.9e9})",
                          R"({"type":"admin","description":"x","expiresAt":null})",
                          R"({"type":"admin","description":"x","expiresIn":36.5})",
                          R"({"type":"admin","description":"x","expiresIn":true})",
                          R"({"type":"admin","description":"x","expiresIn":18446744073709551615})"}) {
    const auto refused = server::parse_create_body(bad);
    BOOST_TEST(!refused, bad);
    BOOST_TEST(mentions(refused.problem, "expires"), bad << " -> " << refused.problem);
  }
}

BOOST_AUTO_TEST_CASE(description_rules) {
  const auto missing = server::parse_create_body(R"({"type":"admin"})");
  BOOST_TEST(!missing);
  BOOST_TEST(mentions(missing.problem, "description"));
  const auto number = server::parse_create_body(R"({"type":"admin","description":12})");
  BOOST_TEST(!number);
  BOOST_TEST(mentions(number.problem, "description"));
  const auto empty = server::parse_create_body(create_json(""));
  BOOST_TEST(!empty);
  BOOST_TEST(mentions(empty.problem, "description"));
}

BOOST_AUTO_TEST_CASE(description_length_counts_characters) {
  const auto ok = server::parse_create_body(create_json(repeat("a", 256)));
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok.value->description.size() == 256u);
  const auto too_long = server::parse_create_body(create_json(repeat("a", 257)));
  BOOST_TEST(!too_long);
  BOOST_TEST(mentions(too_long.problem, "description"));

  // "é" is two bytes but one character; "😀" is four bytes and one character.
  const auto multi = server::parse_create_body(create_json(repeat("\xC3\xA9", 256)));
  BOOST_REQUIRE(multi);
  BOOST_TEST(multi.value->description.size() == 512u);
  BOOST_TEST(!server::parse_create_body(create_json(repeat("\xC3\xA9", 257))));
  BOOST_TEST(static_cast<bool>(server::parse_create_body(create_json(repeat("\xF0\x9F\x98\x80", 256)))));
  BOOST_TEST(!server::parse_create_body(create_json(repeat("\xF0\x9F\x98\x80", 257))));
  // JSON escapes decode before counting
  const auto escaped = server::parse_create_body(create_json(repeat("\\u00e9", 256)));
  BOOST_REQUIRE(escaped);
  BOOST_TEST(escaped.value->description == repeat("\xC3\xA9", 256));
}

BOOST_AUTO_TEST_CASE(invalid_utf8_refused) {
  BOOST_TEST(!server::parse_create_body(create_json("\xFF")));
  BOOST_TEST(!server::parse_create_body(create_json("ab\xC3")));
  BOOST_TEST(!server::parse_create_body(create_json("\xED\xA0\x80")));  // a UTF-16 surrogate
  BOOST_TEST(!server::parse_create_body(create_json("\\ud800")));       // a lone surrogate escape
}

// A member named twice is refused, whichever value comes last, at any depth, however it is spelt.
BOOST_AUTO_TEST_CASE(duplicate_members_refused) {
  for (const char* bad : {
           R"({"type":"x","type":"admin","description":"d"})",
           R"({"type":"admin","type":"admin","description":"d"})",
           R"({"type":"admin","description":"a","description":"b"})",
           R"({"description":"a","type":"admin","description":"a"})",
           R"({"type":"admin","description":"d","extra":1,"extra":2})",
           R"({"type":"admin","description":"d","t\u0079pe":"admin"})",
           R"({"type":"admin","description":"d","\u0074ype":"x"})",
           R"({"type":"admin","description":"d","nested":{"a":1,"a":2}})",
           R"({"type":"admin","description":"d","list":[{"k":1},{"k":1,"k":2}]})",
           R"({"type":"admin","description":"d","":1,"":2})",
           " { \"type\" : \"admin\" , \"description\" : \"d\" , \"type\" : \"admin\" } ",
       }) {
    const auto b = server::parse_create_body(bad);
    BOOST_TEST(!b, bad);
    BOOST_TEST(mentions(b.problem, "twice"), bad << " -> " << b.problem);
  }
  // The same name in different objects, or differing only in case, is not a repetition.
  for (const char* good : {
           R"({"type":"admin","description":"d","a":{"type":1},"b":{"type":2}})",
           R"({"type":"admin","description":"d","Type":"user","TYPE":1})",
           R"({"type":"admin","description":"d","list":[{"k":1},{"k":2}],"k":3})",
       }) {
    BOOST_TEST(static_cast<bool>(server::parse_create_body(good)), good);
  }
}

// Descriptions that would reach a terminal or a dashboard as something else than text.
BOOST_AUTO_TEST_CASE(control_bidi_and_blank_descriptions_refused) {
  for (const std::string& bad : {
           std::string("\\u0000"),
           std::string("a\\u0000b"),
           std::string("line\\nbreak"),
           std::string("tab\\there"),
           std::string("cr\\r"),
           std::string("\\u001b[31mred"),
           std::string("bell\\u0007"),
           std::string("del\\u007f"),
           std::string("c1\\u0085"),
           std::string("c1\\u009b31m"),
           std::string("raw\x7f"),
           std::string("raw\xc2\x9b"),
           std::string("ls\\u2028"),
           std::string("ps\xe2\x80\xa9"),
           std::string("bidi\\u202e"),
           std::string("\\u202aembed"),
           std::string("iso\\u2066late\\u2069"),
           std::string("raw\xe2\x80\xae"),
           std::string("\\u200fmark"),
           std::string("\\u200e"),
           std::string("alm\\u061c"),
           std::string(" "),
           std::string("   "),
           std::string("\\u00a0"),
           std::string("\\u3000\\u2003"),
           std::string("\\u200b"),
           std::string("\\ufeff "),
           std::string("\xe3\x80\x80"),
       }) {
    const auto b = server::parse_create_body(create_json(bad));
    BOOST_TEST(!b, bad);
    BOOST_TEST(mentions(b.problem, "description"), bad << " -> " << b.problem);
  }
  for (const std::string& good : {std::string("Main app"), std::string(" x "), std::string("\\u00e9t\\u00e9"),
                                  std::string("\\u05e9\\u05dc\\u05d5\\u05dd"), std::string("a\\u00a0b"),
                                  std::string("\\ud83d\\ude00"), std::string("q\\\"uote\\\\")}) {
    BOOST_TEST(static_cast<bool>(server::parse_create_body(create_json(good))), good);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parse_delete_body)

BOOST_AUTO_TEST_CASE(valid) {
  const std::string key = core::generate_key();
  const auto b = server::parse_delete_body(R"({"token":")" + key + R"("})");
  BOOST_REQUIRE(b);
  BOOST_TEST(b.value->key.value_or("") == key);
  // any string is passed on as given: the service decides that a malformed key is "not found"
  const auto odd = server::parse_delete_body(R"({"token":"nope","other":1})");
  BOOST_REQUIRE(odd);
  BOOST_TEST(odd.value->key.value_or("") == "nope");
}

BOOST_AUTO_TEST_CASE(by_id) {
  const auto b = server::parse_delete_body(R"({"id":17})");
  BOOST_REQUIRE(b);
  BOOST_TEST(!b.value->key);
  BOOST_TEST(b.value->id == 17u);
  const auto big = server::parse_delete_body(R"({"id":18446744073709551615})");
  BOOST_REQUIRE(big);
  BOOST_TEST(big.value->id == 18446744073709551615u);
  for (const char* bad :
       {R"({"id":0})", R"({"id":-1})", R"({"id":1.5})", R"({"id":1e3})", R"({"id":"17"})", R"({"id":null})",
        R"({"id":true})", R"({"id":[1]})", R"({"id":18446744073709551616})"}) {
    const auto refused = server::parse_delete_body(bad);
    BOOST_TEST(!refused, bad);
    BOOST_TEST(mentions(refused.problem, "'id'"), bad << " -> " << refused.problem);
  }
}

BOOST_AUTO_TEST_CASE(exactly_one_of_token_and_id) {
  const auto both = server::parse_delete_body(R"({"token":"abc","id":3})");
  BOOST_TEST(!both);
  BOOST_TEST(mentions(both.problem, "'token'"));
  BOOST_TEST(mentions(both.problem, "'id'"));
  const auto neither = server::parse_delete_body(R"({"other":3})");
  BOOST_TEST(!neither);
  BOOST_TEST(mentions(neither.problem, "'token'"));
  BOOST_TEST(mentions(neither.problem, "'id'"));
}

BOOST_AUTO_TEST_CASE(invalid) {
  for (const char* bad :
       {"", "token", "{", "[]", R"(["abc"])", "{}", R"({"key":"abc"})", R"({"token":1})", R"({"token":null})",
        R"({"token":["abc"]})", R"({"token":{}})", R"({"token":""})"}) {
    const auto b = server::parse_delete_body(bad);
    BOOST_TEST(!b, bad);
    BOOST_TEST(!b.problem.empty(), bad);
  }
}

BOOST_AUTO_TEST_CASE(duplicate_members_refused) {
  for (const char* bad :
       {R"({"token":"a","token":"b"})", R"({"token":"a","token":"a"})", R"({"token":"a","\u0074oken":"b"})",
        R"({"token":"a","x":{"y":1,"y":1}})", R"({"x":1,"token":"a","x":2})"}) {
    const auto b = server::parse_delete_body(bad);
    BOOST_TEST(!b, bad);
    BOOST_TEST(mentions(b.problem, "twice"), bad << " -> " << b.problem);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parse_roll_body)

BOOST_AUTO_TEST_CASE(by_token_or_id_with_defaults) {
  const auto by_key = server::parse_roll_body(R"({"token":"abc"})");
  BOOST_REQUIRE(by_key);
  BOOST_TEST(by_key.value->old.key.value_or("") == "abc");
  BOOST_TEST(by_key.value->overlap == 0);
  BOOST_TEST(!by_key.value->expiry.expires_at);
  BOOST_TEST(!by_key.value->expiry.expires_in);
  const auto by_id = server::parse_roll_body(R"({"id":5,"overlap":3600,"expiresIn":86400})");
  BOOST_REQUIRE(by_id);
  BOOST_TEST(!by_id.value->old.key);
  BOOST_TEST(by_id.value->old.id == 5u);
  BOOST_TEST(by_id.value->overlap == 3600);
  BOOST_TEST(*by_id.value->expiry.expires_in == 86400);
  const auto at = server::parse_roll_body(R"({"id":5,"expiresAt":1900000000})");
  BOOST_REQUIRE(at);
  BOOST_TEST(*at.value->expiry.expires_at == 1900000000);
}

BOOST_AUTO_TEST_CASE(overlap_range) {
  BOOST_TEST(server::parse_roll_body(R"({"id":1,"overlap":0})").value->overlap == 0);
  BOOST_TEST(server::parse_roll_body(R"({"id":1,"overlap":2592000})").value->overlap == 2592000);
  for (const char* bad :
       {R"({"id":1,"overlap":2592001})", R"({"id":1,"overlap":-1})", R"({"id":1,"overlap":1.5})",
        R"({"id":1,"overlap":"60"})", R"({"id":1,"overlap":null})"}) {
    const auto refused = server::parse_roll_body(bad);
    BOOST_TEST(!refused, bad);
    BOOST_TEST(mentions(refused.problem, "overlap"), bad << " -> " << refused.problem);
  }
}

BOOST_AUTO_TEST_CASE(invalid) {
  for (const char* bad :
       {"", "{", "[]", "{}", R"({"token":"a","id":1})", R"({"id":0})", R"({"token":""})", R"({"token":1})",
        R"({"id":1,"expiresIn":"1"})", R"({"id":1,"id":2})", R"({"id":1,"overlap":1,"overlap":2})"}) {
    const auto b = server::parse_roll_body(bad);
    BOOST_TEST(!b, bad);
    BOOST_TEST(!b.problem.empty(), bad);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(parse_rate_limit)

BOOST_AUTO_TEST_CASE(in_create_absent_null_or_an_object) {
  const auto absent = server::parse_create_body(R"({"type":"admin","description":"d"})");
  BOOST_REQUIRE(absent);
  BOOST_TEST(!absent.value->rate_limit);
  const auto null = server::parse_create_body(R"({"type":"admin","description":"d","rateLimit":null})");
  BOOST_REQUIRE(null);
  BOOST_TEST(!null.value->rate_limit);
  const auto set = server::parse_create_body(
      R"({"type":"admin","description":"d","rateLimit":{"limit":100,"window":60,"burst":250}})");
  BOOST_REQUIRE(set);
  BOOST_TEST((set.value->rate_limit == core::rate_limit{100, 60, 250}));
  const auto defaults =
      server::parse_create_body(R"({"type":"admin","description":"d","rateLimit":{"limit":7}})");
  BOOST_REQUIRE(defaults);
  BOOST_TEST((defaults.value->rate_limit == core::rate_limit{7, 1, 0}));
  const auto exempt =
      server::parse_create_body(R"({"type":"admin","description":"d","rateLimit":{"limit":0}})");
  BOOST_REQUIRE(exempt);
  BOOST_TEST((exempt.value->rate_limit == core::rate_limit{0, 1, 0}));
  const auto bounds = server::parse_create_body(
      R"({"type":"admin","description":"d","rateLimit":{"limit":1000000000,"window":86400,"burst":1000000000}})");
  BOOST_REQUIRE(bounds);
  BOOST_TEST((bounds.value->rate_limit == core::rate_limit{1'000'000'000, 86'400, 1'000'000'000}));
}

BOOST_AUTO_TEST_CASE(in_roll_absent_keeps_null_or_object_replaces) {
  const auto keep = server::parse_roll_body(R"({"id":1})");
  BOOST_REQUIRE(keep);
  BOOST_TEST(!keep.value->rate_limit.replace);
  const auto clear = server::parse_roll_body(R"({"id":1,"rateLimit":null})");
  BOOST_REQUIRE(clear);
  BOOST_TEST(clear.value->rate_limit.replace);
  BOOST_TEST(!clear.value->rate_limit.limit);
  const auto set = server::parse_roll_body(R"({"id":1,"rateLimit":{"limit":3,"window":10}})");
  BOOST_REQUIRE(set);
  BOOST_TEST(set.value->rate_limit.replace);
  BOOST_TEST((set.value->rate_limit.limit == core::rate_limit{3, 10, 0}));
}

BOOST_AUTO_TEST_CASE(patch_body) {
  const auto by_id = server::parse_rate_limit_body(R"({"id":4,"rateLimit":{"limit":2}})");
  BOOST_REQUIRE(by_id);
  BOOST_TEST(by_id.value->target.id == 4u);
  BOOST_TEST((by_id.value->rate_limit == core::rate_limit{2, 1, 0}));
  const auto by_key = server::parse_rate_limit_body(R"({"token":"abc","rateLimit":null})");
  BOOST_REQUIRE(by_key);
  BOOST_TEST(by_key.value->target.key.value_or("") == "abc");
  BOOST_TEST(!by_key.value->rate_limit);
  const auto missing = server::parse_rate_limit_body(R"({"id":4})");
  BOOST_TEST(!missing);
  BOOST_TEST(mentions(missing.problem, "rateLimit"), missing.problem);
  for (const char* bad :
       {"", "[]", "{}", R"({"rateLimit":null})", R"({"id":0,"rateLimit":null})",
        R"({"id":1,"token":"a","rateLimit":null})", R"({"id":1,"rateLimit":null,"rateLimit":null})"}) {
    const auto b = server::parse_rate_limit_body(bad);
    BOOST_TEST(!b, bad);
    BOOST_TEST(!b.problem.empty(), bad);
  }
}

// Every shape other than null or {limit, window?, burst?} within bounds is refused, naming the member.
BOOST_AUTO_TEST_CASE(bad_shapes_name_the_member) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"5", "rateLimit"},
      {R"("5")", "rateLimit"},
      {"[]", "rateLimit"},
      {"true", "rateLimit"},
      {"{}", "rateLimit.limit"},
      {R"({"window":1})", "rateLimit.limit"},
      {R"({"limit":-1})", "rateLimit.limit"},
      {R"({"limit":1.5})", "rateLimit.limit"},
      {R"({"limit":1.0})", "rateLimit.limit"},
      {R"({"limit":1e2})", "rateLimit.limit"},
      {R"({"limit":"5"})", "rateLimit.limit"},
      {R"({"limit":null})", "rateLimit.limit"},
      {R"({"limit":1000000001})", "rateLimit.limit"},
      {R"({"limit":4294967296})", "rateLimit.limit"},
      {R"({"limit":18446744073709551615})", "rateLimit.limit"},
      {R"({"limit":18446744073709551616})", "rateLimit.limit"},
      {R"({"limit":5,"window":0})", "rateLimit.window"},
      {R"({"limit":5,"window":86401})", "rateLimit.window"},
      {R"({"limit":5,"window":-1})", "rateLimit.window"},
      {R"({"limit":5,"window":"1s"})", "rateLimit.window"},
      {R"({"limit":5,"burst":-1})", "rateLimit.burst"},
      {R"({"limit":5,"burst":1000000001})", "rateLimit.burst"},
      {R"({"limit":5,"burst":2.5})", "rateLimit.burst"},
      {R"({"limit":5,"extra":1})", "extra"},
      {R"({"limit":5,"Limit":1})", "Limit"},
      {R"({"limit":5,"per":"second"})", "per"},
  };
  for (const auto& [shape, member] : bad) {
    BOOST_TEST_CONTEXT(shape) {
      const auto create =
          server::parse_create_body(R"({"type":"admin","description":"d","rateLimit":)" + shape + "}");
      BOOST_TEST(!create);
      BOOST_TEST(mentions(create.problem, member), create.problem);
      const auto roll = server::parse_roll_body(R"({"id":1,"rateLimit":)" + shape + "}");
      BOOST_TEST(!roll);
      BOOST_TEST(roll.problem == create.problem);
      const auto patch = server::parse_rate_limit_body(R"({"id":1,"rateLimit":)" + shape + "}");
      BOOST_TEST(!patch);
      BOOST_TEST(patch.problem == create.problem);
    }
  }
  // A long member name is not repeated: it could be a key pasted in the wrong place.
  const std::string key = core::generate_key();
  const auto pasted = server::parse_rate_limit_body(R"({"id":1,"rateLimit":{"limit":1,")" + key + R"(":1}})");
  BOOST_TEST(!pasted);
  BOOST_TEST(!mentions(pasted.problem, key.substr(0, 16)), pasted.problem);
}

BOOST_AUTO_TEST_CASE(limited_count) {
  const auto n = [](const std::string& query) {
    return server::parse_limited_count(*server::parse_request_target("/api/v2/tokens/limited" + query));
  };
  BOOST_TEST(*n("").value == 20u);
  BOOST_TEST(*n("?n=1").value == 1u);
  BOOST_TEST(*n("?n=100&token=x").value == 100u);
  for (const char* bad : {"?n=0", "?n=101", "?n=-1", "?n=abc", "?n=", "?n=1&n=2", "?n=1.5"}) {
    const auto r = n(bad);
    BOOST_TEST(!r, bad);
    BOOST_TEST(mentions(r.problem, "'n'"), bad);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(json_content_types) {
  BOOST_TEST(server::is_json_content_type("application/json"));
  BOOST_TEST(server::is_json_content_type("application/json; charset=utf-8"));
  BOOST_TEST(server::is_json_content_type("application/json;charset=UTF-8"));
  BOOST_TEST(server::is_json_content_type("APPLICATION/JSON"));
  BOOST_TEST(server::is_json_content_type("Application/Json; Charset=utf-8"));
  BOOST_TEST(server::is_json_content_type("application/vnd.x+json"));
  BOOST_TEST(server::is_json_content_type("application/problem+json; charset=utf-8"));
  BOOST_TEST(server::is_json_content_type(" application/json "));

  BOOST_TEST(!server::is_json_content_type("text/plain"));
  BOOST_TEST(!server::is_json_content_type("text/plain; charset=utf-8"));
  BOOST_TEST(!server::is_json_content_type("application/x-www-form-urlencoded"));
  BOOST_TEST(!server::is_json_content_type("multipart/form-data; boundary=x"));
  BOOST_TEST(!server::is_json_content_type("application/jsonx"));
  BOOST_TEST(!server::is_json_content_type("application/xml"));
  BOOST_TEST(!server::is_json_content_type(""));
}

// The body is read as UTF-8: a JSON type declaring any other charset is refused.
BOOST_AUTO_TEST_CASE(json_content_types_with_charsets) {
  for (const char* ok : {"application/json; charset=utf-8", "application/json; charset=UTF-8",
                         "application/json; charset=Utf-8", "application/json; charset=\"utf-8\"",
                         "application/json; charset=\"UTF-8\"", "application/json;charset=utf-8;q=1",
                         "application/json; foo=bar; CHARSET=utf-8", "application/json ; charset = utf-8 ",
                         "application/vnd.x+json; charset=utf-8", "application/json; charset=\"utf\\-8\"",
                         "application/json; charsetx=utf-16", "application/json;", "application/json; foo"}) {
    BOOST_TEST(server::is_json_content_type(ok), ok);
  }
  for (const char* bad : {"application/json; charset=utf-16",
                          "application/json; charset=UTF-16",
                          "application/json; charset=utf-16le",
                          "application/json; charset=\"utf-16\"",
                          "application/json; Charset=\"UTF-16BE\"",
                          "application/json; charset=latin1",
                          "application/json; charset=iso-8859-1",
                          "application/json; charset=ascii",
                          "application/json; charset=us-ascii",
                          "application/json; charset=utf-32",
                          "application/json; charset=utf8",
                          "application/json; charset=",
                          "application/json; charset=\"\"",
                          "application/json; charset",
                          "application/json; charset=\"utf-8",
                          "application/json; charset=utf-8; charset=utf-16",
                          "application/json; charset=utf-16; charset=utf-8",
                          "application/json; charset=utf-8x",
                          "application/problem+json; charset=windows-1252",
                          "APPLICATION/JSON; CHARSET=LATIN1",
                          "application/json; charset=\"utf-8\\\""}) {
    BOOST_TEST(!server::is_json_content_type(bad), bad);
  }
}

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(responses)

BOOST_AUTO_TEST_CASE(status_for_every_error) {
  BOOST_TEST(server::status_for(core::errc::unauthorized) == 401u);
  BOOST_TEST(server::status_for(core::errc::not_found) == 404u);
  BOOST_TEST(server::status_for(core::errc::bad_request) == 400u);
  const unsigned overloaded = server::status_for(core::errc::overloaded);
  BOOST_TEST((overloaded == 429u || overloaded == 503u), "overloaded maps to " << overloaded);
  BOOST_TEST(server::status_for(core::errc::unavailable) == 503u);
  BOOST_TEST(server::status_for(core::errc::internal) == 500u);
  // a code from another category is a bug or a store's own code: 500, whatever its value
  BOOST_TEST(server::status_for(
                 boost::system::errc::make_error_code(boost::system::errc::permission_denied)) == 500u);
  BOOST_TEST(server::status_for(boost::system::error_code(1, boost::system::generic_category())) == 500u);
  BOOST_TEST(server::status_for(boost::system::error_code(2, boost::system::system_category())) == 500u);
}

BOOST_AUTO_TEST_CASE(error_body_exact_bytes) {
  BOOST_TEST(server::error_body("Unauthorized Request") ==
             R"({"success":false,"message":"Unauthorized Request"})");
  BOOST_TEST(server::error_body("Token not found") == R"({"success":false,"message":"Token not found"})");
  BOOST_TEST(server::error_body("say \"hi\"") == R"({"success":false,"message":"say \"hi\""})");
}

BOOST_AUTO_TEST_CASE(error_replies) {
  const auto unauthorized =
      server::error_reply(core::make_error_code(core::errc::unauthorized), server::route::list);
  BOOST_TEST(unauthorized.status == 401u);
  BOOST_TEST(unauthorized.body == R"({"success":false,"message":"Unauthorized Request"})");
  BOOST_TEST(!unauthorized.method_not_allowed);

  const auto not_found =
      server::error_reply(core::make_error_code(core::errc::not_found), server::route::remove);
  BOOST_TEST(not_found.status == 404u);
  BOOST_TEST(not_found.body == R"({"success":false,"message":"Token not found"})");

  // a foreign code's own text never reaches the client
  const auto foreign = server::error_reply(
      boost::system::errc::make_error_code(boost::system::errc::io_error), server::route::create);
  BOOST_TEST(foreign.status == 500u);
  const auto body = json::parse(foreign.body);
  BOOST_TEST(body.at("success").as_bool() == false);
  const std::string message(body.at("message").as_string());
  BOOST_TEST(message != boost::system::errc::make_error_code(boost::system::errc::io_error).message());

  const auto plain = server::error_reply(415, "Content-Type must be application/json");
  BOOST_TEST(plain.status == 415u);
  BOOST_TEST(plain.body == R"({"success":false,"message":"Content-Type must be application/json"})");
}

BOOST_AUTO_TEST_CASE(created_body_shape) {
  const std::string key = core::generate_key();
  server::token_service::created made{key, record(key, 3, "Main app", 1678829070)};
  const auto v = json::parse(server::created_body(made));
  BOOST_REQUIRE(v.is_object());
  const auto& o = v.as_object();
  BOOST_TEST(o.size() == 3u);
  BOOST_TEST(o.at("success").as_bool() == true);
  BOOST_TEST(o.at("message").as_string() == "Token created successfully");
  check_token_json(o.at("token"), key, "Main app", "1678829070", 3);
}

BOOST_AUTO_TEST_CASE(created_body_escapes_description) {
  const std::string key = core::generate_key();
  const std::string description = "quote \" backslash \\ newline \n caf\xC3\xA9";
  server::token_service::created made{key, record(key, 1, description, 5)};
  const auto v = json::parse(server::created_body(made));
  BOOST_TEST(v.at("token").at("description").as_string() == description);
}

BOOST_AUTO_TEST_CASE(list_body_without_paging) {
  storage::list_page page;
  page.tokens.push_back(record("abcdef0123456789", 7, "first", 100));
  page.tokens.push_back(record("9fe4f9aaaaaaaaaa", 7, "second", 200));
  page.has_more = true;  // not shown: paging was not asked for
  const auto v = json::parse(server::list_body(page, server::page_request{}));
  BOOST_REQUIRE(v.is_object());
  const auto& o = v.as_object();
  BOOST_TEST(o.size() == 3u);
  BOOST_TEST(o.at("success").as_bool() == true);
  BOOST_TEST(o.at("message").as_string() == "Success");
  BOOST_TEST(!o.contains("page"));
  BOOST_TEST(!o.contains("pageSize"));
  BOOST_TEST(!o.contains("hasMore"));
  const auto& tokens = o.at("tokens").as_array();
  BOOST_REQUIRE(tokens.size() == 2u);
  check_token_json(tokens[0], "abcdef....", "first", "100", 7);
  check_token_json(tokens[1], "9fe4f9....", "second", "200", 7);
}

// The fields beyond Vida's come after userId, in this order: id, expiresAt, lastUsedAt (strings of
// Unix seconds like timestamp, or null for never / not yet), rateLimit (null: the server's default;
// the burst written out).
BOOST_AUTO_TEST_CASE(token_fields_after_user_id) {
  storage::list_page page;
  page.tokens.push_back(record("abcdef0123456789", 7, "plain", 100));
  page.tokens[0].id = 17;
  auto used = record("9fe4f9aaaaaaaaaa", 7, "ends", 200);
  used.id = 18;
  used.expires_at = 1900000000;
  used.last_used_at = 1700000040;
  used.rate_limit = core::rate_limit{100, 60, 0};
  page.tokens.push_back(used);
  auto burst = record("0123456789abcdef", 7, "burst", 300);
  burst.id = 19;
  burst.rate_limit = core::rate_limit{5, 1, 20};
  page.tokens.push_back(burst);
  BOOST_TEST(
      server::list_body(page, server::page_request{}) ==
      R"({"success":true,"message":"Success","tokens":[)"
      R"({"token":"abcdef....","description":"plain","type":"admin","timestamp":"100","userId":7,)"
      R"("id":17,"expiresAt":null,"lastUsedAt":null,"rateLimit":null},)"
      R"({"token":"9fe4f9....","description":"ends","type":"admin","timestamp":"200","userId":7,)"
      R"("id":18,"expiresAt":"1900000000","lastUsedAt":"1700000040",)"
      R"("rateLimit":{"limit":100,"window":60,"burst":100}},)"
      R"({"token":"012345....","description":"burst","type":"admin","timestamp":"300","userId":7,)"
      R"("id":19,"expiresAt":null,"lastUsedAt":null,"rateLimit":{"limit":5,"window":1,"burst":20}}]})");
}

BOOST_AUTO_TEST_CASE(rolled_body_shape) {
  const std::string key = core::generate_key();
  server::token_service::rolled rolled;
  rolled.fresh = {key, record(key, 42, "deploy", 1700000000)};
  rolled.fresh.record.id = 9;
  rolled.fresh.record.type = "operator";
  rolled.old_id = 4;
  rolled.old_expires_at = 1700003600;
  BOOST_TEST(server::rolled_body(rolled) ==
             R"({"success":true,"message":"Token rolled successfully","token":{"token":")" + key +
                 R"(","description":"deploy","type":"operator","timestamp":"1700000000","userId":42,)"
                 R"("id":9,"expiresAt":null,"lastUsedAt":null,"rateLimit":null},)"
                 R"("previous":{"id":4,"expiresAt":"1700003600"}})");
}

BOOST_AUTO_TEST_CASE(rate_limit_bodies) {
  BOOST_TEST(server::rate_limit_updated_body(7, core::rate_limit{10, 60, 0}) ==
             R"({"success":true,"message":"Rate limit updated","id":7,)"
             R"("rateLimit":{"limit":10,"window":60,"burst":10}})");
  BOOST_TEST(server::rate_limit_updated_body(8, std::nullopt) ==
             R"({"success":true,"message":"Rate limit updated","id":8,"rateLimit":null})");
  std::vector<server::token_service::limited_key> keys(2);
  keys[0] = {42, 7, "abcdef", core::rate_limit{5, 1, 0}, 12, 5};
  keys[1] = {43, 9, "012345", core::rate_limit{0, 1, 0}, 1, 0};
  BOOST_TEST(server::limited_body(keys) ==
             R"({"success":true,"keys":[)"
             R"({"userId":42,"id":7,"token":"abcdef....","rateLimit":{"limit":5,"window":1,"burst":5},)"
             R"("refused":12,"admitted":5},)"
             R"({"userId":43,"id":9,"token":"012345....","rateLimit":{"limit":0,"window":1,"burst":0},)"
             R"("refused":1,"admitted":0}]})");
  BOOST_TEST(server::limited_body({}) == R"({"success":true,"keys":[]})");
  const server::rate_state state{core::rate_limit{5, 60, 0}, core::rate_decision{false, 0, 60, 0}};
  const auto refused = server::rate_limited_reply(429, state, server::route::list);
  BOOST_TEST(refused.status == 429u);
  BOOST_TEST(refused.body == R"({"success":false,"message":"Rate limit exceeded"})");
  BOOST_TEST(refused.retry_after_seconds == 1u);  // never 0: Retry-After is always sent on a refusal
  BOOST_TEST(refused.rate_limited);
  BOOST_TEST(refused.rate.has_value());
  BOOST_TEST(!refused.bearer_challenge);
}

BOOST_AUTO_TEST_CASE(forbidden_is_a_json_error) {
  const auto reply = server::error_reply(403, server::other_user_refusal, server::route::list);
  BOOST_TEST(reply.status == 403u);
  BOOST_TEST(reply.body == R"({"success":false,"message":"Only an operator key may act for another user"})");
  BOOST_TEST(server::error_reply(403, server::operator_create_refusal).body ==
             R"({"success":false,"message":"Only an operator key may create an operator key"})");
}

BOOST_AUTO_TEST_CASE(list_body_with_paging) {
  storage::list_page page;
  page.tokens.push_back(record("abcdef0123456789", 2, "only", 1));
  page.has_more = true;
  server::page_request paging;
  paging.page = 4;
  paging.page_size = 1;
  paging.explicit_paging = true;
  const auto v = json::parse(server::list_body(page, paging));
  const auto& o = v.as_object();
  BOOST_TEST(o.size() == 6u);
  BOOST_TEST(o.at("page").to_number<std::uint64_t>() == 4u);
  BOOST_TEST(o.at("pageSize").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(o.at("hasMore").is_bool());
  BOOST_TEST(o.at("hasMore").as_bool() == true);
  BOOST_TEST(o.at("tokens").as_array().size() == 1u);

  page.has_more = false;
  const auto last = json::parse(server::list_body(page, paging));
  BOOST_TEST(last.at("hasMore").as_bool() == false);
}

BOOST_AUTO_TEST_CASE(list_body_empty) {
  const auto v = json::parse(server::list_body(storage::list_page{}, server::page_request{}));
  BOOST_TEST(v.at("tokens").is_array());
  BOOST_TEST(v.at("tokens").as_array().empty());
  BOOST_TEST(v.at("success").as_bool() == true);
}

BOOST_AUTO_TEST_CASE(deleted_body_exact_bytes) {
  BOOST_TEST(server::deleted_body() == R"({"success":true,"message":"Token deleted successfully"})");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(response_head)

namespace http = boost::beast::http;

// What Beast's own serializer sends for `res`: the reference the hand-written head must match.
std::string beast_bytes(const http::response<http::string_body>& res) {
  std::ostringstream os;
  os << res;
  return os.str();
}

BOOST_AUTO_TEST_CASE(matches_beast_serializer_byte_for_byte) {
  struct sample {
    http::status status;
    unsigned version;
    bool keep_alive;
    std::string body;
  };
  const std::vector<sample> samples{
      {http::status::ok, 11, true, R"({"success":true,"message":"Success","tokens":[]})"},
      {http::status::unauthorized, 11, false, R"({"success":false,"message":"Invalid or missing token"})"},
      {http::status::not_found, 10, false, "{}"},
      {http::status::not_found, 10, true, "{}"},
      {http::status::method_not_allowed, 11, true, ""},
      {http::status::payload_too_large, 11, false, "x"},
      {http::status::request_header_fields_too_large, 11, false, "y"},
      {http::status::service_unavailable, 11, true, std::string(5000, 'z')},
      {static_cast<http::status>(299), 11, true, "unknown status code keeps its number"},
  };
  std::string head;
  for (const auto& s : samples) {
    server::http_response ours{static_cast<unsigned>(s.status), s.body};
    http::response<http::string_body> theirs{s.status, s.version};
    const auto both = [&](auto name, std::string_view value) {
      ours.insert(name, value);
      theirs.insert(name, value);
    };
    both(http::field::content_type, "application/json");
    both(http::field::cache_control, "no-store");
    both(std::string_view("X-Request-Id"), "0123456789abcdef0123456789abcdef");
    if (s.status == http::status::method_not_allowed) both(http::field::allow, "GET, POST, DELETE");
    theirs.body() = s.body;
    theirs.keep_alive(s.keep_alive);
    theirs.prepare_payload();
    server::write_response_head(ours, {s.version, s.keep_alive, s.body.size()}, head);
    BOOST_TEST(head + ours.body() == beast_bytes(theirs),
               "status " << ours.result_int() << " HTTP/" << s.version << " keep-alive " << s.keep_alive);
  }
}

BOOST_AUTO_TEST_CASE(no_length_on_a_response_that_has_no_content) {
  std::string head;
  for (const unsigned status : {100u, 101u, 204u}) {
    server::write_response_head(server::http_response{status}, {11, true, 0}, head);
    BOOST_TEST(head.find("Content-Length") == std::string::npos, status);
  }
  server::write_response_head(server::http_response{304}, {11, true, 0}, head);
  BOOST_TEST(head == "HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_head_response_announces_the_length_it_does_not_carry) {
  std::string head;
  server::write_response_head(server::http_response{200}, {11, true, 1234}, head);
  BOOST_TEST(head == "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(reuses_the_buffer_without_leftovers) {
  server::http_response big{200, "body"};
  big.insert("X-Long", std::string(300, 'a'));
  server::http_response small{204};
  std::string head;
  server::write_response_head(big, {11, true, 4}, head);
  server::write_response_head(small, {11, true, 0}, head);
  BOOST_TEST(head == "HTTP/1.1 204 No Content\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(fields_are_found_by_name_in_any_case_and_kept_in_order) {
  server::http_response res{200};
  BOOST_TEST(res.fields().empty());
  BOOST_TEST(res["Allow"].empty());
  res.insert(http::field::content_type, "application/json");
  res.insert("X-Tokend-User-Id", "42");
  res.insert("RateLimit", R"("key";r=0;t=5)");
  res.insert("X-Tokend-User-Id", "43");
  // Past the inline room: the fields move to the heap and stay whole.
  const std::string long_value(500, 'v');
  res.insert("X-Long", long_value);
  BOOST_TEST(res[http::field::content_type] == "application/json");
  BOOST_TEST(res["x-tokend-user-id"] == "42");
  BOOST_TEST(res.count("X-TOKEND-USER-ID") == 2u);
  BOOST_TEST(res["ratelimit"] == R"("key";r=0;t=5)");
  BOOST_TEST(res["X-Long"] == long_value);
  BOOST_TEST(res.count(http::field::allow) == 0u);
  const std::string expected =
      "Content-Type: application/json\r\nX-Tokend-User-Id: 42\r\n"
      "RateLimit: \"key\";r=0;t=5\r\nX-Tokend-User-Id: 43\r\n"
      "X-Long: " +
      long_value + "\r\n";
  BOOST_TEST(res.fields() == expected);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(parse_config)

BOOST_AUTO_TEST_CASE(defaults) {
  const auto c = configure({});
  BOOST_TEST(c.listen.host == "0.0.0.0");
  BOOST_TEST(c.listen.port == 8080);
  BOOST_TEST(c.admin_listen.host == "0.0.0.0");
  BOOST_TEST(c.admin_listen.port == 9090);
  BOOST_TEST(c.data_dir == "./data");
  BOOST_TEST(c.threads == std::max(1u, std::thread::hardware_concurrency()));
  BOOST_TEST(c.cache_capacity == 1'000'000u);
  BOOST_TEST(c.max_body_bytes == 16u * 1024u);
  BOOST_TEST(c.max_header_bytes == 8u * 1024u);
  BOOST_TEST(c.sync);
  BOOST_TEST(c.write_queue == 65536u);
  BOOST_TEST(c.idle_timeout.count() == 60'000);
  BOOST_TEST(c.request_timeout.count() == 10'000);
  BOOST_TEST(c.drain_timeout.count() == 10'000);
  BOOST_TEST(c.test_fault_file.empty());
}

BOOST_AUTO_TEST_CASE(environment) {
  const auto c = configure({}, {{"TOKEND_LISTEN", "127.0.0.1:1234"},
                                {"TOKEND_ADMIN_LISTEN", "[::1]:9999"},
                                {"TOKEND_DATA_DIR", "/tmp/x"},
                                {"TOKEND_THREADS", "3"},
                                {"TOKEND_CACHE_CAPACITY", "50"},
                                {"TOKEND_MAX_BODY_BYTES", "2048"},
                                {"TOKEND_MAX_HEADER_BYTES", "4096"},
                                {"TOKEND_SYNC", "false"},
                                {"TOKEND_WRITE_QUEUE", "10"},
                                {"TOKEND_IDLE_TIMEOUT", "5s"},
                                {"TOKEND_REQUEST_TIMEOUT", "250ms"},
                                {"TOKEND_DRAIN_TIMEOUT", "7"},
                                {"TOKEND_TEST_FAULT_FILE", "/tmp/fault"}});
  BOOST_TEST(c.listen.host == "127.0.0.1");
  BOOST_TEST(c.listen.port == 1234);
  BOOST_TEST(c.admin_listen.host == "::1");
  BOOST_TEST(c.admin_listen.port == 9999);
  BOOST_TEST(c.data_dir == "/tmp/x");
  BOOST_TEST(c.threads == 3u);
  BOOST_TEST(c.cache_capacity == 50u);
  BOOST_TEST(c.max_body_bytes == 2048u);
  BOOST_TEST(c.max_header_bytes == 4096u);
  BOOST_TEST(!c.sync);
  BOOST_TEST(c.write_queue == 10u);
  BOOST_TEST(c.idle_timeout.count() == 5'000);
  BOOST_TEST(c.request_timeout.count() == 250);
  BOOST_TEST(c.drain_timeout.count() == 7'000);
  BOOST_TEST(c.test_fault_file == "/tmp/fault");
}

BOOST_AUTO_TEST_CASE(flag_beats_environment) {
  const std::map<std::string, std::string> env{{"TOKEND_THREADS", "3"}, {"TOKEND_LISTEN", "127.0.0.1:1"}};
  const auto c = configure({"--threads", "5", "--listen=127.0.0.2:2"}, env);
  BOOST_TEST(c.threads == 5u);
  BOOST_TEST(c.listen.host == "127.0.0.2");
  BOOST_TEST(c.listen.port == 2);
  // an environment value the flags do not override stays
  const auto d = configure({"--listen=127.0.0.2:2"}, env);
  BOOST_TEST(d.threads == 3u);
}

BOOST_AUTO_TEST_CASE(flag_forms) {
  const auto a = configure({"--threads=4", "--data-dir", "/var/lib/tokend", "--cache-capacity=7"});
  BOOST_TEST(a.threads == 4u);
  BOOST_TEST(a.data_dir == "/var/lib/tokend");
  BOOST_TEST(a.cache_capacity == 7u);
  const auto b = configure({"--listen", "10.0.0.1:80", "--admin-listen=[::]:81"});
  BOOST_TEST(b.listen.host == "10.0.0.1");
  BOOST_TEST(b.listen.port == 80);
  BOOST_TEST(b.admin_listen.host == "::");
  BOOST_TEST(b.admin_listen.port == 81);
}

BOOST_AUTO_TEST_CASE(sync_switch) {
  BOOST_TEST(!configure({"--sync=false"}).sync);
  BOOST_TEST(!configure({"--no-sync"}).sync);
  BOOST_TEST(configure({"--sync=true"}).sync);
  BOOST_TEST(configure({"--sync"}, {{"TOKEND_SYNC", "false"}}).sync);  // the bare switch means true, and wins
  BOOST_TEST(!configure({"--no-sync"}, {{"TOKEND_SYNC", "true"}}).sync);
  BOOST_TEST(!configure({}, {{"TOKEND_SYNC", "0"}}).sync);
  BOOST_TEST(config_refused({"--sync=maybe"}));
}

BOOST_AUTO_TEST_CASE(bad_values_are_refused) {
  BOOST_TEST(config_refused({"--threads", "x"}));
  BOOST_TEST(config_refused({"--threads=x"}));
  BOOST_TEST(config_refused({"--threads=0"}));
  BOOST_TEST(config_refused({"--threads=-1"}));
  BOOST_TEST(config_refused({"--threads=2x"}));
  BOOST_TEST(config_refused({"--listen", "nonsense"}));
  BOOST_TEST(config_refused({"--listen=localhost:80"}));  // an IP address, not a name
  BOOST_TEST(config_refused({"--listen=127.0.0.1:99999"}));
  BOOST_TEST(config_refused({"--listen=127.0.0.1:"}));
  BOOST_TEST(config_refused({"--listen=:80"}));
  BOOST_TEST(config_refused({"--data-dir="}));
  BOOST_TEST(config_refused({"--max-body-bytes=1"}));
  BOOST_TEST(config_refused({"--bogus"}));
  BOOST_TEST(config_refused({"--bogus=1"}));
  BOOST_TEST(config_refused({"serve-me"}));
  BOOST_TEST(config_refused({"--threads"}));  // missing value
  BOOST_TEST(config_refused({"--listen"}));
  BOOST_TEST(config_refused({}, {{"TOKEND_THREADS", "x"}}));  // a bad environment value too
  BOOST_TEST(config_refused({}, {{"TOKEND_LISTEN", "nonsense"}}));
}

BOOST_AUTO_TEST_CASE(durations) {
  BOOST_TEST(configure({"--idle-timeout=500ms"}).idle_timeout.count() == 500);
  BOOST_TEST(configure({"--idle-timeout", "10s"}).idle_timeout.count() == 10'000);
  BOOST_TEST(configure({"--idle-timeout=10"}).idle_timeout.count() == 10'000);
  BOOST_TEST(configure({"--request-timeout=1ms"}).request_timeout.count() == 1);
  BOOST_TEST(configure({"--drain-timeout=2s"}).drain_timeout.count() == 2'000);
  BOOST_TEST(configure({"--idle-timeout=10m"}).idle_timeout.count() == 600'000);
  BOOST_TEST(configure({"--idle-timeout=2h"}).idle_timeout.count() == 7'200'000);
  BOOST_TEST(configure({"--idle-timeout=30d"}).idle_timeout.count() == 2'592'000'000);
  BOOST_TEST(configure({"--idle-timeout=1000d"}).idle_timeout.count() == 86'400'000'000);
  BOOST_TEST(configure({"--idle-timeout=86400000"}).idle_timeout.count() == 86'400'000'000);
  BOOST_TEST(config_refused({"--idle-timeout=1001d"}));  // at most 1000 days, whatever the unit
  BOOST_TEST(config_refused({"--idle-timeout=24001h"}));
  BOOST_TEST(config_refused({"--idle-timeout=86400001s"}));
  BOOST_TEST(config_refused({"--idle-timeout=99999999999999999999ms"}));
  BOOST_TEST(config_refused({"--idle-timeout=m"}));
  BOOST_TEST(config_refused({"--idle-timeout=d"}));
  BOOST_TEST(config_refused({"--idle-timeout=5w"}));
  BOOST_TEST(config_refused({"--idle-timeout=5 m"}));
  BOOST_TEST(config_refused({"--idle-timeout=1.5h"}));
  BOOST_TEST(config_refused({"--idle-timeout=0m"}));
  BOOST_TEST(config_refused({"--idle-timeout=ms"}));
  BOOST_TEST(config_refused({"--idle-timeout=s"}));
  BOOST_TEST(config_refused({"--idle-timeout=abc"}));
  BOOST_TEST(config_refused({"--idle-timeout=0"}));
  BOOST_TEST(config_refused({"--idle-timeout=-5s"}));
}

BOOST_AUTO_TEST_CASE(expiry_and_last_use_durations) {
  const auto defaults = configure({});
  BOOST_TEST(defaults.expired_retention.count() == 30LL * 86'400'000);
  BOOST_TEST(defaults.expired_sweep_interval.count() == 60'000);
  BOOST_TEST(defaults.last_used_interval.count() == 60'000);
  const auto set = configure({"--expired-retention=7d", "--expired-sweep-interval", "5m"},
                             {{"TOKEND_LAST_USED_INTERVAL", "0"}});
  BOOST_TEST(set.expired_retention.count() == 7LL * 86'400'000);
  BOOST_TEST(set.expired_sweep_interval.count() == 300'000);
  BOOST_TEST(set.last_used_interval.count() == 0);  // off
  BOOST_TEST(configure({}, {{"TOKEND_EXPIRED_RETENTION", "0"}}).expired_retention.count() == 0);
  BOOST_TEST(configure({"--last-used-interval=2h"}).last_used_interval.count() == 7'200'000);
  BOOST_TEST(configure({"--last-used-interval=0s"}).last_used_interval.count() == 0);
  BOOST_TEST(config_refused({"--expired-sweep-interval=0"}));  // a sweep needs a period
  BOOST_TEST(config_refused({"--expired-retention=-1d"}));
  BOOST_TEST(config_refused({"--last-used-interval=often"}));
  BOOST_TEST(config_refused({}, {{"TOKEND_EXPIRED_SWEEP_INTERVAL", "1y"}}));
}

BOOST_AUTO_TEST_CASE(rate_limit_sync_interval) {
  BOOST_TEST(configure({}).rate_limit_sync_interval.count() == 200);
  BOOST_TEST(configure({"--rate-limit-sync-interval=1s"}).rate_limit_sync_interval.count() == 1000);
  BOOST_TEST(configure({"--rate-limit-sync-interval", "50ms"}).rate_limit_sync_interval.count() == 50);
  BOOST_TEST(configure({}, {{"TOKEND_RATE_LIMIT_SYNC_INTERVAL", "0"}}).rate_limit_sync_interval.count() == 0);
  BOOST_TEST(config_refused({"--rate-limit-sync-interval=fast"}));
  BOOST_TEST(config_refused({"--rate-limit-sync-interval=-1s"}));
  BOOST_TEST(mentions(server::usage_text(), "--rate-limit-sync-interval"));
  BOOST_TEST(mentions(server::usage_text(), "TOKEND_RATE_LIMIT_SYNC_INTERVAL"));
}

BOOST_AUTO_TEST_CASE(drain_idle_grace) {
  // Unset: 2s, but at most half the drain timeout, so the deadline still has time for busy requests.
  BOOST_TEST(!configure({}).drain_idle_grace.has_value());
  BOOST_TEST(server::drain_idle_grace(configure({})).count() == 2'000);
  BOOST_TEST(server::drain_idle_grace(configure({"--drain-timeout=1s"})).count() == 500);
  BOOST_TEST(server::drain_idle_grace(configure({"--drain-idle-grace=750ms"})).count() == 750);
  BOOST_TEST(server::drain_idle_grace(configure({}, {{"TOKEND_DRAIN_IDLE_GRACE", "3s"}})).count() == 3'000);
  BOOST_TEST(server::drain_idle_grace(configure({"--drain-idle-grace", "0"})).count() == 0);
  // A grace that the drain deadline would cut short is a mistake, not a wish.
  BOOST_TEST(config_refused({"--drain-idle-grace=10s"}));
  BOOST_TEST(config_refused({"--drain-idle-grace=3s", "--drain-timeout=2s"}));
  BOOST_TEST(config_refused({"--drain-idle-grace=-1s"}));
  BOOST_TEST(config_refused({"--drain-idle-grace=soon"}));
}

BOOST_AUTO_TEST_CASE(token_lifetimes) {
  BOOST_TEST(configure({}).token_ttl.count() == 0);
  BOOST_TEST(configure({}).token_max_ttl.count() == 0);
  const auto set = configure({"--token-ttl=3600", "--token-max-ttl", "86400s"});
  BOOST_TEST(set.token_ttl.count() == 3600);
  BOOST_TEST(set.token_max_ttl.count() == 86'400);
  const auto env = configure({}, {{"TOKEND_TOKEN_TTL", "60s"}, {"TOKEND_TOKEN_MAX_TTL", "120"}});
  BOOST_TEST(env.token_ttl.count() == 60);
  BOOST_TEST(env.token_max_ttl.count() == 120);
  BOOST_TEST(configure({"--token-max-ttl=60", "--token-ttl=0"}).token_ttl.count() == 0);
  BOOST_TEST(configure({"--token-ttl=90", "--token-max-ttl=0"}).token_ttl.count() == 90);
  // A default past the maximum could never be given: a configuration mistake.
  BOOST_TEST(config_refused({"--token-ttl=3600", "--token-max-ttl=60"}));
  BOOST_TEST(config_refused({"--token-ttl=1500ms"}));
  BOOST_TEST(config_refused({"--token-ttl=-1"}));
  BOOST_TEST(config_refused({"--token-max-ttl=soon"}));
}

BOOST_AUTO_TEST_CASE(rate_limit_flags) {
  const auto defaults = configure({});
  BOOST_TEST(defaults.rate_limit.unlimited());
  BOOST_TEST(defaults.rate_limit.burst == 0u);
  BOOST_TEST(defaults.verify_rate_limited_status == 429u);
  const auto set =
      configure({"--rate-limit=100/1s", "--rate-limit-burst", "250", "--verify-rate-limited-status=403"});
  BOOST_TEST((set.rate_limit == core::rate_limit{100, 1, 250}));
  BOOST_TEST(set.verify_rate_limited_status == 403u);
  BOOST_TEST((configure({"--rate-limit=6000/1m"}).rate_limit == core::rate_limit{6000, 60, 0}));
  BOOST_TEST((configure({"--rate-limit=10/1d"}).rate_limit == core::rate_limit{10, 86'400, 0}));
  BOOST_TEST((configure({"--rate-limit=5/30"}).rate_limit == core::rate_limit{5, 30, 0}));
  BOOST_TEST(
      (configure({"--rate-limit=1000000000/24h"}).rate_limit == core::rate_limit{1'000'000'000, 86'400, 0}));
  const auto env = configure({}, {{"TOKEND_RATE_LIMIT", "50/10s"},
                                  {"TOKEND_RATE_LIMIT_BURST", "5"},
                                  {"TOKEND_VERIFY_RATE_LIMITED_STATUS", "401"}});
  BOOST_TEST((env.rate_limit == core::rate_limit{50, 10, 5}));
  BOOST_TEST(env.verify_rate_limited_status == 401u);
  // The flag wins over the environment; off and 0 turn the default off.
  BOOST_TEST(configure({"--rate-limit=off"}, {{"TOKEND_RATE_LIMIT", "50/10s"}}).rate_limit.unlimited());
  BOOST_TEST(configure({"--rate-limit", "0"}, {{"TOKEND_RATE_LIMIT", "50/10s"}}).rate_limit.unlimited());
  for (const char* bad :
       {"100", "100/", "/1s", "0/1s", "-1/1s", "1000000001/1s", "100/0", "100/0s", "100/500ms", "100/1500ms",
        "100/2d", "100/1x", "1.5/1s", "100/1s/2", "ten/1s", "100 / 1s"}) {
    BOOST_TEST(config_refused({std::string("--rate-limit=") + bad}), bad);
  }
  BOOST_TEST(config_refused({}, {{"TOKEND_RATE_LIMIT", "fast"}}));
  for (const char* bad : {"-1", "1000000001", "x", ""}) {
    BOOST_TEST(config_refused({std::string("--rate-limit-burst=") + bad}), bad);
  }
  for (const char* bad : {"200", "500", "402", "0", "429 ", "x"}) {
    BOOST_TEST(config_refused({std::string("--verify-rate-limited-status=") + bad}), bad);
  }
  // The refusal names the flag.
  try {
    (void)configure({"--rate-limit=100/500ms"});
    BOOST_ERROR("accepted a window below a second");
  } catch (const server::config_error& e) {
    BOOST_TEST(mentions(e.what(), "--rate-limit"), e.what());
  }
}

BOOST_AUTO_TEST_CASE(usage_mentions_every_flag) {
  const std::string usage = server::usage_text();
  for (const char* flag : {"--listen",
                           "--admin-listen",
                           "--data-dir",
                           "--threads",
                           "--cache-capacity",
                           "--max-body-bytes",
                           "--max-header-bytes",
                           "--sync",
                           "--no-sync",
                           "--write-queue",
                           "--idle-timeout",
                           "--request-timeout",
                           "--drain-timeout",
                           "--drain-idle-grace",
                           "--expired-retention",
                           "--expired-sweep-interval",
                           "--last-used-interval",
                           "--rate-limit",
                           "--rate-limit-burst",
                           "--verify-rate-limited-status",
                           "TOKEND_BOOTSTRAP_TYPE",
                           "--test-fault-file"}) {
    BOOST_TEST(mentions(usage, flag), flag);
  }
}

BOOST_AUTO_TEST_CASE(store_selection) {
  BOOST_TEST((configure({}).store == server::store_kind::rocksdb));
  const auto c =
      configure({"--store", "postgres", "--postgres-url", "postgresql:///x", "--revocation-poll", "250ms"},
                {{"TOKEND_POSTGRES_SCHEMA", "tenant_2"}, {"TOKEND_POSTGRES_CONNECTIONS", "8"}});
  BOOST_TEST((c.store == server::store_kind::postgres));
  BOOST_TEST(c.postgres_url == "postgresql:///x");
  BOOST_TEST(c.postgres_schema == "tenant_2");
  BOOST_TEST(c.postgres_connections == 8u);
  BOOST_TEST(c.revocation_poll.count() == 250);
  const auto e = configure({}, {{"TOKEND_STORE", "postgres"}, {"TOKEND_POSTGRES_URL", "host=db"}});
  BOOST_TEST((e.store == server::store_kind::postgres));
  BOOST_TEST(config_refused({"--store", "postgres"}));  // no URL
  BOOST_TEST(config_refused({"--store", "sqlite"}));
  // The store's own rule (storage::postgres_schema_problem), reported against the flag; any other
  // name is quoted, so reserved words and capitals are fine.
  BOOST_TEST(config_refused({"--postgres-schema", ""}));
  BOOST_TEST(config_refused({"--postgres-schema", "pg_tokend"}));
  BOOST_TEST(config_refused({"--postgres-schema", std::string(49, 'a')}));
  BOOST_TEST(config_refused({"--postgres-schema", "a\nb"}));
  BOOST_TEST(configure({"--postgres-schema", "select"}).postgres_schema == "select");
  BOOST_TEST(configure({"--postgres-schema", "Tenant-2"}).postgres_schema == "Tenant-2");
  BOOST_TEST(config_refused({"--postgres-connections", "0"}));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(admin)

struct admin_fixture {
  bool is_ready = true;
  server::admin_sources sources{[this] { return is_ready; }, [] { return std::string("tokend_ready 1\n"); }};
};

BOOST_FIXTURE_TEST_CASE(unknown_path_is_404, admin_fixture) {
  for (const char* target : {"/", "/nope", "/healthz/x", "/api/v2/tokens", "/metricsx"}) {
    const auto res = server::handle_admin(admin_request(http::verb::get, target), sources);
    BOOST_TEST(res.result_int() == 404u, target);
    BOOST_TEST(res[http::field::content_type] == "application/json", target);
    const auto body = json::parse(res.body());
    BOOST_TEST(body.at("success").as_bool() == false);
    BOOST_TEST(body.at("message").is_string());
  }
}

BOOST_FIXTURE_TEST_CASE(post_is_405_with_allow, admin_fixture) {
  for (const char* target : {"/healthz", "/readyz", "/metrics"}) {
    for (const auto method : {http::verb::post, http::verb::delete_, http::verb::put}) {
      const auto res = server::handle_admin(admin_request(method, target), sources);
      BOOST_TEST(res.result_int() == 405u, target);
      BOOST_TEST(res[http::field::allow] == "GET", target);
      BOOST_TEST(res[http::field::content_type] == "application/json", target);
    }
  }
}

BOOST_FIXTURE_TEST_CASE(healthz, admin_fixture) {
  is_ready = false;  // alive even when not ready
  const auto res = server::handle_admin(admin_request(http::verb::get, "/healthz"), sources);
  BOOST_TEST(res.result_int() == 200u);
  const auto with_query = server::handle_admin(admin_request(http::verb::get, "/healthz?verbose=1"), sources);
  BOOST_TEST(with_query.result_int() == 200u);
}

BOOST_FIXTURE_TEST_CASE(readyz_follows_the_callback, admin_fixture) {
  BOOST_TEST(server::handle_admin(admin_request(http::verb::get, "/readyz"), sources).result_int() == 200u);
  is_ready = false;
  BOOST_TEST(server::handle_admin(admin_request(http::verb::get, "/readyz"), sources).result_int() == 503u);
  is_ready = true;
  BOOST_TEST(server::handle_admin(admin_request(http::verb::get, "/readyz"), sources).result_int() == 200u);
}

BOOST_FIXTURE_TEST_CASE(metrics_is_text, admin_fixture) {
  const auto res = server::handle_admin(admin_request(http::verb::get, "/metrics"), sources);
  BOOST_TEST(res.result_int() == 200u);
  const std::string type(res[http::field::content_type]);
  BOOST_TEST(type.starts_with("text/plain"), type);
  BOOST_TEST(res.body() == "tokend_ready 1\n");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(store_await)

using answer = std::function<void(int)>;

// Waits for one "store" answer, handed to the test through `pending`, and records it.
boost::asio::awaitable<void> await_answer(std::vector<answer>* pending, std::vector<int>* resumed) {
  const int v =
      (co_await server::on_store<int>([pending](answer done) { pending->push_back(std::move(done)); })).value;
  resumed->push_back(v);
}

BOOST_AUTO_TEST_CASE(a_completion_batch_resumes_one_executors_waiters_with_one_post) {
  boost::asio::io_context ctx{1};
  std::vector<answer> pending;
  std::vector<int> resumed;
  for (int i = 0; i < 3; ++i)
    boost::asio::co_spawn(ctx, await_answer(&pending, &resumed), boost::asio::detached);
  ctx.poll();
  BOOST_REQUIRE(pending.size() == 3u);

  // Answered on the store's own thread within one batch, as the RocksDB writer delivers a commit.
  std::thread([&pending] {
    const storage::completion_batch batch;
    for (int i = 0; i < 3; ++i) pending[static_cast<std::size_t>(i)](i + 1);
  }).join();
  BOOST_TEST(resumed.empty());  // never resumed on the store's thread
  ctx.restart();
  BOOST_TEST(ctx.poll_one() == 1u);  // one handler resumes all three, in the order answered
  BOOST_TEST(resumed == (std::vector<int>{1, 2, 3}));

  // Outside a batch, each answer is a post of its own, as before.
  pending.clear();
  resumed.clear();
  for (int i = 0; i < 2; ++i)
    boost::asio::co_spawn(ctx, await_answer(&pending, &resumed), boost::asio::detached);
  ctx.restart();
  ctx.poll();
  BOOST_REQUIRE(pending.size() == 2u);
  std::thread([&pending] {
    pending[0](7);
    pending[1](8);
  }).join();
  ctx.restart();
  BOOST_TEST(ctx.poll_one() == 1u);
  BOOST_TEST(resumed == (std::vector<int>{7}));
  ctx.poll();
  BOOST_TEST(resumed == (std::vector<int>{7, 8}));
}

BOOST_AUTO_TEST_CASE(batches_nest_and_close_in_order) {
  BOOST_TEST(storage::completion_batch::current() == nullptr);
  {
    const storage::completion_batch outer;
    BOOST_TEST(storage::completion_batch::current() == &outer);
    {
      const storage::completion_batch inner;
      BOOST_TEST(storage::completion_batch::current() == &inner);
    }
    BOOST_TEST(storage::completion_batch::current() == &outer);
  }
  BOOST_TEST(storage::completion_batch::current() == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
