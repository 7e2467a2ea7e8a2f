// tokend as the key check of a whole API, through a real nginx configured as a user copies it from
// deploy/gateways/nginx: the three snippet files included as they are (only the upstream's server
// line is rewritten to this tokend's port), in front of a protected service that answers what
// reached it and logs every request it served. Through nginx: a valid key (query or Bearer) reaches
// the service with its user id and without the key; a missing, malformed, unknown or just-deleted
// key is 401 and never reaches it; tokend down, or its store failing for an uncached key (the
// PostgreSQL suite, labelled), lets nothing through; a key over its rate limit gets nginx's 429 with
// tokend's headers; tokend's own output never holds a key.
#define BOOST_TEST_MODULE gateway_test
#include <boost/test/unit_test.hpp>

#include "core/key.hpp"
#include "support/http_client.hpp"
#include "support/keys.hpp"
#include "support/nginx.hpp"
#include "support/private_postgres.hpp"
#include "support/timing.hpp"
#include "support/tokend_server.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef TOKEND_SOURCE_DIR
#error "TOKEND_SOURCE_DIR must name the repository root (the snippets are read from it)"
#endif

namespace {

using namespace std::chrono_literals;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace test = tokend::test;
using steady = std::chrono::steady_clock;
using headers = std::vector<std::pair<std::string, std::string>>;

constexpr auto test_budget = 50s;  // each case, start-up included
constexpr std::size_t piece = 16;  // no run of this many characters of a key may appear
constexpr const char* user_id = "4242";

const std::filesystem::path snippets = std::filesystem::path(TOKEND_SOURCE_DIR) / "deploy/gateways/nginx";

std::string tokens(const std::string& key) { return "/api/v2/tokens?token=" + key; }

std::uint16_t another_free_port(std::uint16_t taken) {
  for (;;) {
    const auto p = test::free_loopback_port();
    if (p != taken) return p;
  }
}

// nginx with the documented snippets in front of `service`, a server block of its own that answers
// what reached it and logs each request it served (one line each) to service.log.
class gateway {
 public:
  gateway(const std::filesystem::path& dir, std::uint16_t tokend_port)
      : dir_(dir), port_(test::free_loopback_port()), service_port_(another_free_port(port_)) {
    std::filesystem::create_directories(dir_);
    // The user's copy of tokend-http.conf: the upstream's server line pointed at this tokend.
    std::string http_conf = test::read_file(snippets / "tokend-http.conf");
    const std::string documented = "server 127.0.0.1:8080;";
    const auto at = http_conf.find(documented);
    if (at == std::string::npos || http_conf.find(documented, at + 1) != std::string::npos) {
      throw std::runtime_error("tokend-http.conf: expected one '" + documented + "' line");
    }
    http_conf.replace(at, documented.size(), "server 127.0.0.1:" + std::to_string(tokend_port) + ";");
    std::ofstream(dir_ / "tokend-http.conf") << http_conf;

    const std::string d = dir_.string();
    const std::string s = snippets.string();
    const std::string block =
        "  include " + d +
        "/tokend-http.conf;\n"
        "  log_format service '$request_uri|$http_authorization|$http_x_tokend_user_id';\n"
        "  upstream api_backend {\n"
        "    server 127.0.0.1:" +
        std::to_string(service_port_) +
        ";\n"
        "    keepalive 8;\n"
        "  }\n"
        "  server {\n"
        "    listen 127.0.0.1:" +
        std::to_string(port_) +
        ";\n"
        "    include " +
        s +
        "/tokend-verify.conf;\n"
        "    location / {\n"
        "      include " +
        s +
        "/tokend-protect.conf;\n"
        "      proxy_pass http://api_backend;\n"
        "      proxy_http_version 1.1;\n"
        "      proxy_set_header Connection \"\";\n"
        "    }\n"
        "  }\n"
        "  server {\n"
        "    listen 127.0.0.1:" +
        std::to_string(service_port_) +
        ";\n"
        "    access_log " +
        d +
        "/service.log service;\n"
        "    location / {\n"
        "      return 200 \"user=$http_x_tokend_user_id type=$http_x_tokend_token_type args=$args "
        "auth=$http_authorization\\n\";\n"
        "    }\n"
        "  }\n";
    nginx_ = std::make_unique<test::nginx_server>(dir_, block, port_);
  }

