// /verify over real sockets, with the exact requests each gateway sends: nginx auth_request,
// ingress-nginx auth-url, Envoy ext_authz (HTTP) and Traefik ForwardAuth. An in-process app on
// 127.0.0.1:0 over the memory store, behind the write-fault injector and a decorator whose lookups
// can be made to fail, so the store can be taken away from under a running server.
#define BOOST_TEST_MODULE verify_integration_test
#include <boost/test/unit_test.hpp>

#include "core/error.hpp"
#include "core/key.hpp"
#include "core/token.hpp"
#include "server/app.hpp"
#include "server/config.hpp"
#include "storage/faulty_store.hpp"
#include "storage/memory_store.hpp"
#include "support/http_client.hpp"
#include "support/in_process_app.hpp"
#include "support/temp_dir.hpp"
#include "support/timing.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace server = tokend::server;
namespace storage = tokend::storage;
namespace core = tokend::core;
namespace test = tokend::test;
namespace json = boost::json;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view unauthorized_body = R"({"success":false,"message":"Unauthorized Request"})";

// Passes everything to `inner`, except that lookups fail (core::errc::unavailable) while
// fail_lookups is set: the store "down" for reads, which the write-fault injector cannot do.
class lookup_fault_store : public storage::token_store {
 public:
  explicit lookup_fault_store(std::unique_ptr<storage::token_store> inner) : inner_(std::move(inner)) {}
  void async_lookup(const core::key_digest& digest, lookup_handler handler) override {
    if (fail_lookups.load()) {
      // On a thread of its own, as a store calls back.
      std::thread([h = std::move(handler)] { h(core::make_error_code(core::errc::unavailable)); }).detach();
      return;
    }
    lookups.fetch_add(1);
    inner_->async_lookup(digest, std::move(handler));
  }
  void async_create(core::token_record record, create_handler handler) override {
    inner_->async_create(std::move(record), std::move(handler));
  }
  void async_list(core::user_id owner, std::size_t offset, std::size_t limit, list_handler handler) override {
    inner_->async_list(owner, offset, limit, std::move(handler));
  }
  void async_remove(storage::token_ref ref, remove_handler handler) override {
    inner_->async_remove(std::move(ref), std::move(handler));
  }
  void async_roll(storage::roll_request request, roll_handler handler) override {
    inner_->async_roll(std::move(request), std::move(handler));
  }
  void async_set_rate_limit(storage::token_ref ref, std::optional<core::rate_limit> limit,
                            remove_handler handler) override {
    inner_->async_set_rate_limit(ref, limit, std::move(handler));
  }
  void async_record_uses(std::vector<storage::key_use> uses, write_handler handler) override {
    inner_->async_record_uses(std::move(uses), std::move(handler));
  }
  void async_remove_expired(std::int64_t cutoff, std::size_t limit, sweep_handler handler) override {
    inner_->async_remove_expired(cutoff, limit, std::move(handler));
  }
  [[nodiscard]] bool ready() const noexcept override { return inner_->ready(); }
  [[nodiscard]] boost::system::result<bool> empty() override { return inner_->empty(); }
  [[nodiscard]] storage::store_stats stats() const override { return inner_->stats(); }
  [[nodiscard]] bool shared() const noexcept override { return inner_->shared(); }
  void on_revoked(std::function<void(const core::key_digest&)> callback) override {
    inner_->on_revoked(std::move(callback));
  }
  void close() override { inner_->close(); }

  std::atomic<bool> fail_lookups{false};
  std::atomic<std::uint64_t> lookups{0};

 private:
  std::unique_ptr<storage::token_store> inner_;
};

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void store_key(storage::token_store& store, const std::string& key, core::user_id owner,
               std::int64_t expires_at = 0, std::string_view type = core::admin_type) {
  test::store_record(
      store, core::make_token_record(key, owner, "verify test", std::string(type), unix_now(), expires_at));
}

