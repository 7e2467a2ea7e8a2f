// Integration tests of the HTTP API over real sockets: a tokend::server::app on 127.0.0.1:0 over
// a store chosen by TOKEND_TEST_STORE (memory, the default; rocksdb; postgres, on the server of
// TOKEND_TEST_POSTGRES_URL with a schema per test), optionally wrapped in the fault-injecting
// decorator, driven by a deadline-bound client. CTest runs the whole suite once per store.
// Every row of docs/API.md has a test here: create/list/delete, authentication, error
// statuses and bodies, HTTP/1.x protocol behaviour, the admin listener, concurrency and store faults.
#define BOOST_TEST_MODULE api_integration_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "core/token.hpp"
#include "server/app.hpp"
#include "server/config.hpp"
#include "storage/faulty_store.hpp"
#include "storage/memory_store.hpp"
#include "storage/postgres_store.hpp"
#include "storage/rocksdb_store.hpp"
#include "support/http_client.hpp"
#include "support/in_process_app.hpp"
#include "support/key_shapes.hpp"
#include "support/keys.hpp"
#include "support/metrics_text.hpp"
#include "support/postgres.hpp"
#include "support/temp_dir.hpp"
#include "support/timing.hpp"

#include <boost/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace server = tokend::server;
namespace storage = tokend::storage;
namespace core = tokend::core;
namespace test = tokend::test;
namespace json = boost::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using headers = std::vector<std::pair<std::string, std::string>>;

namespace {

constexpr std::string_view unauthorized_body = R"({"success":false,"message":"Unauthorized Request"})";
constexpr std::string_view not_found_body = R"({"success":false,"message":"Token not found"})";
constexpr std::string_view deleted_body = R"({"success":true,"message":"Token deleted successfully"})";

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Stores a record directly through the store, waiting for its handler with a deadline.
void store_key(storage::token_store& store, const std::string& key, core::user_id owner,
               const std::string& description) {
  test::store_record(store, core::make_token_record(key, owner, description, "admin", unix_now()));
}

using tokend::test::temp_dir;

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  BOOST_REQUIRE_MESSAGE(out.good(), "cannot write " << p);
}

// The store under test, fresh for each test.
std::unique_ptr<storage::token_store> open_store_of_kind(const fs::path& dir) {
  const char* kind = std::getenv("TOKEND_TEST_STORE");
  const std::string k = kind != nullptr ? kind : "memory";
  if (k == "memory") return storage::make_memory_store();
  if (k == "rocksdb") {
    storage::rocksdb_options o;
    o.data_dir = (dir / "db").string();
    return storage::open_rocksdb_store(o);
  }
  if (k == "postgres") {
    storage::postgres_options o;
    o.conninfo = tokend::test::postgres_url();
    o.schema = tokend::test::fresh_postgres_schema();
    o.connections = 2;
    return storage::open_postgres_store(o);
  }
  throw std::runtime_error("TOKEND_TEST_STORE must be memory, rocksdb or postgres, not '" + k + "'");
}

struct server_options {
  std::size_t max_body_bytes = 2048;
  std::size_t max_header_bytes = 2048;
  std::chrono::milliseconds idle_timeout{10'000};
  std::chrono::milliseconds request_timeout{5'000};
  std::chrono::milliseconds drain_timeout{2'000};
  std::optional<std::chrono::milliseconds> drain_idle_grace;  // unset: the app's default
  server::app_test_hooks hooks;                               // faults injected into the app
  bool faulty = false;  // wrap the memory store in the fault injector, controlled by fault_file()
  std::chrono::seconds token_ttl{};      // --token-ttl
  std::chrono::seconds token_max_ttl{};  // --token-max-ttl
  core::rate_limit rate_limit{};         // --rate-limit, --rate-limit-burst
  unsigned verify_rate_limited_status = 429;
  std::size_t max_tokens_per_user = 10'000;  // --max-tokens-per-user
};

// A running app on ephemeral ports with one bootstrap key (user 1) stored through the store.
class test_server {
 public:
  explicit test_server(server_options options = {}) : fault_file_(dir_.path() / "fault") {
    server::config cfg;
    cfg.cache_capacity = 10'000;
    cfg.max_body_bytes = options.max_body_bytes;
    cfg.max_header_bytes = options.max_header_bytes;
    cfg.idle_timeout = options.idle_timeout;
    cfg.request_timeout = options.request_timeout;
    cfg.drain_timeout = options.drain_timeout;
    cfg.drain_idle_grace = options.drain_idle_grace;
    cfg.token_ttl = options.token_ttl;
    cfg.token_max_ttl = options.token_max_ttl;
    cfg.rate_limit = options.rate_limit;
    cfg.verify_rate_limited_status = options.verify_rate_limited_status;
    cfg.max_tokens_per_user = options.max_tokens_per_user;
    std::unique_ptr<storage::token_store> store = open_store();
    if (options.faulty) {
      cfg.test_fault_file = fault_file_.string();
      store = storage::make_faulty_store(std::move(store), fault_file_.string());
    }
    admin_key = core::generate_key();
    store_key(*store, admin_key, 1, "bootstrap");
    app_.emplace(cfg, dir_.path(), std::move(store), std::move(options.hooks));
    port = app_->api_port();
    admin_port = app_->admin_port();
  }

  [[nodiscard]] std::unique_ptr<storage::token_store> open_store() const {
    return open_store_of_kind(dir_.path());
  }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  void stop() { app_->stop(); }

  [[nodiscard]] server::app& app() { return app_->app(); }
  [[nodiscard]] storage::token_store& store() { return app().service().store(); }
  [[nodiscard]] const fs::path& fault_file() const { return fault_file_; }

  // A key for another user, stored directly (the API creates keys only for the caller's user).
  std::string add_user_key(core::user_id owner, const std::string& description = "other user") {
    std::string key = core::generate_key();
    store_key(store(), key, owner, description);
    return key;
  }

  // An operator key, stored directly as bootstrap would store it.
  std::string add_operator_key(core::user_id owner) {
    std::string key = core::generate_key();
    test::store_record(store(), core::make_token_record(key, owner, "operator", "operator", unix_now()));
    return key;
  }

  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;
  std::string admin_key;  // user 1

 private:
  temp_dir dir_;
  fs::path fault_file_;
  std::optional<test::in_process_app> app_;
};

struct api_fixture : test_server {
  api_fixture() : test_server(server_options{}) {}
};

std::string tokens_target(const std::string& key) { return "/api/v2/tokens?token=" + key; }

std::string create_json(const std::string& description) {
  return json::serialize(json::object{{"type", "admin"}, {"description", description}});
}

std::string delete_json(const std::string& key) { return json::serialize(json::object{{"token", key}}); }

test::reply api(std::uint16_t port, http::verb method, const std::string& target,
                const std::string& body = {}, const headers& extra = {}) {
  return test::request(port, method, target, body, extra);
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string str(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : "<not a string>";
}

// Every error of the API: the status, Content-Type application/json, and exactly
// {"success":false,"message":"<non-empty text>"}; `message` is checked too when given.
void check_error(const test::reply& r, unsigned status, std::string_view message = {}) {
  BOOST_TEST(r.status == status, "status " << r.status << " body " << r.body << " error " << r.error);
  BOOST_TEST(r.header("content-type") == "application/json");
  json::value v;
  try {
    v = json::parse(r.body);
  } catch (const std::exception&) {
    BOOST_ERROR("error body is not JSON: " << r.body);
    return;
  }
  BOOST_REQUIRE(v.is_object());
  const auto& o = v.as_object();
  BOOST_TEST(o.size() == 2u, r.body);
  BOOST_TEST((o.contains("success") && o.at("success").is_bool() && !o.at("success").as_bool()), r.body);
  BOOST_TEST((o.contains("message") && o.at("message").is_string() && !o.at("message").as_string().empty()),
             r.body);
  if (!message.empty())
    BOOST_TEST(r.body == "{\"success\":false,\"message\":\"" + std::string(message) + "\"}");
}

// A create framed by `framing` (header lines, without the blank line) and then `content`, which no
// server may process: answered 400 or closed unanswered, and the connection closed either way.
void check_framing_refused(std::uint16_t port, const std::string& key, const std::string& framing,
                           const std::string& content) {
  BOOST_TEST_CONTEXT(framing) {
    test::connection c(port);
    const std::string bytes =
        "POST " + tokens_target(key) +
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n" + framing +
        "\r\n\r\n" + content;
    BOOST_REQUIRE(c.write_raw(bytes));
    const auto r = c.read_response();
    if (r.status != 0) check_error(r, 400);  // or closed without an answer
    BOOST_TEST(c.closed_by_peer(3s));
  }
}

// Creates a token through the API as `key`'s user; returns the new key.
std::string create_via_api(std::uint16_t port, const std::string& key, const std::string& description) {
  const auto r = api(port, http::verb::post, tokens_target(key), create_json(description));
  BOOST_REQUIRE_MESSAGE(r.status == 200, "create: " << r.status << " " << r.body << " " << r.error);
  return str(r.json().at("token").at("token"));
}

// The tokens array of a 200 list.
json::array list_tokens(std::uint16_t port, const std::string& key, const std::string& query = {}) {
  const auto r = api(port, http::verb::get, tokens_target(key) + query);
  BOOST_REQUIRE_MESSAGE(r.status == 200, "list: " << r.status << " " << r.body << " " << r.error);
  return r.json().at("tokens").as_array();
}

std::vector<std::string> descriptions_of(const json::array& tokens) {
  std::vector<std::string> out;
  for (const auto& t : tokens) out.push_back(str(t.at("description")));
  return out;
}

using tokend::test::percent_encode_all;

// A complete HTTP/1.1 request as raw bytes, with Content-Length when there is a body.
std::string raw_request(const std::string& method, const std::string& target, const std::string& body = {},
                        const std::string& extra_headers = {}) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (!body.empty()) {
    out += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return out + "\r\n" + body;
}

// The status of the first response in raw bytes, 0 when there is none.
unsigned raw_status(const std::string& received) {
  if (received.size() < 12 || !received.starts_with("HTTP/1.")) return 0;
  return static_cast<unsigned>(std::stoi(received.substr(9, 3)));
}

long long elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since)
      .count();
}

}  // namespace

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_create, api_fixture)

BOOST_AUTO_TEST_CASE(returns_the_documented_shape) {
  const auto before = unix_now();
  const auto r = api(port, http::verb::post, tokens_target(admin_key), create_json("Main app"));
  const auto after = unix_now();
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body << " " << r.error);
  BOOST_TEST(r.header("content-type") == "application/json");
  const auto v = r.json();
  BOOST_REQUIRE(v.is_object());
  const auto& o = v.as_object();
  BOOST_TEST(o.size() == 3u, r.body);
  BOOST_TEST(o.at("success").is_bool());
  BOOST_TEST(o.at("success").as_bool() == true);
  BOOST_TEST(str(o.at("message")) == "Token created successfully");
  BOOST_REQUIRE(o.at("token").is_object());
  const auto& t = o.at("token").as_object();
  // Vida's five fields, then id, expiresAt, lastUsedAt and rateLimit.
  BOOST_TEST(t.size() == 9u, r.body);
  BOOST_TEST(t.at("id").is_int64());
  BOOST_TEST(t.at("expiresAt").is_null());
  BOOST_TEST(t.at("lastUsedAt").is_null());
  BOOST_TEST(t.at("rateLimit").is_null());  // the server's default applies
  const std::string key = str(t.at("token"));
  BOOST_TEST(key.size() == 64u);
  BOOST_TEST(is_lower_hex(key));
  BOOST_TEST(core::is_well_formed_key(key));
  BOOST_TEST(key != admin_key);
  BOOST_TEST(str(t.at("description")) == "Main app");
  BOOST_TEST(str(t.at("type")) == "admin");
  BOOST_REQUIRE(t.at("timestamp").is_string());
  const std::string ts = str(t.at("timestamp"));
  BOOST_REQUIRE_MESSAGE(is_digits(ts), ts);
  const auto stamp = std::stoll(ts);
  BOOST_TEST(stamp >= before - 1);
  BOOST_TEST(stamp <= after + 1);
  BOOST_TEST((t.at("userId").is_int64() || t.at("userId").is_uint64()), "userId must be a JSON number");
  BOOST_TEST(t.at("userId").to_number<std::uint64_t>() == 1u);

  // usable at once, and it belongs to the caller's user
  const auto listed = api(port, http::verb::get, tokens_target(key));
  BOOST_TEST(listed.status == 200u);
  const auto tokens = listed.json().at("tokens").as_array();
  BOOST_TEST(tokens.size() == 2u);
  const auto bearer = api(port, http::verb::get, "/api/v2/tokens", {}, {{"Authorization", "Bearer " + key}});
  BOOST_TEST(bearer.status == 200u);
}

BOOST_AUTO_TEST_CASE(user_id_is_the_callers) {
  const auto user7 = add_user_key(7);
  const auto r = api(port, http::verb::post, tokens_target(user7), create_json("for seven"));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.json().at("token").at("userId").to_number<std::uint64_t>() == 7u);
  const auto mine = list_tokens(port, user7);
  BOOST_TEST(mine.size() == 2u);
  for (const auto& t : mine) BOOST_TEST(t.at("userId").to_number<std::uint64_t>() == 7u);
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);  // user 1 sees none of them
}