  // One request through nginx, on a connection of its own.
  test::reply send(const std::string& target, const headers& h = {}) {
    return test::request(port_, http::verb::get, target, {}, h);
  }

  // The requests the service served. A request sent straight to the service first, and waited for,
  // makes sure every line of an earlier request is in the file.
  std::vector<std::string> served() {
    const std::string fence = "/fence/" + std::to_string(++fences_);
    const auto r = test::request(service_port_, http::verb::get, fence);
    if (r.status != 200) throw std::runtime_error("the service did not answer its fence request");
    std::vector<std::string> lines;
    const bool fenced = test::eventually(
        [&] {
          lines.clear();
          std::istringstream in(test::read_file(dir_ / "service.log"));
          bool seen = false;
          for (std::string line; std::getline(in, line);) {
            if (line.starts_with(fence + "|")) seen = true;
            if (!line.starts_with("/fence/")) lines.push_back(line);
          }
          return seen;
        },
        5s);
    if (!fenced) throw std::runtime_error("the service's log never showed the fence request");
    return lines;
  }

  [[nodiscard]] std::string error_log() const { return nginx_->error_log(); }

 private:
  std::filesystem::path dir_;
  std::uint16_t port_;
  std::uint16_t service_port_;
  std::unique_ptr<test::nginx_server> nginx_;
  int fences_ = 0;
};

std::string create(std::uint16_t api, const std::string& admin) {
  const auto r = test::request(api, http::verb::post, tokens(admin),
                               json::serialize(json::object{{"type", "admin"}, {"description", "gateway"}}));
  if (r.status != 200) throw std::runtime_error("create failed: " + std::to_string(r.status) + " " + r.body);
  return std::string(r.json().at("token").at("token").as_string());
}

// The expected answer of the service for a request that got through with `args` left.
std::string passed_with(const std::string& args) {
  return "user=" + std::string(user_id) + " type=admin args=" + args + " auth=\n";
}

// How many `piece`-character runs of `key` appear in `text` (case-insensitively).
std::size_t pieces_of(const std::string& key, std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::size_t found = 0;
  for (std::size_t at = 0; at + piece <= key.size(); ++at) {
    found += text.find(key.substr(at, piece)) != std::string::npos;
  }
  return found;
}

bool is_2xx(unsigned status) { return status >= 200 && status < 300; }

std::string listed(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += "\n  " + line;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rocksdb, *boost::unit_test::label("rocksdb"))

BOOST_AUTO_TEST_CASE(nginx_lets_through_only_what_tokend_allows) {
  const auto started = steady::now();
  test::sandbox box;
  const std::string admin = tokend::core::generate_key();
  const std::string unknown = tokend::core::generate_key();  // well-formed, never stored
  std::vector<std::string> keys{admin, unknown};

  test::tokend_server::options options;
  options.args = {"--access-log", "--log-level", "debug"};  // the most a key could leak into
  options.env = {"TOKEND_BOOTSTRAP_TOKEN=" + admin, std::string("TOKEND_BOOTSTRAP_USER_ID=") + user_id};
  auto server = std::make_unique<test::tokend_server>(box, options);
  const auto api = server->api_port();
  gateway gw(box.root() / "nginx", api);

  const std::string key = create(api, admin);
  keys.push_back(key);

  // A valid key in the query: through, with the user id, and the query without the key.
  auto r = gw.send("/items/a?a=1&token=" + key + "&b=2");
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  BOOST_TEST(r.body == passed_with("a=1&b=2"));
  // The key as the only parameter.
  r = gw.send("/items/b?token=" + key);
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  BOOST_TEST(r.body == passed_with(""));
  // A valid key in Authorization: through, and the header stays at the gateway.
  r = gw.send("/items/c?q=1", {{"Authorization", "Bearer " + key}});
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  BOOST_TEST(r.body == passed_with("q=1"));

  auto served = gw.served();
  BOOST_TEST(served.size() == 3u, listed(served));
  for (const auto& line : served) {
    BOOST_TEST_CONTEXT(line.substr(0, line.find('?'))) {
      // nginx logs "-" for an absent header: no Authorization, and the user id.
      BOOST_TEST(line.ends_with(std::string("|-|") + user_id), "no user id, or an Authorization header");
      BOOST_TEST(pieces_of(key, line) == 0u, "the key reached the service");
    }
  }

  // Refused keys: 401 from nginx with tokend's challenge, and nothing reaches the service.
  const std::string malformed_checksum = test::corrupt(key);
  keys.push_back(malformed_checksum);
  const std::vector<std::pair<std::string, test::reply>> refused{
      {"missing", gw.send("/denied/missing?a=1")},
      {"empty", gw.send("/denied/empty?token=")},
      {"not hex", gw.send("/denied/not-hex?token=not-a-key")},
      {"bad checksum", gw.send("/denied/checksum?token=" + malformed_checksum)},
      {"cut short", gw.send("/denied/short?token=" + key.substr(0, 40))},
      {"not Bearer", gw.send("/denied/basic", {{"Authorization", "Basic " + key}})},
      {"two different keys", gw.send("/denied/two?token=" + key + "&token=" + admin)},
      {"unknown, query", gw.send("/denied/unknown?token=" + unknown)},
      {"unknown, Bearer", gw.send("/denied/unknown-bearer", {{"Authorization", "Bearer " + unknown}})},
  };
  for (const auto& [what, reply] : refused) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_TEST(reply.status == 401u, reply.status << " " << reply.body);
      BOOST_TEST(reply.header("www-authenticate").starts_with("Bearer"), reply.header("www-authenticate"));
    }
  }
  served = gw.served();
  BOOST_TEST(served.size() == 3u, "a refused request reached the service:" << listed(served));

  // A deleted key: 401 on the very next request after the delete's 200, though it was just used
  // (so cached) and nginx's keep-alive connections to tokend are warm.
  const std::string victim = create(api, admin);
  keys.push_back(victim);
  r = gw.send("/items/victim?token=" + victim);
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  r = gw.send("/items/victim-bearer", {{"Authorization", "Bearer " + victim}});
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  BOOST_TEST(gw.served().size() == 5u);
  const auto removed = test::request(api, http::verb::delete_, tokens(admin),
                                     json::serialize(json::object{{"token", victim}}));
  BOOST_REQUIRE_MESSAGE(removed.status == 200u, removed.status << " " << removed.body);
  r = gw.send("/denied/deleted?token=" + victim);
  BOOST_TEST(r.status == 401u, r.status << " " << r.body);
  r = gw.send("/denied/deleted-bearer", {{"Authorization", "Bearer " + victim}});
  BOOST_TEST(r.status == 401u, r.status << " " << r.body);
  // The other key still passes: the refusals were the victim's, not the gateway's.
  r = gw.send("/items/after-delete?token=" + key);
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  served = gw.served();
  BOOST_TEST(served.size() == 6u, listed(served));
  for (const auto& line : served) BOOST_TEST(!line.starts_with("/denied/"), "reached the service: " << line);

  // nginx keeps its connections to tokend: a check does not open one (the snippet's HEAD: nginx
  // closes the connection after an auth_request answer that has a body).
  const auto accepted = [&] {
    const auto text = test::request(server->admin_port(), http::verb::get, "/metrics").body;
    const std::string name = "\ntokend_http_connections_total ";
    const auto at = text.find(name);
    return at == std::string::npos ? -1ll : std::stoll(text.substr(at + name.size()));
  };
  const long long accepted_before = accepted();
  for (int i = 0; i < 40; ++i) BOOST_TEST(gw.send("/items/kept?token=" + key).status == 200u);
  for (int i = 0; i < 10; ++i) BOOST_TEST(gw.send("/denied/kept?token=" + unknown).status == 401u);
  const long long opened = accepted() - accepted_before;
  BOOST_TEST((accepted_before >= 0 && opened <= 2),
             "50 checks opened " << opened << " connections to tokend");
  served = gw.served();

  // tokend down: nginx answers an error of its own, and nothing reaches the service.
  const auto served_before_down = served.size();
  const auto status = server->terminate(10s);
  BOOST_TEST(status.has_value(), "tokend did not exit");
  BOOST_TEST(status.value_or(test::exit_status{}).success());
  for (const auto& h : std::vector<headers>{{}, {{"Authorization", "Bearer " + key}}}) {
    r = gw.send(h.empty() ? "/denied/down?token=" + key : "/denied/down-bearer", h);
    BOOST_TEST(r.status != 0u, "nginx did not answer: " << r.error);
    BOOST_TEST(!is_2xx(r.status), r.status << " " << r.body);
    BOOST_TEST_MESSAGE("tokend down: nginx answers " << r.status);
  }
  served = gw.served();
  BOOST_TEST(served.size() == served_before_down, "reached the service with tokend down:" << listed(served));

  // Nothing of any key in tokend's output, though it logged every request it answered.
  const std::string output = box.all_output();
  BOOST_TEST(output.find("\"msg\":\"access\"") != std::string::npos, "no access log captured");
  BOOST_TEST(output.find("/verify") != std::string::npos, "no /verify request in the access log");
  for (const auto& k : keys) {
    BOOST_TEST(pieces_of(k, output) == 0u, "key " << k.substr(0, 6) << "...: pieces in tokend's output");
  }
  BOOST_TEST((steady::now() - started < test_budget), "the test took longer than its budget");
}