struct verify_server {
  verify_server() {
    server::config cfg;
    cfg.cache_capacity = 10'000;
    cfg.max_body_bytes = 2048;
    cfg.test_fault_file = fault_file.string();
    auto faults = std::make_unique<lookup_fault_store>(
        storage::make_faulty_store(storage::make_memory_store(), fault_file.string()));
    store = faults.get();
    key = core::generate_key();
    other_key = core::generate_key();
    store_key(*store, key, 1);
    store_key(*store, other_key, 7);
    app.emplace(cfg, dir.path(), std::move(faults));
    port = app->api_port();
    admin_port = app->admin_port();
  }
  ~verify_server() {
    fs::remove(fault_file);
    app->stop();
  }

  void write_fault(const std::string& what) const { std::ofstream(fault_file, std::ios::trunc) << what; }

  tokend::test::temp_dir dir;
  fs::path fault_file = dir.path() / "fault";
  lookup_fault_store* store = nullptr;
  std::optional<test::in_process_app> app;
  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;
  std::string key;        // user 1
  std::string other_key;  // user 7
};

// The exact request each gateway sends for an original request `GET /api/items?page=2&token=K`
// (or, with `bearer`, the same path without the query parameter and the key in Authorization).
// `key` empty: the original request carried no key.
struct shape {
  std::string name;
  std::function<std::string(const std::string& key, bool bearer)> request;
};

std::string auth_header(const std::string& key, bool bearer) {
  return bearer && !key.empty() ? "Authorization: Bearer " + key + "\r\n" : "";
}
std::string original_query(const std::string& key, bool bearer) {
  return bearer || key.empty() ? "?page=2" : "?page=2&token=" + key;
}

const std::vector<shape>& shapes() {
  static const std::vector<shape> all = {
      // nginx auth_request, configured as deploy/gateways/nginx/tokend-auth.conf: HTTP/1.1 keep-alive,
      // no body and no Content-Length, the original headers, X-Original-URI = $request_uri.
      {"nginx auth_request",
       [](const std::string& key, bool bearer) {
         return "GET /verify HTTP/1.1\r\n"
                "X-Original-URI: /api/items" +
                original_query(key, bearer) +
                "\r\n"
                "Host: tokend\r\n"
                "User-Agent: curl/7.88.1\r\n"
                "Accept: */*\r\n" +
                auth_header(key, bearer) + "\r\n";
       }},
      // ingress-nginx auth-url: X-Original-URL is the whole URL, plus its own headers.
      {"ingress-nginx auth-url",
       [](const std::string& key, bool bearer) {
         const std::string uri = "/api/items" + original_query(key, bearer);
         return "GET /verify HTTP/1.1\r\n"
                "Host: tokend.tokend.svc.cluster.local\r\n"
                "X-Request-ID: 5d0a2a5b8c0c4d8f9a3b2c1d0e9f8a7b\r\n"
                "X-Original-URL: https://api.example.com" +
                uri +
                "\r\n"
                "X-Original-Method: GET\r\n"
                "X-Sent-From: nginx-ingress-controller\r\n"
                "X-Real-IP: 10.1.2.3\r\n"
                "X-Forwarded-For: 10.1.2.3\r\n"
                "X-Auth-Request-Redirect: " +
                uri +
                "\r\n"
                "X-Forwarded-Proto: https\r\n"
                "X-Forwarded-Host: api.example.com\r\n"
                "User-Agent: curl/7.88.1\r\n"
                "Accept: */*\r\n" +
                auth_header(key, bearer) + "\r\n";
       }},
      // Envoy ext_authz HTTP service: the original method, path_prefix + original path and query,
      // Content-Length: 0, the allowed headers.
      {"Envoy ext_authz",
       [](const std::string& key, bool bearer) {
         return "POST /verify/api/items" + original_query(key, bearer) +
                " HTTP/1.1\r\n"
                "host: api.example.com\r\n"
                "content-length: 0\r\n"
                "x-forwarded-proto: https\r\n"
                "x-request-id: 8a3f3c1e-2f4b-4b8e-9d2a-0f6c2b7d9e11\r\n"
                "x-envoy-expected-rq-timeout-ms: 250\r\n"
                "x-envoy-internal: true\r\n" +
                auth_header(key, bearer) + "\r\n";
       }},
      // Traefik ForwardAuth: X-Forwarded-Method/Proto/Host/Uri/For, the original headers.
      {"Traefik ForwardAuth",
       [](const std::string& key, bool bearer) {
         return "GET /verify HTTP/1.1\r\n"
                "Host: tokend.tokend.svc:8080\r\n"
                "User-Agent: curl/7.88.1\r\n"
                "Accept: */*\r\n" +
                auth_header(key, bearer) +
                "X-Forwarded-For: 10.1.2.3\r\n"
                "X-Forwarded-Host: api.example.com\r\n"
                "X-Forwarded-Method: POST\r\n"
                "X-Forwarded-Proto: https\r\n"
                "X-Forwarded-Uri: /api/items" +
                original_query(key, bearer) +
                "\r\n"
                "Accept-Encoding: gzip\r\n\r\n";
       }},
  };
  return all;
}

