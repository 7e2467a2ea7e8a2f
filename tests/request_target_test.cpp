// parse_request_target: the router's own check of origin-form, held to Boost.URL's parser, which it
// replaces on the request path.
#define BOOST_TEST_MODULE request_target
#include <boost/test/unit_test.hpp>

#include "server/request_target.hpp"

#include <boost/url/parse.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace server = tokend::server;

namespace {

// Both parsers on `target`: the same verdict, and for an accepted target the same path and query.
void agree(const std::string& target) {
  const auto ours = server::parse_request_target(target);
  const auto theirs = boost::urls::parse_origin_form(target);
  BOOST_TEST_REQUIRE(ours.has_value() == theirs.has_value(), "verdicts differ on '" << target << "'");
  if (!ours) return;
  BOOST_TEST(ours->path == std::string_view(theirs->encoded_path()), target);
  BOOST_TEST(ours->query.has_value() == theirs->has_query(), target);
  if (ours->query) BOOST_TEST(*ours->query == std::string_view(theirs->encoded_query()), target);
}

}  // namespace

BOOST_AUTO_TEST_CASE(splits_path_and_query) {
  const auto t = server::parse_request_target("/api/v2/tokens?token=abc&userId=3");
  BOOST_TEST_REQUIRE(t.has_value());
  BOOST_TEST(t->path == "/api/v2/tokens");
  BOOST_TEST_REQUIRE(t->query.has_value());
  BOOST_TEST(*t->query == "token=abc&userId=3");

  const auto bare = server::parse_request_target("/api/v2/tokens?");
  BOOST_TEST_REQUIRE(bare.has_value());
  BOOST_TEST_REQUIRE(bare->query.has_value());
  BOOST_TEST(bare->query->empty());

  const auto none = server::parse_request_target("/api/v2/tokens");
  BOOST_TEST_REQUIRE(none.has_value());
  BOOST_TEST(!none->query.has_value());

  // The second '?' belongs to the query; escapes stay as sent.
  const auto second = server::parse_request_target("/a%2Fb?x=1?y=%20");
  BOOST_TEST_REQUIRE(second.has_value());
  BOOST_TEST(second->path == "/a%2Fb");
  BOOST_TEST(*second->query == "x=1?y=%20");
}

BOOST_AUTO_TEST_CASE(refuses_what_is_not_origin_form) {
  for (const std::string& target :
       std::vector<std::string>{"",          "api/v2/tokens", "*",       "http://example.com/api/v2/tokens",
                                "/a b",      "/a?b c",        "/a#frag", "/a?b#c",
                                "/%",        "/%4",           "/%zz",    "/a?%",
                                "/a?x=%4",   "/a?x=%g0",      "/a\"b",   "/a<b>",
                                "/a\\b",     "/a{b}",         "/a|b",    "/a^b",
                                "/a`b",      "/a[b]",         "/\x7f",   std::string("/a\0b", 4),
                                "/\xc3\xa9", "/a\r\nb",       "/a\tb"}) {
    BOOST_TEST(!server::parse_request_target(target).has_value(), "accepted '" << target << "'");
    agree(target);
  }
}

BOOST_AUTO_TEST_CASE(accepts_every_character_origin_form_allows) {
  for (const std::string& target : std::vector<std::string>{
           "/", "//", "/a//b/", "/-._~!$&'()*+,;=:@", "/?-._~!$&'()*+,;=:@/?", "/%00%ff%FF%aB", "/a?%41=%42",
           "/api/v2/tokens?token=tk_" + std::string(68, 'a')}) {
    BOOST_TEST(server::parse_request_target(target).has_value(), "refused '" << target << "'");
    agree(target);
  }
}

// Every byte in every position of a short target, and then random targets over the characters that
// matter to the grammar: the two parsers never differ.
BOOST_AUTO_TEST_CASE(agrees_with_boost_url) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    for (const std::string shape : {"/x", "/a?x", "x", "/%x0", "/%0x", "/a?%x0"}) {
      std::string target = shape;
      target[target.find('x')] = ch;
      agree(target);
    }
  }
  const std::string alphabet = "/?#%&=+ aZ09-._~!$'()*,;:@\"<>\\^`{|}[]\x7f\x80\t\r\n";
  const std::string hex = "0aF";
  std::mt19937 random(20261202);  // fixed: a failure repeats
  for (int i = 0; i < 200000; ++i) {
    std::string target = random() % 8 == 0 ? "" : "/";
    const std::size_t length = random() % 12;
    for (std::size_t j = 0; j < length; ++j) {
      // Escapes are drawn often enough that well-formed ones are common.
      if (random() % 5 == 0) {
        target += '%';
        for (int k = 0; k < 2; ++k)
          target += random() % 4 ? hex[random() % hex.size()] : alphabet[random() % 10];
      } else {
        target += alphabet[random() % alphabet.size()];
      }
    }
    agree(target);
  }
}
