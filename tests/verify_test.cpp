// The key extraction of /verify without a socket: every source, every pair of sources, conflicts,
// percent-encoding, absolute URLs, fragments, malformed URIs and repeated headers; which targets
// are /verify; and the answer to a key over its rate limit, in each configurable status.
#define BOOST_TEST_MODULE verify_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "server/token_service.hpp"
#include "server/verify.hpp"
#include "storage/memory_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace server = tokend::server;
namespace core = tokend::core;
namespace http = boost::beast::http;
using server::key_problem;
using headers = std::vector<std::pair<std::string, std::string>>;

namespace tokend::server {
std::ostream& operator<<(std::ostream& os, key_problem p) { return os << static_cast<int>(p); }
}  // namespace tokend::server

namespace {

const std::string key_a = core::generate_key();
const std::string key_b = core::generate_key();

server::gateway_key extract(const std::string& target, const headers& h = {}) {
  server::http_request req{http::verb::get, target, 11};
  for (const auto& [name, value] : h) req.insert(name, value);
  return server::gateway_key_of(req);
}

// A found key, as a string; "<problem N>" when refused.
std::string found(const server::gateway_key& k) {
  if (!k) return "<problem " + std::to_string(static_cast<int>(k.problem)) + ">";
  return std::string(k.key());
}

std::string pct(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) out += std::string{'%', hex[c >> 4], hex[c & 15]};
  return out;
}

const headers bearer_a{{"Authorization", "Bearer " + key_a}};

}  // namespace

BOOST_AUTO_TEST_SUITE(targets)

BOOST_AUTO_TEST_CASE(verify_and_paths_under_it) {
  for (const char* t : {"/verify", "/verify?token=x", "/verify/", "/verify/api/items?x=1", "/verify/a/b/c"}) {
    BOOST_TEST(server::is_verify_target(t), t);
  }
  for (const char* t : {"/verifyx", "/verify-me", "/", "/api/v2/tokens", "/VERIFY", "verify", "/v/verify",
                        "/%76erify", "/verifyx?/verify/"}) {
    BOOST_TEST(!server::is_verify_target(t), t);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(single_sources)

BOOST_AUTO_TEST_CASE(no_source_is_missing) {
  BOOST_TEST(extract("/verify").problem == key_problem::missing);
  BOOST_TEST(extract("/verify?other=1", {{"X-Original-URI", "/api/items?x=1"}}).problem ==
             key_problem::missing);
  BOOST_TEST(extract("/verify", {{"Authorization", "Basic dXNlcjpwYXNz"}}).problem == key_problem::missing);
  BOOST_TEST(extract("/verify", {{"X-Original-URI", ""}}).problem == key_problem::missing);
}

BOOST_AUTO_TEST_CASE(each_source_alone) {
  BOOST_TEST(found(extract("/verify", bearer_a)) == key_a);
  BOOST_TEST(found(extract("/verify", {{"Authorization", "  bearer   " + key_a + "  "}})) == key_a);
  BOOST_TEST(found(extract("/verify?token=" + key_a)) == key_a);
  BOOST_TEST(found(extract("/verify/api/items?page=2&token=" + key_a + "&x=y")) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Original-URI", "/api/items?token=" + key_a}})) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Original-URL", "https://api.example/items?token=" + key_a}})) ==
             key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Forwarded-Uri", "/items?a=1&token=" + key_a}})) == key_a);
  // header names are case-insensitive
  BOOST_TEST(found(extract("/verify", {{"x-original-uri", "/items?token=" + key_a}})) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-FORWARDED-URI", "/items?token=" + key_a}})) == key_a);
}