// Sends raw request bytes on a connection and reads one response.
test::reply send_raw(test::connection& c, const std::string& bytes) {
  if (!c.write_raw(bytes)) {
    test::reply r;
    r.error = "write failed";
    return r;
  }
  return c.read_response();
}

test::reply send_raw(std::uint16_t port, const std::string& bytes) {
  test::connection c(port);
  return send_raw(c, bytes);
}

void check_allowed(const test::reply& r, const std::string& user, const std::string& what) {
  BOOST_TEST(r.status == 200u, what << ": " << r.status << " " << r.body << " " << r.error);
  BOOST_TEST(r.header("x-tokend-user-id") == user, what);
  BOOST_TEST(r.header("x-tokend-token-type") == "admin", what);
  BOOST_TEST(r.header("cache-control") == "no-store", what);
  BOOST_TEST(r.header("www-authenticate").empty(), what);
  BOOST_TEST(r.header("content-type") == "application/json", what);
  BOOST_TEST(r.body == R"({"success":true,"message":"Authorized","userId":)" + user + R"(,"type":"admin"})",
             what);
}

void check_refused(const test::reply& r, const std::string& what) {
  BOOST_TEST(r.status == 401u, what << ": " << r.status << " " << r.body << " " << r.error);
  BOOST_TEST(r.header("www-authenticate") == R"(Bearer realm="tokend")", what);
  BOOST_TEST(r.header("x-tokend-user-id").empty(), what);
  BOOST_TEST(r.header("x-tokend-token-type").empty(), what);
  BOOST_TEST(r.header("cache-control") == "no-store", what);
  BOOST_TEST(r.body == unauthorized_body, what);
}

// The value of one sample line of /metrics, or -1.
long metric(std::uint16_t admin_port, const std::string& series) {
  const auto m = test::request(admin_port, http::verb::get, "/metrics");
  const auto at = m.body.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stol(m.body.substr(at + series.size() + 1));
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(gateway_shapes, verify_server)

BOOST_AUTO_TEST_CASE(a_valid_key_in_every_source_is_allowed) {
  for (const auto& s : shapes()) {
    test::connection c(port);  // kept alive across the requests, as gateways keep it
    check_allowed(send_raw(c, s.request(key, false)), "1", s.name + ", key in the URI");
    check_allowed(send_raw(c, s.request(key, true)), "1", s.name + ", key in Authorization");
    check_allowed(send_raw(c, s.request(other_key, false)), "7", s.name + ", another user's key");
  }
}

BOOST_AUTO_TEST_CASE(missing_malformed_and_unknown_keys_are_refused) {
  std::string bad_checksum = key;
  bad_checksum.back() = bad_checksum.back() == '0' ? '1' : '0';
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "missing"},
      {"not-a-key", "malformed"},
      {bad_checksum, "bad checksum"},
      {core::generate_key(), "unknown"},
      {key + "00", "too long"},
  };
  for (const auto& s : shapes()) {
    test::connection c(port);
    for (const auto& [k, why] : bad) {
      check_refused(send_raw(c, s.request(k, false)), s.name + ", " + why + " key in the URI");
      check_refused(send_raw(c, s.request(k, true)), s.name + ", " + why + " key in Authorization");
    }
    // the refusals leave the connection usable
    check_allowed(send_raw(c, s.request(key, true)), "1", s.name + " after refusals");
  }
}