// A key over its rate limit behind nginx: tokend answers the check 403 (auth_request would turn a
// 429 into a 500) and the snippets turn that into the client's 429 with tokend's Retry-After and
// RateLimit headers, never reaching the service; an allowed request carries the RateLimit headers.
BOOST_AUTO_TEST_CASE(nginx_answers_429_for_a_key_over_its_rate_limit) {
  const auto started = steady::now();
  test::sandbox box;
  const std::string op = tokend::core::generate_key();
  test::tokend_server::options options;
  options.args = {"--verify-rate-limited-status", "403"};
  options.env = {"TOKEND_BOOTSTRAP_TOKEN=" + op, "TOKEND_BOOTSTRAP_TYPE=operator",
                 "TOKEND_BOOTSTRAP_USER_ID=1"};
  test::tokend_server server(box, options);
  gateway gw(box.root() / "nginx", server.api_port());

  // One request a day: the second is over the limit for the rest of the day.
  const json::object body{{"type", "admin"},
                          {"description", "one a day"},
                          {"rateLimit", json::object{{"limit", 1}, {"window", 86400}}}};
  const auto made =
      test::request(server.api_port(), http::verb::post, std::string("/api/v2/tokens?userId=") + user_id,
                    json::serialize(body), {{"Authorization", "Bearer " + op}});
  BOOST_REQUIRE_MESSAGE(made.status == 200u, made.status << " " << made.body);
  const std::string key(made.json().at("token").at("token").as_string());
  const std::string policy = "\"key\";q=1;w=86400";

  auto r = gw.send("/items/first", {{"Authorization", "Bearer " + key}});
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  BOOST_TEST(r.body == passed_with(""));
  BOOST_TEST(r.header("ratelimit-policy") == policy);
  BOOST_TEST(r.header("ratelimit").starts_with("\"key\";r=0;t="), r.header("ratelimit"));
  BOOST_TEST(r.header("retry-after").empty());

  for (const auto& target : {std::string("/denied/second"), "/denied/query?token=" + key}) {
    BOOST_TEST_CONTEXT(target.substr(0, 15)) {
      r = target.find("token=") == std::string::npos ? gw.send(target, {{"Authorization", "Bearer " + key}})
                                                     : gw.send(target);
      BOOST_TEST(r.status == 429u, r.status << " " << r.body);
      const long long retry_after = std::atoll(r.header("retry-after").c_str());
      BOOST_TEST(retry_after >= 86000, "Retry-After: " << r.header("retry-after"));
      BOOST_TEST(retry_after <= 86400, "Retry-After: " << r.header("retry-after"));
      BOOST_TEST(r.header("ratelimit-policy") == policy);
      BOOST_TEST(r.header("ratelimit").starts_with("\"key\";r=0;t="), r.header("ratelimit"));
      BOOST_TEST(r.header("content-type").starts_with("application/json"), r.header("content-type"));
      BOOST_TEST(r.body == R"({"success":false,"message":"Rate limit exceeded"})");
    }
  }
  // A key without a limit passes with none of these headers.
  r = gw.send("/items/unlimited", {{"Authorization", "Bearer " + op}});
  BOOST_TEST(r.status == 200u, r.status << " " << r.body);
  BOOST_TEST(r.header("ratelimit").empty());
  BOOST_TEST(r.header("ratelimit-policy").empty());

  const auto served = gw.served();
  BOOST_TEST(served.size() == 2u, listed(served));
  for (const auto& line : served) BOOST_TEST(!line.starts_with("/denied/"), "reached the service: " << line);
  BOOST_TEST(gw.error_log().find("auth request unexpected status") == std::string::npos, gw.error_log());
  BOOST_TEST(server.terminate(10s).value_or(test::exit_status{}).success());
  BOOST_TEST((steady::now() - started < test_budget), "the test took longer than its budget");
}