BOOST_AUTO_TEST_CASE(invalid_bodies_are_400_and_store_nothing) {
  const std::vector<std::string> bad = {
      "not json",
      "{",
      "[]",
      R"(["admin"])",
      "42",
      R"({"description":"x"})",
      R"({"type":1,"description":"x"})",
      R"({"type":"user","description":"x"})",
      R"({"type":"admin"})",
      R"({"type":"admin","description":12})",
      R"({"type":"admin","description":""})",
      create_json(std::string(257, 'a')),
      R"({"type":"admin","description":"bad )" + std::string("\xFF\xFE") + R"("})",
  };
  for (const auto& body : bad) {
    BOOST_TEST_CONTEXT("body " << body) {
      check_error(api(port, http::verb::post, tokens_target(admin_key), body), 400);
    }
  }
  // no body at all
  check_error(api(port, http::verb::post, tokens_target(admin_key)), 400);
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

BOOST_AUTO_TEST_CASE(description_limits_count_characters) {
  const auto r256 = api(port, http::verb::post, tokens_target(admin_key), create_json(std::string(256, 'a')));
  BOOST_TEST(r256.status == 200u);
  std::string accented;
  for (int i = 0; i < 256; ++i) accented += "\xC3\xA9";
  const auto multi = api(port, http::verb::post, tokens_target(admin_key), create_json(accented));
  BOOST_REQUIRE_EQUAL(multi.status, 200u);
  BOOST_TEST(str(multi.json().at("token").at("description")) == accented);
  check_error(api(port, http::verb::post, tokens_target(admin_key), create_json(accented + "\xC3\xA9")), 400);
}

// A member named twice means what the last one says to Boost.JSON and what the first says to many
// proxies: refused, at any depth and under any spelling, and nothing is stored.
BOOST_AUTO_TEST_CASE(duplicate_members_are_400) {
  const std::vector<std::string> bad = {
      R"({"type":"x","type":"admin","description":"d"})",
      R"({"type":"admin","type":"x","description":"d"})",
      R"({"type":"admin","description":"a","description":"b"})",
      R"({"type":"admin","description":"d","\u0074ype":"admin"})",
      R"({"type":"admin","description":"d","extra":{"k":1,"k":1}})",
      R"({"type":"admin","description":"d","extra":[{"k":1,"k":2}]})",
  };
  for (const auto& body : bad) {
    BOOST_TEST_CONTEXT("body " << body) {
      check_error(api(port, http::verb::post, tokens_target(admin_key), body), 400,
                  "Request body must not name a member twice in one object");
    }
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

// Control characters, bidirectional formatting and blank descriptions, raw or JSON-escaped, are
// refused; nothing is stored.
BOOST_AUTO_TEST_CASE(unprintable_descriptions_are_400) {
  const std::vector<std::string> escaped = {
      R"(\u0000)", R"(nul\u0000x)", R"(a\nb)",          R"(tab\t)",
      R"(\r)",     R"(\u001b[2J)",  R"(\u007f)",        R"(\u0080)",
      R"(\u009b)", R"(\u2028)",     R"(\u2029)",        R"(x\u202ey)",
      R"(\u202a)", R"(\u202d)",     R"(\u2066x\u2069)", R"(\u2067)",
      R"(\u2068)", R"(\u200e)",     R"(\u200f)",        R"(\u061c)",
      " ",         "    ",          R"(\u00a0)",        R"(\u2003 \u3000)",
      R"(\u200b)", R"(\ufeff)",     R"(\u2060)",
  };
  for (const auto& d : escaped) {
    BOOST_TEST_CONTEXT("description " << d) {
      const std::string body = R"({"type":"admin","description":")" + d + R"("})";
      check_error(api(port, http::verb::post, tokens_target(admin_key), body), 400);
    }
  }
  // The same characters sent raw (the JSON serializer escapes the controls itself).
  for (const std::string& d : {std::string("a\x7f"), std::string("c1\xc2\x85"), std::string("\xe2\x80\xae"),
                               std::string("\xe2\x81\xa6x"), std::string("\xe3\x80\x80"),
                               std::string("a\0b", 3), std::string("\x1b[31m")}) {
    check_error(api(port, http::verb::post, tokens_target(admin_key), create_json(d)), 400);
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
  // Ordinary text of any script still goes through unchanged.
  for (const std::string& d : {std::string(" spaced "), std::string("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"),
                               std::string("a\xc2\xa0"
                                           "b"),
                               std::string("\xf0\x9f\x98\x80")}) {
    const auto r = api(port, http::verb::post, tokens_target(admin_key), create_json(d));
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    BOOST_TEST(str(r.json().at("token").at("description")) == d);
  }
}

BOOST_AUTO_TEST_CASE(unknown_fields_are_ignored) {
  const auto r = api(port, http::verb::post, tokens_target(admin_key),
                     R"({"type":"admin","description":"x","userId":99,"token":"mine","extra":{"a":[1]}})");
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.json().at("token").at("userId").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(str(r.json().at("token").at("token")) != "mine");
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_list, api_fixture)

BOOST_AUTO_TEST_CASE(creation_order_and_masked_keys) {
  std::vector<std::string> keys{admin_key};
  for (const char* d : {"one", "two", "three"}) keys.push_back(create_via_api(port, admin_key, d));
  const auto before = unix_now();
  const auto r = api(port, http::verb::get, tokens_target(admin_key));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.header("content-type") == "application/json");
  const auto v = r.json();
  const auto& o = v.as_object();
  BOOST_TEST(o.size() == 3u, r.body);  // no paging fields unless asked for
  BOOST_TEST(o.at("success").as_bool() == true);
  BOOST_TEST(str(o.at("message")) == "Success");
  const auto& tokens = o.at("tokens").as_array();
  BOOST_REQUIRE_EQUAL(tokens.size(), 4u);
  const std::vector<std::string> expected{"bootstrap", "one", "two", "three"};
  BOOST_TEST(descriptions_of(tokens) == expected, boost::test_tools::per_element());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    BOOST_TEST_CONTEXT("token " << i) {
      const auto& t = tokens[i].as_object();
      // Vida's five fields, then (in this order) the four beyond it.
      BOOST_TEST(t.size() == 9u);
      const std::vector<std::string> fields{"token", "description", "type",       "timestamp", "userId",
                                            "id",    "expiresAt",   "lastUsedAt", "rateLimit"};
      std::vector<std::string> names;
      for (const auto& kv : t) names.emplace_back(kv.key());
      BOOST_TEST(names == fields, boost::test_tools::per_element());
      if (i > 0)
        BOOST_TEST(t.at("id").to_number<std::uint64_t>() > tokens[i - 1].at("id").to_number<std::uint64_t>());
      BOOST_TEST(str(t.at("token")) == test::masked(keys[i]));
      BOOST_TEST(str(t.at("token")).size() == 10u);
      BOOST_TEST(str(t.at("token")).find(keys[i].substr(6)) == std::string::npos);
      BOOST_TEST(str(t.at("type")) == "admin");
      BOOST_REQUIRE(t.at("timestamp").is_string());
      BOOST_TEST(is_digits(str(t.at("timestamp"))));
      BOOST_TEST(std::stoll(str(t.at("timestamp"))) <= before + 1);
      BOOST_TEST(std::stoll(str(t.at("timestamp"))) >= before - 60);
      BOOST_TEST((t.at("userId").is_int64() || t.at("userId").is_uint64()));
      BOOST_TEST(t.at("userId").to_number<std::uint64_t>() == 1u);
    }
  }
  // the full keys never appear in a list
  for (const auto& k : keys) BOOST_TEST(r.body.find(k) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(only_the_callers_tokens) {
  const auto user2 = add_user_key(2, "two's key");
  create_via_api(port, user2, "two's second");
  create_via_api(port, admin_key, "one's second");
  BOOST_TEST(
      descriptions_of(list_tokens(port, user2)) == (std::vector<std::string>{"two's key", "two's second"}),
      boost::test_tools::per_element());
  BOOST_TEST(descriptions_of(list_tokens(port, admin_key)) ==
                 (std::vector<std::string>{"bootstrap", "one's second"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(paging) {
  for (const char* d : {"a", "b", "c", "d"}) create_via_api(port, admin_key, d);  // 5 tokens with bootstrap
  const std::vector<std::string> all{"bootstrap", "a", "b", "c", "d"};
  BOOST_TEST(descriptions_of(list_tokens(port, admin_key)) == all, boost::test_tools::per_element());

  std::vector<std::string> seen;
  for (std::size_t page = 0; page < 3; ++page) {
    const auto r = api(port, http::verb::get,
                       tokens_target(admin_key) + "&page=" + std::to_string(page) + "&pageSize=2");
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    const auto o = r.json().as_object();
    BOOST_TEST(o.size() == (page < 2 ? 7u : 6u), r.body);  // nextCursor while more follow
    BOOST_TEST(o.contains("nextCursor") == (page < 2), r.body);
    BOOST_TEST(o.at("page").to_number<std::uint64_t>() == page);
    BOOST_TEST(o.at("pageSize").to_number<std::uint64_t>() == 2u);
    BOOST_REQUIRE(o.at("hasMore").is_bool());
    BOOST_TEST(o.at("hasMore").as_bool() == (page < 2), "page " << page);
    const auto d = descriptions_of(o.at("tokens").as_array());
    BOOST_TEST(d.size() == (page < 2 ? 2u : 1u));
    seen.insert(seen.end(), d.begin(), d.end());
  }
  BOOST_TEST(seen == all, boost::test_tools::per_element());

  // past the end: empty, no more
  const auto past = api(port, http::verb::get, tokens_target(admin_key) + "&page=3&pageSize=2");
  BOOST_REQUIRE_EQUAL(past.status, 200u);
  BOOST_TEST(past.json().at("tokens").as_array().empty());
  BOOST_TEST(past.json().at("hasMore").as_bool() == false);

  // page alone: pageSize defaults to 1000, and the paging fields are present
  const auto only_page = api(port, http::verb::get, "/api/v2/tokens?page=0&token=" + admin_key);
  BOOST_REQUIRE_EQUAL(only_page.status, 200u);
  BOOST_TEST(only_page.json().at("pageSize").to_number<std::uint64_t>() == 1000u);
  BOOST_TEST(only_page.json().at("page").to_number<std::uint64_t>() == 0u);
  BOOST_TEST(only_page.json().at("hasMore").as_bool() == false);
  BOOST_TEST(only_page.json().at("tokens").as_array().size() == 5u);

  // pageSize alone
  const auto only_size = api(port, http::verb::get, tokens_target(admin_key) + "&pageSize=4");
  BOOST_REQUIRE_EQUAL(only_size.status, 200u);
  BOOST_TEST(only_size.json().at("page").to_number<std::uint64_t>() == 0u);
  BOOST_TEST(only_size.json().at("hasMore").as_bool() == true);
  BOOST_TEST(only_size.json().at("tokens").as_array().size() == 4u);

  const auto max_size = api(port, http::verb::get, tokens_target(admin_key) + "&pageSize=1000");
  BOOST_TEST(max_size.status == 200u);
}

BOOST_AUTO_TEST_CASE(bad_paging_is_400) {
  for (const char* q : {"&pageSize=0", "&pageSize=1001", "&pageSize=abc", "&page=abc", "&page=-1",
                        "&pageSize=-1", "&page=1.5", "&pageSize="}) {
    BOOST_TEST_CONTEXT("query " << q) {
      check_error(api(port, http::verb::get, tokens_target(admin_key) + q), 400);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_delete, api_fixture)

BOOST_AUTO_TEST_CASE(deleted_key_is_refused_at_once) {
  const auto victim = create_via_api(port, admin_key, "victim");
  // used once, so it sits in the cache: the delete must evict it
  BOOST_REQUIRE_EQUAL(api(port, http::verb::get, tokens_target(victim)).status, 200u);
  BOOST_REQUIRE_EQUAL(
      api(port, http::verb::get, "/api/v2/tokens", {}, {{"Authorization", "Bearer " + victim}}).status, 200u);

  const auto r = api(port, http::verb::delete_, tokens_target(admin_key), delete_json(victim));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.body == deleted_body);
  BOOST_TEST(r.header("content-type") == "application/json");

  const auto by_query = api(port, http::verb::get, tokens_target(victim));
  check_error(by_query, 401);
  BOOST_TEST(by_query.body == unauthorized_body);
  const auto by_bearer =
      api(port, http::verb::get, "/api/v2/tokens", {}, {{"Authorization", "Bearer " + victim}});
  check_error(by_bearer, 401);
  BOOST_TEST(by_bearer.body == unauthorized_body);
  check_error(api(port, http::verb::post, tokens_target(victim), create_json("x")), 401);

  BOOST_TEST(descriptions_of(list_tokens(port, admin_key)) == std::vector<std::string>{"bootstrap"},
             boost::test_tools::per_element());
  // deleting it again: gone
  const auto again = api(port, http::verb::delete_, tokens_target(admin_key), delete_json(victim));
  check_error(again, 404);
  BOOST_TEST(again.body == not_found_body);
}

BOOST_AUTO_TEST_CASE(deleting_own_key) {
  const auto second = create_via_api(port, admin_key, "second");
  const auto r = api(port, http::verb::delete_, tokens_target(second), delete_json(second));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.body == deleted_body);
  check_error(api(port, http::verb::get, tokens_target(second)), 401, "Unauthorized Request");
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);  // the other key of the user still works
}

BOOST_AUTO_TEST_CASE(another_users_key_is_not_found) {
  const auto user2 = add_user_key(2);
  BOOST_REQUIRE_EQUAL(api(port, http::verb::get, tokens_target(user2)).status, 200u);
  const auto r = api(port, http::verb::delete_, tokens_target(admin_key), delete_json(user2));
  check_error(r, 404);
  BOOST_TEST(r.body == not_found_body);
  // still valid for its owner
  const auto owner = api(port, http::verb::get, tokens_target(user2));
  BOOST_REQUIRE_EQUAL(owner.status, 200u);
  BOOST_TEST(owner.json().at("tokens").as_array().size() == 1u);
  // and its owner may delete it
  const auto own = api(port, http::verb::delete_, tokens_target(user2), delete_json(user2));
  BOOST_TEST(own.status == 200u);
}

BOOST_AUTO_TEST_CASE(unknown_or_malformed_key_is_not_found) {
  std::string bad_checksum = core::generate_key();
  bad_checksum.back() = bad_checksum.back() == '0' ? '1' : '0';
  std::string upper = core::generate_key();
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& victim : {core::generate_key(), std::string("not-a-key"), std::string("abc"),
                                    bad_checksum, upper, admin_key + "0"}) {
    BOOST_TEST_CONTEXT("victim " << victim) {
      const auto r = api(port, http::verb::delete_, tokens_target(admin_key), delete_json(victim));
      check_error(r, 404);
      BOOST_TEST(r.body == not_found_body);
    }
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

BOOST_AUTO_TEST_CASE(bad_bodies_are_400) {
  for (const std::string body : {"", "not json", "{", "[]", R"(["x"])", "{}", R"({"key":"x"})",
                                 R"({"token":1})", R"({"token":null})", R"({"token":["x"]})"}) {
    BOOST_TEST_CONTEXT("body '" << body << "'") {
      check_error(api(port, http::verb::delete_, tokens_target(admin_key), body), 400);
    }
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

BOOST_AUTO_TEST_CASE(duplicate_members_are_400) {
  const std::string victim = create_via_api(port, admin_key, "victim");
  for (const std::string& body : {R"({"token":"x","token":")" + victim + R"("})",
                                  R"({"token":")" + victim + R"(","token":")" + victim + R"("})",
                                  R"({"token":")" + victim + R"(","\u0074oken":"x"})"}) {
    check_error(api(port, http::verb::delete_, tokens_target(admin_key), body), 400,
                "Request body must not name a member twice in one object");
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 2u);  // the victim is still there
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_auth, api_fixture)

BOOST_AUTO_TEST_CASE(missing_key_is_401_with_the_exact_body) {
  for (const auto method : {http::verb::get, http::verb::post, http::verb::delete_}) {
    const std::string body = method == http::verb::get ? std::string() : create_json("x");
    const auto r = api(port, method, "/api/v2/tokens", body);
    check_error(r, 401);
    BOOST_TEST(r.body == unauthorized_body);
    const auto other_params = api(port, method, "/api/v2/tokens?page=0&tok=" + admin_key, body);
    check_error(other_params, 401, "Unauthorized Request");
  }
}

BOOST_AUTO_TEST_CASE(malformed_bad_checksum_or_unknown_key_is_401) {
  std::string bad_checksum = admin_key;
  bad_checksum.back() = bad_checksum.back() == 'a' ? 'b' : 'a';
  std::string upper = admin_key;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::vector<std::string> keys = {
      "abc",        "",    std::string(64, 'g'), admin_key.substr(0, 63), admin_key + "a",
      bad_checksum, upper, core::generate_key()};
  for (const auto& key : keys) {
    BOOST_TEST_CONTEXT("key '" << key << "'") {
      const auto q = api(port, http::verb::get, tokens_target(key));
      check_error(q, 401);
      BOOST_TEST(q.body == unauthorized_body);
      if (!key.empty()) {
        const auto b = api(port, http::verb::get, "/api/v2/tokens", {}, {{"Authorization", "Bearer " + key}});
        check_error(b, 401);
        BOOST_TEST(b.body == unauthorized_body);
      }
    }
  }
  // the same unknown key twice (the second time possibly from a negative cache entry)
  const auto unknown = core::generate_key();
  check_error(api(port, http::verb::get, tokens_target(unknown)), 401, "Unauthorized Request");
  check_error(api(port, http::verb::get, tokens_target(unknown)), 401, "Unauthorized Request");
}

BOOST_AUTO_TEST_CASE(bearer_header_works) {
  for (const char* scheme : {"Bearer ", "bearer ", "BEARER "}) {
    const auto r = api(port, http::verb::get, "/api/v2/tokens", {}, {{"Authorization", scheme + admin_key}});
    BOOST_TEST(r.status == 200u, scheme);
  }
  const auto created = api(port, http::verb::post, "/api/v2/tokens", create_json("via bearer"),
                           {{"Authorization", "Bearer " + admin_key}});
  BOOST_REQUIRE_EQUAL(created.status, 200u);
  BOOST_TEST(created.json().at("token").at("userId").to_number<std::uint64_t>() == 1u);
  const auto victim = str(created.json().at("token").at("token"));
  const auto deleted = api(port, http::verb::delete_, "/api/v2/tokens", delete_json(victim),
                           {{"Authorization", "Bearer " + admin_key}});
  BOOST_TEST(deleted.status == 200u);
}

BOOST_AUTO_TEST_CASE(bearer_and_query_must_agree) {
  const auto user2 = add_user_key(2);
  const auto differ =
      api(port, http::verb::get, tokens_target(admin_key), {}, {{"Authorization", "Bearer " + user2}});
  check_error(differ, 401);
  BOOST_TEST(differ.body == unauthorized_body);
  const auto same =
      api(port, http::verb::get, tokens_target(admin_key), {}, {{"Authorization", "Bearer " + admin_key}});
  BOOST_TEST(same.status == 200u);
  // two different ?token= parameters
  check_error(api(port, http::verb::get, tokens_target(admin_key) + "&token=" + user2), 401,
              "Unauthorized Request");
}

BOOST_AUTO_TEST_CASE(percent_encoded_query_token) {
  const auto r = api(port, http::verb::get, "/api/v2/tokens?token=" + percent_encode_all(admin_key));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.json().at("tokens").as_array().size() == 1u);
  const auto partly = "/api/v2/tokens?token=%" + [&] {
    static const char* hex = "0123456789abcdef";
    const auto c = static_cast<unsigned char>(admin_key[0]);
    return std::string{hex[c >> 4], hex[c & 15]};
  }() + admin_key.substr(1);
  BOOST_TEST(api(port, http::verb::get, partly).status == 200u);
}

BOOST_AUTO_TEST_CASE(token_among_other_parameters) {
  BOOST_TEST(api(port, http::verb::get, "/api/v2/tokens?foo=bar&token=" + admin_key + "&x=1").status == 200u);
  BOOST_TEST(api(port, http::verb::get, "/api/v2/tokens?pageSize=5&token=" + admin_key).status == 200u);
  const auto created =
      api(port, http::verb::post, "/api/v2/tokens?a=1&token=" + admin_key + "&b", create_json("x"));
  BOOST_TEST(created.status == 200u);
}

BOOST_AUTO_TEST_CASE(unknown_key_never_echoed) {
  const auto unknown = core::generate_key();
  const auto r = api(port, http::verb::get, tokens_target(unknown));
  BOOST_TEST(r.status == 401u);
  BOOST_TEST(r.body.find(unknown) == std::string::npos);
  for (const auto& [name, value] : r.headers) BOOST_TEST(value.find(unknown) == std::string::npos, name);
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_errors, api_fixture)

BOOST_AUTO_TEST_CASE(unknown_path_is_404_json) {
  for (const std::string target :
       {"/", "/api/v2/tokens/x", "/api/v2/token", "/api/v1/tokens", "/nope?token=x"}) {
    BOOST_TEST_CONTEXT("target " << target) {
      check_error(api(port, http::verb::get, target), 404);
      const std::string sep = target.find('?') == std::string::npos ? "?" : "&";
      check_error(api(port, http::verb::get, target + sep + "token=" + admin_key), 404);
    }
  }
}

BOOST_AUTO_TEST_CASE(other_methods_are_405_with_allow) {
  for (const auto method : {http::verb::put, http::verb::options, http::verb::copy}) {
    BOOST_TEST_CONTEXT("method " << http::to_string(method)) {
      const auto r = api(port, method, tokens_target(admin_key), create_json("x"));
      check_error(r, 405);
      BOOST_TEST(r.header("allow") == "GET, POST, DELETE, PATCH");
      // without a key too: the method is wrong whoever asks
      const auto anonymous = api(port, method, "/api/v2/tokens");
      check_error(anonymous, 405);
      BOOST_TEST(anonymous.header("allow") == "GET, POST, DELETE, PATCH");
    }
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

BOOST_AUTO_TEST_CASE(body_too_large_is_413) {
  const std::string huge = create_json(std::string(3000, 'a'));  // max_body_bytes is 2048
  const auto r = api(port, http::verb::post, tokens_target(admin_key), huge);
  check_error(r, 413);
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
  // a body just under the limit is read (and refused for its content, not its size)
  const auto under =
      api(port, http::verb::post, tokens_target(admin_key), create_json(std::string(2000, 'a')));
  check_error(under, 400);
}

BOOST_AUTO_TEST_CASE(much_larger_body_is_still_413) {
  // The server refuses after the headers while the client is still sending: the 413 must still
  // reach the client rather than be lost to a reset.
  for (const std::size_t size :
       {std::size_t{20'000}, std::size_t{200'000}, std::size_t{1'000'000}, std::size_t{40'000'000}}) {
    BOOST_TEST_CONTEXT("body of " << size << " bytes") {
      test::connection c(port);
      const auto r =
          c.request(http::verb::post, tokens_target(admin_key), create_json(std::string(size, 'a')));
      check_error(r, 413);
      BOOST_TEST(r.error.empty(), r.error);
    }
  }
}

BOOST_AUTO_TEST_CASE(head_is_405_without_a_body) {
  test::connection c(port);
  const auto received =
      c.raw("HEAD " + tokens_target(admin_key) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3s);
  BOOST_TEST(raw_status(received) == 405u, received);
  const auto end = received.find("\r\n\r\n");
  BOOST_REQUIRE(end != std::string::npos);
  BOOST_TEST(received.substr(end + 4).empty(), "a HEAD response carries no content: " << received);

  // on a kept-alive connection, the next response must start right after the HEAD response's headers
  test::connection kept(port);
  BOOST_REQUIRE(kept.write_raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +
                               raw_request("GET", tokens_target(admin_key), {}, "Connection: close\r\n")));
  const auto both = kept.raw({}, 3s);
  const auto second = both.find("HTTP/1.1 ", 1);
  BOOST_REQUIRE_MESSAGE(second != std::string::npos, both);
  BOOST_TEST(both.substr(0, second).ends_with("\r\n\r\n"), both);
  BOOST_TEST(raw_status(both.substr(second)) == 200u, both);
}

BOOST_AUTO_TEST_CASE(non_json_content_type_is_415) {
  const auto text = api(port, http::verb::post, tokens_target(admin_key), create_json("x"),
                        {{"Content-Type", "text/plain"}});
  check_error(text, 415);
  const auto form = api(port, http::verb::delete_, tokens_target(admin_key), delete_json(admin_key),
                        {{"Content-Type", "application/x-www-form-urlencoded"}});
  check_error(form, 415);
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);  // neither created nor deleted anything
  // JSON with parameters is fine
  const auto charset = api(port, http::verb::post, tokens_target(admin_key), create_json("x"),
                           {{"Content-Type", "application/json; charset=utf-8"}});
  BOOST_TEST(charset.status == 200u);
}

// A body declared in another charset would be misread as UTF-8: 415, for create and delete alike.
BOOST_AUTO_TEST_CASE(charset_other_than_utf8_is_415) {
  for (const std::string type :
       {"application/json; charset=utf-16", "application/json;charset=UTF-16LE",
        "application/json; charset=\"utf-16\"", "application/json; CHARSET=Latin1",
        "application/json; charset=iso-8859-1", "application/json; charset=us-ascii",
        "application/json; charset=", "application/json; charset=utf-8; charset=utf-16",
        "application/vnd.api+json; charset=windows-1252"}) {
    BOOST_TEST_CONTEXT(type) {
      check_error(
          api(port, http::verb::post, tokens_target(admin_key), create_json("x"), {{"Content-Type", type}}),
          415);
      check_error(api(port, http::verb::delete_, tokens_target(admin_key), delete_json(admin_key),
                      {{"Content-Type", type}}),
                  415);
    }
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
  for (const std::string type : {"application/json; charset=UTF-8", "application/json; charset=\"utf-8\"",
                                 "Application/JSON;Charset=Utf-8"}) {
    BOOST_TEST_CONTEXT(type) {
      BOOST_TEST(
          api(port, http::verb::post, tokens_target(admin_key), create_json("x"), {{"Content-Type", type}})
              .status == 200u);
    }
  }
}

BOOST_AUTO_TEST_CASE(headers_too_large_is_431) {
  const auto r =
      api(port, http::verb::get, tokens_target(admin_key), {}, {{"X-Pad", std::string(2500, 'p')}});
  check_error(r, 431);
  // the server is still fine
  BOOST_TEST(api(port, http::verb::get, tokens_target(admin_key)).status == 200u);
}

BOOST_AUTO_TEST_CASE(malformed_json_is_400) {
  for (const std::string body : {R"({"type":"admin","description":"x")", R"({"type":"admin",})", "{'a':1}"}) {
    check_error(api(port, http::verb::post, tokens_target(admin_key), body), 400);
    check_error(api(port, http::verb::delete_, tokens_target(admin_key), body), 400);
  }
}

BOOST_AUTO_TEST_CASE(errors_never_expose_keys) {
  const auto victim = core::generate_key();
  const auto r = api(port, http::verb::delete_, tokens_target(admin_key), delete_json(victim));
  check_error(r, 404);
  BOOST_TEST(r.body.find(victim) == std::string::npos);
  BOOST_TEST(r.body.find(admin_key) == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(http_protocol, api_fixture)

BOOST_AUTO_TEST_CASE(keep_alive_serves_several_requests) {
  test::connection c(port);
  const auto created = c.request(http::verb::post, tokens_target(admin_key), create_json("kept"));
  BOOST_REQUIRE_EQUAL(created.status, 200u);
  BOOST_TEST(created.keep_alive);
  const auto victim = str(created.json().at("token").at("token"));
  for (int i = 0; i < 3; ++i) {
    const auto listed = c.request(http::verb::get, tokens_target(admin_key));
    BOOST_TEST(listed.status == 200u, listed.error);
    BOOST_TEST(listed.keep_alive);
  }
  const auto error = c.request(http::verb::get, "/nope");  // an error keeps the connection too
  BOOST_TEST(error.status == 404u);
  const auto deleted = c.request(http::verb::delete_, tokens_target(admin_key), delete_json(victim));
  BOOST_TEST(deleted.status == 200u, deleted.error);
  const auto last = c.request(http::verb::get, tokens_target(admin_key));
  BOOST_TEST(last.status == 200u, last.error);
  BOOST_TEST(last.json().at("tokens").as_array().size() == 1u);
}

BOOST_AUTO_TEST_CASE(http_1_0_is_answered_in_kind_and_closed) {
  test::connection c(port);
  const auto r = c.request(http::verb::get, tokens_target(admin_key), {}, {}, 10);
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.version == 10u);
  BOOST_TEST(!r.keep_alive);
  BOOST_TEST(r.json().at("tokens").as_array().size() == 1u);
  BOOST_TEST(c.closed_by_peer(3s));

  // an HTTP/1.0 client asking for keep-alive gets it, still in HTTP/1.0
  test::connection k(port);
  const auto first =
      k.request(http::verb::get, tokens_target(admin_key), {}, {{"Connection", "keep-alive"}}, 10);
  BOOST_TEST(first.status == 200u);
  BOOST_TEST(first.version == 10u);
  BOOST_TEST(first.keep_alive);
  const auto second =
      k.request(http::verb::post, tokens_target(admin_key), create_json("old client"), {}, 10);
  BOOST_TEST(second.status == 200u, second.error);
  BOOST_TEST(second.version == 10u);
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
  test::connection c(port);
  const std::string bytes = raw_request("POST", tokens_target(admin_key), create_json("piped")) +
                            raw_request("GET", tokens_target(admin_key)) + raw_request("GET", "/nope");
  BOOST_REQUIRE(c.write_raw(bytes));
  const auto first = c.read_response();
  const auto second = c.read_response();
  const auto third = c.read_response();
  BOOST_REQUIRE_EQUAL(first.status, 200u);
  BOOST_TEST(str(first.json().at("message")) == "Token created successfully");
  BOOST_REQUIRE_EQUAL(second.status, 200u);
  BOOST_TEST(str(second.json().at("message")) == "Success");
  // the list was handled after the create that preceded it on the wire
  BOOST_TEST(descriptions_of(second.json().at("tokens").as_array()) ==
                 (std::vector<std::string>{"bootstrap", "piped"}),
             boost::test_tools::per_element());
  check_error(third, 404);
}

BOOST_AUTO_TEST_CASE(chunked_request_body) {
  test::connection c(port);
  const std::string body = create_json("sent in chunks");
  const std::string a = body.substr(0, 5), b = body.substr(5, 10), rest = body.substr(15);
  const auto hex = [](std::size_t n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return std::string(buf);
  };
  std::string bytes = "POST " + tokens_target(admin_key) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
  for (const auto& part : {a, b, rest}) bytes += hex(part.size()) + "\r\n" + part + "\r\n";
  bytes += "0\r\n\r\n";
  BOOST_REQUIRE(c.write_raw(bytes));
  const auto r = c.read_response();
  BOOST_REQUIRE_MESSAGE(r.status == 200u, r.status << " " << r.body << " " << r.error);
  BOOST_TEST(str(r.json().at("token").at("description")) == "sent in chunks");
  BOOST_TEST(descriptions_of(list_tokens(port, admin_key)) ==
                 (std::vector<std::string>{"bootstrap", "sent in chunks"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(chunked_body_over_the_limit_is_413) {
  test::connection c(port);
  const std::string chunk(1500, 'a');
  std::string bytes = "POST " + tokens_target(admin_key) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
  bytes += "5dc\r\n" + chunk + "\r\n5dc\r\n" + chunk + "\r\n0\r\n\r\n";  // 2 × 1500 > 2048
  BOOST_REQUIRE(c.write_raw(bytes));
  check_error(c.read_response(), 413);
}

BOOST_AUTO_TEST_CASE(expect_100_continue) {
  test::connection c(port);
  const std::string body = create_json("after continue");
  BOOST_REQUIRE(c.write_raw("POST " + tokens_target(admin_key) +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Expect: 100-continue\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n"));
  const auto interim = c.read_response();
  BOOST_REQUIRE_MESSAGE(interim.status == 100u, interim.status << " " << interim.error);
  BOOST_REQUIRE(c.write_raw(body));
  const auto r = c.read_response();
  BOOST_REQUIRE_MESSAGE(r.status == 200u, r.status << " " << r.body << " " << r.error);
  BOOST_TEST(str(r.json().at("token").at("description")) == "after continue");
}

BOOST_AUTO_TEST_CASE(expect_100_continue_is_ignored_for_http_1_0) {
  // RFC 9110 10.1.1: an HTTP/1.0 client does not understand interim responses.
  test::connection c(port);
  const std::string body = create_json("old expect");
  BOOST_REQUIRE(c.write_raw("POST " + tokens_target(admin_key) +
                            " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Expect: 100-continue\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body));
  const auto r = c.read_response();
  BOOST_TEST(r.status == 200u, r.status << " " << r.body << " " << r.error);
  BOOST_TEST(r.version == 10u);
}

BOOST_AUTO_TEST_CASE(connection_close_is_honoured) {
  test::connection c(port);
  const auto r = c.request(http::verb::get, tokens_target(admin_key), {}, {{"Connection", "close"}});
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(!r.keep_alive);
  BOOST_TEST(c.closed_by_peer(3s));
}

BOOST_AUTO_TEST_CASE(content_length_with_transfer_encoding_is_refused) {
  // A request-smuggling shape: whichever framing the server chose, it must not process it.
  for (const std::string te : {"chunked", "gzip, chunked"}) {
    const std::string body = create_json("smuggled");
    check_framing_refused(
        port, admin_key,
        "Content-Length: " + std::to_string(body.size() + 7) + "\r\nTransfer-Encoding: " + te,
        "0\r\n\r\n" + body);
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

BOOST_AUTO_TEST_CASE(conflicting_content_lengths_are_refused) {
  const std::string body = create_json("conflict");
  const std::vector<std::string> variants = {
      "Content-Length: " + std::to_string(body.size()) +
          "\r\nContent-Length: " + std::to_string(body.size() + 1),
      "Content-Length: " + std::to_string(body.size()) + ", " + std::to_string(body.size() - 1),
      "Content-Length: -1", "Content-Length: abc"};
  for (const auto& lengths : variants) check_framing_refused(port, admin_key, lengths, body);
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

BOOST_AUTO_TEST_CASE(garbage_is_400_or_closed) {
  test::connection c(port);
  const auto received = c.raw("THIS IS NOT HTTP\r\n\r\n", 3s);
  const unsigned status = raw_status(received);
  BOOST_TEST((status == 0u || status == 400u), received);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(idle_connection_is_closed_after_idle_timeout) {
  server_options options;
  options.idle_timeout = 300ms;
  test_server srv(options);

  // after a request
  test::connection used(srv.port);
  const auto r = used.request(http::verb::get, tokens_target(srv.admin_key));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_REQUIRE(r.keep_alive);
  const auto started = std::chrono::steady_clock::now();
  BOOST_TEST(used.closed_by_peer(5s));
  BOOST_TEST(elapsed_ms(started) >= 200, "closed before the idle timeout");

  // and one that never sends anything
  test::connection silent(srv.port);
  BOOST_TEST(silent.closed_by_peer(5s));
}

BOOST_AUTO_TEST_CASE(slow_request_is_closed_after_request_timeout) {
  server_options options;
  options.request_timeout = 300ms;
  options.idle_timeout = 30s;  // so only the request deadline can close these
  test_server srv(options);

  // headers that never end (slowloris)
  test::connection headers(srv.port);
  BOOST_REQUIRE(headers.write_raw("GET " + tokens_target(srv.admin_key) + " HTTP/1.1\r\nHost: x\r\n"));
  auto started = std::chrono::steady_clock::now();
  BOOST_TEST(headers.closed_by_peer(5s));
  BOOST_TEST(elapsed_ms(started) >= 200);

  // a body shorter than announced
  test::connection body(srv.port);
  BOOST_REQUIRE(body.write_raw("POST " + tokens_target(srv.admin_key) +
                               " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Content-Length: 100\r\n\r\n{\"type\""));
  started = std::chrono::steady_clock::now();
  BOOST_TEST(body.closed_by_peer(5s));
  BOOST_TEST(elapsed_ms(started) >= 200);

  // the server still serves others
  BOOST_TEST(api(srv.port, http::verb::get, tokens_target(srv.admin_key)).status == 200u);
}

BOOST_AUTO_TEST_CASE(a_request_waiting_on_the_store_outlives_the_request_timeout) {
  server_options options;
  options.faulty = true;
  options.request_timeout = 300ms;
  options.idle_timeout = 30s;
  test_server srv(options);

  write_file(srv.fault_file(), "stall");
  test::connection held(srv.port, 10s);
  BOOST_REQUIRE(
      held.write_raw(raw_request("POST", tokens_target(srv.admin_key), create_json("slow commit"))));
  BOOST_REQUIRE_MESSAGE(test::eventually([&] { return srv.store().stats().queue_depth > 0; }),
                        "the create never reached the store");
  // A slowloris connection begun after the create: once the deadline sweep has closed it, the
  // create's request deadline, had it still counted, has passed as well.
  test::connection slow(srv.port);
  BOOST_REQUIRE(slow.write_raw("GET " + tokens_target(srv.admin_key) + " HTTP/1.1\r\nHost: x\r\n"));
  BOOST_REQUIRE(slow.closed_by_peer(5s));

  fs::remove(srv.fault_file());
  const auto r = held.read_response();
  BOOST_TEST(r.status == 200u, r.status << " " << r.body << " " << r.error);
}

BOOST_AUTO_TEST_CASE(drain_closes_idle_connections_and_the_listener) {
  server_options options;
  options.drain_timeout = 30s;  // an idle connection must not hold the drain until this
  test_server srv(options);
  test::connection idle(srv.port);
  BOOST_REQUIRE_EQUAL(idle.request(http::verb::get, tokens_target(srv.admin_key)).status, 200u);

  const auto started = std::chrono::steady_clock::now();
  srv.app().request_stop();
  BOOST_TEST(idle.closed_by_peer(5s));
  srv.stop();  // request_stop() again is a no-op; this waits for the drain
  BOOST_TEST(elapsed_ms(started) < 10'000);
  // nobody listens any more
  BOOST_CHECK_THROW(test::connection(srv.port, 2s), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(drain_deadline_closes_a_stuck_request) {
  server_options options;
  options.faulty = true;
  options.drain_timeout = 300ms;
  test_server srv(options);
  test::connection admin_kept(srv.admin_port);  // a kept-alive admin connection must not hold the stop either
  BOOST_REQUIRE_EQUAL(admin_kept.request(http::verb::get, "/healthz").status, 200u);

  write_file(srv.fault_file(), "stall");  // never lifted: only the drain deadline ends this request
  test::connection stuck(srv.port);
  BOOST_REQUIRE(stuck.write_raw(raw_request("POST", tokens_target(srv.admin_key), create_json("stuck"))));
  BOOST_REQUIRE_MESSAGE(test::eventually([&] { return srv.store().stats().queue_depth > 0; }),
                        "the create never reached the store");

  const auto started = std::chrono::steady_clock::now();
  srv.stop();
  BOOST_TEST(elapsed_ms(started) >= 250);    // the drain waited for the busy connection...
  BOOST_TEST(elapsed_ms(started) < 10'000);  // ...but not forever
  const auto r = stuck.read_response();
  BOOST_TEST(r.status == 0u, "a request cut by the drain deadline gets no answer, not " << r.status);
  BOOST_TEST(admin_kept.closed_by_peer(3s));
}

// The lame-duck drain: a request sent down an idle keep-alive connection as the drain begins (a
// load balancer's, in the same instant) is answered, with `Connection: close`, not cut off; an
// idle connection nobody uses is closed once the idle grace is over; the listener closes at once.
BOOST_AUTO_TEST_CASE(drain_answers_the_next_request_on_an_idle_connection_then_closes_it) {
  server_options options;
  options.drain_timeout = 20s;  // the drain ends with the grace, long before this
  options.drain_idle_grace = 1500ms;
  test_server srv(options);
  test::connection used(srv.port);
  test::connection unused(srv.port);
  test::connection pipelined(srv.port);
  for (auto* c : {&used, &unused, &pipelined}) {
    BOOST_REQUIRE_EQUAL(c->request(http::verb::get, tokens_target(srv.admin_key)).status, 200u);
  }

  const auto started = std::chrono::steady_clock::now();
  srv.app().request_stop();
  BOOST_TEST(!srv.app().ready());
  // Soon nobody listens any more (a balancer's new connection is refused, so it tries elsewhere).
  BOOST_TEST(test::eventually(
                 [&] {
                   try {
                     test::connection probe(srv.port, 1s);
                     return false;
                   } catch (const std::runtime_error&) {
                     return true;
                   }
                 },
                 1s),
             "the listener is still open while draining");

  // A create and a list on the idle connections, within the grace: full answers, then closed.
  const auto created = used.request(http::verb::post, tokens_target(srv.admin_key), create_json("lame duck"));
  BOOST_TEST(created.status == 200u, created.status << " " << created.body << " " << created.error);
  BOOST_TEST(!created.keep_alive, "a response sent while draining must say Connection: close");
  BOOST_TEST(created.header("connection") == "close");
  BOOST_TEST(used.closed_by_peer(3s), "the connection stayed open after its Connection: close answer");
  BOOST_TEST(elapsed_ms(started) < 1'500, "the test itself was too slow to be within the grace");
  // Two requests at once: the first is answered (closing), the second is not served on this connection.
  const std::string get = raw_request("GET", tokens_target(srv.admin_key), "");
  const std::string both = pipelined.raw(get + get, 3s);
  BOOST_TEST(both.starts_with("HTTP/1.1 200"), both.substr(0, 80));
  BOOST_TEST(both.find("HTTP/1.1", 1) == std::string::npos, "a second answer on a closing connection");

  // The unused one stays open through the grace, then is closed; the drain then ends.
  BOOST_TEST(unused.closed_by_peer(5s), "an idle connection outlived the idle grace");
  const auto closed_after = elapsed_ms(started);
  BOOST_TEST(closed_after >= 1'400,
             "idle connection closed before the grace was over: " << closed_after << " ms");
  srv.stop();
  BOOST_TEST(elapsed_ms(started) < 5'000, "the drain did not end with the idle grace");
  BOOST_TEST(srv.app().open_api_connections() == 0u);
}

// A session that throws (here: after its handler, as an allocation failure while writing would)
// is unregistered like any other: the open count comes back to zero, nothing closes its freed
// socket later (AddressSanitizer would say), and the next drain ends at once instead of waiting
// for a connection that no longer exists until its deadline.
BOOST_AUTO_TEST_CASE(a_session_that_throws_is_unregistered_and_the_drain_stays_prompt) {
  server_options options;
  options.drain_timeout = 20s;
  options.drain_idle_grace = 0ms;
  options.hooks.after_api_handler = [](std::string_view target) {
    if (target.find("throw-here") != std::string_view::npos) throw std::bad_alloc();
  };
  test_server srv(options);
  for (int i = 0; i < 3; ++i) {
    test::connection c(srv.port);
    const auto r = c.request(http::verb::get, "/throw-here");
    BOOST_TEST(r.status == 0u, "a session that threw still answered " << r.status);
  }
  // The service goes on for everyone else.
  BOOST_TEST(api(srv.port, http::verb::get, tokens_target(srv.admin_key)).status == 200u);
  BOOST_TEST(test::eventually([&] { return srv.app().open_api_connections() == 0; }),
             srv.app().open_api_connections() << " connections still counted open");

  const auto started = std::chrono::steady_clock::now();
  srv.stop();
  BOOST_TEST(elapsed_ms(started) < 3'000, "the drain waited for sessions that had already thrown");
}

// A drain that throws is logged and still releases wait(): a stop must never hang.
BOOST_AUTO_TEST_CASE(a_drain_that_throws_still_releases_wait) {
  server_options options;
  options.drain_timeout = 20s;
  options.hooks.in_drain = [] { throw std::runtime_error("injected drain failure"); };
  auto srv = std::make_unique<test_server>(options);
  test::connection idle(srv->port);
  BOOST_REQUIRE_EQUAL(idle.request(http::verb::get, tokens_target(srv->admin_key)).status, 200u);

  auto stopped = std::async(std::launch::async, [&] { srv->stop(); });
  if (stopped.wait_for(5s) != std::future_status::ready) {
    // Nothing can unblock wait() now; ending here keeps the suite from hanging on it.
    std::cerr << "FAILED a_drain_that_throws_still_releases_wait: wait() still blocked after 5s\n";
    std::_Exit(1);
  }
  stopped.get();
  srv.reset();  // and the app, with a connection it never closed, is destroyed cleanly
  BOOST_TEST(idle.closed_by_peer(3s));
}

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(admin_listener, api_fixture)

BOOST_AUTO_TEST_CASE(healthz_and_readyz) {
  const auto health = api(admin_port, http::verb::get, "/healthz");
  BOOST_TEST(health.status == 200u);
  const auto ready = api(admin_port, http::verb::get, "/readyz");
  BOOST_TEST(ready.status == 200u);
  // the admin endpoints are not on the API port, and the API is not on the admin port
  BOOST_TEST(api(port, http::verb::get, "/healthz").status == 404u);
  BOOST_TEST(api(admin_port, http::verb::get, tokens_target(admin_key)).status == 404u);
}

BOOST_AUTO_TEST_CASE(metrics_exposition) {
  BOOST_REQUIRE_EQUAL(api(port, http::verb::get, tokens_target(admin_key)).status, 200u);
  BOOST_REQUIRE_EQUAL(api(port, http::verb::get, tokens_target(admin_key)).status, 200u);  // a cache hit
  BOOST_REQUIRE_EQUAL(api(port, http::verb::get, "/api/v2/tokens").status, 401u);
  const auto m = api(admin_port, http::verb::get, "/metrics");
  BOOST_REQUIRE_EQUAL(m.status, 200u);
  BOOST_TEST(m.header("content-type").starts_with("text/plain"), m.header("content-type"));
  BOOST_TEST(m.body.find("# TYPE tokend_http_requests_total counter") != std::string::npos);
  BOOST_TEST(m.body.find("tokend_http_requests_total{route=\"list\",status=\"200\"} 2") != std::string::npos,
             m.body);
  BOOST_TEST(m.body.find("tokend_http_requests_total{route=\"list\",status=\"401\"} 1") != std::string::npos,
             m.body);
  BOOST_TEST(m.body.find("tokend_cache_hits_total ") != std::string::npos);
  BOOST_TEST(m.body.find("tokend_cache_hits_total 0\n") == std::string::npos,
             "the second list was a cache hit");
  BOOST_TEST(m.body.find(admin_key) == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(readyz_fails_while_draining) {
  server_options options;
  options.faulty = true;
  options.drain_timeout = 20s;  // the drain ends when the held request does, long before this
  test_server srv(options);
  BOOST_REQUIRE_EQUAL(api(srv.admin_port, http::verb::get, "/readyz").status, 200u);

  // Hold one request in flight (its store write stalls) so the drain lasts while we probe.
  write_file(srv.fault_file(), "stall");
  test::connection held(srv.port, 20s);
  BOOST_REQUIRE(held.write_raw(raw_request("POST", tokens_target(srv.admin_key), create_json("in flight"))));
  BOOST_REQUIRE_MESSAGE(test::eventually([&] { return srv.store().stats().queue_depth > 0; }),
                        "the create never reached the store");

  srv.app().request_stop();
  BOOST_TEST(!srv.app().ready());
  const auto probe = api(srv.admin_port, http::verb::get, "/readyz");
  BOOST_TEST(probe.status == 503u, probe.status << " " << probe.error);
  BOOST_TEST(api(srv.admin_port, http::verb::get, "/healthz").status == 200u);  // alive all the same

  // the in-flight request still finishes, and the connection is then closed
  fs::remove(srv.fault_file());
  const auto finished = held.read_response();
  BOOST_TEST(finished.status == 200u, finished.status << " " << finished.body << " " << finished.error);
  BOOST_TEST(!finished.keep_alive);
  srv.stop();
}

// =============================================================================================
BOOST_FIXTURE_TEST_CASE(concurrent_creates, api_fixture) {
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  struct outcome {
    std::vector<unsigned> statuses;
    std::vector<std::string> keys;
    std::string failure;
  };
  std::vector<outcome> outcomes(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        test::connection c(port);
        for (int i = 0; i < per_thread; ++i) {
          const auto r = c.request(http::verb::post, tokens_target(admin_key),
                                   create_json("t" + std::to_string(t) + "-" + std::to_string(i)));
          outcomes[t].statuses.push_back(r.status);
          if (r.status == 200)
            outcomes[t].keys.push_back(std::string(r.json().at("token").at("token").as_string()));
        }
      } catch (const std::exception& e) {
        outcomes[t].failure = e.what();
      }
    });
  }
  for (auto& w : workers) w.join();

  std::set<std::string> keys;
  for (int t = 0; t < threads; ++t) {
    BOOST_TEST(outcomes[t].failure.empty(), outcomes[t].failure);
    BOOST_TEST(outcomes[t].statuses.size() == std::size_t{per_thread});
    for (const auto s : outcomes[t].statuses) BOOST_TEST(s == 200u);
    keys.insert(outcomes[t].keys.begin(), outcomes[t].keys.end());
  }
  BOOST_TEST(keys.size() == std::size_t{threads * per_thread});

  const auto tokens = list_tokens(port, admin_key);
  BOOST_TEST(tokens.size() == std::size_t{threads * per_thread + 1});
  std::map<std::string, int> seen;
  for (const auto& d : descriptions_of(tokens)) ++seen[d];
  for (int t = 0; t < threads; ++t) {
    int last_index = -1;  // one thread's creates are sequential, so they are listed in its order
    for (int i = 0; i < per_thread; ++i) {
      const auto d = "t" + std::to_string(t) + "-" + std::to_string(i);
      BOOST_TEST(seen[d] == 1, d);
    }
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      const auto d = str(tokens[k].at("description"));
      if (!d.starts_with("t" + std::to_string(t) + "-")) continue;
      const int i = std::stoi(d.substr(d.find('-') + 1));
      BOOST_TEST(i > last_index, d);
      last_index = i;
    }
  }
  // every new key works
  for (const auto& k : {*keys.begin(), *keys.rbegin()}) {
    BOOST_TEST(api(port, http::verb::get, tokens_target(k)).status == 200u);
  }
}

// =============================================================================================
BOOST_AUTO_TEST_CASE(store_faults_are_503_and_store_nothing) {
  server_options options;
  options.faulty = true;
  test_server srv(options);
  const auto victim = create_via_api(srv.port, srv.admin_key, "victim");

  write_file(srv.fault_file(), "fail");
  const auto failed =
      api(srv.port, http::verb::post, tokens_target(srv.admin_key), create_json("during failure"));
  check_error(failed, 503);
  const auto not_deleted =
      api(srv.port, http::verb::delete_, tokens_target(srv.admin_key), delete_json(victim));
  check_error(not_deleted, 503);
  // reads still work; nothing was stored or removed
  BOOST_TEST(descriptions_of(list_tokens(srv.port, srv.admin_key)) ==
                 (std::vector<std::string>{"bootstrap", "victim"}),
             boost::test_tools::per_element());
  BOOST_TEST(api(srv.port, http::verb::get, tokens_target(victim)).status == 200u);
  BOOST_TEST(api(srv.admin_port, http::verb::get, "/readyz").status == 503u);

  fs::remove(srv.fault_file());
  const auto ok =
      api(srv.port, http::verb::post, tokens_target(srv.admin_key), create_json("after recovery"));
  BOOST_TEST(ok.status == 200u, ok.body);
  BOOST_TEST(descriptions_of(list_tokens(srv.port, srv.admin_key)) ==
                 (std::vector<std::string>{"bootstrap", "victim", "after recovery"}),
             boost::test_tools::per_element());
  BOOST_TEST(api(srv.admin_port, http::verb::get, "/readyz").status == 200u);
}

// =============================================================================================
// Operator keys, expiry, delete by id and roll: the API beyond Vida's. Helpers first.
namespace {

constexpr std::string_view other_user_body =
    R"({"success":false,"message":"Only an operator key may act for another user"})";
constexpr std::string_view operator_create_body =
    R"({"success":false,"message":"Only an operator key may create an operator key"})";

std::string as_user(const std::string& key, core::user_id user) {
  return tokens_target(key) + "&userId=" + std::to_string(user);
}

std::string roll_target(const std::string& key, const std::string& query = {}) {
  return "/api/v2/tokens/roll?token=" + key + query;
}

std::string id_json(std::uint64_t id) { return json::serialize(json::object{{"id", id}}); }

// The token object of a 200 create or roll answer.
json::object token_of(const test::reply& r) {
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body << " " << r.error);
  return r.json().at("token").as_object();
}

std::uint64_t id_of(const json::object& token) { return token.at("id").to_number<std::uint64_t>(); }

// The listed token with this id, or null when there is none.
json::value listed(const json::array& tokens, std::uint64_t id) {
  for (const auto& t : tokens) {
    if (t.at("id").to_number<std::uint64_t>() == id) return t;
  }
  return nullptr;
}

std::int64_t seconds_of(const json::value& v) { return v.is_string() ? std::stoll(str(v)) : 0; }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(api_operator, api_fixture)

// The onboarding an operator does: an admin key for a new customer, then that customer's tokens
// listed, rolled and deleted, all through the same endpoints with userId.
BOOST_AUTO_TEST_CASE(operator_manages_another_users_tokens) {
  const auto op = add_operator_key(1);
  const auto made = token_of(api(port, http::verb::post, as_user(op, 42), create_json("customer 42")));
  BOOST_TEST(made.at("userId").to_number<std::uint64_t>() == 42u);
  BOOST_TEST(str(made.at("type")) == "admin");
  const std::string key42 = str(made.at("token"));
  // The customer's key works for the customer, and sees only the customer's tokens.
  const auto own = list_tokens(port, key42);
  BOOST_REQUIRE_EQUAL(own.size(), 1u);
  BOOST_TEST(own[0].at("id").to_number<std::uint64_t>() == id_of(made));

  const auto second = token_of(api(port, http::verb::post, as_user(op, 42), create_json("second")));
  const auto theirs = api(port, http::verb::get, as_user(op, 42));
  BOOST_REQUIRE_EQUAL(theirs.status, 200u);
  BOOST_TEST(descriptions_of(theirs.json().at("tokens").as_array()) ==
                 (std::vector<std::string>{"customer 42", "second"}),
             boost::test_tools::per_element());
  // Without userId the operator acts for its own user.
  BOOST_TEST(descriptions_of(list_tokens(port, op)) == (std::vector<std::string>{"bootstrap", "operator"}),
             boost::test_tools::per_element());

  const auto rolled = api(port, http::verb::post, roll_target(op, "&userId=42"), id_json(id_of(second)));
  const auto fresh = token_of(rolled);
  BOOST_TEST(fresh.at("userId").to_number<std::uint64_t>() == 42u);
  BOOST_TEST(str(fresh.at("description")) == "second");
  BOOST_TEST(api(port, http::verb::get, tokens_target(str(fresh.at("token")))).status == 200u);

  const auto gone = api(port, http::verb::delete_, as_user(op, 42), id_json(id_of(made)));
  BOOST_REQUIRE_EQUAL(gone.status, 200u);
  BOOST_TEST(gone.body == deleted_body);
  check_error(api(port, http::verb::get, tokens_target(key42)), 401, "Unauthorized Request");
  // And by key, for another user.
  const auto by_key = api(port, http::verb::delete_, as_user(op, 42), delete_json(str(fresh.at("token"))));
  BOOST_TEST(by_key.status == 200u, by_key.body);
  BOOST_TEST(api(port, http::verb::get, as_user(op, 42)).json().at("tokens").as_array().size() == 1u);
}

BOOST_AUTO_TEST_CASE(operator_may_create_operator_keys) {
  const auto op = add_operator_key(1);
  const auto made = token_of(
      api(port, http::verb::post, as_user(op, 9), R"({"type":"operator","description":"second operator"})"));
  BOOST_TEST(str(made.at("type")) == "operator");
  // The new operator key crosses users too, and /verify names its type.
  const auto other = api(port, http::verb::get, as_user(str(made.at("token")), 42));
  BOOST_TEST(other.status == 200u, other.body);
  const auto verified =
      api(port, http::verb::get, "/verify", {}, {{"Authorization", "Bearer " + str(made.at("token"))}});
  BOOST_TEST(verified.status == 200u);
  BOOST_TEST(verified.header("x-tokend-token-type") == "operator");
  BOOST_TEST(verified.header("x-tokend-user-id") == "9");
}

// An admin key keeps today's rules: its own user only, whatever it asks.
BOOST_AUTO_TEST_CASE(admin_key_never_crosses_users) {
  const auto b_key = add_user_key(2, "b's key");
  const auto b_token = token_of(api(port, http::verb::post, tokens_target(b_key), create_json("b's token")));
  const std::uint64_t b_id = id_of(b_token);
  const std::string b_new_key = str(b_token.at("token"));
  const auto a_listed = list_tokens(port, admin_key);

  // userId naming B: 403 on every operation, before the body is read.
  for (const auto method : {http::verb::get, http::verb::post, http::verb::delete_}) {
    const auto r = api(port, method, as_user(admin_key, 2),
                       method == http::verb::post ? create_json("x") : id_json(b_id));
    check_error(r, 403);
    BOOST_TEST(r.body == other_user_body);
  }
  const auto roll_b = api(port, http::verb::post, roll_target(admin_key, "&userId=2"), id_json(b_id));
  check_error(roll_b, 403);
  BOOST_TEST(roll_b.body == other_user_body);
  // userId naming itself: as without it.
  BOOST_TEST(api(port, http::verb::get, as_user(admin_key, 1)).json().at("tokens").as_array().size() ==
             a_listed.size());

  // B's token by id or key without userId: the same 404 as an id nobody has.
  for (const std::string& body :
       {id_json(b_id), delete_json(b_key), delete_json(b_new_key), id_json(999'999)}) {
    const auto del = api(port, http::verb::delete_, tokens_target(admin_key), body);
    check_error(del, 404);
    BOOST_TEST(del.body == not_found_body);
    const auto roll = api(port, http::verb::post, roll_target(admin_key), body);
    check_error(roll, 404);
    BOOST_TEST(roll.body == not_found_body);
  }
  // A's list never shows B's tokens, and B's keys all still work.
  for (const auto& t : list_tokens(port, admin_key))
    BOOST_TEST(t.at("userId").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(list_tokens(port, admin_key).size() == a_listed.size());
  BOOST_TEST(api(port, http::verb::get, tokens_target(b_key)).status == 200u);
  BOOST_TEST(api(port, http::verb::get, tokens_target(b_new_key)).status == 200u);

  // And from B's side: the same holds for A's tokens.
  const std::uint64_t a_id = a_listed[0].at("id").to_number<std::uint64_t>();
  check_error(api(port, http::verb::delete_, tokens_target(b_key), id_json(a_id)), 404);
  check_error(api(port, http::verb::post, roll_target(b_key), id_json(a_id)), 404);
  check_error(api(port, http::verb::get, as_user(b_key, 1)), 403);
  BOOST_TEST(api(port, http::verb::get, tokens_target(admin_key)).status == 200u);
}

BOOST_AUTO_TEST_CASE(admin_key_cannot_create_or_obtain_operator_keys) {
  const auto r =
      api(port, http::verb::post, tokens_target(admin_key), R"({"type":"operator","description":"x"})");
  check_error(r, 403);
  BOOST_TEST(r.body == operator_create_body);
  // Nor by rolling an operator key of its own user, which would hand it a new operator key.
  const auto op = add_operator_key(1);
  const auto rolled = api(port, http::verb::post, roll_target(admin_key), delete_json(op));
  check_error(rolled, 403);
  BOOST_TEST(rolled.body == operator_create_body);
  BOOST_TEST(api(port, http::verb::get, tokens_target(op)).status == 200u);  // left as it was
  // Other types stay a 400.
  check_error(api(port, http::verb::post, tokens_target(admin_key), R"({"type":"root","description":"x"})"),
              400);
}

BOOST_AUTO_TEST_CASE(malformed_user_id_is_400) {
  const auto op = add_operator_key(1);
  for (const std::string query : {"&userId=", "&userId=0", "&userId=-3", "&userId=abc",
                                  "&userId=9007199254740993", "&userId=4&userId=4"}) {
    const auto r = api(port, http::verb::get, tokens_target(op) + query);
    check_error(r, 400);
    BOOST_TEST(r.body.find("userId") != std::string::npos, r.body);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_expiry, api_fixture)

BOOST_AUTO_TEST_CASE(expiry_is_shown_and_vida_bodies_never_expire) {
  const auto now = unix_now();
  const auto in = token_of(api(port, http::verb::post, tokens_target(admin_key),
                               R"({"type":"admin","description":"a day","expiresIn":86400})"));
  BOOST_TEST(seconds_of(in.at("expiresAt")) >= now + 86'400);
  BOOST_TEST(seconds_of(in.at("expiresAt")) <= unix_now() + 86'400);
  const auto at = token_of(api(port, http::verb::post, tokens_target(admin_key),
                               R"({"type":"admin","description":"fixed","expiresAt":4102444800})"));
  BOOST_TEST(str(at.at("expiresAt")) == "4102444800");
  const auto vida = token_of(api(port, http::verb::post, tokens_target(admin_key), create_json("vida")));
  BOOST_TEST(vida.at("expiresAt").is_null());

  const auto tokens = list_tokens(port, admin_key);
  BOOST_TEST(listed(tokens, id_of(in)).at("expiresAt") == in.at("expiresAt"));
  BOOST_TEST(str(listed(tokens, id_of(at)).at("expiresAt")) == "4102444800");
  BOOST_TEST(listed(tokens, id_of(vida)).at("expiresAt").is_null());
  for (const auto& t : tokens) {
    BOOST_TEST(t.as_object().size() == 9u);
    BOOST_TEST((t.at("lastUsedAt").is_null() || is_digits(str(t.at("lastUsedAt")))));
  }
  BOOST_TEST(api(port, http::verb::get, tokens_target(str(in.at("token")))).status == 200u);
}

BOOST_AUTO_TEST_CASE(bad_expiry_requests_are_400) {
  const auto past = std::to_string(unix_now() - 10);
  for (const std::string& body :
       {R"({"type":"admin","description":"x","expiresAt":)" + past + "}",
        std::string(R"({"type":"admin","description":"x","expiresIn":0})"),
        std::string(R"({"type":"admin","description":"x","expiresIn":-5})"),
        std::string(R"({"type":"admin","description":"x","expiresIn":60,"expiresAt":4102444800})"),
        std::string(R"({"type":"admin","description":"x","expiresIn":"60"})"),
        std::string(R"({"type":"admin","description":"x","expiresAt":1.5})")}) {
    check_error(api(port, http::verb::post, tokens_target(admin_key), body), 400);
  }
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);  // nothing stored
}

// An expired key is refused like an unknown one, with no delete: its record is still listed.
BOOST_AUTO_TEST_CASE(expired_key_is_401_and_still_listed) {
  const std::string key = core::generate_key();
  test::store_record(store(),
                     core::make_token_record(key, 1, "expired", "admin", unix_now() - 100, unix_now() - 1));
  const auto r = api(port, http::verb::get, tokens_target(key));
  check_error(r, 401);
  BOOST_TEST(r.body == unauthorized_body);
  check_error(api(port, http::verb::get, "/verify", {}, {{"Authorization", "Bearer " + key}}), 401);
  const auto tokens = list_tokens(port, admin_key);
  BOOST_REQUIRE_EQUAL(tokens.size(), 2u);
  BOOST_TEST(seconds_of(tokens[1].at("expiresAt")) <= unix_now() - 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(expiry_policies) {
  server_options options;
  options.token_ttl = 3600s;
  options.token_max_ttl = 86'400s;
  test_server srv(options);
  // The default applies to a body without expiry (a Vida client's).
  const auto before = unix_now();
  const auto d =
      token_of(api(srv.port, http::verb::post, tokens_target(srv.admin_key), create_json("default")));
  BOOST_TEST(seconds_of(d.at("expiresAt")) >= before + 3600);
  BOOST_TEST(seconds_of(d.at("expiresAt")) <= unix_now() + 3600);
  // Up to the maximum is allowed, beyond it refused naming it.
  BOOST_TEST(api(srv.port, http::verb::post, tokens_target(srv.admin_key),
                 R"({"type":"admin","description":"max","expiresIn":86400})")
                 .status == 200u);
  const auto beyond = api(srv.port, http::verb::post, tokens_target(srv.admin_key),
                          R"({"type":"admin","description":"x","expiresIn":86401})");
  check_error(beyond, 400);
  BOOST_TEST(beyond.body.find("86400") != std::string::npos, beyond.body);
  check_error(api(srv.port, http::verb::post, tokens_target(srv.admin_key),
                  R"({"type":"admin","description":"x","expiresAt":4102444800})"),
              400);
  // A roll asks the same policy for the new key.
  const auto roll_beyond = api(srv.port, http::verb::post, roll_target(srv.admin_key), id_json(id_of(d)));
  BOOST_TEST(roll_beyond.status == 200u, roll_beyond.body);
  BOOST_TEST(seconds_of(token_of(roll_beyond).at("expiresAt")) <= unix_now() + 3600);
  check_error(api(srv.port, http::verb::post, roll_target(srv.admin_key),
                  R"({"id":)" + std::to_string(id_of(token_of(roll_beyond))) + R"(,"expiresIn":90000})"),
              400);
}

BOOST_AUTO_TEST_CASE(maximum_without_default_is_the_default) {
  server_options options;
  options.token_max_ttl = 600s;
  test_server srv(options);
  const auto before = unix_now();
  const auto d = token_of(api(srv.port, http::verb::post, tokens_target(srv.admin_key), create_json("vida")));
  BOOST_TEST(seconds_of(d.at("expiresAt")) >= before + 600);
  BOOST_TEST(seconds_of(d.at("expiresAt")) <= unix_now() + 600);
}

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_roll, api_fixture)

BOOST_AUTO_TEST_CASE(roll_returns_a_new_key_and_the_old_ends) {
  const auto old = token_of(api(port, http::verb::post, tokens_target(admin_key), create_json("deploy")));
  const std::string old_key = str(old.at("token"));
  BOOST_REQUIRE_EQUAL(api(port, http::verb::get, tokens_target(old_key)).status, 200u);  // cached
  const auto before = unix_now();
  const auto r = api(port, http::verb::post, roll_target(admin_key), delete_json(old_key));
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  const json::value answer = r.json();
  const auto& o = answer.as_object();
  BOOST_TEST(o.size() == 4u, r.body);
  BOOST_TEST(o.at("success").as_bool() == true);
  BOOST_TEST(str(o.at("message")) == "Token rolled successfully");
  const auto& fresh = o.at("token").as_object();
  BOOST_TEST(fresh.size() == 9u);
  const std::string new_key = str(fresh.at("token"));
  BOOST_TEST(core::is_well_formed_key(new_key));
  BOOST_TEST(new_key != old_key);
  BOOST_TEST(str(fresh.at("description")) == "deploy");
  BOOST_TEST(str(fresh.at("type")) == "admin");
  BOOST_TEST(fresh.at("userId").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(id_of(fresh) != id_of(old));
  const auto& previous = o.at("previous").as_object();
  BOOST_TEST(previous.size() == 2u);
  BOOST_TEST(previous.at("id").to_number<std::uint64_t>() == id_of(old));
  BOOST_TEST(seconds_of(previous.at("expiresAt")) >= before);
  BOOST_TEST(seconds_of(previous.at("expiresAt")) <= unix_now());

  // overlap 0 (the default): the old key is refused at once, the new one works.
  check_error(api(port, http::verb::get, tokens_target(old_key)), 401, "Unauthorized Request");
  BOOST_TEST(api(port, http::verb::get, tokens_target(new_key)).status == 200u);
  // A second roll of the old key: it has ended, so there is nothing to roll.
  check_error(api(port, http::verb::post, roll_target(admin_key), delete_json(old_key)), 404);
  const auto tokens = list_tokens(port, admin_key);
  BOOST_TEST(!listed(tokens, id_of(fresh)).is_null());
  BOOST_TEST(listed(tokens, id_of(fresh)).at("token") == json::value(new_key.substr(0, 6) + "...."));
}

BOOST_AUTO_TEST_CASE(old_key_works_during_the_overlap) {
  const auto old = token_of(api(port, http::verb::post, tokens_target(admin_key),
                                R"({"type":"admin","description":"ci","expiresIn":7200})"));
  const std::string old_key = str(old.at("token"));
  const auto before = unix_now();
  const auto r = api(port, http::verb::post, roll_target(admin_key),
                     R"({"id":)" + std::to_string(id_of(old)) + R"(,"overlap":3600,"expiresIn":600})");
  const auto fresh = token_of(r);
  const json::value previous = r.json().at("previous");
  BOOST_TEST(seconds_of(previous.at("expiresAt")) >= before + 3600);
  BOOST_TEST(seconds_of(previous.at("expiresAt")) <= unix_now() + 3600);
  BOOST_TEST(seconds_of(fresh.at("expiresAt")) <= unix_now() + 600);
  BOOST_TEST(api(port, http::verb::get, tokens_target(old_key)).status == 200u);
  BOOST_TEST(api(port, http::verb::get, tokens_target(str(fresh.at("token")))).status == 200u);
  // The overlap never lengthens a key: an old key ending sooner keeps its own end.
  const auto soon = token_of(api(port, http::verb::post, tokens_target(admin_key),
                                 R"({"type":"admin","description":"soon","expiresIn":60})"));
  const auto kept = api(port, http::verb::post, roll_target(admin_key),
                        R"({"id":)" + std::to_string(id_of(soon)) + R"(,"overlap":3600})");
  BOOST_REQUIRE_EQUAL(kept.status, 200u);
  BOOST_TEST(kept.json().at("previous").at("expiresAt") == soon.at("expiresAt"));
}

BOOST_AUTO_TEST_CASE(bad_roll_requests) {
  check_error(api(port, http::verb::post, roll_target(admin_key), "{}"), 400);
  check_error(api(port, http::verb::post, roll_target(admin_key), R"({"id":1,"overlap":2592001})"), 400);
  check_error(api(port, http::verb::post, roll_target(admin_key), R"({"id":1,"token":"x"})"), 400);
  check_error(api(port, http::verb::post, roll_target(admin_key), delete_json("not-a-key")), 404);
  check_error(api(port, http::verb::post, "/api/v2/tokens/roll", id_json(1)), 401);
  check_error(
      api(port, http::verb::post, roll_target(admin_key), id_json(1), {{"Content-Type", "text/plain"}}), 415);
  for (const auto method : {http::verb::get, http::verb::delete_, http::verb::put}) {
    const auto r = api(port, method, roll_target(admin_key));
    check_error(r, 405);
    BOOST_TEST(r.header("allow") == "POST");
  }
  check_error(api(port, http::verb::post, "/api/v2/tokens/roll/x?token=" + admin_key, id_json(1)), 404);
  BOOST_TEST(list_tokens(port, admin_key).size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
BOOST_FIXTURE_TEST_SUITE(api_delete_by_id, api_fixture)

BOOST_AUTO_TEST_CASE(delete_by_id_as_listed) {
  const auto victim = token_of(api(port, http::verb::post, tokens_target(admin_key), create_json("victim")));
  const std::string key = str(victim.at("token"));
  BOOST_REQUIRE_EQUAL(api(port, http::verb::get, tokens_target(key)).status, 200u);  // cached
  const auto r = api(port, http::verb::delete_, tokens_target(admin_key), id_json(id_of(victim)));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  BOOST_TEST(r.body == deleted_body);
  check_error(api(port, http::verb::get, tokens_target(key)), 401);
  check_error(api(port, http::verb::delete_, tokens_target(admin_key), id_json(id_of(victim))), 404);
  for (const std::string bad : {R"({"id":0})", R"({"id":"3"})", R"({"id":3,"token":"x"})", "{}"}) {
    check_error(api(port, http::verb::delete_, tokens_target(admin_key), bad), 400);
  }
  BOOST_TEST(descriptions_of(list_tokens(port, admin_key)) == std::vector<std::string>{"bootstrap"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
// Rate limits on one instance: exact, with the draft's headers. The windows are long (a minute or
// an hour), so the test's own time cannot refill a bucket enough to change an answer.
namespace {

constexpr std::string_view rate_limited_body = R"({"success":false,"message":"Rate limit exceeded"})";

std::string limited_create_json(const std::string& description, const std::string& limit) {
  return R"({"type":"admin","description":")" + description + R"(","rateLimit":)" + limit + "}";
}

// A new key of `key`'s user with its own rateLimit (JSON text, or "null").
json::object create_limited(std::uint16_t port, const std::string& key, const std::string& limit) {
  return token_of(api(port, http::verb::post, tokens_target(key), limited_create_json("limited", limit)));
}

// The figures of `"key";<a>=<x>;<b>=<y>`, or nullopt when the value has another shape.
std::optional<std::pair<long long, long long>> rate_fields(const std::string& value, char a, char b) {
  const std::string head = std::string(R"("key";)") + a + '=';
  if (!value.starts_with(head)) return std::nullopt;
  const auto semi = value.find(';', head.size());
  const std::string mid = std::string(";") + b + '=';
  if (semi == std::string::npos || value.compare(semi, mid.size(), mid) != 0) return std::nullopt;
  const std::string x = value.substr(head.size(), semi - head.size());
  const std::string y = value.substr(semi + mid.size());
  if (!is_digits(x) || !is_digits(y)) return std::nullopt;
  return std::pair{std::stoll(x), std::stoll(y)};
}

// The headers of a limited key's answer: its policy (limit per window) and r/t as given.
void check_rate_headers(const test::reply& r, long long limit, long long window, long long remaining,
                        long long reset_at_least, long long reset_at_most) {
  const auto policy = rate_fields(r.header("ratelimit-policy"), 'q', 'w');
  BOOST_TEST(policy.has_value(), "RateLimit-Policy: " << r.header("ratelimit-policy"));
  if (policy) {
    BOOST_TEST(policy->first == limit);
    BOOST_TEST(policy->second == window);
  }
  const auto state = rate_fields(r.header("ratelimit"), 'r', 't');
  BOOST_TEST(state.has_value(), "RateLimit: " << r.header("ratelimit"));
  if (state) {
    BOOST_TEST(state->first == remaining, r.header("ratelimit"));
    BOOST_TEST(state->second >= reset_at_least, r.header("ratelimit"));
    BOOST_TEST(state->second <= reset_at_most, r.header("ratelimit"));
  }
}

void check_no_rate_headers(const test::reply& r) {
  BOOST_TEST(r.header("ratelimit-policy").empty(), r.header("ratelimit-policy"));
  BOOST_TEST(r.header("ratelimit").empty(), r.header("ratelimit"));
  BOOST_TEST(r.header("retry-after").empty(), r.header("retry-after"));
}

// A refusal for the rate limit: the status, the exact body, Retry-After within (0, window], the
// headers with nothing remaining (refilling a bucket of `burst`, 0: the limit), and no challenge
// (the key is good).
void check_rate_refusal(const test::reply& r, unsigned status, long long limit, long long window,
                        long long burst = 0) {
  BOOST_TEST(r.status == status, r.status << " " << r.body);
  BOOST_TEST(r.body == rate_limited_body);
  BOOST_TEST(r.header("content-type") == "application/json");
  const std::string retry = r.header("retry-after");
  BOOST_TEST(is_digits(retry), "Retry-After: " << retry);
  if (is_digits(retry)) {
    BOOST_TEST(std::stoll(retry) >= 1);
    BOOST_TEST(std::stoll(retry) <= window);
  }
  check_rate_headers(r, limit, window, 0, 1, window * std::max(burst, limit) / limit);
  BOOST_TEST(r.header("www-authenticate").empty());
  BOOST_TEST(r.header("x-tokend-user-id").empty());
}

test::reply verify_as(std::uint16_t port, const std::string& key) {
  return api(port, http::verb::get, "/verify", {}, {{"Authorization", "Bearer " + key}});
}

std::string patch_target(const std::string& operator_key, core::user_id user) {
  return as_user(operator_key, user);
}

std::string patch_json(std::uint64_t id, const std::string& limit) {
  return R"({"id":)" + std::to_string(id) + R"(,"rateLimit":)" + limit + "}";
}

std::string limited_target(const std::string& key, const std::string& query = {}) {
  return "/api/v2/tokens/limited?token=" + key + query;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(api_rate_limit, api_fixture)

// 5 per minute: exactly five answers across the API's routes and /verify, r counting down 4..0,
// then refusals everywhere, each with Retry-After and the headers, none of them counted.
BOOST_AUTO_TEST_CASE(exact_enforcement_with_headers) {
  const auto token = create_limited(port, admin_key, R"({"limit":5,"window":60})");
  BOOST_TEST(token.at("rateLimit") == json::parse(R"({"limit":5,"window":60,"burst":5})"));
  const std::string key = str(token.at("token"));

  // One request every 12 s refills; five taken at once leave 12 s per request taken to refill.
  const auto admitted = [&](const test::reply& r, long long remaining) {
    BOOST_TEST_CONTEXT("remaining " << remaining) {
      BOOST_TEST(r.status == 200u, r.status << " " << r.body);
      const long long taken = 5 - remaining;
      check_rate_headers(r, 5, 60, remaining, 12 * taken - 1, 12 * taken);
      BOOST_TEST(r.header("retry-after").empty());
    }
  };
  admitted(api(port, http::verb::get, tokens_target(key)), 4);
  const auto made = api(port, http::verb::post, tokens_target(key), create_json("by the limited key"));
  admitted(made, 3);
  admitted(verify_as(port, key), 2);
  BOOST_TEST(verify_as(port, key).header("x-tokend-user-id").empty() == false);  // the fourth
  admitted(api(port, http::verb::get, tokens_target(key)), 0);

  // Every route refuses now, before its body is read: a malformed body is 429 too, not 400.
  for (int round = 0; round < 2; ++round) {
    check_rate_refusal(api(port, http::verb::get, tokens_target(key)), 429, 5, 60);
    check_rate_refusal(api(port, http::verb::post, tokens_target(key), "not json"), 429, 5, 60);
    check_rate_refusal(api(port, http::verb::delete_, tokens_target(key), id_json(id_of(token))), 429, 5, 60);
    check_rate_refusal(api(port, http::verb::post, roll_target(key), id_json(id_of(token))), 429, 5, 60);
    check_rate_refusal(api(port, http::verb::patch, tokens_target(key), "{}"), 429, 5, 60);
    check_rate_refusal(api(port, http::verb::get, limited_target(key)), 429, 5, 60);
    check_rate_refusal(verify_as(port, key), 429, 5, 60);
  }
  // The refusals changed nothing: the key still exists and another key is untouched.
  BOOST_TEST(!listed(list_tokens(port, admin_key), id_of(token)).is_null());
  check_no_rate_headers(api(port, http::verb::get, tokens_target(admin_key)));

  const std::string metrics = app().metrics_text();
  BOOST_TEST(test::metric_in(metrics, R"(tokend_rate_limited_total{route="list"})") == 2);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_rate_limited_total{route="create"})") == 2);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_rate_limited_total{route="delete"})") == 2);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_rate_limited_total{route="roll"})") == 2);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_rate_limited_total{route="update"})") == 2);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_rate_limited_total{route="limited"})") == 2);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_rate_limited_total{route="verify"})") == 2);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_http_requests_total{route="verify",status="429"})") == 2);
  BOOST_TEST(test::metric_in(metrics, "tokend_rate_limit_buckets ") >= 1);
  BOOST_TEST(test::metric_in(metrics, "tokend_rate_limit_share ") == 1);
  BOOST_TEST(metrics.find(key.substr(0, 6)) == std::string::npos, "no key or prefix in metrics");
}

// A burst larger than the limit: that many at once, and the policy still says the limit.
BOOST_AUTO_TEST_CASE(burst_is_the_bucket) {
  const auto token = create_limited(port, admin_key, R"({"limit":1,"window":3600,"burst":3})");
  BOOST_TEST(token.at("rateLimit") == json::parse(R"({"limit":1,"window":3600,"burst":3})"));
  const std::string key = str(token.at("token"));
  for (long long remaining = 2; remaining >= 0; --remaining) {
    const auto r = verify_as(port, key);
    BOOST_TEST(r.status == 200u);
    check_rate_headers(r, 1, 3600, remaining, 3600 * (3 - remaining) - 1, 3600 * (3 - remaining));
  }
  check_rate_refusal(verify_as(port, key), 429, 1, 3600, 3);
}

BOOST_AUTO_TEST_CASE(unlimited_keys_get_no_headers) {
  const auto token = create_limited(port, admin_key, "null");
  BOOST_TEST(token.at("rateLimit").is_null());
  const std::string key = str(token.at("token"));
  for (int i = 0; i < 20; ++i) {
    const auto r = api(port, http::verb::get, tokens_target(key));
    BOOST_REQUIRE_EQUAL(r.status, 200u);
    check_no_rate_headers(r);
  }
  const auto v = verify_as(port, key);
  BOOST_TEST(v.status == 200u);
  check_no_rate_headers(v);
  check_no_rate_headers(api(port, http::verb::post, tokens_target(key), create_json("x")));
  BOOST_TEST(test::metric_in(app().metrics_text(), "tokend_rate_limit_buckets ") == 0);
}

// Limits are shown where tokens are: create, list and roll. A roll keeps the old key's own limit
// unless its body gives one (null: back to the default).
BOOST_AUTO_TEST_CASE(limits_are_shown_and_rolls_keep_them) {
  const auto with = create_limited(port, admin_key, R"({"limit":100,"window":1})");
  BOOST_TEST(with.at("rateLimit") == json::parse(R"({"limit":100,"window":1,"burst":100})"));
  const auto burst = create_limited(port, admin_key, R"({"limit":10,"window":60,"burst":0})");
  BOOST_TEST(burst.at("rateLimit") == json::parse(R"({"limit":10,"window":60,"burst":10})"));
  const auto exempt = create_limited(port, admin_key, R"({"limit":0})");
  BOOST_TEST(exempt.at("rateLimit") == json::parse(R"({"limit":0,"window":1,"burst":0})"));
  const auto tokens = list_tokens(port, admin_key);
  BOOST_TEST(listed(tokens, id_of(with)).at("rateLimit") == with.at("rateLimit"));
  BOOST_TEST(listed(tokens, id_of(burst)).at("rateLimit") == burst.at("rateLimit"));
  BOOST_TEST(listed(tokens, id_of(exempt)).at("rateLimit") == exempt.at("rateLimit"));
  BOOST_TEST(tokens[0].at("rateLimit").is_null());  // bootstrap

  const auto kept = token_of(api(port, http::verb::post, roll_target(admin_key), id_json(id_of(with))));
  BOOST_TEST(kept.at("rateLimit") == with.at("rateLimit"));
  const auto replaced = token_of(api(
      port, http::verb::post, roll_target(admin_key),
      R"({"id":)" + std::to_string(id_of(kept)) + R"(,"rateLimit":{"limit":7,"window":3600,"burst":9}})"));
  BOOST_TEST(replaced.at("rateLimit") == json::parse(R"({"limit":7,"window":3600,"burst":9})"));
  const auto cleared = token_of(api(port, http::verb::post, roll_target(admin_key),
                                    R"({"id":)" + std::to_string(id_of(replaced)) + R"(,"rateLimit":null})"));
  BOOST_TEST(cleared.at("rateLimit").is_null());
  const auto after = list_tokens(port, admin_key);
  BOOST_TEST(listed(after, id_of(replaced)).at("rateLimit") == replaced.at("rateLimit"));
  BOOST_TEST(listed(after, id_of(cleared)).at("rateLimit").is_null());
}

// Every malformed rateLimit is a 400 naming it, in create, roll and PATCH; nothing changes.
BOOST_AUTO_TEST_CASE(bad_rate_limits_are_400) {
  const auto op = add_operator_key(1);
  const auto target = token_of(api(port, http::verb::post, tokens_target(admin_key), create_json("target")));
  const std::vector<std::string> bad = {
      "5",
      R"("100/1s")",
      "[]",
      "true",
      "{}",
      R"({"window":1})",
      R"({"limit":-1})",
      R"({"limit":1.5})",
      R"({"limit":"5"})",
      R"({"limit":null})",
      R"({"limit":1000000001})",
      R"({"limit":99999999999999999999})",
      R"({"limit":5,"window":0})",
      R"({"limit":5,"window":86401})",
      R"({"limit":5,"window":2.5})",
      R"({"limit":5,"burst":-1})",
      R"({"limit":5,"burst":1000000001})",
      R"({"limit":5,"extra":1})",
      R"({"limit":5,"limit":6})",
  };
  for (const auto& shape : bad) {
    BOOST_TEST_CONTEXT("rateLimit " << shape) {
      const auto created =
          api(port, http::verb::post, tokens_target(admin_key), limited_create_json("x", shape));
      check_error(created, 400);
      const bool named = created.body.find("rateLimit") != std::string::npos ||
                         created.body.find("twice") != std::string::npos;
      BOOST_TEST(named, created.body);
      check_error(api(port, http::verb::post, roll_target(admin_key), patch_json(id_of(target), shape)), 400);
      check_error(api(port, http::verb::patch, patch_target(op, 1), patch_json(id_of(target), shape)), 400);
    }
  }
  // PATCH needs rateLimit, and one token.
  check_error(api(port, http::verb::patch, patch_target(op, 1), id_json(id_of(target))), 400);
  check_error(api(port, http::verb::patch, patch_target(op, 1), R"({"rateLimit":null})"), 400);
  check_error(api(port, http::verb::patch, patch_target(op, 1), "not json"), 400);
  const auto tokens = list_tokens(port, admin_key);
  BOOST_TEST(tokens.size() == 3u);  // bootstrap, operator, target: nothing created, rolled or changed
  BOOST_TEST(listed(tokens, id_of(target)).at("rateLimit").is_null());
}

// An operator sets a key's limit, which applies from its next request; clears it (the key is
// unlimited again at once); an admin key may not; an unknown token is 404.
BOOST_AUTO_TEST_CASE(patch_sets_and_clears_a_limit) {
  const auto op = add_operator_key(9);
  const auto token = token_of(api(port, http::verb::post, tokens_target(admin_key), create_json("customer")));
  const std::string key = str(token.at("token"));
  check_no_rate_headers(api(port, http::verb::get, tokens_target(key)));  // cached, unlimited

  const auto set = api(port, http::verb::patch, patch_target(op, 1),
                       patch_json(id_of(token), R"({"limit":2,"window":3600})"));
  BOOST_REQUIRE_MESSAGE(set.status == 200u, set.body);
  BOOST_TEST(set.body == R"({"success":true,"message":"Rate limit updated","id":)" +
                             std::to_string(id_of(token)) +
                             R"(,"rateLimit":{"limit":2,"window":3600,"burst":2}})");
  check_no_rate_headers(set);  // the operator key itself is not limited
  check_rate_headers(verify_as(port, key), 2, 3600, 1, 1799, 1800);
  check_rate_headers(api(port, http::verb::get, tokens_target(key)), 2, 3600, 0, 3599, 3600);
  check_rate_refusal(verify_as(port, key), 429, 2, 3600);
  BOOST_TEST(listed(list_tokens(port, admin_key), id_of(token)).at("rateLimit") ==
             json::parse(R"({"limit":2,"window":3600,"burst":2})"));

  // By key this time, back to the default (none): answered with the id, and served again at once.
  const auto cleared = api(port, http::verb::patch, patch_target(op, 1),
                           json::serialize(json::object{{"token", key}, {"rateLimit", nullptr}}));
  BOOST_REQUIRE_MESSAGE(cleared.status == 200u, cleared.body);
  BOOST_TEST(cleared.body == R"({"success":true,"message":"Rate limit updated","id":)" +
                                 std::to_string(id_of(token)) + R"(,"rateLimit":null})");
  BOOST_TEST(cleared.body.find(key) == std::string::npos);
  for (int i = 0; i < 5; ++i) {
    const auto r = verify_as(port, key);
    BOOST_TEST(r.status == 200u);
    check_no_rate_headers(r);
  }
  BOOST_TEST(listed(list_tokens(port, admin_key), id_of(token)).at("rateLimit").is_null());

  // Admin keys may not, whatever the body; checked after the caller's own userId rules.
  for (const std::string& body : {patch_json(id_of(token), R"({"limit":1})"), std::string("not json")}) {
    check_error(api(port, http::verb::patch, tokens_target(admin_key), body), 403,
                "Only an operator key may change a rate limit");
  }
  check_error(api(port, http::verb::patch, as_user(admin_key, 2), patch_json(1, "null")), 403,
              "Only an operator key may act for another user");
  check_error(api(port, http::verb::patch, "/api/v2/tokens", patch_json(id_of(token), "null")), 401);
  check_error(api(port, http::verb::patch, patch_target(op, 1), patch_json(id_of(token), "null"),
                  {{"Content-Type", "text/plain"}}),
              415);
  // Not found: an unknown id, a malformed or unknown key, another user's token.
  const auto not_found = [&](const std::string& target, const std::string& body) {
    const auto r = api(port, http::verb::patch, target, body);
    check_error(r, 404);
    BOOST_TEST(r.body == not_found_body);
  };
  not_found(patch_target(op, 1), patch_json(999'999, "null"));
  not_found(patch_target(op, 1), R"({"token":"not-a-key","rateLimit":null})");
  not_found(patch_target(op, 1),
            json::serialize(json::object{{"token", core::generate_key()}, {"rateLimit", nullptr}}));
  not_found(patch_target(op, 2), patch_json(id_of(token), "null"));
  not_found(tokens_target(op), json::serialize(json::object{{"token", key}, {"rateLimit", nullptr}}));
}

// The server's default limits keys without their own; {limit: 0} exempts a key; a key's own limit
// wins over the default.
BOOST_AUTO_TEST_CASE(the_default_limits_keys_without_their_own) {
  server_options options;
  options.rate_limit = core::rate_limit{3, 3600, 0};
  test_server srv(options);
  // An operator's key: only an operator may exempt a key, or give it more than the default.
  const std::string op = srv.add_operator_key(1);
  const auto admitted = [](const test::reply& r, long long remaining) {
    BOOST_TEST(r.status == 200u, r.status << " " << r.body);
    check_rate_headers(r, 3, 3600, remaining, 1200 * (3 - remaining) - 1, 1200 * (3 - remaining));
  };
  const auto exempt_reply =
      api(srv.port, http::verb::post, tokens_target(op), limited_create_json("exempt", R"({"limit":0})"));
  admitted(exempt_reply, 2);
  const auto own_reply = api(srv.port, http::verb::post, tokens_target(op),
                             limited_create_json("own", R"({"limit":10,"window":60})"));
  admitted(own_reply, 1);
  const auto plain_reply =
      api(srv.port, http::verb::post, tokens_target(op), limited_create_json("plain", "null"));
  admitted(plain_reply, 0);
  check_rate_refusal(api(srv.port, http::verb::get, tokens_target(op)), 429, 3, 3600);

  const std::string exempt = str(token_of(exempt_reply).at("token"));
  for (int i = 0; i < 10; ++i) {
    const auto r = verify_as(srv.port, exempt);
    BOOST_TEST(r.status == 200u);
    check_no_rate_headers(r);
  }
  const std::string own = str(token_of(own_reply).at("token"));
  for (long long remaining = 9; remaining >= 5; --remaining) {
    const auto r = verify_as(srv.port, own);
    BOOST_TEST(r.status == 200u);
    check_rate_headers(r, 10, 60, remaining, 6 * (10 - remaining) - 1, 6 * (10 - remaining));
  }
  const std::string plain = str(token_of(plain_reply).at("token"));
  for (long long remaining = 2; remaining >= 0; --remaining) {
    const auto r = verify_as(srv.port, plain);
    BOOST_TEST(r.status == 200u);
    check_rate_headers(r, 3, 3600, remaining, 1200 * (3 - remaining) - 1, 1200 * (3 - remaining));
  }
  check_rate_refusal(verify_as(srv.port, plain), 429, 3, 3600);
}

// An admin key may give a key a tighter limit than the default, never a looser one or none (at
// create and at roll); an operator key may; without a default there is nothing to loosen.
BOOST_AUTO_TEST_CASE(only_an_operator_loosens_the_default) {
  server_options options;
  options.rate_limit = core::rate_limit{100, 60, 0};
  test_server srv(options);
  const std::string op = srv.add_operator_key(1);
  for (const char* looser :
       {R"({"limit":0})", R"({"limit":101,"window":60})", R"({"limit":2,"window":1})",
        R"({"limit":100,"window":60,"burst":101})", R"({"limit":1,"window":1,"burst":200})"}) {
    BOOST_TEST_CONTEXT(looser) {
      const auto r = api(srv.port, http::verb::post, tokens_target(srv.admin_key),
                         limited_create_json("looser", looser));
      check_error(r, 403);
      BOOST_TEST(r.body.find("more generous rate limit") != std::string::npos, r.body);
      BOOST_TEST(
          api(srv.port, http::verb::post, tokens_target(op), limited_create_json("looser", looser)).status ==
          200u);
    }
  }
  for (const char* tighter : {R"({"limit":100,"window":60})", R"({"limit":1,"window":1,"burst":100})",
                              R"({"limit":50,"window":3600,"burst":10})", "null"}) {
    BOOST_TEST_CONTEXT(tighter) {
      BOOST_TEST(api(srv.port, http::verb::post, tokens_target(srv.admin_key),
                     limited_create_json("tighter", tighter))
                     .status == 200u);
    }
  }
  const auto mine = create_limited(srv.port, srv.admin_key, R"({"limit":10,"window":60})");
  const auto roll_with = [&](const std::string& limit) {
    return api(srv.port, http::verb::post, roll_target(srv.admin_key),
               R"({"id":)" + std::to_string(id_of(mine)) + R"(,"rateLimit":)" + limit + "}");
  };
  check_error(roll_with(R"({"limit":0})"), 403);
  const auto rolled = roll_with("null");  // back to the default: never looser than it
  BOOST_TEST(rolled.status == 200u, rolled.body);

  test_server unlimited;  // no default: an admin key may set any limit, or none
  BOOST_TEST(api(unlimited.port, http::verb::post, tokens_target(unlimited.admin_key),
                 limited_create_json("exempt", R"({"limit":0})"))
                 .status == 200u);
}

// /verify's refusal status is the configured one (403 behind nginx auth_request), never with a
// challenge; the API's stays 429.
BOOST_AUTO_TEST_CASE(verify_status_is_configurable) {
  for (const unsigned status : {403U, 401U}) {
    BOOST_TEST_CONTEXT("status " << status) {
      server_options options;
      options.verify_rate_limited_status = status;
      test_server srv(options);
      const auto token = create_limited(srv.port, srv.admin_key, R"({"limit":1,"window":3600})");
      const std::string key = str(token.at("token"));
      const auto first = verify_as(srv.port, key);
      BOOST_TEST(first.status == 200u);
      check_rate_headers(first, 1, 3600, 0, 3599, 3600);
      check_rate_refusal(verify_as(srv.port, key), status, 1, 3600);
      check_rate_refusal(api(srv.port, http::verb::get, tokens_target(key)), 429, 1, 3600);
    }
  }
}

// The operator's view: this instance's most refused keys, by masked prefix and id, never a key.
BOOST_AUTO_TEST_CASE(limited_keys_view) {
  const auto op = add_operator_key(9);
  const auto hot = create_limited(port, admin_key, R"({"limit":1,"window":3600})");
  const auto warm = create_limited(port, admin_key, R"({"limit":2,"window":3600})");
  const std::string hot_key = str(hot.at("token"));
  const std::string warm_key = str(warm.at("token"));
  for (int i = 0; i < 4; ++i) (void)verify_as(port, hot_key);   // 1 admitted, 3 refused
  for (int i = 0; i < 3; ++i) (void)verify_as(port, warm_key);  // 2 admitted, 1 refused

  const auto r = api(port, http::verb::get, limited_target(op));
  BOOST_REQUIRE_MESSAGE(r.status == 200u, r.status << " " << r.body);
  BOOST_TEST(r.body.find(hot_key) == std::string::npos);
  BOOST_TEST(r.body.find(warm_key) == std::string::npos);
  const auto v = r.json();
  BOOST_TEST(v.as_object().size() == 2u);
  BOOST_TEST(v.at("success").as_bool());
  const auto& keys = v.at("keys").as_array();
  BOOST_REQUIRE_EQUAL(keys.size(), 2u);
  const auto& first = keys[0].as_object();
  BOOST_TEST(first.size() == 6u, r.body);
  BOOST_TEST(first.at("userId").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(first.at("id").to_number<std::uint64_t>() == id_of(hot));
  BOOST_TEST(str(first.at("token")) == hot_key.substr(0, 6) + "....");
  BOOST_TEST(first.at("rateLimit") == json::parse(R"({"limit":1,"window":3600,"burst":1})"));
  BOOST_TEST(first.at("refused").to_number<std::uint64_t>() == 3u);
  BOOST_TEST(first.at("admitted").to_number<std::uint64_t>() == 1u);
  const auto& second = keys[1].as_object();
  BOOST_TEST(second.at("id").to_number<std::uint64_t>() == id_of(warm));
  BOOST_TEST(str(second.at("token")) == warm_key.substr(0, 6) + "....");
  BOOST_TEST(second.at("refused").to_number<std::uint64_t>() == 1u);
  BOOST_TEST(second.at("admitted").to_number<std::uint64_t>() == 2u);

  const auto one = api(port, http::verb::get, limited_target(op, "&n=1"));
  BOOST_REQUIRE_EQUAL(one.status, 200u);
  BOOST_TEST(one.json().at("keys").as_array().size() == 1u);
  for (const char* bad : {"&n=0", "&n=101", "&n=x", "&n=1&n=2"}) {
    check_error(api(port, http::verb::get, limited_target(op, bad)), 400);
  }
  check_error(api(port, http::verb::get, limited_target(admin_key)), 403,
              "Only an operator key may see limited keys");
  check_error(api(port, http::verb::get, "/api/v2/tokens/limited"), 401);
}

BOOST_AUTO_TEST_CASE(allow_headers) {
  for (const auto method : {http::verb::put, http::verb::options}) {
    const auto r = api(port, method, tokens_target(admin_key));
    check_error(r, 405);
    BOOST_TEST(r.header("allow") == "GET, POST, DELETE, PATCH");
  }
  for (const auto method : {http::verb::post, http::verb::delete_, http::verb::patch, http::verb::put}) {
    const auto r = api(port, method, limited_target(admin_key));
    check_error(r, 405);
    BOOST_TEST(r.header("allow") == "GET");
  }
  const auto r = api(port, http::verb::patch, roll_target(admin_key));
  check_error(r, 405);
  BOOST_TEST(r.header("allow") == "POST");
  check_error(api(port, http::verb::get, "/api/v2/tokens/limited/x?token=" + admin_key), 404);
}

BOOST_AUTO_TEST_SUITE_END()

// =============================================================================================
// Lists by cursor, the depth of `page`, and the bound on tokens per user.
namespace {

std::string quota_target(const std::string& key, const std::string& query = {}) {
  return "/api/v2/tokens/quota?token=" + key + query;
}

// Stores `n` tokens of `owner` straight through the store, all submitted before any is awaited
// (the writers batch them), and fails the test unless every one is stored in time.
void store_many(storage::token_store& store, core::user_id owner, std::size_t n) {
  std::vector<std::future<boost::system::result<std::uint64_t>>> done;
  done.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto promise = std::make_shared<std::promise<boost::system::result<std::uint64_t>>>();
    done.push_back(promise->get_future());
    const auto key = core::generate_key();
    store.async_create(core::make_token_record(key, owner, "bulk " + std::to_string(i), "admin", unix_now()),
                       [promise](boost::system::result<std::uint64_t> id) { promise->set_value(id); });
  }
  for (auto& f : done) {
    BOOST_REQUIRE(f.wait_for(30s) == std::future_status::ready);
    const auto id = f.get();
    BOOST_REQUIRE_MESSAGE(id.has_value(), "store refused a record: " << id.error().message());
  }
}

// One page of a cursor walk: its ids and the cursor to the next (empty on the last page).
struct walked_page {
  std::vector<std::uint64_t> ids;
  std::string next;
};

walked_page cursor_page(std::uint16_t port, const std::string& key, const std::string& query) {
  const auto r = api(port, http::verb::get, tokens_target(key) + query);
  BOOST_REQUIRE_MESSAGE(r.status == 200, "list: " << r.status << " " << r.body << " " << r.error);
  const auto o = r.json().as_object();
  walked_page page;
  for (const auto& t : o.at("tokens").as_array()) page.ids.push_back(t.at("id").to_number<std::uint64_t>());
  const bool more = o.at("hasMore").as_bool();
  BOOST_TEST(o.contains("nextCursor") == more, r.body);
  if (query.find("cursor=") != std::string::npos)
    BOOST_TEST(!o.contains("page"), "a cursor's page has no number");
  if (more) page.next = str(o.at("nextCursor"));
  return page;
}

std::string cursor_of(std::uint16_t port, const std::string& key, const std::string& query) {
  const auto r = api(port, http::verb::get, tokens_target(key) + query);
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  BOOST_REQUIRE_MESSAGE(r.json().as_object().contains("nextCursor"), r.body);
  return str(r.json().at("nextCursor"));
}

std::string limit_message(std::uint64_t bound) {
  return "Token limit reached: this user holds " + std::to_string(bound) +
         " tokens, the most it may; delete some first";
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(api_cursor, api_fixture)

// 2,500 tokens walked 100 at a time while tokens ahead and behind are deleted and new ones made:
// each token that existed throughout comes exactly once, in id (creation) order, the deleted ones
// ahead never, the new ones at the end.
BOOST_AUTO_TEST_CASE(walk_with_deletes_and_creates_during_it) {
  constexpr core::user_id user = 7;
  const auto key = add_user_key(user, "walker");
  store_many(store(), user, 2'499);
  const auto first = cursor_page(port, key, "&pageSize=1000");
  BOOST_REQUIRE_EQUAL(first.ids.size(), 1000u);

  // Every id, from plain pages (the depth allows 2,500 with pageSize 1000).
  std::vector<std::uint64_t> all;
  for (std::size_t page = 0; page < 3; ++page) {
    for (const auto& t : list_tokens(port, key, "&pageSize=1000&page=" + std::to_string(page)))
      all.push_back(t.at("id").to_number<std::uint64_t>());
  }
  BOOST_REQUIRE_EQUAL(all.size(), 2'500u);
  BOOST_TEST(std::is_sorted(all.begin(), all.end()));

  std::set<std::uint64_t> deleted;
  std::set<std::uint64_t> deleted_ahead;  // before the walk reached them
  std::vector<std::uint64_t> created;
  std::vector<std::uint64_t> seen;
  std::string cursor;
  std::size_t pages = 0;
  do {
    const auto page = cursor_page(port, key, "&pageSize=100" + (cursor.empty() ? "" : "&cursor=" + cursor));
    seen.insert(seen.end(), page.ids.begin(), page.ids.end());
    cursor = page.next;
    ++pages;
    BOOST_REQUIRE(pages < 100);
    if (pages % 5 == 0 && !cursor.empty()) {  // while the walk goes on
      // One token ahead of the walk and one behind it go; one new token comes.
      const auto next = std::upper_bound(all.begin(), all.end(), seen.back());
      const std::uint64_t behind = seen[seen.size() / 2];
      std::vector<std::uint64_t> victims{behind};
      if (all.end() - next > 37) {
        victims.push_back(next[37]);
        deleted_ahead.insert(next[37]);
      }
      for (const std::uint64_t id : victims) {
        if (deleted.contains(id)) continue;
        const auto r = api(port, http::verb::delete_, tokens_target(key), id_json(id));
        BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
        deleted.insert(id);
      }
      created.push_back(id_of(token_of(api(port, http::verb::post, tokens_target(key), create_json("new")))));
    }
  } while (!cursor.empty());

  BOOST_TEST(std::is_sorted(seen.begin(), seen.end()));
  BOOST_TEST((std::adjacent_find(seen.begin(), seen.end()) == seen.end()), "a token came twice");
  const std::set<std::uint64_t> seen_set(seen.begin(), seen.end());
  std::size_t throughout = 0;
  for (const std::uint64_t id : all) {
    if (deleted.contains(id)) continue;
    ++throughout;
    BOOST_TEST(seen_set.contains(id), "token " << id << " existed throughout and was skipped");
  }
  BOOST_TEST(throughout > 2'400u);
  for (const std::uint64_t id : created) BOOST_TEST(seen_set.contains(id), "new token " << id);
  for (const std::uint64_t id : deleted_ahead) BOOST_TEST(!seen_set.contains(id), "deleted token " << id);
  BOOST_TEST(created.size() >= 4u);
  BOOST_TEST(deleted_ahead.size() >= 4u);
}

BOOST_AUTO_TEST_CASE(cursor_follows_nothing_but_its_own_list) {
  for (int i = 0; i < 4; ++i) create_via_api(port, admin_key, "t" + std::to_string(i));  // 5 with bootstrap
  const auto user2 = add_user_key(2, "two");
  create_via_api(port, user2, "two's second");
  const std::string mine = cursor_of(port, admin_key, "&pageSize=2");
  const std::string theirs = cursor_of(port, user2, "&pageSize=1");
  BOOST_REQUIRE_EQUAL(mine.size(), 44u);

  // The cursor works as given, and with pageSize omitted (1000).
  const auto next = cursor_page(port, admin_key, "&pageSize=2&cursor=" + mine);
  BOOST_TEST(next.ids.size() == 2u);
  BOOST_TEST(!next.next.empty());
  const auto rest = cursor_page(port, admin_key, "&cursor=" + mine).ids;
  BOOST_TEST(rest.size() == 3u);
  // Once the whole list is read (the list cache holds it on a store of one process), the cursor's
  // page is the same, and a create shows in it at once.
  BOOST_TEST(list_tokens(port, admin_key).size() == 5u);
  BOOST_TEST(cursor_page(port, admin_key, "&cursor=" + mine).ids == rest, boost::test_tools::per_element());
  const auto made = id_of(token_of(api(port, http::verb::post, tokens_target(admin_key), create_json("t4"))));
  const auto grown = cursor_page(port, admin_key, "&cursor=" + mine).ids;
  BOOST_REQUIRE_EQUAL(grown.size(), 4u);
  BOOST_TEST(grown.back() == made);
  BOOST_REQUIRE_EQUAL(api(port, http::verb::delete_, tokens_target(admin_key), id_json(made)).status, 200u);
  BOOST_TEST(cursor_page(port, admin_key, "&cursor=" + mine).ids == rest, boost::test_tools::per_element());

  const std::string invalid = "cursor is not valid";
  std::string flipped = mine;
  flipped[20] = flipped[20] == 'A' ? 'B' : 'A';
  for (const std::string& bad :
       {flipped, mine.substr(0, 43), mine.substr(0, 20), mine + "A", std::string("x"), std::string(), theirs,
        mine.substr(0, 43) + "=", mine.substr(0, 43) + "%2B"}) {
    BOOST_TEST_CONTEXT("cursor '" << bad << "'") {
      check_error(api(port, http::verb::get, tokens_target(admin_key) + "&cursor=" + bad), 400, invalid);
    }
  }
  // Another user's cursor is refused to an operator acting for this user too; the operator acting
  // for its owner may follow it.
  const auto op = add_operator_key(1);
  check_error(api(port, http::verb::get, as_user(op, 1) + "&cursor=" + theirs), 400, invalid);
  BOOST_TEST(api(port, http::verb::get, as_user(op, 2) + "&cursor=" + theirs).status == 200u);
  // Twice, or with a page: refused.
  check_error(api(port, http::verb::get, tokens_target(admin_key) + "&cursor=" + mine + "&cursor=" + mine),
              400);
  check_error(api(port, http::verb::get, tokens_target(admin_key) + "&page=0&cursor=" + mine), 400,
              "cursor and page cannot be used together");
}

BOOST_AUTO_TEST_CASE(deep_pages_are_refused_naming_the_cursor) {
  const std::string deep = "page is too deep: past 10000 tokens, follow nextCursor instead";
  BOOST_TEST(api(port, http::verb::get, tokens_target(admin_key) + "&page=10&pageSize=1000").status == 200u);
  BOOST_TEST(api(port, http::verb::get, tokens_target(admin_key) + "&page=10000&pageSize=1").status == 200u);
  BOOST_TEST(api(port, http::verb::get, tokens_target(admin_key) + "&page=10").status == 200u);
  for (const char* q : {"&page=11&pageSize=1000", "&page=10001&pageSize=1", "&page=11", "&page=1000000000",
                        "&page=5001&pageSize=2"}) {
    BOOST_TEST_CONTEXT(q) {
      check_error(api(port, http::verb::get, tokens_target(admin_key) + q), 400, deep);
    }
  }
}

// A list of more than 1000 tokens without any paging parameter gives the cursor to the rest.
BOOST_AUTO_TEST_CASE(unpaged_list_gives_a_cursor_past_1000) {
  constexpr core::user_id user = 8;
  const auto key = add_user_key(user, "many");
  store_many(store(), user, 1'000);
  const auto r = api(port, http::verb::get, tokens_target(key));
  BOOST_REQUIRE_EQUAL(r.status, 200u);
  const auto o = r.json().as_object();
  BOOST_TEST(o.size() == 4u, "success, message, tokens, nextCursor");
  BOOST_TEST(o.at("tokens").as_array().size() == 1000u);
  const auto rest = cursor_page(port, key, "&cursor=" + str(o.at("nextCursor")));
  BOOST_TEST(rest.ids.size() == 1u);
  BOOST_TEST(rest.next.empty());
  // 1000 exactly: no cursor, the body as before.
  const auto last = api(port, http::verb::delete_, tokens_target(key), id_json(rest.ids.front()));
  BOOST_REQUIRE_EQUAL(last.status, 200u);
  BOOST_TEST(api(port, http::verb::get, tokens_target(key)).json().as_object().size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

server_options bounded_options() {
  server_options o;
  o.max_tokens_per_user = 5;
  return o;
}

struct bounded_fixture : test_server {
  bounded_fixture() : test_server(bounded_options()) {}
};

BOOST_FIXTURE_TEST_SUITE(api_quota, bounded_fixture)

BOOST_AUTO_TEST_CASE(create_past_the_bound_is_409_and_a_delete_makes_room) {
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(id_of(token_of(
        api(port, http::verb::post, tokens_target(admin_key), create_json("t" + std::to_string(i))))));
  const auto refused = api(port, http::verb::post, tokens_target(admin_key), create_json("one too many"));
  check_error(refused, 409, limit_message(5));
  BOOST_TEST(list_tokens(port, admin_key).size() == 5u, "nothing stored");
  // An operator creating for the user meets the same bound.
  const auto op = add_operator_key(9);
  check_error(api(port, http::verb::post, as_user(op, 1), create_json("for user 1")), 409, limit_message(5));
  // A roll replaces a key: never refused by the bound.
  BOOST_TEST(api(port, http::verb::post, roll_target(admin_key), id_json(ids[0])).status == 200u);
  // Deletes free room.
  for (const std::uint64_t id : {ids[0], ids[1]})
    BOOST_REQUIRE_EQUAL(api(port, http::verb::delete_, tokens_target(admin_key), id_json(id)).status, 200u);
  BOOST_TEST(api(port, http::verb::post, tokens_target(admin_key), create_json("room again")).status == 200u);
  check_error(api(port, http::verb::post, tokens_target(admin_key), create_json("full again")), 409,
              limit_message(5));
}

BOOST_AUTO_TEST_CASE(concurrent_creates_never_overshoot) {
  const auto op = add_operator_key(9);
  std::vector<std::future<unsigned>> statuses;
  for (int i = 0; i < 24; ++i) {
    statuses.push_back(std::async(std::launch::async, [this, &op, i] {
      return api(port, http::verb::post, as_user(op, 3), create_json("c" + std::to_string(i))).status;
    }));
  }
  std::size_t made = 0;
  std::size_t refused = 0;
  for (auto& s : statuses) {
    const unsigned status = s.get();
    made += status == 200 ? 1 : 0;
    refused += status == 409 ? 1 : 0;
  }
  BOOST_TEST(made == 5u);
  BOOST_TEST(refused == 19u);
  BOOST_TEST(api(port, http::verb::get, as_user(op, 3)).json().at("tokens").as_array().size() == 5u);
}

BOOST_AUTO_TEST_CASE(quota_read_and_set_by_an_operator) {
  const auto q = api(port, http::verb::get, quota_target(admin_key));
  BOOST_REQUIRE_EQUAL(q.status, 200u);
  BOOST_TEST(q.header("content-type") == "application/json");
  BOOST_TEST(q.body ==
             R"({"success":true,"message":"Success","userId":1,"tokens":1,"maxTokens":5,"ownBound":false})");
  // An admin key may read its own quota, neither another user's nor change any.
  check_error(api(port, http::verb::get, quota_target(admin_key, "&userId=2")), 403,
              "Only an operator key may act for another user");
  check_error(api(port, http::verb::put, quota_target(admin_key), R"({"userId":1,"maxTokens":50})"), 403,
              "Only an operator key may change a token bound");

  const auto op = add_operator_key(9);
  const auto set = api(port, http::verb::put, quota_target(op), R"({"userId":1,"maxTokens":7})");
  BOOST_REQUIRE_EQUAL(set.status, 200u);
  BOOST_TEST(set.body ==
             R"({"success":true,"message":"Success","userId":1,"tokens":1,"maxTokens":7,"ownBound":true})");
  for (int i = 0; i < 6; ++i) create_via_api(port, admin_key, "t" + std::to_string(i));
  check_error(api(port, http::verb::post, tokens_target(admin_key), create_json("8th")), 409,
              limit_message(7));
  BOOST_TEST(api(port, http::verb::get, quota_target(op, "&userId=1")).body ==
             R"({"success":true,"message":"Success","userId":1,"tokens":7,"maxTokens":7,"ownBound":true})");
  // 0: none for this user.
  BOOST_TEST(api(port, http::verb::put, quota_target(op), R"({"userId":1,"maxTokens":0})").status == 200u);
  create_via_api(port, admin_key, "8th");
  // null: back to the default, which the user is now past (its tokens stay; creates are refused).
  const auto back = api(port, http::verb::put, quota_target(op), R"({"userId":1,"maxTokens":null})");
  BOOST_TEST(back.body ==
             R"({"success":true,"message":"Success","userId":1,"tokens":8,"maxTokens":5,"ownBound":false})");
  check_error(api(port, http::verb::post, tokens_target(admin_key), create_json("9th")), 409,
              limit_message(5));
  BOOST_TEST(list_tokens(port, admin_key).size() == 8u);

  const std::string metrics = app().metrics_text();
  BOOST_TEST(test::metric_in(metrics, R"(tokend_http_requests_total{route="quota",status="200"})") >= 5);
  BOOST_TEST(test::metric_in(metrics, R"(tokend_http_requests_total{route="quota",status="403"})") == 2);
}

BOOST_AUTO_TEST_CASE(quota_bodies_are_strict) {
  const auto op = add_operator_key(9);
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"userId":1})", "maxTokens"},
      {R"({"maxTokens":5})", "userId"},
      {R"({"userId":1,"maxTokens":5,"extra":1})", "extra"},
      {R"({"userId":1,"maxTokens":-1})", "maxTokens"},
      {R"({"userId":1,"maxTokens":1000000001})", "maxTokens"},
      {R"({"userId":1,"maxTokens":"5"})", "maxTokens"},
      {R"({"userId":1,"maxTokens":5.5})", "maxTokens"},
      {R"({"userId":0,"maxTokens":5})", "userId"},
      {R"({"userId":"1","maxTokens":5})", "userId"},
      {R"({"userId":9007199254740993,"maxTokens":5})", "userId"},
      {R"({"userId":1,"maxTokens":5,"maxTokens":6})", "twice"},
      {R"([1,2])", "object"},
      {"not json", "JSON"},
  };
  for (const auto& [body, named] : bad) {
    BOOST_TEST_CONTEXT(body) {
      const auto r = api(port, http::verb::put, quota_target(op), body);
      check_error(r, 400);
      BOOST_TEST(r.body.find(named) != std::string::npos, r.body);
    }
  }
  check_error(api(port, http::verb::put, quota_target(op, "&userId=2"), R"({"userId":1,"maxTokens":5})"),
              400);
  check_error(api(port, http::verb::put, quota_target(op), R"({"userId":1,"maxTokens":5})",
                  {{"Content-Type", "text/plain"}}),
              415);
  // Nothing above changed the bound.
  BOOST_TEST(api(port, http::verb::get, quota_target(op, "&userId=1")).json().at("maxTokens").as_int64() ==
             5);
  for (const auto method : {http::verb::post, http::verb::delete_, http::verb::patch}) {
    const auto r = api(port, method, quota_target(op));
    check_error(r, 405);
    BOOST_TEST(r.header("allow") == "GET, PUT");
  }
  check_error(api(port, http::verb::get, "/api/v2/tokens/quota"), 401);
}

BOOST_AUTO_TEST_SUITE_END()