BOOST_AUTO_TEST_CASE(a_key_in_the_uri_and_another_in_authorization_is_refused) {
  for (const auto& s : shapes()) {
    std::string bytes = s.request(key, false);
    bytes.insert(bytes.size() - 2, "Authorization: Bearer " + other_key + "\r\n");
    check_refused(send_raw(port, bytes), s.name);
  }
}

BOOST_AUTO_TEST_CASE(ambiguous_requests_are_refused) {
  const std::string good = "GET /verify HTTP/1.1\r\nHost: t\r\nX-Original-URI: /a?token=" + key + "\r\n";
  check_allowed(send_raw(port, good + "\r\n"), "1", "one copy");
  check_refused(send_raw(port, good + "X-Original-URI: /a?token=" + key + "\r\n\r\n"),
                "X-Original-URI twice");
  check_refused(send_raw(port, good + "X-Original-URI: /a\r\n\r\n"),
                "X-Original-URI twice, once without key");
  check_refused(
      send_raw(port, good + "Authorization: Bearer " + key + "\r\nAuthorization: Bearer " + key + "\r\n\r\n"),
      "Authorization twice");
  check_refused(send_raw(port, good + "X-Forwarded-Uri: /a?token=%zz\r\n\r\n"), "broken escape");
  check_refused(send_raw(port, good + "X-Original-URL: /a\r\n\r\n"), "X-Original-URL not absolute");
  check_refused(send_raw(port, "GET /verify?token=" + key + "&x=%zz HTTP/1.1\r\nHost: t\r\n\r\n"),
                "own query with a broken escape");
}

BOOST_AUTO_TEST_CASE(any_method_and_any_path_under_verify) {
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    for (const char* path : {"/verify", "/verify/", "/verify/api/v2/tokens", "/verify/a/b/c"}) {
      const auto r = send_raw(port, std::string(method) + " " + path + "?token=" + key +
                                        " HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
      BOOST_TEST(r.status == 200u, method << " " << path << ": " << r.status << " " << r.error);
      BOOST_TEST(r.header("x-tokend-user-id") == "1", method << " " << path);
    }
  }
  // HEAD: the same headers, no content
  test::connection head(port);
  const auto received =
      head.raw("HEAD /verify?token=" + key + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 3s);
  BOOST_TEST(received.starts_with("HTTP/1.1 200 "), received);
  BOOST_TEST(received.find("X-Tokend-User-Id: 1\r\n") != std::string::npos, received);
  BOOST_TEST(received.ends_with("\r\n\r\n"), received);
  // not under /verify: the API's own 404
  const auto r = send_raw(port, "GET /verifyx?token=" + key + " HTTP/1.1\r\nHost: t\r\n\r\n");
  BOOST_TEST(r.status == 404u);
  BOOST_TEST(r.header("www-authenticate").empty());
}