BOOST_AUTO_TEST_SUITE_END()

// The store failing: the fault file (--test-fault-file) fails writes only, and a RocksDB read does
// not fail on demand, so this runs on a PostgreSQL server of the test's own, stopped mid-test.
BOOST_AUTO_TEST_SUITE(postgres, *boost::unit_test::label("postgres"))

BOOST_AUTO_TEST_CASE(store_down_lets_nothing_through_for_an_uncached_key) {
  const auto started = steady::now();
  test::sandbox box;
  test::private_postgres db;
  const std::string admin = tokend::core::generate_key();

  test::tokend_server::options options;
  options.env = {"TOKEND_STORE=postgres",           "TOKEND_POSTGRES_URL=" + db.url(),
                 "TOKEND_POSTGRES_SCHEMA=public",   "TOKEND_POSTGRES_CONNECTIONS=2",
                 "TOKEND_BOOTSTRAP_TOKEN=" + admin, std::string("TOKEND_BOOTSTRAP_USER_ID=") + user_id};
  test::tokend_server server(box, options);
  gateway gw(box.root() / "nginx", server.api_port());
  const auto ready = [&] { return test::request(server.admin_port(), http::verb::get, "/readyz").status; };
  BOOST_REQUIRE(test::eventually([&] { return ready() == 200u; }, 10s));

  // The bootstrap key is stored but not yet cached: no request has used it.
  db.stop_immediate();
  BOOST_TEST(test::eventually([&] { return ready() == 503u; }, 5s),
             "readyz still 200 with the database down");
  for (const auto& h : std::vector<headers>{{}, {{"Authorization", "Bearer " + admin}}}) {
    const auto r = gw.send(h.empty() ? "/denied/store-down?token=" + admin : "/denied/store-down-bearer", h);
    BOOST_TEST(r.status != 0u, "nginx did not answer: " << r.error);
    BOOST_TEST(!is_2xx(r.status), r.status << " " << r.body);
    BOOST_TEST(r.status != 401u, "a valid key refused as if it were bad");
    BOOST_TEST_MESSAGE("store down: nginx answers " << r.status);
  }
  const auto served_down = gw.served();
  BOOST_TEST(served_down.empty(), "reached the service with the store down:" << listed(served_down));

  // The same key, once the database is back: the refusals were the store's.
  db.start_again();
  BOOST_TEST(test::eventually([&] { return gw.send("/items/back?token=" + admin).status == 200u; }, 20s),
             "the key did not pass once the database was back");
  const auto served = gw.served();
  BOOST_TEST(!served.empty());
  for (const auto& line : served) {
    BOOST_TEST(line.starts_with("/items/back|"), "reached the service: " << line);
  }
  BOOST_TEST(server.terminate(10s).value_or(test::exit_status{}).success());
  BOOST_TEST(pieces_of(admin, box.all_output()) == 0u, "pieces of the key in tokend's output");
  BOOST_TEST((steady::now() - started < test_budget), "the test took longer than its budget");
}

BOOST_AUTO_TEST_SUITE_END()