BOOST_AUTO_TEST_CASE(percent_encoding_is_decoded) {
  BOOST_TEST(found(extract("/verify?token=" + pct(key_a))) == key_a);
  BOOST_TEST(found(extract("/verify?%74oken=" + key_a)) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Original-URI", "/i?" + pct("token") + "=" + pct(key_a)}})) ==
             key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Original-URL", "http://h/i?token=" + pct(key_a)}})) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Forwarded-Uri", "/i?token=" + pct(key_a)}})) == key_a);
  // '+' is a space, as in the API's own query: the value is then no key (but it is the value)
  BOOST_TEST(found(extract("/verify?token=a+b")) == "a b");
}

BOOST_AUTO_TEST_CASE(absolute_urls_with_and_without_query) {
  BOOST_TEST(found(extract("/verify", {{"X-Original-URL",
                                        "https://api.example:8443/a/b?x=1&token=" + key_a}})) == key_a);
  BOOST_TEST(extract("/verify", {{"X-Original-URL", "https://api.example/a/b"}}).problem ==
             key_problem::missing);
  BOOST_TEST(extract("/verify", {{"X-Original-URL", "https://api.example"}}).problem == key_problem::missing);
  BOOST_TEST(found(extract("/verify", {{"X-Original-URL", "http://api.example?token=" + key_a}})) == key_a);
  // nginx's $request_uri is absolute when the client sent an absolute-form request
  BOOST_TEST(found(extract("/verify", {{"X-Original-URI", "http://api.example/a?token=" + key_a}})) == key_a);
  BOOST_TEST(
      extract("/verify", {{"X-Original-URI", "http://api.example/a"}, {"Authorization", "Bearer " + key_a}})
          .problem == key_problem::none);
}

BOOST_AUTO_TEST_CASE(empty_and_valueless_token_parameters_are_candidates) {
  // as for the API's own query: an empty key is a key (malformed), so it conflicts with a real one
  BOOST_TEST(found(extract("/verify?token=")) == "");
  BOOST_TEST(found(extract("/verify?token")) == "");
  BOOST_TEST(extract("/verify?token=", bearer_a).problem == key_problem::conflicting);
}

BOOST_AUTO_TEST_CASE(a_candidate_longer_than_a_key_is_refused) {
  BOOST_TEST(extract("/verify?token=" + key_a + "0").problem == key_problem::too_long);
  BOOST_TEST(extract("/verify", {{"Authorization", "Bearer " + key_a + key_a}}).problem ==
             key_problem::too_long);
  BOOST_TEST(extract("/verify", {{"X-Original-URI", "/?token=" + std::string(5000, 'a')}}).problem ==
             key_problem::too_long);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(combinations)

// Every pair (and all five) of sources: the same key agrees, a different one conflicts.
BOOST_AUTO_TEST_CASE(every_pair_of_sources) {
  struct source {
    std::string target_query;  // appended to /verify
    headers h;
  };
  const auto sources = [](const std::string& key) {
    return std::vector<source>{{"?token=" + key, {}},
                               {"", {{"Authorization", "Bearer " + key}}},
                               {"", {{"X-Original-URI", "/a?token=" + key}}},
                               {"", {{"X-Original-URL", "https://h/a?token=" + key}}},
                               {"", {{"X-Forwarded-Uri", "/a?b=c&token=" + key}}}};
  };
  const auto a = sources(key_a);
  const auto b = sources(key_b);
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = 0; j < a.size(); ++j) {
      if (i == j) continue;
      headers same = a[i].h;
      same.insert(same.end(), a[j].h.begin(), a[j].h.end());
      BOOST_TEST(found(extract("/verify" + a[i].target_query + a[j].target_query, same)) == key_a,
                 "sources " << i << "," << j);
      headers differ = a[i].h;
      differ.insert(differ.end(), b[j].h.begin(), b[j].h.end());
      BOOST_TEST(extract("/verify" + a[i].target_query + b[j].target_query, differ).problem ==
                     key_problem::conflicting,
                 "sources " << i << "," << j);
    }
  }
  headers all;
  for (const auto& s : a) all.insert(all.end(), s.h.begin(), s.h.end());
  BOOST_TEST(found(extract("/verify?token=" + key_a, all)) == key_a);
  all.back().second = "/a?token=" + key_b;  // the last one differs
  BOOST_TEST(extract("/verify?token=" + key_a, all).problem == key_problem::conflicting);
}

BOOST_AUTO_TEST_CASE(same_key_in_two_encodings_agrees) {
  BOOST_TEST(found(extract("/verify?token=" + pct(key_a), {{"X-Original-URI", "/?token=" + key_a}})) ==
             key_a);
}

BOOST_AUTO_TEST_CASE(two_token_parameters_in_one_uri) {
  BOOST_TEST(found(extract("/verify?token=" + key_a + "&token=" + key_a)) == key_a);
  BOOST_TEST(extract("/verify?token=" + key_a + "&token=" + key_b).problem == key_problem::conflicting);
  BOOST_TEST(extract("/verify", {{"X-Forwarded-Uri", "/?token=" + key_a + "&token=" + key_b}}).problem ==
             key_problem::conflicting);
  BOOST_TEST(
      extract("/verify", {{"X-Original-URL", "http://h/?token=" + key_a + "&%74oken=" + key_b}}).problem ==
      key_problem::conflicting);
}