BOOST_AUTO_TEST_CASE(a_request_body_is_ignored_but_bounded) {
  const std::string body = "this is not JSON";
  const auto r = send_raw(
      port, "POST /verify HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nAuthorization: Bearer " + key +
                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  check_allowed(r, "1", "POST with a text body");
  const std::string big(4096, 'x');  // over the 2048-byte limit
  const auto over =
      send_raw(port, "POST /verify HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + key +
                         "\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
  BOOST_TEST(over.status == 413u, over.status << " " << over.error);
}

BOOST_AUTO_TEST_CASE(pipelined_checks_on_one_connection) {
  test::connection c(port);
  std::string bytes;
  for (const auto& s : shapes()) bytes += s.request(key, false) + s.request(core::generate_key(), true);
  BOOST_REQUIRE(c.write_raw(bytes));
  for (const auto& s : shapes()) {
    check_allowed(c.read_response(), "1", s.name + " pipelined");
    check_refused(c.read_response(), s.name + " pipelined, unknown");
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(revocation_and_store, verify_server)

BOOST_AUTO_TEST_CASE(a_deleted_key_is_refused_on_the_very_next_request) {
  for (const auto& s : shapes()) {
    for (const bool bearer : {false, true}) {
      const auto created = test::request(port, http::verb::post, "/api/v2/tokens?token=" + key,
                                         R"({"type":"admin","description":"victim"})");
      BOOST_REQUIRE_MESSAGE(created.status == 200u, created.body);
      const std::string victim(created.json().at("token").at("token").as_string());
      test::connection c(port);
      check_allowed(send_raw(c, s.request(victim, bearer)), "1",
                    s.name + " before the delete");  // now cached
      const auto deleted = test::request(port, http::verb::delete_, "/api/v2/tokens?token=" + key,
                                         json::serialize(json::object{{"token", victim}}));
      BOOST_REQUIRE_MESSAGE(deleted.status == 200u, deleted.body);
      check_refused(send_raw(c, s.request(victim, bearer)), s.name + " right after the delete's 200");
    }
  }
}

BOOST_AUTO_TEST_CASE(store_unavailable_is_503_for_an_uncached_key_only) {
  check_allowed(send_raw(port, shapes()[0].request(key, false)), "1", "warms the cache");
  store->fail_lookups = true;
  for (const auto& s : shapes()) {
    const auto r = send_raw(port, s.request(other_key, true));  // never looked up: not cached
    BOOST_TEST(r.status == 503u, s.name << ": " << r.status << " " << r.body);
    BOOST_TEST(r.header("x-tokend-user-id").empty());
    BOOST_TEST(r.header("www-authenticate").empty());
    BOOST_TEST(r.body == R"({"success":false,"message":"Service unavailable, try again later"})");
    // a cached key needs no store
    check_allowed(send_raw(port, s.request(key, false)), "1", s.name + " cached, store down");
  }
  store->fail_lookups = false;
  check_allowed(send_raw(port, shapes()[0].request(other_key, false)), "7", "store back");
}

BOOST_AUTO_TEST_CASE(a_cached_key_needs_no_store_round_trip) {
  check_allowed(send_raw(port, shapes()[0].request(key, false)), "1", "first");
  const auto before = store->lookups.load();
  test::connection c(port);
  for (int i = 0; i < 50; ++i)
    check_allowed(send_raw(c, shapes()[i % 4].request(key, i % 2 == 0)), "1", "cached");
  BOOST_TEST(store->lookups.load() == before);
}

BOOST_AUTO_TEST_CASE(checks_never_wait_on_a_stalled_write) {
  check_allowed(send_raw(port, shapes()[0].request(key, false)), "1", "warms the cache");
  write_fault("stall");
  // A create stuck behind the stalled writer, on its own connection.
  auto stuck = std::async(std::launch::async, [this] {
    test::connection c(port, 20s);
    return c.request(http::verb::post, "/api/v2/tokens?token=" + key,
                     R"({"type":"admin","description":"stuck"})");
  });
  BOOST_TEST((stuck.wait_for(200ms) == std::future_status::timeout), "the write should be stalled");
  for (const auto& s : shapes()) {
    check_allowed(send_raw(port, s.request(key, true)), "1", s.name + " cached, writer stalled");
    check_allowed(send_raw(port, s.request(other_key, false)), "7", s.name + " uncached, writer stalled");
  }
  write_fault("");
  BOOST_TEST(stuck.get().status == 200u);
}

BOOST_AUTO_TEST_CASE(its_own_route_in_the_metrics) {
  for (const auto& s : shapes()) {
    BOOST_TEST(send_raw(port, s.request(key, false)).status == 200u);
    BOOST_TEST(send_raw(port, s.request(core::generate_key(), false)).status == 401u);
  }
  BOOST_TEST(send_raw(port, "GET /verify HTTP/1.1\r\nHost: t\r\n\r\n").status == 401u);
  BOOST_TEST(metric(admin_port, R"(tokend_http_requests_total{route="verify",status="200"})") == 4);
  BOOST_TEST(metric(admin_port, R"(tokend_http_requests_total{route="verify",status="401"})") == 5);
  BOOST_TEST(metric(admin_port, R"(tokend_http_request_duration_seconds_count{route="verify"})") == 9);
  BOOST_TEST(metric(admin_port, R"(tokend_http_requests_total{route="other",status="401"})") == -1);
  // nothing of a key or of a forwarded URI in any label
  const auto m = test::request(admin_port, http::verb::get, "/metrics").body;
  BOOST_TEST(m.find(key.substr(0, 16)) == std::string::npos);
  BOOST_TEST(m.find("api/items") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(expiry_and_types, verify_server)

BOOST_AUTO_TEST_CASE(an_expired_key_is_refused_on_both_cache_paths) {
  const std::string expired = core::generate_key();
  const std::string valid = core::generate_key();
  store_key(*store, expired, 1, unix_now() - 1);
  store_key(*store, valid, 1, unix_now() + 3600);
  for (const auto& s : shapes()) {  // the first request is a miss, the others hit the cache
    test::connection c(port);
    check_refused(send_raw(c, s.request(expired, false)), s.name + ", expired key in the URI");
    check_refused(send_raw(c, s.request(expired, true)), s.name + ", expired key in Authorization");
    check_allowed(send_raw(c, s.request(valid, true)), "1", s.name + ", a key expiring in an hour");
  }
}

BOOST_AUTO_TEST_CASE(a_cached_key_is_refused_from_its_expiry_on_without_a_delete) {
  const std::string soon = core::generate_key();
  const std::int64_t expiry = unix_now() + 3;
  store_key(*store, soon, 1, expiry);
  test::connection c(port);
  check_allowed(send_raw(c, shapes()[0].request(soon, true)), "1", "before its expiry");  // now cached
  BOOST_REQUIRE_MESSAGE(unix_now() < expiry, "too slow to check the key before its expiry");
  BOOST_TEST(
      test::eventually([&] { return send_raw(c, shapes()[0].request(soon, true)).status == 401u; }, 10s),
      "still allowed after its expiry");
  BOOST_TEST(unix_now() >= expiry);
  for (const auto& s : shapes())
    check_refused(send_raw(c, s.request(soon, false)), s.name + " after its expiry");
}

BOOST_AUTO_TEST_CASE(an_operator_key_says_operator) {
  const std::string op = core::generate_key();
  store_key(*store, op, 9, 0, core::operator_type);
  for (const auto& s : shapes()) {
    for (const bool bearer : {false, true}) {
      const auto r = send_raw(port, s.request(op, bearer));
      BOOST_TEST(r.status == 200u, s.name << ": " << r.status << " " << r.body);
      BOOST_TEST(r.header("x-tokend-user-id") == "9", s.name);
      BOOST_TEST(r.header("x-tokend-token-type") == "operator", s.name);
      BOOST_TEST(r.body == R"({"success":true,"message":"Authorized","userId":9,"type":"operator"})", s.name);
    }
  }
  // An admin key still says admin beside it.
  check_allowed(send_raw(port, shapes()[0].request(key, true)), "1", "an admin key");
}

BOOST_AUTO_TEST_SUITE_END()