BOOST_AUTO_TEST_CASE(a_non_bearer_authorization_does_not_conflict) {
  BOOST_TEST(found(extract("/verify?token=" + key_a, {{"Authorization", "Basic dXNlcjpwYXNz"}})) == key_a);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ambiguity)

BOOST_AUTO_TEST_CASE(repeated_headers_are_refused) {
  BOOST_TEST(extract("/verify", {{"Authorization", "Bearer " + key_a}, {"Authorization", "Bearer " + key_a}})
                 .problem == key_problem::repeated_header);
  BOOST_TEST(
      extract("/verify", {{"Authorization", "Basic x"}, {"Authorization", "Bearer " + key_a}}).problem ==
      key_problem::repeated_header);
  for (const char* name : {"X-Original-URI", "X-Original-URL", "X-Forwarded-Uri"}) {
    const std::string uri = std::string(name) == "X-Original-URL" ? "http://h/a" : "/a";
    BOOST_TEST(
        extract("/verify", {{name, uri + "?token=" + key_a}, {name, uri + "?token=" + key_a}}).problem ==
            key_problem::repeated_header,
        name);
    // even a repeated copy without any key: which one the service behind reads is unknown
    BOOST_TEST(extract("/verify?token=" + key_a, {{name, uri}, {name, uri + "?token=" + key_b}}).problem ==
                   key_problem::repeated_header,
               name);
  }
}

BOOST_AUTO_TEST_CASE(malformed_forwarded_uris_are_refused) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"X-Original-URI", "/a?token=%zz"},
      {"X-Original-URI", "/a?token=%4"},
      {"X-Original-URI", "/a?x=%"},             // a broken escape in another parameter
      {"X-Original-URI", "/a?%7x=1"},           // ... or in a name
      {"X-Original-URI", "api/items?token=k"},  // neither origin-form nor absolute
      {"X-Original-URI", "*"},
      {"X-Original-URI", "/a b?token=k"},    // whitespace
      {"X-Original-URI", "/a?token=k\x01"},  // control character
      {"X-Original-URI", "/a#?token=k"},     // fragments: never in a request target
      {"X-Original-URI", "/a?x=1#token=k"},
      {"X-Original-URL", "/a?token=k"},  // not absolute
      {"X-Original-URL", "://h/a?token=k"},
      {"X-Original-URL", "1http://h/a"},
      {"X-Original-URL", "http://h/a#frag"},
      {"X-Forwarded-Uri", "a?token=k"},
      {"X-Forwarded-Uri", "/a?token=%G0"},
      {"X-Forwarded-Uri", "/a#token=k"},
  };
  for (const auto& [name, value] : bad) {
    // refused even next to a good key: the malformed URI might carry another one
    BOOST_TEST(extract("/verify", {{name, value}, {"Authorization", "Bearer " + key_a}}).problem ==
                   key_problem::malformed_uri,
               name << ": " << value);
  }
}

BOOST_AUTO_TEST_CASE(malformed_own_query_is_refused) {
  BOOST_TEST(extract("/verify?token=%zz").problem == key_problem::malformed_uri);
  BOOST_TEST(extract("/verify?a=%", bearer_a).problem == key_problem::malformed_uri);
  BOOST_TEST(extract("/verify#x", bearer_a).problem == key_problem::malformed_uri);
}

BOOST_AUTO_TEST_CASE(harmless_oddities_are_accepted) {
  // empty parameters, '=' in values, non-ASCII bytes, encoded separators in other parameters
  BOOST_TEST(found(extract("/verify", {{"X-Original-URI", "/a?&&token=" + key_a + "&"}})) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Original-URI", "/a?q=x=y&token=" + key_a}})) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Original-URI", "/caf\xc3\xa9?token=" + key_a}})) == key_a);
  BOOST_TEST(found(extract("/verify",
                           {{"X-Original-URI", "/a?q=%26token%3D" + key_b + "&token=" + key_a}})) == key_a);
  BOOST_TEST(found(extract("/verify", {{"X-Forwarded-Uri", "/a?"}, {"Authorization", "Bearer " + key_a}})) ==
             key_a);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(response_headers)

BOOST_AUTO_TEST_CASE(allowed_and_refused_headers) {
  server::api_reply ok;
  ok.verified = server::caller{42, false, std::nullopt};
  server::http_response res;
  server::add_verify_headers(ok, res);
  BOOST_TEST(res["X-Tokend-User-Id"] == "42");
  BOOST_TEST(res["X-Tokend-Token-Type"] == "admin");
  BOOST_TEST(res.count(http::field::www_authenticate) == 0u);

  server::api_reply no;
  no.status = 401;
  no.bearer_challenge = true;
  server::http_response refused;
  server::add_verify_headers(no, refused);
  BOOST_TEST(refused[http::field::www_authenticate] == "Bearer realm=\"tokend\"");
  BOOST_TEST(refused.count("X-Tokend-User-Id") == 0u);

  server::http_response other;
  server::add_verify_headers(server::api_reply{}, other);
  BOOST_TEST(other.fields().empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
namespace {

// A service over the memory store holding one key of user 7, limited by default to one request
// per hour, on a monotonic clock that never moves.
struct limited_world {
  boost::asio::io_context io;  // before the store: its callbacks post to it until it closes
  std::unique_ptr<tokend::storage::token_store> store = tokend::storage::make_memory_store();
  server::token_service service{*store, 64};
  std::string key = core::generate_key();

  explicit limited_world(core::rate_limit default_limit) {
    service.set_rate_limits({default_limit, [] { return std::int64_t{1'000'000'000}; }});
    std::promise<bool> done;
    store->async_create(core::make_token_record(key, 7, "limited", "admin", 1'700'000'000),
                        [&done](boost::system::result<std::uint64_t> id) { done.set_value(id.has_value()); });
    BOOST_REQUIRE(done.get_future().get());
  }

  server::api_reply verify(unsigned rate_limited_status) {
    server::http_request req{http::verb::get, "/verify", 11};
    req.set(http::field::authorization, "Bearer " + key);
    std::optional<server::api_reply> reply;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, server::handle_verify(req, service, rate_limited_status),
                          [&reply, &failure](std::exception_ptr e, server::api_reply r) {
                            failure = e;
                            reply = std::move(r);
                          });
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!reply && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(50));
    BOOST_REQUIRE_MESSAGE(reply.has_value(), "/verify never answered");
    BOOST_REQUIRE(!failure);
    return std::move(*reply);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(rate_limited)

BOOST_AUTO_TEST_CASE(refused_with_the_configured_status_and_no_challenge) {
  for (const unsigned status : {429U, 403U, 401U}) {
    BOOST_TEST_CONTEXT("status " << status) {
      limited_world w(core::rate_limit{1, 3600, 0});
      const auto first = w.verify(status);
      BOOST_TEST(first.status == 200u);
      BOOST_REQUIRE(first.rate.has_value());
      BOOST_TEST(first.rate->limit.limit == 1u);
      BOOST_TEST(first.rate->decision.allowed);
      BOOST_TEST(first.rate->decision.remaining == 0u);
      BOOST_TEST(!first.rate_limited);
      BOOST_TEST(first.verified.has_value());

      const auto refused = w.verify(status);
      BOOST_TEST(refused.status == status);
      BOOST_TEST(refused.body == R"({"success":false,"message":"Rate limit exceeded"})");
      BOOST_TEST(refused.rate_limited);
      BOOST_REQUIRE(refused.rate.has_value());
      BOOST_TEST(!refused.rate->decision.allowed);
      BOOST_TEST(refused.retry_after_seconds >= 1u);
      BOOST_TEST(refused.retry_after_seconds <= 3600u);
      BOOST_TEST((refused.route_label == server::route::verify));
      BOOST_TEST(!refused.verified.has_value());
      // Even as a 401 there is no challenge: the key is good, it must wait.
      BOOST_TEST(!refused.bearer_challenge);
      server::http_response res;
      server::add_verify_headers(refused, res);
      BOOST_TEST(res.count(http::field::www_authenticate) == 0u);
      BOOST_TEST(res.count(server::user_id_header) == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(unlimited_keys_carry_no_rate_state) {
  limited_world w(core::rate_limit{});
  for (int i = 0; i < 5; ++i) {
    const auto r = w.verify(429);
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(!r.rate.has_value());
    BOOST_TEST(!r.rate_limited);
  }
  BOOST_TEST(w.service.limiter().size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
